// An interval that runs only while there is something to sample (the passive check, drains), unref'd so that it
// never keeps the process alive on its own.
export class Ticker {
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly everyMs: number,
    private readonly tick: () => void,
  ) {}

  /** Starts the interval if `wanted` (and `mayStart`) and it is not running; stops it if not `wanted`. */
  update(wanted: boolean, mayStart = true): void {
    if (wanted && !this.timer && mayStart) {
      this.timer = setInterval(this.tick, this.everyMs);
      this.timer.unref();
    } else if (!wanted && this.timer) {
      this.stop();
    }
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  get running(): boolean {
    return this.timer !== undefined;
  }
}
