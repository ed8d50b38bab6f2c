// Reliability probe: long-lived traffic through a VIP that records *when* it made progress, so a test can tell
// how long a connection stalled (restart), whether packets flowed during a window (busy control plane), and
// whether idle established connections survived (SYN flood). Run inside the lab's client namespace:
//
//   node probe.js --target ADDR [--port 8080] [--streams N] [--interval-ms 20] [--chunk-bytes 512]
//                 [--idle N] [--udp-rate PPS] [--conn-rate CPS] [--duration-ms D] [--bin-ms 100]
//                 [--conn-timeout-ms 5000]
//
// Talks to src/lab/backend-server.ts: a line gets "<backend> <peer> <port>\n"; the line "stream" switches a TCP
// connection to echo. Streams: after "stream", a chunk every interval, every echoed byte verified; the gap between
// two echo arrivals is a stall (max per connection). Idle connections: "hello" once, then silence until the end,
// when each sends "ping" and must get its reply line. UDP: one socket (one 5-tuple) sending PPS datagrams a
// second, replies counted. New connections: CPS a second for the whole run, each connect + "hello" + reply + close
// within --conn-timeout-ms, every attempt recorded (start time, duration, backend or error). Everything is also counted in bins of --bin-ms on the wall clock (epoch ms), so the
// orchestrator can line them up with its own events.
//
// Prints {"event":"ready",...} once set up, {"event":"status",...} on SIGUSR1, and the final {"event":"report",...}
// after --duration-ms or SIGTERM (writing stops, echoes drain for up to 10 s, idle connections are pinged).
// Bounded: at most 2000 connections, 65 minutes, and the process exits after its report.
import dgram from 'node:dgram';
import net from 'node:net';

const MAX_CONNS = 2_000;
const MAX_DURATION_MS = 65 * 60_000;

export interface ProbeOptions {
  target: string;
  port: number;
  streams: number;
  idle: number;
  intervalMs: number;
  chunkBytes: number;
  udpRate: number;
  connRate: number;
  durationMs: number;
  binMs: number;
  connTimeoutMs: number;
}

/** Gaps a stream's echoes may have in a run (they come every --interval-ms, 20 by default) that it lists. */
export const LONG_GAP_MS = 50;
const MAX_LONG_GAPS = 64;

export interface ProbeConn {
  i: number;
  kind: 'stream' | 'idle';
  backend: string | null;
  localPort: number | null;
  bytesSent: number;
  bytesEchoed: number;
  /** Longest time between two echo arrivals while streaming (ms). */
  maxGapMs: number;
  /** When that gap ended (epoch ms). */
  maxGapEndAt: number;
  /** Every gap of at least LONG_GAP_MS while streaming, as [ended at (epoch ms), ms], the last MAX_LONG_GAPS kept. */
  longGaps: Array<[number, number]>;
  /** Idle connections: the final ping was answered. */
  pingOk: boolean | null;
  error: string | null;
}

/** One new-connection attempt: [start (epoch ms), duration (ms), backend name or error code, ok (1/0)]. */
export type ProbeAttempt = [number, number, string, number];

export interface ProbeBin {
  /** Bin start, epoch ms. */
  t: number;
  echoedBytes: number;
  udpSent: number;
  udpReplies: number;
}

export interface ProbeReport {
  event: 'report' | 'status';
  conns: ProbeConn[];
  bins: ProbeBin[];
  udp: { sent: number; replies: number; backends: Record<string, number> } | null;
  attempts: ProbeAttempt[];
  startedAt: number;
  endedAt: number;
}

