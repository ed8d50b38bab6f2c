// The control plane's state: the services as configured (file or flags) plus the operator's run-time
// changes (admin API), each backend's health and drain state, and what that makes of the data plane's
// table. Every change goes through one path, one change at a time (API writes, reloads, health verdicts,
// drains): plan the next services and run-time state without touching the running ones, publish the table
// they make through the Balancer (atomic), and only once the data plane took it make the plan current (start,
// replace or stop health checkers). A rejected table leaves everything as it was. Each change logs one
// structured event with the ring slots it moved.
//
// Effective weight of a backend = its configured weight, or 0 (out of the ring, established flows kept)
// when it is draining or its health check says down. A service whose eligible backends are all down does
// what its on_all_down says: "drop" publishes an empty ring (new flows are dropped and counted as
// no_backend), "keep-last" keeps the ring it had before the last one fell. Both are logged at error level.
//
// A reload re-reads the file and applies all of it or none of it. Run-time changes are not written back:
// backends added through the API are dropped by a reload (logged), a drain survives it (as HAProxy's
// server-state-file keeps MAINT) as long as the backend is still in the file.
import { affinityWarnings } from '../dataplane/affinity';
import { EventEmitter } from 'events';
import { loadConfigFile, readToken, restartOnlyChanges, ConfigError } from '../config/load';
import { HealthChecker, type ProbeFn, type ProbeRecord, type Transition } from '../health/checker';
import type { Logger } from '../util/log';
import { backendId, checkServices, serviceId, type BackendConfig, type HealthCheckSpec, type ServiceConfig, type ServiceSpec } from '../config/model';
import { zeroObjectCounters, type CounterMap, type CounterSnapshot, type FlowEntry, type FlowFilter, type FlowPage, type FlowState, type FlowStats } from '../dataplane/native';
import { probeDataplane, type ProbingDataplane } from '../health/dataplane-probe';
import { icmpChecksUnavailable } from '../health/icmp';
import { FlowStatsSweep, type FlowStatsPage } from '../dataplane/flow-stats';
import { backendKey, type TableOptions } from '../dataplane/tables';
import type { PublishResult } from './balancer';
import type { UpOptions } from '../config/options';

/** What the controller needs of the Balancer (a fake in unit tests). */
export interface BalancerLike {
  setServices(services: ServiceSpec[], tableOpts?: TableOptions): Promise<PublishResult>;
  readonly tableOptions: Readonly<TableOptions>;
  backendSlot(key: string): number | undefined;
  serviceSlot(id: string): number | undefined;
  readonly dp: {
    counters(): CounterSnapshot;
    flowCount(): number;
    flows?(filter: FlowFilter): FlowEntry[];
    flowPage?(filter: FlowFilter, maxCalls?: number): FlowPage;
    flowStats?(): FlowStats;
    /** One page of flowStats (src/dataplane/flow-stats.ts): preferred, so no reader walks the whole table at once. */
    flowStatsPage?(cursor: number): FlowStatsPage;
    /** Flow-table entries: cursors run from 0 to this. */
    readonly flowCapacity?: number;
    deleteFlows?(filter: FlowFilter): number | Promise<number>;
    probe?: ProbingDataplane['probe'];
    probeState?: ProbingDataplane['probeState'];
  };
}

export class ControlError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

/** A drain is reported done once the backend's packet counters have not moved for this long. */
export const DRAIN_QUIET_MS = 5_000;
const PASSIVE_SAMPLE_MS = 1_000;
const DRAIN_SAMPLE_MS = 500;
const DRAIN_FLOWS_MS = 2_000;
const DRAIN_FLOWS_LIMIT = 1_000;
const DRAIN_PAGES_PER_SAMPLE = 4; // native calls of FLOW_SCAN_PER_CALL entries: the default table is counted each sample
const FLOW_STATS_MAX_AGE_MS = 1_000;

interface DrainState {
  since: number; // Date.now()
  lastPackets: number;
  lastPacketAt: number;
  liveFlows?: number; // from the flow table's last complete count, when the data plane can list flows
  flowsCheckedAt?: number; // when the last count started
  count?: { cursor: number; live: number }; // a count under way: a bounded part of the table per sample
  doneAt?: number;
  doneBy?: string;
}

interface PassiveState {
  samples: Array<{ t: number; newFlows: number; answered: number; out: number; resets: number }>;
  heldUntil?: number; // out of the ring until then
  reason?: string;
}

interface BackendRuntime {
  key: string;
  source: 'config' | 'api';
  drain?: DrainState;
  passive?: PassiveState;
  checker?: HealthChecker;
  checkerIdent?: string;
}

export type BackendState = 'up' | 'down' | 'draining' | 'drained';

export interface ReloadResult {
  file: string;
  added: string[];
  removed: string[];
  changed: string[];
  unchanged: number;
  changedSlots: Record<string, number>;
  discardedApiBackends: string[];
}

function clone(services: readonly ServiceConfig[]): ServiceConfig[] {
  return services.map((s) => ({ ...s, backends: s.backends.map((b) => ({ ...b })) }));
}

/**
 * A change before it is applied: the services as they will be, and each of their backends' run-time state as it
 * will be (copies; drain and passive state objects are shared with the running ones, which go on sampling them).
 * A copied entry keeps its current checker even when the check changes: the replacement inherits its state, and
 * is made only once the table is in (applyPlan).
 */
interface Plan {
  services: ServiceConfig[];
  runtime: Map<string, BackendRuntime>;
}

