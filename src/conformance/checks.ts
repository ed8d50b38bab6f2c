// The TCP conformance checks (issue 4): each one builds its own lab, starts the target (l4nat or HAProxy), runs
// one scenario from the client namespace, collects evidence (captures, kernel counters, what each end read) and
// removes the lab, also when something fails.
// Layers: lab/ (namespaces, processes) → capture.ts, kernel.ts, target.ts → this file → run.ts, tests.
import path from 'node:path';
import { createLab, Lab, LabOptions, normalizeAddress } from '../lab/lab';
import type { NsProcess } from '../lab/netns';
import { sysctlSet } from '../lab/netns';
import { runClient } from '../lab/workload';
import { captureBackends, startCapture } from './capture';
import { counterDelta, readCounters, readCountersSum, tcpkit } from './kernel';
import { CapturedPacket, flowPackets, keepaliveProbes, TCP_FLAGS } from './packet';
import { startTarget, Target, TargetKind, TargetOptions } from './target';

/** 'error': the check could not run to the end (set-up failed, a helper crashed): neither pass nor a real fail. */
export type Outcome = 'pass' | 'fail' | 'n/a' | 'error';

export interface CheckResult {
  outcome: Outcome;
  /** One line of observed evidence (counter values, captured fields, what each end read). */
  evidence: string;
  /** Raw observations, for the JSON report. */
  data?: Record<string, unknown>;
  ms: number;
}

export interface CheckContext {
  /** Bytes each way on the single bulk connection (issue: 256 MiB). */
  bulkBytes: number;
  /** Concurrent connections of the many-connections integrity check, and bytes each way on each. */
  concurrentConns: number;
  concurrentBytes: number;
  /** Bytes of the path-MTU transfer. */
  pmtuBytes: number;
  /** Progress line sink (the runner prints them; tests use t.diagnostic). */
  log?: (line: string) => void;
}

export const DEFAULT_CONTEXT: CheckContext = {
  bulkBytes: 256 * 1024 * 1024,
  concurrentConns: 200,
  concurrentBytes: 256 * 1024,
  pmtuBytes: 8 * 1024 * 1024,
};

export interface Check {
  /** Row number and letter, e.g. "3a". */
  id: string;
  title: string;
  /** A terminating proxy cannot pass it: the suite asserts that HAProxy fails. */
  proxyMustFail: boolean;
  /** Targets for which the check means nothing (outcome n/a, with this reason). */
  notApplicable?: Partial<Record<TargetKind, string>>;
  run(kind: TargetKind, ctx: CheckContext): Promise<Omit<CheckResult, 'ms'>>;
}

const PORT = 8080;
const MiB = 1024 * 1024;

// ---------------------------------------------------------------------------------------------------------------
// Helpers

/** Builds a lab, runs fn, always removes the lab. */
export async function withLab<T>(opts: LabOptions, fn: (lab: Lab) => Promise<T>): Promise<T> {
  const lab = await createLab(opts);
  try {
    return await fn(lab);
  } finally {
    await lab.destroy();
  }
}

/** Starts the target, runs fn, always stops the target. */
async function withTarget<T>(lab: Lab, kind: TargetKind, o: TargetOptions, fn: (t: Target) => Promise<T>): Promise<T> {
  const t = await startTarget(lab, kind, o);
  try {
    return await fn(t);
  } finally {
    await t.stop();
  }
}

function script(name: 'server' | 'client'): string {
  return path.join(__dirname, `${name}.js`);
}

function jsonLines(proc: NsProcess): Record<string, unknown>[] {
  return proc.stdoutLines.flatMap((l) => {
    if (!l.startsWith('{')) return [];
    try {
      return [JSON.parse(l) as Record<string, unknown>];
    } catch {
      return [];
    }
  });
}

const isReady = (l: string): boolean => l.startsWith('{"ready":true');

/** Starts server.ts in each backend namespace. */
async function startServers(lab: Lab, ids = lab.backends.map((b) => b.id)): Promise<Map<string, NsProcess>> {
  const procs = new Map(ids.map((id) => [id, lab.spawn(id, process.execPath, [script('server'), '--name', id, '--port', String(PORT)])] as const));
  await Promise.all([...procs.values()].map((p) => p.waitForLine(isReady, { timeoutMs: 10_000, what: 'server ready line', stream: 'stdout' })));
  return procs;
}

/** Starts `tcpkit tfo-server` in each backend namespace. */
async function startTfoServers(lab: Lab, ids = lab.backends.map((b) => b.id)): Promise<Map<string, NsProcess>> {
  const bin = await tcpkit();
  const procs = new Map(ids.map((id) => [id, lab.spawn(id, bin, ['tfo-server', '--name', id, '--port', String(PORT)])] as const));
  await Promise.all([...procs.values()].map((p) => p.waitForLine(isReady, { timeoutMs: 10_000, what: 'tfo-server ready line', stream: 'stdout' })));
  return procs;
}

interface ServerEvent extends Record<string, unknown> {
  backend: string;
  event?: string;
  peer?: string;
  peerPort?: number;
}

/** Every JSON event the servers printed, tagged with the backend that printed it. */
function serverEvents(procs: Map<string, NsProcess>): ServerEvent[] {
  return [...procs].flatMap(([backend, p]) => jsonLines(p).filter((o) => o.ready !== true).map((o) => ({ backend, ...o })));
}

/** Waits until some server printed an event matching pred (or the timeout passes: null). */
async function waitServerEvent(procs: Map<string, NsProcess>, pred: (e: ServerEvent) => boolean, timeoutMs = 10_000): Promise<ServerEvent | null> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const e = serverEvents(procs).find(pred);
    if (e) return e;
    if (Date.now() > deadline) return null;
    await new Promise((r) => setTimeout(r, 50));
  }
}

interface ClientRun {
  proc: NsProcess;
  result: Promise<Record<string, unknown>>;
}

/** Runs client.ts in the client namespace; `result` is its result line. */
function startClient(lab: Lab, mode: string, flags: Record<string, string | number>): ClientRun {
  const args = [script('client'), mode, ...Object.entries(flags).flatMap(([k, v]) => [`--${k}`, String(v)])];
  const proc = lab.spawn('client', process.execPath, args, { maxLines: 50_000 });
  const result = (async () => {
    const st = await proc.exited;
    const r = jsonLines(proc).find((o) => o.result === true);
    if (!r) throw new Error(`client ${mode} gave no result (code ${st.code}, signal ${st.signal})\n${proc.tail()}`);
    return r;
  })();
  result.catch(() => undefined);
  return { proc, result };
}

