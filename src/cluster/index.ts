// Scale-out: one l4nat host among several behind an ECMP router (docs/scale-out.md). This file decides what
// the host announces and when, and feeds the cluster's health verdict into the controller:
//
//   VIP v announced        while l4nat runs, every worker's heartbeat is fresh, no stop has begun, some service
//                          of v has a non-empty ring (the agreed health leaves it a backend), and no service of v
//                          has had a ring that differs from the cluster's majority for disagreement_withdraw_after
//                          (disagreement.ts; announced again after a hold once it agrees)
//   return routes          while l4nat runs, its workers are alive, no stop has begun and (when upstream_protocols
//                          are named) at least one of those BGP sessions is Established: a host cut off from its
//                          router would translate replies into a dead link
//   nothing                from the first stop signal on (then withdraw_delay seconds before the rest of the stop),
//                          and before the data plane is up
//
// A dead l4nat is withdrawn by BIRD itself (`check link` on the TUN, see bird.ts). Every poll_interval the desired
// announcement is recomputed and BIRD is reconfigured only when it changed (or the last birdc failed: a BIRD that
// was down is brought up to date when it is back; it also reads the file at start). Layers: options.ts,
// bird.ts, agreement.ts → this file → up.ts.
import type { Logger } from '../util/log';
import { backendId, serviceId, type BackendConfig, type ServiceConfig } from '../config/model';
import { HealthAgreement, peerName, ringDigest, type LocalState } from './agreement';
import { BirdWriter, renderInclude, type Announcement } from './bird';
import { DisagreementGuard, type VipDisagreement } from './disagreement';
import type { HostReport } from './host-report';
import type { ClusterOptions } from './options';
import { buildClusterView, type ClusterView } from './view';

/** A VIP withdrawn for disagreement is announced again once it has agreed this long (at least 3 poll rounds). */
export function reannounceHoldMs(pollInterval: number): number {
  return Math.max(2_000, 3 * pollInterval * 1000);
}

/** What `l4nat status` shows of the cluster (GET /v1/status). */
export interface ClusterStatus {
  peers: { fresh: number; total: number };
  disagreementWithdrawAfterSeconds: number;
  disagreement: VipDisagreement[];
  /** VIPs withdrawn for disagreement since start. */
  withdrawals: number;
}
import { FlowSync, type SyncDataplane, type SyncNames, type SyncStats } from './sync';

/**
 * What the cluster needs of the control plane (src/control/controller.ts has it), owned here so that the cluster
 * does not depend on the controller: each backend's local health, the two hooks the cluster sets, a republish,
 * and what was last published.
 */
export interface ClusterControl {
  /** Locally healthy or not, by backend key. */
  localHealth(): Map<string, boolean>;
  /** While set, decides each backend's health from its key and the local verdict (the agreed health). */
  healthVote: ((key: string, locallyHealthy: boolean) => boolean) | null;
  /** While set, flow-state sync's report (status, metrics). */
  syncStatus: (() => SyncStats | null) | null;
  /** While set, awaited before a planned ring change (an operator's change, a reload). */
  beforePlannedChange: ((reason: string) => Promise<void>) | null;
  republish(reason: string): Promise<unknown>;
  /** The weights as last published: service id -> backend id -> weight. */
  readonly publishedWeights: ReadonlyMap<string, ReadonlyMap<string, number>>;
  summary(): { allDown: readonly string[] };
  readonly current: readonly ServiceConfig[];
  backendState(s: ServiceConfig, b: BackendConfig): { state: string };
}

