// Benchmark: Maglev table build time (src/dataplane/maglev.ts) for M = 65537 and 655373, N = 10, 100, 1000, with equal,
// mixed (1..10 cycling) and skewed (one of weight 65535, the rest 1) weights; median of several runs after a
// warm-up. Also the disruption when one backend is removed. Prints a Markdown table on stdout.
//
//   node dist/bench/maglev-build.js [--runs 9]
import { buildMaglev, maglevDisruption, MaglevBackend } from '../src/dataplane/maglev';

const SIZES = [65537, 655373];
const COUNTS = [10, 100, 1000];
const KEY = Buffer.from('000102030405060708090a0b0c0d0e0f', 'hex');

const WEIGHTS: Record<string, (i: number) => number> = {
  equal: () => 1,
  '1..10': (i) => 1 + (i % 10),
  skewed: (i) => (i === 0 ? 65535 : 1),
};

function parseRuns(argv: string[]): number {
  const i = argv.indexOf('--runs');
  if (i === -1) return 9;
  const runs = Number(argv[i + 1]);
  if (!Number.isInteger(runs) || runs < 1) throw new RangeError(`maglev-build: --runs must be a positive integer, got ${argv[i + 1]}`);
  return runs;
}

function makeBackends(n: number, weight: (i: number) => number): MaglevBackend[] {
  return Array.from({ length: n }, (_, i) => ({ id: `10.0.${i >> 8}.${i & 255}:8080/tcp`, weight: weight(i) }));
}

function timeMs(fn: () => void): number {
  const start = process.hrtime.bigint();
  fn();
  return Number(process.hrtime.bigint() - start) / 1e6;
}

function median(xs: number[]): number {
  const s = xs.slice().sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 === 1 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}

function main(): void {
  const runs = parseRuns(process.argv.slice(2));
  const rows: string[] = [];
  rows.push(`Maglev build, node ${process.version}, ${process.arch}, median of ${runs} runs after 1 warm-up`);
  rows.push('');
  rows.push('| M | N | weights | median ms | min ms | 1 removed: slots moved | of which its own |');
  rows.push('|---:|---:|:---|---:|---:|---:|---:|');
  for (const size of SIZES) {
    for (const n of COUNTS) {
      for (const [name, weight] of Object.entries(WEIGHTS)) {
        const backends = makeBackends(n, weight);
        let table = buildMaglev(backends, { size, key: KEY }); // warm-up
        const times: number[] = [];
        for (let r = 0; r < runs; r++) {
          times.push(timeMs(() => {
            table = buildMaglev(backends, { size, key: KEY });
          }));
        }
        // Remove a light backend from the middle (never the heavy one of the skewed set).
        const removed = n >> 1;
        const after = backends.filter((_, i) => i !== removed);
        const disruption = maglevDisruption(
          table,
          backends.map((b) => b.id),
          buildMaglev(after, { size, key: KEY }),
          after.map((b) => b.id),
        );
        let own = 0;
        for (let s = 0; s < size; s++) if (table[s] === removed) own++;
        rows.push(
          `| ${size} | ${n} | ${name} | ${median(times).toFixed(2)} | ${Math.min(...times).toFixed(2)} | ${(100 * disruption).toFixed(2)}% | ${((100 * own) / size).toFixed(2)}% |`,
        );
      }
    }
  }
  process.stdout.write(rows.join('\n') + '\n');
}

main();
