// Host set-up, layer 3: StateWatch keeps one piece of the host's kernel state (its links' MTUs, its own
// addresses) current while l4nat runs. It reads the state, then reads it again whenever rtnetlink announces a
// change in its groups, and reports a value that differs from the last one. Reading again instead of applying
// each notification keeps it right through bursts and through lost notifications (ENOBUFS) alike.
import type { Logger } from '../util/log';
import { Rtnl, RtnlError, RtnlMonitor, type MonitorGroup } from './rtnl';

export interface StateWatchOptions<T> {
  log: Logger;
  /** What is watched, for log messages (e.g. 'link MTUs'). */
  what: string;
  groups: readonly MonitorGroup[];
  read: (nl: Rtnl) => Promise<T>;
  equal: (a: T, b: T) => boolean;
  /** Called with each new value after start() (never for the first one). Its rejection is logged. */
  onChange: (next: T, prev: T) => void | Promise<void>;
  /** Delay between the first notification and the read, coalescing bursts. */
  debounceMs: number;
}

export class StateWatch<T> {
  private readonly opts: StateWatchOptions<T>;
  private nl?: Rtnl;
  private monitor?: RtnlMonitor;
  private timer?: NodeJS.Timeout;
  private value?: T;
  /** Serializes reads and the reactions to them. */
  private chain: Promise<unknown> = Promise.resolve();

  constructor(opts: StateWatchOptions<T>) {
    if (!Number.isFinite(opts.debounceMs) || opts.debounceMs < 0) {
      throw new TypeError(`debounceMs must be a number >= 0, got ${JSON.stringify(opts.debounceMs)}`);
    }
    this.opts = opts;
  }

  /** Subscribes, then reads the first value (so no change between the two is missed) and returns it. */
  async start(): Promise<T> {
    if (this.monitor) throw new Error(`already watching ${this.opts.what}`);
    const nl = Rtnl.open({ onError: (err) => this.opts.log.error({ err }, `rtnetlink socket error (watching ${this.opts.what})`) });
    try {
      this.monitor = new RtnlMonitor(this.opts.groups, () => this.schedule(), (err) => this.onMonitorError(err));
      this.nl = nl;
      // On the chain: a notification that arrives meanwhile reads again after this first read.
      const first = this.opts.read(nl).then((v) => (this.value = v));
      this.chain = first.catch(() => undefined);
      return await first;
    } catch (err) {
      this.close();
      nl.close();
      throw err;
    }
  }

  /** The last value read. */
  get current(): T | undefined {
    return this.value;
  }

  close(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.monitor?.close();
    this.monitor = undefined;
    this.nl?.close();
    this.nl = undefined;
  }

  private onMonitorError(err: RtnlError): void {
    if (err.code === 'ENOBUFS') this.opts.log.warn(`rtnetlink notifications were lost (ENOBUFS); reading ${this.opts.what} again`);
    else this.opts.log.error({ err }, `rtnetlink notification error (watching ${this.opts.what})`);
    this.schedule();
  }

  private schedule(): void {
    if (!this.monitor || this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      const run = this.chain.then(() => this.refresh());
      this.chain = run.catch((err) => this.opts.log.error({ err }, `cannot follow ${this.opts.what}`));
    }, this.opts.debounceMs);
    this.timer.unref();
  }

  private async refresh(): Promise<void> {
    const nl = this.nl;
    if (!nl || this.value === undefined) return;
    const next = await this.opts.read(nl);
    const prev = this.value;
    if (this.opts.equal(prev, next)) return;
    this.value = next;
    await this.opts.onChange(next, prev);
  }
}
