// The order the variants run in, round by round. Layers: this file → run.ts.

/**
 * Variants in run order for round `r`, from a Williams design: over n rounds (2n when n is odd) every variant runs
 * at every position and right after every other variant equally often. A test leaves state behind (TIME-WAIT
 * sockets after the connect tests, warm or cold caches), so a plain rotation, where each variant always follows
 * the same one, can hand one variant a handicap the others never get (bench/README.md, "Variants").
 */
export function roundOrder<T>(xs: readonly T[], r: number): T[] {
  const n = xs.length;
  const first = Array.from({ length: n }, (_, i) => (i === 0 ? 0 : i % 2 === 1 ? (i + 1) / 2 : n - i / 2));
  const rows = Array.from({ length: n }, (_, k) => first.map((x) => (x + k) % n));
  const all = n % 2 === 1 ? [...rows, ...rows.map((row) => [...row].reverse())] : rows;
  return all[r % all.length]!.map((i) => xs[i]!);
}
