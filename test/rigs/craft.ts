// Packet crafting for the reliability tests: IPv4/IPv6 packets with TCP, UDP or ICMP, checksums computed from
// scratch, and hooks to get any field wrong afterwards. Pure functions over Buffers, no I/O.
// Layers: this file → garbage.ts (the catalogue of malformed packets) → pktgen (the C sender) → tests.
import net from 'node:net';

export const PROTO = { ICMP: 1, TCP: 6, UDP: 17, GRE: 47, ICMPV6: 58, SCTP: 132 } as const;
export const TCP = { FIN: 0x01, SYN: 0x02, RST: 0x04, PSH: 0x08, ACK: 0x10, URG: 0x20, ECE: 0x40, CWR: 0x80 } as const;

/** Byte offsets inside the headers (RFC 791, 8200, 793, 768, 792). */
export const IP4 = { TOTLEN: 2, ID: 4, FRAG: 6, TTL: 8, PROTO: 9, CSUM: 10, SADDR: 12, DADDR: 16 } as const;
export const IP6 = { PLEN: 4, NEXT: 6, HOPLIMIT: 7, SADDR: 8, DADDR: 24, HDR_LEN: 40 } as const;
export const TCP_OFF = { SPORT: 0, DPORT: 2, SEQ: 4, ACK: 8, DOFF: 12, FLAGS: 13, WIN: 14, CSUM: 16 } as const;
export const UDP_OFF = { SPORT: 0, DPORT: 2, LEN: 4, CSUM: 6 } as const;

export function addrBytes(addr: string): Buffer {
  if (net.isIPv4(addr)) return Buffer.from(addr.split('.').map(Number));
  if (!net.isIPv6(addr)) throw new TypeError(`not an IP address: ${addr}`);
  const parts = addr.split('::');
  const head = parts[0] ? parts[0].split(':') : [];
  const tail = parts.length > 1 && parts[1] ? parts[1].split(':') : [];
  const fill = parts.length > 1 ? 8 - head.length - tail.length : 0;
  const groups = [...head, ...Array<string>(fill).fill('0'), ...tail];
  const b = Buffer.alloc(16);
  groups.forEach((g, i) => b.writeUInt16BE(parseInt(g, 16), i * 2));
  return b;
}

export function addrText(b: Buffer): string {
  if (b.length === 4) return [...b].join('.');
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(b.readUInt16BE(i).toString(16));
  // Canonical form through the URL parser (RFC 5952).
  return new URL(`http://[${groups.join(':')}]/`).hostname.slice(1, -1);
}

/** One's-complement sum of a buffer (not folded, not complemented). */
export function sum16(b: Buffer, start = 0, end = b.length, init = 0): number {
  let s = init;
  for (let i = start; i + 1 < end; i += 2) s += b.readUInt16BE(i);
  if ((end - start) & 1) s += b[end - 1]! << 8;
  return s;
}

export function fold(s: number): number {
  while (s > 0xffff) s = (s & 0xffff) + Math.floor(s / 0x10000);
  return s;
}

export function csum(b: Buffer, start = 0, end = b.length, init = 0): number {
  return ~fold(sum16(b, start, end, init)) & 0xffff;
}

/** The pseudo-header sum for an L4 checksum (IPv4 or IPv6 by address length). */
export function pseudoSum(src: Buffer, dst: Buffer, proto: number, l4len: number): number {
  let s = sum16(src) + sum16(dst);
  if (src.length === 4) s += proto + l4len;
  else s += Math.floor(l4len / 0x10000) + (l4len & 0xffff) + proto;
  return s;
}

export interface L3Options {
  src: string;
  dst: string;
  proto: number;
  /** IPv4: the identification field (default 0x4c34); IPv6: the flow label (20 bits). */
  id?: number;
  ttl?: number;
  /** IPv4 fragment field (flags and offset, host order), default DF. */
  frag?: number;
  /** IPv4 options (padded to 4 bytes by the caller). */
  options?: Buffer;
  /** IPv6 extension headers between the fixed header and the L4 header; `firstNext` is the fixed header's next. */
  ext?: { firstNext: number; bytes: Buffer };
}