function runConformanceClient(lab: Lab, mode: string, flags: Record<string, string | number>): Promise<Record<string, unknown>> {
  return startClient(lab, mode, flags).result;
}

interface TcpkitResult {
  ok: boolean;
  localAddr: string;
  localPort: number;
  replies: string[];
  synDataAcked: boolean;
  error: string | null;
}

/** `tcpkit client ...` in the client namespace. */
async function tcpkitClient(lab: Lab, args: readonly string[]): Promise<TcpkitResult> {
  const bin = await tcpkit();
  let stdout: string;
  try {
    ({ stdout } = await lab.exec('client', bin, ['client', ...args], { timeoutMs: 60_000 }));
  } catch (err) {
    // Exit status 1 still prints the JSON line (ok: false).
    stdout = (err as { stdout?: string }).stdout ?? '';
    if (!stdout.startsWith('{')) throw err;
  }
  return JSON.parse(stdout.trim().split('\n').pop()!) as TcpkitResult;
}

/** "b1 10.201.0.2 40000" → parts. */
function parseReply(line: string | null | undefined): { backend: string; addr: string; port: number } | null {
  const m = /^(\S+) (\S+) (\d+)$/.exec(line ?? '');
  return m ? { backend: m[1]!, addr: normalizeAddress(m[2]!), port: Number(m[3]) } : null;
}

function mib(n: number): string {
  return n >= MiB ? `${+(n / MiB).toFixed(1)} MiB` : `${+(n / 1024).toFixed(1)} KiB`;
}

