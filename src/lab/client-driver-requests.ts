// The client driver's request mode: N short exchanges (TCP: connect, "hello", the reply line, close; UDP: one
// datagram each from its own source port, retried on loss), C at a time, bounded by count and a total deadline;
// the report counts answers per backend, the client addresses the backends saw and failures by code.
// Layers: client-driver-reply.ts → this file → client-driver.ts (the command).
import dgram from 'node:dgram';
import net from 'node:net';
import { DriverError, errorCode, normalizePeer, parseReply, type Reply } from './client-driver-reply';

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
