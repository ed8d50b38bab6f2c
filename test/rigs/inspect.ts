// Read-only views of a namespace's network state, to prove that something left nothing behind.
// Layers: src/lab/netns.ts (commands) → this file → tests (lab, integration, shutdown).
import { run } from '../../src/lab/netns';

export interface NetSnapshot {
  /** Interface names. */
  links: string[];
  /** `ip -4 route show table all` lines. */
  routes4: string[];
  /** `ip -6 route show table all` lines, without the subnet-router anycast routes forwarding adds. */
  routes6: string[];
  rules4: string[];
  rules6: string[];
}

async function ipLines(ns: string | null, args: string[]): Promise<string[]> {
  const full = ns === null ? args : ['-n', ns, ...args];
  const { stdout } = await run('ip', full);
  return stdout
    .split('\n')
    .map((l) => l.replace(/\s+/g, ' ').trim())
    .filter((l) => l.length > 0)
    .sort();
}

/**
 * Links, routes (all tables) and rules of a namespace (null: the namespace this process runs in). Read-only.
 * IPv6 subnet-router anycast routes (`anycast ... table local`) are left out: the kernel adds them when forwarding
 * is turned on, and l4nat turns forwarding on and (by design) never off.
 */
export async function snapshotNetns(ns: string | null): Promise<NetSnapshot> {
  const [links, routes4, routes6, rules4, rules6] = await Promise.all([
    ipLines(ns, ['-o', 'link', 'show']).then((ls) =>
      ls.map((l) => (/^\d+: ([^:@]+)/.exec(l)?.[1] ?? l).trim()).sort(),
    ),
    ipLines(ns, ['-4', 'route', 'show', 'table', 'all']),
    ipLines(ns, ['-6', 'route', 'show', 'table', 'all']).then((ls) => ls.filter((l) => !l.startsWith('anycast '))),
    ipLines(ns, ['-4', 'rule', 'show']),
    ipLines(ns, ['-6', 'rule', 'show']),
  ]);
  return { links, routes4, routes6, rules4, rules6 };
}

/** Every line of a snapshot that mentions one of `needles` (e.g. lab addresses, device names). */
export function snapshotMentions(s: NetSnapshot, needles: readonly string[]): string[] {
  const all = [...s.links.map((l) => `link ${l}`), ...s.routes4, ...s.routes6, ...s.rules4, ...s.rules6];
  return all.filter((line) => needles.some((n) => line.includes(n)));
}
