// The data-plane addon, wrapped. Layers: native/worker.c (threads, TUN) -> native/addon.c (Node-API,
// thin) -> this file, which validates arguments, owns the handle's lifetime and gives counters names.
import { join } from 'path';
import { isIP } from 'net';
import { checkLayout, type AddonLayout } from './addon-layout';
import { HEARTBEAT_COUNTER, NO_DROP_REASON } from './counter-names';
import { FLOW_STATES, flowStateName, type FlowState } from './flow-state';
import { bufferToIp, ipToBuffer, type Family } from '../host/addr';
import { checkFlowTableFits } from './flow-memory';
import { addStats, type FlowStats, type FlowStatsPage } from './flow-stats';

export type { FlowStats } from './flow-stats';
import type { TablesInput } from './tables';

export { FLOW_STATES, type FlowState };

interface Addon {
  open(o: Omit<DataplaneOptions, 'busyPollAdaptive' | 'udpCoalesce'> & { busyPollAdaptive: number; udpCoalesce: number }): object;
  info(h: object): { ifname: string; queues: number; offloads: number; flowCapacity: number; counterWords: number; counters: ArrayBuffer };
  publish(h: object, t: TablesInput): void;
  start(h: object): void;
  stop(h: object): void;
  setPersist(h: object, persist: boolean): void;
  close(h: object, keepDevice: boolean): void;
  flowCount(h: object): number;
  flows(h: object, f: NativeFlowFilter): { flows: NativeFlow[]; next: number | null };
  deleteFlows(h: object, f: NativeFlowFilter): { deleted: number; next: number | null };
  flowStats(h: object, f: { cursor: number; maxScan: number }): FlowStatsPage;
  watchdogStart(h: object, o: { path: string; everyMs: number; staleMs: number }): void;
  setSteering(h: object, v: { vips4: Uint8Array; vips6: Uint8Array } | null): void;
  watchdogStats(h: object): WatchdogStats;
  queueErrors(h: object): Array<Omit<QueueFailure, 'queue'> | null>;
  probe(h: object, p: { slot: number; family: Family; src: Uint8Array; dst: Uint8Array; sport: number; dport: number; seq: number }): void;
  probeState(h: object, p: { slot: number; sport: number; seq: number }): number;
  layout(): unknown; // checked by checkLayout (src/dataplane/addon-layout.ts)
}

interface NativeFlowFilter {
  backend?: number;
  service?: number;
  client?: Uint8Array;
  limit?: number;
  cursor?: number;
  maxScan?: number;
}
interface NativeFlow {
  client: Uint8Array;
  vip: Uint8Array;
  cport: number;
  vport: number;
  proto: number;
  backend: number;
  service: number;
  state: number;
  idle: number;
}


/** A flow-table entry as the admin view shows it. */
export interface FlowEntry {
  client: string;
  clientPort: number;
  vip: string;
  vipPort: number;
  proto: 'tcp' | 'udp';
  backendSlot: number;
  serviceSlot: number;
  state: FlowState;
  idleSeconds: number;
}

/** Which probe: the backend slot it was sent for, its source port and sequence number. */
export interface ProbeId {
  slot: number;
  sport: number;
  seq: number;
}
export interface ProbeSpec extends ProbeId {
  src: string;
  dst: string;
  dport: number;
}
/** native/core/probe.h enum l4_probe_state, in order. */
const PROBE_STATES = ['none', 'pending', 'synack', 'rst'] as const;
export type ProbeState = (typeof PROBE_STATES)[number];

function checkProbeNumbers(what: string, p: ProbeId): void {
  for (const [k, v, min, max] of [['slot', p.slot, 0, 2 ** 32 - 1], ['sport', p.sport, 1, 65535], ['seq', p.seq, 0, 2 ** 32 - 1]] as const) {
    if (!Number.isInteger(v) || v < min || v > max) throw new RangeError(`${what}: ${k} must be an integer from ${min} to ${max}, got ${String(v)}`);
  }
}

export interface FlowFilter {
  backendSlot?: number;
  serviceSlot?: number;
  client?: string;
  states?: readonly FlowState[];
  /** At most this many entries are returned (default 1000). */
  limit?: number;
  /** Where to start in the table: 0, or the `next` of the previous page. */
  cursor?: number;
}

