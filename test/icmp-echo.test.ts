// ICMP/ICMPv6 echo messages of the icmp health check (src/health/icmp-echo.ts): requests built byte for byte,
// replies and errors parsed as raw sockets deliver them. Fixtures: bytes a real kernel sent back (captured with a raw
// socket in a namespace), and packets from the reliability tests' independent builder (test/rigs/craft.ts);
// checksums cross-checked with raw-socket's own. No root needed.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { echoRequest, inetChecksum, parseEchoMessage } from '../src/health/icmp-echo';
import { icmp, ip, PROTO, tcp } from './rigs/craft';

// eslint-disable-next-line @typescript-eslint/no-require-imports
const raw = require('raw-socket') as { createChecksum(...b: Buffer[]): number };

const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex');
/** A copy with byte i replaced by f(old). */
const patched = (p: Buffer, i: number, f: (b: number) => number): Buffer => {
  const c = Buffer.from(p);
  c[i] = f(c[i]!);
  return c;
};

test('echo requests: IPv4 with its checksum, IPv6 with 0 (the kernel fills it in)', () => {
  // What the kernel answered in a namespace: 127.0.0.1 pinged with this request replied 00 00 41fd 1234 0001 abcd.
  assert.deepEqual(echoRequest(4, 0x1234, 1, hex('abcd')), hex('0800 39fd 1234 0001 abcd'));
  assert.deepEqual(echoRequest(6, 0x1234, 1, hex('abcd')), hex('8000 0000 1234 0001 abcd'));
  for (let i = 0; i < 200; i++) {
    const m = echoRequest(4, i * 331 & 0xffff, i * 977 & 0xffff, randomBytes(i % 41));
    assert.equal(raw.createChecksum(m), 0, `request ${m.toString('hex')} sums to 0 by raw-socket's checksum`);
    assert.equal(inetChecksum(m), 0);
  }
});

test('replies a real kernel sent (IPv4 with its IP header, IPv6 without) parse to identifier, sequence and payload', () => {
  const v4 = hex('4500001e89d800004001f3047f0000017f000001 000041fd12340001abcd');
  assert.deepEqual(parseEchoMessage(4, v4), { kind: 'reply', ident: 0x1234, seq: 1, payload: hex('abcd') });
  const v6 = hex('8100c0b612340001abcd');
  assert.deepEqual(parseEchoMessage(6, v6), { kind: 'reply', ident: 0x1234, seq: 1, payload: hex('abcd') });
});

test('replies from the independent builder: identifier, sequence and payload as sent; IPv4 options skipped', () => {
  const payload = randomBytes(16);
  const r4 = ip({ src: '10.1.2.3', dst: '10.1.2.1', proto: PROTO.ICMP }, icmp('10.1.2.3', '10.1.2.1', 0, 0, (0xbeef << 16) | 0x0102, payload));
  assert.deepEqual(parseEchoMessage(4, r4), { kind: 'reply', ident: 0xbeef, seq: 0x0102, payload });
  const withOptions = ip({ src: '10.1.2.3', dst: '10.1.2.1', proto: PROTO.ICMP, options: hex('01010100') }, icmp('10.1.2.3', '10.1.2.1', 0, 0, 0x00070008, payload));
  assert.deepEqual(parseEchoMessage(4, withOptions), { kind: 'reply', ident: 7, seq: 8, payload });
  const r6 = icmp('fd00::2', 'fd00::1', 129, 0, 0xffff0000, payload);
  assert.deepEqual(parseEchoMessage(6, r6), { kind: 'reply', ident: 0xffff, seq: 0, payload });
});

test('not a reply to us: requests (our own, looped back), other types, a non-zero code, a wrong IPv4 checksum, cut short', () => {
  const reply = ip({ src: '10.1.2.3', dst: '10.1.2.1', proto: PROTO.ICMP }, icmp('10.1.2.3', '10.1.2.1', 0, 0, 0x00010002, hex('00112233')));
  assert.ok(parseEchoMessage(4, reply));
  const ihl = 20;
  const cases: [string, 4 | 6, Buffer][] = [
    ['an IPv4 echo request', 4, ip({ src: '10.1.2.1', dst: '10.1.2.3', proto: PROTO.ICMP }, echoRequest(4, 1, 2, hex('00')))],
    ['an IPv6 echo request', 6, echoRequest(6, 1, 2, hex('00'))],
    ['a timestamp reply', 4, ip({ src: '10.1.2.3', dst: '10.1.2.1', proto: PROTO.ICMP }, icmp('10.1.2.3', '10.1.2.1', 14, 0, 0x00010002, Buffer.alloc(12)))],
    ['an NDP neighbour advertisement', 6, icmp('fd00::2', 'fd00::1', 136, 0, 0, Buffer.alloc(16))],
    ['an echo reply with code 1', 4, ip({ src: '10.1.2.3', dst: '10.1.2.1', proto: PROTO.ICMP }, icmp('10.1.2.3', '10.1.2.1', 0, 1, 0x00010002, hex('00')))],
    ['a wrong ICMP checksum', 4, patched(reply, ihl + 2, (b) => b ^ 0x01)],
    ['an IP total length past the buffer', 4, reply.subarray(0, reply.length - 1)],
    ['an IHL below 5', 4, patched(reply, 0, () => 0x44)],
    ['not IPv4', 4, patched(reply, 0, () => 0x65)],
    ['not ICMP', 4, ip({ src: '10.1.2.3', dst: '10.1.2.1', proto: PROTO.TCP }, tcp('10.1.2.3', '10.1.2.1', { sport: 1, dport: 2, flags: 2 }))],
    ['an IPv6 reply of 7 bytes', 6, icmp('fd00::2', 'fd00::1', 129, 0, 0x00010002, Buffer.alloc(0)).subarray(0, 7)],
  ];
  for (const [what, family, p] of cases) assert.equal(parseEchoMessage(family, p), undefined, what);
});

