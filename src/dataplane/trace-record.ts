// The data plane's verdict trace as src/ sees it (native/core/trace.h): the record layout, the direction and
// flow-verdict names, a match's flags, all checked against the addon at load (src/dataplane/addon-layout.ts);
// decoding the records the addon drains, and a match as the addon takes it.
import { bufferToIp, ipToBuffer, type Family } from '../host/addr';

export const TRACE_RECORD_BYTES = 128;
export const TRACE_MATCHES = 4;

/** Byte offsets of a record's fields (native/core/trace.h struct l4_trace_rec). */
export const TRACE_FIELDS = {
  timeNs: 0, family: 8, proto: 9, dir: 10, verdict: 11, dropReason: 12, flow: 13, tcpFlags: 14, matchMask: 15,
  gsoSize: 16, gsoType: 18, icmpType: 19, payloadLen: 20, seq: 24, ack: 28, service: 32, backend: 36, ringSlot: 40,
  queue: 44, saddr: 48, daddr: 64, outSaddr: 80, outDaddr: 96, sport: 112, dport: 114, outSport: 116, outDport: 118,
  ipLen: 120,
} as const;

export const TRACE_DIRS = ['none', 'forward', 'reply', 'icmp_to_backend', 'icmp_to_client', 'echo', 'probe'] as const;
export type TraceDir = (typeof TRACE_DIRS)[number];
export const TRACE_FLOWS = ['none', 'hit', 'new', 'repin', 'raced', 'no_entry', 'insert_failed', 'pickup', 'other_backend', 'second_chance'] as const;
export type TraceFlow = (typeof TRACE_FLOWS)[number];
export const TRACE_MATCH_FLAGS = { CLIENT: 1, CLIENT_PORT: 2, SERVICE: 4, BACKEND: 8, DROPS: 16 } as const;

const byNumber = (names: readonly string[]): Record<string, number> => Object.fromEntries(names.map((n, i) => [n, i]));
export const TRACE_DIR_NUMBERS = byNumber(TRACE_DIRS);
export const TRACE_FLOW_NUMBERS = byNumber(TRACE_FLOWS);

/** The slot number for "none" (L4_NO_BACKEND). */
const NONE = 0xffffffff;

export interface TraceEndpoint {
  addr: string;
  port: number; // 0 for ICMP
}

/** One traced packet, decoded. Slots are the data plane's; the trace hub names them. */
export interface TraceRecord {
  timeNs: bigint;
  queue: number;
  family: Family | 0; // 0: the packet did not parse
  proto: number;
  dir: TraceDir;
  /** As l4nat read it and as it wrote it (a dropped packet: as read). */
  before: { src: TraceEndpoint; dst: TraceEndpoint };
  after: { src: TraceEndpoint; dst: TraceEndpoint };
  tcpFlags: number;
  seq: number;
  ack: number;
  payloadLen: number;
  ipLen: number;
  gsoSize: number;
  gsoType: number;
  icmpType: number;
  written: boolean;
  dropReason: string | null;
  flow: TraceFlow;
  serviceSlot: number | null;
  backendSlot: number | null;
  ringSlot: number | null;
  matchMask: number;
}

function addr(buf: Buffer, off: number, family: Family | 0): string {
  if (family === 0) return '';
  return bufferToIp(buf.subarray(off, off + (family === 4 ? 4 : 16)));
}

const slot = (v: number): number | null => (v === NONE ? null : v);

