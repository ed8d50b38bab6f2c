// The data-plane workers' scheduling priority. Kernel forwarding (direct routing, nftables DNAT) runs in
// softirq, ahead of every process on the CPU; a TUN balancer's forwarding runs in its worker threads, which
// the scheduler would otherwise share out like any other thread. On a host whose CPUs are also busy with
// other work (on the benchmark's 2 vCPUs: the client and the servers), an equal share leaves packets waiting
// in the TUN queue behind the very threads that produce and consume them. So the workers run at a lower
// nice value (a larger share, and the first turn when a packet wakes them), while the JavaScript thread, the
// health checks and the admin API stay at the process's own.
//
// The workers are found by name (native/worker.c names them l4nat-q0, l4nat-q1, ...): nice is per thread on
// Linux, and setpriority(PRIO_PROCESS, tid) (os.setPriority) sets one thread's.
import { readdirSync, readFileSync } from 'node:fs';
import { setPriority } from 'node:os';

/** The default: a weight of 9,548 against 1,024 at nice 0 under the kernel's fair scheduler. */
export const DEFAULT_WORKER_NICE = -10;

/** What a lower nice value needs, for the warning when it is refused. */
export const WORKER_NICE_REMEDY =
  'a nice value below 0 needs CAP_SYS_NICE or an RLIMIT_NICE that allows it (systemd: LimitNICE=, which the shipped unit sets to -10)';

/** Thread ids of this process's data-plane workers. */
export function workerThreadIds(taskDir = '/proc/self/task'): number[] {
  const out: number[] = [];
  for (const tid of readdirSync(taskDir)) {
    let comm: string;
    try {
      comm = readFileSync(`${taskDir}/${tid}/comm`, 'utf8').trim();
    } catch {
      continue; // a thread that ended meanwhile
    }
    if (/^l4nat-q\d+$/.test(comm)) out.push(Number(tid));
  }
  return out.sort((a, b) => a - b);
}

/**
 * Sets every worker thread to `nice` (-20..19; 0 leaves them as they are). Throws the first refusal as a
 * Node-style error (code EACCES or EPERM), after setting none or some: the caller logs it and forwarding goes
 * on at the default priority.
 */
export function setWorkerNice(nice: number, tids?: readonly number[]): number[] {
  if (!Number.isInteger(nice) || nice < -20 || nice > 19) throw new RangeError(`worker nice must be an integer from -20 to 19, got ${String(nice)}`);
  if (nice === 0) return [];
  const list = tids ?? workerThreadIds();
  for (const tid of list) setPriority(tid, nice);
  return [...list];
}

/** A thread's nice value, from /proc/PID/task/TID/stat (field 19; the name in field 2 may hold spaces). */
export function niceOf(pid: number, tid: number): number {
  const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
  return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[16]);
}
