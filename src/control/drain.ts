// Drains: a draining backend is out of the ring (effective weight 0) while its established flows go on; the
// drain is reported done once the backend has no live flow left. With the flow table that is counted, a bounded
// part of the table per sample (a large table is never walked at once); a data plane that cannot list flows
// falls back to the backend's packet counters staying still for DRAIN_QUIET_MS.
import type { CounterSnapshot, FlowPage } from '../dataplane/native';
import { backendKey } from '../dataplane/tables';
import { flowPage } from './flows';
import { planRuntime, type Change } from './plan';
import { CounterSampler } from './sampler';
import type { BalancerLike, ControlState, DrainState } from './state';

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
      d.count = { cursor: 0, live: 0 };
    }
    if (d.count) {
      try {
        const p = page(d.count.cursor);
        d.count.live += p.flows.filter((e) => e.state !== 'CLOSE' && !(e.state === 'UDP' && e.idleSeconds * 1000 >= DRAIN_QUIET_MS)).length;
        if (p.next === null) {
          d.liveFlows = d.count.live;
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

/** A plan that changes one backend's drain state; no plan if it is already in that state (404 if unknown). */
export function planDrain(state: ControlState, sid: string, bid: string, draining: boolean, now = Date.now()): Change {
  const { si, bi } = state.find(sid, bid);
  const s = state.services[si];
  const key = backendKey(s, s.backends[bi]);
  if (Boolean(state.runtime.get(key)?.drain) === draining) return { plan: undefined };
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
  rt.drain = { since: now, lastPackets: packets, lastPacketAt: now };
  return { plan };
}

export class DrainSampler extends CounterSampler {
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
}
