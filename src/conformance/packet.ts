// Decoding captured frames into the fields the conformance checks compare (pure functions, no capture here).
// Layers: capture-agent.ts (libpcap via `cap`, inside a namespace) → this file → capture.ts (the orchestrator side).
//
// Only what the checks need: Ethernet / Linux cooked (SLL) → IPv4 / IPv6 (hop-by-hop, routing and destination
// options skipped) → TCP (flags, sequence numbers, window, options MSS / window scale / SACK-permitted /
// timestamps / Fast Open cookie, payload length and its first bytes), UDP, ICMP / ICMPv6 (type, code, MTU).
// Every length comes from the frame and is bound-checked against it; a frame that does not parse yields null.

/** TCP header flag bits (byte 13 of the header). */
export const TCP_FLAGS = { FIN: 0x01, SYN: 0x02, RST: 0x04, PSH: 0x08, ACK: 0x10, URG: 0x20, ECE: 0x40, CWR: 0x80 } as const;

export interface TcpOptions {
  mss?: number;
  wscale?: number;
  sackOk?: boolean;
  tsval?: number;
  tsecr?: number;
  /** Fast Open cookie (option 34, or 254 with magic 0xf989) as hex; '' for a cookie request. */
  tfoCookie?: string;
  /** Option kinds in wire order (NOP = 1 included, EOL = 0 excluded). */
  kinds: number[];
}

export interface TcpInfo {
  sport: number;
  dport: number;
  seq: number;
  ack: number;
  /** Raw flag byte (CWR ECE URG ACK PSH RST SYN FIN). */
  flags: number;
  /** Flags as letters, tcpdump style: S F R P . (ACK) E C U. */
  flagNames: string;
  win: number;
  opts: TcpOptions;
  /** Payload length as stated by the IP header (not limited by the capture length). */
  len: number;
  /** First bytes of the payload (latin1), at most 64. */
  data: string;
}

export interface IcmpInfo {
  type: number;
  code: number;
  /** Next-hop MTU of a "fragmentation needed" (v4) or "packet too big" (v6). */
  mtu?: number;
}

export interface CapturedPacket {
  /** Capture time in ms (epoch, sub-ms precision). */
  t: number;
  family: 4 | 6;
  src: string;
  dst: string;
  /** IP protocol number (6 TCP, 17 UDP, 1 ICMP, 58 ICMPv6). */
  proto: number;
  /** ECN codepoint of the IP header (0 not-ECT, 1 ECT(1), 2 ECT(0), 3 CE). */
  ecn: number;
  /** IPv4 don't-fragment bit. */
  df?: boolean;
  /** Total IP length (header included). */
  ipLen: number;
  tcp?: TcpInfo;
  udp?: { sport: number; dport: number; len: number };
  icmp?: IcmpInfo;
}

export type LinkType = 'ETHERNET' | 'LINUX_SLL' | 'RAW';

const ETHERTYPE_IPV4 = 0x0800;
const ETHERTYPE_IPV6 = 0x86dd;
const ETHERTYPE_VLAN = 0x8100;
const ETH_HLEN = 14;
const SLL_HLEN = 16;

function ipv4Text(b: Buffer, off: number): string {
  return `${b[off]}.${b[off + 1]}.${b[off + 2]}.${b[off + 3]}`;
}

function ipv6Text(b: Buffer, off: number): string {
  const groups: string[] = [];
  for (let i = 0; i < 8; i++) groups.push(b.readUInt16BE(off + i * 2).toString(16));
  // RFC 5952: compress the longest run (length ≥ 2) of zero groups.
  let best = -1;
  let bestLen = 0;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== '0') {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === '0') j++;
    if (j - i > bestLen && j - i >= 2) {
      best = i;
      bestLen = j - i;
    }
    i = j;
  }
  if (best < 0) return groups.join(':');
  return `${groups.slice(0, best).join(':')}::${groups.slice(best + bestLen).join(':')}`;
}

const FLAG_LETTERS: Array<[number, string]> = [
  [TCP_FLAGS.SYN, 'S'],
  [TCP_FLAGS.FIN, 'F'],
  [TCP_FLAGS.RST, 'R'],
  [TCP_FLAGS.PSH, 'P'],
  [TCP_FLAGS.ACK, '.'],
  [TCP_FLAGS.URG, 'U'],
  [TCP_FLAGS.ECE, 'E'],
  [TCP_FLAGS.CWR, 'W'],
];

