// Active health checks, one HealthChecker per backend of a service with a health_check: made, replaced (the new
// one inherits the old one's state, so a reload does not flap backends) or stopped as plans become current, and
// their verdicts logged and published through the change queue.
import { HealthChecker, type ProbeFn, type ProbeRecord, type Transition } from '../health/checker';
import { backendId, serviceId, type BackendConfig, type HealthCheckSpec, type ServiceConfig } from '../config/model';
import { probeDataplane } from '../health/dataplane-probe';
import type { PublishResult } from './balancer';
import type { BackendRuntime, ControlState } from './state';

export class HealthCheckers {
  constructor(
    private readonly state: ControlState,
    /** Publishes the current state again (the change queue's republish). */
    private readonly republish: (reason: string) => Promise<PublishResult>,
    /** on_down: reset, for a backend that went down. */
    private readonly resetIfWanted: (s: ServiceConfig, key: string) => Promise<void>,
    /** The probe (tests); by default each check's own (src/health/probe.ts), or the data plane's for a dataplane check. */
    private readonly probeFn?: ProbeFn,
  ) {}

  /** Gives a backend the checker its service's check asks for: kept if the check is the same, else replaced or dropped. */
  sync(rt: BackendRuntime, s: ServiceConfig, b: BackendConfig): void {
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
    if (this.state.running) c.start(firstDelay(c)); // at start, startAll() starts them after the first publish
    rt.checker = c;
    rt.checkerIdent = ident;
  }

  /** Starts every checker (after the first publish), each after a random part of its first interval. */
  startAll(): void {
    for (const rt of this.state.runtime.values()) rt.checker?.start(firstDelay(rt.checker));
  }

  stopAll(): void {
    for (const rt of this.state.runtime.values()) rt.checker?.stop();
  }

  /** A dataplane check runs here: it needs the data plane and the backend's slot (src/health/dataplane-probe.ts). */
  private dataplaneProbeFor(spec: HealthCheckSpec, key: string): ProbeFn | undefined {
    if (spec.type !== 'dataplane') return undefined;
    const balancer = this.state.balancer;
    return (sp, t) => {
      const dp = balancer.dp;
      const { probe, probeState } = dp;
      if (!probe || !probeState) return Promise.resolve({ ok: false, ms: 0, detail: 'this data plane build cannot send probes' });
      const src = balancer.tableOptions.probeSource;
      return probeDataplane(
        { dp: { probe: (p) => probe.call(dp, p), probeState: (p) => probeState.call(dp, p) }, slot: balancer.backendSlot(key), source: t.family === 4 ? src?.ipv4 : src?.ipv6 },
        t, // the service port: config refuses another one (the data plane knows answers by backend address and port)
        Math.round(sp.timeout * 1000),
      );
    };
  }

  private onHealth(c: HealthChecker, t: Transition, last: ProbeRecord): void {
    const { log } = this.state;
    const [sid, bid] = c.key.split('|');
    const s = this.state.services.find((x) => serviceId(x) === sid);
    const b = s?.backends.find((x) => backendId(x, s.proto) === bid);
    const fields = { event: t.to === 'up' ? 'backend_up' : 'backend_down', service: sid, backend: bid, name: b?.name, reason: t.reason, checkMs: last.ms };
    if (t.to === 'down') log.warn(fields, `backend ${bid} of ${sid} is DOWN: ${t.reason}`);
    else log.info(fields, `backend ${bid} of ${sid} is UP: ${t.reason}`);
    this.republish(`health: ${bid} ${t.to}`)
      .then(() => (t.to === 'down' && s ? this.resetIfWanted(s, c.key) : undefined))
      .catch((err: unknown) => log.error({ err, service: sid, backend: bid }, 'publishing a health change failed'));
  }
}

/** Checkers started together spread their first probes over up to a second. */
function firstDelay(c: HealthChecker): number {
  return Math.random() * Math.min(1000, c.spec.interval * 1000);
}