test('errors quoting one of our echo requests: the quoted identifier, sequence and destination, and what the error says', () => {
  const req4 = ip({ src: '10.1.0.1', dst: '10.9.9.9', proto: PROTO.ICMP }, echoRequest(4, 0x4242, 77, randomBytes(16)));
  const unreach4 = ip({ src: '10.1.0.254', dst: '10.1.0.1', proto: PROTO.ICMP }, icmp('10.1.0.254', '10.1.0.1', 3, 1, 0, req4));
  assert.deepEqual(parseEchoMessage(4, unreach4), { kind: 'error', ident: 0x4242, seq: 77, dst: '10.9.9.9', detail: 'host unreachable' });
  // Routers may quote only the IP header and 8 bytes (RFC 792).
  const short4 = ip({ src: '10.1.0.254', dst: '10.1.0.1', proto: PROTO.ICMP }, icmp('10.1.0.254', '10.1.0.1', 11, 0, 0, req4.subarray(0, 28)));
  assert.deepEqual(parseEchoMessage(4, short4), { kind: 'error', ident: 0x4242, seq: 77, dst: '10.9.9.9', detail: 'time to live exceeded' });
  const prohibited = ip({ src: '10.1.0.254', dst: '10.1.0.1', proto: PROTO.ICMP }, icmp('10.1.0.254', '10.1.0.1', 3, 13, 0, req4));
  assert.deepEqual(parseEchoMessage(4, prohibited), { kind: 'error', ident: 0x4242, seq: 77, dst: '10.9.9.9', detail: 'communication administratively prohibited' });

  const req6 = ip({ src: 'fd00::1', dst: 'fd00:9::9', proto: PROTO.ICMPV6 }, echoRequest(6, 0x0102, 0xfffe, randomBytes(16)));
  const unreach6 = icmp('fd00::fe', 'fd00::1', 1, 3, 0, req6);
  assert.deepEqual(parseEchoMessage(6, unreach6), { kind: 'error', ident: 0x0102, seq: 0xfffe, dst: 'fd00:9::9', detail: 'address unreachable' });
  assert.deepEqual(parseEchoMessage(6, icmp('fd00::fe', 'fd00::1', 3, 0, 0, req6)), { kind: 'error', ident: 0x0102, seq: 0xfffe, dst: 'fd00:9::9', detail: 'hop limit exceeded' });

  // Errors about anything else are not about us.
  const tcp4 = ip({ src: '10.1.0.1', dst: '10.9.9.9', proto: PROTO.TCP }, tcp('10.1.0.1', '10.9.9.9', { sport: 1, dport: 2, flags: 2 }));
  assert.equal(parseEchoMessage(4, ip({ src: '10.1.0.254', dst: '10.1.0.1', proto: PROTO.ICMP }, icmp('10.1.0.254', '10.1.0.1', 3, 3, 0, tcp4))), undefined, 'quotes TCP');
  const reply4 = ip({ src: '10.1.0.1', dst: '10.9.9.9', proto: PROTO.ICMP }, icmp('10.1.0.1', '10.9.9.9', 0, 0, 0x42420001, hex('00')));
  assert.equal(parseEchoMessage(4, ip({ src: '10.1.0.254', dst: '10.1.0.1', proto: PROTO.ICMP }, icmp('10.1.0.254', '10.1.0.1', 3, 1, 0, reply4))), undefined, 'quotes an echo reply');
  assert.equal(parseEchoMessage(4, ip({ src: '10.1.0.254', dst: '10.1.0.1', proto: PROTO.ICMP }, icmp('10.1.0.254', '10.1.0.1', 3, 1, 0, req4.subarray(0, 27)))), undefined, 'quote cut inside the ICMP header');
  assert.equal(parseEchoMessage(6, icmp('fd00::fe', 'fd00::1', 1, 3, 0, req6.subarray(0, 47))), undefined, 'IPv6 quote cut inside the ICMPv6 header');
});

test('every prefix and single-byte corruption of valid packets parses without throwing', () => {
  const req4 = ip({ src: '10.1.0.1', dst: '10.9.9.9', proto: PROTO.ICMP }, echoRequest(4, 1, 2, randomBytes(8)));
  const req6 = ip({ src: 'fd00::1', dst: 'fd00:9::9', proto: PROTO.ICMPV6 }, echoRequest(6, 1, 2, randomBytes(8)));
  const samples: [4 | 6, Buffer][] = [
    [4, ip({ src: '10.1.2.3', dst: '10.1.2.1', proto: PROTO.ICMP }, icmp('10.1.2.3', '10.1.2.1', 0, 0, 0x00010002, randomBytes(16)))],
    [4, ip({ src: '10.1.0.254', dst: '10.1.0.1', proto: PROTO.ICMP }, icmp('10.1.0.254', '10.1.0.1', 3, 1, 0, req4))],
    [6, icmp('fd00::2', 'fd00::1', 129, 0, 0x00010002, randomBytes(16))],
    [6, icmp('fd00::fe', 'fd00::1', 1, 3, 0, req6)],
  ];
  for (const [family, p] of samples) {
    for (let n = 0; n <= p.length; n++) parseEchoMessage(family, p.subarray(0, n));
    for (let i = 0; i < p.length; i++) {
      for (const f of [() => 0x00, () => 0xff, (b: number) => b ^ 0x80]) parseEchoMessage(family, patched(p, i, f));
    }
  }
});
