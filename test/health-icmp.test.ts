// The icmp check's shared socket (src/health/icmp.ts EchoMultiplexer) against a fake raw socket: which replies
// count (identifier, sequence, source, payload), what a probe says when it fails, and the socket's lifetime (one per
// family, opened with the first probe, receive paused between probes, closed when idle, reopened after an error).
// Replies are built with the reliability tests' independent packet builder. No root needed.
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { test } from 'node:test';
import { EchoMultiplexer, icmpChecksUnavailable, icmpUnavailable, type RawIcmpSocket } from '../src/health/icmp';
import { probe } from '../src/health/probe';
import type { HealthCheckSpec } from '../src/config/model';
import { icmp, ip, PROTO } from './rigs/craft';

interface Sent {
  packet: Buffer;
  addr: string;
  ident: number;
  seq: number;
  payload: Buffer;
}

class FakeSocket extends EventEmitter implements RawIcmpSocket {
  readonly sent: Sent[] = [];
  paused = false;
  closed = false;
  sendError: Error | null = null;

  send(buf: Buffer, offset: number, length: number, address: string, before: () => void, after: (err: Error | null, bytes: number) => void): this {
    const packet = Buffer.from(buf.subarray(offset, offset + length));
    setImmediate(() => {
      before();
      this.sent.push({ packet, addr: address, ident: packet.readUInt16BE(4), seq: packet.readUInt16BE(6), payload: packet.subarray(8) });
      after(this.sendError, this.sendError ? 0 : length);
    });
    return this;
  }

  pauseRecv(): this {
    this.paused = true;
    return this;
  }

  resumeRecv(): this {
    this.paused = false;
    return this;
  }

  close(): this {
    this.closed = true;
    return this;
  }

  /** Delivers a packet as the kernel would, unless receiving is paused (then it would wait in the socket). */
  deliver(packet: Buffer, source: string): void {
    assert.equal(this.paused, false, 'a packet delivered while receiving is paused');
    this.emit('message', packet, source);
  }
}

const LB4 = '10.201.1.1';

/** An IPv4 echo reply as the raw socket delivers it (with its IP header). */
function reply4(from: string, ident: number, seq: number, payload: Buffer): Buffer {
  return ip({ src: from, dst: LB4, proto: PROTO.ICMP }, icmp(from, LB4, 0, 0, ((ident << 16) | seq) >>> 0, payload));
}

function setup(family: 4 | 6 = 4, idleCloseMs = 60_000): { mux: EchoMultiplexer; sockets: FakeSocket[] } {
  const sockets: FakeSocket[] = [];
  const mux = new EchoMultiplexer(family, () => {
    const s = new FakeSocket();
    sockets.push(s);
    return s;
  }, 0x5a5a, idleCloseMs);
  return { mux, sockets };
}

const tick = (): Promise<void> => new Promise((r) => setImmediate(r));

test('a matching reply counts: identifier, sequence, source and payload as sent; the round-trip time is the result', async () => {
  const { mux, sockets } = setup();
  const p = mux.ping('10.201.1.2', 1000);
  await tick();
  const [s] = sockets;
  const req = s!.sent[0]!;
  assert.equal(req.addr, '10.201.1.2');
  assert.equal(req.ident, 0x5a5a);
  assert.equal(req.packet[0], 8, 'an echo request');
  s!.deliver(reply4('10.201.1.2', req.ident, req.seq, req.payload), '10.201.1.2');
  const r = await p;
  assert.equal(r.ok, true);
  assert.equal(r.detail, '');
  assert.ok(r.ms >= 0 && r.ms < 1000, `${r.ms} ms`);
});

test('replies with a wrong identifier, sequence number, source or payload are not counted: the probe times out', async () => {
  const { mux, sockets } = setup();
  const wrongs: [string, (q: Sent) => [Buffer, string]][] = [
    ['identifier', (q) => [reply4(q.addr, q.ident ^ 1, q.seq, q.payload), q.addr]],
    ['sequence number', (q) => [reply4(q.addr, q.ident, (q.seq + 1) & 0xffff, q.payload), q.addr]],
    ['source', (q) => [reply4('10.201.1.3', q.ident, q.seq, q.payload), '10.201.1.3']],
    ['payload', (q) => [reply4(q.addr, q.ident, q.seq, Buffer.from(q.payload).fill(0, 8)), q.addr]],
  ];
  for (const [what, make] of wrongs) {
    const p = mux.ping('10.201.1.2', 150);
    await tick();
    const q = sockets[0]!.sent.at(-1)!;
    const [pkt, from] = make(q);
    sockets[0]!.deliver(pkt, from);
    const r = await p;
    assert.equal(r.ok, false, `a reply with the wrong ${what} was counted`);
    assert.equal(r.detail, 'no echo reply, timeout after 150 ms', what);
    assert.ok(r.ms >= 140, `${what}: ${r.ms} ms`);
  }
  // The same probe sequence with right replies passes: what failed above was the one wrong field.
  const p = mux.ping('10.201.1.2', 150);
  await tick();
  const q = sockets[0]!.sent.at(-1)!;
  sockets[0]!.deliver(reply4(q.addr, q.ident, q.seq, q.payload), q.addr);
  assert.equal((await p).ok, true);
});

