// The active-flow counts' sweep (issue 17; native/core/flow_table.h): once a second, a slice of the flow table is
// swept of entries that expired silently (idle past their timeout, never closed), which takes them out of the
// counts bounded load and max_flows decide by. The slice is a quarter of the table, so the whole table is swept
// every SWEEP_PASS_SECONDS seconds: an idle flow leaves the counts at most its timeout + the sweep's 2 s margin +
// 4 s after its last packet. A slice is at most SWEEP_MAX_SLICE entries (a few milliseconds of the JS thread),
// so a table of more than 4 × that is swept in capacity / SWEEP_MAX_SLICE seconds instead.
import type { ControlState } from './state';

export const SWEEP_PASS_SECONDS = 4;
export const SWEEP_MAX_SLICE = 1 << 20;

/** The entries a one-second slice sweeps for a table of `capacity`. */
export function sweepSlice(capacity: number): number {
  return Math.max(1, Math.min(SWEEP_MAX_SLICE, Math.ceil(capacity / SWEEP_PASS_SECONDS)));
}

export class FlowSweeper {
  private timer: NodeJS.Timeout | undefined;
  private cursor = 0;
  /** Entries freed since start (for the logs and tests). */
  freed = 0;

  constructor(private readonly state: ControlState) {}

  /** Starts the once-a-second sweep, if the data plane can sweep. */
  start(): void {
    const dp = this.state.balancer.dp;
    if (this.timer || !dp.sweepFlows || dp.flowCapacity === undefined) return;
    this.timer = setInterval(() => this.tick(), 1000);
    this.timer.unref();
  }

  /** One slice: from where the last one stopped, around to the start at the end of the table. */
  tick(): void {
    const dp = this.state.balancer.dp;
    if (!dp.sweepFlows || dp.flowCapacity === undefined) return;
    try {
      const r = dp.sweepFlows(this.cursor, sweepSlice(dp.flowCapacity));
      this.freed += r.freed;
      this.cursor = r.next ?? 0;
    } catch {
      this.stop(); // the data plane closed
    }
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }
}