/** Decodes the records of one drain (a whole number of TRACE_RECORD_BYTES records). dropReasons: the addon's names. */
export function decodeTraceRecords(buf: Buffer, dropReasons: readonly string[]): TraceRecord[] {
  if (buf.length % TRACE_RECORD_BYTES !== 0) throw new RangeError(`trace: ${buf.length} bytes is not a whole number of ${TRACE_RECORD_BYTES}-byte records`);
  const out: TraceRecord[] = [];
  const F = TRACE_FIELDS;
  for (let o = 0; o < buf.length; o += TRACE_RECORD_BYTES) {
    const r = buf.subarray(o, o + TRACE_RECORD_BYTES);
    const fam = r[F.family];
    const family: Family | 0 = fam === 4 || fam === 6 ? fam : 0;
    const written = r[F.verdict] === 1;
    const reason = r[F.dropReason];
    out.push({
      timeNs: r.readBigUInt64LE(F.timeNs),
      queue: r.readUInt16LE(F.queue),
      family,
      proto: r[F.proto],
      dir: TRACE_DIRS[r[F.dir]] ?? 'none',
      before: {
        src: { addr: addr(r, F.saddr, family), port: r.readUInt16LE(F.sport) },
        dst: { addr: addr(r, F.daddr, family), port: r.readUInt16LE(F.dport) },
      },
      after: {
        src: { addr: addr(r, F.outSaddr, family), port: r.readUInt16LE(F.outSport) },
        dst: { addr: addr(r, F.outDaddr, family), port: r.readUInt16LE(F.outDport) },
      },
      tcpFlags: r[F.tcpFlags],
      seq: r.readUInt32LE(F.seq),
      ack: r.readUInt32LE(F.ack),
      payloadLen: r.readUInt32LE(F.payloadLen),
      ipLen: r.readUInt32LE(F.ipLen),
      gsoSize: r.readUInt16LE(F.gsoSize),
      gsoType: r[F.gsoType],
      icmpType: r[F.icmpType],
      written,
      dropReason: written ? null : (dropReasons[reason] ?? `reason_${reason}`),
      flow: TRACE_FLOWS[r[F.flow]] ?? 'none',
      serviceSlot: slot(r.readUInt32LE(F.service)),
      backendSlot: slot(r.readUInt32LE(F.backend)),
      ringSlot: slot(r.readUInt32LE(F.ringSlot)),
      matchMask: r[F.matchMask],
    });
  }
  return out;
}

/** A trace match in addresses (src/trace/options.ts makes it from flags or query parameters). */
export interface TraceMatch {
  client?: { addr: string; family: Family; port?: number };
  service?: { vip: string; family: Family; port: number; proto: 'tcp' | 'udp' };
  backend?: { addr: string; family: Family; port: number };
  drops?: boolean;
}

/** The match as native/addon_probe_trace.c traceSet takes it. */
export interface NativeTraceMatch {
  flags: number;
  clientFamily: number;
  client: Uint8Array;
  cport: number;
  svcFamily: number;
  svcProto: number;
  vip: Uint8Array;
  vport: number;
  bkFamily: number;
  backend: Uint8Array;
  bport: number;
}

function addr16(a: string | undefined, family: Family | undefined): Uint8Array {
  const b = Buffer.alloc(16);
  if (a !== undefined && family !== undefined) ipToBuffer(a, family).copy(b);
  return new Uint8Array(b);
}

export function nativeTraceMatch(m: TraceMatch): NativeTraceMatch {
  const f = TRACE_MATCH_FLAGS;
  let flags = 0;
  if (m.client) flags |= f.CLIENT | (m.client.port !== undefined ? f.CLIENT_PORT : 0);
  if (m.service) flags |= f.SERVICE;
  if (m.backend) flags |= f.BACKEND;
  if (m.drops) flags |= f.DROPS;
  return {
    flags,
    clientFamily: m.client?.family ?? 0,
    client: addr16(m.client?.addr, m.client?.family),
    cport: m.client?.port ?? 0,
    svcFamily: m.service?.family ?? 0,
    svcProto: m.service ? (m.service.proto === 'tcp' ? 6 : 17) : 0,
    vip: addr16(m.service?.vip, m.service?.family),
    vport: m.service?.port ?? 0,
    bkFamily: m.backend?.family ?? 0,
    backend: addr16(m.backend?.addr, m.backend?.family),
    bport: m.backend?.port ?? 0,
  };
}
