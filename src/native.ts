// The data-plane addon, wrapped. Layers: native/worker.c (threads, TUN) -> native/addon.c (Node-API,
// thin) -> this file, which validates arguments, owns the handle's lifetime and gives counters names.
import { join } from 'path';
import { isIP } from 'net';
import { bufferToIp, ipToBuffer, type Family } from './host/addr';
import type { TablesInput } from './tables';

interface Addon {
  open(o: DataplaneOptions): object;
  info(h: object): { ifname: string; queues: number; offloads: number; flowCapacity: number; counterWords: number; counters: ArrayBuffer };
  publish(h: object, t: TablesInput): void;
  start(h: object): void;
  stop(h: object): void;
  setPersist(h: object, persist: boolean): void;
  close(h: object, keepDevice: boolean): void;
  flowCount(h: object): number;
  flows(h: object, f: NativeFlowFilter): NativeFlow[];
  deleteFlows(h: object, f: NativeFlowFilter): number;
  layout(): { queueCounters: string[]; dropReasons: string[]; objectCounters: string[]; svcWords: number; bkWords: number; flowEntryBytes: number };
}

interface NativeFlowFilter {
  backend?: number;
  client?: Uint8Array;
  limit?: number;
}
interface NativeFlow {
  client: Uint8Array;
  vip: Uint8Array;
  cport: number;
  vport: number;
  proto: number;
  backend: number;
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
  state: string; // e.g. "ESTABLISHED", "SYN", "FIN_WAIT", "CLOSE", "UDP"
  idleSeconds: number;
}

export interface FlowFilter {
  backendSlot?: number;
  client?: string;
  limit?: number;
}

const FL = { SYN: 1, REPLY: 2, EST: 4, FIN_C: 8, FIN_B: 16, RST: 32 };
function stateName(proto: number, s: number): string {
  if (proto !== 6) return 'UDP';
  if (s & FL.RST || (s & (FL.FIN_C | FL.FIN_B)) === (FL.FIN_C | FL.FIN_B)) return 'CLOSE';
  if (s & (FL.FIN_C | FL.FIN_B)) return 'FIN_WAIT';
  if (s & FL.EST) return 'ESTABLISHED';
  return s & FL.REPLY ? 'SYN_RECV' : 'SYN_SENT';
}

function nativeFilter(f: FlowFilter): NativeFlowFilter {
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
  if (f.limit !== undefined) {
    if (!Number.isInteger(f.limit) || f.limit < 1) throw new RangeError(`flows: limit must be a positive integer, got ${String(f.limit)}`);
    out.limit = f.limit;
  }
  return out;
}

let addon: Addon | undefined;
export function loadAddon(): Addon {
  if (!addon) {
    // dist/src/native.js -> build/Release/l4nat.node at the package root
    addon = require(join(__dirname, '..', '..', 'build', 'Release', 'l4nat.node')) as Addon;
  }
  return addon;
}

export const TUN_OFFLOADS: Record<string, number> = { csum: 0x01, tso4: 0x02, tso6: 0x04, tso_ecn: 0x08, uso4: 0x20, uso6: 0x40 };

export interface DataplaneOptions {
  ifname: string;
  queues: number;
  flowCapacity: number;
  maxServices: number;
  maxBackends: number;
  /** After its queue drains, a worker keeps reading this many microseconds before it sleeps (0 = never).
   * Default: $L4NAT_BUSY_POLL_US, else DEFAULT_BUSY_POLL_US. */
  busyPollUs?: number;
}

export const DEFAULT_BUSY_POLL_US = 0;

function defaultBusyPoll(): number {
  const env = process.env.L4NAT_BUSY_POLL_US;
  if (env === undefined || env === '') return DEFAULT_BUSY_POLL_US;
  if (!/^\d+$/.test(env) || Number(env) > 100_000) throw new RangeError(`L4NAT_BUSY_POLL_US must be microseconds from 0 to 100000, got ${JSON.stringify(env)}`);
  return Number(env);
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
  private readonly layout: ReturnType<Addon['layout']>;

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
    const a = loadAddon();
    this.layout = a.layout();
    this.opts = { ...opts };
    this.handle = a.open(opts);
    try {
      const info = a.info(this.handle);
      this.ifname = info.ifname;
      this.queues = info.queues;
      this.flowCapacity = info.flowCapacity;
      this.counterWords = info.counterWords;
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
  }

  start(): void {
    loadAddon().start(this.h());
  }

  stop(): void {
    loadAddon().stop(this.h());
  }

  /** A persistent TUN outlives the process, so a restarted l4nat re-attaches to it (DESIGN.md item 6). */
  setPersist(persist: boolean): void {
    loadAddon().setPersist(this.h(), persist);
  }

  flowCount(): number {
    return loadAddon().flowCount(this.h());
  }

  /** Lists live flow-table entries (walks the whole table: an admin operation, not for hot paths). */
  flows(filter: FlowFilter = {}): FlowEntry[] {
    return loadAddon()
      .flows(this.h(), nativeFilter({ limit: 1000, ...filter }))
      .map((f) => ({
        client: bufferToIp(f.client),
        clientPort: f.cport,
        vip: bufferToIp(f.vip),
        vipPort: f.vport,
        proto: f.proto === 6 ? 'tcp' : 'udp',
        backendSlot: f.backend,
        state: stateName(f.proto, f.state),
        idleSeconds: f.idle,
      }));
  }

  /**
   * Removes matching entries. Their next packets are forwarded by the current Maglev table; a TCP flow
   * that lands on another backend is reset by it (that is how a failed backend's flows are reset).
   */
  deleteFlows(filter: FlowFilter): number {
    if (filter.backendSlot === undefined && filter.client === undefined) throw new TypeError('deleteFlows: give backendSlot and/or client (refusing to delete every flow)');
    return loadAddon().deleteFlows(this.h(), nativeFilter(filter));
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
    const { queueCounters, dropReasons, objectCounters } = this.layout;
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
      for (let k = 0; k < no; k++) if (this.words[base + k] !== 0n) nonzero = true;
      if (!nonzero) return;
      const o = m.get(slot) ?? Object.fromEntries(objectCounters.map((n) => [n, 0]));
      for (let k = 0; k < no; k++) o[objectCounters[k]] += Number(this.words[base + k]);
      m.set(slot, o);
    };
    for (let q = 0; q < this.queues; q++) {
      const base = q * this.counterWords;
      const mine: CounterMap = {};
      queueCounters.forEach((name, i) => {
        const v = Number(this.words[base + i]);
        if (name === 'heartbeat_ms') {
          heartbeatsMs.push(v);
          return;
        }
        mine[name] = v;
        total[name] = (total[name] ?? 0) + v;
      });
      perQueue.push(mine);
      dropReasons.forEach((name, i) => {
        if (name === 'none') return;
        drops[name] = (drops[name] ?? 0) + Number(this.words[base + nq + i]);
      });
      const objBase = base + nq + nd;
      for (let s = 0; s < this.opts.maxServices; s++) addObj(services, s, objBase + s * no);
      const bkBase = objBase + this.opts.maxServices * no;
      for (let b = 0; b < this.opts.maxBackends; b++) addObj(backends, b, bkBase + b * no);
    }
    return { total, drops, perQueue, heartbeatsMs, services, backends };
  }
}
