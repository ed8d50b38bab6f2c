// The data-plane addon, wrapped. Layers: native/worker.c (threads, TUN) -> native/addon.c (Node-API, thin) ->
// this file, the Dataplane class, which validates arguments and owns the handle's lifetime. Beside it: the
// addon's interface and loading (./addon.ts), the options (./dataplane-options.ts), reading the counters
// (./counters.ts), flow queries (./flow-query.ts). This module re-exports what the rest of src/ takes from them.
import { isIP } from 'net';
import { addonLayout, loadAddon, type ActiveFlows, type FlowFileState, type QueueFailure, type WatchdogStats } from './addon';
import type { AddonLayout } from './addon-layout';
import { counterBlockWords, readCounters, type CounterSnapshot } from './counters';
import { resolveDataplaneOptions, type DataplaneOptions } from './dataplane-options';
import { decodeExplanation, nativeExplainQuery, type DataplaneExplanation, type ExplainQuery, type FlowMoveQuestion, type FlowMovesPage } from './explain';
import { checkFlowTableFits } from './flow-memory';
import { FLOW_SCAN_PER_CALL, flowEntry, nativeQuery, type FlowEntry, type FlowFilter, type FlowPage } from './flow-query';
import { addStats, type FlowStats, type FlowStatsPage } from './flow-stats';
import type { TablesInput } from './tables';
import { decodeSyncRecords, encodeSyncRecords, type SyncRecord } from './sync-record';
import type { SyncApplied } from './addon';
import { decodeTraceRecords, nativeTraceMatch, TRACE_MATCHES, type TraceMatch, type TraceRecord } from './trace-record';
import { ipToBuffer, type Family } from '../host/addr';

export { addonLayout, loadAddon, type FlowFileState, type QueueFailure, type WatchdogStats } from './addon';
export { counterBlockWords, readCounters, zeroObjectCounters, type CounterBlocks, type CounterMap, type CounterSnapshot } from './counters';
export { DEFAULT_BUSY_POLL_US, type DataplaneOptions } from './dataplane-options';
export { FLOW_SCAN_PER_CALL, type FlowEntry, type FlowFilter, type FlowPage } from './flow-query';
export type { DataplaneExplanation, ExplainQuery, FlowMoveQuestion, FlowMovesPage } from './explain';
export { FLOW_STATES, type FlowState } from './flow-state';
export type { FlowStats } from './flow-stats';

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

export const TUN_OFFLOADS: Record<string, number> = { csum: 0x01, tso4: 0x02, tso6: 0x04, tso_ecn: 0x08, uso4: 0x20, uso6: 0x40 };

export class Dataplane {
  readonly ifname: string;
  readonly queues: number;
  readonly offloads: string[];
  readonly flowCapacity: number;
  readonly opts: DataplaneOptions;
  /** The flow table's file as found at open (null: the table is in memory only). */
  readonly flowFile: (FlowFileState & { path: string }) | null;
  private handle: object | undefined;
  /** An open data plane is a live resource, like a listening socket: it keeps the process running. */
  private keepAlive: NodeJS.Timeout | undefined;
  private readonly words: BigUint64Array;
  private readonly counterWords: number;
  private readonly layout: AddonLayout;

