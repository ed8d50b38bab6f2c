// /proc views of the l4nat process, read from the default namespace (/proc is per pid namespace, not per network
// namespace): memory, open fds and threads over time, and each thread's ids and capabilities.
// Layers: nothing below → this file → test/reliability-*.test.ts, test/systemd-sandbox-netns.test.ts.
import { readFileSync, readdirSync, readlinkSync } from 'node:fs';

export interface ProcStats {
  rssKiB: number;
  fds: number;
  threads: number;
}

/** VmRSS, open fds and thread count of a process. */
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
