// Drains: a draining backend is out of the ring (effective weight 0) while its established flows go on; the
// drain is reported done once the backend has no live flow left. With the flow table that is counted, a bounded
// part of the table per sample (a large table is never walked at once); a data plane that cannot list flows
// falls back to the backend's packet counters staying still for DRAIN_QUIET_MS. A drain with a deadline removes
// the flows left at the deadline (`drain --deadline S`); the counts give the view its oldest flow and an estimate.
import type { CounterSnapshot, FlowPage } from '../dataplane/native';
import { backendKey } from '../dataplane/tables';
import { flowPage } from './flows';
import { planRuntime, type Change } from './plan';
import { CounterSampler } from './sampler';
import { ControlError, type BackendRuntime, type BalancerLike, type ControlState, type DrainState } from './state';

/** A drain is reported done once the backend's packet counters have not moved for this long. */
export const DRAIN_QUIET_MS = 5_000;
const DRAIN_SAMPLE_MS = 500;
/** A new count of a backend's flows starts this long after the last one started. */
export const DRAIN_FLOWS_MS = 2_000;
const DRAIN_FLOWS_LIMIT = 1_000;
/** Native calls of FLOW_SCAN_PER_CALL entries: the default table is counted each sample. */
export const DRAIN_PAGES_PER_SAMPLE = 4;

/** Packets in and out of one backend (0 without a slot or counters). */
export function packetsOf(balancer: BalancerLike, c: CounterSnapshot, key: string): number {
  const slot = balancer.backendSlot(key);
  const o = slot === undefined ? undefined : c.backends.get(slot);
  return o ? o.packets_in + o.packets_out : 0;
}

/**
 * One sample of one drain: `packets` is the backend's packet count now, `page` reads its flow-table entries from
 * a cursor (undefined: the data plane cannot list them). Returns why the drain is done, having marked it so,
 * or undefined. Live flows: TCP entries not in CLOSE (after RST or both FINs), UDP entries not idle for the quiet
 * period (UDP has no end but silence); an open but idle TCP connection is live until it closes or times out.
 */
