// The catalogue of malformed and hostile packets sent at a VIP by test/reliability-garbage.test.ts, each with
// where it is expected to end: dropped by the LB host's kernel before l4nat (and which SNMP counter says so),
// dropped by l4nat (and under which drop reason), or forwarded (a NAT passes what it can translate; the backend's
// own stack judges TCP flag nonsense, options and bad L4 checksums). Pure: builds Buffers, no I/O.
// Layers: craft.ts (packet building) → this file → the test (sends with pktgen, captures at the backends).
import { PROTO, TCP, icmp, ip, tcp, udp } from './craft';

export type Expect =
  /** Reaches a backend, translated; `csumDelta`: its L4 checksum is still wrong by exactly this much. */
  | { kind: 'forward'; csumDelta?: number }
  /** Dropped and counted by l4nat under this drop reason. */
  | { kind: 'l4nat'; reason: string }
  /** Dropped by the LB host's kernel before l4nat sees it; `counters` (SNMP, e.g. "Ip.InCsumErrors") count it. */
  | { kind: 'kernel'; counters: string[] }
  /** Answered by l4nat itself (ICMP echo). */
  | { kind: 'answered' };

export interface GarbageCase {
  name: string;
  family: 4 | 6;
  /** The IP packet as sent on the wire. */
  pkt: Buffer;
  /** IPv4 identification / IPv6 flow label that marks this case's packets in captures. */
  marker: number;
  expect: Expect;
}

export interface GarbageTargets {
  client4: string;
  client6: string | null;
  vip4: string;
  vip6: string | null;
  port: number;
}

/** Markers: IPv4 ID 0x7a00 + index; IPv6 flow label 0x7a000 + index. */
export const MARKER4_BASE = 0x7a00;
export const MARKER6_BASE = 0x7a000;
/** Source ports of the crafted packets: below the ephemeral range, so captures tell them from real clients. */
export const GARBAGE_SPORT_BASE = 20_000;
export const GARBAGE_SPORT_MAX = 20_999;

export function isMarker(family: 4 | 6, id: number): boolean {
  return family === 4 ? id >= MARKER4_BASE && id < MARKER4_BASE + 0x100 : id >= MARKER6_BASE && id < MARKER6_BASE + 0x100;
}

const garbagePort = (port: number): boolean => port >= GARBAGE_SPORT_BASE && port <= GARBAGE_SPORT_MAX;

/**
 * Whether a captured packet (parsed with craft.parseIp) is one of ours: the marker in its IPv4 ID / IPv6 flow label
 * *and* a garbage source port (TCP/UDP) or, for ICMP, a garbage port in the quote or our echo identifier. A real
 * client's kernel picks IDs and flow labels at random, so the marker alone would match one now and then; its ports
 * are ephemeral (32768 and up), so the pair does not.
 */
export function isGarbage(info: { family: 4 | 6; id: number; proto: number; l4off: number; end: number }, p: Buffer): boolean {
  if (!isMarker(info.family, info.id)) return false;
  const l4 = p.subarray(info.l4off, info.end);
  if (info.proto === PROTO.TCP || info.proto === PROTO.UDP) return l4.length >= 2 && garbagePort(l4.readUInt16BE(0));
  if (info.proto === PROTO.ICMP || info.proto === PROTO.ICMPV6) {
    if (l4.length >= 8 && l4.readUInt16BE(4) === 0x7a7a) return true; // our echo identifier
    const q = l4.subarray(8);
    const qoff = q.length > 0 && q[0]! >> 4 === 6 ? 40 : (q.length > 0 ? (q[0]! & 0x0f) * 4 : 0);
    return q.length >= qoff + 4 && (garbagePort(q.readUInt16BE(qoff)) || garbagePort(q.readUInt16BE(qoff + 2)));
  }
  return true; // other protocols: only crafted packets carry them here
}

function patch(p: Buffer, f: (b: Buffer) => void): Buffer {
  const b = Buffer.from(p);
  f(b);
  return b;
}

