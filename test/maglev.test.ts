// Maglev table (src/dataplane/maglev.ts): balance, determinism (input order, process), pinned outputs, disruption on
// backend removal/addition, and argument validation. Pure functions: no root, no devices, no timing assertions.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, createHmac } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import * as path from 'node:path';
import {
  DEFAULT_MAGLEV_SIZE,
  MaglevBackend,
  buildMaglev,
  isPrime,
  maglevDisruption,
  slotCounts,
} from '../src/dataplane/maglev';

const KEY = Buffer.from([0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f]);
const MAGLEV_JS = path.join(__dirname, '..', 'src', 'dataplane', 'maglev.js');

function backendId(i: number): string {
  return `10.0.${i >> 8}.${i & 255}:8080/tcp`;
}

function makeBackends(n: number, weight: (i: number) => number = () => 1): MaglevBackend[] {
  return Array.from({ length: n }, (_, i) => ({ id: backendId(i), weight: weight(i) }));
}

/** The table with each slot mapped to its backend id, so tables built from differently ordered arrays compare. */
function mappedIds(table: Int32Array, backends: readonly MaglevBackend[]): string[] {
  return Array.from(table, (b) => (b >= 0 ? backends[b].id : ''));
}

/** sha256 over the id-mapped table, one id per slot, '\n'-separated: independent of array order and endianness. */
function tableDigest(table: Int32Array, backends: readonly MaglevBackend[]): string {
  return createHash('sha256').update(mappedIds(table, backends).join('\n')).digest('hex');
}

/** Seeded PRNG (mulberry32) so shuffles are reproducible. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function shuffled<T>(items: readonly T[], seed: number): T[] {
  const out = items.slice();
  const rand = rng(seed);
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [out[i], out[j]] = [out[j], out[i]];
  }
  return out;
}

/**
 * The paper's fill (Eisenbud et al., NSDI 2016, Pseudocode 1) written literally, with BigInt and
 * (offset + j·skip) mod M recomputed at each probe: equal weights only. An independent check of the hashing,
 * the id order and the cursor arithmetic of buildMaglev.
 */
function paperFill(ids: string[], m: number, key: Buffer): string[] {
  const sorted = ids.slice().sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  const perm = sorted.map((id) => {
    const h = createHmac('sha256', key).update(id).digest();
    return { offset: h.readBigUInt64BE(0) % BigInt(m), skip: (h.readBigUInt64BE(8) % BigInt(m - 1)) + 1n };
  });
  const next = sorted.map(() => 0n);
  const entry = new Array<string>(m).fill('');
  let n = 0;
  for (;;) {
    for (let i = 0; i < sorted.length; i++) {
      let c = Number((perm[i].offset + next[i] * perm[i].skip) % BigInt(m));
      while (entry[c] !== '') {
        next[i]++;
        c = Number((perm[i].offset + next[i] * perm[i].skip) % BigInt(m));
      }
      entry[c] = sorted[i];
      next[i]++;
      if (++n === m) return entry;
    }
  }
}

test('isPrime and the default size', () => {
  assert.equal(DEFAULT_MAGLEV_SIZE, 65537);
  assert.ok(isPrime(DEFAULT_MAGLEV_SIZE));
  assert.ok(isPrime(655373));
  const small = Array.from({ length: 40 }, (_, i) => i).filter(isPrime);
  assert.deepEqual(small, [2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37]);
  for (const n of [0, 1, -7, 65536, 65535, 3.5, NaN, Infinity, 16777216, 25, 49]) assert.equal(isPrime(n), false, String(n));
});

