// `l4nat cluster status` / GET /v1/cluster: every host's view side by side, as this host sees them — its own report
// and each peer's last answer over the health-agreement channel (host-report.ts). Per service: each host's ring
// digest, marked against the digest a strict majority of the fresh hosts holds (the same count disagreement.ts
// acts on), and each backend's state and weights per host. Per host: whether its view is fresh (answered within
// peer_timeout; only fresh views vote), its age, what it announces and which VIPs it has withdrawn because its tables
// disagree. Pure. Layers: agreement.ts, host-report.ts, disagreement.ts → this file → index.ts.
import type { PeerView } from './agreement';
import { strictMajority, type VipDisagreement } from './disagreement';
import type { BackendReport, HostReport } from './host-report';

export type PeerFreshness = 'self' | 'fresh' | 'stale' | 'no answer';
export type RingMark = 'majority' | 'differs' | 'no majority' | 'stale' | 'absent';

export interface ClusterHostView {
  host: string;
  peer: PeerFreshness;
  /** ms since its last answer (null: never answered; 0 for this host). */
  ageMs: number | null;
  /** Why its last poll failed, if it did. */
  error: string | null;
  /** VIPs it announces (null: unknown, never answered). */
  announced: string[] | null;
  disagreement: VipDisagreement[];
}

export interface ClusterServiceView {
  service: string;
  /** The digest a strict majority of the fresh hosts (this one included) holds, or null. */
  majority: string | null;
  rings: Record<string, { digest: string | null; mark: RingMark }>;
  backends: Array<{ backend: string; hosts: Record<string, BackendReport | null> }>;
}

export interface ClusterView {
  self: string;
  peerTimeoutSeconds: number;
  disagreementWithdrawAfterSeconds: number;
  hosts: ClusterHostView[];
  services: ClusterServiceView[];
}

export interface ClusterViewInput {
  self: string;
  mine: HostReport;
  peers: readonly PeerView[];
  now: number;
  peerTimeoutSeconds: number;
  disagreementWithdrawAfterSeconds: number;
}

function freshness(v: PeerView, now: number, timeoutMs: number): PeerFreshness {
  if (v.at === undefined) return 'no answer';
  return now - v.at <= timeoutMs ? 'fresh' : 'stale';
}

export function buildClusterView(i: ClusterViewInput): ClusterView {
  const timeoutMs = i.peerTimeoutSeconds * 1000;
  const hosts: ClusterHostView[] = [{ host: i.self, peer: 'self', ageMs: 0, error: null, announced: i.mine.announced.vips, disagreement: i.mine.disagreement }];
  const reports = new Map<string, HostReport | undefined>([[i.self, i.mine]]);
  for (const v of i.peers) {
    const f = freshness(v, i.now, timeoutMs);
    hosts.push({ host: v.peer, peer: f, ageMs: v.at === undefined ? null : i.now - v.at, error: v.error ?? null, announced: v.report?.announced.vips ?? null, disagreement: v.report?.disagreement ?? [] });
    reports.set(v.peer, v.report);
  }
  const voting = new Set(hosts.filter((h) => h.peer === 'self' || h.peer === 'fresh').map((h) => h.host));
  const serviceIds = new Set<string>();
  for (const r of reports.values()) if (r) for (const sid of [...Object.keys(r.rings), ...Object.keys(r.backends)]) serviceIds.add(sid);
  const services = [...serviceIds].sort().map((service): ClusterServiceView => {
    const majority = strictMajority([...voting].flatMap((h) => reports.get(h)?.rings[service] ?? []));
    const rings: ClusterServiceView['rings'] = {};
    const backendIds = new Set<string>();
    for (const h of hosts) {
      const r = reports.get(h.host);
      const digest = r?.rings[service] ?? null;
      for (const b of Object.keys(r?.backends[service] ?? {})) backendIds.add(b);
      let mark: RingMark;
      if (digest === null) mark = 'absent';
      else if (!voting.has(h.host)) mark = 'stale';
      else if (majority === null) mark = 'no majority';
      else mark = digest === majority ? 'majority' : 'differs';
      rings[h.host] = { digest, mark };
    }
    const backends = [...backendIds].sort().map((backend) => ({
      backend,
      hosts: Object.fromEntries(hosts.map((h) => [h.host, reports.get(h.host)?.backends[service]?.[backend] ?? null])),
    }));
    return { service, majority, rings, backends };
  });
  return { self: i.self, peerTimeoutSeconds: i.peerTimeoutSeconds, disagreementWithdrawAfterSeconds: i.disagreementWithdrawAfterSeconds, hosts, services };
}
