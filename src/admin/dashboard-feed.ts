// What the dashboard's live stream sends (src/admin/dashboard.ts): once a second, while at least one page listens,
// one read of the data plane's counters and the controller's views, turned into rates from the difference with the
// previous sample (packets/s, bits/s, new flows/s, resets/s per service and backend; every per-queue counter and
// each drop reason per second), with a few minutes of those rates kept for the charts of a page opened later.
// Nothing here runs on the packet path: the counters are the shared words the workers already write, and nothing
// is sampled while no page listens.
import type { Controller, ReloadRecord, ServiceView } from '../control/controller';
import { backendKey } from '../dataplane/tables';
import type { CounterMap, CounterSnapshot } from '../dataplane/native';
import { monotonicMs } from '../util/clock';

export const FEED_INTERVAL_MS = 1_000;
/** The rates kept for the charts: 5 minutes at one sample a second. */
export const FEED_HISTORY = 300;

/** The rings as last published and the backends' ring slots (src/control/balancer.ts has both). */
export interface RingSource {
  readonly publishedRings: ReadonlyMap<string, Uint32Array>;
  backendSlot(key: string): number | undefined;
}

/** An object's rates: packets/s, bits/s (both directions), new flows/s, TCP resets/s. */
export type Rates = [pps: number, bps: number, newFlows: number, resets: number];

/** One sample's rates, by service id and by "service id|backend id"; per queue rx and tx packets/s. */
export interface RatePoint {
  t: number; // Date.now()
  services: Record<string, Rates>;
  backends: Record<string, Rates>;
  queues: Array<[rxPps: number, txPps: number]>;
}

/** A backend as the page shows it: the API's view, its rates, ring share, why it is in its state, and what its drain started with. */
export type FeedBackend = ServiceView['backends'][number] & { rates: Rates; ringShare: number | null; why: string; drainStartFlows: number | null };

export interface FeedFrame {
  t: number;
  services: Array<Omit<ServiceView, 'backends'> & { rates: Rates; backends: FeedBackend[] }>;
  dataplane: {
    queues: Array<{ queue: number; heartbeatAgeMs: number; rates: Record<string, number> }>;
    drops: Record<string, { total: number; rate: number }>;
    flows: number;
    flowCapacity: number | null;
  };
  reloads: ReloadRecord[];
  point: RatePoint;
}

interface Sample {
  mono: number;
  objects: Map<string, CounterMap>; // by service id and "service id|backend id"
  queues: CounterMap[];
  drops: CounterMap;
}

const delta = (cur: CounterMap, prev: CounterMap | undefined, k: string, dtS: number): number => {
  const d = (cur[k] ?? 0) - (prev?.[k] ?? cur[k] ?? 0);
  return d > 0 ? d / dtS : 0; // a counter that went back (its slot was reused) counts as still
};

function objectRates(cur: CounterMap, prev: CounterMap | undefined, dtS: number): Rates {
  if (!prev || dtS <= 0) return [0, 0, 0, 0];
  const r = (k: string): number => delta(cur, prev, k, dtS);
  return [r('packets_in') + r('packets_out'), 8 * (r('bytes_in') + r('bytes_out')), r('new_flows'), r('resets')];
}

/** Why a backend is in its state, in a few words, from what the view has. */
function stateWhy(b: ServiceView['backends'][number]): string {
  if (b.state === 'drained') return `drained: ${b.drain?.doneBy ?? 'no live flow left'}`;
  if (b.state === 'draining') return 'draining: out of the ring, established flows go on';
  if (b.passive) return `passive check: ${b.passive.reason} (held until ${b.passive.heldUntil})`;
  const last = b.history?.transitions[b.history.transitions.length - 1];
  if (b.state === 'down') return last?.reason ?? b.health?.lastCheck?.detail ?? 'down';
  if (b.weight === 0) return 'weight 0: out of the ring, flows kept';
  if (!b.health) return 'no active health check';
  return last ? `up: ${last.reason}` : 'up: health checks pass';
}

/** Each backend slot's share of a ring (slot -> fraction), kept per ring object: a ring is replaced, never changed. */
const shares = new WeakMap<Uint32Array, Map<number, number>>();
function ringShares(ring: Uint32Array): Map<number, number> {
  let m = shares.get(ring);
  if (!m) {
    m = new Map();
    for (const slot of ring) m.set(slot, (m.get(slot) ?? 0) + 1);
    for (const [k, n] of m) m.set(k, n / ring.length);
    shares.set(ring, m);
  }
  return m;
}

