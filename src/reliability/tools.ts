// Shared helpers of the reliability tests (issue 7): the C packet sender built on demand, the lb's MAC address,
// data-plane counters through the admin API, and /proc views of the l4nat process (memory, fds, capabilities).
// Layers: lab/ (namespaces, l4nat process, admin client) → this file → test/reliability-*.test.ts.
import { readFileSync, readdirSync, readlinkSync } from 'node:fs';
import { adminRequest } from '../lab/admin-client';
import type { Lab } from '../lab/lab';
import { cTool } from '../lab/c-build';

/** Builds src/reliability/c/pktgen.c once per content ($TMPDIR/l4nat-reliability-<sha>/pktgen); its path. */
export function pktgen(): Promise<string> {
  return cTool('src/reliability/c/pktgen.c', 'reliability', 'pktgen');
}

export interface PktgenReport {
  mode: 'send' | 'flood';
  sent: number;
  errors: number;
  firstError: string;
  elapsedMs: number;
  pps: number;
}

export function parsePktgen(stdout: string): PktgenReport {
  const line = stdout.trim().split('\n').reverse().find((l) => l.startsWith('{'));
  if (!line) throw new Error(`pktgen printed no report: ${stdout}`);
  return JSON.parse(line) as PktgenReport;
}

/** The MAC address of the lb's end of the client's link (where the client's frames must go). */
export async function lbMac(lab: Lab): Promise<string> {
  const out = await lab.ip('lb', ['-j', 'link', 'show', 'dev', lab.client.lbDev]);
  const mac = (JSON.parse(out) as Array<{ address: string }>)[0]?.address;
  if (!mac) throw new Error(`no MAC address for ${lab.client.lbDev} in the lb`);
  return mac;
}

export const ETH_P_IP = 0x0800;
export const ETH_P_IPV6 = 0x86dd;

/**
 * Encodes packets for `pktgen send --file`: [u16 length][u16 EtherType][bytes]..., big-endian. The EtherType is
 * the given one, else IPv4 or IPv6 by the family (not by the version nibble, which may be wrong on purpose).
 */
export function packetFile(pkts: ReadonlyArray<{ pkt: Buffer; family: 4 | 6; ethertype?: number }>): Buffer {
  return Buffer.concat(
    pkts.flatMap((p) => {
      const h = Buffer.alloc(4);
      h.writeUInt16BE(p.pkt.length, 0);
      h.writeUInt16BE(p.ethertype ?? (p.family === 6 ? ETH_P_IPV6 : ETH_P_IP), 2);
      return [h, p.pkt];
    }),
  );
}

export interface DataplaneCounters {
  total: Record<string, number>;
  drops: Record<string, number>;
  heartbeatsMs: number[];
}

/** GET /v1/counters: queue counters summed over queues, drops by reason, worker heartbeats (CLOCK_MONOTONIC ms). */
export async function counters(lab: Lab): Promise<DataplaneCounters> {
  const r = await adminRequest(lab, 'GET', '/v1/counters');
  if (r.status !== 200) throw new Error(`GET /v1/counters: ${r.status} ${JSON.stringify(r.body)}`);
  const b = r.body as { total: Record<string, number | string>; drops: Record<string, number | string>; heartbeatsMs: Array<number | string> };
  const num = (o: Record<string, number | string>): Record<string, number> => Object.fromEntries(Object.entries(o).map(([k, v]) => [k, Number(v)]));
  return { total: num(b.total), drops: num(b.drops), heartbeatsMs: b.heartbeatsMs.map(Number) };
}

/** after − before for every key of `after`. */
export function delta(before: Record<string, number>, after: Record<string, number>): Record<string, number> {
  const d: Record<string, number> = {};
  for (const [k, v] of Object.entries(after)) d[k] = v - (before[k] ?? 0);
  return d;
}

/** Only the non-zero entries (for messages). */
export function nonZero(o: Record<string, number>): Record<string, number> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== 0));
}

export interface ProcStats {
  rssKiB: number;
  fds: number;
  threads: number;
}

/** VmRSS, open fds and thread count of a process (read from the default namespace: /proc is per pid namespace). */
export function procStats(pid: number): ProcStats {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const field = (name: string): number => Number(new RegExp(`^${name}:\\s+(\\d+)`, 'm').exec(status)?.[1] ?? NaN);
  return { rssKiB: field('VmRSS'), fds: readdirSync(`/proc/${pid}/fd`).length, threads: field('Threads') };
}

/** What each fd of a process points at (for a message when fds grow). */
export function fdTargets(pid: number): string[] {
  return readdirSync(`/proc/${pid}/fd`).map((fd) => {
    try {
      return readlinkSync(`/proc/${pid}/fd/${fd}`);
    } catch {
      return '?';
    }
  });
}

export interface ThreadCaps {
  tid: number;
  name: string;
  uid: string;
  capEff: bigint;
  capPrm: bigint;
  capInh: bigint;
  capAmb: bigint;
  capBnd: bigint;
  noNewPrivs: boolean;
}

/** Capabilities and ids of every thread of a process (/proc/PID/task/TID/status). */
export function threadCaps(pid: number): ThreadCaps[] {
  return readdirSync(`/proc/${pid}/task`).map((tid) => {
    const s = readFileSync(`/proc/${pid}/task/${tid}/status`, 'utf8');
    const f = (n: string): string => new RegExp(`^${n}:\\s+(.*)$`, 'm').exec(s)?.[1]?.trim() ?? '';
    const hex = (n: string): bigint => BigInt(`0x${f(n) || '0'}`);
    return {
      tid: Number(tid),
      name: f('Name'),
      uid: f('Uid'),
      capEff: hex('CapEff'),
      capPrm: hex('CapPrm'),
      capInh: hex('CapInh'),
      capAmb: hex('CapAmb'),
      capBnd: hex('CapBnd'),
      noNewPrivs: f('NoNewPrivs') === '1',
    };
  });
}

export const CAP = { NET_ADMIN: 12, NET_RAW: 13, SYS_ADMIN: 21, DAC_OVERRIDE: 1, BPF: 39 } as const;

/** The capabilities we care to name, by number (setpriv's names: no cap_ prefix, lower case). */
const CAP_NAMES: Record<number, string> = { 0: 'chown', 1: 'dac_override', 2: 'dac_read_search', 3: 'fowner', 5: 'kill', 6: 'setgid', 7: 'setuid', 10: 'net_bind_service', 12: 'net_admin', 13: 'net_raw', 21: 'sys_admin', 23: 'sys_nice', 24: 'sys_resource', 38: 'perfmon', 39: 'bpf' };

/** Names of the capabilities in a mask (others as cap_N). */
export function capNames(mask: bigint): string[] {
  const out: string[] = [];
  for (let i = 0; i < 64; i++) if ((mask >> BigInt(i)) & 1n) out.push(CAP_NAMES[i] ?? `cap_${i}`);
  return out;
}

/** The mask of capabilities named as capNames names them. */
export function capMask(names: readonly string[]): bigint {
  let m = 0n;
  for (const n of names) {
    const bit = Object.entries(CAP_NAMES).find(([, v]) => v === n)?.[0];
    if (bit === undefined) throw new Error(`capMask: unknown capability ${JSON.stringify(n)}`);
    m |= 1n << BigInt(bit);
  }
  return m;
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Percentile (0..100) of a list of numbers (nearest rank); NaN for an empty list. */
export function percentile(xs: readonly number[], p: number): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))]!;
}
