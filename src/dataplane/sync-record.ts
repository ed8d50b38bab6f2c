// Flow-state sync records as the addon drains and takes them (native/core/sync_log.h struct l4_sync_rec): the
// layout, checked against the addon at load (src/dataplane/addon-layout.ts), and their decoding and encoding.
// Slots are this host's; src/cluster/sync.ts names them by identity for the peers.
import { bufferToIp, ipToBuffer, type Family } from '../host/addr';

export const SYNC_RECORD_BYTES = 56;

/** Byte offsets of a record's fields. Ports are in network order (as in the flow key), slots in host order. */
export const SYNC_FIELDS = { client: 0, vip: 16, cport: 32, vport: 34, proto: 36, family: 37, backend: 40, svc: 44, op: 48, state: 49 } as const;

export const SYNC_OPS = { add: 1, del: 2 } as const;
export type SyncOp = keyof typeof SYNC_OPS;

/** One record: an entry pinned against the ring (add) or its close (del), keyed by the flow's forward 5-tuple. */
export interface SyncRecord {
  op: SyncOp;
  family: Family;
  proto: number; // 6 or 17
  client: string;
  cport: number;
  vip: string;
  vport: number;
  backend: number; // backend slot
  svc: number; // service slot
  /** The entry's FL_* bits when logged (flow-state.ts FLOW_BITS); to the addon: EST for a confirmed learned entry. */
  state: number;
}

const F = SYNC_FIELDS;
const addrLen = (family: Family): number => (family === 4 ? 4 : 16);

/** The records of a drained buffer; a record with an unknown op or family (none the addon writes) is skipped. */
export function decodeSyncRecords(buf: Uint8Array): SyncRecord[] {
  const b = Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
  const out: SyncRecord[] = [];
  for (let o = 0; o + SYNC_RECORD_BYTES <= b.length; o += SYNC_RECORD_BYTES) {
    const family = b[o + F.family];
    const opNum = b[o + F.op];
    if ((family !== 4 && family !== 6) || (opNum !== SYNC_OPS.add && opNum !== SYNC_OPS.del)) continue;
    const n = addrLen(family);
    out.push({
      op: opNum === SYNC_OPS.add ? 'add' : 'del',
      family,
      proto: b[o + F.proto],
      client: bufferToIp(b.subarray(o + F.client, o + F.client + n)),
      cport: b.readUInt16BE(o + F.cport),
      vip: bufferToIp(b.subarray(o + F.vip, o + F.vip + n)),
      vport: b.readUInt16BE(o + F.vport),
      backend: b.readUInt32LE(o + F.backend),
      svc: b.readUInt32LE(o + F.svc),
      state: b[o + F.state],
    });
  }
  return out;
}

/** Records as the addon takes them (syncApply, syncCheck): whole records in 8-byte aligned memory. */
export function encodeSyncRecords(recs: readonly SyncRecord[]): Uint8Array {
  const ab = new ArrayBuffer(recs.length * SYNC_RECORD_BYTES);
  const b = Buffer.from(ab);
  recs.forEach((r, i) => {
    const o = i * SYNC_RECORD_BYTES;
    ipToBuffer(r.client, r.family).copy(b, o + F.client);
    ipToBuffer(r.vip, r.family).copy(b, o + F.vip);
    b.writeUInt16BE(r.cport, o + F.cport);
    b.writeUInt16BE(r.vport, o + F.vport);
    b[o + F.proto] = r.proto;
    b[o + F.family] = r.family;
    b.writeUInt32LE(r.backend, o + F.backend);
    b.writeUInt32LE(r.svc, o + F.svc);
    b[o + F.op] = SYNC_OPS[r.op];
    b[o + F.state] = r.state;
  });
  return new Uint8Array(ab);
}
