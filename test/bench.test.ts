// The benchmark harness (bench/): option parsing, /proc parsing, statistics and the report, everywhere; as
// root, a short smoke run of `node dist/bench/run.js` (1 round of 1-second tests, direct and l4nat only, no
// extras) that must produce a well-formed results table with non-zero figures and leave no namespace behind.
// No assertion on performance: the figures depend on the machine.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';
import { listLabNamespaces } from '../src/lab/lab';
import { repoRoot } from '../src/lab/l4nat-process';
import { parseFeatures } from '../bench/lib/nic';
import { parseSoftnetDropped, parseUdpSnmp } from '../bench/lib/kdrops';
import { roundOrder } from '../bench/lib/order';
import { DEFAULT_VARIANTS, EXTRAS, OptionError, parseOptions, TESTS } from '../bench/lib/options';
import { checkPrerequisites } from '../bench/lib/prereq';
import { renderReport } from '../bench/lib/report';
import { METRICS, type BenchResults, type TestResult } from '../bench/lib/results';
import { formatSpread, median, perRoundRatios, spread } from '../bench/lib/stats';
import { renderChart } from '../bench/lib/svg';
import { parsePidStat, parseProcStat } from '../bench/lib/sys';
import { haproxyConfig, nftRuleset } from '../bench/lib/variants';
import { skipUnlessCI } from './rigs/requirements';


/** The rows of the first Markdown table after `heading`, split into cells. */
function tableAfter(md: string, heading: string): string[][] {
  const at = md.indexOf(heading);
  assert.ok(at >= 0, `report has no "${heading}"`);
  const lines = md.slice(at).split('\n');
  const first = lines.findIndex((l) => l.startsWith('|'));
  assert.ok(first >= 0, `no table after "${heading}"`);
  const rows: string[][] = [];
  for (const l of lines.slice(first)) {
    if (!l.startsWith('|')) break;
    rows.push(l.slice(1, -1).split('|').map((c) => c.trim()));
  }
  return rows;
}

function syntheticResults(): BenchResults {
  const results: TestResult[] = [];
  const variants = ['direct', 'nft-dnat', 'l4nat', 'direct+nic', 'l4nat+nic'];
  for (let round = 0; round < 3; round++) {
    for (const variant of variants) {
      const k = variant.startsWith('direct') ? 1 : variant.startsWith('nft') ? 0.8 : 0.6 + round * 0.05;
      const cpu = { seconds: 1, balancerPctCore: variant.startsWith('l4nat') ? 50 : null, softirqPct: 20, busyPct: 90, idlePct: 10, stealPct: 0, foreignPct: 1 };
      for (const test of TESTS) {
        if (variant.endsWith('+nic') && !test.startsWith('tcp')) continue;
        const figures: Record<string, number> =
          test === 'rr'
            ? { p50_us: 30 / k, p99_us: 90 / k, tps: 30_000 * k }
            : test === 'udp64'
              ? { rx_kpps: 500 * k, tx_kpps: 600 }
              : test.startsWith('crr')
                ? { rate: 10_000 * k, errors: 0 }
                : { gbps: 10 * k, retransmits: 0 };
        results.push({ round, variant, test, figures, cpu });
      }
    }
  }
  return {
    machine: { date: '2025-01-02', kernel: '6.1.0-test', cpuModel: 'Test CPU', cores: 2, memoryGiB: 4, node: 'v20' },
    settings: { argv: ['--rounds', '3'], rounds: 3, durationSeconds: 2, backends: 2, variants, tests: [...TESTS], extras: ['real-nic', 'swap'] },
    versions: { l4nat: 'abc1234' },
    startedAt: '2025-01-02T03:04:05Z',
    elapsedSeconds: 125,
    background: { beforePct: 3, afterPct: 4 },
    results,
    l4natDrops: [{ round: 0, variant: 'l4nat', drops: {} }],
    l4natRss: [{ round: 0, variant: 'l4nat', rssKiB: 140_000 }],
    memory: [{ flowCapacity: 1_048_576, idleRssKiB: 140_000, loadedRssKiB: 140_100, hwmKiB: 140_200 }],
    swap: [
      { phase: 'control', rate: 20_000, seconds: 4, sent: 80_000, received: 80_000, lost: 0, duplicates: 0, newFlows: 199, weightChanges: 0, weightChangeErrors: 0, drops: {}, kernelDrops: {} },
      { phase: 'swaps', rate: 20_000, seconds: 4, sent: 80_000, received: 79_990, lost: 10, duplicates: 0, newFlows: 199, weightChanges: 90, weightChangeErrors: 0, drops: {}, kernelDrops: { 'lb l4nat0 tx_dropped': 10 } },
    ],
    maglev: '| M | N |\n|---:|---:|\n| 65537 | 10 |',
    errors: [],
    notes: ['a note'],
  };
}

