// Lab client driver: generates bounded load from inside the client namespace and reports one JSON line.
// Layers: run by workload.ts (`ip netns exec <client> node client-driver.js ...`); talks to backend-server.ts.
//
// Request mode:
//   --target ADDR --port P --proto tcp|udp --count N --concurrency C --timeout-ms T
//   [--conn-timeout-ms t] [--udp-retries R] [--udp-rto-ms r]
//   TCP: N connections, each: connect, send "hello\n", read the reply line "<backend> <peer addr> <peer port>",
//   close. UDP: N request/response exchanges, each from its own socket (so its own source port), a lost datagram
//   is retried R times. Bounded by N and by the total deadline T (whatever is not done by then fails "EDEADLINE").
//   Prints {mode:"requests", ok, failed, perBackend, peerAddrs, peerAddrsByBackend, errors, elapsedMs, ...}.
//
// Stream mode:
//   --target ADDR --port P --streams N --duration-ms D [--chunk-bytes B] [--interval-ms I] [--window-bytes W]
//   [--drain-ms d] [--stall-ms s] [--conn-timeout-ms t]
//   Opens N connections, learns each one's backend ("hello"), sends "stream", then for D ms writes a chunk every
//   I ms (at most W bytes unacknowledged by the echo) and verifies every echoed byte. Then it stops writing,
//   waits up to d ms for the echo to catch up, closes and reports per connection bytes sent/verified and errors.
//   Prints {"event":"streaming",...} once all connections are set up (so a test knows when to act), a status
//   line on SIGUSR1, and the final {mode:"streams", ...} line; SIGTERM/SIGINT end the run early (with a report).
//
// Every loop is bounded in count and in time; the process exits once it has printed its report.
import dgram from 'node:dgram';
import net from 'node:net';

const MAX_COUNT = 1_000_000;
const MAX_CONCURRENCY = 4_096;
const MAX_STREAMS = 10_000;
const MAX_DURATION_MS = 10 * 60_000;

export interface RequestOptions {
  mode: 'requests';
  target: string;
  port: number;
  proto: 'tcp' | 'udp';
  count: number;
  concurrency: number;
  timeoutMs: number;
  connTimeoutMs: number;
  udpRetries: number;
  udpRtoMs: number;
}

export interface StreamOptions {
  mode: 'streams';
  target: string;
  port: number;
  streams: number;
  durationMs: number;
  chunkBytes: number;
  intervalMs: number;
  windowBytes: number;
  drainMs: number;
  stallMs: number;
  connTimeoutMs: number;
}

export type DriverOptions = RequestOptions | StreamOptions;

export interface RequestReport {
  mode: 'requests';
  proto: 'tcp' | 'udp';
  target: string;
  port: number;
  count: number;
  ok: number;
  failed: number;
  /** Successful exchanges per backend name. */
  perBackend: Record<string, number>;
  /** Unique client addresses the backends reported. */
  peerAddrs: string[];
  peerAddrsByBackend: Record<string, string[]>;
  /** Replies whose reported peer port differed from our own source port (the source port was rewritten). */
  peerPortMismatches: number;
  /** Failures by error code. */
  errors: Record<string, number>;
  /** UDP only: datagrams sent again after a timeout. */
  udpRetransmits: number;
  elapsedMs: number;
}

export interface StreamConnReport {
  i: number;
  backend: string | null;
  peerAddr: string | null;
  bytesSent: number;
  bytesVerified: number;
  error: string | null;
}

export interface StreamReport {
  mode: 'streams';
  target: string;
  port: number;
  streams: number;
  ok: number;
  failed: number;
  perBackend: Record<string, number>;
  errors: Record<string, number>;
  bytesSent: number;
  bytesVerified: number;
  conns: StreamConnReport[];
  /** true when the run was ended early by a signal. */
  stoppedEarly: boolean;
  elapsedMs: number;
}

export type DriverReport = RequestReport | StreamReport;

