// The traffic of one test: servers in the backends, clients in the client namespace, each bounded in time.
// Layers: src/lab (namespaces, processes) → bench/tools/benchtool.c (compiled here with gcc) and iperf3 → this
// file, which turns one test into named figures → run.ts.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { AUTH_HEADER_JS, DEFAULT_ADMIN_TOKEN_FILE } from '../../src/lab/admin-client';
import type { Lab, LabBackend } from '../../src/lab/lab';
import type { NsProcess } from '../../src/lab/netns';
import type { TestId } from './options';

/** Ports the backends listen on (the same on every backend; the balancers keep the port). */
export const RR_PORT = 8080; // benchtool tcp-server, and benchtool udp-sink during the UDP test
export const IPERF_PORT = 5201;
export const SWAP_PORT = 9000; // UDP, table-swap test

/** Compiles bench/tools/benchtool.c into dist/bench/benchtool when missing or older than its source. */
export function buildBenchtool(root: string): string {
  const src = path.join(root, 'bench', 'tools', 'benchtool.c');
  const outDir = path.join(root, 'dist', 'bench');
  const bin = path.join(outDir, 'benchtool');
  if (existsSync(bin) && statSync(bin).mtimeMs >= statSync(src).mtimeMs) return bin;
  mkdirSync(outDir, { recursive: true });
  execFileSync('gcc', ['-O2', '-Wall', '-Wextra', '-pthread', '-o', bin, src], { stdio: ['ignore', 'inherit', 'inherit'] });
  return bin;
}

function lastJson(text: string, what: string): Record<string, unknown> {
  const lines = text.split('\n').filter((l) => l.startsWith('{'));
  const line = lines[lines.length - 1];
  if (line === undefined) throw new Error(`${what}: no JSON result in its output: ${text.slice(0, 300)}`);
  return JSON.parse(line) as Record<string, unknown>;
}

function numberField(o: Record<string, unknown>, key: string, what: string): number {
  const v = o[key];
  if (typeof v !== 'number' || !Number.isFinite(v)) throw new Error(`${what}: result has no number ${key}: ${JSON.stringify(o)}`);
  return v;
}

/** Lab settings the benchmark needs beyond the lab's own. */
export async function prepareLab(lab: Lab): Promise<void> {
  // The lb forwards for the direct variant; l4nat would turn it on itself and never off.
  await lab.enableForwarding();
  // Many short connections, closed first by the client (and, towards the backends, by HAProxy): a wide
  // ephemeral port range, and ports in TIME-WAIT reused after a second (tcp_tw_reuse=1, timestamps on).
  for (const role of ['client', 'lb']) {
    await lab.exec(role, 'sysctl', ['-q', '-w', 'net.ipv4.ip_local_port_range=1024 65000', 'net.ipv4.tcp_tw_reuse=1']);
  }
}

/**
 * The long-running servers in every backend: iperf3 and benchtool's echo server. ensure() restarts any that
 * died; restartIperf() replaces the iperf3 servers (one left "busy" by an aborted test refuses the next).
 */
export class Servers {
  private readonly iperf = new Map<string, NsProcess>();
  private readonly echo = new Map<string, NsProcess>();

  constructor(
    private readonly lab: Lab,
    private readonly tool: string,
  ) {}

  /** Starts whatever is not running (everything, the first time) and waits until it listens. */
  async ensure(): Promise<string[]> {
    const restarted: string[] = [];
    for (const b of this.lab.backends) {
      if (!this.echo.get(b.role)?.running) {
        if (this.echo.has(b.role)) restarted.push(`${b.role} echo server`);
        const echo = this.lab.spawn(b.role, this.tool, ['tcp-server', String(RR_PORT), '2']);
        this.echo.set(b.role, echo);
        await echo.waitForLine((l) => l === 'ready', { timeoutMs: 5_000, what: 'benchtool tcp-server ready', stream: 'stderr' });
      }
      if (!this.iperf.get(b.role)?.running) {
        if (this.iperf.has(b.role)) restarted.push(`${b.role} iperf3 server`);
        this.iperf.set(b.role, this.lab.spawn(b.role, 'iperf3', ['-s', '-p', String(IPERF_PORT)]));
        await waitListening(this.lab, b.role, IPERF_PORT, 5_000);
      }
    }
    return restarted;
  }

