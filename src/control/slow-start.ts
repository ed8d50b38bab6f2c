// Slow start (issue 17 item 3): a backend that comes up in a service with `slow_start` (added, undrained, found
// healthy again) takes a growing share of new flows over the window. With Maglev that is its effective weight
// stepped up in SLOW_START_STEPS ring rebuilds through the change queue: at step s it has s/S of its weight (steps
// 1 .. S-1, each for an equal part of the window; its whole weight at the window's end) while every other backend of the service keeps its whole weight (integers: the others are published at S times
// their weight, which gives the ring they have anyway once Maglev reduces the weights by their gcd). Each rebuild
// moves the slots the backend gains and a few of the others' (Maglev's fill order; measured in
// test/slow-start.test.ts), never one of its own. Its established flows are never moved: only new flows see the
// ring. Each host steps on its own clock from when it saw the backend come up.
import type { BackendRuntime, ControlState } from './state';
import { backendKey } from '../dataplane/tables';

/** Ring rebuilds per window: the backend has 1/S, 2/S, ... (S-1)/S of its weight, then all of it. */
export const SLOW_START_STEPS = 4;
const PARTS = SLOW_START_STEPS - 1;

/** The step (1..SLOW_START_STEPS-1) of a ramp that began at `since`, or undefined once the window is over. */
export function rampStep(since: number, windowS: number, now: number): number | undefined {
  const elapsed = now - since;
  const windowMs = windowS * 1000;
  if (elapsed >= windowMs) return undefined;
  return Math.min(PARTS, Math.floor((Math.max(0, elapsed) * PARTS) / windowMs) + 1);
}

/** When the ramp's next step (or its end) comes, or undefined once it is over. */
export function nextStepAt(since: number, windowS: number, now: number): number | undefined {
  const step = rampStep(since, windowS, now);
  return step === undefined ? undefined : since + Math.ceil((windowS * 1000 * step) / PARTS);
}

/** Republishes the table at each step of the ramps under way (a timer, unref'd, set for the next step only). */
export class SlowStartTimer {
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly state: ControlState,
    private readonly republish: (reason: string) => Promise<unknown>,
  ) {}

  /** The next step of any ramp under way, or undefined. */
  nextStep(now = Date.now()): number | undefined {
    let next: number | undefined;
    for (const s of this.state.services) {
      if (!s.slowStartSeconds) continue;
      for (const b of s.backends) {
        const since = this.state.runtime.get(backendKey(s, b))?.slowStartSince;
        const at = since === undefined ? undefined : nextStepAt(since, s.slowStartSeconds, now);
        if (at !== undefined && (next === undefined || at < next)) next = at;
      }
    }
    return next;
  }

  /** (Re)arms the timer for the next step; called after every publish. */
  update(now = Date.now()): void {
    this.stop();
    const at = this.nextStep(now);
    if (at === undefined) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.republish('slow start: next step').catch((err: unknown) => this.state.log.error({ err }, 'a slow-start step could not be published'));
    }, Math.max(0, at - now));
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }
}

/** The ramp step a backend is at now (for the views), or undefined. */
export function rampOf(rt: BackendRuntime | undefined, windowS: number | undefined, now: number): number | undefined {
  return rt?.slowStartSince !== undefined && windowS ? rampStep(rt.slowStartSince, windowS, now) : undefined;
}