test('golden table: M=13, backends a, b, c of weight 1, key 00..0f', () => {
  // Checked by hand. Preference lists (offset, skip) from HMAC-SHA256:
  //   a (7, 3): 7 10 0 3 6 9 12 2 5 8 11 1 4
  //   b (9, 9): 9 5 1 10 6 2 11 7 3 12 8 4 0
  //   c (5, 1): 5 6 7 8 9 10 11 12 0 1 2 3 4
  // Targets 13 = 5 + 4 + 4 (the extra slot to the first id). Rounds in id order:
  //   1: a→7  b→9  c→5      2: a→10  b→1 (5 taken)  c→6      3: a→0  b→2 (10, 6 taken)  c→8 (7 taken)
  //   4: a→3  b→11  c→12 (9, 10, 11 taken)      5: a→4 (6 9 12 2 5 8 11 1 taken)
  const backends = [
    { id: 'a', weight: 1 },
    { id: 'b', weight: 1 },
    { id: 'c', weight: 1 },
  ];
  const table = buildMaglev(backends, { size: 13, key: KEY });
  assert.deepEqual(Array.from(table), [0, 1, 1, 0, 0, 2, 2, 0, 2, 1, 0, 1, 2]);
  assert.equal(mappedIds(table, backends).join(''), 'abbaaccacbabc');
  assert.deepEqual(slotCounts(table, 3), [5, 4, 4]);
  // The same three in another order give the same table in terms of ids.
  const reversed = backends.slice().reverse();
  assert.equal(mappedIds(buildMaglev(reversed, { size: 13, key: KEY }), reversed).join(''), 'abbaaccacbabc');
});

test('pinned digests of the M=65537 table for 5 fixed backends', () => {
  // A change here changes every deployed table (flows move on upgrade; mixed versions disagree): only on purpose.
  const equal = makeBackends(5);
  const weighted = makeBackends(5, (i) => [1, 1, 2, 3, 5][i]);
  const te = buildMaglev(equal, { key: KEY });
  const tw = buildMaglev(weighted, { key: KEY });
  assert.deepEqual(slotCounts(te, 5), [13108, 13108, 13107, 13107, 13107]);
  assert.deepEqual(slotCounts(tw, 5), [5462, 5461, 10923, 16384, 27307]);
  assert.equal(tableDigest(te, equal), '886ec2fc54b3320baaaf5ab72dcf5461f9d3c6ae6d1f1cdc8f7c687dbd7489ab');
  assert.equal(tableDigest(tw, weighted), 'f36b3939888715770d84ad80fe81f0547be59c84e4e7c341f975a5fc5fc522ff');
});

for (const n of [3, 7, 100]) {
  test(`equal weights, N=${n}: every slot filled, slot counts differ by at most 1`, () => {
    const backends = makeBackends(n);
    const table = buildMaglev(backends, { key: KEY });
    assert.equal(table.length, DEFAULT_MAGLEV_SIZE);
    assert.equal(table.indexOf(-1), -1);
    const counts = slotCounts(table, n);
    assert.equal(counts.reduce((a, b) => a + b, 0), DEFAULT_MAGLEV_SIZE);
    assert.ok(Math.max(...counts) - Math.min(...counts) <= 1, `counts ${Math.min(...counts)}..${Math.max(...counts)}`);
  });
}

for (const [n, m] of [
  [3, 13],
  [7, 251],
  [100, 65537],
]) {
  test(`equal weights, N=${n}, M=${m}: same table as the paper's fill written literally`, () => {
    const backends = shuffled(makeBackends(n), n);
    const table = buildMaglev(backends, { size: m, key: KEY });
    assert.deepEqual(
      mappedIds(table, backends),
      paperFill(
        backends.map((b) => b.id),
        m,
        KEY,
      ),
    );
  });
}

/** Each backend must hold floor or ceil of its quota M·w/Σw (stronger than ±1 around floor/ceil). */
function assertProportional(backends: MaglevBackend[], m: number): void {
  const table = buildMaglev(backends, { size: m, key: KEY });
  assert.equal(table.indexOf(-1), -1);
  const counts = slotCounts(table, backends.length);
  const sum = backends.reduce((a, b) => a + b.weight, 0);
  for (let i = 0; i < backends.length; i++) {
    const quota = (m * backends[i].weight) / sum;
    assert.ok(
      counts[i] >= Math.floor(quota) && counts[i] <= Math.ceil(quota),
      `${backends[i].id} weight ${backends[i].weight}: ${counts[i]} slots, quota ${quota.toFixed(3)}`,
    );
  }
}

