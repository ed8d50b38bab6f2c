// What the machine is and what its CPUs do: /proc readers for the benchmark. Layers: /proc → this file →
// run.ts. All lab namespaces share one kernel, so /proc/stat (not namespaced) is the whole machine's CPU time,
// and the balancer's /proc/PID/stat counts all of its threads.
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import os from 'node:os';

/** Clock ticks per second of /proc/stat and /proc/PID/stat (USER_HZ; 100 on every Linux architecture we run). */
let clkTck: number | null = null;
export function clockTicks(): number {
  if (clkTck === null) {
    try {
      clkTck = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      clkTck = 100;
    }
  }
  return clkTck;
}

/** The aggregate "cpu" line of /proc/stat, in ticks. */
export interface CpuTimes {
  user: number;
  nice: number;
  system: number;
  idle: number;
  iowait: number;
  irq: number;
  softirq: number;
  steal: number;
  total: number;
}

export function parseProcStat(text: string): CpuTimes {
  const line = text.split('\n').find((l) => l.startsWith('cpu '));
  if (line === undefined) throw new Error('/proc/stat has no aggregate "cpu" line');
  const f = line.trim().split(/\s+/).slice(1).map(Number);
  const [user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0, steal = 0] = f;
  // guest and guest_nice (fields 9, 10) are already included in user and nice.
  return { user, nice, system, idle, iowait, irq, softirq, steal, total: user + nice + system + idle + iowait + irq + softirq + steal };
}

export function readCpuTimes(): CpuTimes {
  return parseProcStat(readFileSync('/proc/stat', 'utf8'));
}

/** utime + stime of a process (all its threads), in ticks; null when it is gone. */
export function parsePidStat(text: string): number {
  // The command name (field 2) may contain spaces and parentheses: fields after the last ')' are fixed.
  const rest = text.slice(text.lastIndexOf(')') + 2).split(' ');
  // rest[0] is field 3 (state); utime and stime are fields 14 and 15.
  return Number(rest[11]) + Number(rest[12]);
}