export function flagNames(flags: number): string {
  return FLAG_LETTERS.filter(([bit]) => (flags & bit) !== 0)
    .map(([, l]) => l)
    .join('');
}

/** TCP options from `b[start, end)`. Malformed lengths end the walk (what is parsed so far is kept). */
export function parseTcpOptions(b: Buffer, start: number, end: number): TcpOptions {
  const opts: TcpOptions = { kinds: [] };
  let i = start;
  while (i < end) {
    const kind = b[i]!;
    if (kind === 0) break;
    opts.kinds.push(kind);
    if (kind === 1) {
      i++;
      continue;
    }
    if (i + 1 >= end) break;
    const len = b[i + 1]!;
    if (len < 2 || i + len > end) break;
    if (kind === 2 && len === 4) opts.mss = b.readUInt16BE(i + 2);
    else if (kind === 3 && len === 3) opts.wscale = b[i + 2]!;
    else if (kind === 4 && len === 2) opts.sackOk = true;
    else if (kind === 8 && len === 10) {
      opts.tsval = b.readUInt32BE(i + 2);
      opts.tsecr = b.readUInt32BE(i + 6);
    } else if (kind === 34) opts.tfoCookie = b.subarray(i + 2, i + len).toString('hex');
    else if (kind === 254 && len >= 4 && b.readUInt16BE(i + 2) === 0xf989) opts.tfoCookie = b.subarray(i + 4, i + len).toString('hex');
    i += len;
  }
  return opts;
}

/** Decodes one captured frame; `caplen` is how many bytes of `buf` hold it. Null when it is not IP or is cut short. */
export function decodeFrame(buf: Buffer, caplen: number, linkType: LinkType, t: number): CapturedPacket | null {
  const b = buf.subarray(0, Math.min(caplen, buf.length));
  let off: number;
  let etherType: number;
  if (linkType === 'ETHERNET') {
    if (b.length < ETH_HLEN) return null;
    etherType = b.readUInt16BE(12);
    off = ETH_HLEN;
    if (etherType === ETHERTYPE_VLAN) {
      if (b.length < ETH_HLEN + 4) return null;
      etherType = b.readUInt16BE(16);
      off += 4;
    }
  } else if (linkType === 'LINUX_SLL') {
    if (b.length < SLL_HLEN) return null;
    etherType = b.readUInt16BE(14);
    off = SLL_HLEN;
  } else {
    if (b.length < 1) return null;
    etherType = b[0]! >> 4 === 6 ? ETHERTYPE_IPV6 : ETHERTYPE_IPV4;
    off = 0;
  }
  if (etherType === ETHERTYPE_IPV4) return decodeIpv4(b, off, t);
  if (etherType === ETHERTYPE_IPV6) return decodeIpv6(b, off, t);
  return null;
}

function decodeIpv4(b: Buffer, off: number, t: number): CapturedPacket | null {
  if (b.length < off + 20 || b[off]! >> 4 !== 4) return null;
  const ihl = (b[off]! & 0x0f) * 4;
  if (ihl < 20 || b.length < off + ihl) return null;
  const totalLen = b.readUInt16BE(off + 2);
  if (totalLen < ihl) return null;
  const fragField = b.readUInt16BE(off + 6);
  const pkt: CapturedPacket = {
    t,
    family: 4,
    src: ipv4Text(b, off + 12),
    dst: ipv4Text(b, off + 16),
    proto: b[off + 9]!,
    ecn: b[off + 1]! & 0x03,
    df: (fragField & 0x4000) !== 0,
    ipLen: totalLen,
  };
  // Later fragments carry no transport header.
  if ((fragField & 0x1fff) !== 0) return pkt;
  decodeTransport(b, pkt, off + ihl, off + totalLen);
  return pkt;
}

