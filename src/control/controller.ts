// The control plane's state: the services as configured (file or flags) plus the operator's run-time
// changes (admin API), each backend's health and drain state, and what that makes of the data plane's
// table. This class is the one face the daemon, the admin API, the metrics and the cluster use; the work is
// done by one module per concern:
//   state.ts      what the control plane knows (services, run-time state per backend, last weights)
//   effective.ts  the table the data plane should have (drain, down, on_all_down)
//   plan.ts       plan a change beside the running state, make it current once published
//   queue.ts      the change queue: one change at a time, plan -> publish -> touch the runtime
//   checkers.ts   active health checks per backend
//   passive.ts    the passive check from the data plane's counters
//   drain.ts      drains and when they are done (paged flow counts)
//   slow-start.ts a backend coming up ramps its weight in a few ring rebuilds
//   sampler.ts    the interval the passive check and the drains sample the counters on
//   operations.ts API writes (add, remove, weight, drain, undrain)
//   reload.ts     config reload, all or nothing
//   views.ts      what the API, CLI, metrics and systemd show
//   flows.ts      flow-table pages, deletes and per-slot statistics
//   flow-sweep.ts the once-a-second sweep of silently expired entries out of the active-flow counts
//   plan-preview.ts  what a change would do before it is applied (POST /v1/plan)
//   explain-view.ts  the data plane's decision for one tuple, named (GET /v1/flows/explain)
import { EventEmitter } from 'events';
import { ConfigError, loadConfigFile, parseConfig, readToken } from '../config/load';
import type { ProbeFn } from '../health/checker';
import type { Logger } from '../util/log';
import type { BackendConfig, ServiceConfig } from '../config/model';
import type { CounterSnapshot, ExplainQuery } from '../dataplane/native';
import type { PublishResult } from './balancer';
import type { UpOptions } from '../config/options';
import type { SyncStats } from '../cluster/sync-stats';
import { HealthCheckers } from './checkers';
import { DrainSampler } from './drain';
import { explainTuple, type Explanation } from './explain-view';
import { FlowSweeper } from './flow-sweep';
import { SlowStartTimer } from './slow-start';
import type { EffectiveTable } from './effective';
import { FlowQueries, type FlowQuery, type FlowView } from './flows';
import { Operations, type BackendUpdate } from './operations';
import { backendWritesRefusal } from './cluster-writes';
import { PassiveCheck } from './passive';
import { planRuntime, type Change } from './plan';
import { PlanPreviewer, type PlanPreview } from './plan-preview';
import { ChangeQueue } from './queue';
import { planReload, reload, type ReloadRecord, type ReloadResult } from './reload';
import { cloneServices, ControlError, ControlState, type BackendRuntime, type BackendState, type BalancerLike, type Plan } from './state';
import { backendState, serviceView, servicesView, summary, type ServiceView, type ServicesView, type Summary } from './views';

export { ControlError, type BalancerLike, type BackendState } from './state';
export { DRAIN_DEADLINE_MAX_S, DRAIN_QUIET_MS } from './drain';
export type { ReloadRecord, ReloadResult } from './reload';
export type { BackendView, ServiceView, ServicesView, Summary } from './views';
export type { FlowQuery, FlowView } from './flows';
export type { Explanation } from './explain-view';
export type { PlanPreview } from './plan-preview';

/** A change to preview (POST /v1/plan): a reload (of the config file, or of this config text), or an API write. */
export type PlanRequest =
  | { reload: true }
  | { config: string }
  | { op: 'add'; service: string; backend: BackendConfig }
  | { op: 'remove' | 'drain' | 'undrain'; service: string; backend: string }
  | { op: 'weight'; service: string; backend: string; weight: number }
  | { op: 'max_flows'; service: string; backend: string; maxFlows: number | null };

export class Controller extends EventEmitter {
  private readonly state: ControlState;
  private readonly queue: ChangeQueue;
  private readonly flows: FlowQueries;
  private readonly checkers: HealthCheckers;
  private readonly passive: PassiveCheck;
  private readonly drains: DrainSampler;
  private readonly slowStart: SlowStartTimer;
  private readonly sweeper: FlowSweeper;
  private readonly ops: Operations;
  private readonly previewer: PlanPreviewer;
  readonly startedAt = new Date();
  lastReload: { at: string; ok: boolean; error?: string } | undefined;
  reloads = { ok: 0, failed: 0 };
  readonly reloadHistory: ReloadRecord[] = [];
  token: string | undefined;
  /** Flow-state sync's report (set by the cluster when cluster.sync is on; src/cluster/sync.ts). */
  syncStatus: (() => SyncStats | null) | null = null;

