// Plan, then commit: the run-time state a change would leave is built beside the running one (plan), and made
// current only once the data plane took the table it makes (applyPlan). A refused table leaves the running
// state as it was, health checkers included.
import { checkServices, type BackendConfig, type ServiceConfig } from '../config/model';
import { backendKey, type TableOptions } from '../dataplane/tables';
import { ControlError, type BackendRuntime, type ControlState, type Plan } from './state';

/** A planned change as built from the state it will apply to: undefined plan = nothing to do. */
export interface Change {
  plan: Plan | undefined;
  /** What the published table's log line says, when the plan knows more than the request (a weight's old value). */
  reason?: string;
  tableOpts?: TableOptions;
  extra?: Record<string, unknown>;
  /** Runs in the queue once the table is in, before the next change is built (a reload's new options). */
  applied?: () => void;
}

/**
 * The run-time state the services would have, without touching the running one. Backends new to the
 * controller take `origin` as their source; a config plan (start, reload) makes every backend in the file a
 * config backend again. A backend whose check goes away has none in the plan (up); one whose check changes
 * keeps its current checker's state (the replacement inherits it); a new check starts up.
 */
export function planRuntime(state: ControlState, services: ServiceConfig[], origin: 'config' | 'api'): Plan {
  const runtime = new Map<string, BackendRuntime>();
  for (const s of services) {
    for (const b of s.backends) {
      const key = backendKey(s, b);
      const cur = state.runtime.get(key);
      const rt: BackendRuntime = cur ? { ...cur } : { key, source: origin };
      if (origin === 'config') rt.source = 'config';
      if (!s.health) {
        rt.checker = undefined;
        rt.checkerIdent = undefined;
      }
      rt.passive = s.passive ? (cur?.passive ?? { samples: [] }) : undefined;
      runtime.set(key, rt);
    }
  }
  return { services, runtime };
}

/** A plan for a new service set, validated first (400 with the reason). */
export function planServices(state: ControlState, next: ServiceConfig[], origin: 'config' | 'api', tableOpts: TableOptions = state.balancer.tableOptions): Plan {
  try {
    checkServices(next, tableOpts);
  } catch (e) {
    throw new ControlError(400, (e as Error).message);
  }
  return planRuntime(state, next, origin);
}

/**
 * Makes a published plan current: backends gone lose their checker, and `syncChecker` gives each backend left
 * the checker its service's check asks for (kept, replaced or dropped).
 */
export function applyPlan(state: ControlState, p: Plan, syncChecker: (rt: BackendRuntime, s: ServiceConfig, b: BackendConfig) => void): void {
  for (const [key, rt] of state.runtime) {
    if (p.runtime.has(key)) continue;
    rt.checker?.stop();
    state.runtime.delete(key);
  }
  state.services = p.services;
  for (const s of p.services) {
    for (const b of s.backends) {
      const key = backendKey(s, b);
      const next = p.runtime.get(key)!;
      let rt = state.runtime.get(key);
      if (rt) {
        rt.source = next.source;
        rt.drain = next.drain;
        rt.passive = next.passive;
      } else {
        rt = { key, source: next.source, drain: next.drain, passive: next.passive };
        state.runtime.set(key, rt);
      }
      syncChecker(rt, s, b);
    }
  }
}
