// The operator's run-time changes (admin API): add, remove and reweigh backends, change their max_flows (as
// HAProxy's runtime `set maxconn server`), drain and undrain them. Each
// is checked against the running services at once (404, 409, 400 naming what is wrong) and again in the change
// queue, where it is planned and published; a refused one changes nothing. Changes are not written back to the
// config file: a reload drops API backends (logged), a drain survives it while the backend is in the file. In a
// cluster every one of them is refused first, naming the config-file way (cluster-writes.ts).
import { backendId, type BackendConfig } from '../config/model';
import { maxFlowsProblem } from '../dataplane/tables';
import { planDrain } from './drain';
import { planServices, type Change } from './plan';
import type { ChangeQueue } from './queue';
import { cloneServices, ControlError, type ControlState } from './state';

export class Operations {
  constructor(
    private readonly state: ControlState,
    private readonly queue: ChangeQueue,
    /** Why writes are refused (a cluster host), or null. */
    readonly refusal: string | null = null,
  ) {}

  /** Throws 409 with the reason when this host takes no backend changes (a cluster: cluster-writes.ts). */
  allowed(): void {
    if (this.refusal !== null) throw new ControlError(409, this.refusal);
  }

  async addBackend(sid: string, b: BackendConfig): Promise<{ service: string; backend: string }> {
    this.allowed();
    const state = this.state;
    const bid = backendId(b, state.services[state.find(sid).si].proto);
    await this.queue.planned(`api: add ${bid} to ${sid}`, () => this.addChange(sid, b));
    state.log.info({ event: 'backend_added', service: sid, backend: bid, weight: b.weight, name: b.name }, `backend ${bid} added to ${sid}`);
    return { service: sid, backend: bid };
  }

  async removeBackend(sid: string, bid: string): Promise<void> {
    this.allowed();
    await this.queue.planned(`api: remove ${bid} from ${sid}`, () => this.removeChange(sid, bid));
    this.state.log.info({ event: 'backend_removed', service: sid, backend: bid }, `backend ${bid} removed from ${sid}`);
  }

  /** Sets a backend's weight and/or its max_flows (null: no limit), as one change. */
  async update(sid: string, bid: string, u: BackendUpdate): Promise<void> {
    this.allowed();
    let before: Before = { weight: 0, maxFlows: null };
    await this.queue.planned(`api: ${updateWords(bid, u)}`, () => {
      const c = this.updateChange(sid, bid, u);
      before = c.from;
      return c;
    });
    const log = this.state.log;
    if (u.weight !== undefined) log.info({ event: 'backend_weight', service: sid, backend: bid, from: before.weight, to: u.weight }, `backend ${bid} of ${sid}: weight ${before.weight} -> ${u.weight}`);
    if (u.maxFlows !== undefined) {
      const was = before.maxFlows ?? 'none';
      log.info({ event: 'backend_max_flows', service: sid, backend: bid, from: before.maxFlows, to: u.maxFlows }, `backend ${bid} of ${sid}: max_flows ${was} -> ${u.maxFlows ?? 'none'}`);
    }
  }

  // The change each write makes, built against the running state: what the queue publishes, and what
  // POST /v1/plan previews without publishing (plan-preview.ts).

  addChange(sid: string, b: BackendConfig): Change {
    const state = this.state;
    const { si } = state.find(sid);
    const next = cloneServices(state.services);
    const s = next[si];
    const bid = backendId(b, s.proto);
    if (b.family !== s.family) throw new ControlError(400, `backend ${b.addr} is IPv${b.family} but service ${sid} is IPv${s.family}`);
    if (s.backends.some((x) => backendId(x, s.proto) === bid)) throw new ControlError(409, `backend ${bid} already serves ${sid}`);
    s.backends.push({ ...b });
    return { plan: planServices(state, next, 'api') };
  }

  removeChange(sid: string, bid: string): Change {
    const { si, bi } = this.state.find(sid, bid);
    const next = cloneServices(this.state.services);
    next[si].backends.splice(bi, 1);
    return { plan: planServices(this.state, next, 'api') };
  }

  /**
   * A new weight and/or max_flows. A max_flows takes effect for new flows at once; flows above a lowered limit go on
   * (admission only meets new flows: native/core/admission.h), and the backend takes new ones again below it.
   */
  updateChange(sid: string, bid: string, u: BackendUpdate): Change & { from: Before } {
    if (u.weight === undefined && u.maxFlows === undefined) throw new ControlError(400, 'give a weight, a max_flows, or both');
    const problem = u.maxFlows === undefined || u.maxFlows === null ? undefined : maxFlowsProblem(u.maxFlows);
    if (problem) throw new ControlError(400, `max_flows: ${problem}, or null for no limit`);
    const { si, bi } = this.state.find(sid, bid);
    const next = cloneServices(this.state.services);
    const b = next[si].backends[bi];
    const from: Before = { weight: b.weight, maxFlows: b.maxFlows ?? null };
    const parts: string[] = [];
    if (u.weight !== undefined) {
      b.weight = u.weight;
      parts.push(`weight ${bid} ${from.weight}->${u.weight}`);
    }
    if (u.maxFlows !== undefined) {
      if (u.maxFlows === null) delete b.maxFlows;
      else b.maxFlows = u.maxFlows;
      parts.push(`max_flows ${bid} ${from.maxFlows ?? 'none'}->${u.maxFlows ?? 'none'}`);
    }
    return { plan: planServices(this.state, next, 'api'), reason: `api: ${parts.join(', ')}`, from };
  }

  drainChange(sid: string, bid: string, drain: boolean, deadlineS?: number): Change {
    return planDrain(this.state, sid, bid, drain, Date.now(), deadlineS);
  }

  /**
   * Takes the backend out of the ring; its flows go on. Idempotent. `deadlineS`: the flows left after that many
   * seconds are removed (given again for a drain under way, it moves that drain's deadline).
   */
  async drain(sid: string, bid: string, deadlineS?: number): Promise<void> {
    this.allowed();
    const started = await this.queue.planned(`api: drain ${bid}`, () => this.drainChange(sid, bid, true, deadlineS));
    const within = deadlineS !== undefined ? `; flows left after ${deadlineS} s are removed` : '';
    if (started) {
      this.state.log.info({ event: 'backend_draining', service: sid, backend: bid, deadlineSeconds: deadlineS }, `backend ${bid} of ${sid} is draining: out of the ring, its flows go on${within}`);
    } else if (deadlineS !== undefined) {
      this.state.log.info({ event: 'drain_deadline_set', service: sid, backend: bid, deadlineSeconds: deadlineS }, `backend ${bid} of ${sid}: drain deadline set${within}`);
    }
  }

  async undrain(sid: string, bid: string): Promise<void> {
    this.allowed();
    if (!(await this.queue.planned(`api: undrain ${bid}`, () => this.drainChange(sid, bid, false)))) return;
    this.state.log.info({ event: 'backend_undrained', service: sid, backend: bid }, `backend ${bid} of ${sid} is back in the ring`);
  }
}

/** A run-time change of a backend: its weight, its max_flows (null: no limit), or both. */
export interface BackendUpdate {
  weight?: number;
  maxFlows?: number | null;
}

type Before = { weight: number; maxFlows: number | null };

/** The queue's name for an update: "weight B W", "max_flows B N|none", or both. */
function updateWords(bid: string, u: BackendUpdate): string {
  return [u.weight !== undefined ? `weight ${bid} ${u.weight}` : '', u.maxFlows !== undefined ? `max_flows ${bid} ${u.maxFlows ?? 'none'}` : ''].filter(Boolean).join(', ');
}
