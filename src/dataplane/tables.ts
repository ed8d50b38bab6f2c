// Building the data plane's service table: services and backends get stable slots (so counters and flow
// entries keep meaning across updates), each service gets its Maglev ring, and everything is laid out as
// the typed arrays native/core/tables.h documents. Pure: the result is handed to Dataplane.publish().
import { isIPv4, isIPv6 } from 'net';
import { ipToBuffer, type Family } from '../host/addr';
import { legacyRingIds, ringIds } from './affinity';
import type { LocalAddresses } from '../host/local-addrs';
import { buildMaglev } from './maglev';
import { backendId, serviceId, type Balance, type HashMode, type ServiceSpec, type Timeouts, type WhenFull } from '../config/model';

export interface TablesInput {
  svcWords: Uint32Array;
  svcAddrs: Uint8Array;
  bkWords: Uint32Array;
  bkAddrs: Uint8Array;
  rings: Uint32Array;
  hashKey: Uint8Array;
  timeouts: Uint32Array;
  options: number;
  limitWords?: Uint32Array; // [service_slot, rate, burst]
  aclWords?: Uint32Array; // [service_slot, deny, prefix_len]
  aclAddrs?: Uint8Array;
  timeoutWords?: Uint32Array; // [service_slot, tcp_syn, tcp_established, tcp_fin, tcp_close, udp], 0 = default
  prevRingWords?: Uint32Array; // [service_slot, ring_offset, ring_size]: a service's ring before its last change
  probeAddr4?: Uint8Array; // data-plane probe source addresses (native/core/probe.h)
  probeAddr6?: Uint8Array;
  localAddrs4?: Uint8Array; // this host's own addresses, 4 bytes each (src/host/local-addrs.ts)
  localAddrs6?: Uint8Array; // 16 bytes each
}

/**
 * Per-service data-plane protections (issue 7): a per-client-address new-flow rate limit (token bucket:
 * `rate` new flows per second, bursts of `burst`), and source CIDR lists (deny always wins; if any allow
 * entry exists, a source must match one). Optional fields a service spec may carry.
 */
export interface ServiceProtections {
  newFlowRate?: { rate: number; burst: number };
  allowSources?: readonly string[]; // CIDRs, e.g. "10.0.0.0/8", "2001:db8::/32"
  denySources?: readonly string[];
  /** The service's own idle timeouts (seconds); unset fields keep the global ones. */
  timeouts?: Partial<Timeouts>;
  /** How new flows are admitted (issue 17; native/core/admission.h): the ring's choice (maglev, the default), or
   * under a load bound of `balanceFactor` times the average (bounded). */
  balance?: Balance;
  balanceFactor?: number;
  /** What a new flow gets when every candidate backend is at its max_flows (default drop). */
  whenFull?: WhenFull;
}

// The word layouts of native/core/tables.h, checked against the addon at load (src/dataplane/addon-layout.ts).
export const SVC_WORDS = 11; // [slot, family, proto, hash_mode, port, ring_offset, ring_size, flags, balance, factor_pct, when_full]
export const BK_WORDS = 8; // [slot, service_slot, family, proto, port, flags, weight, max_flows]
// The rows of the optional arrays, as buildTables and withPreviousRings push them (see TablesInput).
export const LIMIT_WORDS = 3;
export const ACL_WORDS = 3;
export const TIMEOUT_WORDS = 6;
export const PREV_RING_WORDS = 3;
export const NO_BACKEND = 0xffffffff;
/** A service's hash_mode word. */
export const HASH_MODES: Readonly<Record<HashMode, number>> = { '5tuple': 0, src: 1 };
/** A service's balance word, its when_full word, and the bounds of its balance factor in percent. */
export const BALANCE_MODES: Readonly<Record<Balance, number>> = { maglev: 0, bounded: 1 };
export const WHEN_FULL: Readonly<Record<WhenFull, number>> = { drop: 0, reject: 1 };
export const FACTOR_PCT = { min: 101, max: 10000 } as const;
/** The balance factor of a `bounded` service that gives none (HAProxy's hash-balance-factor examples use 125-150). */
export const DEFAULT_BALANCE_FACTOR = 1.25;
/** The largest max_flows a backend may have (a flow table holds at most 2^28 entries). */
export const MAX_FLOWS_LIMIT = 1 << 28;