  async restartIperf(): Promise<void> {
    for (const p of this.iperf.values()) await p.stop({ timeoutMs: 2_000 });
    await this.ensure();
  }
}

/** Polls `ss` in a namespace until something listens on a TCP port. */
export async function waitListening(lab: Lab, role: string, port: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const { stdout } = await lab.exec(role, 'ss', ['-Hltn', `sport = :${port}`]);
    if (stdout.trim() !== '') return;
    if (Date.now() > deadline) throw new Error(`nothing listens on TCP port ${port} in ${role} after ${timeoutMs} ms`);
    await sleep(50);
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Figures of one test run, by metric name (see METRICS in report.ts). */
export type Figures = Record<string, number>;

export interface TestContext {
  lab: Lab;
  tool: string;
  /** Address the client connects to: a backend's own address (direct) or the VIP. */
  target: string;
  /** Backends that may receive the traffic (UDP sinks run there). */
  backends: readonly LabBackend[];
  /** Seconds. */
  duration: number;
}

async function iperf(ctx: TestContext, extra: readonly string[]): Promise<Figures> {
  const args = ['-c', ctx.target, '-p', String(IPERF_PORT), '-t', String(ctx.duration), '-C', 'cubic', '-J', '--connect-timeout', '3000', ...extra];
  const timeoutMs = (ctx.duration + 20) * 1000;
  for (let attempt = 1; ; attempt++) {
    try {
      const { stdout } = await ctx.lab.exec('client', 'iperf3', args, { timeoutMs });
      const o = JSON.parse(stdout) as { error?: string; end?: { sum_received?: { bits_per_second?: number }; sum_sent?: { retransmits?: number } } };
      if (o.error !== undefined) throw new Error(`iperf3: ${o.error}`);
      const bps = o.end?.sum_received?.bits_per_second;
      if (typeof bps !== 'number') throw new Error(`iperf3: no end.sum_received.bits_per_second in ${stdout.slice(0, 300)}`);
      return { gbps: bps / 1e9, retransmits: o.end?.sum_sent?.retransmits ?? NaN };
    } catch (err) {
      // A server still busy with the end of an aborted test answers "busy": give it a moment, once.
      if (attempt >= 2 || !/busy/i.test(String(err))) throw err;
      await sleep(1_000);
    }
  }
}

async function udp64(ctx: TestContext): Promise<Figures> {
  const runid = Math.floor(Math.random() * 0x7fffffff);
  const sinks = ctx.backends.map((b) =>
    ctx.lab.spawn(b.role, ctx.tool, ['udp-sink', String(RR_PORT), String(ctx.duration + 10), '1000', String(runid)]),
  );
  try {
    await Promise.all(sinks.map((s) => s.waitForLine((l) => l === 'ready', { timeoutMs: 5_000, what: 'udp-sink ready', stream: 'stderr' })));
    const { stdout } = await ctx.lab.exec(
      'client',
      ctx.tool,
      ['udp-send', ctx.target, String(RR_PORT), String(ctx.duration), '64', '0', String(runid)],
      { timeoutMs: (ctx.duration + 10) * 1000 },
    );
    const sent = lastJson(stdout, 'udp-send');
    await sleep(300); // whatever is still queued arrives
    for (const s of sinks) s.kill('SIGTERM');
    await Promise.all(sinks.map((s) => s.exited));
    let received = 0;
    for (const s of sinks) received += numberField(lastJson(s.stdoutLines.join('\n'), 'udp-sink'), 'received', 'udp-sink');
    const seconds = numberField(sent, 'seconds', 'udp-send');
    return { rx_kpps: received / seconds / 1e3, tx_kpps: numberField(sent, 'pps', 'udp-send') / 1e3 };
  } finally {
    for (const s of sinks) if (s.running) await s.stop({ timeoutMs: 1_000 });
  }
}

async function rr(ctx: TestContext): Promise<Figures> {
  const { stdout } = await ctx.lab.exec('client', ctx.tool, ['rr-client', ctx.target, String(RR_PORT), String(ctx.duration)], {
    timeoutMs: (ctx.duration + 10) * 1000,
  });
  const o = lastJson(stdout, 'rr-client');
  return { p50_us: numberField(o, 'p50_us', 'rr-client'), p99_us: numberField(o, 'p99_us', 'rr-client'), tps: numberField(o, 'tps', 'rr-client') };
}

async function crr(ctx: TestContext, threads: number): Promise<Figures> {
  const { stdout } = await ctx.lab.exec(
    'client',
    ctx.tool,
    ['crr-client', ctx.target, String(RR_PORT), String(ctx.duration), String(threads)],
    { timeoutMs: (ctx.duration + 15) * 1000 },
  );
  const o = lastJson(stdout, 'crr-client');
  return { rate: numberField(o, 'rate', 'crr-client'), errors: numberField(o, 'errors', 'crr-client') };
}

export function runTest(test: TestId, ctx: TestContext): Promise<Figures> {
  switch (test) {
    case 'tcp1':
      return iperf(ctx, []);
    case 'tcp1r':
      return iperf(ctx, ['-R']);
    case 'tcp4':
      return iperf(ctx, ['-P', '4']);
    case 'udp64':
      return udp64(ctx);
    case 'rr':
      return rr(ctx);
    case 'crr1':
      return crr(ctx, 1);
    case 'crr4':
      return crr(ctx, 4);
  }
}

/**
 * Runs a Node script inside the lb namespace (the admin API listens on the lb's loopback) and returns its
 * last JSON output line.
 */
export async function nodeInLb(lab: Lab, script: string, args: readonly string[], timeoutMs: number): Promise<Record<string, unknown>> {
  const { stdout } = await lab.exec('lb', process.execPath, ['-e', script, ...args], { timeoutMs });
  return lastJson(stdout, 'admin script');
}

/**
 * Data-plane counters and drops by reason of an l4nat in the lb namespace: GET /v1/counters, or the
 * `dataplane` part of GET /v1/services where the admin API has no /v1/counters.
 */
export async function adminCounters(lab: Lab, adminPort: number): Promise<{ counters: Record<string, number>; drops: Record<string, number> }> {
  const script = `${AUTH_HEADER_JS}
    const base = 'http://127.0.0.1:' + process.argv[1];
    const headers = authHeader(process.argv[2]);
    (async () => {
      let r = await fetch(base + '/v1/counters', { headers });
      if (r.status === 200) {
        const c = await r.json();
        console.log(JSON.stringify({ counters: c.total, drops: c.drops }));
        return;
      }
      r = await fetch(base + '/v1/services', { headers });
      const v = await r.json();
      if (!v.dataplane) throw new Error('GET /v1/services has no dataplane counters: ' + r.status);
      console.log(JSON.stringify({ counters: v.dataplane.counters, drops: v.dataplane.drops }));
    })().catch((e) => { console.error(e.message); process.exit(1); });`;
  const o = await nodeInLb(lab, script, [String(adminPort), DEFAULT_ADMIN_TOKEN_FILE], 10_000);
  return { counters: (o.counters ?? {}) as Record<string, number>, drops: (o.drops ?? {}) as Record<string, number> };
}

/** Non-zero differences after - before, by key. */
export function counterDelta(before: Record<string, number>, after: Record<string, number>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(after)) {
    const d = v - (before[k] ?? 0);
    if (d !== 0) out[k] = d;
  }
  return out;
}
