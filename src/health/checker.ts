// The health state of one backend under one active check, with rise/fall thresholds (keepalived, HAProxy).
//
// Timing: a probe starts every interval × (1 − jitter × random) — jitter only ever shortens the wait, so
// the detection bound stays what an operator computes: a backend that dies right after a successful probe
// is declared down at most interval × fall + timeout later (fall more probes, the last one taking up to
// timeout). Probes never overlap (timeout ≤ interval is enforced by the config).
//
// Start state: up, but with fall − 1 failures already counted (HAProxy's "up, going down"): a new backend
// takes traffic at once and the first failed probe takes it out. A replaced checker (config reload that
// changed the check) inherits the old one's state, so a reload does not flap backends.
import { probe, type ProbeResult, type ProbeTarget } from './probe';
import type { HealthCheckSpec } from '../config/model';

export type HealthState = 'up' | 'down';

export interface ProbeRecord extends ProbeResult {
  at: string; // ISO time the probe ended
}

export interface Transition {
  at: string;
  from: HealthState;
  to: HealthState;
  reason: string;
}

const HISTORY = 32;

export type ProbeFn = (spec: HealthCheckSpec, t: ProbeTarget) => Promise<ProbeResult>;

export class HealthChecker {
  state: HealthState = 'up';
  successes = 0; // consecutive
  failures: number; // consecutive
  checks = { ok: 0, failed: 0 };
  readonly history: ProbeRecord[] = [];
  readonly transitions: Transition[] = [];
  private timer: NodeJS.Timeout | undefined;
  private stopped = true;
  private running = false;

  constructor(
    readonly key: string,
    readonly spec: HealthCheckSpec,
    readonly target: ProbeTarget,
    private readonly onChange: (c: HealthChecker, t: Transition, last: ProbeRecord) => void,
    private readonly probeFn: ProbeFn = probe,
    private readonly random: () => number = Math.random,
  ) {
    this.failures = spec.fall - 1;
  }

  /** The spec and target as one comparable string: same identity = same checker survives a reload. */
  static identity(spec: HealthCheckSpec, t: ProbeTarget): string {
    return JSON.stringify([spec, t.addr, t.port]);
  }

  /** Takes over the state of the checker this one replaces. */
  inherit(old: HealthChecker): void {
    this.state = old.state;
    this.successes = old.state === 'down' ? Math.min(old.successes, this.spec.rise - 1) : 0;
    this.failures = old.state === 'up' ? Math.min(old.failures, this.spec.fall - 1) : 0;
    this.checks = { ...old.checks };
    this.history.push(...old.history);
    this.transitions.push(...old.transitions);
  }

  start(firstDelayMs = 0): void {
    this.stopped = false;
    this.schedule(firstDelayMs);
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }

  nextDelayMs(): number {
    return this.spec.interval * 1000 * (1 - this.spec.jitter * this.random());
  }

  private schedule(ms: number): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => void this.runOnce(), Math.max(0, ms));
    this.timer.unref();
  }

  /** One probe and its effect on the state. Public for tests; the schedule calls it. */
  async runOnce(): Promise<ProbeRecord | undefined> {
    if (this.running) return undefined;
    this.running = true;
    const started = Date.now();
    const delay = this.nextDelayMs();
    try {
      const r = await this.probeFn(this.spec, this.target);
      const rec: ProbeRecord = { ...r, at: new Date().toISOString() };
      this.record(rec);
      return rec;
    } finally {
      this.running = false;
      this.schedule(started + delay - Date.now());
    }
  }

  private record(rec: ProbeRecord): void {
    if (this.stopped) return;
    this.history.push(rec);
    if (this.history.length > HISTORY) this.history.shift();
    if (rec.ok) {
      this.checks.ok++;
      this.successes++;
      this.failures = 0;
      if (this.state === 'down' && this.successes >= this.spec.rise) {
        this.transition('up', `${this.successes} successful ${this.spec.type} check(s) in a row (rise ${this.spec.rise})`, rec);
      }
    } else {
      this.checks.failed++;
      this.failures++;
      this.successes = 0;
      if (this.state === 'up' && this.failures >= this.spec.fall) {
        this.transition('down', `${rec.detail} (${this.failures} failed ${this.spec.type} check(s) in a row, fall ${this.spec.fall})`, rec);
      }
    }
  }

  private transition(to: HealthState, reason: string, rec: ProbeRecord): void {
    const t: Transition = { at: rec.at, from: this.state, to, reason };
    this.state = to;
    this.transitions.push(t);
    if (this.transitions.length > HISTORY) this.transitions.shift();
    this.onChange(this, t, rec);
  }
}
