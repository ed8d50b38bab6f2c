// Conformance backend server, run in each backend namespace:
//   node dist/src/conformance/server.js --name b1 [--port 8080]
// Listens dual stack on TCP and UDP. UDP: every datagram gets "<name> <peer addr> <peer port>". TCP: the first line
// picks what the connection does (allowHalfOpen: a FIN from the client never closes our side by itself):
//   hello                → every line gets "<name> <peer addr> <peer port>\n" (as src/lab/backend-server.ts)
//   halfclose-client N   → read until the client's FIN, then send N random bytes and FIN
//   halfclose-server N   → send N random bytes and FIN at once, keep reading until the client's FIN
//   reset-me             → "ok\n", then abort (SO_LINGER 0 + close: a RST) 200 ms later
//   wait-reset           → "ok\n", then wait and report how the connection ended (ECONNRESET, or EOF)
//   integrity ID N       → hash everything until the client's FIN while sending N random bytes, then FIN
// Every connection that is not "hello" ends with one JSON report line on stdout:
//   {"event":MODE,"name","peer","peerPort",("id"),"rxBytes","rxSha","txBytes","txSha","gotEof","outcome","error"}
// Prints {"ready":true} once listening; SIGTERM/SIGINT exit.
import dgram from 'node:dgram';
import net from 'node:net';
import { errCode, intFlag, parseFlags, plainAddress, printJson, Receiver, sendRandom } from './wire';

const MAX_HEADER = 256;

interface Base {
  name: string;
  peer: string;
  peerPort: number;
}

interface Report extends Base {
  event: string;
  id?: string;
  rxBytes?: number;
  rxSha?: string;
  txBytes?: number;
  txSha?: string;
  gotEof?: boolean;
  outcome?: string;
  error?: string | null;
}

function handle(name: string, sock: net.Socket): void {
  const base: Base = { name, peer: plainAddress(sock.remoteAddress), peerPort: sock.remotePort ?? 0 };
  let head = '';
  let started = false;
  sock.setNoDelay(true);
  const onHeader = (chunk: Buffer): void => {
    head += chunk.toString('latin1');
    const nl = head.indexOf('\n');
    if (nl < 0) {
      if (head.length > MAX_HEADER) sock.destroy();
      return;
    }
    sock.removeListener('data', onHeader);
    started = true;
    const line = head.slice(0, nl).replace(/\r$/, '');
    const rest = Buffer.from(head.slice(nl + 1), 'latin1');
    const [cmd = '', ...args] = line.split(' ');
    const n = (s: string | undefined): number => {
      const v = Number(s);
      return Number.isSafeInteger(v) && v >= 0 ? v : 0;
    };
    switch (cmd) {
      case 'halfclose-client':
        return halfCloseClient(sock, base, n(args[0]), rest);
      case 'halfclose-server':
        return halfCloseServer(sock, base, n(args[0]), rest);
      case 'reset-me':
        return resetMe(sock, base);
      case 'wait-reset':
        return waitReset(sock, base);
      case 'integrity':
        return integrity(sock, base, args[0] ?? '', n(args[1]), rest);
      default:
        return lines(sock, base, `${line}\n${rest.toString('latin1')}`);
    }
  };
  sock.on('data', onHeader);
  sock.on('error', () => {
    // Each mode reports its own errors; resets in hello mode are part of the tests' life.
  });
  sock.on('end', () => {
    if (!started) sock.end();
  });
}

/** Line mode: every line gets the peer line back. */
function lines(sock: net.Socket, base: Base, pending: string): void {
  const reply = `${base.name} ${base.peer} ${base.peerPort}\n`;
  let buf = '';
  const feed = (text: string): void => {
    buf += text;
    let nl: number;
    while ((nl = buf.indexOf('\n')) >= 0) {
      buf = buf.slice(nl + 1);
      sock.write(reply);
    }
    if (buf.length > 4096) sock.destroy();
  };
  sock.on('data', (c: Buffer) => feed(c.toString('latin1')));
  sock.on('end', () => sock.end());
  feed(pending);
}

function halfCloseClient(sock: net.Socket, base: Base, down: number, rest: Buffer): void {
  const rx = new Receiver();
  rx.push(rest);
  sock.on('data', (c: Buffer) => rx.push(c));
  let failed: string | null = null;
  sock.on('error', (e) => (failed ??= errCode(e)));
  sock.on('end', () => {
    // The client's FIN: it will send nothing more, yet our direction is still open.
    sendRandom(sock, down).then(
      (txSha) => {
        sock.end();
        printJson({ event: 'halfclose-client', ...base, gotEof: true, rxBytes: rx.bytes, rxSha: rx.digest(), txBytes: down, txSha, error: failed } satisfies Report);
      },
      (e: unknown) => printJson({ event: 'halfclose-client', ...base, gotEof: true, rxBytes: rx.bytes, rxSha: rx.digest(), error: errCode(e) }),
    );
  });
  sock.on('close', () => {
    if (failed !== null && !sock.readableEnded) printJson({ event: 'halfclose-client', ...base, gotEof: false, rxBytes: rx.bytes, error: failed });
  });
}

