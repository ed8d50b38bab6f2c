// The signals `l4nat up` takes, installed once for the whole run (src/daemon/up.ts).
/**
 * SIGINT/SIGTERM (counted, so a second one is seen), SIGUSR2 (handover: exit keeping the device, routes and
 * rules), SIGUSR1 (live handover: start the successor, leave once it forwards; src/daemon/live-handover.ts) and
 * SIGHUP, installed once for the whole run.
 */
export class SignalWatch {
  count = 0;
  first: NodeJS.Signals | undefined;
  onHup: (() => void) | undefined;
  /** Resolves at each SIGUSR1 (a new promise after each). */
  liveHandover: Promise<'SIGUSR1'>;
  private resolveLive!: (s: 'SIGUSR1') => void;
  private readonly onUsr1 = (): void => {
    const r = this.resolveLive;
    this.liveHandover = new Promise((res) => (this.resolveLive = res));
    r('SIGUSR1');
  };
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
    process.on('SIGUSR1', this.onUsr1);
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
    process.off('SIGUSR1', this.onUsr1);
  }
}
