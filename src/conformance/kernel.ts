// Kernel-side evidence from inside a lab namespace: SNMP/netstat counters (/proc/net/{netstat,snmp,snmp6} are
// per network namespace: they show the counters of the namespace of the process that reads them), the
// C helper (tcpkit) built on demand, and sysctls.
// Layers: lab.ts (exec in namespaces) → this file → scenario.ts, checks/*.ts.
import type { Lab } from '../lab/lab';
import { cTool } from '../lab/c-build';

/** Counters by "Group.Name" (e.g. "TcpExt.TCPFastOpenPassive", "Icmp.InDestUnreachs", "Icmp6.InPktTooBigs"). */
export type Counters = Record<string, number>;

/** Parses the header/value line pairs of /proc/net/netstat and /proc/net/snmp ("TcpExt: A B\nTcpExt: 1 2"). */
export function parsePairedCounters(text: string): Counters {
  const out: Counters = {};
  const lines = text.split('\n').filter((l) => l.trim() !== '');
  for (let i = 0; i + 1 < lines.length; i += 2) {
    const [g1, ...names] = lines[i]!.trim().split(/\s+/);
    const [g2, ...values] = lines[i + 1]!.trim().split(/\s+/);
    if (g1 === undefined || g1 !== g2) continue;
    const group = g1.replace(/:$/, '');
    names.forEach((n, k) => {
      const v = Number(values[k]);
      if (Number.isFinite(v)) out[`${group}.${n}`] = v;
    });
  }
  return out;
}

/** Parses /proc/net/snmp6 ("Icmp6InPktTooBigs 3" per line) into "Icmp6.InPktTooBigs" style keys. */
export function parseSnmp6(text: string): Counters {
  const out: Counters = {};
  for (const line of text.split('\n')) {
    const m = /^(Ip6|Icmp6|Udp6|UdpLite6)(\w+)\s+(\d+)$/.exec(line.trim());
    if (m) out[`${m[1]}.${m[2]}`] = Number(m[3]);
  }
  return out;
}

/** Every counter of a role's namespace. */
export async function readCounters(lab: Lab, role: string): Promise<Counters> {
  const { stdout } = await lab.exec(role, 'sh', ['-c', 'cat /proc/net/netstat /proc/net/snmp; echo ===snmp6===; cat /proc/net/snmp6 2>/dev/null || true']);
  const [paired, v6 = ''] = stdout.split('===snmp6===\n');
  return { ...parsePairedCounters(paired!), ...parseSnmp6(v6) };
}

/** after - before for the named counters (missing counts as 0). */
export function counterDelta(before: Counters, after: Counters, names: readonly string[]): Counters {
  const d: Counters = {};
  for (const n of names) d[n] = (after[n] ?? 0) - (before[n] ?? 0);
  return d;
}

/** Sums the same counters over several roles' namespaces. */
export async function readCountersSum(lab: Lab, roles: readonly string[]): Promise<Counters> {
  const all = await Promise.all(roles.map((r) => readCounters(lab, r)));
  const sum: Counters = {};
  for (const c of all) for (const [k, v] of Object.entries(c)) sum[k] = (sum[k] ?? 0) + v;
  return sum;
}

/** Builds src/conformance/c/tcpkit.c once per content (cached in $TMPDIR/l4nat-conformance-<sha>/tcpkit); its path. */
export function tcpkit(): Promise<string> {
  return cTool('src/conformance/c/tcpkit.c', 'conformance', 'tcpkit');
}
