// `l4nat demo`: builds a throw-away lab (client, lb, 3 backends in network namespaces), runs l4nat in the lb
// namespace, sends TCP and UDP traffic over IPv4 and IPv6 to the VIPs and prints who served what, and whether
// every backend saw the client's real address (the point of a NAT load balancer that keeps the source).
// Everything is torn down at the end, on failure, and on Ctrl-C (the lab's cleanup registry).
// Layers: src/lab/* (lab, workload, l4nat-process) → this file → the CLI's `demo` command.
import { createLab, Lab, normalizeAddress } from './lab';
import type { RequestReport } from './client-driver';
import { L4natProcess, l4natUnavailable, startL4nat } from './l4nat-process';
import { runClient, startBackendServers } from './workload';

export interface DemoOptions {
  /** Backends (default 3). */
  backends?: number;
  /** TCP connections to the IPv4 VIP (default 3000). */
  tcpConnections?: number;
  /** UDP exchanges with the IPv4 VIP (default 300). */
  udpExchanges?: number;
  /** TCP connections to the IPv6 VIP (default 300). */
  tcpConnectionsV6?: number;
  /** UDP exchanges with the IPv6 VIP (default 150). */
  udpExchangesV6?: number;
  /** Parallel connections/exchanges of the client (default 32). */
  concurrency?: number;
  /** Use IPv6 too (default true). */
  ipv6?: boolean;
  /** Extra `l4nat up` arguments (e.g. ['--queues', '2']). */
  l4natArgs?: readonly string[];
  /** Deadline of each traffic run (default 60 s). */
  runTimeoutMs?: number;
  /** Where the report goes (default: stdout). */
  out?: (line: string) => void;
}

export interface DemoRun {
  name: string;
  proto: 'tcp' | 'udp';
  family: 4 | 6;
  target: string;
  report: RequestReport;
}

export interface DemoResult {
  ok: boolean;
  /** 0 when everything worked, 1 otherwise. */
  exitCode: number;
  labId: string | null;
  runs: DemoRun[];
  /** Human-readable reasons for a failure. */
  failures: string[];
  l4natExit: { code: number | null; signal: string | null; forced: boolean } | null;
}

function nonNegInt(name: string, v: number | undefined, dflt: number): number {
  const n = v ?? dflt;
  if (!Number.isInteger(n) || n < 0 || n > 1_000_000) throw new TypeError(`${name} must be an integer in 0..1000000, got ${String(v)}`);
  return n;
}

function pad(s: string, n: number, right = false): string {
  return right ? s.padStart(n) : s.padEnd(n);
}

/** The table: one row per backend, one column per run, plus whether the backend saw the client's address. */
export function formatDemoTable(lab: Pick<Lab, 'backends' | 'client'>, runs: readonly DemoRun[]): string[] {
  const cols = runs.map((r) => `${r.proto.toUpperCase()} v${r.family}`);
  const addrW = Math.max(7, ...lab.backends.map((b) => b.ipv4.length));
  const head = `${pad('backend', 8)} ${pad('address', addrW)} ${cols.map((c) => pad(c, 7, true)).join(' ')}  saw client address`;
  const lines = [head, '-'.repeat(head.length + 12)];
  for (const b of lab.backends) {
    const counts = runs.map((r) => pad(String(r.report.perBackend[b.id] ?? 0), 7, true));
    const seen = new Set<string>();
    let real = true;
    for (const r of runs) {
      const want = r.family === 4 ? lab.client.ipv4 : lab.client.ipv6;
      for (const a of r.report.peerAddrsByBackend[b.id] ?? []) {
        seen.add(a);
        if (want === null || normalizeAddress(a) !== normalizeAddress(want)) real = false;
      }
    }
    const verdict = seen.size === 0 ? 'no traffic' : real ? `yes (${[...seen].join(', ')})` : `NO: saw ${[...seen].join(', ')}`;
    lines.push(`${pad(b.id, 8)} ${pad(b.ipv4, addrW)} ${counts.join(' ')}  ${verdict}`);
  }
  lines.push('-'.repeat(head.length + 12));
  lines.push(`${pad('ok', 8)} ${pad('', addrW)} ${runs.map((r) => pad(String(r.report.ok), 7, true)).join(' ')}`);
  lines.push(`${pad('failed', 8)} ${pad('', addrW)} ${runs.map((r) => pad(String(r.report.failed), 7, true)).join(' ')}`);
  return lines;
}

