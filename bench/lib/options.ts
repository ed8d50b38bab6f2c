// Benchmark options: what `npm run bench -- [flags]` accepts, validated up front (a wrong flag names what
// it expects and nothing is built). Layers: this file → run.ts (the harness).

/** The balancers compared. `direct` is the ceiling every ratio is taken against. */
export const VARIANTS = [
  'direct', 'nft-dnat', 'haproxy', 'l4nat', 'l4nat-1q', 'l4nat-nocoal', 'l4nat-nopoll', 'l4nat-busypoll', 'l4nat-sync', 'tun-relay', 'l4nat-nice0', 'l4nat-bounded', 'l4nat-memtable',
  'l4nat-baseline',
] as const;
export type BaseVariant = (typeof VARIANTS)[number];
/**
 * Run by default: all but the ablations (l4nat with one setting changed) and the tun-relay reference, run
 * only when asked for by name.
 */
export const DEFAULT_VARIANTS: readonly BaseVariant[] = ['direct', 'nft-dnat', 'haproxy', 'l4nat', 'l4nat-1q'];

/**
 * The "real NIC" variants: the same balancer with the client's and backends' TSO/GSO off and GRO on at the
 * lb's veths, so the lb sees MTU-sized segments merged by GRO, as a physical NIC delivers them.
 */
export const NIC_BASES: readonly BaseVariant[] = ['direct', 'nft-dnat', 'l4nat'];
export const NIC_SUFFIX = '+nic';

export const TESTS = ['tcp1', 'tcp1r', 'tcp4', 'udp64', 'rr', 'crr1', 'crr4'] as const;
export type TestId = (typeof TESTS)[number];
/** Tests run on the real-NIC variants (segmentation offloads matter for bulk TCP only). */
export const NIC_TESTS: readonly TestId[] = ['tcp1', 'tcp1r', 'tcp4'];

export const EXTRAS = ['real-nic', 'memory', 'swap', 'maglev'] as const;
export type Extra = (typeof EXTRAS)[number];

export interface BenchOptions {
  rounds: number;
  /** Seconds per test. */
  duration: number;
  variants: BaseVariant[];
  tests: TestId[];
  /** Extras to run (real-NIC variants, memory, table swap, Maglev build times). */
  extras: Set<Extra>;
  backends: number;
  /** Directory the results go to. */
  out: string;
  /** File name without extension (default: <date>-<kernel>, plus -quick under 10 rounds). */
  name: string | null;
  /** Table swap: UDP rate (packets/s) and seconds per phase. */
  swapRate: number;
  swapSeconds: number;
  /** Runs per Maglev build size. */
  maglevRuns: number;
  /** Lab id (namespace names l4-<id>-...); default random. */
  labId: string | null;
  /** Re-render the report and chart of an earlier run's JSON instead of measuring. */
  render: string | null;
  /** A built checkout of another l4nat version, run as the l4nat-baseline variant (a build-against-build A/B). */
  baseline: string | null;
  help: boolean;
}

export const USAGE = `usage: npm run bench -- [flags]     (or: node dist/bench/run.js [flags]; needs root)

  --rounds N          rounds; every round runs every variant (default 3; report figures with >= 10)
  --duration S        seconds per test (default 2)
  --variants LIST     comma-separated subset of ${VARIANTS.join(',')} (default: ${DEFAULT_VARIANTS.join(',')})
  --tests LIST        comma-separated subset of ${TESTS.join(',')} (default: all)
  --skip LIST         extras to leave out: ${EXTRAS.join(',')} (default: none)
  --only-variants     shorthand for --skip ${EXTRAS.join(',')}
  --backends N        backend namespaces (default 2)
  --swap-rate PPS     UDP rate during the table-swap test (default 20000)
  --swap-seconds S    seconds of each table-swap phase (default: max(4, 2 x duration))
  --maglev-runs N     runs per Maglev build size (default 5)
  --out DIR           where the results go (default bench/results)
  --name NAME         results file name without extension (default <date>-<kernel>[-quick])
  --lab-id ID         lab namespace id, 1-12 lowercase letters or digits (default: random)
  --baseline DIR      run l4nat also from DIR, a built checkout of another version (npm install done there), as
                      variant l4nat-baseline: the same settings as l4nat, interleaved in the same rounds
  --render FILE.json  rewrite the .md and .svg of an earlier run from its .json (no root, nothing measured)
  --help              this text
`;

export class OptionError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'OptionError';
  }
}

function int(flag: string, v: string | undefined, min: number, max: number): number {
  const n = Number(v);
  if (v === undefined || !/^\d+$/.test(v) || !Number.isSafeInteger(n) || n < min || n > max) {
    throw new OptionError(`${flag} expects an integer from ${min} to ${max}, got ${JSON.stringify(v ?? null)}`);
  }
  return n;
}