  constructor(
    private readonly balancer: BalancerLike,
    public opts: UpOptions,
    log: Logger,
    probeFn?: ProbeFn,
  ) {
    super();
    if (opts.admin.tokenFile) this.token = readToken(opts.admin.tokenFile);
    const state = (this.state = new ControlState(balancer, log));
    this.flows = new FlowQueries(state);
    const republish = (reason: string): Promise<PublishResult> => this.queue.republish(reason);
    const resetIfWanted = (s: ServiceConfig, key: string): Promise<void> => this.flows.resetIfWanted(s, key);
    this.checkers = new HealthCheckers(state, republish, resetIfWanted, probeFn);
    this.passive = new PassiveCheck(state, republish, resetIfWanted);
    this.drains = new DrainSampler(state, () => this.emit('change'));
    this.slowStart = new SlowStartTimer(state, republish);
    this.sweeper = new FlowSweeper(state);
    this.queue = new ChangeQueue(state, {
      syncChecker: (rt, s, b) => this.checkers.sync(rt, s, b),
      applied: () => {
        this.drains.updateTimer();
        this.passive.updateTimer();
        if (!this.state.stopping) this.slowStart.update();
      },
      published: () => this.emit('change'),
    });
    this.ops = new Operations(state, this.queue, backendWritesRefusal(opts));
    this.previewer = new PlanPreviewer(state, (p) => this.queue.effective(p));
  }

  get current(): readonly ServiceConfig[] {
    return this.state.services;
  }

  counters(): CounterSnapshot {
    return this.balancer.dp.counters();
  }

  /** Live flow-table entries, from the per-slot statistics (the last complete count). */
  flowCount(): number {
    return this.flows.flowCount();
  }

  /** Live flow-table entries as a count that starts now finds them. */
  countFlows(): Promise<number> {
    return this.flows.countFlows();
  }

  /** Publishes the configured services and starts their health checks. */
  async start(): Promise<PublishResult> {
    return this.queue.serialized(async () => {
      const r = await this.queue.publish(planRuntime(this.state, cloneServices(this.opts.services), 'config'), 'start');
      this.flows.flowStats(); // the first count, whole, now: later ones page through the table in the background
      this.state.running = true;
      this.sweeper.start();
      this.checkers.startAll();
      this.passive.updateTimer();
      return r;
    });
  }

  // Health as the ring sees it (scale-out: src/cluster/)

  /** The cluster's verdict on a backend given this host's own view (state.ts); null: this host's checks decide. */
  get healthVote(): ControlState['healthVote'] {
    return this.state.healthVote;
  }

  set healthVote(vote: ControlState['healthVote']) {
    this.state.healthVote = vote;
  }

  /** Awaited before a planned ring change, outside the change queue (queue.ts). */
  get beforePlannedChange(): ChangeQueue['beforePlannedChange'] {
    return this.queue.beforePlannedChange;
  }

  set beforePlannedChange(hold: ChangeQueue['beforePlannedChange']) {
    this.queue.beforePlannedChange = hold;
  }

  /** This host's own view of every backend (backend key -> healthy), before any cluster vote. */
  localHealth(): Map<string, boolean> {
    return new Map([...this.state.runtime].map(([k, rt]) => [k, this.state.locallyHealthy(rt)]));
  }

  /** The weights last published, by service id and backend id (0: out of the ring). */
  get publishedWeights(): ReadonlyMap<string, ReadonlyMap<string, number>> {
    return this.state.lastWeights;
  }

  /** Publishes the table again (the cluster's health verdict changed). */
  async republish(reason: string): Promise<PublishResult> {
    return this.queue.republish(reason);
  }

  /** The services as the data plane should see them (now, or after a planned change), and which have no healthy backend. */
  effective(p: Plan = this.state.currentPlan): EffectiveTable {
    return this.queue.effective(p);
  }

  /** The passive check's sample (a timer runs it once a second). */
  samplePassive(now = Date.now()): void {
    this.passive.sample(now);
  }

  /** The drains' sample (a timer runs it twice a second while one is under way). */
  sampleDrains(now = Date.now()): void {
    this.drains.sample(now);
  }

  // Operations (admin API, signals)

  /** Why backend changes are refused on this host (one of a cluster: change the config file), or null. */
  get backendWritesRefused(): string | null {
    return this.ops.refusal;
  }

  addBackend(sid: string, b: BackendConfig): Promise<{ service: string; backend: string }> {
    return this.ops.addBackend(sid, b);
  }

  removeBackend(sid: string, bid: string): Promise<void> {
    return this.ops.removeBackend(sid, bid);
  }

