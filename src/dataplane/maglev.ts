// Maglev lookup table: backends (stable id + weight) → Int32Array of M slots, each the index of a backend in the
// caller's array. Pure function, no I/O; the datapath hashes a flow to a slot and reads the backend from here.
//
// Reference: D. E. Eisenbud et al., "Maglev: A Fast and Reliable Software Network Load Balancer", NSDI 2016,
// section 3.4. Models: Linux net/netfilter/ipvs/ip_vs_mh.c (prime table sizes, weights reduced by their gcd) and
// Katran katran/lib/MaglevHashV2.cpp (weighted fill in rounds with a running credit per backend; see the fill
// below for how and why this one differs).
import { createHmac } from 'node:crypto';

export interface MaglevBackend {
  /** Stable identity, e.g. "10.0.1.11:8080/tcp". Only the id feeds the hash, never the array position. */
  id: string;
  /** Integer in [0, MAGLEV_MAX_WEIGHT]; 0 means "configured but gets no slots" (drained). */
  weight: number;
}

export interface MaglevOptions {
  /** Table size M: a prime in [MAGLEV_MIN_SIZE, MAGLEV_MAX_SIZE]. Default DEFAULT_MAGLEV_SIZE. */
  size?: number;
  /** HMAC-SHA256 key for the per-backend permutation: exactly MAGLEV_KEY_BYTES bytes. */
  key: Buffer;
}

/** 65537 is prime; the paper suggests M well above 100·N so that each backend's share is close to M/N. */
export const DEFAULT_MAGLEV_SIZE = 65537;
export const MAGLEV_MIN_SIZE = 3;
/** 2^24: keeps every cursor and slot index far inside int32, and the table at most 64 MiB. */
export const MAGLEV_MAX_SIZE = 16777216;
export const MAGLEV_KEY_BYTES = 16;
/** Keeps M·w below 2^40, so the quota arithmetic (M·w mod Σw) is exact in doubles. */
export const MAGLEV_MAX_WEIGHT = 65535;

/** Deterministic primality for safe integers (trial division; sizes are at most 2^24, so sqrt <= 4096). */
export function isPrime(n: number): boolean {
  if (!Number.isSafeInteger(n) || n < 2) return false;
  if (n < 4) return true;
  if (n % 2 === 0 || n % 3 === 0) return false;
  for (let d = 5; d * d <= n; d += 6) {
    if (n % d === 0 || n % (d + 2) === 0) return false;
  }
  return true;
}

/** The smallest prime at least n (for error messages that suggest a table size). */
export function nextPrime(n: number): number {
  let p = Math.max(2, Math.ceil(n));
  while (!isPrime(p)) p++;
  return p;
}

function gcd(a: number, b: number): number {
  while (b !== 0) {
    const t = a % b;
    a = b;
    b = t;
  }
  return a;
}

function describe(v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v);
  if (typeof v === 'number' || typeof v === 'bigint' || typeof v === 'boolean') return String(v);
  if (v === null) return 'null';
  if (Buffer.isBuffer(v)) return `a Buffer of ${v.length} bytes`;
  if (Array.isArray(v)) return 'an array';
  return typeof v;
}

function validateSize(size: unknown): number {
  if (typeof size !== 'number') {
    throw new TypeError(`maglev: size must be a number (a prime between ${MAGLEV_MIN_SIZE} and ${MAGLEV_MAX_SIZE}), got ${describe(size)}`);
  }
  if (!(size >= MAGLEV_MIN_SIZE && size <= MAGLEV_MAX_SIZE) || !isPrime(size)) {
    throw new RangeError(`maglev: size must be a prime number between ${MAGLEV_MIN_SIZE} and ${MAGLEV_MAX_SIZE}, got ${size}`);
  }
  return size;
}

function validateKey(key: unknown): Buffer {
  if (!Buffer.isBuffer(key)) {
    throw new TypeError(`maglev: key must be a Buffer of exactly ${MAGLEV_KEY_BYTES} bytes, got ${describe(key)}`);
  }
  if (key.length !== MAGLEV_KEY_BYTES) {
    throw new RangeError(`maglev: key must be exactly ${MAGLEV_KEY_BYTES} bytes, got ${key.length} bytes`);
  }
  return key;
}

