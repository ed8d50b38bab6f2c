// What the data plane would do now with a client's packet of one tuple (native/core/explain.h, l4_explain): the
// addon returns its result as uint32 words, this module checks the question and names the words. The decision
// itself is made in C by the lookups the packet path uses, never here. Also the layout of a flow-move question
// (native/core/flow_query.h l4_flow_moves_page: which live entries a planned ring would send elsewhere).
import { isIP } from 'net';
import { FLOW_STATES, type FlowState } from './flow-state';
import { NO_BACKEND } from './tables';
import { bufferToIp, ipToBuffer, type Family } from '../host/addr';

/** The word each field of an explanation is at (native/core/explain.h struct l4_explain; checked at load). */
export const EXPLAIN_FIELDS = {
  verdict: 0, dropReason: 1, service: 2, aclEntries: 3, aclIndex: 4, aclAllowed: 5, rate: 6, burst: 7, rateTokensMilli: 8,
  rateAllows: 9, flowFound: 10, flowBackend: 11, flowService: 12, flowState: 13, flowClass: 14, flowIdle: 15, flowValid: 16,
  flowOffRing: 17, ringSize: 18, ringSlot: 19, ringBackend: 20, prevRingSize: 21, prevRingSlot: 22, prevBackend: 23,
  prevSecondChance: 24, backend: 25, backendFlags: 26, backendPort: 27, backendAddr: 28, vipPort: 32, vipAddr: 33, generation: 37,
  synChoice: 38,
} as const;
export const EXPLAIN_WORDS = 39;
export const EXPLAIN_VERDICTS = { drop: 0, entry: 1, ring: 2 } as const;
/**
 * Why a client's SYN leaves a live entry instead of following it (native/core/admission.h l4_syn_choice; checked at
 * load): the entry saw a reset or a FIN; its backend takes no new flows (a client reusing its port while the backend
 * drains or is down); or it is a retransmission of a SYN nobody answered, which the ring now sends elsewhere.
 */
export const SYN_CHOICES = { follows: 0, closed: 1, backend_leaving: 2, retransmitted: 3 } as const;
export type SynChoice = Exclude<keyof typeof SYN_CHOICES, 'follows'>;
/** A backend's flags as the published table holds them. */
export const BK_TABLE_FLAGS = { PRESENT: 1, NO_SECOND_CHANCE: 2, IN_RING: 4 } as const;
/** A flow-move question's rows: [service_slot, hash_mode, ring_offset, ring_size]. */
export const MOVE_WORDS = 4;

export type ExplainVerdict = keyof typeof EXPLAIN_VERDICTS;

/** The tuple: a client's packet to a VIP; its next packet, or with `syn` a SYN without ACK (TCP only). */
export interface ExplainQuery {
  proto: 'tcp' | 'udp';
  client: string;
  clientPort: number;
  vip: string;
  vipPort: number;
  syn?: boolean;
}

/** The decision chain, by slot numbers (the controller names services and backends). */
export interface DataplaneExplanation {
  verdict: ExplainVerdict;
  /** Why it would be dropped (a drop reason's metric name), or null. */
  dropReason: string | null;
  serviceSlot: number | null;
  /** The service's source CIDR lists: how many entries, the one that decided (its index among them), the outcome. */
  acl: { entries: number; index: number | null; allowed: boolean };
  /** The client's new-flow bucket (null: the service has no limit); tokens as fractions of a new flow. */
  rateLimit: { rate: number; burst: number; tokens: number; allowsNewFlow: boolean } | null;
  /**
   * The live flow-table entry of the tuple, if any: `offRing` when the ring now picks another backend; `left`: why the
   * packet (a SYN, or the next packet of a closed entry) leaves it and chooses again, null when it follows it.
   */
  entry: { backendSlot: number; serviceSlot: number; state: FlowState; idleSeconds: number; backendValid: boolean; offRing: boolean; left: SynChoice | null } | null;
  ring: { size: number; slot: number | null; backendSlot: number | null };
  /** The ring before the service's last change (the second chance's), or null when it has none. */
  previousRing: { size: number; slot: number; backendSlot: number | null; secondChance: boolean } | null;
  /** Where the packet goes: the forward rewrite's destination, and whether that backend holds ring slots or is marked down. */
  backend: { slot: number; addr: string; port: number; inRing: boolean; down: boolean } | null;
  /** The reply's rewrite: backend -> client leaves as VIP:port -> client. */
  vip: { addr: string; port: number } | null;
  /** The published table's generation (tables published since start). */
  generation: number;
}

