// Per-slot flow-table statistics for the views (status, services, metrics, systemd STATUS, the shutdown grace),
// gathered page by page: each native call looks at no more than FLOW_SCAN_PER_CALL entries and the event loop
// runs between pages, so no reader walks a large table on the JS thread. Readers get the last complete pass,
// and a new pass starts when it is older than maxAgeMs. The first pass runs at once (at start: the table is
// committed then anyway), so there is always a figure.

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

export class FlowStatsSweep {
  private last: { at: number; stats: FlowStats } | undefined;
  private sweeping = false;

  constructor(
    private readonly page: (cursor: number) => FlowStatsPage,
    private readonly maxAgeMs: number,
    private readonly later: (fn: () => void) => void = (fn) => setImmediate(fn),
  ) {}

  /** The last complete pass (undefined only if the data plane could not be read at all). */
  get(now = Date.now()): FlowStats | undefined {
    if (!this.sweeping && (!this.last || now - this.last.at >= this.maxAgeMs || now < this.last.at)) this.sweep(now, this.last === undefined);
    return this.last?.stats;
  }

  private sweep(startedAt: number, atOnce: boolean): void {
    this.sweeping = true;
    let acc: FlowStats | undefined;
    const step = (cursor: number): void => {
      for (;;) {
        let p: FlowStatsPage;
        try {
          p = this.page(cursor);
        } catch {
          this.sweeping = false; // data plane closed: keep the last figures
          return;
        }
        acc = acc ? addStats(acc, p) : { total: p.total, closed: p.closed, backends: p.backends, services: p.services };
        if (p.next === null) {
          this.last = { at: startedAt, stats: acc };
          this.sweeping = false;
          return;
        }
        const next = p.next;
        if (!atOnce) return this.later(() => step(next));
        cursor = next;
      }
    };
    step(0);
  }
}

/** a + b, slot by slot (a's arrays are reused). */
export function addStats(a: FlowStats, b: FlowStats): FlowStats {
  for (let i = 0; i < a.backends.length && i < b.backends.length; i++) a.backends[i] += b.backends[i];
  for (let i = 0; i < a.services.length && i < b.services.length; i++) a.services[i] += b.services[i];
  return { total: a.total + b.total, closed: a.closed + b.closed, backends: a.backends, services: a.services };
}