test('mixed weights 1..10 cycling, N=100: every backend holds floor or ceil of M·w/Σw', () => {
  assertProportional(makeBackends(100, (i) => 1 + (i % 10)), DEFAULT_MAGLEV_SIZE);
  assertProportional(makeBackends(100, (i) => 1 + (i % 10)), 655373);
});

test('random weights up to 65535 and a skewed set stay within floor/ceil of the quota', () => {
  const rand = rng(7);
  assertProportional(makeBackends(100, () => 1 + Math.floor(rand() * 65535)), DEFAULT_MAGLEV_SIZE);
  // One heavy backend among many light ones: Katran's V2 fill (raw weights as credit) gives the heavy one 65535
  // slots here instead of its quota of ~64553; ours must not.
  assertProportional(makeBackends(1000, (i) => (i === 0 ? 65535 : 1)), DEFAULT_MAGLEV_SIZE);
  assertProportional(makeBackends(20, (i) => (i < 19 ? 65535 : 1)), 13);
});

test('weights are reduced by their gcd: scaled weights give the identical table', () => {
  const a = makeBackends(10, (i) => 1 + (i % 3));
  const b = makeBackends(10, (i) => 6 * (1 + (i % 3)));
  assert.deepEqual(buildMaglev(a, { key: KEY }), buildMaglev(b, { key: KEY }));
});

test('deterministic: the same backends in any order give the identical table', () => {
  for (const weight of [() => 1, (i: number) => 1 + (i % 10)]) {
    const base = makeBackends(100, weight);
    const reference = mappedIds(buildMaglev(base, { key: KEY }), base);
    for (const seed of [1, 2, 3, 4, 5]) {
      const order = shuffled(base, seed);
      assert.deepEqual(mappedIds(buildMaglev(order, { key: KEY }), order), reference, `seed ${seed}`);
    }
    const reversed = base.slice().reverse();
    assert.deepEqual(mappedIds(buildMaglev(reversed, { key: KEY }), reversed), reference);
  }
});

test('deterministic across processes: child processes build the same table', () => {
  const base = makeBackends(50, (i) => 1 + (i % 4));
  const digest = tableDigest(buildMaglev(base, { key: KEY }), base);
  const child = `
    const { createHash } = require('node:crypto');
    const { buildMaglev } = require(${JSON.stringify(MAGLEV_JS)});
    const backends = JSON.parse(process.env.MAGLEV_BACKENDS);
    const table = buildMaglev(backends, { key: Buffer.from(process.env.MAGLEV_KEY, 'hex') });
    const ids = Array.from(table, (b) => (b >= 0 ? backends[b].id : ''));
    process.stdout.write(createHash('sha256').update(ids.join('\\n')).digest('hex'));
  `;
  for (const order of [base, base.slice().reverse(), shuffled(base, 42)]) {
    const out = execFileSync(process.execPath, ['-e', child], {
      env: { ...process.env, MAGLEV_BACKENDS: JSON.stringify(order), MAGLEV_KEY: KEY.toString('hex') },
      encoding: 'utf8',
    });
    assert.equal(out, digest);
  }
});

test('the key changes the table', () => {
  const base = makeBackends(10);
  const other = Buffer.alloc(16, 0xff);
  const d = maglevDisruption(buildMaglev(base, { key: KEY }), base.map((b) => b.id), buildMaglev(base, { key: other }), base.map((b) => b.id));
  assert.ok(d > 0.5, `only ${d} of the slots differ`);
});

// Disruption bounds. Ideal consistent hashing moves only what must move: the removed backend's 1/N of the slots
// (1% at N=100); modulo-N hashing would move ~(N-1)/N ≈ 99%. Maglev trades strict minimality for even balance
// (paper §3.4), so some survivors' slots move as well. Over 5 keys × 12 removals we measured 0.5–0.7% of M moved
// between survivors (~1% when adding); the bound of 2% of M is about 3× that and still ~50× better than mod-N,
// and the total (own + survivors) stays under 3% of M.
const SURVIVOR_BOUND = 0.02;
const TOTAL_BOUND = 0.03;