describe('bench harness (no root needed)', () => {
  test('variant order: every variant at every position and right after every other one equally often', () => {
    for (const n of [2, 3, 5, 6, 9]) {
      const xs = Array.from({ length: n }, (_, i) => `v${i}`);
      const rounds = n % 2 === 1 ? 2 * n : n;
      const follows = new Map<string, number>();
      const at = new Map<string, number>();
      for (let r = 0; r < rounds; r++) {
        const o = roundOrder(xs, r);
        assert.deepEqual([...o].sort(), [...xs].sort(), `round ${r} runs each variant once`);
        o.forEach((v, i) => at.set(`${v}@${i}`, (at.get(`${v}@${i}`) ?? 0) + 1));
        for (let i = 1; i < n; i++) follows.set(`${o[i - 1]}>${o[i]}`, (follows.get(`${o[i - 1]}>${o[i]}`) ?? 0) + 1);
      }
      assert.equal(follows.size, n * (n - 1), `n=${n}: every ordered pair occurs`);
      assert.equal(new Set(follows.values()).size, 1, `n=${n}: every ordered pair equally often ${JSON.stringify([...follows])}`);
      assert.equal(new Set(at.values()).size, 1, `n=${n}: every position equally often`);
    }
  });

  test('options: defaults, lists, and one-line errors naming what is expected', () => {
    const o = parseOptions([], '/out');
    assert.equal(o.rounds, 3);
    assert.equal(o.duration, 2);
    assert.deepEqual(o.variants, [...DEFAULT_VARIANTS]);
    assert.deepEqual([...o.extras].sort(), [...EXTRAS].sort());
    assert.equal(o.swapSeconds, 4);
    const p = parseOptions(['--rounds', '10', '--duration', '5', '--variants', 'l4nat,haproxy', '--skip', 'maglev,swap', '--tests', 'rr'], '/out');
    assert.deepEqual(p.variants, ['direct', 'l4nat', 'haproxy'], 'direct is always measured: every ratio needs it');
    assert.deepEqual([...p.extras].sort(), ['memory', 'real-nic']);
    assert.equal(p.swapSeconds, 10);
    assert.equal(parseOptions(['--only-variants'], '/out').extras.size, 0);
    assert.throws(() => parseOptions(['--rounds', '0'], '/out'), (e: unknown) => e instanceof OptionError && /--rounds expects an integer from 1/.test(e.message));
    assert.throws(() => parseOptions(['--variants', 'lvs'], '/out'), /--variants: unknown "lvs"/);
    assert.throws(() => parseOptions(['--duration'], '/out'), /--duration expects a number/);
    assert.throws(() => parseOptions(['--frobnicate'], '/out'), /unknown flag "--frobnicate"/);
    assert.throws(() => parseOptions(['--lab-id', 'Bad-Id'], '/out'), /--lab-id expects/);
    assert.equal(parseOptions(['--render', 'bench/results/x.json'], '/out').render, 'bench/results/x.json');
    assert.throws(() => parseOptions(['--render', 'x.md'], '/out'), /--render expects a results \.json file/);
    // A build-against-build A/B: --baseline runs l4nat-baseline from another checkout, in the same rounds.
    const b = parseOptions(['--variants', 'l4nat', '--baseline', '/tmp/old'], '/out');
    assert.deepEqual([b.baseline, b.variants], ['/tmp/old', ['direct', 'l4nat', 'l4nat-baseline']]);
    assert.throws(() => parseOptions(['--variants', 'l4nat-baseline'], '/out'), /variant l4nat-baseline needs --baseline DIR/);
    assert.throws(() => parseOptions(['--baseline'], '/out'), /--baseline expects the directory of a built l4nat checkout/);
  });

  test('statistics: medians, per-round ratios, spreads', () => {
    assert.equal(median([3, 1, 2]), 2);
    assert.equal(median([4, 1, 2, 3]), 2.5);
    assert.ok(Number.isNaN(median([])));
    assert.deepEqual(perRoundRatios([2, undefined, 6, 8], [1, 1, 0, 4]), [2, 2], 'rounds with a gap or a zero base are left out');
    assert.deepEqual(spread([0.8, 0.6, 0.7]), { median: 0.7, min: 0.6, max: 0.8, n: 3 });
    assert.equal(spread([NaN]), null);
    assert.equal(formatSpread(spread([0.8, 0.6, 0.7])), '0.70 (0.60–0.80)');
    assert.equal(formatSpread(null), '—');
  });

  test('/proc parsing: /proc/stat, /proc/PID/stat with an awkward name, snmp, softnet, ethtool -k', () => {
    const cpu = parseProcStat('cpu  10 1 20 300 4 5 6 7 0 0\ncpu0 1 2 3 4 5 6 7 8 0 0\n');
    assert.deepEqual(cpu, { user: 10, nice: 1, system: 20, idle: 300, iowait: 4, irq: 5, softirq: 6, steal: 7, total: 353 });
    const stat = '1234 (a) b (c) S 1 2 3 4 5 4194560 6 7 8 9 111 222 0 0 20 0 1 0 100 0 0';
    assert.equal(parsePidStat(stat), 333);
    const snmp = 'Udp: InDatagrams NoPorts InErrors OutDatagrams RcvbufErrors SndbufErrors\nUdp: 100 1 2 50 3 4\n';
    assert.deepEqual(parseUdpSnmp(snmp), { NoPorts: 1, InErrors: 2, RcvbufErrors: 3, SndbufErrors: 4 });
    assert.equal(parseSoftnetDropped('0000ff00 0000000a 00000000\n00000100 00000005 00000000\n'), 15);
    const k = 'Features for eth0:\ntcp-segmentation-offload: on\ngeneric-segmentation-offload: off [fixed]\ngeneric-receive-offload: off\n';
    assert.deepEqual(parseFeatures(k), { tso: 'on', gso: 'off', gro: 'off' });
  });

  test('reference configurations: nftables DNAT without masquerade, HAProxy in TCP mode', () => {
    const backends = [{ ipv4: '10.201.1.2', id: 'b1' }, { ipv4: '10.201.2.2', id: 'b2' }] as never;
    const nft = nftRuleset('10.200.0.10', backends);
    assert.match(nft, /type nat hook prerouting priority dstnat/);
    assert.match(nft, /ip daddr 10\.200\.0\.10 dnat to jhash ip saddr mod 2 map \{ 0 : 10\.201\.1\.2, 1 : 10\.201\.2\.2 \}/);
    assert.doesNotMatch(nft, /masquerade|snat/);
    const ha = haproxyConfig('10.200.0.10', backends);
    assert.match(ha, /mode tcp/);
    assert.match(ha, /bind 10\.200\.0\.10:8080/);
    assert.match(ha, /bind 10\.200\.0\.10:5201/);
    assert.match(ha, /balance source/);
    assert.match(ha, /server b2 10\.201\.2\.2:8080/);
  });

  test('report: with --baseline, l4nat against l4nat-baseline round by round, and the rounds this build won', () => {
    const r = syntheticResults();
    // The baseline: l4nat's figures in each round, except TCP 1 stream, where this build is 10 % ahead in rounds 0 and 2.
    const extra = r.results.filter((t) => t.variant === 'l4nat').map((t) => ({
      ...t,
      variant: 'l4nat-baseline',
      figures: t.test === 'tcp1' ? { ...t.figures, gbps: t.figures!.gbps! / (t.round === 1 ? 0.9 : 1.1) } : t.figures,
    }));
    r.results.push(...extra);
    r.settings.variants = [...r.settings.variants, 'l4nat-baseline'];
    const md = renderReport(r, { json: 'x.json', svg: 'x.svg' });
    const rows = tableAfter(md, 'l4nat ÷ l4nat-baseline in the same round');
    assert.deepEqual(rows[0], ['test', 'l4nat ÷ baseline', 'this build better']);
    assert.deepEqual(rows.find((row) => row[0] === 'TCP 1 stream'), ['TCP 1 stream', '1.10 (0.90–1.10)', '2 of 3']);
    assert.deepEqual(rows.find((row) => row[0] === 'RR latency p50 (lower is better)'), ['RR latency p50 (lower is better)', '1.00', '0 of 3']);
    assert.doesNotMatch(renderReport(syntheticResults(), { json: 'x.json', svg: 'x.svg' }), /This build against the baseline/);
  });

  test('report: tables with every metric, ratios, targets, real-NIC part, swap verdict; SVG chart', () => {
    const r = syntheticResults();
    const md = renderReport(r, { json: 'x.json', svg: 'x.svg' });
    const medians = tableAfter(md, 'Medians over rounds');
    assert.deepEqual(medians[0], ['test', 'unit', 'direct', 'nft-dnat', 'l4nat']);
    assert.equal(medians.length, 2 + METRICS.length);
    const ratios = tableAfter(md, 'Ratio to direct');
    assert.deepEqual(ratios[0], ['test', 'nft-dnat', 'l4nat', 'l4nat target']);
    const tcp1 = ratios.find((row) => row[0] === 'TCP 1 stream')!;
    assert.deepEqual(tcp1, ['TCP 1 stream', '0.80', '0.65 (0.60–0.70)', '≥ 0.60 ✓']);
    const p50 = ratios.find((row) => row[0] === 'RR latency p50 vs nft-dnat (lower is better)')!;
    assert.equal(p50[1], '1.00');
    assert.match(p50[3]!, /^≤ 1\.05 ✗$/);
    assert.match(md, /## Real-NIC variant/);
    assert.match(md, /\| swaps \| 20,000 pps .*\| lb l4nat0 tx_dropped 10 \| FAIL \|/);
    assert.match(md, /\| 1,048,576 \| 136\.7 MiB/);
    assert.match(md, /!\[ratios to direct\]\(x\.svg\)/);
    const svg = renderChart(r);
    assert.match(svg, /^<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg"/);
    assert.match(svg, /<\/svg>\n$/);
    assert.equal((svg.match(/<rect /g) ?? []).length > 10, true);
  });
});

describe('bench smoke run (root)', () => {
  const root = repoRoot();
  const missing = checkPrerequisites(parseOptions(['--variants', 'direct,l4nat', '--only-variants'], '/tmp'), root).filter((m) => m.required);
  const skip = skipUnlessCI(missing.length > 0 ? `needs ${missing.map((m) => `${m.what} (${m.fix})`).join('; ')}` : false);

  test('1 round of 1-second tests, direct and l4nat: a well-formed table of non-zero figures, no namespace left', { skip, timeout: 120_000 }, async () => {
    const out = mkdtempSync(path.join(tmpdir(), 'l4nat-bench-test-'));
    const labId = `bt${Math.floor(Math.random() * 1e6).toString(36)}`;
    try {
      const args = ['--rounds', '1', '--duration', '1', '--variants', 'direct,l4nat', '--only-variants', '--out', out, '--name', 'smoke', '--lab-id', labId];
      const res = await new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
        execFile(process.execPath, [path.join(root, 'dist', 'bench', 'run.js'), ...args], { timeout: 110_000, killSignal: 'SIGINT' }, (err, stdout, stderr) => {
          resolve({ code: err ? ((err as { code?: number }).code ?? null) : 0, stdout, stderr });
        });
      });
      assert.equal(res.code, 0, `bench exited with ${res.code}\n${res.stderr.slice(-3000)}`);
      assert.deepEqual(await listLabNamespaces(labId), [], 'the lab is removed');

      const md = readFileSync(path.join(out, 'smoke.md'), 'utf8');
      const medians = tableAfter(md, 'Medians over rounds');
      assert.deepEqual(medians[0], ['test', 'unit', 'direct', 'l4nat']);
      const labels = medians.slice(2).map((r) => r[0]);
      assert.deepEqual(labels, METRICS.map((m) => m.label));
      for (const row of medians.slice(2)) {
        for (const cell of row.slice(2)) {
          const v = Number(cell.replace(/,/g, ''));
          assert.ok(Number.isFinite(v) && v > 0, `${row[0]}: ${JSON.stringify(cell)} is not a positive number`);
        }
      }
      const ratios = tableAfter(md, 'Ratio to direct');
      assert.deepEqual(ratios[0], ['test', 'l4nat', 'l4nat target']);
      for (const row of ratios.slice(2)) assert.match(row[1]!, /^\d+\.\d\d$/, `${row[0]}: ratio ${row[1]}`);
      assert.match(md, /\| kernel \| \S+/);
      assert.match(md, /\| CPU \| .+, \d+ cores/);
      assert.match(md, /\| rounds \| 1;/);
      assert.match(md, /\| durations \| 1 s per test/);
      assert.match(md, /No test failed/);

      const cpu = tableAfter(md, 'Each cell:');
      const l4cells = cpu.slice(2).map((r) => r[2]!);
      for (const c of l4cells) assert.match(c, /^bal \d+ · sirq \d+ · busy \d+ · idle \d+/, 'l4nat has a balancer CPU figure');

      const json = JSON.parse(readFileSync(path.join(out, 'smoke.json'), 'utf8')) as BenchResults;
      assert.equal(json.results.length, 2 * TESTS.length);
      for (const t of json.results) {
        assert.equal(t.error, undefined, `${t.variant} ${t.test}: ${t.error}`);
        assert.ok(t.cpu !== undefined && t.cpu.seconds > 0.5);
      }
      assert.ok(existsSync(path.join(out, 'smoke.svg')));
      assert.match(readFileSync(path.join(out, 'smoke.svg'), 'utf8'), /<\/svg>/);
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  });
});
