// The Markdown report of one benchmark run. Layers: results.ts (figures, ratios) → this file → run.ts.
import { directOf, Figures2D, isNic, METRICS, nftOf, TEST_LABELS, type BenchResults, type Metric } from './results';
import { NIC_TESTS, type TestId } from './options';
import { formatSpread, formatValue, perRoundRatios, spread } from './stats';

function table(head: readonly string[], rows: readonly (readonly string[])[], align?: readonly ('l' | 'r')[]): string {
  const a = align ?? head.map((_, i) => (i === 0 ? 'l' : 'r'));
  const sep = a.map((x) => (x === 'l' ? ':---' : '---:'));
  return [head, sep, ...rows].map((r) => `| ${r.join(' | ')} |`).join('\n');
}

function targetCell(m: Metric, s: ReturnType<Figures2D['ratio']>): string {
  if (m.target === undefined) return '';
  const op = m.lowerIsBetter ? '≤' : '≥';
  if (s === null) return `${op} ${m.target.toFixed(2)}`;
  const met = m.lowerIsBetter ? s.median <= m.target : s.median >= m.target;
  return `${op} ${m.target.toFixed(2)} ${met ? '✓' : '✗'}`;
}

function metricsFor(tests: readonly TestId[]): Metric[] {
  return METRICS.filter((m) => tests.includes(m.test));
}

/** Medians and ratios for one group of variants (the main comparison, or the real-NIC one). */
function comparison(f: Figures2D, variants: readonly string[], tests: readonly TestId[], withTargets: boolean): string {
  const metrics = metricsFor(tests);
  const out: string[] = [];
  out.push('Medians over rounds:\n');
  out.push(
    table(
      ['test', 'unit', ...variants],
      metrics.map((m) => [m.label, m.unit, ...variants.map((v) => formatValue(f.median(v, m)))]),
    ),
  );
  const others = variants.filter((v) => v !== directOf(v));
  if (others.length === 0) return out.join('\n');
  const l4 = withTargets && variants.includes('l4nat');
  out.push(
    '\nRatio to direct in the same round — median of the per-round ratios, (min–max) over rounds. For throughput' +
      ' and rates higher is better; for latency lower is better.\n',
  );
  const rows: string[][] = [];
  for (const m of metrics) {
    rows.push([
      `${m.label}${m.lowerIsBetter ? ' (lower is better)' : ''}`,
      ...others.map((v) => formatSpread(f.ratio(v, directOf(v), m))),
      ...(l4 ? [m.lowerIsBetter ? '' : targetCell(m, f.ratio('l4nat', 'direct', m))] : []),
    ]);
  }
  const nft = variants.find((v) => v.startsWith('nft-dnat'));
  if (nft !== undefined) {
    for (const m of metrics.filter((x) => x.lowerIsBetter)) {
      rows.push([
        `${m.label} vs nft-dnat (lower is better)`,
        ...others.map((v) => formatSpread(f.ratio(v, nftOf(v), m))),
        ...(l4 ? [targetCell(m, f.ratio('l4nat', 'nft-dnat', m))] : []),
      ]);
    }
  }
  out.push(table(['test', ...others, ...(l4 ? ['l4nat target'] : [])], rows));
  return out.join('\n');
}

/**
 * l4nat against l4nat-baseline (--baseline): the per-round ratio of the two builds, each already a ratio to direct in
 * the same round, so the machine's swings between rounds cancel; and in how many rounds this build did better.
 */
function baselineSection(f: Figures2D, tests: readonly TestId[]): string {
  const rows: string[][] = [];
  for (const m of metricsFor(tests)) {
    const cur = f.values('l4nat', m);
    const base = f.values('l4nat-baseline', m);
    const ratios = perRoundRatios(cur, base);
    const better = ratios.filter((x) => (m.lowerIsBetter ? x < 1 : x > 1)).length;
    rows.push([`${m.label}${m.lowerIsBetter ? ' (lower is better)' : ''}`, formatSpread(spread(ratios)), ratios.length > 0 ? `${better} of ${ratios.length}` : '—']);
  }
  return [
    'l4nat ÷ l4nat-baseline in the same round — median of the per-round ratios, (min–max) over rounds, and the rounds in' +
      ' which this build did better. A change within the noise wins about half the rounds.\n',
    table(['test', 'l4nat ÷ baseline', 'this build better'], rows),
  ].join('\n');
}