/** Why a balance factor is refused (undefined: it is fine): above 1 (1 would refuse every backend's next flow), at
 * most 100 (beyond, the bound never bites), in hundredths. */
export function balanceFactorProblem(f: unknown): string | undefined {
  if (typeof f !== 'number' || !Number.isFinite(f)) return `got ${JSON.stringify(f)}, expected a number from 1.01 to 100, such as 1.25`;
  const pct = Math.round(f * 100);
  if (Math.abs(pct - f * 100) > 1e-6) return `got ${f}, expected at most two decimals (hundredths), such as 1.25`;
  if (pct < FACTOR_PCT.min || pct > FACTOR_PCT.max) return `got ${f}, expected a number above 1.0 (from 1.01) and at most 100, such as 1.25: a factor of 1 or less would refuse every backend's next flow`;
  return undefined;
}

/** Why a max_flows is refused (undefined: it is fine). */
export function maxFlowsProblem(n: unknown): string | undefined {
  if (typeof n !== 'number' || !Number.isInteger(n) || n < 1 || n > MAX_FLOWS_LIMIT) return `got ${JSON.stringify(n)}, expected a whole number of flows from 1 to ${MAX_FLOWS_LIMIT}`;
  return undefined;
}

/** A backend's flags word. NO_SECOND_CHANCE: down, never a second-chance target (native/core/dataplane.c). */
export const BK_FLAGS = { NO_SECOND_CHANCE: 2 } as const;
/** The table's options word. */
export const OPT_FLAGS = { ICMP_ECHO: 1, NO_ICMP_TRANSLATE: 2 } as const;

const PROTO_NUMBER = { tcp: 6, udp: 17 } as const;

/**
 * Hands out the lowest free slot per id and keeps it while the id exists. Two steps, so that a rejected
 * update changes nothing: plan() computes an assignment without touching the allocator, commit() adopts it
 * once the data plane has accepted the table.
 */
export class SlotAllocator {
  private slots = new Map<string, number>();
  constructor(readonly max: number) {}

  plan(ids: readonly string[]): Map<string, number> {
    const keep = new Set(ids);
    const used = new Set<number>();
    for (const [id, s] of this.slots) if (keep.has(id)) used.add(s);
    const out = new Map<string, number>();
    let next = 0;
    for (const id of ids) {
      let s = this.slots.get(id);
      if (s === undefined) {
        while (used.has(next)) next++;
        if (next >= this.max) throw new RangeError(`too many entries: at most ${this.max} (raise the limit at start)`);
        s = next;
        used.add(s);
      }
      out.set(id, s);
    }
    return out;
  }

  commit(assigned: Map<string, number>): void {
    this.slots = new Map(assigned);
    this.ids = undefined;
  }

  /** Starts from the slots a previous l4nat gave (its flow table was taken over): the same ids keep them. */
  seed(slots: ReadonlyMap<string, number>): void {
    this.slots = new Map([...slots].filter(([, s]) => s < this.max));
  }

  /** Every id's slot as committed. */
  entries(): Map<string, number> {
    return new Map(this.slots);
  }

  get(id: string): number | undefined {
    return this.slots.get(id);
  }

  private ids: Map<number, string> | undefined;
  /** The id holding a slot (flow-state sync names slots by identity); the reverse map is built once per commit. */
  idOf(slot: number): string | undefined {
    this.ids ??= new Map([...this.slots].map(([id, s]) => [s, id]));
    return this.ids.get(slot);
  }
}

export interface TableOptions {
  hashKey: Buffer;
  maglevSize: number;
  timeouts: Timeouts;
  icmpEcho: boolean;
  icmpTranslate: boolean;
  /** Source addresses of data-plane health probes (the backends' answers to them are consumed, not forwarded). */
  probeSource?: { ipv4?: string; ipv6?: string };
}

export interface BuiltTables {
  input: TablesInput;
  serviceSlots: Map<string, number>; // serviceId -> slot
  backendSlots: Map<string, number>; // `${serviceId}|${backendId}` -> slot
}

export function backendKey(s: ServiceSpec, b: ServiceSpec['backends'][number]): string {
  return `${serviceId(s)}|${backendId(b, s.proto)}`;
}

