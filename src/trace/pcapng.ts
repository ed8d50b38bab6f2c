// A pcapng writer (the IETF draft, "PCAP Now Generic"; what Wireshark and tcpdump read): one Section Header
// Block, one Interface Description Block per side of the TUN (the packets l4nat read, the packets it wrote),
// then an Enhanced Packet Block per packet. Microsecond timestamps (the default if_tsresol), little-endian.
// The link type is Linux cooked capture (LINKTYPE_LINUX_SLL), as tcpdump -i any writes: its header says which
// way the packet went on the TUN ("Out": into l4nat, "In": written by it), which tcpdump and Wireshark show. Raw
// IP (LINKTYPE_RAW) would do without it, but libpcap up to at least 1.10.3 refuses a file with two LINKTYPE_RAW
// interfaces ("an interface has a type 101 different from the type of the first interface"). Pure: it makes the
// bytes, the caller writes them.

const SHB = 0x0a0d0d0a;
const IDB = 0x00000001;
const EPB = 0x00000006;
const BYTE_ORDER_MAGIC = 0x1a2b3c4d;
export const LINKTYPE_LINUX_SLL = 113;
const SLL_HDR_LEN = 16;
const PACKET_HOST = 0; // sent to this host: a packet l4nat wrote into the TUN
const PACKET_OUTGOING = 4; // sent by this host: a packet the kernel handed to l4nat
const ARPHRD_NONE = 0xfffe; // a TUN's hardware type
const OPT_END = 0;
const OPT_COMMENT = 1;
const IF_NAME = 2;
const IF_DESCRIPTION = 3;
const SHB_USERAPPL = 4;

const pad4 = (n: number): number => (n + 3) & ~3;

/** One option: code, length, value padded to 32 bits. */
function option(code: number, value: Buffer): Buffer {
  const b = Buffer.alloc(4 + pad4(value.length));
  b.writeUInt16LE(code, 0);
  b.writeUInt16LE(value.length, 2);
  value.copy(b, 4);
  return b;
}

function options(list: Array<[number, string | undefined]>): Buffer {
  const parts = list.filter(([, v]) => v !== undefined && v !== '').map(([c, v]) => option(c, Buffer.from(v as string, 'utf8')));
  return parts.length ? Buffer.concat([...parts, Buffer.alloc(4, 0)]) : Buffer.alloc(0); // opt_endofopt
}

/** A block: type, total length, body, total length again. */
function block(type: number, body: Buffer): Buffer {
  const len = 12 + body.length;
  const b = Buffer.alloc(len);
  b.writeUInt32LE(type, 0);
  b.writeUInt32LE(len, 4);
  body.copy(b, 8);
  b.writeUInt32LE(len, len - 4);
  return b;
}

export function sectionHeader(application: string): Buffer {
  const fixed = Buffer.alloc(16);
  fixed.writeUInt32LE(BYTE_ORDER_MAGIC, 0);
  fixed.writeUInt16LE(1, 4); // major
  fixed.writeUInt16LE(0, 6); // minor
  fixed.writeBigInt64LE(-1n, 8); // section length: not given
  return block(SHB, Buffer.concat([fixed, options([[SHB_USERAPPL, application]])]));
}

export function interfaceDescription(name: string, description: string, snaplen = 65535 + SLL_HDR_LEN): Buffer {
  const fixed = Buffer.alloc(8);
  fixed.writeUInt16LE(LINKTYPE_LINUX_SLL, 0);
  fixed.writeUInt32LE(snaplen, 4);
  return block(IDB, Buffer.concat([fixed, options([[IF_NAME, name], [IF_DESCRIPTION, description]])]));
}

/** The cooked header of an IP packet that went `outgoing` (into l4nat) or not (written by it). */
function sllHeader(ip: Buffer, outgoing: boolean): Buffer {
  const h = Buffer.alloc(SLL_HDR_LEN);
  h.writeUInt16BE(outgoing ? PACKET_OUTGOING : PACKET_HOST, 0);
  h.writeUInt16BE(ARPHRD_NONE, 2);
  h.writeUInt16BE(0, 4); // no link-layer address
  h.writeUInt16BE(ip.length > 0 && ip[0] >> 4 === 6 ? 0x86dd : 0x0800, 14);
  return h;
}

/** A raw IP packet of interface `ifIndex` (the order of its IDB, from 0; 0 = read by l4nat) at `timeUs` since the epoch. */
export function enhancedPacket(ifIndex: number, timeUs: number, ip: Buffer, ipOrigLen = ip.length, comment?: string): Buffer {
  const data = Buffer.concat([sllHeader(ip, ifIndex === 0), ip]);
  const origLen = SLL_HDR_LEN + ipOrigLen;
  const fixed = Buffer.alloc(20);
  const ts = BigInt(Math.round(timeUs));
  fixed.writeUInt32LE(ifIndex, 0);
  fixed.writeUInt32LE(Number(ts >> 32n), 4);
  fixed.writeUInt32LE(Number(ts & 0xffffffffn), 8);
  fixed.writeUInt32LE(data.length, 12);
  fixed.writeUInt32LE(Math.max(origLen, data.length), 16);
  const padded = Buffer.alloc(pad4(data.length));
  data.copy(padded);
  return block(EPB, Buffer.concat([fixed, padded, options([[OPT_COMMENT, comment]])]));
}

/** The two interfaces a trace's pcap has, in this order: what l4nat read from the TUN, what it wrote. */
export const WIRE_SIDES = ['read', 'written'] as const;

export function tracePcapHeader(tun: string): Buffer {
  return Buffer.concat([
    sectionHeader('l4nat trace'),
    interfaceDescription(`${tun}-read`, `${tun}: packets as l4nat read them (before translation)`),
    interfaceDescription(`${tun}-written`, `${tun}: packets as l4nat wrote them (after translation)`),
  ]);
}

/** The original length of a raw IP packet from its header (a GSO super-packet's whole length), or the bytes' length. */
export function ipPacketLength(data: Buffer): number {
  if (data.length >= 4 && data[0] >> 4 === 4) return data.readUInt16BE(2);
  if (data.length >= 6 && data[0] >> 4 === 6) return 40 + data.readUInt16BE(4);
  return data.length;
}
