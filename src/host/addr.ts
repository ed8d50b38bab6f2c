// Host set-up, layer 0: IP address text <-> bytes, for rtnetlink attributes (RTA_DST, FRA_SRC) and for
// comparing what we want with what the kernel reports. Pure; no I/O.
import { isIPv4, isIPv6 } from 'net';

export type Family = 4 | 6;

/** Address family numbers in rtmsg/fib_rule_hdr (AF_INET, AF_INET6 in include/linux/socket.h). */
export const AF_INET = 2;
export const AF_INET6 = 10;

export function afOf(family: Family): number {
  return family === 4 ? AF_INET : AF_INET6;
}

export function familyOfAf(af: number): Family | undefined {
  return af === AF_INET ? 4 : af === AF_INET6 ? 6 : undefined;
}

/** Parses an IPv4 or IPv6 address (no prefix, no zone) into network-order bytes. Throws on anything else. */
export function ipToBuffer(addr: string, family: Family): Buffer {
  if (typeof addr !== 'string') throw new TypeError(`address must be a string, got ${typeof addr}`);
  if (family === 4) {
    if (!isIPv4(addr)) throw new TypeError(`"${addr}" is not an IPv4 address`);
    return Buffer.from(addr.split('.').map(Number));
  }
  if (family !== 6) throw new TypeError(`family must be 4 or 6, got ${String(family)}`);
  if (!isIPv6(addr) || addr.includes('%')) throw new TypeError(`"${addr}" is not an IPv6 address`);
  let text = addr;
  const out = Buffer.alloc(16);
  let tail: number[] = [];
  const lastColon = text.lastIndexOf(':');
  if (text.indexOf('.', lastColon) !== -1) {
    // Embedded IPv4 in the last 32 bits (::ffff:192.0.2.1).
    const v4 = ipToBuffer(text.slice(lastColon + 1), 4);
    tail = [(v4[0] << 8) | v4[1], (v4[2] << 8) | v4[3]];
    text = text.slice(0, lastColon + 1) + '0:0';
  }
  const halves = text.split('::');
  const parse = (s: string): number[] => (s === '' ? [] : s.split(':').map((g) => parseInt(g, 16)));
  const head = parse(halves[0]);
  const rest = halves.length > 1 ? parse(halves[1]) : [];
  const groups = halves.length > 1 ? [...head, ...new Array<number>(8 - head.length - rest.length).fill(0), ...rest] : head;
  if (tail.length) groups.splice(6, 2, tail[0], tail[1]);
  for (let i = 0; i < 8; i++) out.writeUInt16BE(groups[i], i * 2);
  return out;
}

/** Formats 4 or 16 network-order bytes; IPv6 in the RFC 5952 canonical form, so equal addresses compare equal. */
export function bufferToIp(buf: Uint8Array): string {
  if (buf.length === 4) return Array.from(buf).join('.');
  if (buf.length !== 16) throw new TypeError(`an address has 4 or 16 bytes, got ${buf.length}`);
  const groups: number[] = [];
  for (let i = 0; i < 16; i += 2) groups.push((buf[i] << 8) | buf[i + 1]);
  // Longest run of two or more zero groups (the first one on a tie) becomes "::".
  let bestStart = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) { i++; continue; }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) { bestStart = i; bestLen = j - i; }
    i = j;
  }
  const hex = (g: number[]): string => g.map((x) => x.toString(16)).join(':');
  if (bestStart < 0) return hex(groups);
  return `${hex(groups.slice(0, bestStart))}::${hex(groups.slice(bestStart + bestLen))}`;
}

/** Canonical text of an address, validating it against its family. */
export function canonicalIp(addr: string, family: Family): string {
  return bufferToIp(ipToBuffer(addr, family));
}

export function hostLen(family: Family): number {
  return family === 4 ? 32 : 128;
}

export function anyAddr(family: Family): string {
  return family === 4 ? '0.0.0.0' : '::';
}

function toBigInt(buf: Uint8Array): bigint {
  let v = 0n;
  for (const b of buf) v = (v << 8n) | BigInt(b);
  return v;
}

function fromBigInt(v: bigint, family: Family): string {
  const out = Buffer.alloc(family === 4 ? 4 : 16);
  for (let i = out.length - 1; i >= 0; i--) {
    out[i] = Number(v & 0xffn);
    v >>= 8n;
  }
  return bufferToIp(out);
}

export interface Prefix {
  /** Canonical text of the prefix's first address. */
  addr: string;
  len: number;
}

/**
 * The fewest prefixes that together hold exactly the given addresses and nothing else: a run of consecutive
 * addresses becomes the largest aligned blocks that fit in it (10.0.0.1-10.0.0.6 -> .1/32, .2/31, .4/31,
 * .6/32). Exact, because a prefix that also held a host that is not a backend would send that host's
 * traffic into the TUN. Sorted by address; duplicates are ignored.
 */
export function exactPrefixes(family: Family, addrs: readonly string[]): Prefix[] {
  const bits = BigInt(hostLen(family));
  const sorted = [...new Set(addrs.map((a) => toBigInt(ipToBuffer(a, family))))].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  const out: Prefix[] = [];
  for (let i = 0; i < sorted.length; ) {
    // The run sorted[i..j] of consecutive addresses.
    let j = i;
    while (j + 1 < sorted.length && sorted[j + 1] === sorted[j] + 1n) j++;
    let lo = sorted[i];
    const hi = sorted[j];
    while (lo <= hi) {
      // The largest block aligned at lo that ends within the run.
      let k = 0n;
      while (k < bits && (lo & ((1n << (k + 1n)) - 1n)) === 0n && lo + (1n << (k + 1n)) - 1n <= hi) k++;
      out.push({ addr: fromBigInt(lo, family), len: Number(bits - k) });
      lo += 1n << k;
    }
    i = j + 1;
  }
  return out;
}
