// Summaries of per-round figures: medians, and ratios taken within each round (so that noise that hits a
// whole round hits the numerator and the denominator alike) summarised as median and spread.

export function median(xs: readonly number[]): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

export interface Spread {
  median: number;
  min: number;
  max: number;
  n: number;
}

export function spread(xs: readonly number[]): Spread | null {
  const ok = xs.filter((x) => Number.isFinite(x));
  if (ok.length === 0) return null;
  return { median: median(ok), min: Math.min(...ok), max: Math.max(...ok), n: ok.length };
}

/**
 * Per-round ratios value[r] / base[r] for the rounds where both exist and the base is non-zero.
 * Arrays are indexed by round; a missing figure is undefined or NaN.
 */
export function perRoundRatios(values: readonly (number | undefined)[], base: readonly (number | undefined)[]): number[] {
  const out: number[] = [];
  for (let r = 0; r < values.length; r++) {
    const v = values[r];
    const b = base[r];
    if (v === undefined || b === undefined || !Number.isFinite(v) || !Number.isFinite(b) || b === 0) continue;
    out.push(v / b);
  }
  return out;
}

/** "0.82 (0.79–0.85)", or "0.82" with one round, or "—". */
export function formatSpread(s: Spread | null, digits = 2): string {
  if (s === null) return '—';
  if (s.n === 1 || s.min === s.max) return s.median.toFixed(digits);
  return `${s.median.toFixed(digits)} (${s.min.toFixed(digits)}–${s.max.toFixed(digits)})`;
}

/** A figure with about 3 significant digits. */
export function formatValue(x: number | undefined): string {
  if (x === undefined || !Number.isFinite(x)) return '—';
  const a = Math.abs(x);
  if (a >= 1000) return Math.round(x).toLocaleString('en-US');
  if (a >= 100) return x.toFixed(0);
  if (a >= 10) return x.toFixed(1);
  return x.toFixed(2);
}