/** Checks a run: everything succeeded, every backend served, and only the client's address was seen. */
export function checkRun(lab: Pick<Lab, 'backends' | 'client'>, run: DemoRun): string[] {
  const problems: string[] = [];
  const r = run.report;
  if (r.failed > 0) problems.push(`${run.name}: ${r.failed} of ${r.count} failed ${JSON.stringify(r.errors)}`);
  if (r.count >= lab.backends.length * 20) {
    for (const b of lab.backends) {
      if (!r.perBackend[b.id]) problems.push(`${run.name}: backend ${b.id} got nothing`);
    }
  }
  const want = run.family === 4 ? lab.client.ipv4 : lab.client.ipv6;
  const wrong = r.peerAddrs.filter((a) => want === null || normalizeAddress(a) !== normalizeAddress(want));
  if (wrong.length > 0) problems.push(`${run.name}: backends saw ${wrong.join(', ')} instead of the client's ${want}`);
  if (r.peerPortMismatches > 0) problems.push(`${run.name}: ${r.peerPortMismatches} replies reported a rewritten source port`);
  return problems;
}

/** Runs the demo; resolves with the outcome (it does not throw for traffic failures, only reports them). */
export async function runDemo(opts: DemoOptions = {}): Promise<DemoResult> {
  const out = opts.out ?? ((line: string) => process.stdout.write(`${line}\n`));
  const tcp4 = nonNegInt('tcpConnections', opts.tcpConnections, 3000);
  const udp4 = nonNegInt('udpExchanges', opts.udpExchanges, 300);
  const tcp6 = nonNegInt('tcpConnectionsV6', opts.tcpConnectionsV6, 300);
  const udp6 = nonNegInt('udpExchangesV6', opts.udpExchangesV6, 150);
  const concurrency = nonNegInt('concurrency', opts.concurrency, 32) || 1;
  const runTimeoutMs = nonNegInt('runTimeoutMs', opts.runTimeoutMs, 60_000) || 60_000;
  const ipv6 = opts.ipv6 ?? true;
  const result: DemoResult = { ok: false, exitCode: 1, labId: null, runs: [], failures: [], l4natExit: null };

  if (typeof process.getuid === 'function' && process.getuid() !== 0) {
    result.failures.push('the demo needs root (network namespaces, TUN)');
    out(`l4nat demo: ${result.failures[0]}`);
    return result;
  }
  const missing = l4natUnavailable();
  if (missing !== null) {
    result.failures.push(`cannot start l4nat: ${missing}`);
    out(`l4nat demo: ${result.failures[0]}`);
    return result;
  }

  let lab: Lab | null = null;
  let l4: L4natProcess | null = null;
  try {
    out(`building lab (client, lb, ${opts.backends ?? 3} backends) ...`);
    lab = await createLab({ backends: opts.backends ?? 3, ipv6 });
    result.labId = lab.id;
    out(`lab ${lab.id}: namespaces ${lab.namespaces.join(', ')}`);
    out(`client ${lab.client.ipv4}${lab.client.ipv6 ? ` / ${lab.client.ipv6}` : ''}; VIPs ${lab.vip4}${lab.vip6 ? ` / ${lab.vip6}` : ''}; backends ${lab.backends.map((b) => b.ipv4).join(', ')}`);
    await startBackendServers(lab);
    out('backend servers listening on 8080/tcp and 8080/udp');
    l4 = await startL4nat(lab, { extraArgs: opts.l4natArgs });
    out(`l4nat running in ${lab.lb.ns} (pid ${l4.pid}): ${l4.args.join(' ')}`);

    const plan: Array<Omit<DemoRun, 'report'> & { count: number }> = [
      { name: 'TCP to IPv4 VIP', proto: 'tcp', family: 4, target: lab.vip4, count: tcp4 },
      { name: 'UDP to IPv4 VIP', proto: 'udp', family: 4, target: lab.vip4, count: udp4 },
    ];
    if (lab.vip6 !== null) {
      plan.push({ name: 'TCP to IPv6 VIP', proto: 'tcp', family: 6, target: lab.vip6, count: tcp6 });
      plan.push({ name: 'UDP to IPv6 VIP', proto: 'udp', family: 6, target: lab.vip6, count: udp6 });
    }
    for (const p of plan) {
      if (p.count === 0) continue;
      const report = await runClient(lab, {
        target: p.target,
        proto: p.proto,
        count: p.count,
        concurrency,
        timeoutMs: runTimeoutMs,
      });
      out(`${p.name}: ${report.ok}/${report.count} ok in ${report.elapsedMs} ms`);
      const run: DemoRun = { name: p.name, proto: p.proto, family: p.family, target: p.target, report };
      result.runs.push(run);
      result.failures.push(...checkRun(lab, run));
    }
    out('');
    for (const line of formatDemoTable(lab, result.runs)) out(line);
    out('');
  } catch (err) {
    result.failures.push(err instanceof Error ? err.message : String(err));
  } finally {
    if (l4 !== null) {
      const st = await l4.stop();
      result.l4natExit = { code: st.code, signal: st.signal, forced: st.forced };
      out(`l4nat stopped (exit code ${st.code}${st.signal ? `, signal ${st.signal}` : ''}${st.forced ? ', had to be killed' : ''})`);
      if (st.code !== 0) result.failures.push(`l4nat exited with code ${st.code} (signal ${st.signal})`);
    }
    if (lab !== null) {
      try {
        await lab.destroy();
        out(`lab ${lab.id} removed`);
      } catch (err) {
        result.failures.push(`teardown: ${err instanceof Error ? err.message : String(err)}`);
      }
    }
  }
  result.ok = result.failures.length === 0;
  result.exitCode = result.ok ? 0 : 1;
  if (result.ok) out('demo OK: every request succeeded, every backend served, every backend saw the client itself');
  else for (const f of result.failures) out(`FAILED: ${f}`);
  return result;
}

