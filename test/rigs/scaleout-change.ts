// Scale-out (issue 8): a backend set change coinciding with a host failure, the case Maglev's paper calls out. A flow
// that moves to another host has no flow entry there; the data plane pins it when its backend's reply passes through
// that host. A ring change before that sends it to another backend if its slot moved (the new backend resets it).
// Measured with 200 long-lived connections over three hosts (scaleout.ts): a fourth backend joins on the survivors at
// the moment one l4nat is SIGKILLed, with
//   - the backends' return route: ECMP over the hosts (replies may return through any host), or "via the host that
//     forwarded" (conntrack mark from the forwarding host's MAC address, per-host tables fed by BIRD);
//   - cluster.settle 0 (the change applies at once) or 3 (held until the set of announcing hosts has been stable 3 s).
// The cells whose outcome docs/scale-out.md states are asserted by test/scaleout-change-netns.test.ts; the others are races
// between the ring change and each moved flow's first packets, measured by `npm run report:scaleout-change`
// (scaleout-change-report.ts). Layers: scaleout.ts, src/lab/workload.ts → this file → the test and the report.
// ChangeBench.create(6) runs the same over IPv6 (the lab's `family: 6`).
import { SERVICE_PORT, startStreams, type StreamStatus } from '../../src/lab/workload';
import { sleep, waitUntil } from './fixture';
import { startScaleout, type Family, type ScaleoutLab } from './scaleout';

export const STREAMS = 200;
const ALL = ['lb1', 'lb2', 'lb3'];
const B3 = ['b1', 'b2', 'b3'];
const B4 = ['b1', 'b2', 'b3', 'b4'];

function progressed(before: StreamStatus, now: StreamStatus): { ok: number; errors: Record<string, number>; stalled: number } {
  let ok = 0;
  let stalled = 0;
  const errors: Record<string, number> = {};
  for (const c of now.conns) {
    const was = before.conns.find((x) => x.i === c.i);
    if (c.error !== null) errors[c.error] = (errors[c.error] ?? 0) + 1;
    else if (was && c.bytesVerified > was.bytesVerified) ok++;
    else stalled++;
  }
  return { ok, errors, stalled };
}

/** One measured cell: connections (of STREAMS) that broke in the 6 s after the event, and what b4 got. */
export interface Cell {
  name: string;
  broken: number;
  errors: Record<string, number>;
  stalled: number;
  applyMs: number;
  b4: string[];
}

/** Three l4nat hosts behind ECMP announced by BIRD, four backends (b4 not in the ring at first). */
export class ChangeBench {
  private constructor(
    readonly lab: ScaleoutLab,
    private readonly sync: boolean,
  ) {}

  /** `family`: the lab's (6: the same over IPv6); `sync`: the hosts run flow-state sync (cluster.sync). */
  static async create(family: Family = 4, opts: { sync?: boolean; settle?: number } = {}): Promise<ChangeBench> {
    const sync = opts.sync ?? false;
    const lab = await startScaleout({ hosts: 3, backends: 4, family }, (l) => {
      for (const h of l.hosts) l.writeL4natConfig(h, { backends: B3, settle: opts.settle ?? 0, sync });
    });
    const b = new ChangeBench(lab, sync);
    b.settle = opts.settle ?? 0;
    return b;
  }

  /** The backend list last written to the hosts' files ("b2@0": b2 drained, weight 0). */
  private backendsNow: readonly string[] = B3;

  private cfg(backends: readonly string[], settle: number): { backends: readonly string[]; settle: number; sync: boolean } {
    this.backendsNow = backends;
    return { backends, settle, sync: this.sync };
  }

  destroy(): Promise<void> {
    return this.lab.destroy();
  }

  /** Every host in `roles` reloads (POST /v1/reload) with `backends`; throws unless each answers 200. */
  private async reload(roles: string[], backends: string[], settle: number): Promise<void> {
    for (const r of roles) this.lab.writeL4natConfig(this.lab.host(r), this.cfg(backends, settle));
    await Promise.all(
      roles.map(async (r) => {
        const res = await this.lab.admin(r, 'POST', '/v1/reload');
        if (res.status !== 200) throw new Error(`reload on ${r}: ${res.status} ${JSON.stringify(res.body)}`);
      }),
    );
  }

