// Per-slot flow-table statistics for the views (status, services, metrics, systemd STATUS, the shutdown grace).
// A table of a few pages (FLOW_SCAN_PER_CALL entries each; the default capacity is four) is counted whole
// when asked, at most once per maxAgeMs. A larger one is counted page by page, the event loop running between
// pages, so no reader walks it on the JS thread: readers get the last complete pass while the next one runs.
// The first pass runs whole (at start: the table is committed then anyway), so there is always a figure.

/** Live flow-table entries counted in one pass: per backend and service slot, not counting closed TCP entries. */
export interface FlowStats {
  total: number; // live entries, closed ones included
  closed: number; // TCP entries after RST or FIN both ways, lingering for the close timeout
  backends: Uint32Array; // by backend slot
  services: Uint32Array; // by service slot
}

export interface FlowStatsPage extends FlowStats {
  next: number | null; // where the next page starts; null: the pass reached the end of the table
}

/** Passes of at most this many pages run at once; longer ones a page per event-loop turn. */
export const WHOLE_PASS_PAGES = 4;

export class FlowStatsSweep {
  private last: { at: number; stats: FlowStats } | undefined;
  private sweeping = false;
  private pages = 0; // pages in the last complete pass
  private waiters: Array<{ after: number; resolve: (s: FlowStats | undefined) => void }> = [];

  constructor(
    private readonly page: (cursor: number) => FlowStatsPage,
    private readonly maxAgeMs: number,
    private readonly later: (fn: () => void) => void = (fn) => setImmediate(fn),
  ) {}

  /** The last complete pass, starting a new one if it is older than maxAgeMs (undefined: the table cannot be read). */
  get(now = Date.now()): FlowStats | undefined {
    if (!this.sweeping && (!this.last || now - this.last.at >= this.maxAgeMs || now < this.last.at)) this.sweep(now);
    return this.last?.stats;
  }

  /** The figures of a pass that starts now or later (the shutdown grace waits for the last flow to go). */
  fresh(now = Date.now()): Promise<FlowStats | undefined> {
    return new Promise((resolve) => {
      this.waiters.push({ after: now, resolve });
      if (!this.sweeping) this.sweep(now);
    });
  }

  private sweep(startedAt: number): void {
    this.sweeping = true;
    const atOnce = !this.last || this.pages <= WHOLE_PASS_PAGES;
    let acc: FlowStats | undefined;
    let pages = 0;
    const step = (cursor: number): void => {
      for (;;) {
        let p: FlowStatsPage;
        try {
          p = this.page(cursor);
        } catch {
          this.sweeping = false; // data plane closed: the last figures stand
          for (const w of this.waiters.splice(0)) w.resolve(undefined);
          return;
        }
        pages++;
        acc = acc ? addStats(acc, p) : { total: p.total, closed: p.closed, backends: p.backends, services: p.services };
        if (p.next === null) return this.done(startedAt, acc, pages);
        const next = p.next;
        if (!atOnce) return this.later(() => step(next));
        cursor = next;
      }
    };
    step(0);
  }

  private done(startedAt: number, stats: FlowStats, pages: number): void {
    this.last = { at: startedAt, stats };
    this.pages = pages;
    this.sweeping = false;
    const waiting = this.waiters;
    this.waiters = waiting.filter((w) => w.after > startedAt);
    for (const w of waiting) if (w.after <= startedAt) w.resolve(stats);
    if (this.waiters.length) this.sweep(Date.now());
  }
}

/** a + b, slot by slot (a's arrays are reused). */
export function addStats(a: FlowStats, b: FlowStats): FlowStats {
  for (let i = 0; i < a.backends.length && i < b.backends.length; i++) a.backends[i] += b.backends[i];
  for (let i = 0; i < a.services.length && i < b.services.length; i++) a.services[i] += b.services[i];
  return { total: a.total + b.total, closed: a.closed + b.closed, backends: a.backends, services: a.services };
}
