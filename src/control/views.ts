// What the API, `l4nat status`, the metrics and systemd's STATUS line show of the control plane: the services
// with each backend's state (up, down, draining, drained), weights, health, passive hold, drain progress,
// counters and live flows. Read-only: nothing here changes the state.
import type { ProbeRecord, Transition } from '../health/checker';
import { backendId, serviceId, type BackendConfig, type ServiceConfig } from '../config/model';
import { zeroObjectCounters, type CounterMap, type CounterSnapshot, type FlowStats } from '../dataplane/native';
import { backendKey } from '../dataplane/tables';
import { drainEstimate } from './drain';
import { rampOf, SLOW_START_STEPS } from './slow-start';
import type { BackendRuntime, BackendState, ControlState, DrainState } from './state';

export interface BackendView {
  id: string;
  name: string | null;
  addr: string;
  port: number;
  weight: number;
  effectiveWeight: number;
  state: BackendState;
  source: 'config' | 'api';
  health: { state: 'up' | 'down'; consecutiveSuccesses: number; consecutiveFailures: number; checks: { ok: number; failed: number }; lastCheck: ProbeRecord | null } | null;
  drain: DrainView | null;
  passive: { heldUntil: string; reason: string } | null;
  /** Ramping up under slow start: since when, at which step of how many (its weight is step/steps of it). */
  slowStart: { since: string; step: number; steps: number } | null;
  counters: CounterMap;
  /** Active flows pinned to this backend, closed TCP entries not counted (null: unknown): the data plane's count. */
  activeFlows: number | null;
  /** Its flow limit (null: none): at it, new flows go to the next candidate. */
  maxFlows: number | null;
  history?: { checks: ProbeRecord[]; transitions: Transition[] };
}

export interface DrainView {
  since: string;
  lastPacketAt: string;
  quietSeconds: number;
  /** Live flows left, from the last complete count (null: not counted yet, or the data plane cannot list flows). */
  liveFlows: number | null;
  /** The age of the oldest of them at that count, to 4 s. */
  oldestFlowSeconds: number | null;
  /** When the drain will likely be done: the rate its flows fell at so far, carried on; never after the deadline. */
  estimatedDoneAt: string | null;
  /** `drain --deadline`: when the flows left are removed. */
  deadline: string | null;
  /** Flow entries removed at the deadline. */
  removedAtDeadline: number | null;
  done: boolean;
  doneBy: string | null;
}

export interface ServiceView {
  id: string;
  name: string;
  vip: string;
  port: number;
  proto: string;
  hash: string;
  onAllDown: string;
  onDown: string;
  protections: { newFlowRate: { rate: number; burst: number } | null; allowSources: string[]; denySources: string[] };
  /** How new flows are admitted: the ring (maglev) or under a load bound (bounded, its factor), and the answer when every backend is full. */
  admission: { balance: 'maglev' | 'bounded'; balanceFactor: number | null; whenFull: 'drop' | 'reject' };
  allDown: boolean;
  healthCheck: ServiceConfig['health'];
  counters: CounterMap;
  activeFlows: number | null;
  backends: BackendView[];
}

export interface ServicesView {
  services: ServiceView[];
  dataplane: { counters: CounterMap; drops: CounterMap; heartbeatsMs: number[]; flows: number };
}

export interface Summary {
  services: number;
  backends: number;
  up: number;
  down: number;
  draining: number; // drained ones included
  allDown: string[];
}

/** A backend's state as shown: a drain wins over health. */
export function backendState(state: ControlState, s: ServiceConfig, b: BackendConfig): { state: BackendState; rt: BackendRuntime | undefined } {
  const rt = state.runtime.get(backendKey(s, b));
  if (rt?.drain) return { state: rt.drain.doneAt !== undefined ? 'drained' : 'draining', rt };
  return { state: state.healthy(rt) ? 'up' : 'down', rt };
}

/** The data plane's active-flow counts, if it keeps them (undefined: closed, or a data plane without them). */
function activeCounts(state: ControlState): { backends: Float64Array; services: Float64Array } | undefined {
  try {
    return state.balancer.dp.activeFlows?.();
  } catch {
    return undefined;
  }
}

