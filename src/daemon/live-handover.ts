// The live handover (`l4nat restart --live`, POST /v1/restart?live=true): the running l4nat starts its successor itself (same program, arguments and
// environment), which attaches its own queues to the same TUN, joins the same flow table file (native/flow_file.h,
// shared), publishes its tables and starts forwarding while the old one still forwards too. Then it says
// "forwarding" on a pipe; the old one hands systemd the main PID (MAINPID=, allowed to the main process with
// NotifyAccess=main), stops and exits 0. So no moment passes without a reader on the TUN, unlike exit-and-start,
// where node's start-up is the gap. The successor waits for the old one to be gone before it opens the admin API
// (same port) and announces itself ready. If the successor fails or is not forwarding in time, the old one kills it
// and goes on forwarding: a broken upgrade does not take the service down.
import { spawn } from 'child_process';
import { readFileSync, writeSync } from 'fs';
import type { Logger } from '../util/log';

/** Set in the successor's environment: the pid of the l4nat it takes over from. */
export const HANDOVER_FROM_ENV = 'L4NAT_HANDOVER_FROM';
/** The pipe the successor reports on (its fd 3). */
const REPORT_FD = 3;
const FORWARDING = 'forwarding\n';

/** The systemd variables SystemdNotifier.fromEnv takes out of the environment, kept for the successor. */
export function systemdEnv(env: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  const out: NodeJS.ProcessEnv = {};
  for (const k of ['NOTIFY_SOCKET', 'WATCHDOG_USEC'] as const) if (env[k] !== undefined) out[k] = env[k];
  return out; // not WATCHDOG_PID: it names this process; without it the successor takes the watchdog as its own
}

/** The predecessor's pid when this l4nat was started by a live handover (removed from the environment). */
export function predecessorOf(env: NodeJS.ProcessEnv = process.env): number | undefined {
  const v = env[HANDOVER_FROM_ENV];
  delete env[HANDOVER_FROM_ENV];
  return v !== undefined && /^\d+$/.test(v) ? Number(v) : undefined;
}

/**
 * Starts the successor and waits until it forwards. Resolves with its pid, or with null (logged) when it exited,
 * failed to start or did not report within timeoutMs (then it is killed).
 */
export function startSuccessor(log: Logger, sdEnv: NodeJS.ProcessEnv, timeoutMs: number): Promise<number | null> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [...process.execArgv, ...process.argv.slice(1)], {
      env: { ...process.env, ...sdEnv, [HANDOVER_FROM_ENV]: String(process.pid) },
      stdio: ['ignore', 'inherit', 'inherit', 'pipe'],
    });
    let text = '';
    let done = false;
    const finish = (pid: number | null, why?: string): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      const pipe = child.stdio[REPORT_FD] as NodeJS.ReadableStream & { destroy(): void };
      pipe.destroy();
      child.unref();
      if (pid === null) {
        if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
        log.error({ successor: child.pid, reason: why }, `live handover failed: ${why}; this l4nat goes on forwarding`);
      }
      resolve(pid);
    };
    const timer = setTimeout(() => finish(null, `the new l4nat did not forward within ${timeoutMs} ms`), timeoutMs);
    child.once('error', (err) => finish(null, `starting the new l4nat failed: ${err.message}`));
    child.once('exit', (code, signal) => finish(null, `the new l4nat exited (${signal ?? `status ${code}`}) before it forwarded`));
    (child.stdio[REPORT_FD] as NodeJS.ReadableStream).on('data', (d: Buffer) => {
      text += d.toString();
      if (text.includes(FORWARDING)) finish(child.pid!);
    });
    log.info({ successor: child.pid }, `live handover: started the new l4nat (pid ${child.pid}); this one forwards until it does`);
  });
}

/**
 * In the successor, once its workers forward: tells the predecessor, and waits until it is gone (it closes its admin
 * API, whose port this one takes next). Throws when the predecessor is still there after timeoutMs.
 */
export async function takeOverFrom(pid: number, log: Logger, timeoutMs: number): Promise<void> {
  try {
    writeSync(REPORT_FD, FORWARDING);
  } catch (e) {
    throw new Error(`live handover: cannot report to the previous l4nat (pid ${pid}) on fd ${REPORT_FD}: ${(e as Error).message}`);
  }
  const t0 = Date.now();
  while (alive(pid)) {
    if (Date.now() - t0 > timeoutMs) throw new Error(`live handover: the previous l4nat (pid ${pid}) is still running ${timeoutMs} ms after this one took over`);
    await new Promise((r) => setTimeout(r, 5));
  }
  log.info({ predecessor: pid, waitedMs: Date.now() - t0 }, `live handover: took over from l4nat pid ${pid}`);
}

/**
 * In the predecessor, once the successor forwards: its steering program sends every packet to the successor's
 * queues (native/steering.c), so this one's queues only hold what came before. Resolves once its workers have read
 * nothing for quietMs (or after maxMs), so that detaching the queues, which drops what they hold, drops nothing.
 */
export async function drained(rxPackets: () => number, quietMs = 20, maxMs = 500): Promise<void> {
  const t0 = Date.now();
  let last = rxPackets();
  let since = Date.now();
  while (Date.now() - since < quietMs && Date.now() - t0 < maxMs) {
    await new Promise((r) => setTimeout(r, 2));
    const now = rxPackets();
    if (now !== last) {
      last = now;
      since = Date.now();
    }
  }
}

/** Running (an exited process its parent has not reaped yet is a zombie: gone for this purpose). */
function alive(pid: number): boolean {
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}
