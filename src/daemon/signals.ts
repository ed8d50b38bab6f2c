// The signals `l4nat up` takes, installed once for the whole run (src/daemon/up.ts).
/**
 * SIGINT/SIGTERM (counted, so a second one is seen), SIGUSR2 (handover: exit keeping the device, routes and
 * rules) and SIGHUP, installed once for the whole run; and the live handover's request (POST /v1/restart?live=true,
 * src/daemon/live-handover.ts), which comes by the admin API, not by a signal: Node keeps SIGUSR1 for its inspector.
 */
export class SignalWatch {
  count = 0;
  first: NodeJS.Signals | undefined;
  onHup: (() => void) | undefined;
  /** Resolves at each live handover request (a new promise after each). */
  liveHandover: Promise<'live'>;
  private resolveLive!: (s: 'live') => void;
  requestLiveHandover(): void {
    const r = this.resolveLive;
    this.liveHandover = new Promise((res) => (this.resolveLive = res));
    r('live');
  }
  private waiters: Array<(s: NodeJS.Signals) => void> = [];
  private readonly onStop = (s: NodeJS.Signals): void => {
    this.count++;
    this.first ??= s;
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f(s);
  };
  private readonly onHupSignal = (): void => this.onHup?.();

  constructor() {
    process.on('SIGINT', this.onStop);
    process.on('SIGTERM', this.onStop);
    process.on('SIGUSR2', this.onStop);
    process.on('SIGHUP', this.onHupSignal);
    this.liveHandover = new Promise((res) => (this.resolveLive = res));
  }

  /** The next stop signal (the first one, if it already came and nobody took it). */
  next(): Promise<NodeJS.Signals> {
    if (this.count > this.taken) {
      this.taken = this.count;
      return Promise.resolve(this.first as NodeJS.Signals);
    }
    return new Promise((resolve) => this.waiters.push((s) => {
      this.taken = this.count;
      resolve(s);
    }));
  }

  private taken = 0;

  close(): void {
    process.off('SIGINT', this.onStop);
    process.off('SIGTERM', this.onStop);
    process.off('SIGUSR2', this.onStop);
    process.off('SIGHUP', this.onHupSignal);
  }
}