/**
 * Builds the table. A backend with weight 0 stays in the table (its established flows keep going and its
 * replies are still translated) but gets no slot in the ring: that is how a backend is drained.
 * Only plans slots: the caller commits them (SlotAllocator.commit) once the data plane accepted the table.
 */
/** Parses "ADDR/LEN" for a service of `family`; throws naming the service and the bad text. */
export function parseCidr(text: string, family: Family, where: string): { addr: Buffer; prefix: number } {
  const m = /^([^/]+)\/(\d{1,3})$/.exec(text);
  const addr = m?.[1] ?? '';
  const ok = m !== null && (family === 4 ? isIPv4(addr) : isIPv6(addr));
  const prefix = Number(m?.[2]);
  if (!ok || prefix > (family === 4 ? 32 : 128)) {
    throw new RangeError(`${where}: "${text}" is not an IPv${family} CIDR (ADDR/LEN with LEN <= ${family === 4 ? 32 : 128})`);
  }
  return { addr: ipToBuffer(addr, family), prefix };
}

export function buildTables(services: readonly (ServiceSpec & ServiceProtections)[], svcAlloc: SlotAllocator, bkAlloc: SlotAllocator, opts: TableOptions): BuiltTables {
  const svcIds = services.map((s) => serviceId(s));
  const bkIds = services.flatMap((s) => s.backends.map((b) => backendKey(s, b)));
  const serviceSlots = svcAlloc.plan(svcIds);
  const backendSlots = bkAlloc.plan(bkIds);

  const nBk = bkIds.length;
  const svcWords = new Uint32Array(services.length * SVC_WORDS);
  const svcAddrs = new Uint8Array(services.length * 16);
  const bkWords = new Uint32Array(nBk * BK_WORDS);
  const bkAddrs = new Uint8Array(nBk * 16);
  const rings = new Uint32Array(services.length * opts.maglevSize);
  let bi = 0;
  services.forEach((s, si) => {
    const slot = serviceSlots.get(svcIds[si]) as number;
    const ringOffset = si * opts.maglevSize;
    const bSlots = s.backends.map((b) => backendSlots.get(backendKey(s, b)) as number);
    const table = maglevOf(s, opts);
    let any = false;
    for (let i = 0; i < table.length; i++) {
      const idx = table[i];
      rings[ringOffset + i] = idx < 0 ? NO_BACKEND : bSlots[idx];
      if (idx >= 0) any = true;
    }
    const balance = s.balance ?? 'maglev';
    const factor = balance === 'bounded' ? (s.balanceFactor ?? DEFAULT_BALANCE_FACTOR) : 0;
    const where = `service ${svcIds[si]}`;
    if (!(balance in BALANCE_MODES)) throw new RangeError(`${where}: balance: got ${JSON.stringify(balance)}, expected maglev or bounded`);
    const fp = balance === 'bounded' ? balanceFactorProblem(factor) : undefined;
    if (fp) throw new RangeError(`${where}: balance_factor: ${fp}`);
    const whenFull = s.whenFull ?? 'drop';
    if (!(whenFull in WHEN_FULL)) throw new RangeError(`${where}: when_full: got ${JSON.stringify(whenFull)}, expected drop or reject`);
    svcWords.set([slot, s.family, PROTO_NUMBER[s.proto], HASH_MODES[s.hash], s.port, ringOffset, any ? opts.maglevSize : 0, 0, BALANCE_MODES[balance], Math.round(factor * 100), WHEN_FULL[whenFull]], si * SVC_WORDS);
    svcAddrs.set(ipToBuffer(s.vip, s.family), si * 16);
    s.backends.forEach((b, k) => {
      const mp = b.maxFlows !== undefined ? maxFlowsProblem(b.maxFlows) : undefined;
      if (mp) throw new RangeError(`${where}: backend ${backendId(b, s.proto)}: max_flows: ${mp}`);
      bkWords.set([bSlots[k], slot, b.family, PROTO_NUMBER[s.proto], b.port, b.down ? BK_FLAGS.NO_SECOND_CHANCE : 0, b.weight, b.maxFlows ?? 0], bi * BK_WORDS);
      bkAddrs.set(ipToBuffer(b.addr, b.family), bi * 16);
      bi++;
    });
  });
  const limits: number[] = [];
  const acl: number[] = [];
  const aclAddrs: Buffer[] = [];
  const timeoutWords: number[] = [];
  services.forEach((s, si) => {
    const slot = serviceSlots.get(svcIds[si]) as number;
    const where = `service ${svcIds[si]}`;
    if (s.timeouts) {
      const o = s.timeouts;
      const w = [o.tcpSyn, o.tcpEstablished, o.tcpFin, o.tcpClose, o.udp].map((v, k) => {
        if (v === undefined) return 0;
        if (!Number.isInteger(v) || v < 1 || v > 2 ** 31 - 1) throw new RangeError(`${where}: timeout ${['tcpSyn', 'tcpEstablished', 'tcpFin', 'tcpClose', 'udp'][k]} must be whole seconds from 1 to 2147483647, got ${String(v)}`);
        return v;
      });
      if (w.some((v) => v !== 0)) timeoutWords.push(slot, ...w);
    }
    if (s.newFlowRate) {
      const { rate, burst } = s.newFlowRate;
      for (const [k, v] of Object.entries({ rate, burst })) {
        if (!Number.isInteger(v) || v < 1 || v > 4_000_000) throw new RangeError(`${where}: newFlowRate.${k} must be an integer from 1 to 4000000, got ${String(v)}`);
      }
      limits.push(slot, rate, burst);
    }
    for (const [deny, list] of [[0, s.allowSources ?? []], [1, s.denySources ?? []]] as const) {
      for (const text of list) {
        const c = parseCidr(text, s.family, where);
        acl.push(slot, deny, c.prefix);
        aclAddrs.push(c.addr.length === 16 ? c.addr : Buffer.concat([c.addr, Buffer.alloc(12)]));
      }
    }
  });
  const t = opts.timeouts;
  const input: TablesInput = {
    svcWords,
    svcAddrs,
    bkWords,
    bkAddrs,
    rings,
    hashKey: new Uint8Array(opts.hashKey),
    timeouts: new Uint32Array([t.tcpSyn, t.tcpEstablished, t.tcpFin, t.tcpClose, t.udp]),
    options: (opts.icmpEcho ? OPT_FLAGS.ICMP_ECHO : 0) | (opts.icmpTranslate ? 0 : OPT_FLAGS.NO_ICMP_TRANSLATE),
    limitWords: new Uint32Array(limits),
    aclWords: new Uint32Array(acl),
    aclAddrs: new Uint8Array(Buffer.concat(aclAddrs)),
    timeoutWords: new Uint32Array(timeoutWords),
  };
  const ps = opts.probeSource;
  if (ps?.ipv4 !== undefined) {
    if (!isIPv4(ps.ipv4)) throw new RangeError(`probe source ipv4: "${ps.ipv4}" is not an IPv4 address`);
    input.probeAddr4 = new Uint8Array(ipToBuffer(ps.ipv4, 4));
  }
  if (ps?.ipv6 !== undefined) {
    if (!isIPv6(ps.ipv6)) throw new RangeError(`probe source ipv6: "${ps.ipv6}" is not an IPv6 address`);
    input.probeAddr6 = new Uint8Array(ipToBuffer(ps.ipv6, 6));
  }
  return { input, serviceSlots, backendSlots };
}