  /** Opens (or re-attaches to) the TUN queues and allocates the flow table and counters. */
  constructor(options: DataplaneOptions) {
    const opts = resolveDataplaneOptions(options);
    const a = loadAddon();
    this.layout = addonLayout();
    checkFlowTableFits(opts.flowCapacity, this.layout.flowEntryBytes);
    this.opts = { ...opts };
    const { flowFile, ...rest } = opts;
    this.handle = a.open({
      ...rest,
      busyPollAdaptive: opts.busyPollAdaptive ? 1 : 0,
      udpCoalesce: opts.udpCoalesce ? 1 : 0,
      ...(flowFile ? { flowFile: flowFile.path, hashKey: flowFile.hashKey, flowFileShared: flowFile.shared ? 1 : 0 } : {}),
    });
    try {
      const info = a.info(this.handle);
      this.ifname = info.ifname;
      this.queues = info.queues;
      this.flowCapacity = info.flowCapacity;
      this.counterWords = info.counterWords;
      this.flowFile = flowFile && info.flowFile ? { path: flowFile.path, ...info.flowFile } : null;
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
    if (opts.syncLog) a.syncSet(this.handle, true);
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
    const q = nativeQuery({ ...filter, limit }, this.flowCapacity, this.layout);
    const flows: FlowEntry[] = [];
    let next: number | null = q.cursor ?? 0;
    for (let call = 0; call < maxCalls && next !== null && flows.length < limit; call++) {
      const r = loadAddon().flows(this.h(), { ...q, cursor: next, limit: limit - flows.length, maxScan: FLOW_SCAN_PER_CALL });
      for (const f of r.flows) flows.push(flowEntry(f));
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
   * Frees, from `cursor` on and no more than `maxScan` entries, the flow entries that expired more than the sweep's
   * margin ago, taking them out of the active-flow counts (native/core/flow_table.h l4_flow_sweep).
   */
  sweepFlows(cursor: number, maxScan: number): { freed: number; next: number | null } {
    if (!Number.isInteger(cursor) || cursor < 0 || cursor > this.flowCapacity) throw new RangeError(`sweepFlows: cursor must be an integer from 0 to ${this.flowCapacity}, got ${String(cursor)}`);
    if (!Number.isInteger(maxScan) || maxScan < 1) throw new RangeError(`sweepFlows: maxScan must be a positive integer, got ${String(maxScan)}`);
    return loadAddon().sweepFlows(this.h(), { cursor, maxScan });
  }

  /** The active-flow counts by backend and service slot: what bounded load and max_flows decide by. */
  activeFlows(): ActiveFlows {
    return loadAddon().activeFlows(this.h());
  }

  /** What the data plane would do now with a client's packet of this tuple (native/core/explain.h); reads only. */
  explain(q: ExplainQuery): DataplaneExplanation {
    const nq = nativeExplainQuery(q);
    return decodeExplanation(loadAddon().explain(this.h(), nq), nq.family, this.layout.dropReasons);
  }

  /** One page (FLOW_SCAN_PER_CALL entries from cursor) of a flow-move question; reads only. */
  flowMovesPage(q: FlowMoveQuestion, cursor = 0): FlowMovesPage {
    if (!Number.isInteger(cursor) || cursor < 0 || cursor > this.flowCapacity) throw new RangeError(`flowMoves: cursor must be an integer from 0 to ${this.flowCapacity}, got ${String(cursor)}`);
    return loadAddon().flowMoves(this.h(), { services: q.services, rings: q.rings, cursor, maxScan: FLOW_SCAN_PER_CALL });
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
    const q = nativeQuery({ ...filter, limit: undefined, cursor: undefined }, this.flowCapacity, this.layout);
    // A page of the table per native call, the event loop free between pages: a large table is never walked in one go.
    let deleted = 0;
    for (let cursor: number | null = 0; cursor !== null; ) {
      if (cursor > 0) await new Promise((r) => setImmediate(r));
      const r = loadAddon().deleteFlows(this.h(), { ...q, cursor, maxScan: FLOW_SCAN_PER_CALL });
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

  /**
   * Installs trace match `slot` (0 to TRACE_MATCHES - 1), or removes it with null: the workers record the packets
   * it takes from their next batch on (native/core/trace.h). With no match installed tracing is off.
   */
  setTrace(slot: number, m: TraceMatch | null): void {
    if (!Number.isInteger(slot) || slot < 0 || slot >= TRACE_MATCHES) throw new RangeError(`trace: slot must be an integer from 0 to ${TRACE_MATCHES - 1}, got ${String(slot)}`);
    loadAddon().traceSet(this.h(), slot, m === null ? null : nativeTraceMatch(m));
  }

  /** The records the workers traced since the last drain, oldest first per queue; dropped: records lost to full rings since the start. */
  drainTrace(): { records: TraceRecord[]; dropped: number } {
    const r = loadAddon().traceDrain(this.h());
    return { records: decodeTraceRecords(r.records, this.layout.dropReasons), dropped: r.dropped };
  }

  /**
   * Detaches every queue from the TUN: they get no packets (what they held is dropped). A live handover's successor
   * starts so and start() attaches them once its workers poll; its predecessor leaves so, every packet going to the
   * successor's queues before it stops its workers (src/daemon/live-handover.ts).
   */
  detachQueues(): void {
    loadAddon().detachQueues(this.h());
  }

  /** The slot map in the flow table's file (src/dataplane/flow-slots.ts), as the previous l4nat left it; null if none. */
  flowSlots(): Buffer | null {
    return this.flowFile ? loadAddon().flowSlots(this.h()) : null;
  }

  /** Records the slot map for the next l4nat; false if it does not fit (then the file holds none). */
  setFlowSlots(map: Uint8Array): boolean {
    if (!this.flowFile) throw new Error('dataplane: the flow table is not kept in a file');
    return loadAddon().setFlowSlots(this.h(), map);
  }

  /** Flow-state sync on or off: the workers log entries pinned against the ring (native/core/sync_log.h) from their next batch. */
  syncSet(on: boolean): void {
    loadAddon().syncSet(this.h(), on);
  }

  /** The records the workers logged since the last drain; dropped: records lost to full logs since the start. */
  syncDrain(): { records: SyncRecord[]; dropped: number } {
    const r = loadAddon().syncDrain(this.h());
    return { records: decodeSyncRecords(r.records), dropped: r.dropped };
  }

  /** Peers' records into the flow table: adds as learned entries (a live local entry wins), removals of learned ones. */
  syncApply(records: readonly SyncRecord[]): SyncApplied {
    return loadAddon().syncApply(this.h(), encodeSyncRecords(records));
  }

  /** Per record: the backend slot of its key's live entry this host logged, else noBackend. */
  syncCheck(records: readonly SyncRecord[]): Uint32Array {
    return loadAddon().syncCheck(this.h(), encodeSyncRecords(records));
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
