// The wire view of a trace: libpcap (the `cap` package) on l4nat's TUN, narrowed by a filter made from the
// trace's match. Each packet is put on its side by what it is: one to a VIP:port or from a backend's address and
// port (an ICMP message: to a VIP or from a backend) was read by l4nat, before translation; anything else it
// wrote. (libpcap's `outbound`/`inbound` would say it from the kernel's packet type, but on a TUN they lost the
// first SYN of a connection in the lab.) Open only while a trace with the wire view runs; nothing of it touches
// the data plane.
import { bufferToIp } from '../host/addr';
import type { TraceWireEvent } from './events';
import { ipPacketLength } from './pcapng';

interface CapHandle {
  open(dev: string, filter: string, bufSize: number, buffer: Buffer): string;
  on(ev: 'packet', cb: (nbytes: number, trunc: boolean) => void): void;
  removeAllListeners(ev: 'packet'): void;
  close(): void;
}

/**
 * Every closed capture handle, kept for the life of the process. The `cap` addon's close() stops its libuv poll
 * handle but never uv_close()s it, so the handle stays in the event loop's handle list; when the garbage
 * collector then frees the addon object, that list points into freed memory, and the next handle opened or closed
 * beside it writes there (a crash at a random later moment). Kept referenced, the object is never freed. Each one
 * costs a few hundred bytes (its packet buffer and listener are dropped), once per trace with the wire view.
 */
const closedCaps: CapHandle[] = [];

/** Host and port terms of a BPF filter; alternatives are ORed. */
export interface WireEndpoint {
  addr: string;
  port?: number;
}

/** The pcap filter for packets to or from any of `ends` (empty: every packet). */
export function wireFilter(ends: readonly WireEndpoint[]): string {
  if (ends.length === 0) return '';
  const term = (e: WireEndpoint): string => `(host ${e.addr}${e.port !== undefined ? ` and port ${e.port}` : ''})`;
  return ends.map(term).join(' or ');
}

/** An IP packet's addresses, protocol and ports (0 without). Null when it is not one. */
export function ipTuple(ip: Buffer): { src: string; dst: string; proto: number; sport: number; dport: number } | null {
  const v = ip.length ? ip[0] >> 4 : 0;
  let l4: number;
  let proto: number;
  let src: string;
  let dst: string;
  if (v === 4 && ip.length >= 20) {
    l4 = (ip[0] & 15) * 4;
    proto = ip[9];
    src = bufferToIp(ip.subarray(12, 16));
    dst = bufferToIp(ip.subarray(16, 20));
  } else if (v === 6 && ip.length >= 40) {
    l4 = 40;
    proto = ip[6];
    src = bufferToIp(ip.subarray(8, 24));
    dst = bufferToIp(ip.subarray(24, 40));
  } else {
    return null;
  }
  const ports = (proto === 6 || proto === 17) && ip.length >= l4 + 4;
  return { src, dst, proto, sport: ports ? ip.readUInt16BE(l4) : 0, dport: ports ? ip.readUInt16BE(l4 + 2) : 0 };
}

/** What l4nat translates: its services' VIP:port and their backends' address:port (with the protocol). */
export interface WireSides {
  vips: ReadonlySet<string>; // "addr port proto" and "addr" (for ICMP)
  backends: ReadonlySet<string>;
}

/** Which side of the TUN a packet is from: read by l4nat (before translation) or written by it. */
export function wireSide(ip: Buffer, s: WireSides): 'read' | 'written' {
  const t = ipTuple(ip);
  if (!t) return 'read';
  if (t.sport === 0) return s.vips.has(t.dst) || s.backends.has(t.src) ? 'read' : 'written';
  return s.vips.has(`${t.dst} ${t.dport} ${t.proto}`) || s.backends.has(`${t.src} ${t.sport} ${t.proto}`) ? 'read' : 'written';
}

export class WireCapture {
  private cap: CapHandle | undefined;

  /** Opens the capture on `tun`; throws when libpcap refuses. */
  constructor(tun: string, ends: readonly WireEndpoint[], sides: () => WireSides, onPacket: (e: TraceWireEvent) => void) {
    // Loaded here: only a trace with the wire view needs libpcap.
    // eslint-disable-next-line @typescript-eslint/no-var-requires
    const { Cap } = require('cap') as { Cap: new () => CapHandle };
    const cap = new Cap();
    const buffer = Buffer.alloc(65535);
    cap.open(tun, wireFilter(ends), 4 * 1024 * 1024, buffer);
    this.cap = cap;
    cap.on('packet', (nbytes: number) => {
      const data = buffer.subarray(0, nbytes);
      const timeUs = Math.round((performance.timeOrigin + performance.now()) * 1000);
      onPacket({ type: 'wire', side: wireSide(data, sides()), timeUs, origLen: ipPacketLength(data), data: data.toString('base64') });
    });
  }

  /** The libpcap handle while open (tests watch its lifetime). */
  get handle(): object | undefined {
    return this.cap;
  }

  close(): void {
    if (!this.cap) return;
    this.cap.close();
    this.cap.removeAllListeners('packet'); // the buffer and the trace it fed can go; the handle stays (closedCaps)
    closedCaps.push(this.cap);
    this.cap = undefined;
  }
}