/** The native watchdog thread's counts (native/watchdog.h). */
export interface WatchdogStats {
  running: boolean;
  pings: number; // WATCHDOG=1 sent
  withheld: number; // ticks at which a worker was stale: no ping
  sendErrors: number;
}

/** A TUN queue its worker could not read any more (native/worker.c): the worker has ended. */
export interface QueueFailure {
  queue: number;
  errno: number;
  code: string; // EBADFD: the device was deleted (or the queue detached)
  message: string; // strerror
}

/** One page of a listing: `next` is the cursor for the following page, null when the walk reached the end. */
export interface FlowPage {
  flows: FlowEntry[];
  next: number | null;
}

/** Entries one listing call looks at, at most: bounds the time a call holds the JS thread (~10 ms). */
export const FLOW_SCAN_PER_CALL = 1 << 18;

function nativeFilter(f: FlowFilter, capacity: number): NativeFlowFilter {
  const out: NativeFlowFilter = {};
  if (f.backendSlot !== undefined) {
    if (!Number.isInteger(f.backendSlot) || f.backendSlot < 0) throw new RangeError(`flows: backendSlot must be a slot number, got ${String(f.backendSlot)}`);
    out.backend = f.backendSlot;
  }
  if (f.client !== undefined) {
    const fam = isIP(f.client);
    if (!fam) throw new TypeError(`flows: client must be an IP address, got ${JSON.stringify(f.client)}`);
    const b = Buffer.alloc(16);
    ipToBuffer(f.client, fam as Family).copy(b);
    out.client = new Uint8Array(b);
  }
  if (f.serviceSlot !== undefined) {
    if (!Number.isInteger(f.serviceSlot) || f.serviceSlot < 0) throw new RangeError(`flows: serviceSlot must be a slot number, got ${String(f.serviceSlot)}`);
    out.service = f.serviceSlot;
  }
  if (f.limit !== undefined) {
    if (!Number.isInteger(f.limit) || f.limit < 1) throw new RangeError(`flows: limit must be a positive integer, got ${String(f.limit)}`);
    out.limit = f.limit;
  }
  if (f.cursor !== undefined) {
    if (!Number.isInteger(f.cursor) || f.cursor < 0 || f.cursor > capacity) {
      throw new RangeError(`flows: cursor must be the previous page's next, an integer from 0 to the flow table's capacity (${capacity}), got ${String(f.cursor)}`);
    }
    out.cursor = f.cursor;
  }
  for (const st of f.states ?? []) {
    if (!FLOW_STATES.includes(st)) throw new RangeError(`flows: state must be one of ${FLOW_STATES.join(', ')}, got ${JSON.stringify(st)}`);
  }
  return out;
}

function flowEntry(f: NativeFlow): FlowEntry {
  return {
    client: bufferToIp(f.client),
    clientPort: f.cport,
    vip: bufferToIp(f.vip),
    vipPort: f.vport,
    proto: f.proto === 6 ? 'tcp' : 'udp',
    backendSlot: f.backend,
    serviceSlot: f.service,
    state: flowStateName(f.proto, f.state),
    idleSeconds: f.idle,
  };
}

let addon: { a: Addon; layout: AddonLayout } | undefined;
/** Loads the addon once, refusing one whose layout is not the one src/ expects (src/dataplane/addon-layout.ts). */
function loaded(): { a: Addon; layout: AddonLayout } {
  if (!addon) {
    // dist/src/dataplane/native.js -> build/Release/l4nat.node at the package root
    const a = require(join(__dirname, '..', '..', '..', 'build', 'Release', 'l4nat.node')) as Addon;
    addon = { a, layout: checkLayout(a.layout()) };
  }
  return addon;
}

export function loadAddon(): Addon {
  return loaded().a;
}

/** The addon's layout, checked: counter names in block order, drop reasons, word counts. */
export function addonLayout(): AddonLayout {
  return loaded().layout;
}

/** A service's or backend's counters before it counted anything: every counter the addon has, at 0. */
export function zeroObjectCounters(): CounterMap {
  return zeros(addonLayout().objectCounters);
}

function zeros(names: readonly string[]): CounterMap {
  return Object.fromEntries(names.map((n) => [n, 0]));
}

export const TUN_OFFLOADS: Record<string, number> = { csum: 0x01, tso4: 0x02, tso6: 0x04, tso_ecn: 0x08, uso4: 0x20, uso6: 0x40 };