function cpuSection(f: Figures2D, r: BenchResults, variants: readonly string[], tests: readonly TestId[]): string {
  const out: string[] = [];
  out.push(
    `Each cell: **bal** = the balancer process (l4nat's or haproxy's utime+stime, all threads) in % of one core;` +
      ` **sirq** = softirq, **busy** = everything but idle, **idle** = idle + iowait, all three in % of the whole` +
      ` machine (${r.machine.cores} cores, /proc/stat; client, lb and backends share it); **other** = processes` +
      ` outside the lab, shown when 5 % or more. Medians over rounds.\n`,
  );
  out.push(
    table(
      ['test', ...variants],
      tests.map((t) => [
        TEST_LABELS[t],
        ...variants.map((v) => {
          const c = f.cpu(v, t);
          if (c === null) return '—';
          const bal = c.balancer === null ? '' : `bal ${c.balancer.toFixed(0)} · `;
          const other = c.foreign !== null && c.foreign >= 5 ? ` · other ${c.foreign.toFixed(0)}` : '';
          return `${bal}sirq ${c.softirq.toFixed(0)} · busy ${c.busy.toFixed(0)} · idle ${c.idle.toFixed(0)}${other}`;
        }),
      ]),
    ),
  );
  const tcp = tests.filter((t) => t.startsWith('tcp'));
  if (tcp.length > 0) {
    out.push('\nMachine CPU per unit of TCP throughput: busy cores ÷ Gbit/s (lower is better), median over rounds.\n');
    out.push(
      table(
        ['test', ...variants],
        tcp.map((t) => [TEST_LABELS[t], ...variants.map((v) => formatValue(f.coresPerGbps(v, t, r.machine.cores)))]),
      ),
    );
  }
  return out.join('\n');
}

function mib(kib: number): string {
  return `${(kib / 1024).toFixed(1)} MiB`;
}