/** A planned change as built from the state it will apply to: undefined plan = nothing to do. */
interface Change {
  plan: Plan | undefined;
  /** What the published table's log line says, when the plan knows more than the request (a weight's old value). */
  reason?: string;
  tableOpts?: TableOptions;
  extra?: Record<string, unknown>;
  /** Runs in the queue once the table is in, before the next change is built (a reload's new options). */
  applied?: () => void;
}

export class Controller extends EventEmitter {
  private services: ServiceConfig[] = [];
  private readonly runtime = new Map<string, BackendRuntime>();
  private lastWeights = new Map<string, Map<string, number>>(); // service id -> backend id -> published weight
  private readonly allDown = new Set<string>(); // services currently without a healthy backend
  private stopping = false;
  private running = false; // start() done: checkers of backends added later start at once
  private drainTimer: NodeJS.Timeout | undefined;
  private passiveTimer: NodeJS.Timeout | undefined;
  /** The tail of the change queue: every change (write, reload, health verdict, drain) runs after the one before. */
  private queue: Promise<unknown> = Promise.resolve();
  /** A republish waiting in the queue: health verdicts that come meanwhile ride along with it. */
  private pendingRepublish: { reasons: string[]; done: Promise<PublishResult> } | undefined;
  readonly startedAt = new Date();
  lastReload: { at: string; ok: boolean; error?: string } | undefined;
  reloads = { ok: 0, failed: 0 };
  token: string | undefined;

  constructor(
    private readonly balancer: BalancerLike,
    public opts: UpOptions,
    private readonly log: Logger,
    private readonly probeFn?: ProbeFn,
  ) {
    super();
    if (opts.admin.tokenFile) this.token = readToken(opts.admin.tokenFile);
    const dp = balancer.dp;
    const page = dp.flowStatsPage ? (c: number) => dp.flowStatsPage!(c) : dp.flowStats ? () => ({ ...dp.flowStats!(), next: null }) : undefined;
    this.stats = page && new FlowStatsSweep(page, FLOW_STATS_MAX_AGE_MS);
  }

  /** Live flow-table entries per slot, the last complete paged pass (one a second at most). */
  private readonly stats: FlowStatsSweep | undefined;

  get current(): readonly ServiceConfig[] {
    return this.services;
  }

  counters(): CounterSnapshot {
    return this.balancer.dp.counters();
  }

  /** Live flow-table entries, from the per-slot statistics (the last complete count). */
  flowCount(): number {
    return this.flowStats()?.total ?? this.balancer.dp.flowCount();
  }

  /** Live flow-table entries as a count that starts now finds them. */
  async countFlows(): Promise<number> {
    return (await this.stats?.fresh())?.total ?? this.balancer.dp.flowCount();
  }

  /** Publishes the configured services and starts their health checks. */
  async start(): Promise<PublishResult> {
    return this.serialized(async () => {
      const r = await this.publish(this.plan(clone(this.opts.services), 'config'), 'start');
      this.flowStats(); // the first count, whole, now: later ones page through the table in the background
      this.running = true;
      for (const rt of this.runtime.values()) rt.checker?.start(this.firstDelay(rt.checker));
      this.updatePassiveTimer();
      return r;
    });
  }

  private firstDelay(c: HealthChecker): number {
    return Math.random() * Math.min(1000, c.spec.interval * 1000);
  }

  // ---------------------------------------------------------------------------------------------------------
  // One change at a time

