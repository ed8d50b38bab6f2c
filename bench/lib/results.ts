// What one benchmark run produced (written verbatim as JSON next to the Markdown report), and the figures
// the report derives from it. Layers: run.ts fills BenchResults → this file (metrics, per-round values,
// ratios) → report.ts, svg.ts.
import type { MemoryResult, SwapPhase } from './extras';
import { NIC_SUFFIX, type TestId } from './options';
import { median, perRoundRatios, spread, type Spread } from './stats';
import type { MachineInfo, CpuSample } from './sys';
import type { Figures } from './tools';

export interface TestResult {
  round: number;
  variant: string;
  test: TestId;
  figures?: Figures;
  cpu?: CpuSample;
  error?: string;
}

export interface BenchResults {
  machine: MachineInfo;
  settings: {
    /** The flags the run was started with. */
    argv: string[];
    rounds: number;
    durationSeconds: number;
    backends: number;
    variants: string[];
    tests: TestId[];
    extras: string[];
  };
  versions: Record<string, string | null>;
  startedAt: string;
  elapsedSeconds: number;
  results: TestResult[];
  /** l4nat's drop counters that moved during each l4nat variant's tests, per round. */
  l4natDrops: { round: number; variant: string; drops: Record<string, number> }[];
  /** l4nat's VmRSS after each l4nat variant's tests (default flow capacity). */
  l4natRss: { round: number; variant: string; rssKiB: number }[];
  memory?: MemoryResult[];
  swap?: SwapPhase[];
  maglev?: string;
  /** Machine busy % (all CPUs) over 1 s before the lab was built and after it was removed: background load. */
  background: { beforePct: number | null; afterPct: number | null };
  /** Set-up failures and test errors, in order. */
  errors: string[];
  /** Notes: skipped parts and why. */
  notes: string[];
}

export interface Metric {
  key: string;
  test: TestId;
  field: string;
  label: string;
  unit: string;
  lowerIsBetter?: boolean;
  /** The target for l4nat, as a ratio (to direct, or to nft-dnat for latency). */
  target?: number;
}

export const METRICS: readonly Metric[] = [
  { key: 'tcp1', test: 'tcp1', field: 'gbps', label: 'TCP 1 stream', unit: 'Gbit/s', target: 0.6 },
  { key: 'tcp1r', test: 'tcp1r', field: 'gbps', label: 'TCP 1 stream reverse (-R)', unit: 'Gbit/s', target: 0.75 },
  { key: 'tcp4', test: 'tcp4', field: 'gbps', label: 'TCP 4 streams', unit: 'Gbit/s', target: 0.55 },
  { key: 'udp64', test: 'udp64', field: 'rx_kpps', label: 'UDP 64 B received at the backend', unit: 'kpps', target: 0.85 },
  { key: 'udp64tx', test: 'udp64', field: 'tx_kpps', label: 'UDP 64 B sent by the client', unit: 'kpps' },
  { key: 'rr_p50', test: 'rr', field: 'p50_us', label: 'RR latency p50', unit: 'µs', lowerIsBetter: true, target: 1.05 },
  { key: 'rr_p99', test: 'rr', field: 'p99_us', label: 'RR latency p99', unit: 'µs', lowerIsBetter: true },
  { key: 'rr_tps', test: 'rr', field: 'tps', label: 'RR transactions/s', unit: '1/s' },
  { key: 'crr1', test: 'crr1', field: 'rate', label: 'connect rate, 1 thread', unit: 'conn/s', target: 0.85 },
  { key: 'crr4', test: 'crr4', field: 'rate', label: 'connect rate, 4 threads', unit: 'conn/s', target: 0.8 },
];

export const TEST_LABELS: Record<TestId, string> = {
  tcp1: 'TCP 1 stream',
  tcp1r: 'TCP 1 stream -R',
  tcp4: 'TCP 4 streams',
  udp64: 'UDP 64 B',
  rr: 'TCP RR',
  crr1: 'connect rate 1 thr',
  crr4: 'connect rate 4 thr',
};

export function isNic(variant: string): boolean {
  return variant.endsWith(NIC_SUFFIX);
}

/** The variant every ratio of `variant` is taken against: direct, or direct+nic for real-NIC variants. */
export function directOf(variant: string): string {
  return isNic(variant) ? `direct${NIC_SUFFIX}` : 'direct';
}

export function nftOf(variant: string): string {
  return isNic(variant) ? `nft-dnat${NIC_SUFFIX}` : 'nft-dnat';
}

export class Figures2D {
  constructor(private readonly r: BenchResults) {}

  get rounds(): number {
    return this.r.settings.rounds;
  }

  /** The metric's value in each round (undefined where the test failed or did not run). */
  values(variant: string, m: Metric): (number | undefined)[] {
    const out: (number | undefined)[] = new Array(this.rounds).fill(undefined);
    for (const t of this.r.results) {
      if (t.variant !== variant || t.test !== m.test || t.figures === undefined) continue;
      const v = t.figures[m.field];
      if (typeof v === 'number' && Number.isFinite(v)) out[t.round] = v;
    }
    return out;
  }

  median(variant: string, m: Metric): number | undefined {
    const xs = this.values(variant, m).filter((x): x is number => x !== undefined);
    return xs.length > 0 ? median(xs) : undefined;
  }

  /** Per-round ratios of `variant` to `base`, summarised. */
  ratio(variant: string, base: string, m: Metric): Spread | null {
    return spread(perRoundRatios(this.values(variant, m), this.values(base, m)));
  }

  cpu(variant: string, test: TestId): { balancer: number | null; softirq: number; busy: number; idle: number; foreign: number | null } | null {
    const samples = this.r.results.filter((t) => t.variant === variant && t.test === test && t.cpu !== undefined).map((t) => t.cpu!);
    if (samples.length === 0) return null;
    const bal = samples.map((s) => s.balancerPctCore).filter((x): x is number => x !== null);
    const foreign = samples.map((s) => s.foreignPct).filter((x): x is number => x !== undefined);
    return {
      foreign: foreign.length > 0 ? median(foreign) : null,
      balancer: bal.length > 0 ? median(bal) : null,
      softirq: median(samples.map((s) => s.softirqPct)),
      busy: median(samples.map((s) => s.busyPct)),
      idle: median(samples.map((s) => s.idlePct)),
    };
  }

  /** CPU taken by processes outside the lab during the tests, % of the machine: median and largest. */
  foreignLoad(): { median: number; max: number } | null {
    return this.loadOverTests((t) => t.cpu?.foreignPct);
  }

  /** Steal time during the tests (the hypervisor ran something else on our vCPUs), % of the machine. */
  stealLoad(): { median: number; max: number } | null {
    return this.loadOverTests((t) => t.cpu?.stealPct);
  }

  private loadOverTests(pick: (t: TestResult) => number | undefined): { median: number; max: number } | null {
    const xs = this.r.results.map(pick).filter((x): x is number => x !== undefined);
    return xs.length > 0 ? { median: median(xs), max: Math.max(...xs) } : null;
  }

  /** Median over rounds of (machine busy cores / Gbit/s) for a TCP test. */
  coresPerGbps(variant: string, test: TestId, cores: number): number | undefined {
    const xs: number[] = [];
    for (const t of this.r.results) {
      if (t.variant !== variant || t.test !== test || t.cpu === undefined || t.figures?.gbps === undefined) continue;
      if (t.figures.gbps > 0) xs.push((t.cpu.busyPct / 100) * cores / t.figures.gbps);
    }
    return xs.length > 0 ? median(xs) : undefined;
  }
}