export function parseProbeArgs(argv: readonly string[]): ProbeOptions {
  const m = new Map<string, string>();
  for (let i = 0; i < argv.length; i += 2) {
    const k = argv[i]!;
    const v = argv[i + 1];
    if (!k.startsWith('--') || v === undefined) throw new Error(`bad argument ${k}`);
    m.set(k.slice(2), v);
  }
  const int = (k: string, d: number, min: number, max: number): number => {
    const s = m.get(k);
    m.delete(k);
    const n = s === undefined ? d : Number(s);
    if (!Number.isInteger(n) || n < min || n > max) throw new Error(`--${k} must be an integer in ${min}..${max}, got ${s}`);
    return n;
  };
  const target = m.get('target') ?? '';
  m.delete('target');
  if (net.isIP(target) === 0) throw new Error(`--target must be an IP address, got ${JSON.stringify(target)}`);
  const o: ProbeOptions = {
    target,
    port: int('port', 8080, 1, 65535),
    streams: int('streams', 0, 0, MAX_CONNS),
    idle: int('idle', 0, 0, MAX_CONNS),
    intervalMs: int('interval-ms', 20, 1, 60_000),
    chunkBytes: int('chunk-bytes', 512, 1, 65536),
    udpRate: int('udp-rate', 0, 0, 10_000),
    connRate: int('conn-rate', 0, 0, 2_000),
    durationMs: int('duration-ms', 60_000, 1, MAX_DURATION_MS),
    binMs: int('bin-ms', 100, 10, 10_000),
    connTimeoutMs: int('conn-timeout-ms', 5_000, 1, 60_000),
  };
  if (o.streams + o.idle > MAX_CONNS) throw new Error(`--streams + --idle must be at most ${MAX_CONNS}`);
  if (m.size > 0) throw new Error(`unknown argument(s) ${[...m.keys()].map((k) => `--${k}`).join(', ')}`);
  return o;
}

/** Byte k of stream i: deterministic, so every echoed byte is checked. */
const patternByte = (i: number, k: number): number => (k * 31 + i * 7 + 11) & 0xff;

class Bins {
  private readonly map = new Map<number, ProbeBin>();
  constructor(private readonly binMs: number) {}
  at(now: number): ProbeBin {
    const t = now - (now % this.binMs);
    let b = this.map.get(t);
    if (!b) {
      b = { t, echoedBytes: 0, udpSent: 0, udpReplies: 0 };
      this.map.set(t, b);
    }
    return b;
  }
  list(): ProbeBin[] {
    return [...this.map.values()].sort((a, b) => a.t - b.t);
  }
}

class Conn {
  readonly r: ProbeConn;
  private sock: net.Socket | null = null;
  private buf = '';
  private streaming = false;
  private lastEchoAt = 0;
  private timer: NodeJS.Timeout | null = null;
  private onLine: ((line: string) => void) | null = null;
  private finished = false;
  writing = false;

  constructor(
    i: number,
    kind: 'stream' | 'idle',
    private readonly o: ProbeOptions,
    private readonly bins: Bins,
  ) {
    this.r = { i, kind, backend: null, localPort: null, bytesSent: 0, bytesEchoed: 0, maxGapMs: 0, maxGapEndAt: 0, longGaps: [], pingOk: null, error: null };
  }

  private fail(code: string): void {
    if (this.r.error === null) this.r.error = code;
    this.stopWriting();
    this.sock?.destroy();
  }

  /** Connects and learns the backend ("hello"); for a stream, switches to echo mode. */
  open(): Promise<void> {
    return new Promise((resolve) => {
      const sock = net.connect({ host: this.o.target, port: this.o.port });
      this.sock = sock;
      sock.setNoDelay(true);
      const t = setTimeout(() => {
        this.fail('ECONNTIMEOUT');
        resolve();
      }, this.o.connTimeoutMs);
      sock.on('error', (e: NodeJS.ErrnoException) => {
        this.fail(e.code ?? 'EUNKNOWN');
        clearTimeout(t);
        resolve();
      });
      sock.on('close', () => {
        if (!this.finished && this.r.error === null) this.r.error = 'ECLOSED';
        this.stopWriting();
      });
      sock.on('data', (d: Buffer) => this.onData(d));
      sock.once('connect', () => {
        this.r.localPort = sock.localPort ?? null;
        this.onLine = (line) => {
          clearTimeout(t);
          this.r.backend = line.split(' ')[0] ?? null;
          this.onLine = null;
          if (this.r.kind === 'stream') {
            sock.write('stream\n');
            this.streaming = true;
            this.lastEchoAt = Date.now();
            this.writing = true;
            this.timer = setInterval(() => this.writeChunk(), this.o.intervalMs);
          }
          resolve();
        };
        sock.write('hello\n');
      });
    });
  }

  private writeChunk(): void {
    if (!this.sock || !this.writing) return;
    // Keep at most 64 KiB unechoed, so a stall does not pile up unbounded data.
    if (this.r.bytesSent - this.r.bytesEchoed > 65536) return;
    const n = this.o.chunkBytes;
    const b = Buffer.allocUnsafe(n);
    for (let k = 0; k < n; k++) b[k] = patternByte(this.r.i, this.r.bytesSent + k);
    this.r.bytesSent += n;
    this.sock.write(b);
  }