function shortSha(s: unknown): string {
  return typeof s === 'string' ? `${s.slice(0, 12)}…` : String(s);
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

function vipFor(lab: Lab, family: 4 | 6): string {
  return family === 4 ? lab.vip4 : lab.vip6!;
}

// ---------------------------------------------------------------------------------------------------------------
// 1. Client address

const clientAddress: Check = {
  id: '1',
  title: "Client address: the backend's accepted peer is the client",
  proxyMustFail: true,
  run: (kind) =>
    withLab({ backends: 2 }, async (lab) => {
      await startServers(lab);
      return withTarget(lab, kind, {}, async () => {
        const r4 = await runClient(lab, { target: lab.vip4, count: 40, concurrency: 8, timeoutMs: 30_000 });
        const r6 = await runClient(lab, { target: lab.vip6!, count: 20, concurrency: 8, timeoutMs: 30_000 });
        const seen = [...new Set([...r4.peerAddrs, ...r6.peerAddrs].map(normalizeAddress))];
        const want = [lab.client.ipv4, lab.client.ipv6!];
        const ok = r4.failed === 0 && r6.failed === 0 && r4.peerAddrs.length === 1 && r6.peerAddrs.length === 1 &&
          normalizeAddress(r4.peerAddrs[0]!) === want[0] && normalizeAddress(r6.peerAddrs[0]!) === want[1];
        const ports = r4.peerPortMismatches + r6.peerPortMismatches;
        return {
          outcome: ok ? 'pass' : 'fail',
          evidence: `${r4.ok + r6.ok}/${r4.count + r6.count} conns (v4+v6); backends saw ${seen.join(', ')}${ok ? '' : ` (client is ${want.join(', ')})`}; ` +
            `source port ${ports === 0 ? 'kept' : `changed on ${ports}`}`,
          data: { v4: r4, v6: r6 },
        };
      });
    }),
};

// ---------------------------------------------------------------------------------------------------------------
// 2. Keepalive

const KEEPALIVE = { idle: 1, intvl: 1, cnt: 5, quietMs: 5_000 };

const keepalive: Check = {
  id: '2',
  title: `Keepalive: client probes (idle ${KEEPALIVE.idle} s, interval ${KEEPALIVE.intvl} s) reach the backend; connection survives ${KEEPALIVE.quietMs / 1000} s idle`,
  proxyMustFail: true,
  run: (kind) =>
    withLab({ backends: 2, ipv6: false }, async (lab) => {
      await startServers(lab);
      return withTarget(lab, kind, {}, async () => {
        const filter = `tcp port ${PORT}`;
        const caps = await captureBackends(lab, filter);
        const clientCap = await startCapture(lab, 'client', lab.client.dev, filter);
        const r = await tcpkitClient(lab, [
          '--host', lab.vip4, '--port', String(PORT),
          '--keepalive', `${KEEPALIVE.idle},${KEEPALIVE.intvl},${KEEPALIVE.cnt}`,
          '--send', 'hello', '--idle-ms', String(KEEPALIVE.quietMs), '--send', 'hello', '--timeout-ms', '5000',
        ]);
        const sentPkts = await clientCap.stop();
        const first = parseReply(r.replies[0]);
        const clientProbes = keepaliveProbes(flowPackets(sentPkts, lab.client.ipv4, r.localPort));
        let backendProbes: CapturedPacket[] = [];
        if (first) {
          const pkts = await caps.get(first.backend)!.stop();
          backendProbes = keepaliveProbes(flowPackets(pkts, first.addr, first.port, lab.backend(first.backend).ipv4, PORT));
        }
        await Promise.all([...caps.values()].map((c) => c.stop(0)));
        const gaps = backendProbes.slice(1).map((p, i) => (p.t - backendProbes[i]!.t) / 1000);
        const alive = r.ok && r.replies.length === 2;
        const ok = alive && backendProbes.length >= 3;
        return {
          outcome: ok ? 'pass' : 'fail',
          evidence: `client sent ${clientProbes.length} probes; ${first?.backend ?? 'backend'} saw ${backendProbes.length} from ${first ? `${first.addr}:${first.port}` : '?'}` +
            (gaps.length > 0 ? ` (every ${(gaps.reduce((a, b) => a + b, 0) / gaps.length).toFixed(1)} s, seq = snd.nxt−1, 0 bytes)` : '') +
            `; after ${KEEPALIVE.quietMs / 1000} s idle: ${alive ? 'connection alive' : `failed (${r.error})`}`,
          data: { client: r, clientProbes: clientProbes.length, backendProbes: backendProbes.length, gaps },
        };
      });
    }),
};

// ---------------------------------------------------------------------------------------------------------------
// 3. TCP Fast Open

const TFO_KEY = '0badc0de-0badc0de-0badc0de-0badc0de';
const TFO_COUNTERS = ['TcpExt.TCPFastOpenPassive', 'TcpExt.TCPFastOpenPassiveFail', 'TcpExt.TCPFastOpenCookieReqd'];

/** Client: Fast Open as a client (1); backends and the lb: client and server (3), the same server key everywhere. */
async function enableTfo(lab: Lab): Promise<void> {
  await sysctlSet(lab.client.ns, { 'net.ipv4.tcp_fastopen': 1 });
  for (const b of lab.backends) await sysctlSet(b.ns, { 'net.ipv4.tcp_fastopen': 3, 'net.ipv4.tcp_fastopen_key': TFO_KEY });
  await sysctlSet(lab.lb.ns, { 'net.ipv4.tcp_fastopen': 3, 'net.ipv4.tcp_fastopen_key': TFO_KEY });
}

/** SYNs with payload that reached a backend from `src`. */
function synsWithData(pkts: readonly CapturedPacket[], src?: string): CapturedPacket[] {
  return pkts.filter((p) => p.tcp && (p.tcp.flags & TCP_FLAGS.SYN) !== 0 && (p.tcp.flags & TCP_FLAGS.ACK) === 0 && p.tcp.len > 0 && (src === undefined || p.src === src));
}

function fmtCounters(c: Record<string, number>): string {
  return Object.entries(c)
    .map(([k, v]) => `${k.replace(/^TcpExt\.TCPFastOpen/, '')} ${v >= 0 ? '+' : ''}${v}`)
    .join(', ');
}

const TFO_REPEATS = 3;

const tfoSourceHash: Check = {
  id: '3a',
  title: 'TCP Fast Open, source-address hashing: the request rides in the SYN to the backend every time',
  proxyMustFail: true,
  run: (kind) =>
    withLab({ backends: 2, ipv6: false }, async (lab) => {
      await enableTfo(lab);
      const servers = await startTfoServers(lab);
      return withTarget(lab, kind, { hash: 'src', haproxy: { tfo: true } }, async () => {
        const roles = lab.backends.map((b) => b.id);
        const caps = await captureBackends(lab, `tcp port ${PORT}`);
        const before = await readCountersSum(lab, roles);
        const lbBefore = await readCounters(lab, 'lb');
        const base = ['--host', lab.vip4, '--port', String(PORT), '--tfo'];
        const first = await tcpkitClient(lab, [...base, '--send', 'tfo-0']);
        const later: TcpkitResult[] = [];
        for (let i = 1; i <= TFO_REPEATS; i++) later.push(await tcpkitClient(lab, [...base, '--send', `tfo-${i}`]));
        const after = await readCountersSum(lab, roles);
        const lbAfter = await readCounters(lab, 'lb');
        const pkts = (await Promise.all([...caps.values()].map((c) => c.stop()))).flat();
        const d = counterDelta(before, after, TFO_COUNTERS);
        const dLb = counterDelta(lbBefore, lbAfter, TFO_COUNTERS);
        const synData = synsWithData(pkts, lab.client.ipv4).filter((p) => /^tfo-[1-9]/.test(p.tcp!.data));
        const events = serverEvents(servers).filter((e) => e.event === 'conn');
        const inSyn = events.filter((e) => e.synData === true).length;
        const backendsUsed = [...new Set(later.map((r) => parseReply(r.replies[0])?.backend))];
        const allOk = first.ok && later.every((r) => r.ok && r.replies.length === 1);
        const ok = allOk && synData.length === TFO_REPEATS && d['TcpExt.TCPFastOpenPassive'] === TFO_REPEATS &&
          d['TcpExt.TCPFastOpenPassiveFail'] === 0 && inSyn === TFO_REPEATS;
        return {
          outcome: ok ? 'pass' : 'fail',
          evidence: `after a cookie request, ${synData.length}/${TFO_REPEATS} SYNs at ${backendsUsed.join('+')} carried the client's request` +
            ` (server: ${inSyn} accepted from the SYN); backends ${fmtCounters(d)}` +
            (kind === 'haproxy' ? `; lb (haproxy's own listener) ${fmtCounters(dLb)}` : '') +
            (allOk ? '; all replies ok' : '; some connections failed'),
          data: { first, later, delta: d, lbDelta: dLb, events },
        };
      });
    }),
};

const tfoFiveTuple: Check = {
  id: '3b',
  title: "TCP Fast Open, 5-tuple hashing: a cookie from one backend fails at another, the handshake falls back, data arrives",
  proxyMustFail: false,
  run: (kind) =>
    withLab({ backends: 2, ipv6: false }, async (lab) => {
      await enableTfo(lab);
      const servers = await startTfoServers(lab);
      return withTarget(lab, kind, { hash: '5tuple', haproxy: { tfo: true } }, async () => {
        const base = ['--host', lab.vip4, '--port', String(PORT)];
        const first = await tcpkitClient(lab, [...base, '--tfo', '--send', 'cookie']);
        const cookieFrom = parseReply(first.replies[0])?.backend;
        // Find a source port whose 5-tuple lands on the other backend (plain connections, closed with a reset so
        // that no TIME_WAIT keeps the port).
        let port = 0;
        let other: string | undefined;
        for (let p = 41_000; p < 41_200 && port === 0; p++) {
          const probe = await tcpkitClient(lab, [...base, '--bind-port', String(p), '--send', 'probe', '--close', 'rst']);
          const b = parseReply(probe.replies[0])?.backend;
          if (probe.ok && b !== undefined && b !== cookieFrom) {
            port = p;
            other = b;
          }
        }
        if (port === 0 || cookieFrom === undefined) {
          return { outcome: 'fail', evidence: `no source port led to a backend other than ${cookieFrom} (first: ${JSON.stringify(first)})` };
        }
        const roles = lab.backends.map((b) => b.id);
        const caps = await captureBackends(lab, `tcp port ${PORT}`);
        const before = await readCountersSum(lab, roles);
        const lbBefore = await readCounters(lab, 'lb');
        const second = await tcpkitClient(lab, [...base, '--tfo', '--bind-port', String(port), '--send', 'tfo-other']);
        const after = await readCountersSum(lab, roles);
        const lbAfter = await readCounters(lab, 'lb');
        const pkts = (await Promise.all([...caps.values()].map((c) => c.stop()))).flat();
        const d = counterDelta(before, after, TFO_COUNTERS);
        const dLb = counterDelta(lbBefore, lbAfter, TFO_COUNTERS);
        const landed = parseReply(second.replies[0]);
        const ev = await waitServerEvent(servers, (e) => e.event === 'conn' && e.req === 'tfo-other', 2_000);
        const synData = synsWithData(pkts, lab.client.ipv4);
        const delivered = second.ok && landed !== null;
        const ok = delivered && landed.backend === other && d['TcpExt.TCPFastOpenPassiveFail']! >= 1 &&
          d['TcpExt.TCPFastOpenPassive'] === 0 && ev?.synData === false && synData.length === 1;
        return {
          outcome: ok ? 'pass' : 'fail',
          evidence: `cookie from ${cookieFrom}; source port ${port} → ${landed?.backend ?? '?'}: SYN+data seen there ${synData.length}×, ` +
            `backends ${fmtCounters(d)}` + (kind === 'haproxy' ? `; lb (haproxy) ${fmtCounters(dLb)}` : '') +
            `; ${delivered ? 'request delivered after the handshake, reply ok' : `not delivered (${second.error})`}`,
          data: { first, second, cookieFrom, port, other, delta: d, lbDelta: dLb, event: ev },
        };
      });
    }),
};

// ---------------------------------------------------------------------------------------------------------------
// 4. Half-close

const HALF = 1 * MiB;

const halfCloseByClient: Check = {
  id: '4a',
  title: 'Half-close by the client: backend reads EOF, still answers, client reads all of it, then EOF',
  proxyMustFail: false,
  run: (kind) =>
    withLab({ backends: 2, ipv6: false }, async (lab) => {
      const servers = await startServers(lab);
      return withTarget(lab, kind, {}, async () => {
        const r = await runConformanceClient(lab, 'halfclose-client', { target: lab.vip4, up: HALF, down: HALF, 'timeout-ms': 20_000 });
        const ev = await waitServerEvent(servers, (e) => e.event === 'halfclose-client');
        const end = r.end as { how: string; code?: string } | undefined;
        const ok = ev !== null && ev.gotEof === true && ev.rxSha === r.txSha && ev.rxBytes === HALF && r.rxSha === ev.txSha && r.rxBytes === HALF && end?.how === 'EOF';
        return {
          outcome: ok ? 'pass' : 'fail',
          evidence: ev === null
            ? `backend reported nothing; client: ${JSON.stringify(r)}`
            : `backend read ${mib(Number(ev.rxBytes))} then EOF (SHA-256 ${ev.rxSha === r.txSha ? 'match' : 'MISMATCH'}), then sent ${mib(HALF)}; ` +
              `client read ${mib(Number(r.rxBytes))} (SHA-256 ${r.rxSha === ev.txSha ? 'match' : 'MISMATCH'}) then ${end?.how === 'EOF' ? 'EOF' : `${end?.how} ${end?.code ?? ''}`}`,
          data: { client: r, server: ev },
        };
      });
    }),
};

const halfCloseByBackend: Check = {
  id: '4b',
  title: 'Half-close by the backend: client reads EOF, still sends, backend reads all of it, then EOF',
  proxyMustFail: false,
  run: (kind) =>
    withLab({ backends: 2, ipv6: false }, async (lab) => {
      const servers = await startServers(lab);
      return withTarget(lab, kind, {}, async () => {
        const r = await runConformanceClient(lab, 'halfclose-server', { target: lab.vip4, up: HALF, down: HALF, 'timeout-ms': 20_000 });
        const ev = await waitServerEvent(servers, (e) => e.event === 'halfclose-server');
        const end = r.end as { how: string; code?: string } | undefined;
        const ok = ev !== null && end?.how === 'EOF' && r.rxBytes === HALF && r.rxSha === ev.txSha && ev.gotEof === true && ev.rxBytes === HALF && ev.rxSha === r.txSha;
        return {
          outcome: ok ? 'pass' : 'fail',
          evidence: ev === null
            ? `backend reported nothing; client: ${JSON.stringify(r)}`
            : `client read ${mib(Number(r.rxBytes))} then ${end?.how === 'EOF' ? 'EOF' : `${end?.how} ${end?.code ?? ''}`}, then sent ${mib(HALF)}` +
              `${r.writeError ? ` (write error ${r.writeError})` : ''}; backend read ${mib(Number(ev.rxBytes))} after its FIN ` +
              `(SHA-256 ${ev.rxSha === r.txSha ? 'match' : 'MISMATCH'}) then ${ev.gotEof ? 'EOF' : String(ev.error)}`,
          data: { client: r, server: ev },
        };
      });
    }),
};

// ---------------------------------------------------------------------------------------------------------------
// 5. Reset

const resetByBackend: Check = {
  id: '5a',
  title: 'Reset by the backend (SO_LINGER 0 + close): the client reads ECONNRESET, not EOF',
  proxyMustFail: false,
  run: (kind) =>
    withLab({ backends: 2, ipv6: false }, async (lab) => {
      const servers = await startServers(lab);
      return withTarget(lab, kind, {}, async () => {
        const r = await runConformanceClient(lab, 'reset-by-server', { target: lab.vip4, 'timeout-ms': 10_000 });
        const ev = await waitServerEvent(servers, (e) => e.event === 'reset-me', 2_000);
        const end = r.end as { how: string; code?: string } | undefined;
        const ok = ev !== null && end?.how === 'error' && end.code === 'ECONNRESET';
        return {
          outcome: ok ? 'pass' : 'fail',
          evidence: `${ev?.backend ?? 'backend'} aborted; client read ended with ${end ? (end.how === 'error' ? end.code : end.how) : String(r.error)}`,
          data: { client: r, server: ev },
        };
      });
    }),
};

const resetByClient: Check = {
  id: '5b',
  title: 'Reset by the client: the backend reads ECONNRESET, not EOF',
  proxyMustFail: false,
  run: (kind) =>
    withLab({ backends: 2, ipv6: false }, async (lab) => {
      const servers = await startServers(lab);
      return withTarget(lab, kind, {}, async () => {
        const r = await runConformanceClient(lab, 'reset-by-client', { target: lab.vip4, 'timeout-ms': 10_000 });
        const ev = await waitServerEvent(servers, (e) => e.event === 'wait-reset', 5_000);
        const ok = ev !== null && ev.outcome === 'ECONNRESET';
        return {
          outcome: ok ? 'pass' : 'fail',
          evidence: `client aborted; ${ev ? `${ev.backend} read ended with ${String(ev.outcome)}` : 'backend reported nothing within 5 s'}`,
          data: { client: r, server: ev },
        };
      });
    }),
};

// ---------------------------------------------------------------------------------------------------------------
// 6. The client's own SYN

const CLIENT_MSS = 1000;

interface SynFields {
  isn: number;
  tsval: number | undefined;
  mss: number | undefined;
  wscale: number | undefined;
  sackOk: boolean;
  ece: boolean;
  cwr: boolean;
  ipEcn: number;
  window: number;
}

function synFields(p: CapturedPacket): SynFields {
  const t = p.tcp!;
  return {
    isn: t.seq,
    tsval: t.opts.tsval,
    mss: t.opts.mss,
    wscale: t.opts.wscale,
    sackOk: t.opts.sackOk === true,
    ece: (t.flags & TCP_FLAGS.ECE) !== 0,
    cwr: (t.flags & TCP_FLAGS.CWR) !== 0,
    ipEcn: p.ecn,
    window: t.win,
  };
}

const isPureSyn = (p: CapturedPacket): boolean => p.tcp !== undefined && (p.tcp.flags & (TCP_FLAGS.SYN | TCP_FLAGS.ACK)) === TCP_FLAGS.SYN;

const ownSyn: Check = {
  id: '6',
  title: `The client's own SYN at the backend, field by field (client MSS ${CLIENT_MSS} via TCP_MAXSEG, ECN on)`,
  proxyMustFail: true,
  run: (kind) =>
    withLab({ backends: 2, ipv6: false }, async (lab) => {
      await sysctlSet(lab.client.ns, { 'net.ipv4.tcp_ecn': 1 });
      await startServers(lab);
      return withTarget(lab, kind, {}, async () => {
        const filter = `tcp port ${PORT}`;
        const caps = await captureBackends(lab, filter);
        const clientCap = await startCapture(lab, 'client', lab.client.dev, filter);
        const r = await tcpkitClient(lab, ['--host', lab.vip4, '--port', String(PORT), '--mss', String(CLIENT_MSS), '--send', 'hello']);
        const reply = parseReply(r.replies[0]);
        const cPkts = await clientCap.stop();
        const bPkts = reply ? await caps.get(reply.backend)!.stop() : [];
        await Promise.all([...caps.values()].map((c) => c.stop(0)));
        const cSyn = flowPackets(cPkts, lab.client.ipv4, r.localPort).find(isPureSyn);
        const bSyn = reply ? flowPackets(bPkts, reply.addr, reply.port).find(isPureSyn) : undefined;
        if (!cSyn || !bSyn || !reply) {
          return { outcome: 'fail', evidence: `SYN not captured (client ${cSyn ? 'yes' : 'no'}, backend ${bSyn ? 'yes' : 'no'}); client: ${JSON.stringify(r)}` };
        }
        const a = synFields(cSyn);
        const b = synFields(bSyn);
        const keys: Array<[keyof SynFields, string]> = [
          ['isn', 'ISN'],
          ['tsval', 'TSval'],
          ['mss', 'MSS'],
          ['wscale', 'wscale'],
          ['sackOk', 'SACK-perm'],
          ['ece', 'ECE'],
          ['cwr', 'CWR'],
        ];
        const diffs = keys.filter(([k]) => a[k] !== b[k]);
        const show = (v: unknown): string => (v === true ? 'yes' : v === false ? 'no' : String(v));
        const evidence = keys.map(([k, n]) => (a[k] === b[k] ? `${n} ${show(a[k])} =` : `${n} ${show(a[k])} ≠ ${show(b[k])}`)).join(', ');
        return {
          outcome: diffs.length === 0 ? 'pass' : 'fail',
          evidence: `client SYN vs SYN at ${reply.backend} (from ${reply.addr}:${reply.port}): ${evidence}`,
          data: { client: a, backend: b, reply },
        };
      });
    }),
};

// ---------------------------------------------------------------------------------------------------------------
// 7. Path MTU

const HOP_MTU = 1280;
const STALL_MS = 5_000;

interface PmtuFamily {
  fam: string;
  /** The backends' counter of errors received, and the sender's of errors sent. */
  icmpName: string;
  icmpOut: string;
  what: string;
}

function pmtuFamily(family: 4 | 6): PmtuFamily {
  return family === 4
    ? { fam: 'IPv4', icmpName: 'Icmp.InDestUnreachs', icmpOut: 'Icmp.OutDestUnreachs', what: '"fragmentation needed"' }
    : { fam: 'IPv6', icmpName: 'Icmp6.InPktTooBigs', icmpOut: 'Icmp6.OutPktTooBigs', what: '"packet too big"' };
}

interface PmtuTransfer {
  client: Record<string, unknown>;
  server: ServerEvent | null;
  /** Errors the backends received, and those `sender` sent, during the transfer. */
  icmpIn: number;
  icmpSent: number;
  /** The serving backend's route-cache MTU towards the client ('' when none). */
  cached: string;
  served?: string;
  intact: boolean;
  stalled: boolean;
  /** Bytes the client read. */
  rx: number;
  /** What happened to the bytes, for the evidence. */
  text: string;
}

/** One download of ctx.pmtuBytes with DF set from a backend to the client, and what the kernels counted meanwhile. */
async function pmtuTransfer(lab: Lab, family: 4 | 6, ctx: CheckContext, servers: Map<string, NsProcess>, sender: string, eventWaitMs: number): Promise<PmtuTransfer> {
  const f = pmtuFamily(family);
  const roles = lab.backends.map((b) => b.id);
  const before = await readCountersSum(lab, roles);
  const senderBefore = await readCounters(lab, sender);
  const r = await runConformanceClient(lab, 'integrity', {
    target: vipFor(lab, family), up: 0, down: ctx.pmtuBytes, conns: 1, 'stall-ms': STALL_MS, 'timeout-ms': 60_000,
  });
  const conn = (r.conns as Array<Record<string, unknown>> | undefined)?.[0] ?? {};
  const ev = await waitServerEvent(servers, (e) => e.event === 'integrity', eventWaitMs);
  const after = await readCountersSum(lab, roles);
  const senderAfter = await readCounters(lab, sender);
  let cached = '';
  const served = ev?.backend;
  if (served !== undefined && served !== '') {
    const route = await lab.ip(served, [family === 4 ? '-4' : '-6', 'route', 'get', family === 4 ? lab.client.ipv4 : lab.client.ipv6!]);
    cached = /mtu (\d+)/.exec(route)?.[1] ?? '';
  }
  const intact = conn.rxBytes === ctx.pmtuBytes && ev !== null && conn.rxSha === ev.txSha && conn.stalled !== true;
  const stalled = conn.stalled === true;
  const rx = Number(conn.rxBytes ?? 0);
  const text = intact
    ? `${mib(ctx.pmtuBytes)} intact (SHA-256 match) in ${((conn.ms as number) / 1000).toFixed(1)} s`
    : `transfer ${stalled ? 'stalled' : 'failed'} at ${mib(rx)}${conn.error ? ` (${conn.error})` : ''}`;
  return {
    client: r, server: ev, cached, served, intact, stalled, text, rx,
    icmpIn: (after[f.icmpName] ?? 0) - (before[f.icmpName] ?? 0),
    icmpSent: (senderAfter[f.icmpOut] ?? 0) - (senderBefore[f.icmpOut] ?? 0),
  };
}

async function setUpPmtuLab(lab: Lab): Promise<Map<string, NsProcess>> {
  // Path-MTU discovery only: TCP's probing around a black hole would hide one.
  for (const b of lab.backends) await sysctlSet(b.ns, { 'net.ipv4.tcp_mtu_probing': 0 });
  return startServers(lab);
}

/** The narrow hop in the middle of the path (two routers between lb and client), and its control. */
function pmtuCheck(id: string, family: 4 | 6, control: boolean): Check {
  const { fam, icmpName, what } = pmtuFamily(family);
  return {
    id,
    title: control
      ? `Path MTU control (${fam}): with l4nat's ICMP translation off (--debug-no-icmp-translate) the same transfer stalls`
      : `Path MTU (${fam}): ${HOP_MTU}-byte hop between lb and client; the router's ${what} reaches the backend, the transfer completes`,
    proxyMustFail: false,
    notApplicable: control ? { haproxy: 'a control of l4nat itself' } : undefined,
    run: (kind, ctx) =>
      withLab({ backends: 2, middleHopMtu: HOP_MTU }, async (lab) => {
        const servers = await setUpPmtuLab(lab);
        return withTarget(lab, kind, { l4natArgs: control ? ['--debug-no-icmp-translate'] : [] }, async () => {
          const t = await pmtuTransfer(lab, family, ctx, servers, 'r1', control ? 1_000 : 5_000);
          const common = `r1 sent ${t.icmpSent} ${what} (mtu ${HOP_MTU}); backends received ${t.icmpIn} (${icmpName})`;
          const data = { client: t.client, server: t.server, icmpIn: t.icmpIn, icmpSent: t.icmpSent };
          if (control) {
            const ok = t.stalled && t.icmpIn === 0 && t.icmpSent > 0;
            return {
              outcome: ok ? 'pass' : 'fail',
              evidence: `${common}; transfer ${t.stalled ? `stalled at ${mib(t.rx)} of ${mib(ctx.pmtuBytes)} (no progress for ${STALL_MS / 1000} s)` : `did not stall (${mib(t.rx)})`}` +
                ` — expected: the ICMP is dropped, so the backend never learns the path MTU`,
              data,
            };
          }
          const ok = t.intact && (kind === 'haproxy' || (t.icmpIn > 0 && t.cached === String(HOP_MTU)));
          return {
            outcome: ok ? 'pass' : 'fail',
            evidence: `${common}${t.cached ? `; ${t.served}'s route cache to the client: mtu ${t.cached}` : ''}; ${t.text}` +
              (kind === 'haproxy' ? ' (the proxy\'s own socket on the lb takes the ICMP)' : ''),
            data: { ...data, cachedMtu: t.cached },
          };
        });
      }),
  };
}

async function tunMtu(lab: Lab): Promise<string> {
  return /mtu (\d+)/.exec(await lab.ip('lb', ['link', 'show', 'l4nat0']))?.[1] ?? '';
}

/**
 * The narrow hop is the lb's own (issue 14): its link to the client, or a route to the client, narrowed to
 * HOP_MTU after the target started; every other link 1500 and no routers. The lb's kernel itself sends the
 * error: for a link, l4nat's TUN follows the link's MTU, so the backend's segments are too big for the TUN and
 * the error goes to the backend straight away; a route's MTU is no link MTU, so the TUN stays at 1500 and the
 * error is about the translated reply, from one of the lb's own addresses, which l4nat sends on from the VIP.
 */
function ownHopPmtuCheck(id: string, family: 4 | 6, narrow: 'link' | 'route'): Check {
  const { fam, icmpName, what } = pmtuFamily(family);
  return {
    id,
    title: narrow === 'link'
      ? `Path MTU (${fam}): the lb's own link to the client narrowed to ${HOP_MTU} after start; the backend learns it, the transfer completes`
      : `Path MTU (${fam}): a route on the lb to the client with mtu ${HOP_MTU}, added after start (links stay 1500); the lb's ${what} reaches the backend, the transfer completes`,
    proxyMustFail: false,
    run: (kind, ctx) =>
      withLab({ backends: 2 }, async (lab) => {
        const servers = await setUpPmtuLab(lab);
        return withTarget(lab, kind, {}, async () => {
          const client = family === 4 ? lab.client.ipv4 : lab.client.ipv6!;
          if (narrow === 'link') await lab.ip('lb', ['link', 'set', lab.client.lbDev, 'mtu', String(HOP_MTU)]);
          else await lab.ip('lb', [`-${family}`, 'route', 'add', client, 'dev', lab.client.lbDev, 'mtu', String(HOP_MTU)]);
          let tun = '';
          if (kind === 'l4nat') {
            // l4nat follows a link change within a fraction of a second; the route leaves the TUN as it is.
            const deadline = Date.now() + 5_000;
            for (;;) {
              tun = await tunMtu(lab);
              if (narrow === 'route' || tun === String(HOP_MTU) || Date.now() > deadline) break;
              await new Promise((r) => setTimeout(r, 50));
            }
          }
          const t = await pmtuTransfer(lab, family, ctx, servers, 'lb', 5_000);
          const followed = tun === String(HOP_MTU) ? 'followed the link' : 'did not follow the link';
          const tunText = kind === 'haproxy' ? '' : `; l4nat0 mtu ${tun} (${narrow === 'link' ? followed : 'a route MTU is no link MTU'})`;
          const ok = t.intact && (kind === 'haproxy' || (t.icmpIn > 0 && t.cached === String(HOP_MTU) && (narrow === 'route' || tun === String(HOP_MTU))));
          return {
            outcome: ok ? 'pass' : 'fail',
            evidence: `lb sent ${t.icmpSent} ${what} (mtu ${HOP_MTU}); backends received ${t.icmpIn} (${icmpName})${tunText}` +
              `${t.cached ? `; ${t.served}'s route cache to the client: mtu ${t.cached}` : ''}; ${t.text}` +
              (kind === 'haproxy' ? ' (the proxy\'s own socket on the lb sends at its route\'s MTU)' : ''),
            data: { client: t.client, server: t.server, icmpIn: t.icmpIn, icmpSent: t.icmpSent, cachedMtu: t.cached, tunMtu: tun },
          };
        });
      }),
  };
}

// ---------------------------------------------------------------------------------------------------------------
// 8. Integrity

const bulkIntegrity: Check = {
  id: '8a',
  title: 'Integrity: one connection, N bytes each way at once, SHA-256 end to end',
  proxyMustFail: false,
  run: (kind, ctx) =>
    withLab({ backends: 2, ipv6: false }, async (lab) => {
      const servers = await startServers(lab);
      return withTarget(lab, kind, {}, async () => {
        const r = await runConformanceClient(lab, 'integrity', {
          target: lab.vip4, up: ctx.bulkBytes, down: ctx.bulkBytes, conns: 1, 'stall-ms': 20_000, 'timeout-ms': 600_000,
        });
        const c = (r.conns as Array<Record<string, unknown>> | undefined)?.[0] ?? {};
        const ev = await waitServerEvent(servers, (e) => e.event === 'integrity');
        const up = ev !== null && ev.rxBytes === ctx.bulkBytes && ev.rxSha === c.txSha;
        const down = ev !== null && c.rxBytes === ctx.bulkBytes && c.rxSha === ev.txSha;
        const secs = Number(c.ms) / 1000;
        return {
          outcome: up && down ? 'pass' : 'fail',
          evidence: `${mib(ctx.bulkBytes)} up: SHA-256 ${up ? `match (${shortSha(c.txSha)})` : `MISMATCH (${mib(Number(ev?.rxBytes ?? 0))} arrived)`}; ` +
            `${mib(ctx.bulkBytes)} down: ${down ? `match (${shortSha(c.rxSha)})` : `MISMATCH (${mib(Number(c.rxBytes ?? 0))} arrived${c.error ? `, ${c.error}` : ''})`}; ` +
            `${secs.toFixed(1)} s (${((2 * ctx.bulkBytes * 8) / secs / 1e9).toFixed(2)} Gbit/s both ways)`,
          data: { client: c, server: ev },
        };
      });
    }),
};

const concurrentIntegrity: Check = {
  id: '8b',
  title: 'Integrity: many concurrent connections, every byte of every one checked (SHA-256)',
  proxyMustFail: false,
  run: (kind, ctx) =>
    withLab({ backends: 3, ipv6: false }, async (lab) => {
      const servers = await startServers(lab);
      return withTarget(lab, kind, {}, async () => {
        const r = await runConformanceClient(lab, 'integrity', {
          target: lab.vip4, up: ctx.concurrentBytes, down: ctx.concurrentBytes, conns: ctx.concurrentConns,
          concurrency: ctx.concurrentConns, 'stall-ms': 20_000, 'timeout-ms': 120_000,
        });
        const conns = (r.conns as Array<Record<string, unknown>> | undefined) ?? [];
        const deadline = Date.now() + 10_000;
        let evs: ServerEvent[] = [];
        while (Date.now() < deadline) {
          evs = serverEvents(servers).filter((e) => e.event === 'integrity');
          if (evs.length >= conns.length) break;
          await sleep(100);
        }
        const byId = new Map(evs.map((e) => [e.id as string, e]));
        let good = 0;
        const per: Record<string, number> = {};
        const bad: unknown[] = [];
        for (const c of conns) {
          const e = byId.get(c.id as string);
          if (e) per[e.backend] = (per[e.backend] ?? 0) + 1;
          if (e && e.rxBytes === ctx.concurrentBytes && e.rxSha === c.txSha && c.rxBytes === ctx.concurrentBytes && c.rxSha === e.txSha) good++;
          else bad.push({ client: c, server: e ?? null });
        }
        const ok = good === ctx.concurrentConns;
        // How the bad ones went wrong: bytes that arrived, and how each end saw the connection end.
        const how = (bad as Array<{ client: Record<string, unknown>; server: ServerEvent | null }>).slice(0, 3).map(({ client: c, server: e }) =>
          `${c.id}: client read ${String(c.rxBytes)} of ${ctx.concurrentBytes} B then ${c.error ? String(c.error) : c.stalled ? 'stalled' : c.eof ? 'a clean EOF' : 'close'}` +
          `, backend read ${String(e?.rxBytes ?? '?')} B then ${e ? (e.gotEof ? 'EOF' : String(e.error)) : 'nothing'}`);
        return {
          outcome: ok ? 'pass' : 'fail',
          evidence: `${ctx.concurrentConns} concurrent connections × ${mib(ctx.concurrentBytes)} each way: ${good}/${ctx.concurrentConns} matched both ways` +
            ` (${Object.entries(per).sort().map(([b, n]) => `${b} ${n}`).join(', ')}) in ${(Number(r.elapsedMs) / 1000).toFixed(1)} s` +
            (how.length > 0 ? `; ${how.join('; ')}${bad.length > 3 ? '; …' : ''}` : ''),
          data: { good, per, bad: bad.slice(0, 5) },
        };
      });
    }),
};

// ---------------------------------------------------------------------------------------------------------------
// 9. Long idle across a backend change

const IDLE_MS = 5_000;
const HAPROXY_CLIENT_TIMEOUT_MS = 3_000;
const L4NAT_TCP_TIMEOUT_S = 60;

const longIdle: Check = {
  id: '9',
  title: `Long idle across a change: ${IDLE_MS / 1000} s idle (HAProxy timeout client ${HAPROXY_CLIENT_TIMEOUT_MS / 1000} s, l4nat --tcp-timeout ${L4NAT_TCP_TIMEOUT_S}) while b3 is added and the connection's backend drained`,
  proxyMustFail: false,
  run: (kind) =>
    withLab({ backends: 3, ipv6: false }, async (lab) => {
      await startServers(lab);
      const opts: TargetOptions = {
        backendIds: ['b1', 'b2'],
        l4natArgs: ['--tcp-timeout', String(L4NAT_TCP_TIMEOUT_S)],
        haproxy: { timeoutClientMs: HAPROXY_CLIENT_TIMEOUT_MS },
      };
      return withTarget(lab, kind, opts, async (t) => {
        const run = startClient(lab, 'idle', { target: lab.vip4, 'idle-ms': IDLE_MS, 'timeout-ms': 10_000 });
        const line = await run.proc.waitForLine((l) => l.includes('"event":"connected"'), { timeoutMs: 10_000, what: 'connected line', stream: 'stdout' });
        const origin = parseReply((JSON.parse(line) as { reply: string }).reply);
        if (!origin) throw new Error(`bad first reply: ${line}`);
        await t.addBackend('b3');
        await t.drainBackend(origin.backend);
        const r = await run.result;
        const second = parseReply(r.second as string | null);
        // New connections: none to the drained backend.
        const fresh = await runClient(lab, { target: lab.vip4, count: 30, concurrency: 6, timeoutMs: 20_000 });
        const ok = second !== null && second.backend === origin.backend && r.error === null;
        const spread = Object.entries(fresh.perBackend).sort().map(([b, n]) => `${b} ${n}`).join(', ');
        return {
          outcome: ok ? 'pass' : 'fail',
          evidence: `connection on ${origin.backend}; b3 added, ${origin.backend} drained; after ${IDLE_MS / 1000} s idle: ` +
            (ok ? `answered by ${second.backend} on the same connection` : `${String(r.error ?? `answered by ${second?.backend}`)}`) +
            `; 30 new connections: ${spread || 'none'}`,
          data: { client: r, fresh: fresh.perBackend },
        };
      });
    }),
};

// ---------------------------------------------------------------------------------------------------------------
// 10. UDP

const UDP_TIMEOUT_S = 2;
const UDP_IDLE_MS = 4_000;

const udpPinning: Check = {
  id: '10',
  title: `UDP: a busy flow stays on its backend, replies come from VIP:port; a flow idle longer than --udp-timeout ${UDP_TIMEOUT_S} may move (here: its backend is drained meanwhile, so it does)`,
  proxyMustFail: false,
  notApplicable: { haproxy: 'HAProxy does not balance UDP (TCP mode only)' },
  run: (kind) =>
    withLab({ backends: 2, ipv6: false }, async (lab) => {
      await startServers(lab);
      return withTarget(lab, kind, { hash: 'src', l4natArgs: ['--udp-timeout', String(UDP_TIMEOUT_S)] }, async (t) => {
        const run = startClient(lab, 'udp', { target: lab.vip4, 'interval-ms': 100, 'idle-ms': UDP_IDLE_MS, 'timeout-ms': 20_000 });
        const line = await run.proc.waitForLine((l) => l.includes('"event":"idle"'), { timeoutMs: 10_000, what: 'idle line', stream: 'stdout' });
        const at = JSON.parse(line) as { quietBackend: string | null; busyBackend: string | null };
        if (at.quietBackend === null || at.busyBackend === null) throw new Error(`no UDP reply before the idle phase: ${line}`);
        await t.drainBackend(at.quietBackend);
        const r = await run.result;
        type Rep = { backend: string; from: string; fromPort: number };
        const busy = (r.busy as { replies: Rep[]; sent: number }).replies;
        const quiet = r.quiet as { before: Rep[]; after: Rep[] };
        const all = [...busy, ...quiet.before, ...quiet.after];
        const wrongSource = all.filter((x) => normalizeAddress(x.from) !== lab.vip4 || x.fromPort !== PORT).length;
        const busyBackends = [...new Set(busy.map((x) => x.backend))];
        const moved = quiet.after[0]?.backend;
        const ok = busyBackends.length === 1 && busy.length >= 30 && wrongSource === 0 && moved !== undefined && moved !== at.quietBackend;
        return {
          outcome: ok ? 'pass' : 'fail',
          evidence: `busy flow: ${busy.length} replies, all from ${busyBackends.join('+')} (drained meanwhile); idle flow: ${at.quietBackend} → ${moved ?? 'no reply'} after ${UDP_IDLE_MS / 1000} s idle; ` +
            `${wrongSource === 0 ? `every reply from ${lab.vip4}:${PORT}` : `${wrongSource} replies from elsewhere`}`,
          data: { busyBackends, quiet, wrongSource },
        };
      });
    }),
};

export const CHECKS: readonly Check[] = [
  clientAddress,
  keepalive,
  tfoSourceHash,
  tfoFiveTuple,
  halfCloseByClient,
  halfCloseByBackend,
  resetByBackend,
  resetByClient,
  ownSyn,
  pmtuCheck('7a', 4, false),
  pmtuCheck('7b', 6, false),
  pmtuCheck('7c', 4, true),
  ownHopPmtuCheck('7d', 4, 'link'),
  ownHopPmtuCheck('7e', 6, 'link'),
  ownHopPmtuCheck('7f', 4, 'route'),
  ownHopPmtuCheck('7g', 6, 'route'),
  bulkIntegrity,
  concurrentIntegrity,
  longIdle,
  udpPinning,
];

/** Runs one check against one target; an exception becomes a failed result that quotes it. */
export async function runCheck(check: Check, kind: TargetKind, ctx: CheckContext = DEFAULT_CONTEXT): Promise<CheckResult> {
  const t0 = Date.now();
  const na = check.notApplicable?.[kind];
  if (na !== undefined) return { outcome: 'n/a', evidence: na, ms: 0 };
  try {
    const r = await check.run(kind, ctx);
    return { ...r, ms: Date.now() - t0 };
  } catch (err) {
    const msg = err instanceof Error ? err.message : String(err);
    // The first line says what failed; the last lines of a quoted process output usually say why.
    const lines = msg.split('\n').map((l) => l.trim()).filter((l) => l !== '' && !/^--- (stdout|stderr)/.test(l));
    const why = lines.length > 1 ? ` … ${lines.slice(-2).join(' | ')}` : '';
    return { outcome: 'error', evidence: `error: ${lines[0] ?? msg}${why}`, data: { error: msg }, ms: Date.now() - t0 };
  }
}