export class DashboardFeed {
  private readonly listeners = new Set<(f: FeedFrame) => void>();
  private timer: NodeJS.Timeout | undefined;
  private prev: Sample | undefined;
  private readonly history: RatePoint[] = [];
  /** The live flows a drain started with (by "service|backend|since"), for its progress. */
  private readonly drainStarts = new Map<string, number>();

  constructor(
    private readonly ctrl: Controller,
    private readonly rings: RingSource | undefined,
    private readonly flowCapacity: number | undefined,
    private readonly intervalMs = FEED_INTERVAL_MS,
    private readonly mono: () => number = monotonicMs,
  ) {}

  /** The rates kept so far, oldest first (a new page's charts start with them). */
  points(): readonly RatePoint[] {
    return this.history;
  }

  /** Calls `fn` with a frame every interval (the first one now) until the returned function is called. */
  subscribe(fn: (f: FeedFrame) => void): () => void {
    this.listeners.add(fn);
    if (!this.timer) this.timer = setInterval(() => this.tick(), this.intervalMs);
    fn(this.frame());
    return () => {
      this.listeners.delete(fn);
      if (this.listeners.size === 0) this.stopTimer();
    };
  }

  close(): void {
    this.listeners.clear();
    this.stopTimer();
  }

  private stopTimer(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  private tick(): void {
    const f = this.frame();
    for (const fn of this.listeners) fn(f);
  }

  /** One sample: the views, and rates against the previous sample when it is recent (else zeros, not an average over a gap). */
  frame(): FeedFrame {
    const t = Date.now();
    const mono = this.mono();
    const c: CounterSnapshot = this.ctrl.counters();
    const prev = this.prev && mono - this.prev.mono <= 3 * this.intervalMs ? this.prev : undefined;
    const dtS = prev ? (mono - prev.mono) / 1000 : 0;
    const cur: Sample = { mono, objects: new Map(), queues: c.perQueue, drops: c.drops };
    const point: RatePoint = { t, services: {}, backends: {}, queues: [] };
    const live = new Set<string>();
    const services = this.ctrl.current.map((s) => {
      const v = this.ctrl.serviceView(s, c, t, true);
      const ring = this.rings?.publishedRings.get(v.id);
      cur.objects.set(v.id, v.counters);
      const rates = objectRates(v.counters, prev?.objects.get(v.id), dtS);
      point.services[v.id] = rates;
      const backends = v.backends.map((b, i) => {
        const k = `${v.id}|${b.id}`;
        cur.objects.set(k, b.counters);
        const br = objectRates(b.counters, prev?.objects.get(k), dtS);
        point.backends[k] = br;
        const slot = ring ? this.rings!.backendSlot(backendKey(s, s.backends[i])) : undefined;
        return { ...b, rates: br, ringShare: ring ? (slot === undefined ? 0 : ringShares(ring).get(slot) ?? 0) : null, why: stateWhy(b), drainStartFlows: this.drainStart(k, b, live) };
      });
      return { ...v, rates, backends };
    });
    for (const k of this.drainStarts.keys()) if (!live.has(k)) this.drainStarts.delete(k);
    const queues = c.perQueue.map((q, i) => {
      const rates: Record<string, number> = {};
      for (const k of Object.keys(q)) rates[k] = prev ? delta(q, prev.queues[i], k, dtS) : 0;
      point.queues.push([rates.rx_packets ?? 0, rates.tx_packets ?? 0]);
      return { queue: i, heartbeatAgeMs: Math.max(0, Math.round(mono - (c.heartbeatsMs[i] ?? mono))), rates };
    });
    const drops: FeedFrame['dataplane']['drops'] = {};
    for (const [reason, total] of Object.entries(c.drops)) drops[reason] = { total, rate: prev ? delta(c.drops, prev.drops, reason, dtS) : 0 };
    this.prev = cur;
    this.history.push(point);
    if (this.history.length > FEED_HISTORY) this.history.shift();
    return {
      t,
      services,
      dataplane: { queues, drops, flows: this.ctrl.flowCount(), flowCapacity: this.flowCapacity ?? null },
      reloads: [...this.ctrl.reloadHistory],
      point,
    };
  }

  private drainStart(k: string, b: ServiceView['backends'][number], live: Set<string>): number | null {
    if (!b.drain) return null;
    const key = `${k}|${b.drain.since}`;
    live.add(key);
    if (!this.drainStarts.has(key) && b.drain.liveFlows !== null) this.drainStarts.set(key, b.drain.liveFlows);
    return this.drainStarts.get(key) ?? null;
  }
}
