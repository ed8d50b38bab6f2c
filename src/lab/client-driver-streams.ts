// The client driver's stream mode: N long connections switched to echo ("stream"), each writing a deterministic
// byte pattern every interval (at most a window unacknowledged by the echo) and verifying every echoed byte, then
// draining and closing; the report says per connection what was sent, what came back intact, and why it ended.
// Layers: client-driver-reply.ts → this file → client-driver.ts (the command).
import net from 'node:net';
import { errorCode, parseReply } from './client-driver-reply';

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
