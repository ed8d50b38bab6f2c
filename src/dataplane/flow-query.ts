// Flow-table queries as the admin view asks them: a filter checked and turned into the addon's query
// (native/core/flow_query.h does the filtering, the state included, and the paging), and a listed entry
// turned into addresses, ports and the name of its state.
import { isIP } from 'net';
import type { AddonLayout } from './addon-layout';
import type { NativeFlow, NativeFlowQuery } from './addon';
import { FLOW_BITS, FLOW_STATES, type FlowState } from './flow-state';
import { bufferToIp, ipToBuffer, type Family } from '../host/addr';

/** A flow-table entry as the admin view shows it. */
export interface FlowEntry {
  client: string;
  clientPort: number;
  vip: string;
  vipPort: number;
  proto: 'tcp' | 'udp';
  backendSlot: number;
  serviceSlot: number;
  state: FlowState;
  idleSeconds: number;
  /** Seconds since the entry was created for this flow, to 4 s (wraps after 72.8 h). */
  ageSeconds: number;
  /**
   * Flow-state sync (docs/scale-out.md): 'learned' from a cluster peer, or 'logged' for the peers by this host
   * (pinned against the current ring); absent for the others.
   */
  sync?: 'learned' | 'logged';
}

export interface FlowFilter {
  backendSlot?: number;
  serviceSlot?: number;
  client?: string;
  states?: readonly FlowState[];
  /** At most this many entries are returned (default 1000). */
  limit?: number;
  /** Where to start in the table: 0, or the `next` of the previous page. */
  cursor?: number;
}

/** One page of a listing: `next` is the cursor for the following page, null when the walk reached the end. */
export interface FlowPage {
  flows: FlowEntry[];
  next: number | null;
}

/** Entries one listing call looks at, at most: bounds the time a call holds the JS thread (~10 ms). */
export const FLOW_SCAN_PER_CALL = 1 << 18;

/** The addon's query for a filter, or throws naming what is wrong. capacity: the flow table's (the last cursor). */
export function nativeQuery(f: FlowFilter, capacity: number, layout: AddonLayout): NativeFlowQuery {
  const out: NativeFlowQuery = {};
  if (f.backendSlot !== undefined) {
    if (!Number.isInteger(f.backendSlot) || f.backendSlot < 0) throw new RangeError(`flows: backendSlot must be a slot number, got ${String(f.backendSlot)}`);
    out.backend = f.backendSlot;
  }
  if (f.client !== undefined) {
    const fam = isIP(f.client);
    if (!fam) throw new TypeError(`flows: client must be an IP address, got ${JSON.stringify(f.client)}`);
    const b = Buffer.alloc(16);
    ipToBuffer(f.client, fam as Family).copy(b);
    out.client = new Uint8Array(b);
  }
  if (f.serviceSlot !== undefined) {
    if (!Number.isInteger(f.serviceSlot) || f.serviceSlot < 0) throw new RangeError(`flows: serviceSlot must be a slot number, got ${String(f.serviceSlot)}`);
    out.service = f.serviceSlot;
  }
  if (f.limit !== undefined) {
    if (!Number.isInteger(f.limit) || f.limit < 1) throw new RangeError(`flows: limit must be a positive integer, got ${String(f.limit)}`);
    out.limit = f.limit;
  }
  if (f.cursor !== undefined) {
    if (!Number.isInteger(f.cursor) || f.cursor < 0 || f.cursor > capacity) {
      throw new RangeError(`flows: cursor must be the previous page's next, an integer from 0 to the flow table's capacity (${capacity}), got ${String(f.cursor)}`);
    }
    out.cursor = f.cursor;
  }
  let states = 0;
  for (const st of f.states ?? []) {
    if (!FLOW_STATES.includes(st)) throw new RangeError(`flows: state must be one of ${FLOW_STATES.join(', ')}, got ${JSON.stringify(st)}`);
    states |= 1 << layout.flowClasses[st];
  }
  if (states) out.states = states;
  return out;
}

/** A listed entry as the admin view shows it (the layout check keeps FLOW_STATES in the addon's class order). */
export function flowEntry(f: NativeFlow): FlowEntry {
  return {
    client: bufferToIp(f.client),
    clientPort: f.cport,
    vip: bufferToIp(f.vip),
    vipPort: f.vport,
    proto: f.proto === 6 ? 'tcp' : 'udp',
    backendSlot: f.backend,
    serviceSlot: f.service,
    state: FLOW_STATES[f.stateClass],
    idleSeconds: f.idle,
    ageSeconds: f.age,
    ...(f.learned ? { sync: 'learned' as const } : f.state & FLOW_BITS.SYNCED ? { sync: 'logged' as const } : {}),
  };
}