function decodeIpv6(b: Buffer, off: number, t: number): CapturedPacket | null {
  if (b.length < off + 40 || b[off]! >> 4 !== 6) return null;
  const payloadLen = b.readUInt16BE(off + 4);
  const pkt: CapturedPacket = {
    t,
    family: 6,
    src: ipv6Text(b, off + 8),
    dst: ipv6Text(b, off + 24),
    proto: b[off + 6]!,
    ecn: (b.readUInt16BE(off) >> 4) & 0x03,
    ipLen: 40 + payloadLen,
  };
  let next = pkt.proto;
  let p = off + 40;
  const end = off + 40 + payloadLen;
  // Hop-by-hop (0), routing (43), destination options (60): skip. A fragment header (44) ends decoding.
  for (let n = 0; n < 8 && (next === 0 || next === 43 || next === 60); n++) {
    if (b.length < p + 2) return pkt;
    const hdrLen = (b[p + 1]! + 1) * 8;
    next = b[p]!;
    p += hdrLen;
  }
  pkt.proto = next;
  decodeTransport(b, pkt, p, end);
  return pkt;
}

function decodeTransport(b: Buffer, pkt: CapturedPacket, off: number, end: number): void {
  if (pkt.proto === 6) {
    if (b.length < off + 20) return;
    const doff = (b[off + 12]! >> 4) * 4;
    if (doff < 20 || b.length < off + doff) return;
    const flags = b[off + 13]!;
    const payloadStart = off + doff;
    pkt.tcp = {
      sport: b.readUInt16BE(off),
      dport: b.readUInt16BE(off + 2),
      seq: b.readUInt32BE(off + 4),
      ack: b.readUInt32BE(off + 8),
      flags,
      flagNames: flagNames(flags),
      win: b.readUInt16BE(off + 14),
      opts: parseTcpOptions(b, off + 20, off + doff),
      len: Math.max(0, end - payloadStart),
      data: b.subarray(payloadStart, Math.min(b.length, end, payloadStart + 64)).toString('latin1'),
    };
  } else if (pkt.proto === 17) {
    if (b.length < off + 8) return;
    pkt.udp = { sport: b.readUInt16BE(off), dport: b.readUInt16BE(off + 2), len: b.readUInt16BE(off + 4) };
  } else if (pkt.proto === 1 || pkt.proto === 58) {
    if (b.length < off + 8) return;
    const type = b[off]!;
    const code = b[off + 1]!;
    const icmp: IcmpInfo = { type, code };
    if (pkt.proto === 1 && type === 3 && code === 4) icmp.mtu = b.readUInt16BE(off + 6);
    if (pkt.proto === 58 && type === 2) icmp.mtu = b.readUInt32BE(off + 4);
    pkt.icmp = icmp;
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Reading a TCP flow out of a capture

/** (a - b) in sequence space, as a signed 32-bit number. */
export function seqDiff(a: number, b: number): number {
  return ((a - b) | 0);
}

/** Packets of one direction of a TCP flow. */
export function flowPackets(pkts: readonly CapturedPacket[], src: string, sport: number, dst?: string, dport?: number): CapturedPacket[] {
  return pkts.filter(
    (p) =>
      p.tcp !== undefined &&
      p.src === src &&
      p.tcp.sport === sport &&
      (dst === undefined || p.dst === dst) &&
      (dport === undefined || p.tcp.dport === dport),
  );
}

/**
 * Keepalive probes among the packets one side sent: bare ACKs (payload 0 or 1 byte, no SYN/FIN/RST) whose sequence
 * number is one below the next byte that side would send — what Linux (tcp_write_wakeup / tcp_xmit_probe_skb) and
 * RFC 1122 4.2.3.6 send.
 */
export function keepaliveProbes(sent: readonly CapturedPacket[]): CapturedPacket[] {
  const probes: CapturedPacket[] = [];
  let next: number | null = null;
  for (const p of sent) {
    const t = p.tcp;
    if (!t) continue;
    const isSynFin = (t.flags & (TCP_FLAGS.SYN | TCP_FLAGS.FIN)) !== 0;
    if (t.flags & TCP_FLAGS.RST) continue;
    if (next !== null && !isSynFin && t.len <= 1 && (t.flags & TCP_FLAGS.ACK) !== 0 && seqDiff(t.seq, next) === -1) {
      probes.push(p);
      continue;
    }
    const end = (t.seq + t.len + (isSynFin ? 1 : 0)) >>> 0;
    if (next === null || seqDiff(end, next) > 0) next = end;
  }
  return probes;
}