  private onData(d: Buffer): void {
    const now = Date.now();
    if (this.streaming) {
      for (let k = 0; k < d.length; k++) {
        if (d[k] !== patternByte(this.r.i, this.r.bytesEchoed + k)) {
          this.fail('ECORRUPT');
          return;
        }
      }
      this.r.bytesEchoed += d.length;
      this.bins.at(now).echoedBytes += d.length;
      if (this.writing) {
        const gap = now - this.lastEchoAt;
        if (gap > this.r.maxGapMs) {
          this.r.maxGapMs = gap;
          this.r.maxGapEndAt = now;
        }
        if (gap >= LONG_GAP_MS && this.r.longGaps.push([now, gap]) > MAX_LONG_GAPS) this.r.longGaps.shift();
      }
      this.lastEchoAt = now;
      return;
    }
    this.buf += d.toString('latin1');
    let nl: number;
    while ((nl = this.buf.indexOf('\n')) >= 0) {
      const line = this.buf.slice(0, nl);
      this.buf = this.buf.slice(nl + 1);
      this.onLine?.(line);
    }
    if (this.buf.length > 4096) this.fail('ELINE');
  }

  stopWriting(): void {
    this.writing = false;
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  /** Streams: waits (bounded) until every byte sent came back. */
  async drain(deadline: number): Promise<void> {
    while (this.r.kind === 'stream' && this.r.error === null && this.r.bytesEchoed < this.r.bytesSent && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 20));
    }
    if (this.r.kind === 'stream' && this.r.error === null && this.r.bytesEchoed < this.r.bytesSent) this.r.error = 'EDRAIN';
  }

  /** Idle connections: one line, one reply. */
  ping(timeoutMs: number): Promise<void> {
    if (this.r.kind !== 'idle' || this.r.error !== null || !this.sock) return Promise.resolve();
    return new Promise((resolve) => {
      const t = setTimeout(() => {
        this.r.pingOk = false;
        this.onLine = null;
        if (this.r.error === null) this.r.error = 'EPINGTIMEOUT';
        resolve();
      }, timeoutMs);
      this.onLine = (line) => {
        clearTimeout(t);
        this.onLine = null;
        this.r.pingOk = line.split(' ')[0] === this.r.backend;
        if (!this.r.pingOk && this.r.error === null) this.r.error = 'EOTHERBACKEND';
        resolve();
      };
      this.sock!.write('ping\n');
    });
  }

  close(): void {
    this.finished = true;
    this.sock?.end();
    this.sock?.destroy();
  }
}

