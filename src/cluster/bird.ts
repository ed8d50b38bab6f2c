// Announcing through BIRD 2: l4nat writes one include file of `protocol static` blocks and asks the running
// daemon to re-read its configuration (`birdc configure`). Layers: options.ts (settings) → this file (render,
// write, birdc) → index.ts (what to announce, when).
//
//   protocol static l4nat_vip4 { ipv4; check link; route 10.0.0.10/32 via "l4nat0"; }   # towards the router
//   protocol static l4nat_ret4 { ipv4; check link; route 0.0.0.0/0 via "l4nat0"; }      # towards the backends
//
// Every route goes "via" the TUN device and `check link` makes BIRD drop it while the device has no carrier. A TUN
// has carrier only while a process holds one of its queues open, so a SIGKILLed l4nat (persistent TUN, no reader)
// is withdrawn by BIRD itself within milliseconds, with nobody's help. Everything else (no healthy backend, a wedged
// worker, the start of a stop, an upstream session down) is l4nat rewriting the file. The file outlives both
// processes: a restarted BIRD reads the last state l4nat wrote, and a restarted l4nat rewrites it first thing.
// The operator's bird.conf includes the file and exports `proto = "l4nat_vip4"` to the routers and
// `proto = "l4nat_ret4"` to the backends (docs/scale-out.md).
import { execFile } from 'child_process';
import { mkdirSync, renameSync, writeFileSync, readFileSync } from 'fs';
import { dirname } from 'path';
import { BIRD_PROTOCOLS, type BgpOptions } from './options';

export interface Announcement {
  tun: string;
  vips: Array<{ addr: string; family: 4 | 6 }>;
  returnRoutes: Array<{ prefix: string; family: 4 | 6 }>;
}

const IFNAME = /^[A-Za-z0-9_.-]{1,15}$/;

/** The include file's text. Always all four protocols (possibly empty), so the operator's filters always match. */
export function renderInclude(a: Announcement, why: { vips: string; ret: string }): string {
  if (!IFNAME.test(a.tun)) throw new TypeError(`tun must be an interface name, got ${JSON.stringify(a.tun)}`);
  const block = (name: string, fam: 4 | 6, prefixes: string[], comment: string): string => {
    const routes = prefixes.map((p) => `  route ${p} via "${a.tun}";\n`).join('');
    return `# ${comment}\nprotocol static ${name} {\n  ${fam === 4 ? 'ipv4' : 'ipv6'};\n  check link;\n${routes}}\n`;
  };
  const vip = (f: 4 | 6): string[] => a.vips.filter((v) => v.family === f).map((v) => `${v.addr}/${f === 4 ? 32 : 128}`).sort();
  const ret = (f: 4 | 6): string[] => a.returnRoutes.filter((r) => r.family === f).map((r) => r.prefix).sort();
  return (
    '# Written by l4nat (cluster.bgp.include_file); rewritten on every change, do not edit.\n' +
    '# Routes go via the TUN with `check link`: BIRD withdraws them by itself when l4nat dies (no carrier).\n' +
    block(BIRD_PROTOCOLS.vip4, 4, vip(4), `VIPs: ${why.vips}`) +
    block(BIRD_PROTOCOLS.vip6, 6, vip(6), `VIPs: ${why.vips}`) +
    block(BIRD_PROTOCOLS.ret4, 4, ret(4), `return routes: ${why.ret}`) +
    block(BIRD_PROTOCOLS.ret6, 6, ret(6), `return routes: ${why.ret}`)
  );
}

export interface BirdcResult {
  ok: boolean;
  output: string;
}

/** Runs birdc against the configured socket (no shell). Never rejects. */
export function birdc(opts: Pick<BgpOptions, 'birdc' | 'socket'>, args: string[], timeoutMs = 5_000): Promise<BirdcResult> {
  return new Promise((resolve) => {
    execFile(opts.birdc, ['-s', opts.socket, ...args], { timeout: timeoutMs, encoding: 'utf8' }, (err, stdout, stderr) => {
      const output = `${stdout ?? ''}${stderr ?? ''}`.trim();
      resolve({ ok: !err, output: err && !output ? err.message : output });
    });
  });
}

/** `birdc configure` succeeded: BIRD prints "Reconfigured" or "Reconfiguration in progress". */
export function configureSucceeded(output: string): boolean {
  return /^Reconfigur(ed|ation in progress)/m.test(output);
}

/** Protocol name -> state ("up", "down", "start", ...) and BGP info ("Established", "Active", ...) from `show protocols`. */
export function parseProtocols(output: string): Map<string, { state: string; info: string }> {
  const out = new Map<string, { state: string; info: string }>();
  for (const line of output.split('\n')) {
    // Name       Proto      Table      State  Since         Info
    const m = /^(\S+)\s+(\S+)\s+(\S+)\s+(up|down|start|stop|flush)\s+(\S+)\s*(.*)$/.exec(line);
    if (m && m[1] !== 'Name') out.set(m[1], { state: m[4], info: m[6].trim() });
  }
  return out;
}

/** Writes the include file (atomically) and reconfigures BIRD when the text changed or the last attempt failed. */
export class BirdWriter {
  private applied: string | undefined;
  private inflight: Promise<BirdcResult> | null = null;
  lastError: string | null = null;
  configures = 0;

  constructor(readonly opts: BgpOptions) {}

  /** The text currently in the file, if any (for tests and `status`). */
  current(): string | undefined {
    try {
      return readFileSync(this.opts.includeFile, 'utf8');
    } catch {
      return undefined;
    }
  }

  /** Makes BIRD announce `text`; resolves with birdc's answer (not rejected: the caller retries next round). */
  async apply(text: string, force = false): Promise<BirdcResult> {
    while (this.inflight) await this.inflight.catch(() => undefined);
    if (!force && this.applied === text) return { ok: true, output: 'unchanged' };
    const run = (async (): Promise<BirdcResult> => {
      mkdirSync(dirname(this.opts.includeFile), { recursive: true });
      const tmp = `${this.opts.includeFile}.tmp-${process.pid}`;
      writeFileSync(tmp, text, { mode: 0o644 });
      renameSync(tmp, this.opts.includeFile); // BIRD never reads half a file
      const r = await birdc(this.opts, ['configure']);
      this.configures++;
      const ok = r.ok && configureSucceeded(r.output);
      if (ok) {
        this.applied = text;
        this.lastError = null;
      } else {
        this.applied = undefined; // retried next round; the file already holds `text` for a BIRD that starts later
        this.lastError = r.output.split('\n').slice(-2).join(' ');
      }
      return { ok, output: r.output };
    })();
    this.inflight = run;
    try {
      return await run;
    } finally {
      this.inflight = null;
    }
  }

  async protocols(): Promise<Map<string, { state: string; info: string }> | null> {
    const r = await birdc(this.opts, ['show', 'protocols'], 2_000);
    return r.ok ? parseProtocols(r.output) : null;
  }
}
