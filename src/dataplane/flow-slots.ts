// The slot map kept in the flow table's file (native/core/flow_segment.h): which service and backend each slot
// number held when the table was last published. Flow entries name their backend and service by slot, so the
// l4nat that takes the file over gives the same services and backends the same slots (SlotAllocator.seed) and
// every taken-over entry keeps meaning what it meant. Pure: encoding and a checked decoding.

export interface FlowSlotMap {
  services: Map<string, number>; // serviceId -> slot
  backends: Map<string, number>; // backendKey -> slot
}

const VERSION = 1;

export function encodeFlowSlots(m: FlowSlotMap): Buffer {
  return Buffer.from(JSON.stringify({ v: VERSION, services: [...m.services], backends: [...m.backends] }));
}

function pairs(v: unknown, what: string): Map<string, number> {
  if (!Array.isArray(v)) throw new TypeError(`flow slot map: ${what} is not a list`);
  const out = new Map<string, number>();
  const used = new Set<number>();
  for (const p of v) {
    if (!Array.isArray(p) || p.length !== 2 || typeof p[0] !== 'string' || !Number.isInteger(p[1]) || (p[1] as number) < 0) {
      throw new TypeError(`flow slot map: ${what} holds an entry that is not [id, slot]`);
    }
    const [id, slot] = p as [string, number];
    if (out.has(id) || used.has(slot)) throw new TypeError(`flow slot map: ${what} names ${out.has(id) ? `id ${id}` : `slot ${slot}`} twice`);
    out.set(id, slot);
    used.add(slot);
  }
  return out;
}

/** The map a file holds, or throws saying what is wrong with it. */
export function decodeFlowSlots(buf: Uint8Array): FlowSlotMap {
  let raw: unknown;
  try {
    raw = JSON.parse(Buffer.from(buf).toString('utf8'));
  } catch {
    throw new TypeError('flow slot map: not JSON');
  }
  const o = raw as { v?: unknown; services?: unknown; backends?: unknown };
  if (typeof o !== 'object' || o === null || o.v !== VERSION) throw new TypeError(`flow slot map: not version ${VERSION}`);
  return { services: pairs(o.services, 'services'), backends: pairs(o.backends, 'backends') };
}