export interface DataplaneOptions {
  ifname: string;
  queues: number;
  flowCapacity: number;
  maxServices: number;
  maxBackends: number;
  /** After its queue drains, a worker keeps reading up to this many microseconds before it sleeps (0 = never
   * spin). Default: $L4NAT_BUSY_POLL_US, else DEFAULT_BUSY_POLL_US. */
  busyPollUs?: number;
  /** Size the busy-polling window from the idle gaps each worker sees, up to busyPollUs
   * (native/core/busypoll.h); false: always busyPollUs. Default: $L4NAT_BUSY_POLL_ADAPTIVE (0 or 1), else on. */
  busyPollAdaptive?: boolean;
  /** Write runs of one flow's UDP datagrams as one UDP GSO super-packet (native/core/coalesce.h); used only
   * where the kernel's TUN took the USO offloads (Linux 6.2+). Default: $L4NAT_UDP_COALESCE (0 or 1), else on. */
  udpCoalesce?: boolean;
}

export const DEFAULT_BUSY_POLL_US = 100;

function defaultBusyPoll(): number {
  const env = process.env.L4NAT_BUSY_POLL_US;
  if (env === undefined || env === '') return DEFAULT_BUSY_POLL_US;
  if (!/^\d+$/.test(env) || Number(env) > 100_000) throw new RangeError(`L4NAT_BUSY_POLL_US must be microseconds from 0 to 100000, got ${JSON.stringify(env)}`);
  return Number(env);
}

/** An on/off environment setting: unset or empty gives the default, else exactly 0 or 1. */
function envSwitch(name: string, dflt: boolean): boolean {
  const env = process.env[name];
  if (env === undefined || env === '') return dflt;
  if (env !== '0' && env !== '1') throw new RangeError(`${name} must be 0 (off) or 1 (on), got ${JSON.stringify(env)}`);
  return env === '1';
}

export type CounterMap = Record<string, number>;

export interface CounterSnapshot {
  total: CounterMap; // queue counters summed over queues (heartbeat_ms omitted)
  drops: CounterMap; // by reason, summed
  perQueue: CounterMap[];
  heartbeatsMs: number[]; // CLOCK_MONOTONIC ms of each worker's last wake-up
  services: Map<number, CounterMap>; // by service slot, non-zero only
  backends: Map<number, CounterMap>; // by backend slot, non-zero only
}

export class Dataplane {
  readonly ifname: string;
  readonly queues: number;
  readonly offloads: string[];
  readonly flowCapacity: number;
  readonly opts: DataplaneOptions;
  private handle: object | undefined;
  /** An open data plane is a live resource, like a listening socket: it keeps the process running. */
  private keepAlive: NodeJS.Timeout | undefined;
  private readonly words: BigUint64Array;
  private readonly counterWords: number;
  private readonly layout: AddonLayout;

  /** Opens (or re-attaches to) the TUN queues and allocates the flow table and counters. */
  constructor(opts: DataplaneOptions) {
    const check = (name: keyof DataplaneOptions, min: number, max: number): void => {
      const v = opts[name];
      if (!Number.isInteger(v) || (v as number) < min || (v as number) > max) {
        throw new RangeError(`dataplane: ${name} must be an integer from ${min} to ${max}, got ${String(v)}`);
      }
    };
    if (typeof opts.ifname !== 'string' || !/^[A-Za-z0-9_.-]{1,15}$/.test(opts.ifname)) {
      throw new TypeError(`dataplane: ifname must be 1-15 characters [A-Za-z0-9_.-], got ${JSON.stringify(opts.ifname)}`);
    }
    check('queues', 1, 256);
    check('flowCapacity', 8, 2 ** 31);
    check('maxServices', 1, 65536);
    check('maxBackends', 1, 1 << 20);
    opts = { ...opts, busyPollUs: opts.busyPollUs ?? defaultBusyPoll() };
    check('busyPollUs', 0, 100_000);
    opts = {
      ...opts,
      busyPollAdaptive: opts.busyPollAdaptive ?? envSwitch('L4NAT_BUSY_POLL_ADAPTIVE', true),
      udpCoalesce: opts.udpCoalesce ?? envSwitch('L4NAT_UDP_COALESCE', true),
    };
    for (const name of ['busyPollAdaptive', 'udpCoalesce'] as const) {
      if (typeof opts[name] !== 'boolean') throw new TypeError(`dataplane: ${name} must be true or false, got ${String(opts[name])}`);
    }
    const a = loadAddon();
    this.layout = addonLayout();
    checkFlowTableFits(opts.flowCapacity, this.layout.flowEntryBytes);
    this.opts = { ...opts };
    this.handle = a.open({ ...opts, busyPollAdaptive: opts.busyPollAdaptive ? 1 : 0, udpCoalesce: opts.udpCoalesce ? 1 : 0 });
    try {
      const info = a.info(this.handle);
      this.ifname = info.ifname;
      this.queues = info.queues;
      this.flowCapacity = info.flowCapacity;
      this.counterWords = info.counterWords;
      const need = counterBlockWords(this.layout, opts);
      if (this.counterWords < need) throw new Error(`dataplane: the addon's counter blocks have ${this.counterWords} words, its layout needs ${need}: rebuild it (npx node-gyp rebuild)`);
      this.words = new BigUint64Array(info.counters);
      this.offloads = Object.entries(TUN_OFFLOADS)
        .filter(([, bit]) => (info.offloads & bit) !== 0)
        .map(([name]) => name);
    } catch (e) {
      a.close(this.handle, true);
      this.handle = undefined;
      throw e;
    }
    this.keepAlive = setInterval(() => undefined, 2 ** 31 - 1);
  }

