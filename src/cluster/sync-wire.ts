// Flow-state sync's datagrams (docs/scale-out.md "Flow-state sync"): their layout, the keyed MAC and the checks a
// received one passes before it changes anything. Pure: no sockets, no clock of its own.
//
//   header (32 bytes)  magic "L4SY", version 1, type (1 entries, 2 request: send me your divergent set, 3 keepalive),
//                      entry count (u16), sender (8 random bytes per process), sequence (u64, per sender, +1 per
//                      datagram), time (u64, ms since the epoch)
//   entries            ENTRY_BYTES each: op, families, protocol, ports, confirmed flag, client, VIP and backend
//                      addresses (16 bytes each), i.e. the flow's 5-tuple and its backend by address and port
//   MAC (32 bytes)     HMAC-SHA256 with the cluster's key over everything before it
//
// Entries name backends by identity, never by slot (slots differ per host); the service is the flow's VIP, port and
// protocol. MAX_ENTRIES keeps a datagram within 1232 bytes: IPv6's minimum MTU less its headers, no fragments.
import { createHmac, timingSafeEqual } from 'crypto';
import { bufferToIp, ipToBuffer, type Family } from '../host/addr';

export const MAGIC = 0x4c345359; // "L4SY"
export const VERSION = 1;
export const HEADER_BYTES = 32;
export const ENTRY_BYTES = 60;
export const MAC_BYTES = 32;
export const MAX_ENTRIES = 19;
export const MAX_DATAGRAM = HEADER_BYTES + MAX_ENTRIES * ENTRY_BYTES + MAC_BYTES;

export const MESSAGE_TYPES = { entries: 1, request: 2, keepalive: 3 } as const;
export type MessageType = keyof typeof MESSAGE_TYPES;

/** A flow entry as peers exchange it. */
export interface WireEntry {
  op: 'add' | 'del';
  family: Family;
  proto: 6 | 17;
  client: string;
  cport: number;
  vip: string;
  vport: number;
  bkFamily: Family;
  bkAddr: string;
  bkPort: number;
  /** Both ends have spoken through the sender's entry (TCP established; UDP always); else a pick-up, half-open. */
  confirmed: boolean;
}

export interface Message {
  type: MessageType;
  sender: Buffer; // 8 bytes
  seq: bigint;
  timeMs: number;
  entries: WireEntry[];
}

/** Why a datagram changed nothing (counted by reason). */
export type RejectReason = 'malformed' | 'bad_mac' | 'replayed' | 'stale' | 'unknown_peer' | 'unknown_backend';

export class WireError extends Error {
  constructor(
    readonly reason: RejectReason,
    message: string,
  ) {
    super(message);
  }
}

const TYPE_BY_NUMBER = new Map<number, MessageType>(Object.entries(MESSAGE_TYPES).map(([k, v]) => [v, k as MessageType]));

function mac(key: Buffer, body: Buffer): Buffer {
  return createHmac('sha256', key).update(body).digest();
}

/** One datagram, MAC included. At most MAX_ENTRIES entries. */
export function encodeMessage(m: Message, key: Buffer): Buffer {
  if (m.entries.length > MAX_ENTRIES) throw new RangeError(`sync: at most ${MAX_ENTRIES} entries per datagram, got ${m.entries.length}`);
  if (m.sender.length !== 8) throw new RangeError('sync: the sender id is 8 bytes');
  const body = Buffer.alloc(HEADER_BYTES + m.entries.length * ENTRY_BYTES);
  body.writeUInt32BE(MAGIC, 0);
  body[4] = VERSION;
  body[5] = MESSAGE_TYPES[m.type];
  body.writeUInt16BE(m.entries.length, 6);
  m.sender.copy(body, 8);
  body.writeBigUInt64BE(m.seq, 16);
  body.writeBigUInt64BE(BigInt(Math.max(0, Math.floor(m.timeMs))), 24);
  m.entries.forEach((e, i) => {
    const o = HEADER_BYTES + i * ENTRY_BYTES;
    body[o] = e.op === 'add' ? 1 : 2;
    body[o + 1] = e.family;
    body[o + 2] = e.proto;
    body[o + 3] = e.bkFamily;
    body.writeUInt16BE(e.cport, o + 4);
    body.writeUInt16BE(e.vport, o + 6);
    body.writeUInt16BE(e.bkPort, o + 8);
    body[o + 10] = e.confirmed ? 1 : 0;
    ipToBuffer(e.client, e.family).copy(body, o + 12);
    ipToBuffer(e.vip, e.family).copy(body, o + 28);
    ipToBuffer(e.bkAddr, e.bkFamily).copy(body, o + 44);
  });
  return Buffer.concat([body, mac(key, body)]);
}

function family(v: number, what: string): Family {
  if (v !== 4 && v !== 6) throw new WireError('malformed', `${what} family ${v}, expected 4 or 6`);
  return v;
}

