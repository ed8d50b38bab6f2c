// What a test needs from the machine (root, /dev/net/tun, a built l4nat, commands from Debian packages), and what
// happens when something is missing: on a developer's machine the test is skipped with the reason; under CI=true
// it fails, because CI installs everything (scripts/install-deps.sh, then `npm test` builds l4nat), so a skip
// there would hide a missing install step. Every test that skips for a missing tool goes through here.
// Layers: src/lab/l4nat-process.ts (repoRoot, l4natUnavailable) → this file → test/*.test.ts.
import { existsSync } from 'node:fs';
import path from 'node:path';
import { l4natUnavailable, repoRoot } from '../../src/lab/l4nat-process';

/** The Debian package that brings each command the tests run (all in scripts/install-deps.sh). */
const PACKAGE_OF: Readonly<Record<string, string>> = {
  ip: 'iproute2',
  ss: 'iproute2',
  sysctl: 'procps',
  gcc: 'build-essential',
  tcpdump: 'tcpdump',
  haproxy: 'haproxy',
  iperf3: 'iperf3',
  nft: 'nftables',
  bird: 'bird2',
  birdc: 'bird2',
  ethtool: 'ethtool',
  setpriv: 'util-linux',
  chromium: 'chromium',
};

/** The Debian package that brings each C header the tests compile against. */
const HEADER_PACKAGE: Readonly<Record<string, string>> = {
  'seccomp.h': 'libseccomp-dev',
};

export interface Needs {
  /** Root (network namespaces, TUN, captures). Default true. */
  root?: boolean;
  /** /dev/net/tun. Default: what `root` is. */
  tun?: boolean;
  /** A built l4nat: bin/l4nat.js, dist/src/cli/main.js and the addon build/Release/l4nat.node. Default: what `root` is. */
  l4nat?: boolean;
  /** Commands that must be on PATH (keys of the package list above, or any other). */
  commands?: readonly string[];
  /** C headers that must be in /usr/include (keys of the header list above, or any other). */
  headers?: readonly string[];
}

function onPath(cmd: string): boolean {
  const dirs = [...(process.env.PATH ?? '').split(':'), '/usr/sbin', '/sbin'];
  return dirs.some((d) => d !== '' && existsSync(path.join(d, cmd)));
}

/** What is missing for `needs`, as a skip reason, or null when nothing is. */
export function missingFor(needs: Needs = {}): string | null {
  const root = needs.root ?? true;
  if (root && (typeof process.getuid !== 'function' || process.getuid() !== 0)) return 'needs root (network namespaces, TUN)';
  if ((needs.tun ?? root) && !existsSync('/dev/net/tun')) return 'needs /dev/net/tun (the tun kernel module)';
  if (needs.l4nat ?? root) {
    const l4 = l4natUnavailable();
    if (l4 !== null) return `needs a built l4nat: ${l4} (npm run build)`;
    const addon = path.join(repoRoot(), 'build', 'Release', 'l4nat.node');
    if (!existsSync(addon)) return `needs the data-plane addon: ${addon} is missing (npx node-gyp rebuild)`;
  }
  const absent = [
    ...(needs.commands ?? []).filter((c) => !onPath(c)).map((c) => [c, PACKAGE_OF[c] ?? c]),
    ...(needs.headers ?? []).filter((h) => !existsSync(path.join('/usr/include', h))).map((h) => [h, HEADER_PACKAGE[h] ?? h]),
  ];
  if (absent.length > 0) {
    const pkgs = [...new Set(absent.map(([, pkg]) => pkg))];
    return `needs ${absent.map(([what]) => what).join(', ')} (Debian ${pkgs.length > 1 ? 'packages' : 'package'} ${pkgs.join(', ')}: bash scripts/install-deps.sh)`;
  }
  return null;
}

/** Whether this run is CI's (CI=true in its environment). */
export function underCI(env: NodeJS.ProcessEnv = process.env): boolean {
  return env.CI === 'true';
}

/**
 * A skip reason as node:test takes it: the reason itself (the test is skipped), false when there is none, and
 * under CI=true a thrown Error instead of a skip, which fails the test file with the reason.
 */
export function skipUnlessCI(reason: string | false | null, env: NodeJS.ProcessEnv = process.env): string | false {
  if (reason === false || reason === null) return false;
  if (underCI(env)) {
    throw new Error(`CI=true, and this test ${reason}: under CI a missing tool is a missing install step (scripts/install-deps.sh, npm test's build), not a reason to skip`);
  }
  return reason;
}

/** The skip option of a test that needs `needs`: skipUnlessCI(missingFor(needs)). */
export function skipUnless(needs: Needs = {}): string | false {
  return skipUnlessCI(missingFor(needs));
}