  get flowEntryBytes(): number {
    return this.layout.flowEntryBytes;
  }

  private h(): object {
    if (!this.handle) throw new Error('dataplane: already closed');
    return this.handle;
  }

  /** Hands a new table to the workers; they switch at their next batch. Throws (changing nothing) if invalid. */
  publish(t: TablesInput): void {
    loadAddon().publish(this.h(), t);
    this.hasTable = true;
  }

  private hasTable = false;

  /**
   * Starts the workers; only once a table is published. A worker without a table has nothing to translate with
   * and would drop what it reads, uncounted; before they start, packets wait in the TUN queues (after a
   * handover the routes feed them already), and the kernel counts what does not fit as the device's drops.
   */
  start(): void {
    if (!this.hasTable) throw new Error('dataplane: publish a table before starting the workers (they would drop every packet read before it, uncounted)');
    loadAddon().start(this.h());
  }

  stop(): void {
    loadAddon().stop(this.h());
  }

  /** A persistent TUN outlives the process, so a restarted l4nat re-attaches to it (docs/design.md item 6). */
  setPersist(persist: boolean): void {
    loadAddon().setPersist(this.h(), persist);
  }

  flowCount(): number {
    return loadAddon().flowCount(this.h());
  }

  /**
   * One page of live flow-table entries matching the filter, from filter.cursor on. Each native call looks
   * at no more than FLOW_SCAN_PER_CALL entries, and the page stops after filter.limit matches or after
   * maxCalls calls, so a listing never walks a large table in one go: follow `next` for more.
   */
  flowPage(filter: FlowFilter = {}, maxCalls = 1): FlowPage {
    const limit = filter.limit ?? 1000;
    const nf = nativeFilter({ ...filter, limit }, this.flowCapacity);
    const states = filter.states?.length ? new Set(filter.states) : undefined;
    const flows: FlowEntry[] = [];
    let next: number | null = nf.cursor ?? 0;
    for (let call = 0; call < maxCalls && next !== null && flows.length < limit; call++) {
      const r = loadAddon().flows(this.h(), { ...nf, cursor: next, limit: limit - flows.length, maxScan: FLOW_SCAN_PER_CALL });
      for (const f of r.flows) {
        const e = flowEntry(f);
        if (!states || states.has(e.state)) flows.push(e);
      }
      next = r.next;
    }
    return { flows, next };
  }

  /** Live entries matching the filter, up to filter.limit (default 1000), walking as much of the table as it takes. */
  flows(filter: FlowFilter = {}): FlowEntry[] {
    const limit = filter.limit ?? 1000;
    const out: FlowEntry[] = [];
    let cursor: number | null = filter.cursor ?? 0;
    while (cursor !== null && out.length < limit) {
      const page = this.flowPage({ ...filter, cursor, limit: limit - out.length }, 1);
      out.push(...page.flows);
      cursor = page.next;
    }
    return out;
  }

  /** Per-backend and per-service live entries of one page of the table (FLOW_SCAN_PER_CALL entries from cursor). */
  flowStatsPage(cursor = 0): FlowStatsPage {
    if (!Number.isInteger(cursor) || cursor < 0 || cursor > this.flowCapacity) throw new RangeError(`flowStats: cursor must be an integer from 0 to ${this.flowCapacity}, got ${String(cursor)}`);
    return loadAddon().flowStats(this.h(), { cursor, maxScan: FLOW_SCAN_PER_CALL });
  }

