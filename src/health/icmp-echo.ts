// ICMP and ICMPv6 echo messages for the icmp health check (src/health/icmp.ts), as raw sockets carry them: sent
// without an IP header (the kernel adds it); received with the IPv4 header in front on IPv4 (raw(7)), with no IP
// header on IPv6 (RFC 3542 section 3). Pure: builds and parses Buffers, no sockets; test/icmp-echo.test.ts.
//
// Checksums: IPv4 ICMP carries its own (RFC 792), built here and verified on receipt — a raw IPv4 socket gets the
// packet before icmp_rcv() has checked it. ICMPv6's covers a pseudo-header (RFC 4443 section 2.3) the kernel
// computes on send and verifies on receipt for every raw IPPROTO_ICMPV6 socket (IPV6_CHECKSUM is implied, RFC 3542
// section 3.1), so the field is sent as 0 and never checked here.
import { bufferToIp, type Family } from '../host/addr';

export const ICMP4 = { ECHO_REPLY: 0, DEST_UNREACH: 3, ECHO_REQUEST: 8, TIME_EXCEEDED: 11 } as const;
export const ICMP6 = { DEST_UNREACH: 1, TIME_EXCEEDED: 3, ECHO_REQUEST: 128, ECHO_REPLY: 129 } as const;

/** Byte offsets in an ICMP/ICMPv6 header (RFC 792, RFC 4443 section 4.1: echo's identifier and sequence). */
const ICMP_OFF = { TYPE: 0, CODE: 1, CSUM: 2, IDENT: 4, SEQ: 6, DATA: 8 } as const;
const IP4_MIN_HDR = 20;
const IP4_PROTO = 9;
const IP4_DADDR = 16;
const IP6_HDR = 40;
const IP6_NEXT = 6;
const IP6_DADDR = 24;
const PROTO_ICMP = 1;
const PROTO_ICMPV6 = 58;

/** The Internet checksum (RFC 1071) of a buffer: the value to store, or 0 when a stored one is right. */
export function inetChecksum(b: Uint8Array): number {
  let s = 0;
  for (let i = 0; i + 1 < b.length; i += 2) s += (b[i]! << 8) | b[i + 1]!;
  if (b.length & 1) s += b[b.length - 1]! << 8;
  while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
  return ~s & 0xffff;
}

/** An echo request with this identifier, sequence number and payload (IPv4: with its checksum; IPv6: 0). */
export function echoRequest(family: Family, ident: number, seq: number, payload: Uint8Array): Buffer {
  const m = Buffer.alloc(ICMP_OFF.DATA + payload.length);
  m[ICMP_OFF.TYPE] = family === 4 ? ICMP4.ECHO_REQUEST : ICMP6.ECHO_REQUEST;
  m.writeUInt16BE(ident, ICMP_OFF.IDENT);
  m.writeUInt16BE(seq, ICMP_OFF.SEQ);
  m.set(payload, ICMP_OFF.DATA);
  if (family === 4) m.writeUInt16BE(inetChecksum(m), ICMP_OFF.CSUM);
  return m;
}

/**
 * What a received packet says about one of our echo requests: its reply, or an error quoting it (the quoted
 * request's identifier, sequence number and destination). `detail` names the error as an operator would.
 */
export type EchoMessage =
  | { kind: 'reply'; ident: number; seq: number; payload: Buffer }
  | { kind: 'error'; ident: number; seq: number; dst: string; detail: string };

const UNREACH4: Record<number, string> = {
  0: 'network unreachable',
  1: 'host unreachable',
  2: 'protocol unreachable',
  3: 'port unreachable',
  4: 'fragmentation needed',
  5: 'source route failed',
  6: 'destination network unknown',
  7: 'destination host unknown',
  9: 'network administratively prohibited',
  10: 'host administratively prohibited',
  13: 'communication administratively prohibited',
};
const UNREACH6: Record<number, string> = {
  0: 'no route to destination',
  1: 'communication administratively prohibited',
  2: 'beyond scope of source address',
  3: 'address unreachable',
  4: 'port unreachable',
  5: 'source address failed ingress/egress policy',
  6: 'reject route to destination',
};

