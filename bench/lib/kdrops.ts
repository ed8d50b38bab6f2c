// Where the kernel dropped packets: interface drop counters in the lb (a TUN whose reader falls behind drops
// at its queue: tx_dropped of l4nat0), UDP socket errors in every namespace (a sink that falls behind:
// RcvbufErrors), and the per-CPU backlog drops of the machine (/proc/net/softnet_stat, where veths queue).
// Used to tell a balancer's loss from the machine's. Layers: src/lab (exec in namespaces) → this file →
// extras.ts.
import { readFileSync } from 'node:fs';
import type { Lab } from '../../src/lab/lab';

export type DropCounters = Record<string, number>;

interface IpLinkStats {
  ifname: string;
  stats64?: { rx?: { dropped?: number }; tx?: { dropped?: number } };
}

/** `/proc/net/snmp` → the Udp line's counters that mean loss. */
export function parseUdpSnmp(text: string): Record<string, number> {
  const lines = text.split('\n').filter((l) => l.startsWith('Udp:'));
  if (lines.length < 2) return {};
  const keys = lines[0]!.split(/\s+/).slice(1);
  const vals = lines[1]!.split(/\s+/).slice(1).map(Number);
  const out: Record<string, number> = {};
  keys.forEach((k, i) => {
    if (['InErrors', 'RcvbufErrors', 'SndbufErrors', 'NoPorts'].includes(k)) out[k] = vals[i] ?? 0;
  });
  return out;
}

/** Sum of the "dropped" column (2nd) of /proc/net/softnet_stat over all CPUs (hex fields). */
export function parseSoftnetDropped(text: string): number {
  let sum = 0;
  for (const line of text.split('\n')) {
    const f = line.trim().split(/\s+/);
    if (f.length >= 2) sum += parseInt(f[1]!, 16) || 0;
  }
  return sum;
}

export async function readDrops(lab: Lab): Promise<DropCounters> {
  const out: DropCounters = {};
  const links = JSON.parse((await lab.exec('lb', 'ip', ['-s', '-j', 'link', 'show'])).stdout) as IpLinkStats[];
  for (const l of links) {
    out[`lb ${l.ifname} rx_dropped`] = l.stats64?.rx?.dropped ?? 0;
    out[`lb ${l.ifname} tx_dropped`] = l.stats64?.tx?.dropped ?? 0;
  }
  for (const role of ['client', 'lb', ...lab.backends.map((b) => b.role)]) {
    const udp = parseUdpSnmp((await lab.exec(role, 'cat', ['/proc/net/snmp'])).stdout);
    for (const [k, v] of Object.entries(udp)) out[`${role} Udp ${k}`] = v;
  }
  try {
    out['machine softnet backlog dropped'] = parseSoftnetDropped(readFileSync('/proc/net/softnet_stat', 'utf8'));
  } catch {
    // Not available: left out.
  }
  return out;
}
