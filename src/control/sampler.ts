// What the passive check (passive.ts) and the drains (drain.ts) share: they sample the data plane's counters on
// an interval that runs only while there is something to sample, unref'd so that it never keeps the process
// alive on its own, and skip a sample when the data plane is closed.
import type { CounterSnapshot } from '../dataplane/native';
import type { ControlState } from './state';

export abstract class CounterSampler {
  private timer: NodeJS.Timeout | undefined;

  constructor(
    protected readonly state: ControlState,
    private readonly everyMs: number,
  ) {}

  /** One sample at `now` (the timer runs it with the clock). */
  abstract sample(now?: number): void;

  /** Starts the interval if `wanted` (and `mayStart`) and it is not running; stops it if not `wanted`. */
  protected runWhile(wanted: boolean, mayStart = true): void {
    if (wanted && !this.timer && mayStart) {
      this.timer = setInterval(() => this.sample(), this.everyMs);
      this.timer.unref();
    } else if (!wanted && this.timer) {
      this.stop();
    }
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  /** Whether the timer runs. */
  get sampling(): boolean {
    return this.timer !== undefined;
  }

  /** The counters now; undefined when they cannot be read (the data plane closed): no sample then. */
  protected counters(): CounterSnapshot | undefined {
    try {
      return this.state.balancer.dp.counters();
    } catch {
      return undefined;
    }
  }
}
