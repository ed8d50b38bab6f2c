// The icmp health check (keepalived's PING_CHECK): an ICMP or ICMPv6 echo request to the backend's address,
// healthy when the matching echo reply is back within the timeout; its round-trip time is the probe's time.
// Layers: raw-socket (the npm package: a SOCK_RAW socket polled by the event loop) → this file (one socket per
// family shared by every icmp check, replies matched to probes) → probe.ts (dispatch by check type). Packets:
// icmp-echo.ts.
//
// Privilege: a raw socket needs CAP_NET_RAW, which the systemd unit grants. The alternative, an unprivileged ICMP
// datagram socket, works only where net.ipv4.ping_group_range admits l4nat's group (the kernel's default admits no
// one, so it is a host-wide setting to rely on), and raw-socket opens only SOCK_RAW: CAP_NET_RAW it is.
//
// Matching: a raw ICMP socket receives every echo reply that reaches the host — ping's, other tools', another
// l4nat's — not only ours. A reply counts only when its identifier is this process's (random, one per family and
// process), its sequence number is that of a probe in flight, it comes from that probe's target, and it echoes
// the probe's payload (a random token per probe). ICMP_FILTER / ICMP6_FILTER keep every other ICMP type out of
// the socket but echo replies and the errors that may quote our requests (an error never ends a probe early —
// anyone can send one — it only names the cause when the probe times out).
//
// Lifetime: the socket opens with the first probe and closes once no probe has been in flight for IDLE_CLOSE_MS
// (no icmp check left, or only ones with long intervals). Between probes its receive side is paused, so an idle
// socket does not keep the process alive.
import { randomBytes, randomInt } from 'crypto';
import { endianness } from 'os';
import { performance } from 'perf_hooks';
import { canonicalIp, type Family } from '../host/addr';
import type { ServiceConfig } from '../config/model';
import { echoRequest, ICMP4, ICMP6, parseEchoMessage } from './icmp-echo';

/** What raw-socket's Socket offers that the checks use (a fake in unit tests). */
export interface RawIcmpSocket {
  on(event: 'message', cb: (packet: Buffer, source: string) => void): unknown;
  on(event: 'error', cb: (err: Error) => void): unknown;
  send(buf: Buffer, offset: number, length: number, address: string, before: () => void, after: (err: Error | null, bytes: number) => void): unknown;
  pauseRecv(): unknown;
  resumeRecv(): unknown;
  close(): unknown;
}

export type OpenRawIcmp = (family: Family) => RawIcmpSocket;

interface RawSocketModule {
  createSocket(o: { protocol: number; addressFamily: number }): RawIcmpSocket & {
    setOption(level: number, option: number, value: number | Buffer, length?: number): void;
  };
  AddressFamily: { IPv4: number; IPv6: number };
  Protocol: { ICMP: number; ICMPv6: number };
}

// include/uapi/linux/icmp.h, include/uapi/linux/icmpv6.h: in both filters a set bit blocks that type.
const SOL_RAW = 255;
const ICMP_FILTER = 1;
const IPPROTO_ICMPV6 = 58;
const ICMP6_FILTER = 1;

/** A raw ICMP (v4) or ICMPv6 (v6) socket that lets in only echo replies and the errors that may quote a request. */
export function openRawIcmp(family: Family): RawIcmpSocket {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const raw = require('raw-socket') as RawSocketModule;
  const s = raw.createSocket({
    protocol: family === 4 ? raw.Protocol.ICMP : raw.Protocol.ICMPv6,
    addressFamily: family === 4 ? raw.AddressFamily.IPv4 : raw.AddressFamily.IPv6,
  });
  try {
    if (family === 4) {
      const pass = (1 << ICMP4.ECHO_REPLY) | (1 << ICMP4.DEST_UNREACH) | (1 << ICMP4.TIME_EXCEEDED);
      s.setOption(SOL_RAW, ICMP_FILTER, ~pass >>> 0);
    } else {
      const filter = Buffer.alloc(32, 0xff); // struct icmp6_filter: 256 bits as eight host-order 32-bit words
      for (const type of [ICMP6.ECHO_REPLY, ICMP6.DEST_UNREACH, ICMP6.TIME_EXCEEDED]) {
        const byteInWord = endianness() === 'LE' ? (type & 31) >> 3 : 3 - ((type & 31) >> 3);
        filter[(type >> 5) * 4 + byteInWord] &= ~(1 << (type & 7));
      }
      s.setOption(IPPROTO_ICMPV6, ICMP6_FILTER, filter, filter.length);
    }
  } catch (e) {
    s.close();
    throw e;
  }
  return s;
}