function errorDetail(family: Family, type: number, code: number): string | undefined {
  if (family === 4) {
    if (type === ICMP4.DEST_UNREACH) return UNREACH4[code] ?? `destination unreachable (code ${code})`;
    if (type === ICMP4.TIME_EXCEEDED) return 'time to live exceeded';
  } else {
    if (type === ICMP6.DEST_UNREACH) return UNREACH6[code] ?? `destination unreachable (code ${code})`;
    if (type === ICMP6.TIME_EXCEEDED) return 'hop limit exceeded';
  }
  return undefined;
}

/** The quoted echo request inside an error's body (IP header + at least the 8 bytes of the ICMP header). */
function quotedRequest(family: Family, q: Buffer): { ident: number; seq: number; dst: string } | undefined {
  let off: number;
  let dst: Buffer;
  if (family === 4) {
    if (q.length < IP4_MIN_HDR || q[0]! >> 4 !== 4 || q[IP4_PROTO] !== PROTO_ICMP) return undefined;
    off = (q[0]! & 0x0f) * 4;
    if (off < IP4_MIN_HDR) return undefined;
    dst = q.subarray(IP4_DADDR, IP4_DADDR + 4);
  } else {
    // Our requests carry no extension headers: anything else is not ours.
    if (q.length < IP6_HDR || q[0]! >> 4 !== 6 || q[IP6_NEXT] !== PROTO_ICMPV6) return undefined;
    off = IP6_HDR;
    dst = q.subarray(IP6_DADDR, IP6_DADDR + 16);
  }
  if (q.length < off + ICMP_OFF.DATA || q[off + ICMP_OFF.TYPE] !== (family === 4 ? ICMP4.ECHO_REQUEST : ICMP6.ECHO_REQUEST)) return undefined;
  return { ident: q.readUInt16BE(off + ICMP_OFF.IDENT), seq: q.readUInt16BE(off + ICMP_OFF.SEQ), dst: bufferToIp(dst) };
}

/**
 * Parses a packet as a raw ICMP socket of this family delivers it. Undefined for anything that is not an echo
 * reply or an error quoting an echo request, and for anything cut short or (IPv4) with a wrong checksum. Never
 * trusts a length it did not check against the buffer.
 */
export function parseEchoMessage(family: Family, packet: Buffer): EchoMessage | undefined {
  let m = packet;
  if (family === 4) {
    if (m.length < IP4_MIN_HDR || m[0]! >> 4 !== 4 || m[IP4_PROTO] !== PROTO_ICMP) return undefined;
    const ihl = (m[0]! & 0x0f) * 4;
    const total = m.readUInt16BE(2);
    if (ihl < IP4_MIN_HDR || total < ihl || total > m.length) return undefined;
    m = m.subarray(ihl, total);
    if (inetChecksum(m) !== 0) return undefined;
  }
  if (m.length < ICMP_OFF.DATA) return undefined;
  const type = m[ICMP_OFF.TYPE]!;
  if (type === (family === 4 ? ICMP4.ECHO_REPLY : ICMP6.ECHO_REPLY)) {
    if (m[ICMP_OFF.CODE] !== 0) return undefined;
    return { kind: 'reply', ident: m.readUInt16BE(ICMP_OFF.IDENT), seq: m.readUInt16BE(ICMP_OFF.SEQ), payload: m.subarray(ICMP_OFF.DATA) };
  }
  const detail = errorDetail(family, type, m[ICMP_OFF.CODE]!);
  if (detail === undefined) return undefined;
  const q = quotedRequest(family, m.subarray(ICMP_OFF.DATA));
  return q && { kind: 'error', ...q, detail };
}