/** The host's own addresses as a table carries them: an ICMP error from one of them about a reply comes out of
 * the TUN from the VIP (native/core/dataplane.c icmp_error). */
export function localAddressInput(l: LocalAddresses): Pick<TablesInput, 'localAddrs4' | 'localAddrs6'> {
  const bytes = (addrs: readonly string[], family: Family): Uint8Array => new Uint8Array(Buffer.concat(addrs.map((a) => ipToBuffer(a, family))));
  return { localAddrs4: bytes(l.v4, 4), localAddrs6: bytes(l.v6, 6) };
}

/**
 * A service's ring as backend keys (`serviceId|backendId`), so it can be laid out again after slots moved on.
 * `idx[i]` indexes `keys`, or is NO_BACKEND.
 */
export interface KeyedRing {
  keys: string[];
  idx: Uint32Array;
}

/** Whether two keyed rings send every slot to the same backend. */
export function sameKeyedRing(a: KeyedRing, b: KeyedRing): boolean {
  if (a.idx.length !== b.idx.length) return false;
  for (let i = 0; i < a.idx.length; i++) {
    const x = a.idx[i] === NO_BACKEND ? undefined : a.keys[a.idx[i]];
    const y = b.idx[i] === NO_BACKEND ? undefined : b.keys[b.idx[i]];
    if (x !== y) return false;
  }
  return true;
}