// ---------------------------------------------------------------------------------------------------------------
// Arguments

function intArg(name: string, v: string, min: number, max: number): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < min || n > max) throw new Error(`${name} must be an integer in ${min}..${max}, got ${v}`);
  return n;
}

export function parseDriverArgs(argv: readonly string[]): DriverOptions {
  const raw = new Map<string, string>();
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (!a.startsWith('--')) throw new Error(`unexpected argument ${a}`);
    const v = argv[++i];
    if (v === undefined) throw new Error(`${a} needs a value`);
    raw.set(a.slice(2), v);
  }
  const take = (k: string): string | undefined => {
    const v = raw.get(k);
    raw.delete(k);
    return v;
  };
  const target = take('target');
  if (!target || net.isIP(target) === 0) throw new Error(`--target must be an IP address, got ${String(target)}`);
  const portS = take('port');
  if (portS === undefined) throw new Error('--port is required');
  const port = intArg('--port', portS, 1, 65535);
  const connTimeoutS = take('conn-timeout-ms');
  const streamsS = take('streams');
  let opts: DriverOptions;
  if (streamsS !== undefined) {
    const durationS = take('duration-ms');
    if (durationS === undefined) throw new Error('--streams needs --duration-ms');
    const proto = take('proto');
    if (proto !== undefined && proto !== 'tcp') throw new Error('--streams works over tcp only');
    opts = {
      mode: 'streams',
      target,
      port,
      streams: intArg('--streams', streamsS, 1, MAX_STREAMS),
      durationMs: intArg('--duration-ms', durationS, 0, MAX_DURATION_MS),
      chunkBytes: intArg('--chunk-bytes', take('chunk-bytes') ?? '1024', 1, 1 << 20),
      intervalMs: intArg('--interval-ms', take('interval-ms') ?? '20', 1, 60_000),
      windowBytes: intArg('--window-bytes', take('window-bytes') ?? '65536', 1, 64 << 20),
      drainMs: intArg('--drain-ms', take('drain-ms') ?? '5000', 0, 600_000),
      stallMs: intArg('--stall-ms', take('stall-ms') ?? '10000', 100, 600_000),
      connTimeoutMs: intArg('--conn-timeout-ms', connTimeoutS ?? '5000', 1, 600_000),
    };
  } else {
    const proto = take('proto') ?? 'tcp';
    if (proto !== 'tcp' && proto !== 'udp') throw new Error(`--proto must be tcp or udp, got ${proto}`);
    const timeoutMs = intArg('--timeout-ms', take('timeout-ms') ?? '30000', 1, MAX_DURATION_MS);
    opts = {
      mode: 'requests',
      target,
      port,
      proto,
      count: intArg('--count', take('count') ?? '100', 0, MAX_COUNT),
      concurrency: intArg('--concurrency', take('concurrency') ?? '20', 1, MAX_CONCURRENCY),
      timeoutMs,
      connTimeoutMs: intArg('--conn-timeout-ms', connTimeoutS ?? String(Math.min(timeoutMs, 5_000)), 1, MAX_DURATION_MS),
      udpRetries: intArg('--udp-retries', take('udp-retries') ?? '3', 0, 100),
      udpRtoMs: intArg('--udp-rto-ms', take('udp-rto-ms') ?? '300', 1, 60_000),
    };
  }
  if (raw.size > 0) throw new Error(`unknown argument(s): ${[...raw.keys()].map((k) => `--${k}`).join(', ')}`);
  return opts;
}

// ---------------------------------------------------------------------------------------------------------------
// Helpers

/** A failure with a short code for the errors histogram. */
class DriverError extends Error {
  constructor(
    readonly code: string,
    message?: string,
  ) {
    super(message ?? code);
  }
}

function errorCode(err: unknown): string {
  if (err instanceof DriverError) return err.code;
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  return typeof code === 'string' ? code : 'EUNKNOWN';
}