/** The addon's question for q, or throws naming what is wrong. */
export function nativeExplainQuery(q: ExplainQuery): { family: Family; proto: number; client: Uint8Array; cport: number; vip: Uint8Array; vport: number; syn: 0 | 1 } {
  if (q.proto !== 'tcp' && q.proto !== 'udp') throw new RangeError(`explain: proto must be tcp or udp, got ${JSON.stringify(q.proto)}`);
  if (q.syn !== undefined && typeof q.syn !== 'boolean') throw new RangeError(`explain: syn must be true or false, got ${JSON.stringify(q.syn)}`);
  if (q.syn && q.proto !== 'tcp') throw new RangeError('explain: a SYN is a TCP packet: give proto tcp, or leave syn out for a UDP datagram');
  const fc = isIP(String(q.client));
  const fv = isIP(String(q.vip));
  if (!fc) throw new RangeError(`explain: client must be an IPv4 or IPv6 address, got ${JSON.stringify(q.client)}`);
  if (!fv) throw new RangeError(`explain: VIP must be an IPv4 or IPv6 address, got ${JSON.stringify(q.vip)}`);
  if (fc !== fv) throw new RangeError(`explain: client ${q.client} is IPv${fc} but VIP ${q.vip} is IPv${fv}`);
  for (const [k, v] of [['client port', q.clientPort], ['VIP port', q.vipPort]] as const) {
    if (!Number.isInteger(v) || v < 1 || v > 65535) throw new RangeError(`explain: ${k} must be an integer from 1 to 65535, got ${String(v)}`);
  }
  const family = fc as Family;
  const pad = (b: Buffer): Uint8Array => new Uint8Array(b.length === 16 ? b : Buffer.concat([b, Buffer.alloc(12)]));
  return { family, proto: q.proto === 'tcp' ? 6 : 17, client: pad(ipToBuffer(q.client, family)), cport: q.clientPort, vip: pad(ipToBuffer(q.vip, family)), vport: q.vipPort, syn: q.syn ? 1 : 0 };
}

/** Names the words of l4_explain's result for a question of `family` (dropReasons: the addon's layout's). */
export function decodeExplanation(w: Uint32Array, family: Family, dropReasons: readonly string[]): DataplaneExplanation {
  const F = EXPLAIN_FIELDS;
  const slot = (v: number): number | null => (v === NO_BACKEND ? null : v);
  const addr = (at: number): string => bufferToIp(new Uint8Array(w.buffer, w.byteOffset + at * 4, family === 4 ? 4 : 16));
  const verdict = (Object.keys(EXPLAIN_VERDICTS) as ExplainVerdict[]).find((k) => EXPLAIN_VERDICTS[k] === w[F.verdict]);
  if (!verdict) throw new Error(`explain: the addon returned verdict ${w[F.verdict]}, which src/ does not know`);
  const service = slot(w[F.service]);
  const backend = slot(w[F.backend]);
  const choice = (Object.keys(SYN_CHOICES) as Array<keyof typeof SYN_CHOICES>).find((k) => SYN_CHOICES[k] === w[F.synChoice]);
  if (!choice) throw new Error(`explain: the addon returned SYN choice ${w[F.synChoice]}, which src/ does not know`);
  return {
    verdict,
    dropReason: verdict === 'drop' ? dropReasons[w[F.dropReason]] ?? `reason ${w[F.dropReason]}` : null,
    serviceSlot: service,
    acl: { entries: w[F.aclEntries], index: slot(w[F.aclIndex]), allowed: w[F.aclAllowed] === 1 },
    rateLimit: w[F.rate] ? { rate: w[F.rate], burst: w[F.burst], tokens: w[F.rateTokensMilli] / 1000, allowsNewFlow: w[F.rateAllows] === 1 } : null,
    entry: w[F.flowFound]
      ? {
          backendSlot: w[F.flowBackend],
          serviceSlot: w[F.flowService],
          state: FLOW_STATES[w[F.flowClass]],
          idleSeconds: w[F.flowIdle],
          backendValid: w[F.flowValid] === 1,
          offRing: w[F.flowOffRing] === 1,
          left: choice === 'follows' ? null : choice,
        }
      : null,
    ring: { size: w[F.ringSize], slot: service !== null && w[F.ringSize] ? w[F.ringSlot] : null, backendSlot: slot(w[F.ringBackend]) },
    previousRing: w[F.prevRingSize]
      ? { size: w[F.prevRingSize], slot: w[F.prevRingSlot], backendSlot: slot(w[F.prevBackend]), secondChance: w[F.prevSecondChance] === 1 }
      : null,
    backend:
      backend === null
        ? null
        : {
            slot: backend,
            addr: addr(F.backendAddr),
            port: w[F.backendPort],
            inRing: (w[F.backendFlags] & BK_TABLE_FLAGS.IN_RING) !== 0,
            down: (w[F.backendFlags] & BK_TABLE_FLAGS.NO_SECOND_CHANCE) !== 0,
          },
    vip: service === null ? null : { addr: addr(F.vipAddr), port: w[F.vipPort] },
    generation: w[F.generation],
  };
}

/** A flow-move question: each planned service's ring as rows of MOVE_WORDS into `rings` (slots of the running table). */
export interface FlowMoveQuestion {
  services: Uint32Array;
  rings: Uint32Array;
}

/** One page's answer: per backend slot, live entries the planned rings send elsewhere (moved) or to the same backend (kept). */
export interface FlowMovesPage {
  moved: Uint32Array;
  kept: Uint32Array;
  next: number | null;
}
