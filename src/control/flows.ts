// The flow table as the control plane reads it (l4nat flows, the API, the views): pages of entries named by
// service and backend, deletes by backend slot and/or client, and the per-slot statistics. Every read looks at
// a bounded part of the table; a large one is never walked at once on the JS thread.
import { backendId, serviceId, type BackendConfig, type ServiceConfig } from '../config/model';
import type { FlowEntry, FlowFilter, FlowPage, FlowState, FlowStats } from '../dataplane/native';
import { FlowStatsSweep } from '../dataplane/flow-stats';
import { backendKey } from '../dataplane/tables';
import { ControlError, type BalancerLike, type ControlState } from './state';

/** Statistics older than this are counted again when asked for. */
const FLOW_STATS_MAX_AGE_MS = 1_000;

export interface FlowQuery {
  service?: string;
  backend?: string;
  client?: string;
  state?: FlowState[];
  limit?: number;
  cursor?: number;
}

export interface FlowView extends FlowEntry {
  service: string | null;
  backend: string | null;
  backendName: string | null;
}

/** One bounded page of the flow table (a data plane that cannot page lists what matches in one go). */
export function flowPage(dp: BalancerLike['dp'], filter: FlowFilter, maxCalls = 1): FlowPage {
  if (dp.flowPage) return dp.flowPage(filter, maxCalls);
  if (!dp.flows) throw new ControlError(501, 'this data plane build cannot list flows');
  return { flows: dp.flows(filter), next: null };
}

/** A running backend by its slot in the data plane's table: its service and backend ids, name and config. */
export interface SlotName {
  service: string;
  backend: string;
  name?: string;
  s: ServiceConfig;
  b: BackendConfig;
}

/** slot -> service and backend ids, for naming the backend of a flow entry (or of an explanation, explain-view.ts). */
export function backendSlotNames(state: ControlState): Map<number, SlotName> {
  const m = new Map<number, SlotName>();
  for (const s of state.services) {
    for (const b of s.backends) {
      const slot = state.balancer.backendSlot(backendKey(s, b));
      if (slot !== undefined) m.set(slot, { service: serviceId(s), backend: backendId(b, s.proto), name: b.name, s, b });
    }
  }
  return m;
}

export class FlowQueries {
  /** Live flow-table entries per slot, the last complete paged pass (one a second at most). */
  private readonly stats: FlowStatsSweep | undefined;

  constructor(private readonly state: ControlState) {
    const dp = state.balancer.dp;
    const page = dp.flowStatsPage ? (c: number) => dp.flowStatsPage!(c) : dp.flowStats ? () => ({ ...dp.flowStats!(), next: null }) : undefined;
    this.stats = page && new FlowStatsSweep(page, FLOW_STATS_MAX_AGE_MS);
  }

  /** Per-slot statistics of the last complete count (starting the next one if it is old); undefined: unknown. */
  flowStats(): FlowStats | undefined {
    return this.stats?.get();
  }

  /** Live flow-table entries, from the per-slot statistics (the last complete count). */
  flowCount(): number {
    return this.flowStats()?.total ?? this.state.balancer.dp.flowCount();
  }

  /** Live flow-table entries as a count that starts now finds them. */
  async countFlows(): Promise<number> {
    return (await this.stats?.fresh())?.total ?? this.state.balancer.dp.flowCount();
  }