  /** Per-backend and per-service live entries of the whole table, page by page in one go (src/dataplane/flow-stats.ts pages it). */
  flowStats(): FlowStats {
    let p = this.flowStatsPage(0);
    let acc: FlowStats = p;
    while (p.next !== null) {
      p = this.flowStatsPage(p.next);
      acc = addStats(acc, p);
    }
    return { total: acc.total, closed: acc.closed, backends: acc.backends, services: acc.services };
  }

  /**
   * Removes matching entries, looking at FLOW_SCAN_PER_CALL entries per native call with the event loop free
   * between calls. Their next packets are forwarded by the current Maglev table; a TCP flow that lands on
   * another backend is reset by it (that is how a failed backend's flows are reset).
   */
  async deleteFlows(filter: FlowFilter): Promise<number> {
    if (filter.backendSlot === undefined && filter.client === undefined && filter.serviceSlot === undefined) {
      throw new TypeError('deleteFlows: give backendSlot, serviceSlot and/or client (refusing to delete every flow)');
    }
    if (filter.states?.length) throw new TypeError('deleteFlows: cannot filter by state');
    const nf = nativeFilter({ ...filter, limit: undefined, cursor: undefined }, this.flowCapacity);
    // A page of the table per native call, the event loop free between pages: a large table is never walked in one go.
    let deleted = 0;
    for (let cursor: number | null = 0; cursor !== null; ) {
      if (cursor > 0) await new Promise((r) => setImmediate(r));
      const r = loadAddon().deleteFlows(this.h(), { ...nf, cursor, maxScan: FLOW_SCAN_PER_CALL });
      deleted += r.deleted;
      cursor = r.next;
    }
    return deleted;
  }

  /**
   * systemd's watchdog, fed by a native thread: WATCHDOG=1 to `path` (NOTIFY_SOCKET; "@name" = abstract) every
   * everyMs while every worker's heartbeat is younger than staleMs. Independent of the JS event loop.
   */
  startWatchdog(path: string, everyMs: number, staleMs: number): void {
    if (typeof path !== 'string' || path.length === 0 || Buffer.byteLength(path) > 107) throw new TypeError(`watchdog: path must be 1-107 bytes, got ${JSON.stringify(path)}`);
    if (!Number.isInteger(everyMs) || everyMs < 1 || !Number.isInteger(staleMs) || staleMs < 1) throw new RangeError(`watchdog: everyMs and staleMs must be positive integers, got ${everyMs} and ${staleMs}`);
    loadAddon().watchdogStart(this.h(), { path, everyMs, staleMs });
  }

  /**
   * Steers both directions of every flow to one TUN queue (native/steering.h): the program hashes the client's
   * address and port, taking a packet to one of `vips` as coming from the client. null removes it.
   */
  setSteering(vips: readonly string[] | null): void {
    if (vips === null) {
      loadAddon().setSteering(this.h(), null);
      return;
    }
    const v4: Buffer[] = [];
    const v6: Buffer[] = [];
    for (const v of vips) {
      const fam = isIP(v);
      if (!fam) throw new TypeError(`steering: ${JSON.stringify(v)} is not an IP address`);
      (fam === 4 ? v4 : v6).push(ipToBuffer(v, fam as Family));
    }
    loadAddon().setSteering(this.h(), { vips4: new Uint8Array(Buffer.concat(v4)), vips6: new Uint8Array(Buffer.concat(v6)) });
  }

  watchdogStats(): WatchdogStats {
    return loadAddon().watchdogStats(this.h());
  }

  /** The queues whose worker stopped because reading failed for good; empty while every worker reads. */
  queueFailures(): QueueFailure[] {
    return loadAddon()
      .queueErrors(this.h())
      .flatMap((e, queue) => (e ? [{ queue, ...e }] : []));
  }

