// `l4nat explain` / GET /v1/flows/explain: the data plane's decision chain for one tuple (native/core/explain.c,
// decoded by src/dataplane/explain.ts), with slots named: the service and backend ids, the source-list entry
// that decided, and the control plane's view of the backend (up, down, draining, drained).
import { serviceId, type ServiceConfig, type ServiceSpec } from '../config/model';
import type { DataplaneExplanation, ExplainQuery } from '../dataplane/native';
import type { SynChoice } from '../dataplane/explain';
import { backendSlotNames } from './flows';
import { ControlError, type BackendState, type ControlState } from './state';
import { backendState } from './views';

const endpoint = (addr: string, port: number): string => (addr.includes(':') ? `[${addr}]:${port}` : `${addr}:${port}`);

export interface Explanation {
  /** packet: the tuple's next packet, or a client's SYN (without ACK), which may leave a live entry (`flowEntry.left`). */
  tuple: { proto: 'tcp' | 'udp'; client: string; vip: string; packet: 'next' | 'syn' };
  /** entry: forwarded by its flow-table entry; ring: by the ring (a new entry pins it); drop: dropped for dropReason. */
  verdict: DataplaneExplanation['verdict'];
  dropReason: string | null;
  service: { id: string; name: string | null } | null;
  acl: { entries: number; allowed: boolean; matched: { action: 'allow' | 'deny'; cidr: string } | null };
  rateLimit: DataplaneExplanation['rateLimit'];
  /** left: why the packet leaves the entry and chooses again (a SYN on it, or the next packet of a closed entry); null: it follows it. */
  flowEntry: { backend: string | null; state: string; idleSeconds: number; backendStillServes: boolean; pinnedAgainstRing: boolean; left: SynChoice | null } | null;
  ring: { generation: number; size: number; slot: number | null; backend: string | null };
  previousRing: { size: number; slot: number; backend: string | null; secondChance: boolean } | null;
  backend: { id: string; name: string | null; state: BackendState | null; inRing: boolean; markedDown: boolean } | null;
  /** The two rewrites: the client's packets leave for the backend, the backend's replies leave from the VIP. */
  rewrite: { forward: { before: string; after: string }; reply: { before: string; after: string } } | null;
}

/** The source-list entry at `index` as the table lays them out: the allow entries, then the deny entries (tables.ts). */
function aclEntry(spec: Partial<Pick<ServiceConfig, 'allowSources' | 'denySources'>> | undefined, index: number | null): { action: 'allow' | 'deny'; cidr: string } | null {
  if (index === null || !spec) return null;
  const allow = spec.allowSources ?? [];
  if (index < allow.length) return { action: 'allow', cidr: allow[index] };
  const deny = spec.denySources ?? [];
  return index - allow.length < deny.length ? { action: 'deny', cidr: deny[index - allow.length] } : null;
}

export function explainTuple(state: ControlState, q: ExplainQuery): Explanation {
  const dp = state.balancer.dp;
  if (!dp.explain) throw new ControlError(501, 'this data plane cannot explain a tuple');
  let x: DataplaneExplanation;
  try {
    x = dp.explain(q);
  } catch (e) {
    if (e instanceof RangeError) throw new ControlError(400, e.message);
    throw e;
  }
  const names = backendSlotNames(state);
  const svc = x.serviceSlot === null ? undefined : state.services.find((s) => state.balancer.serviceSlot(serviceId(s)) === x.serviceSlot);
  const sid = svc ? serviceId(svc) : undefined;
  const published = (state.balancer.current ?? []).find((s: ServiceSpec) => serviceId(s) === sid) as Partial<ServiceConfig> | undefined;
  const idOf = (slot: number | null): string | null => (slot === null ? null : names.get(slot)?.backend ?? `slot ${slot}`);
  const bk = x.backend ? names.get(x.backend.slot) : undefined;
  const client = endpoint(q.client, q.clientPort);
  const vip = endpoint(q.vip, q.vipPort);
  return {
    tuple: { proto: q.proto, client, vip, packet: q.syn ? 'syn' : 'next' },
    verdict: x.verdict,
    dropReason: x.dropReason,
    service: sid ? { id: sid, name: svc!.name } : null,
    acl: { entries: x.acl.entries, allowed: x.acl.allowed, matched: aclEntry(published ?? svc, x.acl.index) },
    rateLimit: x.rateLimit,
    flowEntry: x.entry
      ? { backend: idOf(x.entry.backendSlot), state: x.entry.state, idleSeconds: x.entry.idleSeconds, backendStillServes: x.entry.backendValid, pinnedAgainstRing: x.entry.offRing, left: x.entry.left }
      : null,
    ring: { generation: x.generation, size: x.ring.size, slot: x.ring.slot, backend: idOf(x.ring.backendSlot) },
    previousRing: x.previousRing ? { size: x.previousRing.size, slot: x.previousRing.slot, backend: idOf(x.previousRing.backendSlot), secondChance: x.previousRing.secondChance } : null,
    backend: x.backend
      ? {
          id: bk?.backend ?? endpoint(x.backend.addr, x.backend.port),
          name: bk?.name ?? null,
          state: bk ? backendState(state, bk.s, bk.b).state : null,
          inRing: x.backend.inRing,
          markedDown: x.backend.down,
        }
      : null,
    rewrite:
      x.backend && x.vip
        ? {
            forward: { before: `${client} -> ${vip}`, after: `${client} -> ${endpoint(x.backend.addr, x.backend.port)}` },
            reply: { before: `${endpoint(x.backend.addr, x.backend.port)} -> ${client}`, after: `${endpoint(x.vip.addr, x.vip.port)} -> ${client}` },
          }
        : null,
  };
}