export function readPidTicks(pid: number): number | null {
  try {
    return parsePidStat(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return null;
  }
}

/** VmRSS and VmHWM of a process in KiB; null when it is gone. */
export function readMemory(pid: number): { rssKiB: number; hwmKiB: number } | null {
  try {
    const text = readFileSync(`/proc/${pid}/status`, 'utf8');
    const field = (name: string): number => Number(new RegExp(`^${name}:\\s+(\\d+)\\s+kB`, 'm').exec(text)?.[1] ?? NaN);
    return { rssKiB: field('VmRSS'), hwmKiB: field('VmHWM') };
  } catch {
    return null;
  }
}

/** PF_KTHREAD in the flags field of /proc/PID/stat (include/linux/sched.h). */
const PF_KTHREAD = 0x00200000;

/** Inode numbers of named network namespaces (what /proc/PID/ns/net of their processes points to). */
export function netnsInodes(names: readonly string[]): Set<number> {
  const out = new Set<number>();
  for (const n of names) {
    try {
      out.add(statSync(`/run/netns/${n}`).ino);
    } catch {
      // Gone: nothing of it to exclude.
    }
  }
  return out;
}

/**
 * CPU ticks (utime + stime) of every user-space process outside the given network namespaces, except this
 * one, by pid: the machine's other work (other test runs, builds) that competes with the lab for the CPUs.
 */
export function foreignTicks(labNetns: ReadonlySet<number>): Map<number, number> {
  const out = new Map<number, number>();
  let pids: string[];
  try {
    pids = readdirSync('/proc').filter((d) => /^\d+$/.test(d));
  } catch {
    return out;
  }
  for (const d of pids) {
    const pid = Number(d);
    if (pid === process.pid) continue;
    try {
      const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const rest = text.slice(text.lastIndexOf(')') + 2).split(' ');
      if ((Number(rest[6]) & PF_KTHREAD) !== 0) continue; // field 9: flags
      if (labNetns.has(statSync(`/proc/${pid}/ns/net`).ino)) continue;
      out.set(pid, Number(rest[11]) + Number(rest[12]));
    } catch {
      // Exited meanwhile.
    }
  }
  return out;
}

/** CPU use over an interval: the balancer in % of one core, the rest in % of the whole machine. */
export interface CpuSample {
  seconds: number;
  /** null when the variant has no balancer process (direct, nft-dnat). */
  balancerPctCore: number | null;
  softirqPct: number;
  /** Everything but idle and iowait (user, system, irq, softirq, steal). */
  busyPct: number;
  idlePct: number;
  stealPct: number;
  /** User-space processes outside the lab (see foreignTicks), when measured. A lower bound: exits are missed. */
  foreignPct?: number;
}

export class CpuMeter {
  private readonly t0 = process.hrtime.bigint();
  private readonly cpu0 = readCpuTimes();
  private readonly pid0: number | null;
  private readonly foreign0: Map<number, number> | null;

  /** `labNetns`: the lab's namespaces, to measure the CPU taken by everything else (optional). */
  constructor(
    private readonly pid: number | null,
    private readonly labNetns: ReadonlySet<number> | null = null,
  ) {
    this.pid0 = pid === null ? null : readPidTicks(pid);
    this.foreign0 = labNetns === null ? null : foreignTicks(labNetns);
  }

  stop(): CpuSample {
    const cpu1 = readCpuTimes();
    const seconds = Number(process.hrtime.bigint() - this.t0) / 1e9;
    const d = (k: keyof CpuTimes): number => cpu1[k] - this.cpu0[k];
    const total = Math.max(1, d('total'));
    const pct = (x: number): number => (100 * x) / total;
    let balancer: number | null = null;
    if (this.pid !== null && this.pid0 !== null) {
      const p1 = readPidTicks(this.pid);
      if (p1 !== null) balancer = (100 * (p1 - this.pid0)) / clockTicks() / seconds;
    }
    let foreignPct: number | undefined;
    if (this.labNetns !== null && this.foreign0 !== null) {
      let ticks = 0;
      for (const [pid, t] of foreignTicks(this.labNetns)) ticks += Math.max(0, t - (this.foreign0.get(pid) ?? 0));
      foreignPct = pct(ticks);
    }
    return {
      seconds,
      ...(foreignPct !== undefined ? { foreignPct } : {}),
      balancerPctCore: balancer,
      softirqPct: pct(d('softirq')),
      busyPct: pct(total - d('idle') - d('iowait')),
      idlePct: pct(d('idle') + d('iowait')),
      stealPct: pct(d('steal')),
    };
  }
}

export interface MachineInfo {
  date: string;
  kernel: string;
  cpuModel: string;
  cores: number;
  memoryGiB: number;
  node: string;
}

export function machineInfo(now = new Date()): MachineInfo {
  let cpuModel = os.cpus()[0]?.model?.trim() ?? 'unknown';
  try {
    const m = /^model name\s*:\s*(.+)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'));
    if (m) cpuModel = m[1]!.trim();
  } catch {
    // Keep os.cpus()'s answer.
  }
  return {
    date: now.toISOString().slice(0, 10),
    kernel: os.release(),
    cpuModel,
    cores: os.cpus().length,
    memoryGiB: Math.round(os.totalmem() / 2 ** 30),
    node: process.version,
  };
}

/** First line of a command's output (versions for the report); null when it cannot run. */
export function commandLine(cmd: string, args: readonly string[]): string | null {
  try {
    const out = execFileSync(cmd, args as string[], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 5_000 });
    return out.split('\n')[0]!.trim() || null;
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string };
    const text = `${e.stdout ?? ''}${e.stderr ?? ''}`.split('\n')[0]?.trim();
    return text ? text : null;
  }
}