export function drainStep(d: DrainState, packets: number, page: ((cursor: number) => FlowPage) | undefined, now: number): string | undefined {
  if (d.doneAt !== undefined) return undefined;
  if (packets !== d.lastPackets) {
    d.lastPackets = packets;
    d.lastPacketAt = now;
  }
  let done: string | undefined;
  let counting = false; // else: done once the backend's packet counters are still
  if (page) {
    counting = true;
    if (!d.count && (d.flowsCheckedAt === undefined || now - d.flowsCheckedAt >= DRAIN_FLOWS_MS || now < d.flowsCheckedAt)) {
      d.flowsCheckedAt = now;
      d.count = { cursor: 0, live: 0, oldest: 0 };
    }
    if (d.count) {
      try {
        const p = page(d.count.cursor);
        const live = p.flows.filter((e) => e.state !== 'CLOSE' && !(e.state === 'UDP' && e.idleSeconds * 1000 >= DRAIN_QUIET_MS));
        d.count.live += live.length;
        for (const e of live) d.count.oldest = Math.max(d.count.oldest, e.ageSeconds);
        if (p.next === null) {
          d.liveFlows = d.count.live;
          const at = d.flowsCheckedAt ?? now;
          d.firstCount ??= { at, live: d.count.live };
          d.lastCount = { at, live: d.count.live, oldestSeconds: d.count.oldest };
          d.count = undefined;
          if (d.liveFlows === 0) done = 'no live flows left';
        } else {
          d.count.cursor = p.next;
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
  }
  return done;
}

/**
 * When the drain will most likely be done (ms), or undefined when nothing says: the rate its live flows fell at
 * between the first and the last complete count, carried on to zero, and never after its deadline.
 */
export function drainEstimate(d: DrainState): number | undefined {
  if (d.doneAt !== undefined) return d.doneAt;
  const f = d.firstCount;
  const l = d.lastCount;
  let est: number | undefined;
  if (f && l && l.at > f.at && l.live < f.live) est = l.at + (l.live * (l.at - f.at)) / (f.live - l.live);
  if (d.deadlineAt !== undefined && (est === undefined || est > d.deadlineAt)) est = d.deadlineAt;
  return est === undefined ? undefined : Math.round(est);
}

/** The longest a drain deadline may be, in seconds (a week). */
export const DRAIN_DEADLINE_MAX_S = 7 * 24 * 3600;

/**
 * A plan that changes one backend's drain state; no plan if it is already in that state (404 if unknown).
 * `deadlineS`: remove the flows left after this many seconds; given for a drain already under way, it sets (or
 * moves) that drain's deadline without a new plan.
 */
export function planDrain(state: ControlState, sid: string, bid: string, draining: boolean, now = Date.now(), deadlineS?: number): Change {
  const { si, bi } = state.find(sid, bid);
  const s = state.services[si];
  const key = backendKey(s, s.backends[bi]);
  if (deadlineS !== undefined && (!draining || !Number.isInteger(deadlineS) || deadlineS < 1 || deadlineS > DRAIN_DEADLINE_MAX_S)) {
    throw new ControlError(400, `deadline: expected whole seconds from 1 to ${DRAIN_DEADLINE_MAX_S} with a drain, got ${String(deadlineS)}`);
  }
  const running = state.runtime.get(key)?.drain;
  if (running && draining && deadlineS !== undefined && running.doneAt === undefined) running.deadlineAt = now + deadlineS * 1000;
  if (Boolean(running) === draining) return { plan: undefined };
  const plan = planRuntime(state, state.services, 'api');
  const rt = plan.runtime.get(key)!;
  if (!draining) {
    rt.drain = undefined;
    return { plan };
  }
  let packets = 0;
  try {
    packets = packetsOf(state.balancer, state.balancer.dp.counters(), key);
  } catch {
    // closed
  }
  rt.drain = { since: now, lastPackets: packets, lastPacketAt: now, ...(deadlineS !== undefined ? { deadlineAt: now + deadlineS * 1000 } : {}) };
  return { plan };
}

export class DrainSampler extends CounterSampler {
  /** Flow entries removed at drain deadlines since start (the metric). */
  removedAtDeadlines = 0;

  constructor(
    state: ControlState,
    /** A drain is done (the Controller's 'change' event). */
    private readonly changed: () => void,
  ) {
    super(state, DRAIN_SAMPLE_MS);
  }

  /** Samples twice a second while a drain is under way. */
  updateTimer(): void {
    this.runWhile([...this.state.runtime.values()].some((r) => r.drain && r.drain.doneAt === undefined));
  }

  sample(now = Date.now()): void {
    const c = this.counters();
    if (!c) return;
    const { balancer, log } = this.state;
    const dp = balancer.dp;
    for (const rt of this.state.runtime.values()) {
      const d = rt.drain;
      if (!d || d.doneAt !== undefined) continue;
      if (d.deadlineAt !== undefined && now >= d.deadlineAt) {
        this.removeAtDeadline(rt, d, now);
        continue;
      }
      const slot = balancer.backendSlot(rt.key);
      const page =
        dp.flows && slot !== undefined ? (cursor: number) => flowPage(dp, { backendSlot: slot, limit: DRAIN_FLOWS_LIMIT, cursor }, DRAIN_PAGES_PER_SAMPLE) : undefined;
      const done = drainStep(d, packetsOf(balancer, c, rt.key), page, now);
      if (!done) continue;
      const [sid, bid] = rt.key.split('|');
      log.info(
        { event: 'backend_drained', service: sid, backend: bid, drainSeconds: Math.round((now - d.since) / 100) / 10, by: done },
        `backend ${bid} of ${sid} is drained: ${done}`,
      );
      this.changed();
    }
    this.updateTimer();
  }

  /**
   * The deadline came with flows left: the drain is done now, and its backend's flow entries are removed, so
   * their next packets meet the current ring (another backend, which resets TCP). Counted and logged.
   */
  private removeAtDeadline(rt: BackendRuntime, d: DrainState, now: number): void {
    const { balancer, log } = this.state;
    const [sid, bid] = rt.key.split('|');
    d.doneAt = now;
    d.doneBy = 'deadline reached';
    const slot = balancer.backendSlot(rt.key);
    const removal = slot !== undefined && balancer.dp.deleteFlows ? balancer.dp.deleteFlows({ backendSlot: slot }) : 0;
    void Promise.resolve(removal).then(
      (n) => {
        d.removedAtDeadline = n;
        d.doneBy = `deadline reached: ${n} flow(s) removed`;
        this.removedAtDeadlines += n;
        log.warn(
          { event: 'drain_deadline', service: sid, backend: bid, flowsRemoved: n, drainSeconds: Math.round((now - d.since) / 100) / 10 },
          `backend ${bid} of ${sid}: drain deadline reached, ${n} flow(s) removed from the flow table`,
        );
        this.changed();
      },
      (err: unknown) => log.error({ err, service: sid, backend: bid }, 'removing the flows left at a drain deadline failed'),
    );
  }
}
