// `npm run bench`: l4nat against direct forwarding, nftables DNAT and HAProxy, in one namespace lab, variants
// interleaved round by round so that machine noise hits all of them alike. Writes a Markdown report, its raw
// figures (JSON) and a bar chart (SVG) to bench/results/. Installs nothing; says what is missing.
// Layers: src/lab (namespaces, l4nat process) → bench/lib (options, prerequisites, variants, tests, /proc
// sampling, extras, report) → this file (the order of things, progress, files).
//
//   node dist/bench/run.js [--rounds N] [--duration S] [--variants ...] [--tests ...] [--skip ...]   (root)
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { createLab, type Lab } from '../src/lab/lab';
import { repoRoot, type L4natProcess } from '../src/lab/l4nat-process';
import { maglevBuildTimes, measureMemory, swapUnderLoad } from './lib/extras';
import { roundOrder } from './lib/order';
import { NIC_BASES, NIC_SUFFIX, NIC_TESTS, OptionError, parseOptions, USAGE, type BenchOptions, type TestId } from './lib/options';
import { checkPrerequisites, formatMissing } from './lib/prereq';
import { renderReport } from './lib/report';
import { Figures2D, METRICS, type BenchResults } from './lib/results';
import { formatSpread } from './lib/stats';
import { snapshotL4nat } from './lib/snapshot';
import { renderChart } from './lib/svg';
import { commandLine, CpuMeter, machineInfo, netnsInodes, readMemory } from './lib/sys';
import { adminCounters, buildBenchtool, counterDelta, prepareLab, runTest, Servers, type Figures } from './lib/tools';
import { L4NAT_ADMIN_PORT, settle, setupVariant } from './lib/variants';

const t0 = Date.now();
function log(msg: string): void {
  const s = Math.floor((Date.now() - t0) / 1000);
  process.stderr.write(`[${String(Math.floor(s / 60)).padStart(2, '0')}:${String(s % 60).padStart(2, '0')}] ${msg}\n`);
}

function errText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** "9.41 Gbit/s", "512 kpps", ... for the progress lines. */
function describe(test: TestId, f: Figures): string {
  switch (test) {
    case 'tcp1':
    case 'tcp1r':
    case 'tcp4':
      return `${f.gbps!.toFixed(2)} Gbit/s`;
    case 'udp64':
      return `${f.rx_kpps!.toFixed(0)} kpps received (${f.tx_kpps!.toFixed(0)} sent)`;
    case 'rr':
      return `p50 ${f.p50_us!.toFixed(1)} µs, p99 ${f.p99_us!.toFixed(1)} µs`;
    case 'crr1':
    case 'crr4':
      return `${f.rate!.toFixed(0)} conn/s${f.errors ? `, ${f.errors} failed` : ''}`;
  }
}

/** Machine busy % over one second (nothing of ours running): the background load. */
async function backgroundBusy(): Promise<number> {
  const m = new CpuMeter(null);
  await new Promise((resolve) => setTimeout(resolve, 1_000));
  return m.stop().busyPct;
}

