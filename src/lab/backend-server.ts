// Lab backend: a tiny TCP + UDP server run inside each backend namespace.
//   node dist/src/lab/backend-server.js --name b1 --port 8080 [--port 8081 ...] [--host ::]
// Listens dual stack (:: with IPv4-mapped addresses) on every port for TCP and UDP.
//   TCP: every line received gets `<name> <peer address> <peer port>\n`. The line "stream" switches the connection
//        to echo mode: from then on everything received is sent back unchanged (long-lived connection tests).
//   UDP: every datagram gets `<name> <peer address> <peer port>`.
// Peer addresses are normalised (IPv4-mapped "::ffff:a.b.c.d" → "a.b.c.d"), so a test can compare them with the
// client's own address: through a NAT load balancer that keeps the source, that is what the backend sees.
// Prints one JSON line {"ready":true,...} on stdout once every socket listens; errors go to stderr. SIGTERM/SIGINT
// close everything and exit 0.
import dgram from 'node:dgram';
import net from 'node:net';

/** A line longer than this without a newline closes the connection (the buffer stays bounded). */
const MAX_LINE_BYTES = 4096;

export interface BackendServerOptions {
  name: string;
  ports: number[];
  host: string;
}

export function parseBackendArgs(argv: readonly string[]): BackendServerOptions {
  let name: string | undefined;
  let host = '::';
  const ports: number[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const value = (): string => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${a} needs a value`);
      return v;
    };
    if (a === '--name') name = value();
    else if (a === '--host') host = value();
    else if (a === '--port') {
      const v = value();
      const p = Number(v);
      if (!Number.isInteger(p) || p < 1 || p > 65535) throw new Error(`--port must be an integer in 1..65535, got ${v}`);
      ports.push(p);
    } else throw new Error(`unknown argument ${a}`);
  }
  if (!name || !/^[\w.-]+$/.test(name)) throw new Error('--name NAME is required (letters, digits, _ . -)');
  if (ports.length === 0) throw new Error('at least one --port is required');
  return { name, ports: [...new Set(ports)], host };
}

export function peerAddress(addr: string | undefined): string {
  if (addr === undefined) return '?';
  const m = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(addr);
  return m ? m[1]! : addr;
}

function handleTcp(name: string, sock: net.Socket): void {
  const peer = `${name} ${peerAddress(sock.remoteAddress)} ${sock.remotePort ?? 0}\n`;
  let buf = '';
  let streaming = false;
  sock.setNoDelay(true);
  sock.on('error', () => {
    // Resets are part of the tests' life; nothing to report per connection.
  });
  sock.on('data', (chunk: Buffer) => {
    if (streaming) {
      sock.write(chunk);
      return;
    }
    buf += chunk.toString('latin1');
    let nl: number;
    while (!streaming && (nl = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, nl).replace(/\r$/, '');
      buf = buf.slice(nl + 1);
      if (line === 'stream') {
        streaming = true;
        if (buf.length > 0) sock.write(Buffer.from(buf, 'latin1'));
        buf = '';
      } else {
        sock.write(peer);
      }
    }
    if (buf.length > MAX_LINE_BYTES) sock.destroy();
  });
}

export interface RunningBackend {
  close(): Promise<void>;
}

export async function startBackendServer(opts: BackendServerOptions): Promise<RunningBackend> {
  const servers: net.Server[] = [];
  const sockets: dgram.Socket[] = [];
  const conns = new Set<net.Socket>();
  for (const port of opts.ports) {
    const server = net.createServer((sock) => {
      conns.add(sock);
      sock.on('close', () => conns.delete(sock));
      handleTcp(opts.name, sock);
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen({ host: opts.host, port, ipv6Only: false, backlog: 1024 }, () => {
        server.removeListener('error', reject);
        resolve();
      });
    });
    server.on('error', (err) => process.stderr.write(`tcp ${port}: ${err.message}\n`));
    servers.push(server);

    const udp = dgram.createSocket({ type: opts.host.includes(':') ? 'udp6' : 'udp4', ipv6Only: false });
    await new Promise<void>((resolve, reject) => {
      udp.once('error', reject);
      udp.bind({ address: opts.host, port }, () => {
        udp.removeListener('error', reject);
        resolve();
      });
    });
    udp.on('error', (err) => process.stderr.write(`udp ${port}: ${err.message}\n`));
    udp.on('message', (_msg, rinfo) => {
      udp.send(`${opts.name} ${peerAddress(rinfo.address)} ${rinfo.port}`, rinfo.port, rinfo.address);
    });
    sockets.push(udp);
  }
  return {
    async close() {
      for (const c of conns) c.destroy();
      await Promise.all(servers.map((s) => new Promise<void>((r) => s.close(() => r()))));
      await Promise.all(sockets.map((s) => new Promise<void>((r) => s.close(() => r()))));
    },
  };
}

async function main(argv: readonly string[]): Promise<void> {
  let opts: BackendServerOptions;
  try {
    opts = parseBackendArgs(argv);
  } catch (err) {
    process.stderr.write(`backend-server: ${(err as Error).message}\n`);
    process.exit(2);
  }
  const running = await startBackendServer(opts);
  let closing = false;
  const stop = (): void => {
    if (closing) return;
    closing = true;
    void running.close().then(() => process.exit(0));
    setTimeout(() => process.exit(0), 2_000).unref();
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  process.stdout.write(`${JSON.stringify({ ready: true, name: opts.name, tcp: opts.ports, udp: opts.ports, pid: process.pid })}\n`);
}

if (require.main === module) {
  main(process.argv.slice(2)).catch((err: unknown) => {
    process.stderr.write(`backend-server: ${err instanceof Error ? err.stack ?? err.message : String(err)}\n`);
    process.exit(1);
  });
}