/** What a raw socket's open error means for the check (raw-socket throws strerror() text, no code). */
export function openErrorDetail(family: Family, e: Error): string {
  const perm = /not permitted|permission denied/i.test(e.message) ? ' (an icmp check needs CAP_NET_RAW)' : '';
  return `cannot open a raw ICMP${family === 6 ? 'v6' : ''} socket: ${e.message}${perm}`;
}

export interface EchoResult {
  ok: boolean;
  ms: number;
  detail: string; // "" when ok
}

export const IDLE_CLOSE_MS = 10_000;
/** Marks our probes in a capture: "l4nat-hc" then an 8-byte random token. */
const MARKER = Buffer.from('l4nat-hc');

interface Pending {
  addr: string;
  payload: Buffer;
  sentAt: number;
  error?: string; // the last ICMP error quoting this probe
  finish: (r: EchoResult) => void;
}

// Two decimals: an echo across a LAN takes tens of microseconds.
const round = (ms: number): number => Math.round(ms * 100) / 100;

/** One family's socket and the probes in flight on it. */
export class EchoMultiplexer {
  private sock: RawIcmpSocket | undefined;
  private readonly pending = new Map<number, Pending>(); // by sequence number
  private nextSeq = randomInt(0, 0x10000);
  private idleTimer: NodeJS.Timeout | undefined;

  constructor(
    readonly family: Family,
    private readonly open: OpenRawIcmp = openRawIcmp,
    readonly ident: number = randomInt(0, 0x10000),
    private readonly idleCloseMs = IDLE_CLOSE_MS,
  ) {}

  get isOpen(): boolean {
    return this.sock !== undefined;
  }

  get inFlight(): number {
    return this.pending.size;
  }

  /** One echo request to `addr`; resolves (never rejects) with the verdict and the round-trip time. */
  ping(addr: string, timeoutMs: number): Promise<EchoResult> {
    const t0 = performance.now();
    return new Promise((resolve) => {
      let target: string;
      try {
        target = canonicalIp(addr, this.family);
      } catch (e) {
        resolve({ ok: false, ms: 0, detail: (e as Error).message });
        return;
      }
      const seq = this.freeSeq();
      if (seq === undefined) {
        resolve({ ok: false, ms: 0, detail: 'no free ICMP sequence number: 65536 probes in flight' });
        return;
      }
      let sock: RawIcmpSocket;
      try {
        sock = this.acquire();
      } catch (e) {
        resolve({ ok: false, ms: 0, detail: openErrorDetail(this.family, e as Error) });
        return;
      }
      const payload = Buffer.concat([MARKER, randomBytes(8)]);
      const p: Pending = {
        addr: target,
        payload,
        sentAt: t0,
        finish: (r) => {
          if (this.pending.get(seq) !== p) return;
          clearTimeout(timer);
          this.pending.delete(seq);
          this.release();
          resolve(r);
        },
      };
      const timer = setTimeout(() => {
        const why = p.error ? `: ${p.error}` : '';
        p.finish({ ok: false, ms: round(performance.now() - t0), detail: `no echo reply, timeout after ${timeoutMs} ms${why}` });
      }, timeoutMs);
      this.pending.set(seq, p);
      const packet = echoRequest(this.family, this.ident, seq, payload);
      sock.send(packet, 0, packet.length, target, () => {
        p.sentAt = performance.now();
      }, (err) => {
        if (err) p.finish({ ok: false, ms: round(performance.now() - t0), detail: `cannot send the echo request: ${err.message}` });
      });
    });
  }