  /** Runs fn after every change queued before it; a failed change does not stop the ones after it. */
  private serialized<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.queue.then(fn);
    this.queue = run.catch(() => undefined);
    return run;
  }

  /**
   * A planned change (API write, drain, reload). `build` validates the request against the current state and
   * plans it; it runs once before the cluster's hold (a bad request fails at once) and again in the queue after
   * it, where the plan is published: changes that landed while this one waited are part of what it builds on.
   */
  private async planned(reason: string, build: () => Change): Promise<PublishResult | undefined> {
    if (!build().plan) return undefined;
    await this.beforePlannedChange?.(reason);
    return this.serialized(async () => {
      const c = build();
      if (!c.plan) return undefined;
      const r = await this.publish(c.plan, c.reason ?? reason, c.tableOpts, c.extra);
      c.applied?.();
      return r;
    });
  }

  /** Publishes the current state again (health verdicts); requests made while one waits in the queue share it. */
  private republishQueued(reason: string): Promise<PublishResult> {
    if (this.pendingRepublish) {
      this.pendingRepublish.reasons.push(reason);
      return this.pendingRepublish.done;
    }
    const pending: { reasons: string[]; done: Promise<PublishResult> } = { reasons: [reason], done: Promise.resolve({ changedSlots: {} }) };
    pending.done = this.serialized(() => {
      this.pendingRepublish = undefined;
      return this.publish(this.plan(this.services, 'api'), pending.reasons.join('; '));
    });
    this.pendingRepublish = pending;
    return pending.done;
  }

  // ---------------------------------------------------------------------------------------------------------
  // Effective table

  private healthy(rt: BackendRuntime | undefined): boolean {
    const local = this.locallyHealthy(rt);
    return rt && this.healthVote ? this.healthVote(rt.key, local) : local;
  }

  private locallyHealthy(rt: BackendRuntime | undefined): boolean {
    return (!rt?.checker || rt.checker.state === 'up') && rt?.passive?.heldUntil === undefined;
  }

  /**
   * Scale-out (src/cluster/): the cluster's verdict on a backend given this host's own view, so that every host
   * builds the same ring. null: this host's own checks decide alone.
   */
  healthVote: ((key: string, locallyHealthy: boolean) => boolean) | null = null;

  /**
   * Scale-out: awaited before a planned ring change (reload, API add/remove/weight, drain/undrain), so the cluster can
   * hold it while flows that just moved between hosts are still unpinned (src/cluster/index.ts, "settle"). Awaited
   * outside the change queue: a held change holds up neither health verdicts nor other changes' holds.
   */
  beforePlannedChange: ((reason: string) => Promise<void>) | null = null;

  /** This host's own view of every backend (backend key -> healthy), before any cluster vote. */
  localHealth(): Map<string, boolean> {
    return new Map([...this.runtime].map(([k, rt]) => [k, this.locallyHealthy(rt)]));
  }

  /** The weights last published, by service id and backend id (0: out of the ring). */
  get publishedWeights(): ReadonlyMap<string, ReadonlyMap<string, number>> {
    return this.lastWeights;
  }

  /** Publishes the table again (the cluster's health verdict changed). */
  async republish(reason: string): Promise<PublishResult> {
    return this.republishQueued(reason);
  }

  /** The services as the data plane should see them (now, or after a planned change), and which have no healthy backend. */
  effective(p: Plan = { services: this.services, runtime: this.runtime }): { specs: ServiceSpec[]; weights: Map<string, Map<string, number>>; allDown: Set<string> } {
    const weights = new Map<string, Map<string, number>>();
    const allDown = new Set<string>();
    const specs = p.services.map((s) => {
      const sid = serviceId(s);
      const rts = s.backends.map((b) => p.runtime.get(backendKey(s, b)));
      const eligible = s.backends.map((b, i) => b.weight > 0 && !rts[i]?.drain);
      let w = s.backends.map((b, i) => (eligible[i] && this.healthy(rts[i]) ? b.weight : 0));
      if (eligible.some(Boolean) && w.every((x) => x === 0)) {
        allDown.add(sid);
        if (s.onAllDown === 'keep-last') {
          const last = this.lastWeights.get(sid);
          w = s.backends.map((b, i) => (rts[i]?.drain ? 0 : last?.get(backendId(b, s.proto)) ?? 0)); // a drain still wins
        }
      }
      if (this.stopping) w = w.map(() => 0);
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
          ...(eligible[i] && !this.healthy(rts[i]) ? { down: true } : {}),
        })),
        // Data-plane protections and timeouts ride along with the spec (tables.ts ServiceProtections).
        ...(s.timeouts ? { timeouts: s.timeouts } : {}),
        ...(s.newFlowRate ? { newFlowRate: s.newFlowRate } : {}),
        ...(s.allowSources ? { allowSources: s.allowSources } : {}),
        ...(s.denySources ? { denySources: s.denySources } : {}),
      };
    });
    return { specs, weights, allDown };
  }

  /**
   * Publishes the table a plan makes and, once the data plane took it, makes the plan current. Runs in the queue.
   * If the data plane refuses the table, nothing here has changed: services, checkers, drains, weights.
   */
  private async publish(p: Plan, reason: string, tableOpts?: TableOptions, extra: Record<string, unknown> = {}): Promise<PublishResult> {
    const eff = this.effective(p);
    const r = await this.balancer.setServices(eff.specs, tableOpts);
    this.applyPlan(p);
    this.lastWeights = eff.weights;
    this.noteAllDown(eff.allDown);
    this.log.info({ event: 'table_published', reason, changedSlots: r.changedSlots, ...extra }, `table published (${reason}): ${Object.keys(r.changedSlots).length} service ring(s) changed`);
    this.emit('change');
    return r;
  }

  /** Logs services that lost their last healthy backend, or got one back, with the table just published. */
  private noteAllDown(now: ReadonlySet<string>): void {
    for (const sid of now) {
      if (this.allDown.has(sid)) continue;
      const s = this.services.find((x) => serviceId(x) === sid)!;
      this.log.error(
        { event: 'service_all_down', service: sid, name: s.name, onAllDown: s.onAllDown },
        s.onAllDown === 'drop'
          ? `service ${sid}: NO HEALTHY BACKEND — new connections are dropped (on_all_down: drop)`
          : `service ${sid}: NO HEALTHY BACKEND — keeping the last ring, new connections go to backends that failed their checks (on_all_down: keep-last)`,
      );
    }
    for (const sid of this.allDown) {
      if (!now.has(sid) && this.lastWeights.has(sid)) this.log.warn({ event: 'service_recovered', service: sid }, `service ${sid}: has a healthy backend again`);
    }
    this.allDown.clear();
    for (const sid of now) this.allDown.add(sid);
  }

  // ---------------------------------------------------------------------------------------------------------
  // Runtime state per backend (health checkers, drain)

  /**
   * The run-time state the services would have, without touching the running one. Backends new to the
   * controller take `origin` as their source; a config plan (start, reload) makes every backend in the file a
   * config backend again. A backend whose check goes away has none in the plan (up); one whose check changes
   * keeps its current checker's state (the replacement inherits it); a new check starts up.
   */
  private plan(services: ServiceConfig[], origin: 'config' | 'api'): Plan {
    const runtime = new Map<string, BackendRuntime>();
    for (const s of services) {
      for (const b of s.backends) {
        const key = backendKey(s, b);
        const cur = this.runtime.get(key);
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

  /** Makes a published plan current: backends gone lose their checker, changed checks get a new one. */
  private applyPlan(p: Plan): void {
    for (const [key, rt] of this.runtime) {
      if (p.runtime.has(key)) continue;
      rt.checker?.stop();
      this.runtime.delete(key);
    }
    this.services = p.services;
    for (const s of p.services) {
      for (const b of s.backends) {
        const key = backendKey(s, b);
        const next = p.runtime.get(key)!;
        let rt = this.runtime.get(key);
        if (rt) {
          rt.source = next.source;
          rt.drain = next.drain;
          rt.passive = next.passive;
        } else {
          rt = { key, source: next.source, drain: next.drain, passive: next.passive };
          this.runtime.set(key, rt);
        }
        this.syncChecker(rt, s, b);
      }
    }
    this.updateDrainTimer();
    this.updatePassiveTimer();
  }

  private updatePassiveTimer(): void {
    const any = this.services.some((s) => s.passive);
    if (any && !this.passiveTimer && this.running) {
      this.passiveTimer = setInterval(() => this.samplePassive(), PASSIVE_SAMPLE_MS);
      this.passiveTimer.unref();
    } else if (!any && this.passiveTimer) {
      clearInterval(this.passiveTimer);
      this.passiveTimer = undefined;
    }
  }

  /**
   * The passive check: per backend, new flows and packets back over the window. Flows are counted up to the
   * previous sample (so each has had at least one sample period to be answered), replies up to now.
   */
  samplePassive(now = Date.now()): void {
    let c: CounterSnapshot;
    try {
      c = this.balancer.dp.counters();
    } catch {
      return;
    }
    const changes: string[] = [];
    const downs: Array<{ s: ServiceConfig; key: string }> = [];
    for (const s of this.services) {
      const p = s.passive;
      if (!p) continue;
      for (const b of s.backends) {
        const key = backendKey(s, b);
        const st = this.runtime.get(key)?.passive;
        if (!st) continue;
        const bid = backendId(b, s.proto);
        const sid = serviceId(s);
        if (st.heldUntil !== undefined) {
          if (now < st.heldUntil) continue;
          st.heldUntil = undefined;
          st.reason = undefined;
          st.samples = [];
          this.log.info({ event: 'backend_up', service: sid, backend: bid, name: b.name, reason: `passive hold of ${p.hold} s over` }, `backend ${bid} of ${sid} is back in the ring: passive hold of ${p.hold} s over`);
          changes.push(`${bid} passive hold over`);
          continue;
        }
        const slot = this.balancer.backendSlot(key);
        const o = slot === undefined ? undefined : c.backends.get(slot);
        const cur = { t: now, newFlows: o?.new_flows ?? 0, answered: o?.flows_answered ?? 0, out: o?.packets_out ?? 0, resets: o?.resets ?? 0 };
        st.samples.push(cur);
        while (st.samples.length > 2 && st.samples[1].t <= now - p.window * 1000) st.samples.shift();
        if (st.samples.length < 2) continue;
        const base = st.samples[0];
        const prev = st.samples[st.samples.length - 2];
        // Flows up to the previous sample (each had at least one sample period to be answered), answers up to
        // now. Without the data plane's flows_answered counter: unanswered only if not one packet came back.
        const flows = prev.newFlows - base.newFlows;
        const unanswered = o?.flows_answered !== undefined ? flows - (cur.answered - base.answered) : cur.out === base.out ? flows : 0;
        const resets = cur.resets - base.resets;
        const secs = Math.round((now - base.t) / 100) / 10;
        let why: string | undefined;
        if (p.maxUnanswered > 0 && st.samples.length >= 3 && unanswered >= p.maxUnanswered) {
          why = `passive: ${unanswered} of ${flows} new flows in ${secs} s got no answer through l4nat: its replies bypass this host (is l4nat its default gateway?) or it does not answer`;
        } else if (p.maxResets > 0 && resets >= p.maxResets) {
          why = `passive: it sent ${resets} resets in ${secs} s (max_resets ${p.maxResets})`;
        }
        if (why) {
          st.heldUntil = now + p.hold * 1000;
          st.reason = why;
          st.samples = [];
          this.log.error({ event: 'backend_down', service: sid, backend: bid, name: b.name, reason: why, holdSeconds: p.hold }, `backend ${bid} of ${sid} is DOWN for ${p.hold} s: ${why}`);
          changes.push(`${bid} passive down`);
          downs.push({ s, key });
        }
      }
    }
    if (changes.length) {
      this.republishQueued(`passive: ${changes.join(', ')}`)
        .then(() => Promise.all(downs.map((d) => this.resetIfWanted(d.s, d.key))))
        .catch((err: unknown) => this.log.error({ err }, 'publishing a passive health change failed'));
    }
  }

  /** on_down: reset — removes the flows of a backend that went down; their next packets meet the new ring. */
  private async resetIfWanted(s: ServiceConfig, key: string): Promise<void> {
    if (s.onDown !== 'reset' || !this.balancer.dp.deleteFlows) return;
    const slot = this.balancer.backendSlot(key);
    if (slot === undefined) return;
    try {
      const n = await this.balancer.dp.deleteFlows({ backendSlot: slot });
      const bid = key.split('|')[1];
      this.log.warn({ event: 'backend_flows_reset', service: serviceId(s), backend: bid, flows: n }, `backend ${bid}: ${n} flow(s) removed (on_down: reset); their next packets go to another backend, which resets TCP`);
    } catch (err) {
      this.log.error({ err }, 'removing the flows of a down backend failed');
    }
  }

  /** A dataplane check runs here: it needs the data plane and the backend's slot (src/health/dataplane-probe.ts). */
  private dataplaneProbeFor(spec: HealthCheckSpec, key: string): ProbeFn | undefined {
    if (spec.type !== 'dataplane') return undefined;
    return (sp, t) => {
      const dp = this.balancer.dp;
      const { probe, probeState } = dp;
      if (!probe || !probeState) return Promise.resolve({ ok: false, ms: 0, detail: 'this data plane build cannot send probes' });
      const src = this.balancer.tableOptions.probeSource;
      return probeDataplane(
        { dp: { probe: (p) => probe.call(dp, p), probeState: (p) => probeState.call(dp, p) }, slot: this.balancer.backendSlot(key), source: t.family === 4 ? src?.ipv4 : src?.ipv6 },
        t, // the service port: config refuses another one (the data plane knows answers by backend address and port)
        Math.round(sp.timeout * 1000),
      );
    };
  }

  private syncChecker(rt: BackendRuntime, s: ServiceConfig, b: BackendConfig): void {
    if (!s.health) {
      rt.checker?.stop();
      rt.checker = undefined;
      rt.checkerIdent = undefined;
      return;
    }
    const target = { addr: b.addr, family: b.family, port: b.port };
    const ident = HealthChecker.identity(s.health, target);
    if (rt.checker && rt.checkerIdent === ident) return;
    const c = new HealthChecker(rt.key, s.health, target, (ch, t, last) => this.onHealth(ch, t, last), this.probeFn ?? this.dataplaneProbeFor(s.health, rt.key));
    const old = rt.checker;
    if (old) {
      c.inherit(old);
      old.stop();
    }
    if (this.running) c.start(this.firstDelay(c)); // at start, start() starts them after the first publish
    rt.checker = c;
    rt.checkerIdent = ident;
  }

  private onHealth(c: HealthChecker, t: Transition, last: ProbeRecord): void {
    const [sid, bid] = c.key.split('|');
    const s = this.services.find((x) => serviceId(x) === sid);
    const b = s?.backends.find((x) => backendId(x, s.proto) === bid);
    const fields = { event: t.to === 'up' ? 'backend_up' : 'backend_down', service: sid, backend: bid, name: b?.name, reason: t.reason, checkMs: last.ms };
    if (t.to === 'down') this.log.warn(fields, `backend ${bid} of ${sid} is DOWN: ${t.reason}`);
    else this.log.info(fields, `backend ${bid} of ${sid} is UP: ${t.reason}`);
    this.republishQueued(`health: ${bid} ${t.to}`)
      .then(() => (t.to === 'down' && s ? this.resetIfWanted(s, c.key) : undefined))
      .catch((err: unknown) => this.log.error({ err, service: sid, backend: bid }, 'publishing a health change failed'));
  }

  private updateDrainTimer(): void {
    const any = [...this.runtime.values()].some((r) => r.drain && r.drain.doneAt === undefined);
    if (any && !this.drainTimer) {
      this.drainTimer = setInterval(() => this.sampleDrains(), DRAIN_SAMPLE_MS);
      this.drainTimer.unref();
    } else if (!any && this.drainTimer) {
      clearInterval(this.drainTimer);
      this.drainTimer = undefined;
    }
  }

  private packetsOf(c: CounterSnapshot, key: string): number {
    const slot = this.balancer.backendSlot(key);
    const o = slot === undefined ? undefined : c.backends.get(slot);
    return o ? o.packets_in + o.packets_out : 0;
  }

  /** Approximates "the last flow has ended" by the backend's packet counters staying still. */
  sampleDrains(now = Date.now()): void {
    let c: CounterSnapshot;
    try {
      c = this.balancer.dp.counters();
    } catch {
      return; // data plane closed
    }
    const dp = this.balancer.dp;
    for (const rt of this.runtime.values()) {
      const d = rt.drain;
      if (!d || d.doneAt !== undefined) continue;
      const p = this.packetsOf(c, rt.key);
      if (p !== d.lastPackets) {
        d.lastPackets = p;
        d.lastPacketAt = now;
      }
      // With the flow table: done when the backend has no live entry (TCP entries in CLOSE, after RST or both
      // FINs, do not count; nor UDP entries idle for the quiet period, since UDP has no end but silence). An
      // open but idle TCP connection is live until it closes or times out. Without it: packets quiet.
      let done: string | undefined;
      const slot = this.balancer.backendSlot(rt.key);
      // Counting pages through the flow table, a bounded part of it per sample (a large table is never walked
      // at once); a new count starts DRAIN_FLOWS_MS after the last one started.
      let counting = false; // else: done once the backend's packet counters are still
      if (dp.flows && slot !== undefined) {
        counting = true;
        if (!d.count && (d.flowsCheckedAt === undefined || now - d.flowsCheckedAt >= DRAIN_FLOWS_MS || now < d.flowsCheckedAt)) {
          d.flowsCheckedAt = now;
          d.count = { cursor: 0, live: 0 };
        }
        if (d.count) {
          try {
            const page = this.flowPage({ backendSlot: slot, limit: DRAIN_FLOWS_LIMIT, cursor: d.count.cursor }, DRAIN_PAGES_PER_SAMPLE);
            d.count.live += page.flows.filter((e) => e.state !== 'CLOSE' && !(e.state === 'UDP' && e.idleSeconds * 1000 >= DRAIN_QUIET_MS)).length;
            if (page.next === null) {
              d.liveFlows = d.count.live;
              d.count = undefined;
              if (d.liveFlows === 0) done = 'no live flows left';
            } else {
              d.count.cursor = page.next;
            }
          } catch {
            d.liveFlows = undefined;
            d.count = undefined;
            counting = false;
          }
        }
      }
      if (!counting && now - d.lastPacketAt >= DRAIN_QUIET_MS) done = `no packets for ${DRAIN_QUIET_MS / 1000} s`;
      if (done) {
        d.doneAt = now;
        d.doneBy = done;
        const [sid, bid] = rt.key.split('|');
        this.log.info(
          { event: 'backend_drained', service: sid, backend: bid, drainSeconds: Math.round((now - d.since) / 100) / 10, by: done },
          `backend ${bid} of ${sid} is drained: ${done}`,
        );
        this.emit('change');
      }
    }
    this.updateDrainTimer();
  }

  // ---------------------------------------------------------------------------------------------------------
  // Operations (admin API, signals)

  private find(sid: string, bid?: string): { si: number; bi: number } {
    const si = this.services.findIndex((s) => serviceId(s) === sid);
    if (si < 0) throw new ControlError(404, `no service ${sid}`);
    if (bid === undefined) return { si, bi: -1 };
    const s = this.services[si];
    const bi = s.backends.findIndex((b) => backendId(b, s.proto) === bid);
    if (bi < 0) throw new ControlError(404, `no backend ${bid} in service ${sid}`);
    return { si, bi };
  }

  /** A plan for a new service set, validated first (400 with the reason). */
  private planServices(next: ServiceConfig[], origin: 'config' | 'api', tableOpts: TableOptions = this.balancer.tableOptions): Plan {
    try {
      checkServices(next, tableOpts);
    } catch (e) {
      throw new ControlError(400, (e as Error).message);
    }
    return this.plan(next, origin);
  }

  async addBackend(sid: string, b: BackendConfig): Promise<{ service: string; backend: string }> {
    const bid = backendId(b, this.services[this.find(sid).si].proto);
    await this.planned(`api: add ${bid} to ${sid}`, () => {
      const { si } = this.find(sid);
      const next = clone(this.services);
      const s = next[si];
      if (b.family !== s.family) throw new ControlError(400, `backend ${b.addr} is IPv${b.family} but service ${sid} is IPv${s.family}`);
      if (s.backends.some((x) => backendId(x, s.proto) === bid)) throw new ControlError(409, `backend ${bid} already serves ${sid}`);
      s.backends.push({ ...b });
      return { plan: this.planServices(next, 'api') };
    });
    this.log.info({ event: 'backend_added', service: sid, backend: bid, weight: b.weight, name: b.name }, `backend ${bid} added to ${sid}`);
    return { service: sid, backend: bid };
  }

  async removeBackend(sid: string, bid: string): Promise<void> {
    await this.planned(`api: remove ${bid} from ${sid}`, () => {
      const { si, bi } = this.find(sid, bid);
      const next = clone(this.services);
      next[si].backends.splice(bi, 1);
      return { plan: this.planServices(next, 'api') };
    });
    this.log.info({ event: 'backend_removed', service: sid, backend: bid }, `backend ${bid} removed from ${sid}`);
  }

  async setWeight(sid: string, bid: string, weight: number): Promise<void> {
    let old = 0;
    await this.planned(`api: weight ${bid} ${weight}`, () => {
      const { si, bi } = this.find(sid, bid);
      const next = clone(this.services);
      old = next[si].backends[bi].weight;
      next[si].backends[bi].weight = weight;
      return { plan: this.planServices(next, 'api'), reason: `api: weight ${bid} ${old}->${weight}` };
    });
    this.log.info({ event: 'backend_weight', service: sid, backend: bid, from: old, to: weight }, `backend ${bid} of ${sid}: weight ${old} -> ${weight}`);
  }

  /** A plan that changes one backend's drain state; undefined if it is already in that state. */
  private planDrain(sid: string, bid: string, draining: boolean): Change {
    const { si, bi } = this.find(sid, bid);
    const s = this.services[si];
    const key = backendKey(s, s.backends[bi]);
    if (Boolean(this.runtime.get(key)?.drain) === draining) return { plan: undefined };
    const plan = this.plan(this.services, 'api');
    const rt = plan.runtime.get(key)!;
    if (!draining) {
      rt.drain = undefined;
      return { plan };
    }
    const now = Date.now();
    let packets = 0;
    try {
      packets = this.packetsOf(this.balancer.dp.counters(), key);
    } catch {
      // closed
    }
    rt.drain = { since: now, lastPackets: packets, lastPacketAt: now };
    return { plan };
  }

  /** Takes the backend out of the ring; its flows go on. Idempotent. */
  async drain(sid: string, bid: string): Promise<void> {
    if (!(await this.planned(`api: drain ${bid}`, () => this.planDrain(sid, bid, true)))) return;
    this.log.info({ event: 'backend_draining', service: sid, backend: bid }, `backend ${bid} of ${sid} is draining: out of the ring, its flows go on`);
  }

  async undrain(sid: string, bid: string): Promise<void> {
    if (!(await this.planned(`api: undrain ${bid}`, () => this.planDrain(sid, bid, false)))) return;
    this.log.info({ event: 'backend_undrained', service: sid, backend: bid }, `backend ${bid} of ${sid} is back in the ring`);
  }

  /** Re-reads the config file and applies all of it, or nothing (the error says why). */
  async reload(): Promise<ReloadResult> {
    const file = this.opts.configFile;
    if (!file) throw new ControlError(409, 'l4nat was started from flags, not from a config file: there is nothing to reload');
    const at = new Date().toISOString();
    try {
      const next = loadConfigFile(file);
      const token = next.admin.tokenFile ? readToken(next.admin.tokenFile) : undefined;
      let result: Omit<ReloadResult, 'changedSlots'> | undefined;
      // Compared with the running config when it applies (after any reload or write queued before it).
      const r = await this.planned('reload', () => {
        const restart = restartOnlyChanges(this.opts, next);
        if (restart.length) {
          throw new ConfigError(file, [`these settings take effect only at start: ${restart.join(', ')}; restart l4nat to change them (the reload changed nothing)`]);
        }
        const noIcmp = icmpChecksUnavailable(next.services);
        if (noIcmp) throw new ConfigError(file, [`${noIcmp} (the reload changed nothing)`]);
        const oldById = new Map(this.opts.services.map((s) => [serviceId(s), JSON.stringify(s)]));
        const newById = new Map(next.services.map((s) => [serviceId(s), JSON.stringify(s)]));
        const added = [...newById.keys()].filter((k) => !oldById.has(k));
        const removed = [...oldById.keys()].filter((k) => !newById.has(k));
        const changed = [...newById.keys()].filter((k) => oldById.has(k) && oldById.get(k) !== newById.get(k));
        const newKeys = new Set(next.services.flatMap((s) => s.backends.map((b) => backendKey(s, b))));
        const discarded = [...this.runtime.values()].filter((rt) => rt.source === 'api' && !newKeys.has(rt.key)).map((rt) => rt.key);
        result = { file, added, removed, changed, unchanged: newById.size - added.length - changed.length, discardedApiBackends: discarded };
        const tableOpts: TableOptions = { ...this.balancer.tableOptions, timeouts: next.timeouts, icmpEcho: next.icmpEcho, probeSource: next.probeSource };
        const applied = (): void => {
          this.opts = next;
          this.token = token;
          this.log.level = next.logLevel;
        };
        return { plan: this.planServices(clone(next.services), 'config', tableOpts), tableOpts, extra: { file, added, removed, changed }, applied };
      });
      const res = { ...result!, changedSlots: r!.changedSlots };
      this.lastReload = { at, ok: true };
      this.reloads.ok++;
      if (res.discardedApiBackends.length) {
        this.log.warn({ event: 'reload_discarded', backends: res.discardedApiBackends }, `reload: ${res.discardedApiBackends.length} backend(s) added through the API are not in the file and were removed`);
      }
      for (const w of affinityWarnings(next.services)) this.log.warn({ event: 'affinity_warning' }, w);
      this.log.info({ event: 'reload', file, added: res.added, removed: res.removed, changed: res.changed, changedSlots: res.changedSlots }, `reloaded ${file}: ${res.added.length} service(s) added, ${res.removed.length} removed, ${res.changed.length} changed`);
      this.emit('reload', next);
      return res;
    } catch (e) {
      this.reloads.failed++;
      this.lastReload = { at, ok: false, error: (e as Error).message };
      this.log.error({ event: 'reload_failed', file, err: (e as Error).message }, `reload of ${file} rejected; the running config is unchanged`);
      if (e instanceof ConfigError) throw new ControlError(400, e.message);
      throw e;
    }
  }

  /** Graceful stop, step 1: empty rings (no new flows decided here), established flows keep going. */
  async quiesce(): Promise<void> {
    await this.serialized(() => {
      this.stopping = true;
      return this.publish(this.plan(this.services, 'api'), 'shutdown: admitting no new flows');
    });
  }

  stop(): void {
    this.running = false;
    for (const rt of this.runtime.values()) rt.checker?.stop();
    if (this.drainTimer) clearInterval(this.drainTimer);
    this.drainTimer = undefined;
    if (this.passiveTimer) clearInterval(this.passiveTimer);
    this.passiveTimer = undefined;
  }

  // ---------------------------------------------------------------------------------------------------------
  // Views (API, CLI, metrics, systemd status)

  backendState(s: ServiceConfig, b: BackendConfig): { state: BackendState; rt: BackendRuntime | undefined } {
    const rt = this.runtime.get(backendKey(s, b));
    if (rt?.drain) return { state: rt.drain.doneAt !== undefined ? 'drained' : 'draining', rt };
    return { state: this.healthy(rt) ? 'up' : 'down', rt };
  }

  /** Everything about the services, for the API and `l4nat status`. */
  view(c: CounterSnapshot = this.balancer.dp.counters()): ServicesView {
    const now = Date.now();
    return {
      services: this.services.map((s) => this.serviceView(s, c, now)),
      dataplane: { counters: c.total, drops: c.drops, heartbeatsMs: c.heartbeatsMs, flows: this.flowCount() },
    };
  }

  serviceView(s: ServiceConfig, c: CounterSnapshot, now = Date.now(), withHistory = false): ServiceView {
    const sid = serviceId(s);
    const slot = this.balancer.serviceSlot(sid);
    const fs = this.flowStats();
    const active = (arr: Uint32Array | undefined, i: number | undefined): number | null => (arr && i !== undefined && i < arr.length ? arr[i] : null);
    const weights = this.lastWeights.get(sid);
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
      allDown: this.allDown.has(sid),
      healthCheck: s.health,
      counters: (slot === undefined ? undefined : c.services.get(slot)) ?? zeroObjectCounters(),
      activeFlows: active(fs?.services, slot),
      backends: s.backends.map((b) => {
        const { state, rt } = this.backendState(s, b);
        const bid = backendId(b, s.proto);
        const slotB = this.balancer.backendSlot(backendKey(s, b));
        const ch = rt?.checker;
        const v: BackendView = {
          id: bid,
          name: b.name ?? null,
          addr: b.addr,
          port: b.port,
          weight: b.weight,
          effectiveWeight: weights?.get(bid) ?? 0,
          state,
          source: rt?.source ?? 'config',
          health: ch
            ? { state: ch.state, consecutiveSuccesses: ch.successes, consecutiveFailures: ch.failures, checks: { ...ch.checks }, lastCheck: ch.history[ch.history.length - 1] ?? null }
            : null,
          passive: rt?.passive?.heldUntil !== undefined ? { heldUntil: new Date(rt.passive.heldUntil).toISOString(), reason: rt.passive.reason ?? '' } : null,
          drain: rt?.drain
            ? {
                since: new Date(rt.drain.since).toISOString(),
                lastPacketAt: new Date(rt.drain.lastPacketAt).toISOString(),
                quietSeconds: Math.round((now - rt.drain.lastPacketAt) / 100) / 10,
                liveFlows: rt.drain.liveFlows ?? null,
                done: rt.drain.doneAt !== undefined,
                doneBy: rt.drain.doneBy ?? null,
              }
            : null,
          counters: (slotB === undefined ? undefined : c.backends.get(slotB)) ?? zeroObjectCounters(),
          activeFlows: active(fs?.backends, slotB),
        };
        if (withHistory && ch) v.history = { checks: [...ch.history], transitions: [...ch.transitions] };
        return v;
      }),
    };
  }

  // ---------------------------------------------------------------------------------------------------------
  // Flow table (l4nat flows)

  /** slot -> service and backend ids, for naming the backend of a flow entry. */
  private slotNames(): Map<number, { service: string; backend: string; name?: string }> {
    const m = new Map<number, { service: string; backend: string; name?: string }>();
    for (const s of this.services) {
      for (const b of s.backends) {
        const slot = this.balancer.backendSlot(backendKey(s, b));
        if (slot !== undefined) m.set(slot, { service: serviceId(s), backend: backendId(b, s.proto), name: b.name });
      }
    }
    return m;
  }

  /** The backend slots a filter names: one backend (id, optionally within a service) or every backend of a service. */
  private filterSlots(q: FlowQuery): number[] | undefined {
    if (q.backend === undefined && q.service === undefined) return undefined;
    const out: number[] = [];
    for (const s of this.services) {
      if (q.service !== undefined && serviceId(s) !== q.service) continue;
      for (const b of s.backends) {
        if (q.backend !== undefined && backendId(b, s.proto) !== q.backend) continue;
        const slot = this.balancer.backendSlot(backendKey(s, b));
        if (slot !== undefined) out.push(slot);
      }
    }
    if (!out.length) {
      if (q.service !== undefined) this.find(q.service, q.backend);
      throw new ControlError(404, `no backend ${q.backend ?? ''} in any service`);
    }
    return out;
  }

  /**
   * One page of flow-table entries: the data plane looks at a bounded part of the table, and `next` says where
   * to go on. A backend id that several services share lists one page of each one's flows (truncated: there
   * may be more; give the service too to page through them).
   */
  listFlows(q: FlowQuery): { flows: FlowView[]; truncated: boolean; next: number | null } {
    const dp = this.balancer.dp;
    if (!dp.flows) throw new ControlError(501, 'this data plane build cannot list flows');
    if (q.cursor !== undefined && dp.flowCapacity !== undefined && q.cursor > dp.flowCapacity) {
      throw new ControlError(400, `cursor must be the next of a previous page, from 0 to the flow table's capacity ${dp.flowCapacity}, got ${q.cursor}`);
    }
    const limit = q.limit ?? 1000;
    const names = this.slotNames();
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
        const page = this.flowPage({ ...base, backendSlot: slot, limit: limit + 1 - raw.length });
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
      const page = this.flowPage(filter);
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

  /** One bounded page of the flow table (a data plane that cannot page lists what matches in one go). */
  private flowPage(filter: FlowFilter, maxCalls = 1): FlowPage {
    const dp = this.balancer.dp;
    if (dp.flowPage) return dp.flowPage(filter, maxCalls);
    if (!dp.flows) throw new ControlError(501, 'this data plane build cannot list flows');
    return { flows: dp.flows(filter), next: null };
  }

  private serviceSlotOf(sid: string): number {
    this.find(sid);
    const slot = this.balancer.serviceSlot(sid);
    if (slot === undefined) throw new ControlError(404, `service ${sid} is not in the data plane table`);
    return slot;
  }

  private flowStats(): FlowStats | undefined {
    return this.stats?.get();
  }

  /** Removes matching entries; the data plane pages through the table (src/dataplane/native.ts). */
  async deleteFlows(q: FlowQuery): Promise<number> {
    const dp = this.balancer.dp;
    if (!dp.deleteFlows) throw new ControlError(501, 'this data plane build cannot delete flows');
    if (q.backend === undefined && q.service === undefined && q.client === undefined) {
      throw new ControlError(400, 'give service, backend and/or client: deleting every flow is refused');
    }
    const slots = this.filterSlots(q);
    let n = 0;
    for (const slot of slots ?? [undefined]) {
      n += await dp.deleteFlows({ ...(slot !== undefined ? { backendSlot: slot } : {}), ...(q.client !== undefined ? { client: q.client } : {}) });
    }
    this.log.warn({ event: 'flows_deleted', ...q, flows: n }, `${n} flow(s) removed from the flow table`);
    return n;
  }

  serviceById(sid: string): ServiceConfig {
    return this.services[this.find(sid).si];
  }

  summary(): { services: number; backends: number; up: number; down: number; draining: number; allDown: string[] } {
    let up = 0;
    let down = 0;
    let draining = 0;
    let n = 0;
    for (const s of this.services) {
      for (const b of s.backends) {
        n++;
        const st = this.backendState(s, b).state;
        if (st === 'up') up++;
        else if (st === 'down') down++;
        else draining++;
      }
    }
    return { services: this.services.length, backends: n, up, down, draining, allDown: [...this.allDown] };
  }
}

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
  drain: { since: string; lastPacketAt: string; quietSeconds: number; liveFlows: number | null; done: boolean; doneBy: string | null } | null;
  passive: { heldUntil: string; reason: string } | null;
  counters: CounterMap;
  /** Live flow-table entries pinned to this backend, closed TCP entries not counted (null: unknown). */
  activeFlows: number | null;
  history?: { checks: ProbeRecord[]; transitions: Transition[] };
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