/** One service; `fs` is the flow table's last per-slot count (undefined: unknown). */
export function serviceView(state: ControlState, s: ServiceConfig, c: CounterSnapshot, fs: FlowStats | undefined, now = Date.now(), withHistory = false): ServiceView {
  const { balancer } = state;
  const sid = serviceId(s);
  const slot = balancer.serviceSlot(sid);
  // Active flows: the data plane's counts, the figure bounded load and max_flows decide by (never below the live
  // open entries, above by those expired since the sweep passed: docs/dataplane.md); else the last paged count.
  const counts = activeCounts(state);
  const svcArr = counts?.services ?? fs?.services;
  const bkArr = counts?.backends ?? fs?.backends;
  const active = (arr: ArrayLike<number> | undefined, i: number | undefined): number | null => (arr && i !== undefined && i < arr.length ? arr[i] : null);
  const weights = state.lastWeights.get(sid);
  const ramps = s.backends.map((b) => rampOf(state.runtime.get(backendKey(s, b)), s.slowStartSeconds, now));
  // While one ramps, the published weights are SLOW_START_STEPS times over (slow-start.ts): shown as configured.
  const scale = ramps.some((x) => x !== undefined) ? SLOW_START_STEPS : 1;
  return {
    id: sid,
    name: s.name,
    vip: s.vip,
    port: s.port,
    proto: s.proto,
    hash: s.hash,
    onAllDown: s.onAllDown,
    onDown: s.onDown,
    protections: { newFlowRate: s.newFlowRate ?? null, allowSources: s.allowSources ?? [], denySources: s.denySources ?? [] },
    admission: { balance: s.balance ?? 'maglev', balanceFactor: s.balance === 'bounded' ? (s.balanceFactor ?? null) : null, whenFull: s.whenFull ?? 'drop' },
    allDown: state.allDown.has(sid),
    healthCheck: s.health,
    counters: (slot === undefined ? undefined : c.services.get(slot)) ?? zeroObjectCounters(),
    activeFlows: active(svcArr, slot),
    backends: s.backends.map((b, i) => {
      const { state: st, rt } = backendState(state, s, b);
      const bid = backendId(b, s.proto);
      const slotB = balancer.backendSlot(backendKey(s, b));
      const ch = rt?.checker;
      const v: BackendView = {
        id: bid,
        name: b.name ?? null,
        addr: b.addr,
        port: b.port,
        weight: b.weight,
        effectiveWeight: (weights?.get(bid) ?? 0) / scale,
        state: st,
        source: rt?.source ?? 'config',
        health: ch
          ? { state: ch.state, consecutiveSuccesses: ch.successes, consecutiveFailures: ch.failures, checks: { ...ch.checks }, lastCheck: ch.history[ch.history.length - 1] ?? null }
          : null,
        passive: rt?.passive?.heldUntil !== undefined ? { heldUntil: new Date(rt.passive.heldUntil).toISOString(), reason: rt.passive.reason ?? '' } : null,
        drain: rt?.drain ? drainView(rt.drain, now) : null,
        slowStart: ramps[i] !== undefined ? { since: new Date(rt!.slowStartSince!).toISOString(), step: ramps[i]!, steps: SLOW_START_STEPS } : null,
        counters: (slotB === undefined ? undefined : c.backends.get(slotB)) ?? zeroObjectCounters(),
        activeFlows: active(bkArr, slotB),
        maxFlows: b.maxFlows ?? null,
      };
      if (withHistory && ch) v.history = { checks: [...ch.history], transitions: [...ch.transitions] };
      return v;
    }),
  };
}

/** Every service and the data plane's totals; `flows` is the live flow count. */
export function servicesView(state: ControlState, c: CounterSnapshot, fs: FlowStats | undefined, flows: number, now = Date.now()): ServicesView {
  return {
    services: state.services.map((s) => serviceView(state, s, c, fs, now)),
    dataplane: { counters: c.total, drops: c.drops, heartbeatsMs: c.heartbeatsMs, flows },
  };
}

/** Backends by state, and the services without a healthy one (systemd STATUS, /v1/status, the cluster). */
export function summary(state: ControlState): Summary {
  let up = 0;
  let down = 0;
  let draining = 0;
  let n = 0;
  for (const s of state.services) {
    for (const b of s.backends) {
      n++;
      const st = backendState(state, s, b).state;
      if (st === 'up') up++;
      else if (st === 'down') down++;
      else draining++;
    }
  }
  return { services: state.services.length, backends: n, up, down, draining, allDown: [...state.allDown] };
}

function drainView(d: DrainState, now: number): DrainView {
  const iso = (t: number | undefined): string | null => (t === undefined ? null : new Date(t).toISOString());
  return {
    since: new Date(d.since).toISOString(),
    lastPacketAt: new Date(d.lastPacketAt).toISOString(),
    quietSeconds: Math.round((now - d.lastPacketAt) / 100) / 10,
    liveFlows: d.liveFlows ?? null,
    oldestFlowSeconds: d.lastCount && d.lastCount.live > 0 ? d.lastCount.oldestSeconds : null,
    estimatedDoneAt: iso(drainEstimate(d)),
    deadline: iso(d.deadlineAt),
    removedAtDeadline: d.removedAtDeadline ?? null,
    done: d.doneAt !== undefined,
    doneBy: d.doneBy ?? null,
  };
}