function versions(root: string): Record<string, string | null> {
  let commit: string | null = null;
  try {
    commit = execFileSync('git', ['-C', root, 'rev-parse', '--short', 'HEAD'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    const dirty = execFileSync('git', ['-C', root, 'status', '--porcelain', '--untracked-files=no', '--', 'native', 'src'], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
    }).trim();
    if (dirty !== '') commit += ' + uncommitted changes in native/ or src/';
  } catch {
    // Not a git checkout.
  }
  return {
    l4nat: commit,
    node: process.version,
    iperf3: commandLine('iperf3', ['--version']),
    haproxy: commandLine('haproxy', ['-v']),
    nft: commandLine('nft', ['--version']),
    gcc: commandLine('gcc', ['--version']),
  };
}

function testsFor(variant: string, opts: BenchOptions): TestId[] {
  if (variant.endsWith(NIC_SUFFIX)) return opts.tests.filter((t) => NIC_TESTS.includes(t));
  if (variant === 'haproxy') return opts.tests.filter((t) => t !== 'udp64'); // HAProxy does not balance UDP
  return opts.tests;
}

/** Where each l4nat variant runs from: this checkout's build, and --baseline's. */
interface L4natRoots {
  current: string;
  baseline: string | null;
}

async function runRounds(lab: Lab, tool: string, servers: Servers, roots: L4natRoots, opts: BenchOptions, variants: readonly string[], res: BenchResults): Promise<void> {
  const labNetns = netnsInodes(lab.namespaces);
  for (let round = 0; round < opts.rounds; round++) {
    for (const variant of roundOrder(variants, round)) {
      const tests = testsFor(variant, opts);
      if (tests.length === 0) continue;
      log(`round ${round + 1}/${opts.rounds}: ${variant}`);
      const restarted = await servers.ensure();
      if (restarted.length > 0) {
        const msg = `round ${round + 1}, before ${variant}: restarted ${restarted.join(', ')} (it had died)`;
        log(`  ${msg}`);
        res.errors.push(msg);
      }
      const l4root = variant.startsWith('l4nat-baseline') ? roots.baseline! : roots.current;
      let rv;
      try {
        rv = await setupVariant(lab, variant, l4root).catch(async (err: unknown) => {
          // Once more after a pause: a start can fail for passing reasons (the addon being rebuilt meanwhile).
          log(`  set-up failed, retrying once: ${errText(err).split('\n')[0]}`);
          await new Promise((resolve) => setTimeout(resolve, 2_000));
          return setupVariant(lab, variant, l4root);
        });
      } catch (err) {
        const msg = `round ${round + 1}, ${variant}: set-up failed: ${errText(err)}`;
        log(msg);
        res.errors.push(msg);
        for (const test of tests) res.results.push({ round, variant, test, error: 'set-up failed' });
        continue;
      }
      try {
        const before = rv.l4nat !== null ? await adminCounters(lab, L4NAT_ADMIN_PORT).catch(() => null) : null;
        for (const test of tests) {
          const meter = new CpuMeter(rv.balancerPid, labNetns);
          try {
            const figures = await runTest(test, { lab, tool, target: rv.target, backends: rv.backends, duration: opts.duration });
            const cpu = meter.stop();
            res.results.push({ round, variant, test, figures, cpu });
            const bal = cpu.balancerPctCore === null ? '' : `bal ${cpu.balancerPctCore.toFixed(0)}% `;
            const other = cpu.foreignPct !== undefined && cpu.foreignPct >= 5 ? ` other ${cpu.foreignPct.toFixed(0)}%` : '';
            log(`  ${test.padEnd(6)} ${describe(test, figures)}   [${bal}sirq ${cpu.softirqPct.toFixed(0)}% busy ${cpu.busyPct.toFixed(0)}%${other}]`);
          } catch (err) {
            const diag = await diagnose(lab, rv.l4nat);
            const msg = `round ${round + 1}, ${variant}, ${test}: ${errText(err)}${diag}`;
            log(`  ${test.padEnd(6)} FAILED: ${errText(err).split('\n')[0]}`);
            res.errors.push(msg);
            res.results.push({ round, variant, test, error: errText(err) });
            // An aborted iperf3 test can leave its server "busy" for the next one.
            if (test.startsWith('tcp')) await servers.restartIperf().catch(() => undefined);
          }
        }
        if (rv.l4nat !== null) {
          const after = await adminCounters(lab, L4NAT_ADMIN_PORT).catch(() => null);
          if (before !== null && after !== null) res.l4natDrops.push({ round, variant, drops: counterDelta(before.drops, after.drops) });
          const mem = rv.balancerPid !== null ? readMemory(rv.balancerPid) : null;
          if (mem !== null) res.l4natRss.push({ round, variant, rssKiB: mem.rssKiB });
        }
      } finally {
        try {
          await rv.teardown();
        } catch (err) {
          const msg = `round ${round + 1}, ${variant}: teardown: ${errText(err)}`;
          log(msg);
          res.errors.push(msg);
        }
      }
      await settle();
    }
  }
}

/** What the lb looked like when a test failed: l4nat's last log lines, links and routes (kept in the JSON). */
async function diagnose(lab: Lab, l4: L4natProcess | null): Promise<string> {
  const parts: string[] = [];
  if (l4 !== null) parts.push(`l4nat ${l4.running ? 'running' : `exited ${JSON.stringify(l4.proc.exitStatus)}`}\n${l4.proc.tail(15)}`);
  for (const args of [['-br', 'link'], ['route', 'show', 'table', 'all']]) {
    try {
      parts.push(`lb: ip ${args.join(' ')}\n${await lab.ip('lb', args)}`);
    } catch (err) {
      parts.push(`lb: ip ${args.join(' ')}: ${errText(err)}`);
    }
  }
  return `\n--- diagnostics ---\n${parts.join('\n')}`;
}

async function runExtras(lab: Lab, tool: string, l4root: string, opts: BenchOptions, res: BenchResults): Promise<void> {
  if (opts.extras.has('memory')) {
    res.memory = [];
    for (const cap of [1_048_576, 65_536]) {
      log(`l4nat memory, --flow-capacity ${cap}`);
      try {
        const m = await measureMemory(lab, tool, cap, Math.min(2, opts.duration), l4root);
        res.memory.push(m);
        log(`  VmRSS ${(m.idleRssKiB / 1024).toFixed(1)} MiB after start, ${(m.loadedRssKiB / 1024).toFixed(1)} MiB after a connection burst`);
      } catch (err) {
        res.errors.push(`memory, --flow-capacity ${cap}: ${errText(err)}`);
        log(`  FAILED: ${errText(err).split('\n')[0]}`);
      }
    }
  }
  if (opts.extras.has('swap')) {
    log(`table swap under load: ${opts.swapRate} pps, 3 phases of ${opts.swapSeconds} s (traffic alone, with admin reads, with weight changes)`);
    try {
      res.swap = await swapUnderLoad(lab, tool, opts.swapRate, opts.swapSeconds, l4root);
      for (const p of res.swap) {
        const k = Object.entries(p.kernelDrops).map(([n, v]) => `${n} ${v}`).join(', ');
        log(`  ${p.phase.padEnd(7)} sent ${p.sent}, received ${p.received}, lost ${p.lost}, duplicates ${p.duplicates}, admin requests ${p.weightChanges}${k ? `; kernel drops: ${k}` : ''}`);
      }
    } catch (err) {
      res.errors.push(`table swap: ${errText(err)}`);
      log(`  FAILED: ${errText(err).split('\n')[0]}`);
    }
  }
}

/** The ratio table on stdout, for whoever watches the run. */
function summary(res: BenchResults): string {
  const f = new Figures2D(res);
  const vs = res.settings.variants.filter((v) => v !== 'direct' && !v.endsWith(NIC_SUFFIX));
  const lines = [`${'ratio to direct'.padEnd(34)}${vs.map((v) => v.padStart(20)).join('')}`];
  for (const m of METRICS.filter((x) => res.settings.tests.includes(x.test) && x.key !== 'rr_tps')) {
    lines.push(`${m.label.padEnd(34)}${vs.map((v) => formatSpread(f.ratio(v, 'direct', m)).padStart(20)).join('')}`);
  }
  return lines.join('\n');
}

export async function main(argv: readonly string[]): Promise<number> {
  const root = repoRoot();
  let opts: BenchOptions;
  try {
    opts = parseOptions(argv, path.join(root, 'bench', 'results'));
  } catch (err) {
    if (err instanceof OptionError) {
      process.stderr.write(`bench: ${err.message}\n`);
      return 2;
    }
    throw err;
  }
  if (opts.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  if (opts.render !== null) {
    const res = JSON.parse(readFileSync(opts.render, 'utf8')) as BenchResults;
    const base = opts.render.slice(0, -'.json'.length);
    const files = { json: path.basename(opts.render), svg: `${path.basename(base)}.svg` };
    writeFileSync(`${base}.svg`, renderChart(res));
    writeFileSync(`${base}.md`, renderReport(res, files));
    process.stdout.write(`${summary(res)}\n\nreport: ${base}.md\n`);
    return 0;
  }
  const notes: string[] = [];
  const missing = checkPrerequisites(opts, root);
  if (missing.length > 0) process.stderr.write(`bench: prerequisites:\n${formatMissing(missing)}\n`);
  if (missing.some((m) => m.required)) {
    process.stderr.write('bench: nothing was run; install what is missing and try again.\n');
    return 2;
  }
  if (opts.extras.has('real-nic') && missing.some((m) => m.what.includes('ethtool'))) {
    opts.extras.delete('real-nic');
    notes.push('The real-NIC variant was left out: ethtool is not installed (`apt-get install ethtool`).');
  }
  for (const m of missing.filter((x) => !x.what.includes('ethtool'))) notes.push(`Warning: ${m.what} (fix: ${m.fix}).`);

  const tool = buildBenchtool(root);
  // One l4nat build for the whole run, whatever is rebuilt meanwhile (and one of the baseline's).
  const snap = snapshotL4nat(root);
  const baseSnap = opts.baseline !== null ? snapshotL4nat(opts.baseline) : null;
  const machine = machineInfo();
  const nicVariants =
    opts.extras.has('real-nic') && opts.tests.some((t) => NIC_TESTS.includes(t))
      ? NIC_BASES.filter((b) => opts.variants.includes(b)).map((b) => `${b}${NIC_SUFFIX}`)
      : [];
  const variants = [...opts.variants, ...nicVariants];
  const res: BenchResults = {
    machine,
    settings: {
      argv: [...argv],
      rounds: opts.rounds,
      durationSeconds: opts.duration,
      backends: opts.backends,
      variants,
      tests: opts.tests,
      extras: [...opts.extras],
    },
    versions: {
      ...versions(root),
      'l4nat addon': `sha256 ${snap.addonSha256}…, built ${snap.addonBuilt}`,
      ...(baseSnap !== null ? { 'l4nat-baseline addon': `sha256 ${baseSnap.addonSha256}…, built ${baseSnap.addonBuilt} (${opts.baseline})` } : {}),
    },
    startedAt: new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
    elapsedSeconds: 0,
    background: { beforePct: null, afterPct: null },
    results: [],
    l4natDrops: [],
    l4natRss: [],
    errors: [],
    notes,
  };
  notes.push(
    'All balancers send one client to one backend (iperf3 needs its control and data connections on one server):' +
      ' l4nat `--hash src`, nft-dnat `jhash ip saddr`, haproxy `balance source`. direct goes to b1.',
    'UDP: one flow of 64-byte payloads (92-byte IP packets), sent as fast as sendmmsg allows; "received" counts' +
      ' datagrams read by the backend\'s socket. HAProxy does not balance UDP.',
    'RR: one TCP connection, 1-byte request and response, TCP_NODELAY; the first 200 transactions are not counted.' +
      ' Connect rate: connect, 1-byte request, 1-byte response, the client closes first (TIME-WAIT on the client,' +
      ' net.ipv4.tcp_tw_reuse=1 there and in the lb).',
    'iperf3 with `-C cubic` (bbr, the kernel default here, paces a single veth stream well below its capacity).',
  );
  log(`l4nat bench: ${opts.rounds} rounds × ${variants.length} variants, ${opts.duration} s per test; ${machine.cpuModel}, ${machine.cores} cores, kernel ${machine.kernel}`);

  if (opts.extras.has('maglev')) {
    log('Maglev table build times (before the lab exists)');
    try {
      res.maglev = await maglevBuildTimes(root, opts.maglevRuns);
    } catch (err) {
      res.errors.push(`maglev build times: ${errText(err)}`);
    }
  }

  res.background.beforePct = await backgroundBusy();
  log(`building the lab (client, lb, ${opts.backends} backends); background load ${res.background.beforePct.toFixed(0)} %`);
  const lab = await createLab({ backends: opts.backends, ipv6: false, ...(opts.labId !== null ? { id: opts.labId } : {}) });
  try {
    await prepareLab(lab);
    const servers = new Servers(lab, tool);
    await servers.ensure();
    await runRounds(lab, tool, servers, { current: snap.root, baseline: baseSnap?.root ?? null }, opts, variants, res);
    await runExtras(lab, tool, snap.root, opts, res);
  } finally {
    log('removing the lab');
    await lab.destroy();
  }
  res.background.afterPct = await backgroundBusy();
  res.elapsedSeconds = (Date.now() - t0) / 1000;

  const name = opts.name ?? `${machine.date}-${machine.kernel}${opts.rounds < 10 ? '-quick' : ''}`;
  mkdirSync(opts.out, { recursive: true });
  const files = { md: path.join(opts.out, `${name}.md`), json: `${name}.json`, svg: `${name}.svg` };
  writeFileSync(path.join(opts.out, files.json), `${JSON.stringify(res, null, 1)}\n`);
  writeFileSync(path.join(opts.out, files.svg), renderChart(res));
  writeFileSync(files.md, renderReport(res, files));
  process.stdout.write(`${summary(res)}\n\nreport: ${files.md}\n`);
  log(`done in ${Math.round(res.elapsedSeconds)} s`);

  const lost = (res.swap ?? []).filter((p) => p.lost !== 0 || p.duplicates !== 0);
  if (lost.length > 0) process.stderr.write(`bench: the table swap lost or duplicated packets (${lost.map((p) => p.phase).join(', ')})\n`);
  if (res.errors.length > 0) process.stderr.write(`bench: ${res.errors.length} error(s), listed in the report\n`);
  return lost.length > 0 || res.errors.length > 0 ? 1 : 0;
}

if (require.main === module) {
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (err: unknown) => {
      process.stderr.write(`bench: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
      process.exitCode = 1;
    },
  );
}
