// systemd's notify protocol (sd_notify(3)), spoken directly: one AF_UNIX datagram per message to the path in
// $NOTIFY_SOCKET. Node's dgram has no AF_UNIX, hence unix-dgram. Messages: READY=1 once the data plane
// forwards, STATUS=... with the health summary, WATCHDOG=1 every WATCHDOG_USEC/2 while every data-plane
// worker's heartbeat is fresh (not merely while the JS loop runs: a wedged worker stops the pings and
// systemd restarts l4nat; and sent by a native thread, native/watchdog.c, so a blocked JS loop does not stop
// them), STOPPING=1 when a stop begins.
//
// Like sd_notify's unset_environment, the variables are removed from process.env once read, so the
// health-check commands l4nat runs do not talk to systemd in its name. An abstract socket ("@...") is not
// supported by unix-dgram: l4nat logs that and carries on without notifications.
import type { Logger } from '../util/log';

interface UnixDgramSocket {
  send(buf: Buffer, offset: number, length: number, path: string, cb?: (err?: Error) => void): void;
  close(): void;
  on(ev: 'error', cb: (err: Error) => void): void;
}

export interface NotifyEnv {
  NOTIFY_SOCKET?: string;
  WATCHDOG_USEC?: string;
  WATCHDOG_PID?: string;
}

/** A worker is alive if it woke up within this long (idle workers wake every 250 ms). */
export const WORKER_STALE_MS = 2_000;

export class SystemdNotifier {
  private sock: UnixDgramSocket | undefined;
  private watchdogTimer: NodeJS.Timeout | undefined;
  readonly watchdogUsec: number | undefined;
  private lastStatus = '';
  private stalledLogged = false;

  private constructor(
    readonly path: string,
    watchdogUsec: number | undefined,
    private readonly log: Logger,
  ) {
    this.watchdogUsec = watchdogUsec;
  }

  /** From the environment (and removes the variables from it); undefined when not run by systemd. */
  static fromEnv(log: Logger, env: NodeJS.ProcessEnv = process.env): SystemdNotifier | undefined {
    const path = env.NOTIFY_SOCKET;
    const usec = env.WATCHDOG_USEC;
    const wpid = env.WATCHDOG_PID;
    delete env.NOTIFY_SOCKET;
    delete env.WATCHDOG_USEC;
    delete env.WATCHDOG_PID;
    if (!path) return undefined;
    if (path.startsWith('@')) {
      log.warn({ notifySocket: path }, 'NOTIFY_SOCKET is an abstract socket, which l4nat cannot use: no READY/WATCHDOG notifications (use a path)');
      return undefined;
    }
    let watchdog: number | undefined;
    if (usec && /^\d+$/.test(usec) && Number(usec) > 0 && (!wpid || Number(wpid) === process.pid)) watchdog = Number(usec);
    const n = new SystemdNotifier(path, watchdog, log);
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const unix = require('unix-dgram') as { createSocket(type: 'unix_dgram'): UnixDgramSocket };
    n.sock = unix.createSocket('unix_dgram');
    n.sock.on('error', (err) => log.warn({ err: err.message, notifySocket: path }, 'systemd notification failed'));
    return n;
  }

  send(message: string): void {
    if (!this.sock) return;
    const buf = Buffer.from(message);
    this.sock.send(buf, 0, buf.length, this.path, (err) => {
      if (err) this.log.warn({ err: err.message, notifySocket: this.path }, 'systemd notification failed');
    });
  }

  ready(status: string): void {
    this.lastStatus = status;
    this.send(`READY=1\nMAINPID=${process.pid}\nSTATUS=${status}`);
  }

  status(status: string): void {
    if (status === this.lastStatus) return;
    this.lastStatus = status;
    this.send(`STATUS=${status}`);
  }

  stopping(status: string): void {
    this.lastStatus = status;
    this.send(`STOPPING=1\nSTATUS=${status}`);
  }

  /**
   * Pings WATCHDOG=1 every WATCHDOG_USEC/2 while `alive()` returns null; when it returns a reason, the ping
   * is skipped (and the reason logged once), so systemd's watchdog fires if it persists. With `native` (the
   * data plane's own watchdog thread, src/dataplane/native.ts startWatchdog), that thread sends the pings under the same
   * rule, so they go on while the JS event loop is blocked; this timer then only logs.
   */
  startWatchdog(alive: () => string | null, native?: (path: string, everyMs: number, staleMs: number) => void): void {
    if (!this.watchdogUsec || !this.sock) return;
    const every = Math.max(50, Math.floor(this.watchdogUsec / 2000));
    let viaNative = false;
    if (native) {
      try {
        native(this.path, every, WORKER_STALE_MS);
        viaNative = true;
      } catch (err) {
        this.log.warn({ err: (err as Error).message }, 'the data plane watchdog thread did not start: pinging from the JS loop');
      }
    }
    const tick = (): void => {
      const why = alive();
      if (why === null) {
        if (this.stalledLogged) this.log.warn('data plane workers alive again: watchdog pings resumed');
        this.stalledLogged = false;
        if (!viaNative) this.send('WATCHDOG=1');
      } else if (!this.stalledLogged) {
        this.stalledLogged = true;
        this.log.error({ reason: why }, 'data plane stalled: withholding systemd watchdog pings');
      }
    };
    tick();
    this.watchdogTimer = setInterval(tick, every);
    this.watchdogTimer.unref();
  }

  stopWatchdog(): void {
    if (this.watchdogTimer) clearInterval(this.watchdogTimer);
    this.watchdogTimer = undefined;
  }

  close(): void {
    this.stopWatchdog();
    try {
      this.sock?.close();
    } catch {
      // already closed
    }
    this.sock = undefined;
  }
}

/** null when every worker's heartbeat is fresh, else which ones are stale. */
export function workersAlive(heartbeatsMs: readonly number[], nowMs: number, staleMs = WORKER_STALE_MS): string | null {
  const stale = heartbeatsMs.map((hb, q) => ({ q, age: nowMs - hb })).filter((x) => x.age > staleMs);
  if (!heartbeatsMs.length) return 'no workers';
  return stale.length ? `worker(s) ${stale.map((x) => `${x.q} (${x.age} ms)`).join(', ')} silent for more than ${staleMs} ms` : null;
}