function validateBackends(backends: unknown): readonly MaglevBackend[] {
  if (!Array.isArray(backends)) {
    throw new TypeError(`maglev: backends must be an array of { id: string, weight: number }, got ${describe(backends)}`);
  }
  const seen = new Map<string, number>();
  for (let i = 0; i < backends.length; i++) {
    const b: unknown = backends[i];
    if (typeof b !== 'object' || b === null) {
      throw new TypeError(`maglev: backends[${i}] must be an object { id: string, weight: number }, got ${describe(b)}`);
    }
    const { id, weight } = b as { id: unknown; weight: unknown };
    if (typeof id !== 'string' || id.length === 0) {
      throw new TypeError(`maglev: backends[${i}].id must be a non-empty string, got ${describe(id)}`);
    }
    const first = seen.get(id);
    if (first !== undefined) {
      throw new TypeError(`maglev: backends[${i}].id must be unique, ${JSON.stringify(id)} is also backends[${first}].id`);
    }
    seen.set(id, i);
    if (typeof weight !== 'number') {
      throw new TypeError(`maglev: backends[${i}].weight must be a number (an integer between 0 and ${MAGLEV_MAX_WEIGHT}), got ${describe(weight)}`);
    }
    if (!Number.isInteger(weight) || weight < 0 || weight > MAGLEV_MAX_WEIGHT) {
      throw new RangeError(`maglev: backends[${i}].weight must be an integer between 0 and ${MAGLEV_MAX_WEIGHT}, got ${weight}`);
    }
  }
  return backends as readonly MaglevBackend[];
}

