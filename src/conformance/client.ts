// Conformance client, run in the client namespace; one scenario per run, one JSON result line on stdout:
//   node dist/src/conformance/client.js MODE --target ADDR [--port 8080] [flags]
// Modes (the server side is server.ts):
//   halfclose-client --up N --down M   send N bytes, shutdown(SHUT_WR), then read M bytes and EOF
//   halfclose-server --up N --down M   read M bytes and the server's EOF, then still send N bytes and FIN
//   reset-by-server                    ask the server to abort; report how our read ends (ECONNRESET or EOF)
//   reset-by-client                    abort (SO_LINGER 0 + close) ourselves; the server reports what it saw
//   integrity --conns C --concurrency K --up N --down M [--stall-ms S]
//                                      C connections (K at a time), each N bytes up and M down at once, SHA-256 of
//                                      both directions; a connection with no progress for S ms is "stalled"
//   idle --idle-ms T                   "hello", then T ms of silence, then "hello" again on the same connection;
//                                      prints {"event":"connected",...} after the first reply
//   udp --interval-ms I --idle-ms T    a busy flow (a datagram every I ms) and an idle one (one datagram, prints
//                                      {"event":"idle"}, T ms of silence, then another), both from their own socket
// Exit status 0 whenever a result line was printed (pass/fail is the orchestrator's call), 2 on bad arguments.
import dgram from 'node:dgram';
import net from 'node:net';
import { errCode, EMPTY_SHA256, intFlag, parseFlags, plainAddress, printJson, Receiver, sendRandom } from './wire';

interface Common {
  target: string;
  port: number;
  timeoutMs: number;
}

function connect(c: Common): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const sock = net.connect({ host: c.target, port: c.port, allowHalfOpen: true });
    const timer = setTimeout(() => {
      sock.destroy();
      reject(new Error('ETIMEDOUT (connect)'));
    }, Math.min(c.timeoutMs, 10_000));
    sock.once('connect', () => {
      clearTimeout(timer);
      sock.setNoDelay(true);
      // Errors are read where a scenario waits for them; none may go unhandled in between.
      sock.on('error', () => undefined);
      resolve(sock);
    });
    sock.once('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
  });
}

/** Reads one line (resolves without the newline); the rest of the chunk is handed to `rest`. */
function readLine(sock: net.Socket, timeoutMs: number, rest?: (b: Buffer) => void): Promise<string> {
  return new Promise((resolve, reject) => {
    let buf = Buffer.alloc(0);
    const done = (err: Error | null, line?: string): void => {
      clearTimeout(timer);
      sock.removeListener('data', onData);
      sock.removeListener('end', onEnd);
      sock.removeListener('error', onErr);
      if (err) reject(err);
      else resolve(line!);
    };
    const onData = (c: Buffer): void => {
      buf = Buffer.concat([buf, c]);
      const nl = buf.indexOf(10);
      if (nl < 0) return;
      const line = buf.subarray(0, nl).toString('latin1');
      const tail = buf.subarray(nl + 1);
      done(null, line);
      if (tail.length > 0) rest?.(tail);
    };
    const onEnd = (): void => done(new Error('EOF before a line'));
    const onErr = (e: Error): void => done(e);
    const timer = setTimeout(() => done(new Error('ETIMEDOUT (reply)')), timeoutMs);
    sock.on('data', onData);
    sock.once('end', onEnd);
    sock.once('error', onErr);
  });
}

/** Resolves when the socket has seen the peer's FIN ('end') or an error; reports which. */
function untilEnd(sock: net.Socket, timeoutMs: number): Promise<{ how: 'EOF' | 'error' | 'timeout'; code?: string; atMs: number }> {
  const t0 = Date.now();
  return new Promise((resolve) => {
    if (sock.readableEnded) {
      resolve({ how: 'EOF', atMs: 0 });
      return;
    }
    const timer = setTimeout(() => resolve({ how: 'timeout', atMs: Date.now() - t0 }), timeoutMs);
    sock.once('end', () => {
      clearTimeout(timer);
      resolve({ how: 'EOF', atMs: Date.now() - t0 });
    });
    sock.once('error', (e) => {
      clearTimeout(timer);
      resolve({ how: 'error', code: errCode(e), atMs: Date.now() - t0 });
    });
  });
}

function closed(sock: net.Socket, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    if (sock.closed) {
      resolve(true);
      return;
    }
    const timer = setTimeout(() => resolve(false), timeoutMs);
    sock.once('close', () => {
      clearTimeout(timer);
      resolve(true);
    });
  });
}

async function halfCloseClient(c: Common, up: number, down: number): Promise<object> {
  const sock = await connect(c);
  const rx = new Receiver();
  sock.on('data', (b: Buffer) => rx.push(b));
  sock.write(`halfclose-client ${down}\n`);
  const txSha = await sendRandom(sock, up);
  sock.end(); // shutdown(SHUT_WR): our FIN; we keep reading
  const end = await untilEnd(sock, c.timeoutMs);
  sock.destroy();
  return { mode: 'halfclose-client', localPort: sock.localPort, txBytes: up, txSha, rxBytes: rx.bytes, rxSha: rx.digest(), end };
}