function normalizePeer(addr: string): string {
  const m = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(addr);
  return m ? m[1]! : addr;
}

interface Reply {
  backend: string;
  peerAddr: string;
  peerPort: number;
}

const REPLY = /^(\S+) (\S+) (\d+)$/;

function parseReply(line: string): Reply | null {
  const m = REPLY.exec(line.trim());
  if (!m) return null;
  return { backend: m[1]!, peerAddr: normalizePeer(m[2]!), peerPort: Number(m[3]) };
}

function sameAddress(a: string, b: string): boolean {
  return normalizeAddr(a) === normalizeAddr(b);
}

function normalizeAddr(a: string): string {
  const n = normalizePeer(a);
  if (!n.includes(':')) return n;
  try {
    return new URL(`http://[${n}]/`).hostname;
  } catch {
    return n.toLowerCase();
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Request mode

function tcpExchange(target: string, port: number, timeoutMs: number): Promise<Reply & { localPort: number }> {
  return new Promise((resolve, reject) => {
    let buf = '';
    let settled = false;
    const sock = net.connect({ host: target, port });
    const timer = setTimeout(() => fail(new DriverError('ETIMEDOUT')), timeoutMs);
    function fail(err: Error): void {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      sock.destroy();
      reject(err);
    }
    sock.setNoDelay(true);
    sock.on('connect', () => sock.write('hello\n'));
    sock.on('error', (err) => fail(err));
    sock.on('close', () => fail(new DriverError('ECLOSED', 'connection closed before the reply')));
    sock.on('data', (chunk: Buffer) => {
      if (settled) return;
      buf += chunk.toString('latin1');
      const nl = buf.indexOf('\n');
      if (nl < 0) {
        if (buf.length > 4096) fail(new DriverError('EBADREPLY'));
        return;
      }
      const reply = parseReply(buf.slice(0, nl));
      if (!reply) {
        fail(new DriverError('EBADREPLY', `bad reply ${JSON.stringify(buf.slice(0, nl))}`));
        return;
      }
      settled = true;
      clearTimeout(timer);
      const localPort = sock.localPort ?? 0;
      sock.end();
      // Do not wait for the close handshake; make sure the socket goes away even if the FIN is lost.
      setTimeout(() => sock.destroy(), 2_000).unref();
      resolve({ ...reply, localPort });
    });
  });
}

function udpExchange(
  target: string,
  port: number,
  timeoutMs: number,
  retries: number,
  rtoMs: number,
  onRetransmit: () => void,
): Promise<Reply & { localPort: number }> {
  return new Promise((resolve, reject) => {
    const sock = dgram.createSocket(net.isIPv6(target) ? 'udp6' : 'udp4');
    let settled = false;
    let attempts = 0;
    let rto: NodeJS.Timeout | undefined;
    const overall = setTimeout(() => finish(new DriverError('ETIMEDOUT')), timeoutMs);
    function finish(err: Error | null, reply?: Reply & { localPort: number }): void {
      if (settled) return;
      settled = true;
      clearTimeout(overall);
      if (rto) clearTimeout(rto);
      try {
        sock.close();
      } catch {
        // Already closed.
      }
      if (err) reject(err);
      else resolve(reply!);
    }
    function send(): void {
      if (settled) return;
      if (attempts > retries) {
        finish(new DriverError('ETIMEDOUT'));
        return;
      }
      if (attempts > 0) onRetransmit();
      attempts++;
      sock.send('hello', port, target, (err) => {
        if (err) finish(err);
      });
      rto = setTimeout(send, rtoMs);
    }
    sock.on('error', (err) => finish(err));
    sock.on('message', (msg, rinfo) => {
      // A reply must come from the address and port we sent to; anything else means the NAT leaked.
      if (!sameAddress(rinfo.address, target) || rinfo.port !== port) {
        finish(new DriverError('EWRONGSOURCE', `reply from ${rinfo.address}:${rinfo.port}`));
        return;
      }
      const reply = parseReply(msg.toString('latin1'));
      if (!reply) {
        finish(new DriverError('EBADREPLY'));
        return;
      }
      let localPort = 0;
      try {
        localPort = sock.address().port;
      } catch {
        // Closed meanwhile.
      }
      finish(null, { ...reply, localPort });
    });
    sock.bind(0, () => send());
  });
}

export async function runRequests(o: RequestOptions): Promise<RequestReport> {
  const start = Date.now();
  const deadline = start + o.timeoutMs;
  const report: RequestReport = {
    mode: 'requests',
    proto: o.proto,
    target: o.target,
    port: o.port,
    count: o.count,
    ok: 0,
    failed: 0,
    perBackend: {},
    peerAddrs: [],
    peerAddrsByBackend: {},
    peerPortMismatches: 0,
    errors: {},
    udpRetransmits: 0,
    elapsedMs: 0,
  };
  const peers = new Set<string>();
  const peersBy = new Map<string, Set<string>>();
  const fail = (code: string): void => {
    report.failed++;
    report.errors[code] = (report.errors[code] ?? 0) + 1;
  };
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < o.count) {
      next++;
      const left = deadline - Date.now();
      if (left <= 0) {
        fail('EDEADLINE');
        continue;
      }
      const t = Math.min(o.connTimeoutMs, left);
      try {
        const r =
          o.proto === 'tcp'
            ? await tcpExchange(o.target, o.port, t)
            : await udpExchange(o.target, o.port, t, o.udpRetries, o.udpRtoMs, () => report.udpRetransmits++);
        report.ok++;
        report.perBackend[r.backend] = (report.perBackend[r.backend] ?? 0) + 1;
        peers.add(r.peerAddr);
        let s = peersBy.get(r.backend);
        if (!s) peersBy.set(r.backend, (s = new Set()));
        s.add(r.peerAddr);
        if (r.localPort !== 0 && r.peerPort !== r.localPort) report.peerPortMismatches++;
      } catch (err) {
        fail(Date.now() >= deadline ? 'EDEADLINE' : errorCode(err));
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(o.concurrency, Math.max(o.count, 1)) }, () => worker()));
  report.peerAddrs = [...peers].sort();
  for (const [b, s] of peersBy) report.peerAddrsByBackend[b] = [...s].sort();
  report.elapsedMs = Date.now() - start;
  return report;
}