/** Recomputes the IPv4 header checksum after a deliberate header change (so only that change is wrong). */
function fixIp4Csum(b: Buffer): void {
  const ihl = (b[0]! & 0x0f) * 4;
  if (ihl < 20 || ihl > b.length) return;
  b.writeUInt16BE(0, 10);
  let s = 0;
  for (let i = 0; i < ihl; i += 2) s += b.readUInt16BE(i);
  while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
  b.writeUInt16BE(~s & 0xffff, 10);
}

/** The first `n` bytes of an IP packet with its length field (and IPv4 header checksum) made to agree. */
function cut(p: Buffer, n: number): Buffer {
  const b = Buffer.from(p.subarray(0, n));
  if (b[0]! >> 4 === 4) {
    b.writeUInt16BE(n, 2);
    fixIp4Csum(b);
  } else {
    b.writeUInt16BE(n - 40, 4);
  }
  return b;
}

const MSS = Buffer.from([2, 4, 0x05, 0xb4]);

export function garbageCases(t: GarbageTargets): GarbageCase[] {
  const cases: GarbageCase[] = [];
  let i4 = 0;
  let i6 = 0;
  const c4 = t.client4;
  const v4 = t.vip4;
  const P = t.port;
  const add4 = (name: string, build: (id: number, sport: number) => Buffer, expect: Expect): void => {
    const n = i4++;
    cases.push({ name, family: 4, pkt: build(MARKER4_BASE + n, GARBAGE_SPORT_BASE + n), marker: MARKER4_BASE + n, expect });
  };
  const syn4 = (id: number, sport: number, extra: Partial<Parameters<typeof tcp>[2]> = {}, l3: Partial<Parameters<typeof ip>[0]> = {}): Buffer =>
    ip({ src: c4, dst: v4, proto: PROTO.TCP, id, ...l3 }, tcp(c4, v4, { sport, dport: P, flags: TCP.SYN, options: MSS, ...extra }));

  // --- IPv4 header: the LB host's kernel checks these in ip_rcv_core() before routing to the TUN.
  add4('ipv4 bad header checksum', (id, sp) => patch(syn4(id, sp), (b) => b.writeUInt16BE(b.readUInt16BE(10) ^ 0x5a5a, 10)), { kind: 'kernel', counters: ['IpExt.InCsumErrors', 'Ip.InHdrErrors'] });
  add4('ipv4 IHL 4 (< 5)', (id, sp) => patch(syn4(id, sp), (b) => ((b[0] = 0x44), fixIp4Csum(b))), { kind: 'kernel', counters: ['Ip.InHdrErrors'] });
  add4('ipv4 IHL 15 beyond the packet', (id, sp) => patch(ip({ src: c4, dst: v4, proto: PROTO.TCP, id }, Buffer.alloc(20)).subarray(0, 40), (b) => ((b[0] = 0x4f), fixIp4Csum(b))), { kind: 'kernel', counters: ['Ip.InHdrErrors'] });
  add4('ipv4 total length beyond the frame', (id, sp) => patch(syn4(id, sp), (b) => (b.writeUInt16BE(b.length + 200, 2), fixIp4Csum(b))), { kind: 'kernel', counters: ['IpExt.InTruncatedPkts'] });
  add4('ipv4 total length below IHL', (id, sp) => patch(syn4(id, sp), (b) => (b.writeUInt16BE(12, 2), fixIp4Csum(b))), { kind: 'kernel', counters: ['Ip.InHdrErrors'] });
  add4('ipv4 version 5 in an IPv4 frame', (id, sp) => patch(syn4(id, sp), (b) => ((b[0] = 0x55), fixIp4Csum(b))), { kind: 'kernel', counters: ['Ip.InHdrErrors'] });
  add4('ipv4 TTL 1 (expires at the LB host)', (id, sp) => syn4(id, sp, {}, { ttl: 1 }), { kind: 'kernel', counters: ['Ip.InHdrErrors'] });
  add4('ipv4 malformed option (length 0)', (id, sp) => syn4(id, sp, {}, { options: Buffer.from([0x07, 0x00, 0x00, 0x00]) }), { kind: 'kernel', counters: ['Ip.InHdrErrors'] });
  add4('ipv4 loose source route option', (id, sp) => syn4(id, sp, {}, { options: Buffer.from([0x83, 7, 4, 10, 201, 1, 2, 0]) }), { kind: 'kernel', counters: [] });
  // --- IPv4 options that the kernel accepts: l4nat translates the packet (IHL > 5 is handled).
  add4('ipv4 options NOP NOP NOP EOL', (id, sp) => syn4(id, sp, {}, { options: Buffer.from([1, 1, 1, 0]) }), { kind: 'forward' });
  add4('ipv4 record-route option', (id, sp) => syn4(id, sp, {}, { options: Buffer.from([7, 11, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0]) }), { kind: 'forward' });
  add4('ipv4 trailing bytes after total length', (id, sp) => Buffer.concat([syn4(id, sp), Buffer.from('trailing garbage')]), { kind: 'forward' });
  // --- Fragments: l4nat does not reassemble (docs/dataplane.md: dropped and counted).
  add4('ipv4 first fragment (MF)', (id, sp) => syn4(id, sp, {}, { frag: 0x2000 }), { kind: 'l4nat', reason: 'fragment' });
  add4('ipv4 later fragment (offset 1480)', (id) => ip({ src: c4, dst: v4, proto: PROTO.TCP, id, frag: 185 }, Buffer.alloc(64, 0xab)), { kind: 'l4nat', reason: 'fragment' });
  // --- TCP header
  add4('tcp header cut at 12 bytes', (id, sp) => cut(syn4(id, sp, { options: Buffer.alloc(0) }), 20 + 12), { kind: 'l4nat', reason: 'truncated' });
  add4('tcp data offset 4 (< 5)', (id, sp) => syn4(id, sp, { doff: 16, options: Buffer.alloc(0) }), { kind: 'l4nat', reason: 'bad_l4_header' });
  add4('tcp data offset 60 beyond the segment', (id, sp) => syn4(id, sp, { doff: 60, options: Buffer.alloc(0) }), { kind: 'l4nat', reason: 'bad_l4_header' });
  add4('tcp garbage options (length 0)', (id, sp) => syn4(id, sp, { options: Buffer.from([2, 0, 0xff, 0xff]) }), { kind: 'forward' });
  add4('tcp bad checksum (SYN)', (id, sp) => syn4(id, sp, { csumDelta: 0x1234 }), { kind: 'forward', csumDelta: 0x1234 });
  add4('tcp bad checksum (data)', (id, sp) => syn4(id, sp, { flags: TCP.ACK | TCP.PSH, options: Buffer.alloc(0), payload: Buffer.from('bad checksum'), csumDelta: 0x0101 }), { kind: 'forward', csumDelta: 0x0101 });
  // TCP flag nonsense: a NAT forwards it (by the ring; only a SYN creates a flow entry); the backend's stack judges.
  const flagCases: Array<[string, number]> = [
    ['SYN+FIN', TCP.SYN | TCP.FIN],
    ['SYN+RST', TCP.SYN | TCP.RST],
    ['no flags (null scan)', 0],
    ['FIN+PSH+URG (xmas)', TCP.FIN | TCP.PSH | TCP.URG],
    ['all eight flags', 0xff],
    ['FIN alone, no entry', TCP.FIN],
    ['RST alone, no entry', TCP.RST],
    ['URG alone', TCP.URG],
  ];
  for (const [what, flags] of flagCases) add4(`tcp flags ${what}`, (id, sp) => syn4(id, sp, { flags, options: Buffer.alloc(0) }), { kind: 'forward' });
  // --- UDP header
  const udp4 = (id: number, sport: number, o: Partial<Parameters<typeof udp>[2]> = {}): Buffer =>
    ip({ src: c4, dst: v4, proto: PROTO.UDP, id }, udp(c4, v4, { sport, dport: P, payload: Buffer.from('x'), ...o }));
  add4('udp header cut at 4 bytes', (id, sp) => cut(udp4(id, sp), 24), { kind: 'l4nat', reason: 'truncated' });
  add4('udp length field 0', (id, sp) => udp4(id, sp, { len: 0 }), { kind: 'l4nat', reason: 'bad_l4_header' });
  add4('udp length field 4 (< 8)', (id, sp) => udp4(id, sp, { len: 4 }), { kind: 'l4nat', reason: 'bad_l4_header' });
  add4('udp length field beyond the datagram', (id, sp) => udp4(id, sp, { len: 400 }), { kind: 'l4nat', reason: 'bad_l4_header' });
  add4('udp zero-length payload', (id, sp) => udp4(id, sp, { payload: Buffer.alloc(0) }), { kind: 'forward' });
  add4('udp checksum 0 (none, IPv4)', (id, sp) => udp4(id, sp, { csum: 0 }), { kind: 'forward' });
  add4('udp bad checksum', (id, sp) => udp4(id, sp, { csumDelta: 0x00ff }), { kind: 'forward', csumDelta: 0x00ff });
  // --- Other protocols, ports, ICMP
  add4('GRE to the VIP', (id) => ip({ src: c4, dst: v4, proto: PROTO.GRE, id }, Buffer.alloc(8)), { kind: 'l4nat', reason: 'unsupported_proto' });
  add4('SCTP to the VIP', (id) => ip({ src: c4, dst: v4, proto: PROTO.SCTP, id }, Buffer.alloc(16)), { kind: 'l4nat', reason: 'unsupported_proto' });
  add4('tcp to a VIP port with no service', (id, sp) => ip({ src: c4, dst: v4, proto: PROTO.TCP, id }, tcp(c4, v4, { sport: sp, dport: 9, flags: TCP.SYN })), { kind: 'l4nat', reason: 'vip_port_unknown' });
  const quote4 = (src: string, dst: string, l4: Buffer, proto: number = PROTO.TCP): Buffer => ip({ src, dst, proto, id: 1 }, l4).subarray(0, 20 + Math.min(8, l4.length));
  add4('icmp unreachable quoting a foreign flow', (id, sp) => ip({ src: c4, dst: v4, proto: PROTO.ICMP, id }, icmp(c4, v4, 3, 1, 0, quote4('10.9.9.9', '10.8.8.8', tcp('10.9.9.9', '10.8.8.8', { sport: sp, dport: 80, flags: TCP.SYN })))), { kind: 'l4nat', reason: 'icmp_not_ours' });
  add4('icmp unreachable quoting a VIP port with no service', (id, sp) => ip({ src: c4, dst: v4, proto: PROTO.ICMP, id }, icmp(c4, v4, 3, 3, 0, quote4(v4, c4, tcp(v4, c4, { sport: 9, dport: sp, flags: TCP.SYN | TCP.ACK })))), { kind: 'l4nat', reason: 'icmp_not_ours' });
  add4('icmp unreachable with a quote cut inside its L4 header', (id, sp) => ip({ src: c4, dst: v4, proto: PROTO.ICMP, id }, icmp(c4, v4, 3, 1, 0, quote4(v4, c4, tcp(v4, c4, { sport: P, dport: sp, flags: TCP.ACK })).subarray(0, 24))), { kind: 'l4nat', reason: 'icmp_not_ours' });
  add4('icmp unreachable quoting an ICMP echo', (id) => ip({ src: c4, dst: v4, proto: PROTO.ICMP, id }, icmp(c4, v4, 3, 1, 0, quote4(v4, c4, icmp(v4, c4, 8, 0, 0x12340001, Buffer.alloc(0)), PROTO.ICMP))), { kind: 'l4nat', reason: 'icmp_not_ours' });
  add4('icmp timestamp request', (id) => ip({ src: c4, dst: v4, proto: PROTO.ICMP, id }, icmp(c4, v4, 13, 0, 0x12340001, Buffer.alloc(12))), { kind: 'l4nat', reason: 'icmp_unhandled' });
  add4('icmp echo request to the VIP', (id) => ip({ src: c4, dst: v4, proto: PROTO.ICMP, id }, icmp(c4, v4, 8, 0, 0x7a7a0001, Buffer.from('ping'))), { kind: 'answered' });
  // An error quoting VIP:port -> a client is about "a reply we sent": translated statelessly to the ring's backend
  // (that is what keeps path-MTU discovery working after a restart); the backend's TCP judges it (no such
  // connection, or a sequence number out of window).
  add4('icmp frag-needed quoting the service (forged)', (id, sp) => ip({ src: c4, dst: v4, proto: PROTO.ICMP, id }, icmp(c4, v4, 3, 4, 576, quote4(v4, c4, tcp(v4, c4, { sport: P, dport: sp, flags: TCP.ACK })))), { kind: 'forward' });

  if (t.client6 !== null && t.vip6 !== null) {
    const c6 = t.client6;
    const v6 = t.vip6;
    const add6 = (name: string, build: (id: number, sport: number) => Buffer, expect: Expect): void => {
      const n = i6++;
      cases.push({ name, family: 6, pkt: build(MARKER6_BASE + n, GARBAGE_SPORT_BASE + 500 + n), marker: MARKER6_BASE + n, expect });
    };
    const seg6 = (sport: number, extra: Partial<Parameters<typeof tcp>[2]> = {}): Buffer => tcp(c6, v6, { sport, dport: P, flags: TCP.SYN, options: MSS, ...extra });
    const syn6 = (id: number, sport: number, extra: Partial<Parameters<typeof tcp>[2]> = {}): Buffer => ip({ src: c6, dst: v6, proto: PROTO.TCP, id }, seg6(sport, extra));
    const ext = (next: number, len8 = 0, fill = 0): Buffer => {
      const b = Buffer.alloc((len8 + 1) * 8, 0);
      b[0] = next;
      b[1] = len8;
      if (fill) b.fill(fill, 2);
      return b;
    };
    const padN = (next: number): Buffer => Buffer.from([next, 0, 1, 4, 0, 0, 0, 0]); // PadN of 4 zero bytes
    add6('ipv6 payload length beyond the frame', (id, sp) => patch(syn6(id, sp), (b) => b.writeUInt16BE(b.length + 100, 4)), { kind: 'kernel', counters: ['Ip6.InTruncatedPkts'] });
    add6('ipv6 version 4 in an IPv6 frame', (id, sp) => patch(syn6(id, sp), (b) => (b[0] = (b[0]! & 0x0f) | 0x40)), { kind: 'kernel', counters: ['Ip6.InHdrErrors'] });
    add6('ipv6 hop limit 1 (expires at the LB host)', (id, sp) => ip({ src: c6, dst: v6, proto: PROTO.TCP, id, ttl: 1 }, seg6(sp)), { kind: 'kernel', counters: ['Ip6.InHdrErrors'] });
    add6('ipv6 payload length 0 without a jumbo option', (id, sp) => patch(syn6(id, sp), (b) => b.writeUInt16BE(0, 4)), { kind: 'l4nat', reason: 'bad_ip_header' });
    add6('ipv6 fragment header', (id, sp) => ip({ src: c6, dst: v6, proto: PROTO.TCP, id, ext: { firstNext: 44, bytes: Buffer.from([PROTO.TCP, 0, 0, 1, 0, 0, 0, 7]) } }, seg6(sp)), { kind: 'l4nat', reason: 'fragment' });
    add6('ipv6 routing header with segments left', (id, sp) => ip({ src: c6, dst: v6, proto: PROTO.TCP, id, ext: { firstNext: 43, bytes: Buffer.concat([Buffer.from([PROTO.TCP, 2, 0, 1, 0, 0, 0, 0]), Buffer.alloc(16)]) } }, seg6(sp)), { kind: 'l4nat', reason: 'ipv6_ext_header' });
    add6('ipv6 hop-by-hop not first', (id, sp) => ip({ src: c6, dst: v6, proto: PROTO.TCP, id, ext: { firstNext: 60, bytes: Buffer.concat([padN(0), padN(PROTO.TCP)]) } }, seg6(sp)), { kind: 'l4nat', reason: 'ipv6_ext_header' });
    add6('ipv6 nine destination-options headers', (id, sp) => ip({ src: c6, dst: v6, proto: PROTO.TCP, id, ext: { firstNext: 60, bytes: Buffer.concat([...Array.from({ length: 8 }, () => padN(60)), padN(PROTO.TCP)]) } }, seg6(sp)), { kind: 'l4nat', reason: 'ipv6_ext_header' });
    add6('ipv6 extension header longer than the packet', (id) => cut(ip({ src: c6, dst: v6, proto: PROTO.TCP, id, ext: { firstNext: 60, bytes: ext(PROTO.TCP, 8) } }, Buffer.alloc(0)), 40 + 16), { kind: 'l4nat', reason: 'truncated' });
    add6('ipv6 destination options then TCP (valid)', (id, sp) => ip({ src: c6, dst: v6, proto: PROTO.TCP, id, ext: { firstNext: 60, bytes: padN(PROTO.TCP) } }, seg6(sp)), { kind: 'forward' });
    add6('ipv6 hop-by-hop PadN then TCP (valid)', (id, sp) => ip({ src: c6, dst: v6, proto: PROTO.TCP, id, ext: { firstNext: 0, bytes: padN(PROTO.TCP) } }, seg6(sp)), { kind: 'forward' });
    add6('ipv6 tcp header cut at 12 bytes', (id, sp) => cut(syn6(id, sp, { options: Buffer.alloc(0) }), 40 + 12), { kind: 'l4nat', reason: 'truncated' });
    add6('ipv6 tcp bad checksum', (id, sp) => syn6(id, sp, { csumDelta: 0x4321 }), { kind: 'forward', csumDelta: 0x4321 });
    add6('ipv6 tcp flags SYN+FIN', (id, sp) => syn6(id, sp, { flags: TCP.SYN | TCP.FIN, options: Buffer.alloc(0) }), { kind: 'forward' });
    add6('ipv6 udp checksum 0', (id, sp) => ip({ src: c6, dst: v6, proto: PROTO.UDP, id }, udp(c6, v6, { sport: sp, dport: P, payload: Buffer.from('x'), csum: 0 })), { kind: 'l4nat', reason: 'bad_l4_header' });
    add6('ipv6 udp length field 0', (id, sp) => ip({ src: c6, dst: v6, proto: PROTO.UDP, id }, udp(c6, v6, { sport: sp, dport: P, payload: Buffer.from('x'), len: 0 })), { kind: 'l4nat', reason: 'bad_l4_header' });
    add6('ipv6 udp zero-length payload', (id, sp) => ip({ src: c6, dst: v6, proto: PROTO.UDP, id }, udp(c6, v6, { sport: sp, dport: P })), { kind: 'forward' });
    const quote6 = (src: string, dst: string, l4: Buffer): Buffer => ip({ src, dst, proto: PROTO.TCP }, l4).subarray(0, 48);
    add6('icmpv6 packet-too-big quoting a foreign flow', (id, sp) => ip({ src: c6, dst: v6, proto: PROTO.ICMPV6, id }, icmp(c6, v6, 2, 0, 1280, quote6('fd4c:9::9', 'fd4c:8::8', tcp('fd4c:9::9', 'fd4c:8::8', { sport: sp, dport: 80, flags: TCP.SYN })))), { kind: 'l4nat', reason: 'icmp_not_ours' });
    add6('ICMP (v4) inside IPv6', (id) => ip({ src: c6, dst: v6, proto: PROTO.ICMP, id }, icmp(c4, v4, 8, 0, 1, Buffer.alloc(0))), { kind: 'l4nat', reason: 'unsupported_proto' });
  }
  return cases;
}
