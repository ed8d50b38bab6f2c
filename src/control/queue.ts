// The change queue: every change (API writes, reloads, health verdicts, drains) goes through it, one at a
// time: plan the next services and run-time state without touching the running ones, publish the table they
// make through the Balancer (atomic), and only once the data plane took it make the plan current (start,
// replace or stop health checkers). A rejected table leaves everything as it was. Each change logs one
// structured event with the ring slots it moved.
import { serviceId, type BackendConfig, type ServiceConfig } from '../config/model';
import type { TableOptions } from '../dataplane/tables';
import type { PublishResult } from './balancer';
import { effectiveTable, type EffectiveTable } from './effective';
import { applyPlan, planRuntime, type Change } from './plan';
import type { BackendRuntime, ControlState, Plan } from './state';

/** What the queue does to the rest of the control plane once a table is in. */
export interface QueueHooks {
  /** Gives a backend of the plan just made current the health checker its service asks for. */
  syncChecker(rt: BackendRuntime, s: ServiceConfig, b: BackendConfig): void;
  /** The run-time state changed: samplers start or stop their timers. */
  applied(): void;
  /** A table was published (the Controller's 'change' event). */
  published(): void;
}

export class ChangeQueue {
  /** The tail of the queue: every change runs after the one before. */
  private tail: Promise<unknown> = Promise.resolve();
  /** A republish waiting in the queue: health verdicts that come meanwhile ride along with it. */
  private pendingRepublish: { reasons: string[]; done: Promise<PublishResult> } | undefined;

  /**
   * Scale-out: awaited before a planned ring change (reload, API add/remove/weight, drain/undrain), so the cluster can
   * hold it while flows that just moved between hosts are still unpinned (src/cluster/index.ts, "settle"). Awaited
   * outside the change queue: a held change holds up neither health verdicts nor other changes' holds.
   */
  beforePlannedChange: ((reason: string) => Promise<void>) | null = null;

  constructor(
    private readonly state: ControlState,
    private readonly hooks: QueueHooks,
  ) {}

  /** Runs fn after every change queued before it; a failed change does not stop the ones after it. */
  serialized<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.tail.then(fn);
    this.tail = run.catch(() => undefined);
    return run;
  }

  /**
   * A planned change (API write, drain, reload). `build` validates the request against the current state and
   * plans it; it runs once before the cluster's hold (a bad request fails at once) and again in the queue after
   * it, where the plan is published: changes that landed while this one waited are part of what it builds on.
   */
  async planned(reason: string, build: () => Change): Promise<PublishResult | undefined> {
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
  republish(reason: string): Promise<PublishResult> {
    if (this.pendingRepublish) {
      this.pendingRepublish.reasons.push(reason);
      return this.pendingRepublish.done;
    }
    const pending: { reasons: string[]; done: Promise<PublishResult> } = { reasons: [reason], done: Promise.resolve({ changedSlots: {} }) };
    pending.done = this.serialized(() => {
      this.pendingRepublish = undefined;
      return this.publish(planRuntime(this.state, this.state.services, 'api'), pending.reasons.join('; '));
    });
    this.pendingRepublish = pending;
    return pending.done;
  }

  /** The table a plan makes (now, or after a planned change), and which services have no healthy backend. */
  effective(p: Plan = this.state.currentPlan, now = Date.now()): EffectiveTable {
    const st = this.state;
    return effectiveTable(p, { healthy: (rt) => st.healthy(rt), lastWeights: st.lastWeights, stopping: st.stopping, now });
  }

  /**
   * Publishes the table a plan makes and, once the data plane took it, makes the plan current. Call it only
   * from inside the queue (serialized). If the data plane refuses the table, nothing here has changed: services,
   * checkers, drains, weights.
   */
  async publish(p: Plan, reason: string, tableOpts?: TableOptions, extra: Record<string, unknown> = {}): Promise<PublishResult> {
    const now = Date.now();
    const eff = this.effective(p, now);
    const r = await this.state.balancer.setServices(eff.specs, tableOpts);
    applyPlan(this.state, p, (rt, s, b) => this.hooks.syncChecker(rt, s, b));
    for (const key of eff.rampStarts) {
      const rt = this.state.runtime.get(key);
      if (rt) rt.slowStartSince = now;
    }
    if (eff.rampStarts.length) this.state.log.info({ event: 'slow_start', backends: eff.rampStarts }, `slow start: ${eff.rampStarts.join(', ')} ramping up`);
    this.hooks.applied();
    this.state.lastWeights = eff.weights;
    this.noteAllDown(eff.allDown);
    this.state.log.info({ event: 'table_published', reason, changedSlots: r.changedSlots, ...extra }, `table published (${reason}): ${Object.keys(r.changedSlots).length} service ring(s) changed`);
    this.hooks.published();
    return r;
  }

  /** Logs services that lost their last healthy backend, or got one back, with the table just published. */
  private noteAllDown(now: ReadonlySet<string>): void {
    const { allDown, log } = this.state;
    for (const sid of now) {
      if (allDown.has(sid)) continue;
      const s = this.state.services.find((x) => serviceId(x) === sid)!;
      log.error(
        { event: 'service_all_down', service: sid, name: s.name, onAllDown: s.onAllDown },
        s.onAllDown === 'drop'
          ? `service ${sid}: NO HEALTHY BACKEND — new connections are dropped (on_all_down: drop)`
          : `service ${sid}: NO HEALTHY BACKEND — keeping the last ring, new connections go to backends that failed their checks (on_all_down: keep-last)`,
      );
    }
    for (const sid of allDown) {
      if (!now.has(sid) && this.state.lastWeights.has(sid)) log.warn({ event: 'service_recovered', service: sid }, `service ${sid}: has a healthy backend again`);
    }
    allDown.clear();
    for (const sid of now) allDown.add(sid);
  }
}