// ---------------------------------------------------------------------------------------------------------------
// Stream mode

/** The byte at `offset` of connection `conn`'s stream: deterministic, so the echo can be verified without a copy. */
export function streamByte(conn: number, offset: number): number {
  return (offset * 131 + Math.floor(offset / 251) + conn * 17) & 0xff;
}

class StreamConn {
  backend: string | null = null;
  peerAddr: string | null = null;
  sent = 0;
  verified = 0;
  error: string | null = null;
  writing = false;
  lastProgress = Date.now();
  private closing = false;
  private sock: net.Socket | null = null;
  private timer: NodeJS.Timeout | undefined;
  private drained: (() => void) | null = null;

  constructor(
    readonly i: number,
    private readonly o: StreamOptions,
  ) {}

  /** Connects, learns the backend and switches the server to echo mode. */
  open(): Promise<void> {
    return new Promise((resolve) => {
      let buf = '';
      let phase: 'hello' | 'stream' = 'hello';
      const sock = net.connect({ host: this.o.target, port: this.o.port });
      this.sock = sock;
      sock.setNoDelay(true);
      const connectTimer = setTimeout(() => {
        this.fail('ETIMEDOUT');
        resolve();
      }, this.o.connTimeoutMs);
      sock.on('connect', () => sock.write('hello\n'));
      sock.on('error', (err) => {
        this.fail(errorCode(err));
        clearTimeout(connectTimer);
        resolve();
      });
      sock.on('close', () => {
        if (!this.closing) this.fail('ECLOSED');
        clearTimeout(connectTimer);
        resolve();
      });
      sock.on('data', (chunk: Buffer) => {
        if (phase === 'hello') {
          buf += chunk.toString('latin1');
          const nl = buf.indexOf('\n');
          if (nl < 0) return;
          const reply = parseReply(buf.slice(0, nl));
          clearTimeout(connectTimer);
          if (!reply) {
            this.fail('EBADREPLY');
            resolve();
            return;
          }
          this.backend = reply.backend;
          this.peerAddr = reply.peerAddr;
          phase = 'stream';
          sock.write('stream\n');
          this.lastProgress = Date.now();
          resolve();
          return;
        }
        this.verify(chunk);
      });
    });
  }

