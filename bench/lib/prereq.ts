// What the benchmark needs, checked before anything is built. It installs nothing: it says what is missing
// and how to get it. Layers: this file → run.ts.
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { l4natUnavailable } from '../../src/lab/l4nat-process';
import type { BenchOptions } from './options';

export interface Missing {
  what: string;
  fix: string;
  /** false: the benchmark runs without it and leaves out what needs it. */
  required: boolean;
}

function hasCommand(cmd: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** C sources under `dir` (not its tests) modified after `mtimeMs`. */
function newerSources(dir: string, mtimeMs: number): string[] {
  const out: string[] = [];
  const walk = (d: string): void => {
    let entries;
    try {
      entries = readdirSync(d, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) {
        if (e.name !== 'test') walk(p);
      } else if (/\.(c|h)$/.test(e.name) && statSync(p).mtimeMs > mtimeMs) {
        out.push(path.relative(path.dirname(dir), p));
      }
    }
  };
  walk(dir);
  return out;
}

/** Everything missing for these options; an empty list means go. */
export function checkPrerequisites(opts: BenchOptions, root: string): Missing[] {
  const missing: Missing[] = [];
  if (typeof process.getuid === 'function' && process.getuid() !== 0) {
    missing.push({ what: 'root privileges (network namespaces, TUN, nftables)', fix: 'run as root, e.g. `sudo npm run bench`', required: true });
  }
  const deps = 'bash scripts/install-deps.sh (Debian packages)';
  const need: [string, string, boolean][] = [
    ['ip', `iproute2: ${deps}`, true],
    ['ss', `iproute2: ${deps}`, true],
    ['sysctl', `procps: ${deps}`, true],
    ['gcc', `build-essential: ${deps} (compiles bench/tools/benchtool.c)`, true],
    ['iperf3', `iperf3: ${deps}`, true],
  ];
  if (opts.variants.includes('nft-dnat')) need.push(['nft', `nftables: ${deps}, or drop nft-dnat from --variants`, true]);
  if (opts.variants.includes('haproxy')) need.push(['haproxy', `haproxy: ${deps}, or drop haproxy from --variants`, true]);
  if (opts.extras.has('real-nic')) {
    need.push(['ethtool', 'ethtool: `apt-get install ethtool`; without it the real-NIC variant is left out (or --skip real-nic)', false]);
  }
  for (const [cmd, fix, required] of need) if (!hasCommand(cmd)) missing.push({ what: `the \`${cmd}\` command`, fix, required });

  const l4 = l4natUnavailable(root);
  if (l4 !== null) missing.push({ what: `a built l4nat (${l4})`, fix: 'npm install && npm run build', required: true });
  const addon = path.join(root, 'build', 'Release', 'l4nat.node');
  if (!existsSync(addon)) missing.push({ what: `the data-plane addon ${addon}`, fix: 'npm install (runs node-gyp rebuild)', required: true });
  else {
    const stale = newerSources(path.join(root, 'native'), statSync(addon).mtimeMs);
    if (stale.length > 0) {
      missing.push({
        what: `an up-to-date addon: ${stale.slice(0, 3).join(', ')}${stale.length > 3 ? ', ...' : ''} changed after ${path.relative(root, addon)} was built (the benchmark would measure the old data plane)`,
        fix: 'npx node-gyp rebuild',
        required: false,
      });
    }
  }
  if (opts.extras.has('maglev') && !existsSync(path.join(root, 'dist', 'bench', 'maglev-build.js'))) {
    missing.push({ what: 'dist/bench/maglev-build.js', fix: 'npx tsc -p tsconfig.json', required: true });
  }
  if (!existsSync('/dev/net/tun')) missing.push({ what: '/dev/net/tun', fix: 'modprobe tun (or a kernel with CONFIG_TUN)', required: true });
  try {
    const cc = readFileSync('/proc/sys/net/ipv4/tcp_available_congestion_control', 'utf8');
    if (!/\bcubic\b/.test(cc) && !hasCommand('modprobe')) {
      missing.push({ what: 'TCP cubic congestion control (iperf3 -C cubic)', fix: 'modprobe tcp_cubic', required: true });
    }
  } catch {
    // Not Linux: the root and /dev/net/tun checks already say so.
  }
  return missing;
}

export function formatMissing(missing: readonly Missing[]): string {
  return missing.map((m) => `  ${m.required ? 'missing' : 'optional'}: ${m.what}\n      fix: ${m.fix}`).join('\n');
}