  private freeSeq(): number | undefined {
    for (let i = 0; i < 0x10000; i++) {
      const seq = this.nextSeq;
      this.nextSeq = (this.nextSeq + 1) & 0xffff;
      if (!this.pending.has(seq)) return seq;
    }
    return undefined;
  }

  private acquire(): RawIcmpSocket {
    if (this.idleTimer) clearTimeout(this.idleTimer);
    this.idleTimer = undefined;
    if (this.sock) {
      if (this.pending.size === 0) this.sock.resumeRecv();
      return this.sock;
    }
    const s = this.open(this.family);
    s.on('message', (packet, source) => this.onMessage(packet, source));
    s.on('error', (err) => this.onSocketError(s, err));
    this.sock = s;
    return s;
  }

  /** After the last probe in flight: stop holding the event loop, and close the socket if no probe follows. */
  private release(): void {
    if (this.pending.size > 0 || !this.sock) return;
    this.sock.pauseRecv();
    this.idleTimer = setTimeout(() => this.close(), this.idleCloseMs);
    this.idleTimer.unref();
  }

  private close(): void {
    if (this.idleTimer) clearTimeout(this.idleTimer);
    this.idleTimer = undefined;
    const s = this.sock;
    this.sock = undefined;
    s?.close();
  }

  private onMessage(packet: Buffer, source: string): void {
    const m = parseEchoMessage(this.family, packet);
    if (!m || m.ident !== this.ident) return;
    const p = this.pending.get(m.seq);
    if (!p) return;
    if (m.kind === 'error') {
      if (m.dst === p.addr) p.error = `${m.detail} (ICMP from ${source})`;
      return;
    }
    let from: string;
    try {
      from = canonicalIp(source, this.family);
    } catch {
      return;
    }
    if (from !== p.addr || !m.payload.equals(p.payload)) return;
    p.finish({ ok: true, ms: round(performance.now() - p.sentAt), detail: '' });
  }

  /** raw-socket closes its socket after an error: every probe on it fails; the next probe opens a new one. */
  private onSocketError(s: RawIcmpSocket, err: Error): void {
    if (s !== this.sock) return;
    this.sock = undefined;
    s.close();
    const now = performance.now();
    for (const p of [...this.pending.values()]) p.finish({ ok: false, ms: round(now - p.sentAt), detail: `ICMP socket error: ${err.message}` });
  }
}

const shared: Partial<Record<Family, EchoMultiplexer>> = {};

/** The icmp check: one echo request to the backend's address (the port plays no part). */
export function probeIcmp(t: { addr: string; family: Family }, timeoutMs: number): Promise<EchoResult> {
  const mux = (shared[t.family] ??= new EchoMultiplexer(t.family));
  return mux.ping(t.addr, timeoutMs);
}

/** Why an icmp check of this family cannot run in this process (it cannot open the socket), or undefined. */
export function icmpUnavailable(family: Family, open: OpenRawIcmp = openRawIcmp): string | undefined {
  try {
    open(family).close();
    return undefined;
  } catch (e) {
    return openErrorDetail(family, e as Error);
  }
}

/**
 * Why the icmp checks of these services cannot run in this process (no raw socket of a family they need), or
 * undefined. `l4nat up` refuses to start and a reload is rejected on it: every such check would fail and take
 * every backend of those services down.
 */
export function icmpChecksUnavailable(services: readonly Pick<ServiceConfig, 'name' | 'family' | 'health'>[], open: OpenRawIcmp = openRawIcmp): string | undefined {
  for (const family of [4, 6] as const) {
    const names = [...new Set(services.filter((s) => s.family === family && s.health?.type === 'icmp').map((s) => s.name))];
    if (names.length === 0) continue;
    const why = icmpUnavailable(family, open);
    if (why) {
      return `service${names.length > 1 ? 's' : ''} ${names.join(', ')} ha${names.length > 1 ? 've' : 's'} an icmp health check (IPv${family}), but ${why}: ` +
        'grant CAP_NET_RAW (systemd: AmbientCapabilities=CAP_NET_ADMIN CAP_NET_RAW, as the shipped unit does) or use another check type';
    }
  }
  return undefined;
}
