// The addon as JavaScript sees it (native/addon.c): its functions, the shapes of their arguments and results,
// and loading it once, refused when its layout is not the one src/ expects. Only src/dataplane/ calls it; the
// Dataplane class (./native.ts) validates what goes in.
import { join } from 'path';
import { checkLayout, type AddonLayout } from './addon-layout';
import type { DataplaneOptions } from './dataplane-options';
import type { FlowMoveQuestion, FlowMovesPage } from './explain';
import type { FlowStatsPage } from './flow-stats';

/** The flow table's active-flow counts by slot (native/core/flow_table.h): what admission decides by. */
export interface ActiveFlows {
  backends: Float64Array;
  services: Float64Array;
}
import type { TablesInput } from './tables';
import type { NativeTraceMatch } from './trace-record';
import type { Family } from '../host/addr';

export interface Addon {
  open(o: Omit<DataplaneOptions, 'busyPollAdaptive' | 'udpCoalesce' | 'flowFile'> & { busyPollAdaptive: number; udpCoalesce: number; flowFile?: string; hashKey?: Uint8Array; flowFileShared?: number }): object;
  info(h: object): { ifname: string; queues: number; offloads: number; flowCapacity: number; counterWords: number; counters: ArrayBuffer; flowFile?: FlowFileState };
  flowSlots(h: object): Buffer | null;
  detachQueues(h: object): void;
  setFlowSlots(h: object, map: Uint8Array): boolean;
  publish(h: object, t: TablesInput): void;
  start(h: object): void;
  stop(h: object): void;
  setPersist(h: object, persist: boolean): void;
  close(h: object, keepDevice: boolean): void;
  flowCount(h: object): number;
  flows(h: object, q: NativeFlowQuery): { flows: NativeFlow[]; next: number | null };
  deleteFlows(h: object, q: NativeFlowQuery): { deleted: number; next: number | null };
  flowStats(h: object, f: { cursor: number; maxScan: number }): FlowStatsPage;
  sweepFlows(h: object, f: { cursor: number; maxScan: number }): { freed: number; next: number | null };
  activeFlows(h: object): ActiveFlows;
  explain(h: object, q: { family: Family; proto: number; client: Uint8Array; cport: number; vip: Uint8Array; vport: number; syn: 0 | 1 }): Uint32Array;
  flowMoves(h: object, q: FlowMoveQuestion & { cursor: number; maxScan: number }): FlowMovesPage;
  watchdogStart(h: object, o: { path: string; everyMs: number; staleMs: number }): void;
  setSteering(h: object, v: { vips4: Uint8Array; vips6: Uint8Array } | null): void;
  watchdogStats(h: object): WatchdogStats;
  queueErrors(h: object): Array<Omit<QueueFailure, 'queue'> | null>;
  probe(h: object, p: { slot: number; family: Family; src: Uint8Array; dst: Uint8Array; sport: number; dport: number; seq: number }): void;
  probeState(h: object, p: { slot: number; sport: number; seq: number }): number;
  traceSet(h: object, slot: number, m: NativeTraceMatch | null): void;
  traceDrain(h: object): { records: Buffer; dropped: number };
  syncSet(h: object, on: boolean): void;
  syncDrain(h: object): { records: Buffer; dropped: number };
  syncApply(h: object, records: Uint8Array): SyncApplied;
  syncCheck(h: object, records: Uint8Array): Uint32Array;
  layout(): unknown; // checked by checkLayout (src/dataplane/addon-layout.ts)
}

/** The flow table's file as this process found it (native/flow_file.h). */
export interface FlowFileState {
  adopted: boolean; // the previous l4nat's entries were taken over
  existed: boolean; // a file was there
  reason: string; // when not adopted: why not (native/core/flow_segment.c l4_flow_segment_reason)
  repaired: number; // entries a crashed writer left half-written, freed
}

/** What syncApply did with peers' records (native/sync.h struct l4_sync_applied). */
export interface SyncApplied {
  learned: number;
  kept: number;
  forgotten: number;
  invalid: number;
}

/** Which entries flows()/deleteFlows() take (native/core/flow_query.h): every condition given must hold. */
export interface NativeFlowQuery {
  backend?: number;
  service?: number;
  client?: Uint8Array; // 16 bytes, an IPv4 address zero-padded
  states?: number; // 1 << the layout's flowClasses number, for each state taken
  limit?: number;
  cursor?: number;
  maxScan?: number;
}
export interface NativeFlow {
  client: Uint8Array;
  vip: Uint8Array;
  cport: number;
  vport: number;
  proto: number;
  backend: number;
  service: number;
  state: number; // FL_* bits
  stateClass: number; // the state a listing shows: the layout's flowClasses number
  idle: number;
  age: number; // seconds since the entry was created, to 4 s (native/core/flow_table.h)
  learned: number; // 1: learned from a cluster peer (flow-state sync)
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

let addon: { a: Addon; layout: AddonLayout } | undefined;
/** Loads the addon once, refusing one whose layout is not the one src/ expects (src/dataplane/addon-layout.ts). */
function loaded(): { a: Addon; layout: AddonLayout } {
  if (!addon) {
    // dist/src/dataplane/addon.js -> build/Release/l4nat.node at the package root
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