export async function runProbe(o: ProbeOptions): Promise<void> {
  const startedAt = Date.now();
  const bins = new Bins(o.binMs);
  const conns: Conn[] = [];
  for (let i = 0; i < o.streams; i++) conns.push(new Conn(i, 'stream', o, bins));
  for (let i = 0; i < o.idle; i++) conns.push(new Conn(o.streams + i, 'idle', o, bins));
  // Open in waves of 64 so a large count does not overflow the listen backlog.
  for (let k = 0; k < conns.length; k += 64) await Promise.all(conns.slice(k, k + 64).map((c) => c.open()));

  let udp: { sock: dgram.Socket; timer: NodeJS.Timeout; sent: number; replies: number; backends: Record<string, number> } | null = null;
  if (o.udpRate > 0) {
    const sock = dgram.createSocket(net.isIPv6(o.target) ? 'udp6' : 'udp4');
    await new Promise<void>((r) => sock.bind(0, r));
    const u = { sock, timer: null as unknown as NodeJS.Timeout, sent: 0, replies: 0, backends: {} as Record<string, number> };
    sock.on('message', (m) => {
      u.replies++;
      bins.at(Date.now()).udpReplies++;
      const name = m.toString('latin1').split(' ')[0] ?? '?';
      u.backends[name] = (u.backends[name] ?? 0) + 1;
    });
    sock.on('error', () => undefined);
    const period = 1000 / o.udpRate;
    let next = Date.now();
    // A fine-grained timer that catches up, so the send rate holds even when a tick is late.
    u.timer = setInterval(() => {
      const now = Date.now();
      for (let n = 0; next <= now && n < 100; n++, next += period) {
        sock.send(`u${u.sent}\n`, o.port, o.target);
        u.sent++;
        bins.at(now).udpSent++;
      }
    }, Math.max(1, Math.min(10, Math.floor(period))));
    udp = u;
  }

  const attempts: ProbeAttempt[] = [];
  let inflight = 0;
  const attempt = (): void => {
    const t0 = Date.now();
    inflight++;
    let done = false;
    const sock = net.connect({ host: o.target, port: o.port });
    const finish = (what: string, ok: boolean): void => {
      if (done) return;
      done = true;
      inflight--;
      clearTimeout(timer);
      attempts.push([t0, Date.now() - t0, what, ok ? 1 : 0]);
      sock.destroy();
    };
    const timer = setTimeout(() => finish('ETIMEDOUT', false), o.connTimeoutMs);
    let buf = '';
    sock.on('error', (e: NodeJS.ErrnoException) => finish(e.code ?? 'EUNKNOWN', false));
    sock.on('close', () => finish('ECLOSED', false));
    sock.on('connect', () => sock.write('hello\n'));
    sock.on('data', (d: Buffer) => {
      buf += d.toString('latin1');
      const nl = buf.indexOf('\n');
      if (nl >= 0) finish(buf.slice(0, nl).split(' ')[0] || '?', true);
    });
  };
  let connTimer: NodeJS.Timeout | null = null;
  if (o.connRate > 0) {
    const period = 1000 / o.connRate;
    let next = Date.now();
    connTimer = setInterval(() => {
      const now = Date.now();
      // Bounded: never more than rate × timeout attempts in flight (plus one tick).
      for (let n = 0; next <= now && n < 100; n++, next += period) {
        if (inflight < Math.max(1, (o.connRate * o.connTimeoutMs) / 1000) + 100) attempt();
      }
    }, Math.max(1, Math.min(10, Math.floor(period))));
  }

  const snapshot = (event: 'report' | 'status'): ProbeReport => ({
    event,
    conns: conns.map((c) => ({ ...c.r })),
    bins: bins.list(),
    udp: udp ? { sent: udp.sent, replies: udp.replies, backends: { ...udp.backends } } : null,
    attempts: [...attempts],
    startedAt,
    endedAt: Date.now(),
  });
  const write = (obj: unknown): void => void process.stdout.write(`${JSON.stringify(obj)}\n`);
  process.on('SIGUSR1', () => write(snapshot('status')));
  write({ event: 'ready', streams: o.streams, idle: o.idle, failed: conns.filter((c) => c.r.error !== null).length, at: Date.now() });

  await new Promise<void>((resolve) => {
    const t = setTimeout(resolve, o.durationMs);
    process.once('SIGTERM', () => {
      clearTimeout(t);
      resolve();
    });
  });
  for (const c of conns) c.stopWriting();
  if (udp) clearInterval(udp.timer);
  if (connTimer) clearInterval(connTimer);
  const deadline = Date.now() + 10_000; // generous: right after a flood on 2 shared cores echoes can lag seconds
  await Promise.all(conns.map((c) => c.drain(deadline)));
  await Promise.all(conns.map((c) => c.ping(3_000)));
  // Attempts still in flight finish (or time out) on their own.
  for (const end = Date.now() + o.connTimeoutMs + 500; inflight > 0 && Date.now() < end; ) await new Promise((r) => setTimeout(r, 20));
  await new Promise((r) => setTimeout(r, udp ? 300 : 0)); // last UDP replies
  const rep = snapshot('report');
  for (const c of conns) c.close();
  udp?.sock.close();
  // Exit only once the report is out: a large write to a pipe completes asynchronously, and process.exit() would
  // cut it short.
  process.stdout.write(`${JSON.stringify(rep)}\n`, () => process.exit(0));
}

if (require.main === module) {
  let o: ProbeOptions;
  try {
    o = parseProbeArgs(process.argv.slice(2));
  } catch (e) {
    process.stderr.write(`probe: ${(e as Error).message}\n`);
    process.exit(2);
  }
  runProbe(o).catch((e) => {
    process.stderr.write(`probe: ${(e as Error).stack ?? String(e)}\n`);
    process.exit(1);
  });
}
