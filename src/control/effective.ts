// The table the data plane should have, from the services and their backends' run-time state.
//
// Effective weight of a backend = its configured weight, or 0 (out of the ring, established flows kept)
// when it is draining or its health check says down. A service whose eligible backends are all down does
// what its on_all_down says: "drop" publishes an empty ring (new flows are dropped and counted as
// no_backend), "keep-last" keeps the ring it had before the last one fell (a drain still wins). While
// stopping, every ring is empty. A backend ramping up under slow start (slow-start.ts) has a part of its weight.
import { backendId, serviceId, type ServiceConfig, type ServiceSpec } from '../config/model';
import { backendKey } from '../dataplane/tables';
import { rampStep, SLOW_START_STEPS } from './slow-start';
import type { BackendRuntime, Plan } from './state';

export interface EffectiveTable {
  specs: ServiceSpec[];
  /** service id -> backend id -> effective weight (0: out of the ring). */
  weights: Map<string, Map<string, number>>;
  /** Services with an eligible backend but none healthy. */
  allDown: Set<string>;
  /** Backends (keys) whose slow-start ramp begins with this table: in the ring now, not in the last one published. */
  rampStarts: string[];
}

export interface EffectiveInputs {
  healthy(rt: BackendRuntime | undefined): boolean;
  /** The weights last published (keep-last takes a fallen service's ring from there). */
  lastWeights: ReadonlyMap<string, ReadonlyMap<string, number>>;
  stopping: boolean;
  /** The clock the slow-start ramps go by (ms). */
  now: number;
}

export function effectiveTable(p: Plan, inputs: EffectiveInputs): EffectiveTable {
  const { healthy, lastWeights, stopping, now } = inputs;
  const weights = new Map<string, Map<string, number>>();
  const allDown = new Set<string>();
  const rampStarts: string[] = [];
  const specs = p.services.map((s) => {
    const sid = serviceId(s);
    const rts = s.backends.map((b) => p.runtime.get(backendKey(s, b)));
    const eligible = s.backends.map((b, i) => b.weight > 0 && !rts[i]?.drain);
    let w = s.backends.map((b, i) => (eligible[i] && healthy(rts[i]) ? b.weight : 0));
    if (eligible.some(Boolean) && w.every((x) => x === 0)) {
      allDown.add(sid);
      if (s.onAllDown === 'keep-last') {
        const last = lastWeights.get(sid);
        w = s.backends.map((b, i) => (rts[i]?.drain ? 0 : last?.get(backendId(b, s.proto)) ?? 0)); // a drain still wins
      }
    }
    if (stopping) w = w.map(() => 0);
    if (s.slowStartSeconds) w = rampedWeights(s, w, rts, lastWeights.get(sid), now, rampStarts);
    weights.set(sid, new Map(s.backends.map((b, i) => [backendId(b, s.proto), w[i]])));
    return {
      vip: s.vip,
      family: s.family,
      port: s.port,
      proto: s.proto,
      hash: s.hash,
      backends: s.backends.map((b, i) => ({
        addr: b.addr,
        family: b.family,
        port: b.port,
        weight: w[i],
        ...(eligible[i] && !healthy(rts[i]) ? { down: true } : {}),
        ...(b.maxFlows !== undefined ? { maxFlows: b.maxFlows } : {}),
      })),
      // Data-plane protections and timeouts ride along with the spec (tables.ts ServiceProtections).
      ...(s.timeouts ? { timeouts: s.timeouts } : {}),
      ...(s.newFlowRate ? { newFlowRate: s.newFlowRate } : {}),
      ...(s.allowSources ? { allowSources: s.allowSources } : {}),
      ...(s.denySources ? { denySources: s.denySources } : {}),
      ...(s.balance ? { balance: s.balance } : {}),
      ...(s.balanceFactor !== undefined ? { balanceFactor: s.balanceFactor } : {}),
      ...(s.whenFull ? { whenFull: s.whenFull } : {}),
    };
  });
  return { specs, weights, allDown, rampStarts };
}

/**
 * A slow-start service's weights: a backend in the ring now that was not in the last table published begins its
 * ramp (noted in `starts`; not at the service's first table, where every backend comes up together), and a backend
 * ramping has step/S of its weight while the others keep theirs (all published S times over, the same ring).
 */
function rampedWeights(s: ServiceConfig, w: number[], rts: Array<BackendRuntime | undefined>, last: ReadonlyMap<string, number> | undefined, now: number, starts: string[]): number[] {
  const steps = s.backends.map((b, i) => {
    if (w[i] === 0) return undefined;
    if (last && !last.get(backendId(b, s.proto))) {
      starts.push(backendKey(s, b));
      return 1;
    }
    const since = rts[i]?.slowStartSince;
    return since === undefined ? undefined : rampStep(since, s.slowStartSeconds!, now);
  });
  if (steps.every((x) => x === undefined)) return w;
  return w.map((x, i) => x * (steps[i] ?? SLOW_START_STEPS));
}