  /** A backend's new weight and/or max_flows (null: no limit), as one change. */
  updateBackend(sid: string, bid: string, u: BackendUpdate): Promise<void> {
    return this.ops.update(sid, bid, u);
  }

  /** Takes the backend out of the ring; its flows go on. Idempotent. `deadlineS`: flows left then are removed. */
  drain(sid: string, bid: string, deadlineS?: number): Promise<void> {
    return this.ops.drain(sid, bid, deadlineS);
  }

  /** Flow entries removed at drain deadlines since start. */
  get drainDeadlineRemovals(): number {
    return this.drains.removedAtDeadlines;
  }

  undrain(sid: string, bid: string): Promise<void> {
    return this.ops.undrain(sid, bid);
  }

  /** Re-reads the config file and applies all of it, or nothing (the error says why). */
  reload(): Promise<ReloadResult> {
    return reload(this, this.state, this.queue);
  }

  /** Graceful stop, step 1: empty rings (no new flows decided here), established flows keep going. */
  async quiesce(): Promise<void> {
    await this.queue.serialized(() => {
      this.state.stopping = true;
      return this.queue.publish(planRuntime(this.state, this.state.services, 'api'), 'shutdown: admitting no new flows');
    });
  }

  stop(): void {
    this.state.running = false;
    this.checkers.stopAll();
    this.drains.stop();
    this.passive.stop();
    this.slowStart.stop();
    this.sweeper.stop();
  }

  // Views (API, CLI, metrics, systemd status)

  backendState(s: ServiceConfig, b: BackendConfig): { state: BackendState; rt: BackendRuntime | undefined } {
    return backendState(this.state, s, b);
  }

  /** Everything about the services, for the API and `l4nat status`. */
  view(c: CounterSnapshot = this.balancer.dp.counters()): ServicesView {
    const now = Date.now();
    const fs = this.flows.flowStats();
    return servicesView(this.state, c, fs, this.flowCount(), now);
  }

  serviceView(s: ServiceConfig, c: CounterSnapshot, now = Date.now(), withHistory = false): ServiceView {
    return serviceView(this.state, s, c, this.flows.flowStats(), now, withHistory);
  }

  serviceById(sid: string): ServiceConfig {
    return this.state.services[this.state.find(sid).si];
  }

  summary(): Summary {
    return summary(this.state);
  }

  // What the data plane does, and would do (l4nat explain, l4nat reload --dry-run)

  /** The data plane's decision for one tuple's next packet, with slots named; reads only. */
  explain(q: ExplainQuery): Explanation {
    return explainTuple(this.state, q);
  }

  /** What a change would do, built by the code that applies it; nothing is applied (plan-preview.ts). */
  async plan(req: PlanRequest): Promise<PlanPreview> {
    const bk = (b: string | BackendConfig): string => (typeof b === 'string' ? b : b.addr.includes(':') ? `[${b.addr}]:${b.port}` : `${b.addr}:${b.port}`);
    const what = 'op' in req ? `api: ${req.op} ${bk(req.backend)} of ${req.service}` : 'config' in req ? 'reload of the config in the request' : 'reload';
    return this.previewer.preview(this.changeFor(req), what);
  }

  private changeFor(req: PlanRequest): Change {
    if ('op' in req) {
      this.ops.allowed(); // a preview of a change this host would refuse would mislead
      switch (req.op) {
        case 'add':
          return this.ops.addChange(req.service, req.backend);
        case 'remove':
          return this.ops.removeChange(req.service, req.backend);
        case 'weight':
          return this.ops.updateChange(req.service, req.backend, { weight: req.weight });
        case 'max_flows':
          return this.ops.updateChange(req.service, req.backend, { maxFlows: req.maxFlows });
        default:
          return this.ops.drainChange(req.service, req.backend, req.op === 'drain');
      }
    }
    const file = 'config' in req ? 'request body' : this.opts.configFile;
    if (!file) throw new ControlError(409, 'l4nat was started from flags, not from a config file: there is nothing to reload');
    try {
      const next = 'config' in req ? parseConfig(req.config, file) : loadConfigFile(file);
      return planReload(this.state, file, this.opts, next).change;
    } catch (e) {
      if (e instanceof ConfigError) throw new ControlError(400, e.message);
      throw e;
    }
  }

  // Flow table (l4nat flows)

  listFlows(q: FlowQuery): { flows: FlowView[]; truncated: boolean; next: number | null } {
    return this.flows.listFlows(q);
  }

  /** Removes matching entries; the data plane pages through the table (src/dataplane/native.ts). */
  deleteFlows(q: FlowQuery): Promise<number> {
    return this.flows.deleteFlows(q);
  }
}