/** Wraps an L4 payload (whose checksum is already final) in an IPv4 or IPv6 header with correct lengths. */
export function ip(o: L3Options, l4: Buffer): Buffer {
  const src = addrBytes(o.src);
  const dst = addrBytes(o.dst);
  if (src.length === 4) {
    const opts = o.options ?? Buffer.alloc(0);
    if (opts.length % 4 !== 0) throw new RangeError('IPv4 options must be a multiple of 4 bytes');
    const ihl = 20 + opts.length;
    const h = Buffer.alloc(ihl);
    h[0] = 0x40 | (ihl / 4);
    h.writeUInt16BE(ihl + l4.length, IP4.TOTLEN);
    h.writeUInt16BE((o.id ?? 0x4c34) & 0xffff, IP4.ID);
    h.writeUInt16BE(o.frag ?? 0x4000, IP4.FRAG);
    h[IP4.TTL] = o.ttl ?? 64;
    h[IP4.PROTO] = o.proto;
    src.copy(h, IP4.SADDR);
    dst.copy(h, IP4.DADDR);
    opts.copy(h, 20);
    h.writeUInt16BE(csum(h), IP4.CSUM);
    return Buffer.concat([h, l4]);
  }
  const ext = o.ext?.bytes ?? Buffer.alloc(0);
  const h = Buffer.alloc(IP6.HDR_LEN);
  h.writeUInt32BE((0x6 << 28) | ((o.id ?? 0) & 0xfffff), 0);
  h.writeUInt16BE(ext.length + l4.length, IP6.PLEN);
  h[IP6.NEXT] = o.ext ? o.ext.firstNext : o.proto;
  h[IP6.HOPLIMIT] = o.ttl ?? 64;
  src.copy(h, IP6.SADDR);
  dst.copy(h, IP6.DADDR);
  return Buffer.concat([h, ext, l4]);
}

export interface TcpOptions {
  sport: number;
  dport: number;
  flags: number;
  seq?: number;
  ack?: number;
  /** Header length in bytes as written in the data offset field (default: 20 + options). */
  doff?: number;
  options?: Buffer;
  payload?: Buffer;
  /** Added to the correct checksum (mod 0xffff) to make it wrong on purpose. */
  csumDelta?: number;
}

/** A TCP segment with its checksum computed for (src, dst). */
export function tcp(src: string, dst: string, o: TcpOptions): Buffer {
  const opts = o.options ?? Buffer.alloc(0);
  const hl = 20 + opts.length;
  const t = Buffer.alloc(hl + (o.payload?.length ?? 0));
  t.writeUInt16BE(o.sport, TCP_OFF.SPORT);
  t.writeUInt16BE(o.dport, TCP_OFF.DPORT);
  t.writeUInt32BE((o.seq ?? 0x1000) >>> 0, TCP_OFF.SEQ);
  t.writeUInt32BE((o.ack ?? 0) >>> 0, TCP_OFF.ACK);
  t[TCP_OFF.DOFF] = (((o.doff ?? hl) / 4) & 0x0f) << 4;
  t[TCP_OFF.FLAGS] = o.flags & 0xff;
  t.writeUInt16BE(64240, TCP_OFF.WIN);
  opts.copy(t, 20);
  o.payload?.copy(t, hl);
  const c = csum(t, 0, t.length, pseudoSum(addrBytes(src), addrBytes(dst), PROTO.TCP, t.length));
  t.writeUInt16BE(addDelta(c, o.csumDelta ?? 0), TCP_OFF.CSUM);
  return t;
}

export interface UdpOptions {
  sport: number;
  dport: number;
  payload?: Buffer;
  /** The length field (default: the real length). */
  len?: number;
  /** Write this checksum instead of the computed one (0 = "no checksum"). */
  csum?: number;
  csumDelta?: number;
}

export function udp(src: string, dst: string, o: UdpOptions): Buffer {
  const payload = o.payload ?? Buffer.alloc(0);
  const u = Buffer.alloc(8 + payload.length);
  u.writeUInt16BE(o.sport, UDP_OFF.SPORT);
  u.writeUInt16BE(o.dport, UDP_OFF.DPORT);
  u.writeUInt16BE(o.len ?? u.length, UDP_OFF.LEN);
  payload.copy(u, 8);
  const proto = PROTO.UDP;
  let c = csum(u, 0, u.length, pseudoSum(addrBytes(src), addrBytes(dst), proto, u.length));
  if (c === 0) c = 0xffff;
  u.writeUInt16BE(o.csum ?? addDelta(c, o.csumDelta ?? 0), UDP_OFF.CSUM);
  return u;
}

/** An ICMP (v4) or ICMPv6 message: type, code, 4 bytes of "rest of header", body; checksum computed. */
export function icmp(src: string, dst: string, type: number, code: number, rest: number, body: Buffer): Buffer {
  const m = Buffer.alloc(8 + body.length);
  m[0] = type;
  m[1] = code;
  m.writeUInt32BE(rest >>> 0, 4);
  body.copy(m, 8);
  const v6 = net.isIPv6(src);
  const init = v6 ? pseudoSum(addrBytes(src), addrBytes(dst), PROTO.ICMPV6, m.length) : 0;
  m.writeUInt16BE(csum(m, 0, m.length, init), 2);
  return m;
}