async function halfCloseServer(c: Common, up: number, down: number): Promise<object> {
  const sock = await connect(c);
  const rx = new Receiver();
  sock.on('data', (b: Buffer) => rx.push(b));
  sock.write(`halfclose-server ${down}\n`);
  const end = await untilEnd(sock, c.timeoutMs); // the server's FIN
  let txSha: string | null = null;
  let writeError: string | null = null;
  if (end.how === 'EOF') {
    try {
      txSha = await sendRandom(sock, up);
      sock.end();
    } catch (e) {
      writeError = errCode(e);
    }
  }
  let lateError: string | null = null;
  sock.on('error', (e) => (lateError ??= errCode(e)));
  const wasClosed = await closed(sock, c.timeoutMs);
  sock.destroy();
  return { mode: 'halfclose-server', localPort: sock.localPort, rxBytes: rx.bytes, rxSha: rx.digest(), end, txBytes: up, txSha, writeError, lateError, closed: wasClosed };
}

async function resetByServer(c: Common): Promise<object> {
  const sock = await connect(c);
  sock.write('reset-me\n');
  const ok = await readLine(sock, c.timeoutMs);
  const end = await untilEnd(sock, c.timeoutMs);
  sock.destroy();
  return { mode: 'reset-by-server', localPort: sock.localPort, ok, end };
}

async function resetByClient(c: Common): Promise<object> {
  const sock = await connect(c);
  sock.on('error', () => undefined);
  sock.write('wait-reset\n');
  const ok = await readLine(sock, c.timeoutMs);
  const localPort = sock.localPort;
  await new Promise((r) => setTimeout(r, 300));
  sock.resetAndDestroy();
  await closed(sock, 2_000);
  return { mode: 'reset-by-client', localPort, ok, outcome: 'RST sent (SO_LINGER 0 + close)' };
}

interface ConnResult {
  id: string;
  localPort: number | undefined;
  txBytes: number;
  txSha: string | null;
  rxBytes: number;
  rxSha: string;
  eof: boolean;
  stalled: boolean;
  error: string | null;
  ms: number;
}

async function oneIntegrity(c: Common, id: string, up: number, down: number, stallMs: number): Promise<ConnResult> {
  const t0 = Date.now();
  const res: ConnResult = { id, localPort: undefined, txBytes: up, txSha: null, rxBytes: 0, rxSha: EMPTY_SHA256, eof: false, stalled: false, error: null, ms: 0 };
  let sock: net.Socket;
  try {
    sock = await connect(c);
  } catch (e) {
    res.error = errCode(e);
    res.ms = Date.now() - t0;
    return res;
  }
  res.localPort = sock.localPort;
  const rx = new Receiver();
  let last = Date.now();
  sock.on('data', (b: Buffer) => {
    rx.push(b);
    last = Date.now();
  });
  sock.on('error', (e) => (res.error ??= errCode(e)));
  const ended = new Promise<void>((resolve) => {
    sock.once('end', () => {
      res.eof = true;
      resolve();
    });
    sock.once('close', () => resolve());
  });
  const watchdog = setInterval(() => {
    if (Date.now() - last > stallMs) {
      res.stalled = true;
      sock.destroy();
    }
  }, 250);
  const deadline = setTimeout(() => {
    res.error ??= 'ETIMEDOUT (transfer)';
    sock.destroy();
  }, c.timeoutMs);
  sock.write(`integrity ${id} ${down}\n`);
  try {
    res.txSha = await sendRandom(sock, up);
    sock.end();
  } catch (e) {
    res.error ??= errCode(e);
  }
  await ended;
  clearInterval(watchdog);
  clearTimeout(deadline);
  sock.destroy();
  res.rxBytes = rx.bytes;
  res.rxSha = rx.digest();
  res.ms = Date.now() - t0;
  return res;
}

async function integrity(c: Common, conns: number, concurrency: number, up: number, down: number, stallMs: number): Promise<object> {
  const t0 = Date.now();
  const results: ConnResult[] = [];
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < conns) {
      const i = next++;
      results.push(await oneIntegrity(c, `c${i}`, up, down, stallMs));
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(concurrency, conns)) }, () => worker()));
  results.sort((a, b) => Number(a.id.slice(1)) - Number(b.id.slice(1)));
  return { mode: 'integrity', conns: results, elapsedMs: Date.now() - t0 };
}