  private async converge(role: string, present: boolean): Promise<void> {
    const h = this.lab.host(role);
    await waitUntil(`router and backends ${present ? 'adding' : 'dropping'} ${role}`, async () => {
      const r = (await this.lab.nexthops('r', this.lab.vip)).includes(h.upAddr);
      const b = await Promise.all(this.lab.backends.map(async (x) => (await this.lab.nexthops(x.role, 'default')).includes(h.lanAddr)));
      return r === present && b.every((x) => x === present);
    }, 40_000);
  }

  /** STREAMS streams; `act` during them; connections broken in the 6 s after it. */
  private async measure(name: string, act: () => Promise<void>): Promise<Cell> {
    const streams = startStreams(this.lab, { target: this.lab.vip, streams: STREAMS, durationMs: 60_000, intervalMs: 100, chunkBytes: 512, stallMs: 25_000, connTimeoutMs: 10_000 });
    try {
      const up = await streams.streaming;
      if (up.established !== STREAMS || up.failed !== 0) throw new Error(`${name}: ${up.established} of ${STREAMS} streams established, ${up.failed} failed, before the event`);
      await sleep(1_000);
      const before = await streams.status();
      const t0 = Date.now();
      await act();
      const applyMs = Date.now() - t0;
      await sleep(6_000);
      const p = progressed(before, await streams.status());
      // What b4 got on the surviving hosts: its state, ring weight and packets forwarded to it.
      const b4 = await Promise.all(['lb2', 'lb3'].map(async (r) => {
        if (!this.lab.l4nats.get(r)?.proc.running) return `${r}: not running`;
        const svc = (await this.lab.admin(r, 'GET', '/v1/services')).body.services[0];
        const b = svc.backends.find((x: { addr: string }) => x.addr === this.lab.backendAddr('b4'));
        return b ? `${r}: ${b.state} w${b.effectiveWeight} ${b.counters.packets_in} pkts in, ${b.counters.new_flows} new flows` : `${r}: no b4`;
      }));
      return { name, broken: STREAMS - p.ok, errors: p.errors, stalled: p.stalled, applyMs, b4 };
    } finally {
      streams.stop();
      await streams.result.catch(() => undefined);
    }
  }

  /** SIGHUP (a reload from the file, applied in milliseconds); resolves once each host logged the reload. */
  private async hup(roles: string[], backends: string[], settle: number): Promise<void> {
    for (const r of roles) this.lab.writeL4natConfig(this.lab.host(r), this.cfg(backends, settle));
    const count = (r: string): number => this.lab.l4nats.get(r)!.logs().filter((x) => x.event === 'reload').length;
    const before = new Map(roles.map((r) => [r, count(r)]));
    for (const r of roles) this.lab.l4nats.get(r)!.proc.kill('SIGHUP');
    await waitUntil('the reloads', async () => roles.every((r) => count(r) > before.get(r)!), 30_000, 20);
  }

  /**
   * b4 out again everywhere (no streams run: removing b4 breaks nothing), then lb1 back with the same file: a host
   * that came back with other tables than the survivors' would withdraw its VIP after disagreement_withdraw_after.
   */
  private async restore(): Promise<void> {
    await this.reload(['lb2', 'lb3'], B3, this.settle);
    this.lab.writeL4natConfig(this.lab.host('lb1'), this.cfg(B3, this.settle));
    await this.lab.startL4nat('lb1');
    await this.converge('lb1', true);
  }

  private settle = 0;

  /** Every host restarts with cluster.settle `s` (a restart-only setting). */
  async setSettle(s: number): Promise<void> {
    for (const r of ALL) {
      await this.lab.l4nats.get(r)!.stop();
      this.lab.writeL4natConfig(this.lab.host(r), this.cfg(B3, s));
      await this.lab.startL4nat(r);
      await this.converge(r, true);
    }
    this.settle = s;
    await sleep(s * 1000 + 500); // the restarts themselves are membership changes
  }