/** Adds `delta` to a 16-bit checksum value in one's-complement arithmetic (a value that is wrong by delta). */
export function addDelta(c: number, delta: number): number {
  if (delta === 0) return c;
  return fold(c + (((delta % 0xffff) + 0xffff) % 0xffff)) & 0xffff;
}

/** IPv4 header checksum as stored. */
export function ipv4HeaderOk(p: Buffer): boolean {
  const ihl = (p[0]! & 0x0f) * 4;
  return p.length >= ihl && fold(sum16(p, 0, ihl)) === 0xffff;
}

export interface ParsedIp {
  family: 4 | 6;
  src: string;
  dst: string;
  proto: number;
  /** Offset of the L4 header (after IPv4 options or IPv6 extension headers that we walk). */
  l4off: number;
  /** End of the IP packet (total length / payload length). */
  end: number;
  /** IPv4 identification, or the IPv6 flow label. */
  id: number;
  fragment: boolean;
}

/** Parses an IP packet leniently (for captured packets); null when it is not IPv4/IPv6 or cut short. */
export function parseIp(p: Buffer): ParsedIp | null {
  if (p.length < 1) return null;
  const v = p[0]! >> 4;
  if (v === 4) {
    if (p.length < 20) return null;
    const ihl = (p[0]! & 0x0f) * 4;
    const frag = p.readUInt16BE(IP4.FRAG);
    return {
      family: 4,
      src: addrText(p.subarray(IP4.SADDR, IP4.SADDR + 4)),
      dst: addrText(p.subarray(IP4.DADDR, IP4.DADDR + 4)),
      proto: p[IP4.PROTO]!,
      l4off: ihl,
      end: Math.min(p.length, p.readUInt16BE(IP4.TOTLEN)),
      id: p.readUInt16BE(IP4.ID),
      fragment: (frag & 0x3fff) !== 0,
    };
  }
  if (v === 6) {
    if (p.length < 40) return null;
    let next = p[IP6.NEXT]!;
    let off = 40;
    let fragment = false;
    for (let i = 0; i < 12 && (next === 0 || next === 43 || next === 60 || next === 44); i++) {
      if (off + 8 > p.length) break;
      if (next === 44) fragment = true;
      const len = next === 44 ? 8 : (p[off + 1]! + 1) * 8;
      next = p[off]!;
      off += len;
    }
    return {
      family: 6,
      src: addrText(p.subarray(IP6.SADDR, IP6.SADDR + 16)),
      dst: addrText(p.subarray(IP6.DADDR, IP6.DADDR + 16)),
      proto: next,
      l4off: off,
      end: Math.min(p.length, 40 + p.readUInt16BE(IP6.PLEN)),
      id: p.readUInt32BE(0) & 0xfffff,
      fragment,
    };
  }
  return null;
}

/**
 * How wrong the stored L4 (TCP/UDP/ICMPv6; ICMPv4 without pseudo-header) checksum of a whole packet is: 0 when
 * it verifies, else the one's-complement difference `stored - correct` (so a checksum made wrong by +d reads d
 * wherever the packet is rewritten correctly). null when the packet is not whole or has no such checksum
 * (UDP over IPv4 with checksum 0).
 */
export function l4CsumError(p: Buffer, ipInfo = parseIp(p)): number | null {
  if (!ipInfo || ipInfo.fragment) return null;
  const { proto, l4off, end } = ipInfo;
  const l4 = p.subarray(l4off, end);
  const offs: Record<number, number> = { [PROTO.TCP]: TCP_OFF.CSUM, [PROTO.UDP]: UDP_OFF.CSUM, [PROTO.ICMP]: 2, [PROTO.ICMPV6]: 2 };
  const off = offs[proto];
  if (off === undefined || l4.length < off + 2) return null;
  const stored = l4.readUInt16BE(off);
  if (proto === PROTO.UDP && ipInfo.family === 4 && stored === 0) return null;
  const copy = Buffer.from(l4);
  copy.writeUInt16BE(0, off);
  const src = addrBytes(ipInfo.src);
  const dst = addrBytes(ipInfo.dst);
  const init = proto === PROTO.ICMP ? 0 : pseudoSum(src, dst, proto, l4.length);
  let correct = csum(copy, 0, copy.length, init);
  if (proto === PROTO.UDP && correct === 0) correct = 0xffff;
  if (stored === correct) return 0;
  // 0x0000 and 0xffff are the same value in one's complement.
  if ((stored === 0 || stored === 0xffff) && (correct === 0 || correct === 0xffff)) return 0;
  return fold(stored + (~correct & 0xffff)) % 0xffff;
}