function halfCloseServer(sock: net.Socket, base: Base, down: number, rest: Buffer): void {
  const rx = new Receiver();
  rx.push(rest);
  let txSha: string | null = null;
  let failed: string | null = null;
  sock.on('error', (e) => (failed ??= errCode(e)));
  sock.on('data', (c: Buffer) => rx.push(c));
  void sendRandom(sock, down).then(
    (sha) => {
      txSha = sha;
      sock.end(); // our FIN first; the client keeps sending
    },
    (e: unknown) => (failed ??= errCode(e)),
  );
  sock.on('end', () => {
    printJson({ event: 'halfclose-server', ...base, gotEof: true, rxBytes: rx.bytes, rxSha: rx.digest(), txBytes: down, txSha: txSha ?? undefined, error: failed } satisfies Report);
  });
  sock.on('close', () => {
    if (!sock.readableEnded) printJson({ event: 'halfclose-server', ...base, gotEof: false, rxBytes: rx.bytes, error: failed ?? 'closed before EOF' });
  });
}

function resetMe(sock: net.Socket, base: Base): void {
  sock.write('ok\n');
  setTimeout(() => {
    sock.resetAndDestroy();
    printJson({ event: 'reset-me', ...base, outcome: 'RST sent (SO_LINGER 0 + close)' });
  }, 200);
}

function waitReset(sock: net.Socket, base: Base): void {
  sock.write('ok\n');
  let outcome: string | null = null;
  sock.on('data', () => undefined);
  sock.on('error', (e) => (outcome ??= errCode(e)));
  sock.on('end', () => {
    outcome ??= 'EOF';
    sock.end();
  });
  sock.on('close', () => printJson({ event: 'wait-reset', ...base, outcome: outcome ?? 'closed' }));
}

function integrity(sock: net.Socket, base: Base, id: string, down: number, rest: Buffer): void {
  const rx = new Receiver();
  rx.push(rest);
  let failed: string | null = null;
  let txSha: string | null = null;
  let gotEof = false;
  let reported = false;
  const report = (): void => {
    if (reported) return;
    reported = true;
    printJson({ event: 'integrity', ...base, id, rxBytes: rx.bytes, rxSha: rx.digest(), txBytes: down, txSha: txSha ?? undefined, gotEof, error: failed } satisfies Report);
  };
  sock.on('data', (c: Buffer) => rx.push(c));
  sock.on('error', (e) => (failed ??= errCode(e)));
  const sent = sendRandom(sock, down).then(
    (sha) => {
      txSha = sha;
      sock.end();
    },
    (e: unknown) => {
      failed ??= errCode(e);
    },
  );
  sock.on('end', () => {
    gotEof = true;
    void sent.then(report);
  });
  sock.on('close', report);
}

async function main(argv: readonly string[]): Promise<void> {
  let name: string;
  let port: number;
  try {
    const f = parseFlags(argv, ['name', 'port']);
    name = f.get('name') ?? '';
    if (!/^[\w.-]+$/.test(name)) throw new Error('--name NAME is required');
    port = intFlag(f, 'port', 8080);
  } catch (err) {
    process.stderr.write(`conformance server: ${(err as Error).message}\n`);
    process.exit(2);
  }
  const server = net.createServer({ allowHalfOpen: true }, (sock) => handle(name, sock));
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host: '::', port, ipv6Only: false, backlog: 4096 }, () => resolve());
  });
  const udp = dgram.createSocket({ type: 'udp6', ipv6Only: false });
  await new Promise<void>((resolve, reject) => {
    udp.once('error', reject);
    udp.bind({ address: '::', port }, () => resolve());
  });
  udp.on('message', (_m, r) => udp.send(`${name} ${plainAddress(r.address)} ${r.port}`, r.port, r.address));
  const stop = (): void => process.exit(0);
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  printJson({ ready: true, name, port, pid: process.pid });
}

if (require.main === module) {
  main(process.argv.slice(2)).catch((err: unknown) => {
    process.stderr.write(`conformance server: ${err instanceof Error ? err.stack ?? err.message : String(err)}\n`);
    process.exit(1);
  });
}