  /** Backends' return path: via the host that forwarded (true) or ECMP over the hosts (false). */
  async setForwarderReturn(on: boolean): Promise<void> {
    if (on) await this.lab.enableForwarderReturn();
    else await this.lab.disableForwarderReturn();
  }

  /** b4 joins on all three hosts; no host fails. Then back to three backends. */
  async changeAlone(): Promise<Cell> {
    const c = await this.measure('changeAlone', () => this.reload(ALL, B4, this.settle));
    await this.reload(ALL, B3, this.settle);
    return c;
  }

  /** lb1 is SIGKILLed and, in the same instant, the survivors reload with b4 added (SIGHUP). Then restored. */
  async coinciding(name: string): Promise<Cell> {
    const c = await this.measure(name, async () => {
      this.lab.l4nats.get('lb1')!.proc.kill('SIGKILL');
      await this.hup(['lb2', 'lb3'], B4, this.settle);
      await this.converge('lb1', false);
    });
    await this.restore();
    return c;
  }

  /**
   * Drains backend `id` on `roles` the way a cluster is changed: its weight 0 in the config file, then a reload
   * (a cluster host refuses backend writes through its API). Each reload returns once applied (after the settle hold).
   */
  private async drain(roles: string[], id: string): Promise<void> {
    await this.reload(roles, this.backendsNow.map((b) => (b.split('@')[0] === id ? `${id}@0` : b)), this.settle);
  }

  /** SIGKILL of `role`; resolves once the router and the backends have dropped it. */
  private async kill(role: string): Promise<void> {
    this.lab.l4nats.get(role)!.proc.kill('SIGKILL');
    await this.converge(role, false);
  }

  /** (b) b2 is drained everywhere; 4 s later lb1 dies. Its flows pinned to the drained b2 must keep it. Leaves lb1 down. */
  async drainThenFailure(): Promise<Cell> {
    return this.measure('drainThenFailure', async () => {
      await this.drain(ALL, 'b2');
      await sleep(4_000);
      await this.kill('lb1');
    });
  }

  /** (c) Three changes in a row (b4 joins, b2 drained, b1 drained), then lb1 dies. Leaves lb1 down. */
  async threeChangesThenFailure(): Promise<Cell> {
    return this.measure('threeChangesThenFailure', async () => {
      await this.hup(ALL, B4, this.settle);
      await sleep(1_500);
      await this.drain(ALL, 'b2');
      await sleep(1_500);
      await this.drain(ALL, 'b1');
      await sleep(1_500);
      await this.kill('lb1');
    });
  }

  /** (d) b4 joins; lb1 restarts (SIGKILL, started again, routed to again); then lb2 dies. Leaves lb2 down. */
  async restartThenOtherFailure(): Promise<Cell> {
    return this.measure('restartThenOtherFailure', async () => {
      await this.hup(ALL, B4, this.settle);
      await sleep(2_000);
      await this.kill('lb1');
      this.lab.writeL4natConfig(this.lab.host('lb1'), this.cfg(B4, this.settle));
      await this.lab.startL4nat('lb1');
      await this.converge('lb1', true);
      await sleep(3_000);
      await this.kill('lb2');
    });
  }

  /**
   * Flows established before a change keep their old backend through their entries; b4 joins, and 4 s later lb1
   * dies: its flows move, are looked up in the new ring and break where their slot moved, unless the second chance
   * (previous ring) finds their backend. Leaves lb1 down.
   */
  async failureAfterChange(): Promise<Cell> {
    return this.measure('failure4sAfterChange', async () => {
      await this.hup(ALL, B4, this.settle);
      await sleep(4_000);
      this.lab.l4nats.get('lb1')!.proc.kill('SIGKILL');
      await this.converge('lb1', false);
    });
  }
}