test('removing one of 100 backends moves its own slots plus a small fraction of the others', (t) => {
  const m = DEFAULT_MAGLEV_SIZE;
  const before = makeBackends(100);
  const removed = 42;
  const after = before.filter((_, i) => i !== removed);
  const tb = buildMaglev(before, { key: KEY });
  const ta = buildMaglev(after, { key: KEY });
  const beforeIds = before.map((b) => b.id);
  const afterIds = after.map((b) => b.id);
  let own = 0;
  let survivorsMoved = 0;
  for (let s = 0; s < m; s++) {
    const was = beforeIds[tb[s]];
    const now = afterIds[ta[s]];
    if (tb[s] === removed) {
      own++;
      assert.notEqual(now, was);
    } else if (now !== was) {
      survivorsMoved++;
    }
  }
  const fraction = maglevDisruption(tb, beforeIds, ta, afterIds);
  // Every changed slot is counted: the removed backend's and the survivors' that moved, nothing else.
  assert.equal(fraction, (own + survivorsMoved) / m);
  assert.equal(own, slotCounts(tb, 100)[removed]);
  t.diagnostic(
    `removed backend's slots ${((100 * own) / m).toFixed(2)}% of M, survivors moved ${((100 * survivorsMoved) / m).toFixed(2)}%, total ${(100 * fraction).toFixed(2)}%`,
  );
  assert.ok(survivorsMoved / m < SURVIVOR_BOUND, `survivors moved ${survivorsMoved} slots`);
  assert.ok(fraction < TOTAL_BOUND, `disruption ${fraction}`);
});

test('adding a backend to 100 takes its own share plus a small fraction moved between the others', (t) => {
  const m = DEFAULT_MAGLEV_SIZE;
  const before = makeBackends(100);
  const after = [...before, { id: '10.0.9.9:8080/tcp', weight: 1 }];
  const tb = buildMaglev(before, { key: KEY });
  const ta = buildMaglev(after, { key: KEY });
  const beforeIds = before.map((b) => b.id);
  const afterIds = after.map((b) => b.id);
  let own = 0;
  let othersMoved = 0;
  for (let s = 0; s < m; s++) {
    if (ta[s] === 100) own++;
    else if (afterIds[ta[s]] !== beforeIds[tb[s]]) othersMoved++;
  }
  const fraction = maglevDisruption(tb, beforeIds, ta, afterIds);
  assert.equal(fraction, (own + othersMoved) / m);
  assert.ok(Math.abs(own - m / 101) <= 1, `new backend holds ${own} slots`);
  t.diagnostic(
    `new backend's slots ${((100 * own) / m).toFixed(2)}% of M, others moved ${((100 * othersMoved) / m).toFixed(2)}%, total ${(100 * fraction).toFixed(2)}%`,
  );
  assert.ok(othersMoved / m < SURVIVOR_BOUND, `others moved ${othersMoved} slots`);
  assert.ok(fraction < TOTAL_BOUND, `disruption ${fraction}`);
});

test('weight 0 backends get no slots and do not change the table', () => {
  const active = makeBackends(10);
  const withDrained = shuffled([...active, { id: '10.0.9.1:8080/tcp', weight: 0 }, { id: '0.0.0.0:1/tcp', weight: 0 }], 3);
  const t1 = buildMaglev(withDrained, { key: KEY });
  const drained = withDrained.flatMap((b, i) => (b.weight === 0 ? [i] : []));
  for (const i of drained) assert.equal(slotCounts(t1, withDrained.length)[i], 0);
  assert.deepEqual(mappedIds(t1, withDrained), mappedIds(buildMaglev(active, { key: KEY }), active));
});

test('no backends, or none with weight > 0: every slot is -1', () => {
  for (const backends of [[], [{ id: 'a', weight: 0 }]]) {
    const table = buildMaglev(backends, { size: 13, key: KEY });
    assert.deepEqual(Array.from(table), new Array(13).fill(-1));
  }
  assert.equal(buildMaglev([], { key: KEY }).length, DEFAULT_MAGLEV_SIZE);
});