  /**
   * One page of flow-table entries: the data plane looks at a bounded part of the table, and `next` says where
   * to go on. A backend id that several services share lists one page of each one's flows (truncated: there
   * may be more; give the service too to page through them).
   */
  listFlows(q: FlowQuery): { flows: FlowView[]; truncated: boolean; next: number | null } {
    const dp = this.state.balancer.dp;
    if (!dp.flows) throw new ControlError(501, 'this data plane build cannot list flows');
    if (q.cursor !== undefined && dp.flowCapacity !== undefined && q.cursor > dp.flowCapacity) {
      throw new ControlError(400, `cursor must be the next of a previous page, from 0 to the flow table's capacity ${dp.flowCapacity}, got ${q.cursor}`);
    }
    const limit = q.limit ?? 1000;
    const names = backendSlotNames(this.state);
    const base: FlowFilter = {
      ...(q.client !== undefined ? { client: q.client } : {}),
      ...(q.state?.length ? { states: q.state } : {}),
    };
    let raw: FlowEntry[] = [];
    let next: number | null = null;
    let more = false; // a page that did not reach the end of the table
    const svcSlot = q.service !== undefined && q.backend === undefined ? this.serviceSlotOf(q.service) : undefined;
    const slots = svcSlot === undefined ? this.filterSlots(q) : undefined;
    if (slots && slots.length > 1) {
      if (q.cursor !== undefined) throw new ControlError(400, `backend ${q.backend ?? ''} is in ${slots.length} services: give service too to page through its flows`);
      for (const slot of slots) {
        const page = flowPage(dp, { ...base, backendSlot: slot, limit: limit + 1 - raw.length });
        raw.push(...page.flows);
        more ||= page.next !== null;
        if (raw.length > limit) break;
      }
    } else {
      const filter: FlowFilter = {
        ...base,
        ...(slots ? { backendSlot: slots[0] } : {}),
        ...(svcSlot !== undefined ? { serviceSlot: svcSlot } : {}),
        limit: limit + 1,
        cursor: q.cursor ?? 0,
      };
      const page = flowPage(dp, filter);
      raw = page.flows;
      next = page.next;
    }
    const truncated = raw.length > limit || next !== null || more;
    const flows = raw.slice(0, limit).map((f) => {
      const n = names.get(f.backendSlot);
      return { ...f, service: n?.service ?? null, backend: n?.backend ?? null, backendName: n?.name ?? null };
    });
    return { flows, truncated, next };
  }

  /** Removes matching entries; the data plane pages through the table (src/dataplane/native.ts). */
  async deleteFlows(q: FlowQuery): Promise<number> {
    const dp = this.state.balancer.dp;
    if (!dp.deleteFlows) throw new ControlError(501, 'this data plane build cannot delete flows');
    if (q.backend === undefined && q.service === undefined && q.client === undefined) {
      throw new ControlError(400, 'give service, backend and/or client: deleting every flow is refused');
    }
    const slots = this.filterSlots(q);
    let n = 0;
    for (const slot of slots ?? [undefined]) {
      n += await dp.deleteFlows({ ...(slot !== undefined ? { backendSlot: slot } : {}), ...(q.client !== undefined ? { client: q.client } : {}) });
    }
    this.state.log.warn({ event: 'flows_deleted', ...q, flows: n }, `${n} flow(s) removed from the flow table`);
    return n;
  }

  /** on_down: reset — removes the flows of a backend that went down; their next packets meet the new ring. */
  async resetIfWanted(s: ServiceConfig, key: string): Promise<void> {
    const { balancer, log } = this.state;
    if (s.onDown !== 'reset' || !balancer.dp.deleteFlows) return;
    const slot = balancer.backendSlot(key);
    if (slot === undefined) return;
    try {
      const n = await balancer.dp.deleteFlows({ backendSlot: slot });
      const bid = key.split('|')[1];
      log.warn({ event: 'backend_flows_reset', service: serviceId(s), backend: bid, flows: n }, `backend ${bid}: ${n} flow(s) removed (on_down: reset); their next packets go to another backend, which resets TCP`);
    } catch (err) {
      log.error({ err }, 'removing the flows of a down backend failed');
    }
  }

  /** The backend slots a filter names: one backend (id, optionally within a service) or every backend of a service. */
  private filterSlots(q: FlowQuery): number[] | undefined {
    if (q.backend === undefined && q.service === undefined) return undefined;
    const out: number[] = [];
    for (const s of this.state.services) {
      if (q.service !== undefined && serviceId(s) !== q.service) continue;
      for (const b of s.backends) {
        if (q.backend !== undefined && backendId(b, s.proto) !== q.backend) continue;
        const slot = this.state.balancer.backendSlot(backendKey(s, b));
        if (slot !== undefined) out.push(slot);
      }
    }
    if (!out.length) {
      if (q.service !== undefined) this.state.find(q.service, q.backend);
      throw new ControlError(404, `no backend ${q.backend ?? ''} in any service`);
    }
    return out;
  }

  private serviceSlotOf(sid: string): number {
    this.state.find(sid);
    const slot = this.state.balancer.serviceSlot(sid);
    if (slot === undefined) throw new ControlError(404, `service ${sid} is not in the data plane table`);
    return slot;
  }
}