export interface ClusterDeps {
  ctrl: ClusterControl;
  tun: string;
  /** The rings as last published to the data plane, by service id. */
  rings: () => ReadonlyMap<string, Uint32Array>;
  /** Why the data plane cannot forward (e.g. a silent worker), or null. */
  dataplaneProblem: () => string | null;
  /** For flow-state sync (cluster.sync): the data plane's sync calls and the slots by identity. */
  sync?: { dp: SyncDataplane; names: SyncNames };
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export class Cluster {
  readonly bird: BirdWriter | undefined;
  readonly agreement: HealthAgreement;
  readonly guard: DisagreementGuard;
  private deps: ClusterDeps | undefined;
  private agreed = new Map<string, boolean>();
  private stopping = false;
  private upstreamOk = true;
  private upstreamSeen = false;
  private announced: { vips: string[]; returnRoutes: string[] } = { vips: [], returnRoutes: [] };
  private lastWhy = '';
  /** Hosts announcing VIPs (this one as "self", peers that answered their last poll), and when that set last changed. */
  private members: string | undefined; // undefined until the first round (start-up is not a change)
  private membersChangedAt = 0;
  private busy = false;
  /** The disagreement decision's clock (tests set a fake one). */
  clock: () => number = Date.now;
  private sync: FlowSync | undefined;

  constructor(
    readonly opts: ClusterOptions,
    private readonly log: Logger,
  ) {
    this.bird = opts.bgp ? new BirdWriter(opts.bgp) : undefined;
    this.agreement = new HealthAgreement(opts, () => this.localState());
    this.guard = new DisagreementGuard(opts.disagreementWithdrawAfter * 1000, reannounceHoldMs(opts.pollInterval));
  }

  /** Before the TUN is opened (which gives it carrier): announce nothing, so a restart re-announces only once ready. */
  async prepare(tun: string): Promise<void> {
    if (!this.bird) return;
    const r = await this.bird.apply(renderInclude({ tun, vips: [], returnRoutes: [] }, { vips: 'starting', ret: 'starting' }), true);
    if (!r.ok) this.log.warn({ event: 'bgp_unreachable', err: r.output }, `cluster: birdc configure failed (${r.output.split('\n').pop()}); the file is written and BIRD reads it when it starts; retrying`);
  }

  /** Starts serving this host's view, polling the peers and announcing. Call once the data plane forwards. */
  async start(deps: ClusterDeps): Promise<void> {
    this.deps = deps;
    this.agreed = this.agreement.agree(deps.ctrl.localHealth());
    if (this.opts.health === 'majority' && this.opts.peers.length > 0) {
      deps.ctrl.healthVote = (key, local) => this.agreed.get(key) ?? local;
    }
    await this.agreement.listen();
    const firstRound = this.agreement.startPolling(() => void this.tick()); // a round every poll_interval, peers or not
    this.log.info(
      { event: 'cluster_started', listen: this.opts.listen ? peerName({ addr: this.opts.listen, port: this.opts.port }) : null, peers: this.opts.peers.map(peerName), health: this.opts.health, bgp: this.opts.bgp?.includeFile ?? null },
      `cluster: ${this.opts.peers.length} peer(s), health ${this.opts.health}${this.opts.bgp ? `, announcing through BIRD (${this.opts.bgp.includeFile})` : ''}`,
    );
    if (this.opts.settle > 0) deps.ctrl.beforePlannedChange = (reason) => this.settled(reason);
    if (this.opts.sync && deps.sync) {
      this.sync = new FlowSync(this.opts.sync, this.opts.listen, this.opts.peers, deps.sync.dp, deps.sync.names, this.log);
      await this.sync.start();
      deps.ctrl.syncStatus = () => this.syncStatus();
    }
    // With agreed health, the first announcement waits for the first poll of the peers: a host that (re)starts while
    // the cluster agrees a backend down publishes the agreed table before it takes traffic, not its own start table
    // (every backend up until its checks fail), which would send the flows the router moves to it to that backend.
    if (deps.ctrl.healthVote) {
      await firstRound;
      while (this.busy) await sleep(20); // the round's own tick
    }
    await this.tick();
  }

  /** Flow-state sync's peers and counts; null when sync is off. */
  syncStatus(): SyncStats | null {
    return this.sync?.status() ?? null;
  }

  /** Who announces now: this host (if it announces a VIP) and the peers whose last poll answered and announce. */
  private membership(): string {
    const peers = [...this.agreement.views.values()].filter((v) => v.error === undefined && v.at !== undefined && v.announcing).map((v) => v.peer);
    return [...(this.announced.vips.length ? ['self'] : []), ...peers.sort()].join(',');
  }

  /**
   * Holds a planned ring change until the cluster has been stable for `settle` seconds. A flow that moved to another
   * host (a host left or joined) has no entry there until a reply of its backend passes through that host; a ring
   * change before that sends it to another backend if its slot moved. First two poll rounds (so a host failure that
   * coincides with the change is seen), then until no host has joined or left for `settle` seconds.
   */
  async settled(reason: string): Promise<void> {
    const t0 = Date.now();
    await sleep(2 * this.opts.pollInterval * 1000 + 100);
    const settleMs = this.opts.settle * 1000;
    const limit = t0 + settleMs + 60_000; // never hold an operator's change for ever (a flapping host)
    let logged = false;
    while (!this.stopping && Date.now() - this.membersChangedAt < settleMs && Date.now() < limit) {
      if (!logged) {
        this.log.warn({ event: 'change_held', reason, members: this.members, settleSeconds: this.opts.settle }, `cluster: hosts joined or left ${Date.now() - this.membersChangedAt} ms ago; holding "${reason}" until the cluster has been stable for ${this.opts.settle} s`);
        logged = true;
      }
      await sleep(100);
    }
    if (logged) this.log.info({ event: 'change_released', reason, heldMs: Date.now() - t0 }, `cluster: applying "${reason}" after ${Date.now() - t0} ms`);
  }

  private ringDigests(): Record<string, string> {
    const rings: Record<string, string> = {};
    for (const [sid, ring] of this.deps?.rings() ?? []) rings[sid] = ringDigest(ring);
    return rings;
  }

  /** This host's report to its peers: digests, backends (state, configured weight, weight in the ring), disagreement. */
  private report(): HostReport {
    const backends: HostReport['backends'] = {};
    const d = this.deps;
    for (const s of d?.ctrl.current ?? []) {
      const sid = serviceId(s);
      const inRing = d!.ctrl.publishedWeights.get(sid);
      backends[sid] = {};
      for (const b of s.backends) {
        const bid = backendId(b, s.proto);
        backends[sid][bid] = { state: d!.ctrl.backendState(s, b).state, weight: b.weight, inRing: inRing?.get(bid) ?? 0 };
      }
    }
    return { rings: this.ringDigests(), announced: this.announced, backends, disagreement: this.guard.view() };
  }

  private localState(): LocalState {
    const d = this.deps;
    if (!d) return { ready: false, health: new Map(), agreed: new Map(), rings: {}, announced: this.announced };
    return { ready: true, health: d.ctrl.localHealth(), agreed: this.agreed, ...this.report() };
  }

  /** Every host's view side by side, as this host has it (GET /v1/cluster). */
  view(now = this.clock()): ClusterView {
    return buildClusterView({
      self: peerName({ addr: this.opts.listen, port: this.opts.port }),
      mine: this.report(),
      peers: [...this.agreement.views.values()],
      now,
      peerTimeoutSeconds: this.opts.peerTimeout,
      disagreementWithdrawAfterSeconds: this.opts.disagreementWithdrawAfter,
    });
  }

  status(now = this.clock()): ClusterStatus {
    return {
      peers: { fresh: this.agreement.freshViews(now).length, total: this.agreement.views.size },
      disagreementWithdrawAfterSeconds: this.opts.disagreementWithdrawAfter,
      disagreement: this.guard.view(),
      withdrawals: this.guard.withdrawals,
    };
  }

  /** Compares this host's ring digests with its fresh peers'; withdraws or restores VIPs (disagreement.ts). */
  private judgeDisagreement(): void {
    const d = this.deps!;
    const now = this.clock();
    const serviceVip = new Map(d.ctrl.current.map((s) => [serviceId(s), s.vip] as const));
    const ev = this.guard.update(now, this.ringDigests(), serviceVip, this.agreement.freshRings(now));
    const after = this.opts.disagreementWithdrawAfter;
    for (const w of ev.withdrawn) {
      const what = w.services.map((x) => `${x.service} ring ${x.mine.slice(0, 12)} vs ${x.majority.slice(0, 12)} held by ${x.majorityPeers.join(', ')} (${x.majorityPeers.length} of ${x.votes} votes)`).join('; ');
      this.log.error(
        { event: 'disagreement_withdraw', vip: w.vip, services: w.services, withdrawAfterSeconds: after },
        `cluster: withdrawing VIP ${w.vip}: its tables have differed from the cluster's majority for ${after} s: ${what}`,
      );
    }
    for (const r of ev.restored) {
      this.log.warn({ event: 'disagreement_cleared', vip: r.vip, withdrawnMs: r.withdrawnMs }, `cluster: VIP ${r.vip} agrees with the cluster's majority again: announcing it (withdrawn for ${r.withdrawnMs} ms)`);
    }
  }

  /** One round: agree on health (republish if the verdict changed), then bring BIRD up to date. */
  async tick(): Promise<void> {
    const d = this.deps;
    if (!d || this.busy) return;
    this.busy = true;
    try {
      const local = d.ctrl.localHealth();
      const next = this.agreement.agree(local);
      const flipped = [...next].filter(([k, v]) => this.agreed.get(k) !== v).map(([k, v]) => `${k.split('|')[1]} ${v ? 'up' : 'down'}`);
      this.agreed = next;
      if (flipped.length && d.ctrl.healthVote && !this.stopping) {
        const votes = 1 + this.agreement.freshViews().length;
        this.log.warn({ event: 'cluster_health', changes: flipped, votes }, `cluster: agreed health changed (${votes} vote(s)): ${flipped.join(', ')}`);
        await d.ctrl.republish(`cluster health: ${flipped.join(', ')}`).catch((err: unknown) => this.log.error({ err }, 'publishing the agreed health failed'));
      }
      if (!this.stopping) this.judgeDisagreement();
      await this.announce();
      const m = this.membership();
      if (this.members === undefined) this.members = m;
      else if (m !== this.members) {
        this.log.info({ event: 'cluster_members', members: m, before: this.members }, `cluster: hosts announcing: ${m || 'none'} (were ${this.members || 'none'})`);
        this.members = m;
        this.membersChangedAt = Date.now();
      }
    } finally {
      this.busy = false;
    }
  }

  /** The announcement wanted now, and why. */
  desired(): { a: Announcement; why: { vips: string; ret: string } } {
    const d = this.deps!;
    const tun = d.tun;
    const problem = this.stopping ? 'stopping' : d.dataplaneProblem();
    if (problem) return { a: { tun, vips: [], returnRoutes: [] }, why: { vips: `withdrawn: ${problem}`, ret: `withdrawn: ${problem}` } };
    const weights = d.ctrl.publishedWeights;
    const allDown = new Set(d.ctrl.summary().allDown);
    const byVip = new Map<string, { family: 4 | 6; serving: boolean }>();
    for (const s of d.ctrl.current) {
      const sid = serviceId(s);
      const w = weights.get(sid);
      const serving = !allDown.has(sid) && w !== undefined && [...w.values()].some((x) => x > 0);
      const e = byVip.get(s.vip) ?? { family: s.family, serving: false };
      e.serving ||= serving;
      byVip.set(s.vip, e);
    }
    const differing = this.guard.withdrawn();
    const vips = [...byVip].filter(([a, e]) => e.serving && !differing.has(a)).map(([addr, e]) => ({ addr, family: e.family }));
    const dark = [...byVip].filter(([, e]) => !e.serving).map(([a]) => a);
    const apart = [...byVip.keys()].filter((a) => differing.has(a));
    const ret = this.upstreamOk ? (this.opts.bgp?.returnRoutes ?? []) : [];
    return {
      a: { tun, vips, returnRoutes: ret },
      why: {
        vips: [
          ...(dark.length ? [`withdrawn (no healthy backend): ${dark.join(', ')}`] : []),
          ...(apart.length ? [`withdrawn (tables differ from the cluster's majority): ${apart.join(', ')}`] : []),
        ].join('; ') || 'every VIP has a healthy backend and agrees with the cluster',
        ret: this.upstreamOk ? 'upstream reachable' : `withdrawn: no upstream session Established (${this.opts.bgp?.upstreamProtocols.join(', ')})`,
      },
    };
  }

  private async checkUpstream(): Promise<void> {
    const b = this.bird;
    if (!b || b.opts.upstreamProtocols.length === 0) return;
    const protos = await b.protocols();
    if (!protos) return; // BIRD unreachable: keep the last verdict
    const ok = b.opts.upstreamProtocols.some((n) => protos.get(n)?.info.startsWith('Established'));
    if (ok !== this.upstreamOk || !this.upstreamSeen) {
      const states = Object.fromEntries(b.opts.upstreamProtocols.map((n) => [n, protos.get(n)?.info ?? 'missing']));
      if (ok !== this.upstreamOk) {
        this.log[ok ? 'info' : 'error']({ event: ok ? 'upstream_up' : 'upstream_down', sessions: states }, ok ? 'cluster: an upstream BGP session is Established again' : 'cluster: no upstream BGP session is Established: withdrawing the return routes');
      }
      this.upstreamOk = ok;
      this.upstreamSeen = true;
    }
  }

  private async announce(): Promise<void> {
    if (!this.bird || !this.deps) return;
    if (!this.stopping) await this.checkUpstream();
    const { a, why } = this.desired();
    const text = renderInclude(a, why);
    const r = await this.bird.apply(text);
    const now = { vips: a.vips.map((v) => v.addr), returnRoutes: a.returnRoutes.map((x) => x.prefix) };
    const key = JSON.stringify(now);
    if (r.ok && key !== JSON.stringify(this.announced)) {
      this.log.info({ event: 'bgp_announce', vips: now.vips, returnRoutes: now.returnRoutes, why }, `cluster: announcing VIPs [${now.vips.join(', ')}] and return routes [${now.returnRoutes.join(', ')}] (${why.vips}; ${why.ret})`);
      this.announced = now;
    } else if (!r.ok && this.lastWhy !== r.output) {
      this.log.error({ event: 'bgp_unreachable', err: r.output }, `cluster: birdc configure failed: ${r.output.split('\n').pop()} (retrying every ${this.opts.pollInterval} s)`);
    }
    this.lastWhy = r.ok ? '' : r.output;
  }

  /** First step of a stop: withdraw everything, then give the routers withdraw_delay seconds to move the flows. */
  async beginShutdown(): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    if (!this.bird || !this.deps) return;
    while (this.busy) await sleep(20);
    await this.announce();
    const delay = this.bird.opts.withdrawDelay;
    this.log.info({ event: 'bgp_withdrawn', delaySeconds: delay }, `cluster: stopping: everything withdrawn; waiting ${delay} s for the routers to move the flows`);
    await sleep(delay * 1000);
  }

  async close(): Promise<void> {
    this.stopping = true;
    await this.sync?.close();
    await this.agreement.close();
    if (this.deps) {
      this.deps.ctrl.healthVote = null;
      this.deps.ctrl.beforePlannedChange = null;
      this.deps.ctrl.syncStatus = null;
    }
    if (this.bird && this.deps) {
      while (this.busy) await sleep(20);
      await this.announce();
    }
  }
}