test('many checkers share one socket: concurrent probes get distinct sequence numbers, replies in any order find theirs', async () => {
  const { mux, sockets } = setup();
  const targets = Array.from({ length: 20 }, (_, i) => `10.201.${i + 1}.2`);
  const probes = targets.map((t) => mux.ping(t, 1000));
  await tick();
  assert.equal(sockets.length, 1, 'one socket for all');
  const sent = sockets[0]!.sent;
  assert.equal(new Set(sent.map((q) => q.seq)).size, targets.length, 'distinct sequence numbers');
  assert.equal(mux.inFlight, targets.length);
  // Answer every other target, in reverse order; also hand one target's reply to nobody else (same seq, other source).
  for (const q of [...sent].reverse()) {
    const i = targets.indexOf(q.addr);
    if (i % 2 === 0) sockets[0]!.deliver(reply4(q.addr, q.ident, q.seq, q.payload), q.addr);
  }
  const results = await Promise.all(probes);
  assert.deepEqual(results.map((r) => r.ok), targets.map((_, i) => i % 2 === 0));
});

test('an ICMP error quoting the probe does not end it early (anyone can send one); a timeout names it', async () => {
  const { mux, sockets } = setup();
  const p = mux.ping('10.201.1.2', 150);
  await tick();
  const q = sockets[0]!.sent[0]!;
  const quoted = ip({ src: LB4, dst: q.addr, proto: PROTO.ICMP }, q.packet);
  sockets[0]!.deliver(ip({ src: '10.201.1.254', dst: LB4, proto: PROTO.ICMP }, icmp('10.201.1.254', LB4, 3, 1, 0, quoted)), '10.201.1.254');
  // An error quoting a request to another address is not about this probe.
  const other = ip({ src: LB4, dst: '10.201.9.9', proto: PROTO.ICMP }, q.packet);
  sockets[0]!.deliver(ip({ src: '10.201.1.254', dst: LB4, proto: PROTO.ICMP }, icmp('10.201.1.254', LB4, 3, 13, 0, other)), '10.201.1.254');
  const r = await p;
  assert.equal(r.ok, false);
  assert.equal(r.detail, 'no echo reply, timeout after 150 ms: host unreachable (ICMP from 10.201.1.254)');

  const p2 = mux.ping('10.201.1.2', 1000);
  await tick();
  const q2 = sockets[0]!.sent[1]!;
  sockets[0]!.deliver(ip({ src: '10.201.1.254', dst: LB4, proto: PROTO.ICMP }, icmp('10.201.1.254', LB4, 3, 1, 0, ip({ src: LB4, dst: q2.addr, proto: PROTO.ICMP }, q2.packet))), '10.201.1.254');
  sockets[0]!.deliver(reply4(q2.addr, q2.ident, q2.seq, q2.payload), q2.addr);
  assert.equal((await p2).ok, true, 'the reply after a (forged) error still counts');
});

test('IPv6: replies without an IP header, the source compared in canonical form', async () => {
  const { mux, sockets } = setup(6);
  const p = mux.ping('fd4c:0:1:0:0:0:0:2', 1000);
  await tick();
  const q = sockets[0]!.sent[0]!;
  assert.equal(q.addr, 'fd4c:0:1::2');
  assert.equal(q.packet[0], 128);
  sockets[0]!.deliver(icmp('fd4c:0:1::2', 'fd4c:0:1::1', 129, 0, ((q.ident << 16) | q.seq) >>> 0, q.payload), 'fd4c:0:1::2');
  assert.equal((await p).ok, true);
  const bad = await mux.ping('10.0.0.1', 100);
  assert.match(bad.detail, /not an IPv6 address/);
});