const DEMO_USAGE = `usage: l4nat demo [--backends N] [--tcp N] [--udp N] [--tcp6 N] [--udp6 N] [--concurrency N] [--no-ipv6]
                  [-- extra l4nat up flags]`;

/** Parses `l4nat demo` flags (everything after `--` goes to `l4nat up`). Throws a RangeError naming the flag. */
export function parseDemoArgs(argv: readonly string[]): DemoOptions {
  const opts: DemoOptions = {};
  const num = (flag: string, v: string | undefined): number => {
    const n = Number(v);
    if (v === undefined || !Number.isInteger(n) || n < 0) throw new RangeError(`${flag} needs a non-negative integer, got ${String(v)}`);
    return n;
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    switch (a) {
      case '--':
        opts.l4natArgs = argv.slice(i + 1);
        return opts;
      case '--backends':
        opts.backends = num(a, argv[++i]);
        break;
      case '--tcp':
        opts.tcpConnections = num(a, argv[++i]);
        break;
      case '--udp':
        opts.udpExchanges = num(a, argv[++i]);
        break;
      case '--tcp6':
        opts.tcpConnectionsV6 = num(a, argv[++i]);
        break;
      case '--udp6':
        opts.udpExchangesV6 = num(a, argv[++i]);
        break;
      case '--concurrency':
        opts.concurrency = num(a, argv[++i]);
        break;
      case '--no-ipv6':
        opts.ipv6 = false;
        break;
      default:
        throw new RangeError(`unknown demo flag ${JSON.stringify(a)}`);
    }
  }
  return opts;
}

/** Entry point for `l4nat demo [flags]`: returns the process exit code (0 ok, 1 failed, 2 usage). */
export async function demoMain(argv: readonly string[]): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(`${DEMO_USAGE}\n`);
    return 0;
  }
  let opts: DemoOptions;
  try {
    opts = parseDemoArgs(argv);
  } catch (err) {
    process.stderr.write(`l4nat demo: ${(err as Error).message}\n${DEMO_USAGE}\n`);
    return 2;
  }
  return (await runDemo(opts)).exitCode;
}
