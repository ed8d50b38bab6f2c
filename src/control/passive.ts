// The passive health check (config passive_check): per backend, the data plane's counters sampled once a
// second — new flows, flows answered, packets back, resets — over a sliding window. Too many new flows without
// an answer, or too many resets, hold the backend out of the ring for `hold` seconds; the hold's end puts it
// back. Each verdict is published through the change queue like any health verdict.
import { backendId, serviceId, type PassiveCheckSpec, type ServiceConfig } from '../config/model';
import type { CounterMap } from '../dataplane/native';
import { backendKey } from '../dataplane/tables';
import type { PublishResult } from './balancer';
import { CounterSampler } from './sampler';
import type { ControlState, PassiveState } from './state';

const PASSIVE_SAMPLE_MS = 1_000;

export type PassiveVerdict = { to: 'up' } | { to: 'down'; why: string } | undefined;

/**
 * One sample of one backend: records its counters `o` (undefined: no slot, no counters) in `st` and says whether
 * the backend goes down (held out from now) or its hold is over; undefined: no change. Flows are counted up to
 * the previous sample (so each has had at least one sample period to be answered), replies up to now.
 */
export function passiveStep(st: PassiveState, p: PassiveCheckSpec, o: CounterMap | undefined, now: number): PassiveVerdict {
  if (st.heldUntil !== undefined) {
    if (now < st.heldUntil) return undefined;
    st.heldUntil = undefined;
    st.reason = undefined;
    st.samples = [];
    return { to: 'up' };
  }
  const cur = { t: now, newFlows: o?.new_flows ?? 0, answered: o?.flows_answered ?? 0, out: o?.packets_out ?? 0, resets: o?.resets ?? 0 };
  st.samples.push(cur);
  while (st.samples.length > 2 && st.samples[1].t <= now - p.window * 1000) st.samples.shift();
  if (st.samples.length < 2) return undefined;
  const base = st.samples[0];
  const prev = st.samples[st.samples.length - 2];
  // Without the data plane's flows_answered counter: unanswered only if not one packet came back.
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
  if (!why) return undefined;
  st.heldUntil = now + p.hold * 1000;
  st.reason = why;
  st.samples = [];
  return { to: 'down', why };
}

export class PassiveCheck extends CounterSampler {
  constructor(
    state: ControlState,
    /** Publishes the current state again (the change queue's republish). */
    private readonly republish: (reason: string) => Promise<PublishResult>,
    /** on_down: reset, for a backend that went down. */
    private readonly resetIfWanted: (s: ServiceConfig, key: string) => Promise<void>,
  ) {
    super(state, PASSIVE_SAMPLE_MS);
  }

  /** Samples once a second while a running service has a passive check. */
  updateTimer(): void {
    this.runWhile(this.state.services.some((s) => s.passive), this.state.running);
  }

  /** Samples every backend with a passive check and publishes what changed (one table for all of them). */
  sample(now = Date.now()): void {
    const c = this.counters();
    if (!c) return;
    const { balancer, log } = this.state;
    const changes: string[] = [];
    const downs: Array<{ s: ServiceConfig; key: string }> = [];
    for (const s of this.state.services) {
      const p = s.passive;
      if (!p) continue;
      for (const b of s.backends) {
        const key = backendKey(s, b);
        const st = this.state.runtime.get(key)?.passive;
        if (!st) continue;
        const slot = balancer.backendSlot(key);
        const v = passiveStep(st, p, slot === undefined ? undefined : c.backends.get(slot), now);
        if (!v) continue;
        const bid = backendId(b, s.proto);
        const sid = serviceId(s);
        if (v.to === 'up') {
          log.info({ event: 'backend_up', service: sid, backend: bid, name: b.name, reason: `passive hold of ${p.hold} s over` }, `backend ${bid} of ${sid} is back in the ring: passive hold of ${p.hold} s over`);
          changes.push(`${bid} passive hold over`);
        } else {
          log.error({ event: 'backend_down', service: sid, backend: bid, name: b.name, reason: v.why, holdSeconds: p.hold }, `backend ${bid} of ${sid} is DOWN for ${p.hold} s: ${v.why}`);
          changes.push(`${bid} passive down`);
          downs.push({ s, key });
        }
      }
    }
    if (changes.length) {
      this.republish(`passive: ${changes.join(', ')}`)
        .then(() => Promise.all(downs.map((d) => this.resetIfWanted(d.s, d.key))))
        .catch((err: unknown) => log.error({ err }, 'publishing a passive health change failed'));
    }
  }
}