/** Plain UTF-16 code-unit order (what `<` does on strings): locale-independent, so every host sorts alike. */
function compareIds(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * Build the Maglev lookup table. Slot values are indexes into `backends` (the caller's array), or -1 in every
 * slot when no backend has weight > 0. The result depends only on the set of (id, weight) pairs, the key and
 * the size — never on the order of `backends` nor on the process or host.
 */
export function buildMaglev(backends: readonly MaglevBackend[], opts: MaglevOptions): Int32Array {
  if (typeof opts !== 'object' || opts === null) {
    throw new TypeError(`maglev: opts must be an object { size?: number, key: Buffer }, got ${describe(opts)}`);
  }
  const m = validateSize(opts.size ?? DEFAULT_MAGLEV_SIZE);
  const key = validateKey(opts.key);
  validateBackends(backends);

  const table = new Int32Array(m).fill(-1);

  // Active backends (weight > 0), ordered by id so the fill — which is order-sensitive — sees the same sequence
  // whatever order the caller passed.
  const active: number[] = [];
  for (let i = 0; i < backends.length; i++) if (backends[i].weight > 0) active.push(i);
  if (active.length === 0) return table;
  active.sort((a, b) => compareIds(backends[a].id, backends[b].id));
  const n = active.length;

  // Reduce weights by their gcd (as ip_vs_mh.c does). Everything below depends only on the ratios of the
  // weights, so this does not change the table — {2,2,4} and {1,1,2} build the same one — it keeps numbers small.
  let g = 0;
  for (const i of active) g = gcd(backends[i].weight, g);
  let sum = 0;
  for (const i of active) sum += backends[i].weight / g;

  // Per-backend permutation (offset, skip) from HMAC-SHA256(key, id). BigInt only here, once per backend: the
  // 64-bit halves are reduced mod M and mod M-1 exactly, then become plain numbers. Since M is prime and
  // 1 <= skip <= M-1, (offset + j·skip) mod M visits every slot exactly once for j = 0..M-1.
  const bigM = BigInt(m);
  const bigM1 = BigInt(m - 1);
  const cursor = new Int32Array(n); // (offset + j·skip) mod M for the backend's current j
  const skip = new Int32Array(n);
  const owner = new Int32Array(n); // index in the caller's array
  for (let k = 0; k < n; k++) {
    const i = active[k];
    const h = createHmac('sha256', key).update(backends[i].id, 'utf8').digest();
    cursor[k] = Number(h.readBigUInt64BE(0) % bigM);
    skip[k] = Number(h.readBigUInt64BE(8) % bigM1) + 1;
    owner[k] = i;
  }

  // Target slot counts: each backend's quota M·w/Σw, rounded by largest remainder (floor for all, then +1 for the
  // largest remainders, ties in id order), so every target is the floor or the ceiling of the quota and they sum
  // to M. All integers here are below 2^40 (M <= 2^24, w <= 2^16), so % and / are exact.
  const target = new Int32Array(n);
  const remainder = new Float64Array(n);
  let assigned = 0;
  for (let k = 0; k < n; k++) {
    const q = m * (backends[active[k]].weight / g);
    remainder[k] = q % sum;
    target[k] = (q - remainder[k]) / sum;
    assigned += target[k];
  }
  if (assigned < m) {
    const byRemainder = Array.from({ length: n }, (_, k) => k);
    byRemainder.sort((a, b) => remainder[b] - remainder[a] || a - b);
    for (let r = 0; assigned < m; r++, assigned++) target[byRemainder[r]]++;
  }

  // Fill in rounds with a running credit per backend, as Katran's MaglevHashV2: every round each backend adds its
  // weight to its credit, and when the credit reaches the largest weight it takes its next preferred empty slot and
  // pays that amount back. A backend then takes at most one slot per round and, after r rounds, floor(r·w/max)
  // slots: shares in proportion to the weights, the remainders carried in the credits instead of lost, and equal
  // weights get one slot each per round, as in the paper's own fill. Two changes to V2:
  //  1. The credits accrue the target counts above, not the raw weights. With raw weights the table fills up in a
  //     round cut short and the carried remainders are never paid out: the error grows up to 1 + w/mean(w) slots —
  //     one backend of weight 65535 among 999 of weight 1 took 65535 of 65537 slots instead of 64553. With the
  //     targets as weights and T = max target, after round T each backend holds exactly its target and the table is
  //     exactly full: no round is cut short.
  //  2. Rounds visit only the backends that take a slot: the credit crosses the threshold for the j-th time in
  //     round ceil(j·T/t), so each backend waits in a bucket queue (one FIFO list per round, intrusive, in typed
  //     arrays) for its next round. Cost O(M + N) whatever the weights, instead of N per round — which for that
  //     skewed example was ~65000 rounds × 1000 backends. Buckets start in id order and are FIFO, so the schedule
  //     is a function of the id-sorted input alone. With equal weights the sequence of takes is exactly the
  //     paper's (every backend in id order, round after round; the first M mod N by id get the extra slot).
  //
  // The cursor advances by skip (mod M by one subtraction) instead of recomputing (offset + j·skip) mod M: same
  // sequence, no multiplication, no allocation per slot; all values stay below 2^25.
  let rounds = 0;
  for (let k = 0; k < n; k++) if (target[k] > rounds) rounds = target[k];
  const head = new Int32Array(rounds + 1).fill(-1);
  const tail = new Int32Array(rounds + 1).fill(-1);
  const link = new Int32Array(n).fill(-1);
  const taken = new Int32Array(n);
  const enqueue = (k: number, r: number): void => {
    link[k] = -1;
    if (tail[r] === -1) head[r] = k;
    else link[tail[r]] = k;
    tail[r] = k;
  };
  // Round of the j-th take: ceil(j·T/t). j·T <= 2^48 and t <= 2^24, so a quotient that is not an integer is at
  // least 2^-24 away from one, far above the double's rounding error (2^-29 at 2^24): Math.ceil is exact.
  for (let k = 0; k < n; k++) if (target[k] > 0) enqueue(k, Math.ceil(rounds / target[k]));

  for (let r = 1; r <= rounds; r++) {
    for (let k = head[r]; k !== -1; ) {
      const following = link[k];
      const s = skip[k];
      let p = cursor[k];
      while (table[p] !== -1) {
        p += s;
        if (p >= m) p -= m;
      }
      table[p] = owner[k];
      p += s;
      if (p >= m) p -= m;
      cursor[k] = p;
      const j = ++taken[k];
      if (j < target[k]) enqueue(k, Math.ceil(((j + 1) * rounds) / target[k]));
      k = following;
    }
  }
  return table;
}

/** Number of slots held by each of the caller's `n` backends (slots of -1 are not counted). */
export function slotCounts(table: Int32Array, n: number): number[] {
  const counts = new Array<number>(n).fill(0);
  for (let s = 0; s < table.length; s++) {
    const b = table[s];
    if (b >= 0 && b < n) counts[b]++;
  }
  return counts;
}

/**
 * Fraction of slots whose backend id differs between two tables of the same size (each slot mapped through its
 * own id array; -1 compares as "no backend"). This is the share of new flows that would land elsewhere.
 */
export function maglevDisruption(before: Int32Array, beforeIds: string[], after: Int32Array, afterIds: string[]): number {
  if (before.length !== after.length) {
    throw new RangeError(`maglev: tables must have the same size to compare, got ${before.length} and ${after.length}`);
  }
  if (before.length === 0) return 0;
  let changed = 0;
  for (let s = 0; s < before.length; s++) {
    const a = before[s] >= 0 ? beforeIds[before[s]] : undefined;
    const b = after[s] >= 0 ? afterIds[after[s]] : undefined;
    if (a !== b) changed++;
  }
  return changed / before.length;
}