  private verify(chunk: Buffer): void {
    if (this.error !== null) return;
    for (let k = 0; k < chunk.length; k++) {
      if (this.verified >= this.sent) {
        this.fail('EEXTRA', `more bytes echoed than sent`);
        return;
      }
      if (chunk[k] !== streamByte(this.i, this.verified)) {
        this.fail('EMISMATCH', `byte ${this.verified} differs`);
        return;
      }
      this.verified++;
    }
    this.lastProgress = Date.now();
    if (this.drained && this.verified === this.sent) this.drained();
  }

  startWriting(): void {
    if (this.error !== null || this.sock === null) return;
    this.writing = true;
    this.timer = setInterval(() => this.tick(), this.o.intervalMs);
  }

  private tick(): void {
    if (!this.writing || this.error !== null || this.sock === null) return;
    const now = Date.now();
    if (this.sent > this.verified && now - this.lastProgress > this.o.stallMs) {
      this.fail('ESTALLED', `no echo for ${this.o.stallMs} ms`);
      return;
    }
    const room = this.o.windowBytes - (this.sent - this.verified);
    const n = Math.min(room, this.o.chunkBytes);
    if (n <= 0) return;
    const buf = Buffer.allocUnsafe(n);
    for (let k = 0; k < n; k++) buf[k] = streamByte(this.i, this.sent + k);
    if (this.sent === this.verified) this.lastProgress = now; // the stall clock runs only while bytes are owed
    this.sent += n;
    this.sock.write(buf);
  }