function num(flag: string, v: string | undefined, min: number, max: number): number {
  const n = Number(v);
  if (v === undefined || v.trim() === '' || !Number.isFinite(n) || n < min || n > max) {
    throw new OptionError(`${flag} expects a number from ${min} to ${max}, got ${JSON.stringify(v ?? null)}`);
  }
  return n;
}

function list<T extends string>(flag: string, v: string | undefined, allowed: readonly T[]): T[] {
  if (v === undefined || v.trim() === '') throw new OptionError(`${flag} expects a comma-separated list of ${allowed.join(', ')}`);
  const out: T[] = [];
  for (const item of v.split(',').map((s) => s.trim()).filter((s) => s !== '')) {
    if (!(allowed as readonly string[]).includes(item)) {
      throw new OptionError(`${flag}: unknown ${JSON.stringify(item)}; expected some of ${allowed.join(', ')}`);
    }
    if (!out.includes(item as T)) out.push(item as T);
  }
  if (out.length === 0) throw new OptionError(`${flag} expects at least one of ${allowed.join(', ')}`);
  return out;
}

export function parseOptions(argv: readonly string[], defaultOut: string): BenchOptions {
  const o: BenchOptions = {
    rounds: 3,
    duration: 2,
    variants: [...DEFAULT_VARIANTS],
    tests: [...TESTS],
    extras: new Set(EXTRAS),
    backends: 2,
    out: defaultOut,
    name: null,
    swapRate: 20_000,
    swapSeconds: 0,
    maglevRuns: 5,
    labId: null,
    render: null,
    baseline: null,
    help: false,
  };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i]!;
    const value = (): string | undefined => argv[++i];
    switch (flag) {
      case '--rounds':
        o.rounds = int(flag, value(), 1, 1000);
        break;
      case '--duration':
        o.duration = num(flag, value(), 0.5, 600);
        break;
      case '--variants':
        o.variants = list(flag, value(), VARIANTS);
        break;
      case '--tests':
        o.tests = list(flag, value(), TESTS);
        break;
      case '--skip':
        for (const e of list(flag, value(), EXTRAS)) o.extras.delete(e);
        break;
      case '--only-variants':
        o.extras.clear();
        break;
      case '--backends':
        o.backends = int(flag, value(), 2, 32);
        break;
      case '--swap-rate':
        o.swapRate = int(flag, value(), 100, 1_000_000);
        break;
      case '--swap-seconds':
        o.swapSeconds = num(flag, value(), 1, 600);
        break;
      case '--maglev-runs':
        o.maglevRuns = int(flag, value(), 1, 100);
        break;
      case '--out': {
        const v = value();
        if (v === undefined || v === '') throw new OptionError('--out expects a directory');
        o.out = v;
        break;
      }
      case '--name': {
        const v = value();
        if (v === undefined || !/^[A-Za-z0-9._-]{1,100}$/.test(v)) {
          throw new OptionError(`--name expects 1-100 letters, digits, '.', '_' or '-', got ${JSON.stringify(v ?? null)}`);
        }
        o.name = v;
        break;
      }
      case '--lab-id': {
        const v = value();
        if (v === undefined || !/^[0-9a-z]{1,12}$/.test(v)) {
          throw new OptionError(`--lab-id expects 1-12 lowercase letters or digits, got ${JSON.stringify(v ?? null)}`);
        }
        o.labId = v;
        break;
      }
      case '--render': {
        const v = value();
        if (v === undefined || !v.endsWith('.json')) throw new OptionError(`--render expects a results .json file, got ${JSON.stringify(v ?? null)}`);
        o.render = v;
        break;
      }
      case '--baseline': {
        const v = value();
        if (v === undefined || v === '') throw new OptionError('--baseline expects the directory of a built l4nat checkout');
        o.baseline = v;
        break;
      }
      case '--help':
      case '-h':
        o.help = true;
        break;
      default:
        throw new OptionError(`unknown flag ${JSON.stringify(flag)} (see --help)`);
    }
  }
  if (!o.variants.includes('direct')) o.variants.unshift('direct'); // every ratio needs it
  if (o.baseline !== null && !o.variants.includes('l4nat-baseline')) o.variants.push('l4nat-baseline');
  if (o.baseline === null && o.variants.includes('l4nat-baseline')) throw new OptionError('variant l4nat-baseline needs --baseline DIR (the built checkout it runs)');
  if (o.swapSeconds === 0) o.swapSeconds = Math.max(4, 2 * o.duration);
  return o;
}