function port(v: number, what: string): number {
  if (v === 0) throw new WireError('malformed', `${what} port 0`);
  return v;
}

/** Checks the MAC first (nothing of an unauthenticated datagram is believed, not even its length fields), then decodes. */
export function decodeMessage(buf: Buffer, key: Buffer): Message {
  if (buf.length < HEADER_BYTES + MAC_BYTES || buf.length > MAX_DATAGRAM) throw new WireError('malformed', `a datagram of ${buf.length} bytes, expected ${HEADER_BYTES + MAC_BYTES} to ${MAX_DATAGRAM}`);
  const body = buf.subarray(0, buf.length - MAC_BYTES);
  if (!timingSafeEqual(mac(key, body), buf.subarray(buf.length - MAC_BYTES))) throw new WireError('bad_mac', 'the MAC does not match the cluster key');
  if (body.readUInt32BE(0) !== MAGIC || body[4] !== VERSION) throw new WireError('malformed', `magic/version ${body.readUInt32BE(0).toString(16)}/${body[4]}, expected ${MAGIC.toString(16)}/${VERSION}`);
  const type = TYPE_BY_NUMBER.get(body[5]);
  if (!type) throw new WireError('malformed', `message type ${body[5]}`);
  const n = body.readUInt16BE(6);
  if (n > MAX_ENTRIES || body.length !== HEADER_BYTES + n * ENTRY_BYTES) throw new WireError('malformed', `${n} entries in ${body.length} bytes`);
  const entries: WireEntry[] = [];
  for (let i = 0; i < n; i++) {
    const o = HEADER_BYTES + i * ENTRY_BYTES;
    const op = body[o] === 1 ? 'add' : body[o] === 2 ? 'del' : undefined;
    if (!op) throw new WireError('malformed', `entry ${i}: op ${body[o]}`);
    const f = family(body[o + 1], `entry ${i}: flow`);
    const proto = body[o + 2];
    if (proto !== 6 && proto !== 17) throw new WireError('malformed', `entry ${i}: protocol ${proto}, expected 6 or 17`);
    const bf = family(body[o + 3], `entry ${i}: backend`);
    const len = (x: Family): number => (x === 4 ? 4 : 16);
    entries.push({
      op,
      family: f,
      proto,
      cport: port(body.readUInt16BE(o + 4), `entry ${i}: client`),
      vport: port(body.readUInt16BE(o + 6), `entry ${i}: VIP`),
      bkPort: port(body.readUInt16BE(o + 8), `entry ${i}: backend`),
      client: bufferToIp(body.subarray(o + 12, o + 12 + len(f))),
      vip: bufferToIp(body.subarray(o + 28, o + 28 + len(f))),
      bkFamily: bf,
      bkAddr: bufferToIp(body.subarray(o + 44, o + 44 + len(bf))),
      confirmed: (body[o + 10] & 1) === 1,
    });
  }
  return { type, sender: Buffer.from(body.subarray(8, 16)), seq: body.readBigUInt64BE(16), timeMs: Number(body.readBigUInt64BE(24)), entries };
}

/**
 * Replay and staleness: a sender's sequence must grow (per sender id, which a process draws at start), and its time
 * must be within maxSkewMs of ours, so a datagram recorded earlier cannot be played back, not even to a host that
 * restarted since (it forgot the sequences, but the recording is stale by then). Senders are forgotten once their
 * last datagram is older than twice the skew (bounded memory: at most `maxSenders`).
 */
export class ReplayGuard {
  private readonly last = new Map<string, { seq: bigint; at: number }>();

  constructor(
    private readonly maxSkewMs: number,
    private readonly maxSenders = 1024,
  ) {}

  /** Throws WireError('stale' | 'replayed') or accepts (and remembers) the datagram. */
  accept(m: Message, nowMs: number): void {
    if (Math.abs(nowMs - m.timeMs) > this.maxSkewMs) throw new WireError('stale', `sent at ${new Date(m.timeMs).toISOString()}, more than ${this.maxSkewMs} ms from this host's clock`);
    const id = m.sender.toString('hex');
    const prev = this.last.get(id);
    if (prev && m.seq <= prev.seq) throw new WireError('replayed', `sequence ${m.seq} of sender ${id}, already at ${prev.seq}`);
    if (!prev && this.last.size >= this.maxSenders) this.forgetOld(nowMs);
    if (!prev && this.last.size >= this.maxSenders) throw new WireError('stale', `more than ${this.maxSenders} senders within ${2 * this.maxSkewMs} ms`);
    this.last.set(id, { seq: m.seq, at: nowMs });
  }

  private forgetOld(nowMs: number): void {
    for (const [id, v] of this.last) if (nowMs - v.at > 2 * this.maxSkewMs) this.last.delete(id);
  }
}