  stopWriting(): void {
    this.writing = false;
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  /** Waits until every sent byte came back, or ms elapsed (then the connection fails with EDRAIN). */
  drain(ms: number): Promise<void> {
    if (this.error !== null || this.verified === this.sent) return Promise.resolve();
    return new Promise((resolve) => {
      const t = setTimeout(() => {
        this.drained = null;
        this.fail('EDRAIN', `${this.sent - this.verified} bytes not echoed back`);
        resolve();
      }, ms);
      this.drained = () => {
        clearTimeout(t);
        this.drained = null;
        resolve();
      };
    });
  }

  fail(code: string, _detail?: string): void {
    if (this.error === null) this.error = code;
    this.stopWriting();
    if (this.drained) this.drained();
    this.closing = true;
    this.sock?.destroy();
  }

  close(): void {
    this.stopWriting();
    this.closing = true;
    if (this.sock) {
      this.sock.end();
      const s = this.sock;
      setTimeout(() => s.destroy(), 1_000).unref();
    }
  }

  report(): StreamConnReport {
    return {
      i: this.i,
      backend: this.backend,
      peerAddr: this.peerAddr,
      bytesSent: this.sent,
      bytesVerified: this.verified,
      error: this.error,
    };
  }
}

export interface StreamControl {
  /** Ends the writing phase now (as when the duration elapses). */
  stop(): void;
  /** Current per-connection state. */
  status(): { event: 'status'; conns: StreamConnReport[]; bytesVerified: number; failed: number };
}

export async function runStreams(
  o: StreamOptions,
  hooks: { onStreaming?: (info: { established: number; failed: number }) => void; control?: (c: StreamControl) => void } = {},
): Promise<StreamReport> {
  const start = Date.now();
  const conns = Array.from({ length: o.streams }, (_, i) => new StreamConn(i, o));
  let stopEarly: (() => void) | null = null;
  let stoppedEarly = false;
  const stopped = new Promise<void>((resolve) => {
    stopEarly = () => {
      stoppedEarly = true;
      resolve();
    };
  });
  hooks.control?.({
    stop: () => stopEarly?.(),
    status: () => ({
      event: 'status',
      conns: conns.map((c) => c.report()),
      bytesVerified: conns.reduce((s, c) => s + c.verified, 0),
      failed: conns.filter((c) => c.error !== null).length,
    }),
  });

  await Promise.all(conns.map((c) => c.open()));
  hooks.onStreaming?.({
    established: conns.filter((c) => c.error === null).length,
    failed: conns.filter((c) => c.error !== null).length,
  });
  for (const c of conns) c.startWriting();
  let durTimer: NodeJS.Timeout | undefined;
  await Promise.race([stopped, new Promise<void>((r) => (durTimer = setTimeout(r, o.durationMs)))]);
  if (durTimer) clearTimeout(durTimer);
  for (const c of conns) c.stopWriting();
  await Promise.all(conns.map((c) => c.drain(o.drainMs)));
  for (const c of conns) c.close();

  const report: StreamReport = {
    mode: 'streams',
    target: o.target,
    port: o.port,
    streams: o.streams,
    ok: 0,
    failed: 0,
    perBackend: {},
    errors: {},
    bytesSent: 0,
    bytesVerified: 0,
    conns: conns.map((c) => c.report()),
    stoppedEarly,
    elapsedMs: Date.now() - start,
  };
  for (const c of report.conns) {
    report.bytesSent += c.bytesSent;
    report.bytesVerified += c.bytesVerified;
    if (c.backend !== null) report.perBackend[c.backend] = (report.perBackend[c.backend] ?? 0) + 1;
    const good = c.error === null && c.bytesVerified === c.bytesSent && c.bytesVerified > 0;
    if (good) report.ok++;
    else {
      report.failed++;
      const code = c.error ?? (c.bytesVerified === 0 ? 'ENODATA' : 'EDRAIN');
      report.errors[code] = (report.errors[code] ?? 0) + 1;
    }
  }
  return report;
}

// ---------------------------------------------------------------------------------------------------------------
// Entry point

function printLine(obj: unknown): void {
  process.stdout.write(`${JSON.stringify(obj)}\n`);
}

async function main(argv: readonly string[]): Promise<void> {
  let o: DriverOptions;
  try {
    o = parseDriverArgs(argv);
  } catch (err) {
    process.stderr.write(`client-driver: ${(err as Error).message}\n`);
    process.exit(2);
  }
  if (o.mode === 'requests') {
    const hard = setTimeout(() => {
      process.stderr.write('client-driver: hard deadline passed\n');
      process.exit(3);
    }, o.timeoutMs + 10_000);
    hard.unref();
    const report = await runRequests(o);
    printLine(report);
    process.exit(0);
  }
  const so = o;
  const hard = setTimeout(
    () => {
      process.stderr.write('client-driver: hard deadline passed\n');
      process.exit(3);
    },
    so.connTimeoutMs + so.durationMs + so.drainMs + 10_000,
  );
  hard.unref();
  let control: StreamControl | null = null;
  process.on('SIGTERM', () => control?.stop());
  process.on('SIGINT', () => control?.stop());
  process.on('SIGUSR1', () => {
    if (control) printLine(control.status());
  });
  const report = await runStreams(so, {
    control: (c) => (control = c),
    onStreaming: (info) => printLine({ event: 'streaming', ...info }),
  });
  printLine(report);
  process.exit(0);
}

if (require.main === module) {
  main(process.argv.slice(2)).catch((err: unknown) => {
    process.stderr.write(`client-driver: ${err instanceof Error ? err.stack ?? err.message : String(err)}\n`);
    process.exit(1);
  });
}