async function idle(c: Common, idleMs: number): Promise<object> {
  const sock = await connect(c);
  let ended: string | null = null;
  const t0 = Date.now();
  sock.on('end', () => (ended ??= `EOF after ${Date.now() - t0} ms of idle`));
  sock.on('error', (e) => (ended ??= `${errCode(e)} after ${Date.now() - t0} ms of idle`));
  sock.write('hello\n');
  const first = await readLine(sock, c.timeoutMs);
  printJson({ event: 'connected', reply: first, localPort: sock.localPort });
  await new Promise((r) => setTimeout(r, idleMs));
  let second: string | null = null;
  let error: string | null = null;
  try {
    if (ended !== null) throw new Error(ended);
    sock.write('hello\n');
    second = await readLine(sock, c.timeoutMs);
  } catch (e) {
    error = ended ?? errCode(e);
  }
  sock.destroy();
  return { mode: 'idle', localPort: sock.localPort, first, second, idleMs, endedWhileIdle: ended, error };
}

interface UdpReply {
  at: number;
  backend: string | null;
  from: string;
  fromPort: number;
}

async function udp(c: Common, intervalMs: number, idleMs: number): Promise<object> {
  const type = net.isIPv6(c.target) ? 'udp6' : 'udp4';
  const t0 = Date.now();
  const open = async (): Promise<{ sock: dgram.Socket; replies: UdpReply[]; port: number }> => {
    const sock = dgram.createSocket(type);
    const replies: UdpReply[] = [];
    sock.on('message', (m, r) => replies.push({ at: Date.now() - t0, backend: m.toString('latin1').split(' ')[0] ?? null, from: plainAddress(r.address), fromPort: r.port }));
    await new Promise<void>((resolve) => sock.bind(0, resolve));
    return { sock, replies, port: sock.address().port };
  };
  const busy = await open();
  const quiet = await open();
  const send = (s: dgram.Socket): void => s.send('hello', c.port, c.target);
  let sent = 0;
  const timer = setInterval(() => {
    send(busy.sock);
    sent++;
  }, intervalMs);
  send(quiet.sock);
  await new Promise((r) => setTimeout(r, 500));
  const before = [...quiet.replies];
  printJson({ event: 'idle', quietBackend: before[0]?.backend ?? null, busyBackend: busy.replies[0]?.backend ?? null });
  await new Promise((r) => setTimeout(r, idleMs));
  const n = quiet.replies.length;
  send(quiet.sock);
  const deadline = Date.now() + 3_000;
  while (quiet.replies.length === n && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  await new Promise((r) => setTimeout(r, 500));
  clearInterval(timer);
  await new Promise((r) => setTimeout(r, 300));
  busy.sock.close();
  quiet.sock.close();
  return {
    mode: 'udp',
    busy: { localPort: busy.port, sent, replies: busy.replies },
    quiet: { localPort: quiet.port, before, after: quiet.replies.slice(n) },
    idleMs,
  };
}

async function main(argv: readonly string[]): Promise<void> {
  const [mode, ...rest] = argv;
  let out: object;
  try {
    const f = parseFlags(rest, ['target', 'port', 'timeout-ms', 'up', 'down', 'conns', 'concurrency', 'stall-ms', 'idle-ms', 'interval-ms']);
    const target = f.get('target');
    if (target === undefined || net.isIP(target) === 0) throw new Error('--target ADDR is required');
    const c: Common = { target, port: intFlag(f, 'port', 8080), timeoutMs: intFlag(f, 'timeout-ms', 60_000) };
    const hard = setTimeout(() => {
      process.stderr.write('conformance client: hard deadline passed\n');
      process.exit(3);
    }, c.timeoutMs + intFlag(f, 'idle-ms', 0) + 30_000);
    hard.unref();
    switch (mode) {
      case 'halfclose-client':
        out = await halfCloseClient(c, intFlag(f, 'up'), intFlag(f, 'down'));
        break;
      case 'halfclose-server':
        out = await halfCloseServer(c, intFlag(f, 'up'), intFlag(f, 'down'));
        break;
      case 'reset-by-server':
        out = await resetByServer(c);
        break;
      case 'reset-by-client':
        out = await resetByClient(c);
        break;
      case 'integrity':
        out = await integrity(c, intFlag(f, 'conns', 1), intFlag(f, 'concurrency', 1), intFlag(f, 'up'), intFlag(f, 'down'), intFlag(f, 'stall-ms', 10_000));
        break;
      case 'idle':
        out = await idle(c, intFlag(f, 'idle-ms'));
        break;
      case 'udp':
        out = await udp(c, intFlag(f, 'interval-ms', 100), intFlag(f, 'idle-ms'));
        break;
      default:
        throw new Error(`unknown mode ${JSON.stringify(mode)}`);
    }
  } catch (err) {
    if (err instanceof Error && /^(unknown|--)/.test(err.message)) {
      process.stderr.write(`conformance client: ${err.message}\n`);
      process.exit(2);
    }
    out = { mode, error: errCode(err) };
  }
  printJson({ result: true, ...out });
  process.exit(0);
}

if (require.main === module) {
  main(process.argv.slice(2)).catch((err: unknown) => {
    process.stderr.write(`conformance client: ${err instanceof Error ? err.stack ?? err.message : String(err)}\n`);
    process.exit(1);
  });
}