test('socket lifetime: opened by the first probe, receive paused with nothing in flight, closed when idle, reopened after', async () => {
  const { mux, sockets } = setup(4, 100);
  assert.equal(mux.isOpen, false, 'nothing opened before a probe');
  const a = mux.ping('10.201.1.2', 50);
  const b = mux.ping('10.201.2.2', 80);
  await Promise.all([a, b]);
  assert.equal(sockets.length, 1);
  assert.equal(sockets[0]!.paused, true, 'nothing in flight: receive paused (the idle socket does not hold the event loop)');
  assert.equal(sockets[0]!.closed, false);
  const c = mux.ping('10.201.1.2', 50);
  assert.equal(sockets[0]!.paused, false, 'resumed for the next probe');
  await c;
  await new Promise((r) => setTimeout(r, 150));
  assert.equal(sockets[0]!.closed, true, 'closed once idle');
  assert.equal(mux.isOpen, false);
  await mux.ping('10.201.1.2', 20);
  assert.equal(sockets.length, 2, 'a new probe opens a new socket');
});

test('failures name their cause: no permission (CAP_NET_RAW), a send error, a socket error (the next probe reopens)', async () => {
  const denied = new EchoMultiplexer(4, () => {
    throw new Error('Operation not permitted');
  });
  const r = await denied.ping('10.201.1.2', 100);
  assert.deepEqual(r, { ok: false, ms: 0, detail: 'cannot open a raw ICMP socket: Operation not permitted (an icmp check needs CAP_NET_RAW)' });
  assert.equal(icmpUnavailable(6, () => { throw new Error('Operation not permitted'); }), 'cannot open a raw ICMPv6 socket: Operation not permitted (an icmp check needs CAP_NET_RAW)');
  assert.equal(icmpUnavailable(4, () => new FakeSocket()), undefined);

  const { mux, sockets } = setup();
  const first = mux.ping('10.201.1.2', 1000);
  await tick();
  sockets[0]!.sendError = new Error('Network is unreachable');
  const second = mux.ping('10.201.9.2', 1000);
  await tick();
  assert.equal((await second).detail, 'cannot send the echo request: Network is unreachable');
  sockets[0]!.sendError = null;
  sockets[0]!.emit('error', new Error('No buffer space available'));
  assert.equal((await first).detail, 'ICMP socket error: No buffer space available');
  assert.equal(sockets[0]!.closed, true);
  const third = mux.ping('10.201.1.2', 1000);
  await tick();
  assert.equal(sockets.length, 2, 'reopened');
  const q = sockets[1]!.sent[0]!;
  sockets[1]!.deliver(reply4(q.addr, q.ident, q.seq, q.payload), q.addr);
  assert.equal((await third).ok, true);
});

test('probe() dispatches type icmp to the echo check (the port plays no part)', async () => {
  const spec: HealthCheckSpec = { type: 'icmp', interval: 1, timeout: 0.2, rise: 1, fall: 1, jitter: 0, path: '/', expectStatus: [], tlsVerify: false };
  // Not an address of the family: the echo check itself says so, without a socket.
  const r = await probe(spec, { addr: 'fd00::1', family: 4, port: 80 });
  assert.equal(r.ok, false);
  assert.match(r.detail, /"fd00::1" is not an IPv4 address/);
});

test('icmpChecksUnavailable names the services whose icmp checks cannot run, per family, and only when a socket cannot open', () => {
  const icmpSpec: HealthCheckSpec = { type: 'icmp', interval: 1, timeout: 0.5, rise: 1, fall: 1, jitter: 0, path: '/', expectStatus: [], tlsVerify: false };
  const services = [
    { name: 'web', family: 4 as const, health: icmpSpec },
    { name: 'web', family: 6 as const, health: icmpSpec },
    { name: 'dns', family: 4 as const, health: icmpSpec },
    { name: 'api', family: 6 as const, health: { ...icmpSpec, type: 'tcp' as const } },
  ];
  const opened: number[] = [];
  const denyV6 = (family: 4 | 6): RawIcmpSocket => {
    opened.push(family);
    if (family === 6) throw new Error('Operation not permitted');
    return new FakeSocket();
  };
  assert.equal(icmpChecksUnavailable(services, denyV6),
    'service web has an icmp health check (IPv6), but cannot open a raw ICMPv6 socket: Operation not permitted (an icmp check needs CAP_NET_RAW): grant CAP_NET_RAW (systemd: AmbientCapabilities=CAP_NET_ADMIN CAP_NET_RAW, as the shipped unit does) or use another check type');
  assert.deepEqual(opened, [4, 6]);
  assert.match(icmpChecksUnavailable(services, () => { throw new Error('Operation not permitted'); }) ?? '', /^services web, dns have an icmp health check \(IPv4\)/);
  opened.length = 0;
  assert.equal(icmpChecksUnavailable(services.slice(2), denyV6), undefined, 'no IPv6 icmp check: no IPv6 socket needed');
  assert.deepEqual(opened, [4]);
  assert.equal(icmpChecksUnavailable([{ name: 'x', family: 6, health: null }], denyV6), undefined);
});