  /**
   * Sends one data-plane health probe: a TCP SYN from src:sport to the backend dst:dport, written into the
   * TUN (see native/core/probe.h), recorded as backend `slot`'s outstanding probe (it replaces the one before).
   * Only the backend's answer to this probe (to sport, acknowledging seq + 1) counts; probeState() tells it.
   */
  probe(p: ProbeSpec): void {
    const fam = isIP(p.src);
    if (!fam || isIP(p.dst) !== fam) throw new TypeError(`probe: src and dst must be addresses of one family, got ${p.src} and ${p.dst}`);
    checkProbeNumbers('probe', p);
    if (!Number.isInteger(p.dport) || p.dport < 1 || p.dport > 65535) throw new RangeError(`probe: dport must be an integer from 1 to 65535, got ${String(p.dport)}`);
    const addr = (a: string): Uint8Array => {
      const b = Buffer.alloc(16);
      ipToBuffer(a, fam as Family).copy(b);
      return new Uint8Array(b);
    };
    loadAddon().probe(this.h(), { slot: p.slot, family: fam as Family, src: addr(p.src), dst: addr(p.dst), sport: p.sport, dport: p.dport, seq: p.seq });
  }

  /** What became of a probe sent with probe(): 'none' when a newer probe for the slot replaced it. */
  probeState(p: ProbeId): ProbeState {
    checkProbeNumbers('probeState', p);
    return PROBE_STATES[loadAddon().probeState(this.h(), { slot: p.slot, sport: p.sport, seq: p.seq })] ?? 'none';
  }

  /** Stops the workers and closes the queues; removes the device unless keepDevice. Idempotent. */
  close(keepDevice: boolean): void {
    if (!this.handle) return;
    loadAddon().close(this.handle, keepDevice);
    this.handle = undefined;
    clearInterval(this.keepAlive);
  }

  get closed(): boolean {
    return this.handle === undefined;
  }

  /** Reads every counter without stopping the workers. */
  counters(): CounterSnapshot {
    return readCounters(this.words, this.layout, { queues: this.queues, counterWords: this.counterWords, maxServices: this.opts.maxServices, maxBackends: this.opts.maxBackends });
  }
}

/** How the counter memory is cut up: one block of counterWords per queue, each laid out as in native/core/counters.h. */
export interface CounterBlocks {
  queues: number;
  counterWords: number;
  maxServices: number;
  maxBackends: number;
}

/** Words a queue's block needs: [queue counters][drop reasons][services x object counters][backends x object counters]. */
export function counterBlockWords(layout: AddonLayout, b: Omit<CounterBlocks, 'queues' | 'counterWords'>): number {
  return layout.queueCounters.length + layout.dropReasons.length + (b.maxServices + b.maxBackends) * layout.objectCounters.length;
}

/** Names the words of the counter memory and sums them over queues. */
export function readCounters(words: BigUint64Array, layout: AddonLayout, b: CounterBlocks): CounterSnapshot {
  const { queueCounters, dropReasons, objectCounters } = layout;
  const nq = queueCounters.length;
  const nd = dropReasons.length;
  const no = objectCounters.length;
  const total: CounterMap = {};
  const drops: CounterMap = {};
  const perQueue: CounterMap[] = [];
  const heartbeatsMs: number[] = [];
  const services = new Map<number, CounterMap>();
  const backends = new Map<number, CounterMap>();
  const addObj = (m: Map<number, CounterMap>, slot: number, base: number): void => {
    let nonzero = false;
    for (let k = 0; k < no; k++) if (words[base + k] !== 0n) nonzero = true;
    if (!nonzero) return;
    const o = m.get(slot) ?? zeros(objectCounters);
    for (let k = 0; k < no; k++) o[objectCounters[k]] += Number(words[base + k]);
    m.set(slot, o);
  };
  for (let q = 0; q < b.queues; q++) {
    const base = q * b.counterWords;
    const mine: CounterMap = {};
    queueCounters.forEach((name, i) => {
      const v = Number(words[base + i]);
      if (name === HEARTBEAT_COUNTER) {
        heartbeatsMs.push(v);
        return;
      }
      mine[name] = v;
      total[name] = (total[name] ?? 0) + v;
    });
    perQueue.push(mine);
    dropReasons.forEach((name, i) => {
      if (name === NO_DROP_REASON) return;
      drops[name] = (drops[name] ?? 0) + Number(words[base + nq + i]);
    });
    const objBase = base + nq + nd;
    for (let s = 0; s < b.maxServices; s++) addObj(services, s, objBase + s * no);
    const bkBase = objBase + b.maxServices * no;
    for (let k = 0; k < b.maxBackends; k++) addObj(backends, k, bkBase + k * no);
  }
  return { total, drops, perQueue, heartbeatsMs, services, backends };
}