/** Backend keys by slot in `built` (built once for all of its services' keyedRing calls). */
export function backendKeysBySlot(built: BuiltTables): Map<number, string> {
  const slotKey = new Map<number, string>();
  for (const [k, slot] of built.backendSlots) slotKey.set(slot, k);
  return slotKey;
}

/** The ring of the service at `si` in `built`, as keys. */
export function keyedRing(built: BuiltTables, si: number, size: number, slotKey = backendKeysBySlot(built)): KeyedRing {
  const keys: string[] = [];
  const at = new Map<string, number>();
  const idx = new Uint32Array(size);
  for (let i = 0; i < size; i++) {
    const slot = built.input.rings[si * size + i];
    const k = slot === NO_BACKEND ? undefined : slotKey.get(slot);
    if (k === undefined) {
      idx[i] = NO_BACKEND;
      continue;
    }
    let j = at.get(k);
    if (j === undefined) {
      j = keys.length;
      keys.push(k);
      at.set(k, j);
    }
    idx[i] = j;
  }
  return { keys, idx };
}

/**
 * The ring a source-hashed service had before backends were named by their host alone in such rings
 * (src/dataplane/affinity.ts), as keys; undefined for a 5-tuple service (its ring never changed). l4nat starts with it as
 * the service's previous ring, so the second chance finds the backend of a TCP flow begun under an older
 * l4nat (an upgrade by graceful restart, or a cluster peer not yet upgraded).
 */
export function legacyKeyedRing(s: ServiceSpec, opts: Pick<TableOptions, 'hashKey' | 'maglevSize'>): KeyedRing | undefined {
  if (s.hash !== 'src') return undefined;
  return specKeyedRing(s, opts, legacyRingIds(s));
}

/** A service's Maglev ring as buildTables lays it out: per slot, the index of its backend in s.backends, or -1. */
function maglevOf(s: ServiceSpec, opts: Pick<TableOptions, 'hashKey' | 'maglevSize'>, ids = ringIds(s)): ReturnType<typeof buildMaglev> {
  return buildMaglev(s.backends.map((b, k) => ({ id: ids[k], weight: b.weight })), { size: opts.maglevSize, key: opts.hashKey });
}

/** The ring a service spec makes (as buildTables would publish it), as keys: a planned change's rings (src/control/plan-preview.ts). */
export function specKeyedRing(s: ServiceSpec, opts: Pick<TableOptions, 'hashKey' | 'maglevSize'>, ids = ringIds(s)): KeyedRing {
  const table = maglevOf(s, opts, ids);
  return { keys: s.backends.map((b) => backendKey(s, b)), idx: Uint32Array.from(table, (i) => (i < 0 ? NO_BACKEND : i)) };
}

/**
 * Adds each service's previous ring (the data plane's second chance, native/core/dataplane.c) to a built
 * table: the rings are appended after the current ones, backends that no longer exist become NO_BACKEND.
 */
export function withPreviousRings(built: BuiltTables, previous: ReadonlyMap<string, KeyedRing>): TablesInput {
  const parts: Uint32Array[] = [built.input.rings];
  const words: number[] = [];
  let off = built.input.rings.length;
  for (const [sid, ring] of previous) {
    const slot = built.serviceSlots.get(sid);
    if (slot === undefined) continue;
    const slotOf = ring.keys.map((k) => built.backendSlots.get(k) ?? NO_BACKEND);
    if (slotOf.every((x) => x === NO_BACKEND)) continue;
    const r = new Uint32Array(ring.idx.length);
    for (let i = 0; i < r.length; i++) r[i] = ring.idx[i] === NO_BACKEND ? NO_BACKEND : slotOf[ring.idx[i]];
    parts.push(r);
    words.push(slot, off, r.length);
    off += r.length;
  }
  if (!words.length) return built.input;
  const rings = new Uint32Array(off);
  let o = 0;
  for (const p of parts) {
    rings.set(p, o);
    o += p.length;
  }
  return { ...built.input, rings, prevRingWords: new Uint32Array(words) };
}
