// What a host tells its peers about itself beyond its health view (GET /cluster/v1/state, agreement.ts): its ring
// digests, each backend's state and weights, what it announces and which VIPs it has withdrawn because its tables
// disagree (disagreement.ts). Peers use the digests and announcements to decide on disagreement and show the rest in
// `l4nat cluster status` (view.ts). A peer's reply is parsed field by field: a field of the wrong type is left out
// (the peer is a host of the cluster, authenticated; this is against a different l4nat version, not an attacker).
import type { VipDisagreement } from './disagreement';

export interface BackendReport {
  /** up, down, draining or drained. */
  state: string;
  /** Configured weight, and the weight in the ring as last published (0: out of it). */
  weight: number;
  inRing: number;
}

export interface HostReport {
  /** Service id -> sha256 of its ring as published to the data plane. */
  rings: Record<string, string>;
  announced: { vips: string[]; returnRoutes: string[] };
  /** Service id -> backend id -> state and weights. */
  backends: Record<string, Record<string, BackendReport>>;
  /** VIPs whose rings differ from the cluster's majority (withdrawn, or about to be). */
  disagreement: VipDisagreement[];
}

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const strings = (v: unknown): string[] => (Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : []);
const num = (v: unknown): number => (typeof v === 'number' && Number.isFinite(v) ? v : 0);

/** A peer's reply body (JSON already parsed) as a HostReport; fields of the wrong type are left out. */
export function parseHostReport(body: unknown): HostReport {
  const b = isRecord(body) ? body : {};
  const rings: Record<string, string> = {};
  if (isRecord(b.rings)) for (const [k, v] of Object.entries(b.rings)) if (typeof v === 'string') rings[k] = v;
  const ann = isRecord(b.announced) ? b.announced : {};
  const backends: HostReport['backends'] = {};
  if (isRecord(b.backends)) {
    for (const [sid, bs] of Object.entries(b.backends)) {
      if (!isRecord(bs)) continue;
      backends[sid] = {};
      for (const [bid, x] of Object.entries(bs)) {
        if (isRecord(x) && typeof x.state === 'string') backends[sid][bid] = { state: x.state, weight: num(x.weight), inRing: num(x.inRing) };
      }
    }
  }
  const disagreement: VipDisagreement[] = [];
  if (Array.isArray(b.disagreement)) {
    for (const d of b.disagreement) {
      if (!isRecord(d) || typeof d.vip !== 'string' || (d.state !== 'differs' && d.state !== 'withdrawn')) continue;
      const services = (Array.isArray(d.services) ? d.services : []).filter(isRecord).map((s) => ({
        service: String(s.service),
        mine: String(s.mine),
        majority: String(s.majority),
        majorityPeers: strings(s.majorityPeers),
        votes: num(s.votes),
      }));
      disagreement.push({ vip: d.vip, state: d.state, since: num(d.since), agreeingSince: typeof d.agreeingSince === 'number' ? d.agreeingSince : null, services });
    }
  }
  return { rings, announced: { vips: strings(ann.vips), returnRoutes: strings(ann.returnRoutes) }, backends, disagreement };
}