test('a single backend gets every slot', () => {
  const table = buildMaglev([{ id: 'only', weight: 3 }], { size: 13, key: KEY });
  assert.deepEqual(Array.from(table), new Array(13).fill(0));
});

test('invalid arguments throw with messages naming the parameter and the expectation', () => {
  const ok = [{ id: 'a', weight: 1 }];
  const cases: [() => unknown, ErrorConstructor, string][] = [
    [() => buildMaglev(ok, { size: 65536, key: KEY }), RangeError, 'maglev: size must be a prime number between 3 and 16777216, got 65536'],
    [() => buildMaglev(ok, { size: 2, key: KEY }), RangeError, 'maglev: size must be a prime number between 3 and 16777216, got 2'],
    [() => buildMaglev(ok, { size: 16777259, key: KEY }), RangeError, 'maglev: size must be a prime number between 3 and 16777216, got 16777259'],
    [() => buildMaglev(ok, { size: 13.5, key: KEY }), RangeError, 'maglev: size must be a prime number between 3 and 16777216, got 13.5'],
    [() => buildMaglev(ok, { size: '13' as unknown as number, key: KEY }), TypeError, 'maglev: size must be a number (a prime between 3 and 16777216), got "13"'],
    [() => buildMaglev(ok, { key: KEY.subarray(0, 15) }), RangeError, 'maglev: key must be exactly 16 bytes, got 15 bytes'],
    [() => buildMaglev(ok, { key: 'x'.repeat(16) as unknown as Buffer }), TypeError, 'maglev: key must be a Buffer of exactly 16 bytes, got "xxxxxxxxxxxxxxxx"'],
    [() => buildMaglev(ok, undefined as unknown as { key: Buffer }), TypeError, 'maglev: opts must be an object { size?: number, key: Buffer }, got undefined'],
    [() => buildMaglev({} as unknown as MaglevBackend[], { key: KEY }), TypeError, 'maglev: backends must be an array of { id: string, weight: number }, got object'],
    [() => buildMaglev([{ id: 'a', weight: 1 }, { id: 'b', weight: 1 }, { id: 'a', weight: 2 }], { key: KEY }), TypeError, 'maglev: backends[2].id must be unique, "a" is also backends[0].id'],
    [() => buildMaglev([{ id: '', weight: 1 }], { key: KEY }), TypeError, 'maglev: backends[0].id must be a non-empty string, got ""'],
    [() => buildMaglev([null as unknown as MaglevBackend], { key: KEY }), TypeError, 'maglev: backends[0] must be an object { id: string, weight: number }, got null'],
    [() => buildMaglev([{ id: 'a', weight: -1 }], { key: KEY }), RangeError, 'maglev: backends[0].weight must be an integer between 0 and 65535, got -1'],
    [() => buildMaglev([{ id: 'a', weight: 1.5 }], { key: KEY }), RangeError, 'maglev: backends[0].weight must be an integer between 0 and 65535, got 1.5'],
    [() => buildMaglev([{ id: 'a', weight: 65536 }], { key: KEY }), RangeError, 'maglev: backends[0].weight must be an integer between 0 and 65535, got 65536'],
    [() => buildMaglev([{ id: 'a', weight: NaN }], { key: KEY }), RangeError, 'maglev: backends[0].weight must be an integer between 0 and 65535, got NaN'],
    [() => buildMaglev([{ id: 'a', weight: '1' as unknown as number }], { key: KEY }), TypeError, 'maglev: backends[0].weight must be a number (an integer between 0 and 65535), got "1"'],
    [() => maglevDisruption(new Int32Array(13), [], new Int32Array(17), []), RangeError, 'maglev: tables must have the same size to compare, got 13 and 17'],
  ];
  for (const [fn, type, message] of cases) {
    assert.throws(fn, (err: unknown) => {
      assert.ok(err instanceof type, `expected ${type.name}, got ${String(err)}`);
      assert.equal((err as Error).message, message);
      return true;
    });
  }
});