export function renderReport(r: BenchResults, files: { json: string; svg: string }): string {
  const f = new Figures2D(r);
  const main = r.settings.variants.filter((v) => !isNic(v));
  const nic = r.settings.variants.filter((v) => isNic(v));
  const tests = r.settings.tests;
  const s = r.settings;
  const out: string[] = [];
  out.push(`# l4nat benchmark — ${r.machine.date}, kernel ${r.machine.kernel}`);
  out.push('');
  out.push(
    table(
      ['', ''],
      [
        ['date', `${r.startedAt} (run took ${Math.round(r.elapsedSeconds / 60)} min ${Math.round(r.elapsedSeconds % 60)} s)`],
        ['kernel', r.machine.kernel],
        ['CPU', `${r.machine.cpuModel}, ${r.machine.cores} cores (shared by client, lb and backends), ${r.machine.memoryGiB} GiB RAM`],
        ['rounds', `${s.rounds}; in each round every variant runs every test, variant order from a Williams design (each variant at each position and right after each other one equally often)`],
        ['durations', `${s.durationSeconds} s per test`],
        ['lab', `client, lb, ${s.backends} backends in network namespaces, point-to-point veths, no bridge, IPv4`],
        ['versions', Object.entries(r.versions).map(([k, v]) => `${k}: ${v ?? 'n/a'}`).join('; ')],
        ['command', `\`npm run bench${s.argv.length > 0 ? ` -- ${s.argv.join(' ')}` : ''}\``],
      ],
      ['l', 'l'],
    ),
  );
  out.push('');
  out.push(`![ratios to direct](${files.svg})`);
  out.push('');
  out.push('## Comparison');
  out.push('');
  out.push(comparison(f, main, tests, true));
  out.push('');
  if (main.includes('l4nat') && main.includes('l4nat-baseline')) {
    out.push('## This build against the baseline');
    out.push('');
    out.push(baselineSection(f, tests));
    out.push('');
  }
  out.push('## CPU during each test');
  out.push('');
  out.push(cpuSection(f, r, main, tests));
  if (nic.length > 0) {
    out.push('');
    out.push('## Real-NIC variant');
    out.push('');
    out.push(
      'Client and backends: TSO and GSO off on their veths (senders hand over MTU-sized segments, as on a wire);' +
        ' lb: GRO on on its veths (its ingress merges them again, as a NIC driver does). Ratios are to direct+nic.\n',
    );
    const nicTests = tests.filter((t) => NIC_TESTS.includes(t));
    out.push(comparison(f, nic, nicTests, false));
    out.push('');
    out.push(cpuSection(f, r, nic, nicTests));
  }
  if (r.memory !== undefined || r.l4natRss.length > 0) {
    out.push('');
    out.push('## l4nat resident memory');
    out.push('');
    if (r.memory !== undefined && r.memory.length > 0) {
      out.push('VmRSS from /proc/PID/status (the flow table is committed at start, 64 bytes per entry):\n');
      out.push(
        table(
          ['--flow-capacity', 'VmRSS after start', 'VmRSS after a connection burst', 'VmHWM'],
          r.memory.map((m) => [m.flowCapacity.toLocaleString('en-US'), mib(m.idleRssKiB), mib(m.loadedRssKiB), mib(m.hwmKiB)]),
        ),
      );
    }
    if (r.l4natRss.length > 0) {
      const byVariant = new Map<string, number[]>();
      for (const x of r.l4natRss) byVariant.set(x.variant, [...(byVariant.get(x.variant) ?? []), x.rssKiB]);
      if (r.memory !== undefined && r.memory.length > 0) out.push('');
      out.push(
        `After all tests of a round (default --flow-capacity 1,048,576): ` +
          [...byVariant].map(([v, xs]) => `${v} ${mib(Math.max(...xs))} (largest over rounds)`).join(', ') +
          '.',
      );
    }
  }
  if (r.swap !== undefined) {
    out.push('');
    out.push('## Table swap under load');
    out.push('');
    out.push(
      'UDP at a fixed rate through l4nat (5-tuple hashing, 32 flows, a new flow every 20 ms), 64-byte datagrams' +
        ' with sequence numbers; the backends count the distinct ones they receive. Phases: **control**, traffic' +
        ' alone; **reads**, plus `GET /v1/services` in a loop (the control plane busy, no table change);' +
        ' **swaps**, plus backend weights changed through the admin API (`PATCH /v1/services/{id}/backends/{id}`)' +
        ' as fast as it answers, one backend drained at times. Lost must be zero. "kernel drops" are drop counters' +
        ' outside l4nat that moved meanwhile (lb interfaces: l4nat0 tx_dropped = the TUN queue overflowed because' +
        ' the workers did not read in time; Udp RcvbufErrors = a sink fell behind; softnet = a CPU backlog).\n',
    );
    out.push(
      table(
        ['phase', 'rate', 'seconds', 'sent', 'received', 'lost', 'duplicates', 'new flows', 'admin requests', 'l4nat drops', 'kernel drops', 'result'],
        r.swap.map((p) => [
          p.phase,
          `${p.rate.toLocaleString('en-US')} pps`,
          String(p.seconds),
          p.sent.toLocaleString('en-US'),
          p.received.toLocaleString('en-US'),
          p.lost.toLocaleString('en-US'),
          p.duplicates.toLocaleString('en-US'),
          p.newFlows.toLocaleString('en-US'),
          `${p.weightChanges}${p.weightChangeErrors > 0 ? ` (${p.weightChangeErrors} failed)` : ''}`,
          Object.entries(p.drops).map(([k, v]) => `${k} ${v}`).join(', ') || '0',
          Object.entries(p.kernelDrops ?? {}).map(([k, v]) => `${k} ${v}`).join(', ') || '0',
          p.lost === 0 && p.duplicates === 0 ? 'PASS' : 'FAIL',
        ]),
      ),
    );
  }
  if (r.maglev !== undefined) {
    out.push('');
    out.push('## Maglev table build times');
    out.push('');
    out.push('`node dist/bench/maglev-build.js` (src/dataplane/maglev.ts, run before the lab is built):');
    out.push('');
    out.push(r.maglev);
  }
  const drops = r.l4natDrops.filter((d) => Object.keys(d.drops).length > 0);
  out.push('');
  out.push('## Notes and errors');
  out.push('');
  const fl = f.foreignLoad();
  const bg = r.background;
  const pctText = (x: number | null): string => (x === null ? 'n/a' : `${x.toFixed(0)} %`);
  out.push(
    `- Background load: the machine was ${pctText(bg.beforePct)} busy in the second before the lab was built and` +
      ` ${pctText(bg.afterPct)} after it was removed` +
      (fl !== null ? `; processes outside the lab took a median ${fl.median.toFixed(1)} % (at most ${fl.max.toFixed(0)} %) of it during the tests.` : '.') +
      (fl !== null && fl.max >= 10 ? ' **Other work competed with the lab for the CPUs: treat single figures with care; the per-round ratios suffer less.**' : ''),
  );
  const st = f.stealLoad();
  if (st !== null) {
    out.push(
      `- Steal time (the hypervisor running something else on this machine's vCPUs, counted in "busy"): median` +
        ` ${st.median.toFixed(0)} %, at most ${st.max.toFixed(0)} % of the machine during a test.` +
        (st.max >= 10 ? ' Rounds with high steal slow every variant at random: read the per-round ratios with their spread.' : ''),
    );
  }
  for (const n of r.notes) out.push(`- ${n}`);
  if (drops.length > 0) {
    const sums = new Map<string, Record<string, number>>();
    for (const d of drops) {
      const acc = sums.get(d.variant) ?? {};
      for (const [k, v] of Object.entries(d.drops)) acc[k] = (acc[k] ?? 0) + v;
      sums.set(d.variant, acc);
    }
    const text = [...sums].map(([v, acc]) => `${v}: ${Object.entries(acc).map(([k, n]) => `${k} ${n}`).join(', ')}`);
    out.push(`- l4nat drop counters that moved during its tests, summed over the rounds (admin API): ${text.join('; ')}.`);
  } else if (r.l4natDrops.length > 0) {
    out.push('- l4nat dropped nothing during its tests (drop counters from the admin API, every round).');
  }
  if (r.errors.length === 0) out.push('- No test failed.');
  for (const e of r.errors) out.push(`- error: ${e.split('\n')[0]}`);
  out.push(`- Raw per-round figures and CPU samples: ${files.json}.`);
  out.push('');
  return out.join('\n');
}
