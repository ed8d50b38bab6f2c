// What the control plane knows, shared by its modules (src/control/): the services as they run, each backend's
// run-time state (health checker, passive check, drain), the weights last published and which services have
// no healthy backend. Only the change queue (queue.ts) replaces the services and the run-time map, and only once
// the data plane took the table they make; the samplers (passive.ts, drain.ts) update the state objects of
// running backends in place.
import type { HealthChecker } from '../health/checker';
import type { Logger } from '../util/log';
import { backendId, serviceId, type ServiceConfig, type ServiceSpec } from '../config/model';
import type { CounterSnapshot, DataplaneExplanation, ExplainQuery, FlowEntry, FlowFilter, FlowMoveQuestion, FlowMovesPage, FlowPage, FlowStats } from '../dataplane/native';
import type { ProbingDataplane } from '../health/dataplane-probe';
import type { FlowStatsPage } from '../dataplane/flow-stats';
import type { TableOptions } from '../dataplane/tables';
import type { PublishResult } from './balancer';

/** What the controller needs of the Balancer (a fake in unit tests). */
export interface BalancerLike {
  setServices(services: ServiceSpec[], tableOpts?: TableOptions): Promise<PublishResult>;
  readonly tableOptions: Readonly<TableOptions>;
  backendSlot(key: string): number | undefined;
  serviceSlot(id: string): number | undefined;
  /** The service specs as last handed to the data plane (effective weights): what its rings were built from. */
  readonly current?: readonly ServiceSpec[];
  readonly dp: {
    counters(): CounterSnapshot;
    flowCount(): number;
    flows?(filter: FlowFilter): FlowEntry[];
    flowPage?(filter: FlowFilter, maxCalls?: number): FlowPage;
    flowStats?(): FlowStats;
    /** One page of flowStats (src/dataplane/flow-stats.ts): preferred, so no reader walks the whole table at once. */
    flowStatsPage?(cursor: number): FlowStatsPage;
    /** The active-flow counts by slot (admission's figure, native/core/flow_table.h); preferred by the views. */
    activeFlows?(): { backends: Float64Array; services: Float64Array };
    /** Frees entries expired past the sweep's margin from `cursor` on (flow-sweep.ts pages through the table). */
    sweepFlows?(cursor: number, maxScan: number): { freed: number; next: number | null };
    /** Flow-table entries: cursors run from 0 to this. */
    readonly flowCapacity?: number;
    deleteFlows?(filter: FlowFilter): number | Promise<number>;
    /** What the data plane would do with one tuple's packet (src/dataplane/explain.ts); reads only. */
    explain?(q: ExplainQuery): DataplaneExplanation;
    /** One page of a flow-move question (a planned change's rings against the live entries); reads only. */
    flowMovesPage?(q: FlowMoveQuestion, cursor: number): FlowMovesPage;
    probe?: ProbingDataplane['probe'];
    probeState?: ProbingDataplane['probeState'];
  };
}

/** A refused request: `status` is the HTTP status the admin API answers with. */
export class ControlError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

export interface DrainState {
  since: number; // Date.now()
  lastPackets: number;
  lastPacketAt: number;
  liveFlows?: number; // from the flow table's last complete count, when the data plane can list flows
  flowsCheckedAt?: number; // when the last count started
  count?: { cursor: number; live: number; oldest: number }; // a count under way: a bounded part of the table per sample
  /** The first and the last complete count: when it started and what it found (the estimate's rate). */
  firstCount?: { at: number; live: number };
  lastCount?: { at: number; live: number; oldestSeconds: number };
  /** `drain --deadline`: what is left then is removed from the flow table. */
  deadlineAt?: number;
  removedAtDeadline?: number; // flow entries removed at the deadline, once done
  doneAt?: number;
  doneBy?: string;
}

export interface PassiveSample {
  t: number;
  newFlows: number;
  answered: number;
  out: number;
  resets: number;
}

export interface PassiveState {
  samples: PassiveSample[];
  heldUntil?: number; // out of the ring until then
  reason?: string;
}

export interface BackendRuntime {
  key: string;
  source: 'config' | 'api';
  drain?: DrainState;
  passive?: PassiveState;
  checker?: HealthChecker;
  checkerIdent?: string;
  /** When this host saw the backend come up in a service with slow start (its ramp: slow-start.ts). */
  slowStartSince?: number;
}

export type BackendState = 'up' | 'down' | 'draining' | 'drained';

/**
 * A change before it is applied: the services as they will be, and each of their backends' run-time state as it
 * will be (copies; drain and passive state objects are shared with the running ones, which go on sampling them).
 * A copied entry keeps its current checker even when the check changes: the replacement inherits its state, and
 * is made only once the table is in (plan.ts applyPlan).
 */
export interface Plan {
  services: ServiceConfig[];
  runtime: Map<string, BackendRuntime>;
}

export function cloneServices(services: readonly ServiceConfig[]): ServiceConfig[] {
  return services.map((s) => ({ ...s, backends: s.backends.map((b) => ({ ...b })) }));
}

export class ControlState {
  services: ServiceConfig[] = [];
  readonly runtime = new Map<string, BackendRuntime>();
  lastWeights = new Map<string, Map<string, number>>(); // service id -> backend id -> published weight
  readonly allDown = new Set<string>(); // services currently without a healthy backend
  stopping = false; // quiesce(): every ring empty
  running = false; // start() done: checkers of backends added later start at once

  /**
   * Scale-out (src/cluster/): the cluster's verdict on a backend given this host's own view, so that every host
   * builds the same ring. null: this host's own checks decide alone.
   */
  healthVote: ((key: string, locallyHealthy: boolean) => boolean) | null = null;

  constructor(
    readonly balancer: BalancerLike,
    readonly log: Logger,
  ) {}

  /** The running services and run-time state, as a plan (what a republish publishes again). */
  get currentPlan(): Plan {
    return { services: this.services, runtime: this.runtime };
  }

  /** Indexes of a service and one of its backends; 404 naming what is missing. */
  find(sid: string, bid?: string): { si: number; bi: number } {
    const si = this.services.findIndex((s) => serviceId(s) === sid);
    if (si < 0) throw new ControlError(404, `no service ${sid}`);
    if (bid === undefined) return { si, bi: -1 };
    const s = this.services[si];
    const bi = s.backends.findIndex((b) => backendId(b, s.proto) === bid);
    if (bi < 0) throw new ControlError(404, `no backend ${bid} in service ${sid}`);
    return { si, bi };
  }

  /** In the ring as far as health goes: this host's checks, then the cluster's vote on them. */
  healthy(rt: BackendRuntime | undefined): boolean {
    const local = this.locallyHealthy(rt);
    return rt && this.healthVote ? this.healthVote(rt.key, local) : local;
  }

  /** Active check up (or none) and not held out by the passive check. */
  locallyHealthy(rt: BackendRuntime | undefined): boolean {
    return (!rt?.checker || rt.checker.state === 'up') && rt?.passive?.heldUntil === undefined;
  }
}
