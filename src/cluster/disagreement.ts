// A host whose tables disagree with the cluster's stops taking traffic (docs/scale-out.md, "Tables that disagree").
// Every host publishes a sha256 of each service's ring (agreement.ts). A flow that moves between hosts (ECMP moves
// flows whenever a host leaves or joins) is forwarded by the ring of the host it lands on, so a host whose ring for
// a service differs from the others' sends such flows to another backend, which resets them. This file decides, from
// this host's digests and its fresh peers' (pure, clock passed in), which of this host's VIPs to withdraw:
//
//   - per service, the votes are this host's digest and each fresh peer's (a peer without the service abstains);
//     the service *differs* when a strict majority of those votes holds one digest that is not this host's;
//   - with no strict majority (two hosts that differ, three different tables, a 2-2 split) nobody is told apart,
//     so nobody withdraws: withdrawing there could take the VIP off every host at once;
//   - a VIP (which carries several services) differs when any of its services differs and some host of that
//     majority announces the VIP (at its last answer): when no host of the majority takes the VIP's traffic, no flow
//     can move between this host and them, and withdrawing would only leave the VIP dark;
//   - it is withdrawn once it has differed without a break for withdrawAfterMs, and announced again once it has not
//     differed for holdMs (so a table that flips back and forth does not flap the route).
//
// A host in the majority never withdraws, nor one that sees no strict majority: with the tables steady, two strict
// majorities of the same votes share a host, which cannot hold two digests, so the withdrawn hosts are a minority and
// the majority keeps announcing. The time bound is what lets an ordinary rolling change through (hosts disagree until
// the last one has reloaded): only a host that is still in the minority withdrawAfterMs after it diverged steps out.
// Layers: agreement.ts (digests, peer views) → this file → index.ts (announces what this leaves).

export interface PeerRings {
  peer: string;
  /** Service id -> ring digest, as the peer last served them. */
  rings: Readonly<Record<string, string>>;
  /** VIPs the peer announced at its last answer. */
  vips: readonly string[];
}

export type ServiceJudgement =
  | { kind: 'agree' | 'no-majority'; votes: number }
  | { kind: 'differs'; votes: number; majority: string; majorityPeers: string[] };

/** The digest more than half of `votes` hold, or null. */
export function strictMajority(votes: readonly string[]): string | null {
  const counts = new Map<string, number>();
  for (const v of votes) counts.set(v, (counts.get(v) ?? 0) + 1);
  for (const [digest, n] of counts) if (n * 2 > votes.length) return digest;
  return null;
}

/** The verdict for one service's ring: `mine` against the fresh peers' digests (peers without the service abstain). */
export function judgeService(service: string, mine: string, peers: readonly PeerRings[]): ServiceJudgement {
  const voters = peers.filter((p) => p.rings[service] !== undefined);
  const votes = 1 + voters.length;
  const majority = strictMajority([mine, ...voters.map((p) => p.rings[service]!)]);
  if (majority === null) return { kind: 'no-majority', votes };
  if (majority === mine) return { kind: 'agree', votes };
  return { kind: 'differs', votes, majority, majorityPeers: voters.filter((p) => p.rings[service] === majority).map((p) => p.peer) };
}

export interface DifferingService {
  service: string;
  mine: string;
  majority: string;
  /** Hosts holding the majority's digest (this host's peers) and the votes counted. */
  majorityPeers: string[];
  votes: number;
}

export interface VipDisagreement {
  vip: string;
  state: 'differs' | 'withdrawn';
  /** When it started to differ (state differs), or was withdrawn (state withdrawn); ms. */
  since: number;
  /** Withdrawn: since when it has agreed (re-announced holdMs after that), or null. */
  agreeingSince: number | null;
  services: DifferingService[];
}

export interface GuardEvents {
  withdrawn: VipDisagreement[];
  restored: Array<{ vip: string; withdrawnMs: number }>;
}

export class DisagreementGuard {
  private readonly vips = new Map<string, VipDisagreement>();
  /** VIPs withdrawn since start (each withdrawal once). */
  withdrawals = 0;

  /** withdrawAfterMs 0: off (nothing is ever withdrawn). */
  constructor(
    readonly withdrawAfterMs: number,
    readonly holdMs: number,
  ) {}

  /**
   * One round. `mine`: this host's digests by service id; `serviceVip`: each service's VIP; `peers`: the fresh
   * peers' digests only (a stale peer does not vote). Returns what changed in this round.
   */
  update(now: number, mine: Readonly<Record<string, string>>, serviceVip: ReadonlyMap<string, string>, peers: readonly PeerRings[]): GuardEvents {
    const ev: GuardEvents = { withdrawn: [], restored: [] };
    if (this.withdrawAfterMs <= 0) {
      for (const [vip, d] of this.vips) if (d.state === 'withdrawn') ev.restored.push({ vip, withdrawnMs: now - d.since });
      this.vips.clear();
      return ev;
    }
    const differing = new Map<string, DifferingService[]>();
    for (const [service, vip] of serviceVip) {
      const digest = mine[service];
      if (digest === undefined) continue;
      const j = judgeService(service, digest, peers);
      if (j.kind !== 'differs') continue;
      // Only a majority that takes the VIP's traffic makes flows move between it and this host.
      if (!peers.some((p) => j.majorityPeers.includes(p.peer) && p.vips.includes(vip))) continue;
      const list = differing.get(vip) ?? [];
      list.push({ service, mine: digest, majority: j.majority, majorityPeers: j.majorityPeers, votes: j.votes });
      differing.set(vip, list);
    }
    const known = new Set(serviceVip.values());
    for (const [vip, d] of this.vips) {
      const diff = differing.get(vip);
      if (d.state === 'differs') {
        if (!diff) this.vips.delete(vip);
        else {
          d.services = diff;
          if (now - d.since >= this.withdrawAfterMs) {
            d.state = 'withdrawn';
            d.since = now;
            this.withdrawals++;
            ev.withdrawn.push(d);
          }
        }
      } else if (!known.has(vip)) {
        this.vips.delete(vip); // no longer configured: nothing to announce again
      } else if (diff) {
        d.services = diff;
        d.agreeingSince = null;
      } else {
        d.agreeingSince ??= now;
        if (now - d.agreeingSince >= this.holdMs) {
          this.vips.delete(vip);
          ev.restored.push({ vip, withdrawnMs: now - d.since });
        }
      }
    }
    for (const [vip, services] of differing) {
      if (!this.vips.has(vip)) this.vips.set(vip, { vip, state: 'differs', since: now, agreeingSince: null, services });
    }
    return ev;
  }

  /** VIPs withdrawn for disagreement now. */
  withdrawn(): Set<string> {
    return new Set([...this.vips.values()].filter((d) => d.state === 'withdrawn').map((d) => d.vip));
  }

  /** Every VIP that differs or is withdrawn, for status and the cluster view. */
  view(): VipDisagreement[] {
    return [...this.vips.values()].map((d) => ({ ...d, services: d.services.map((s) => ({ ...s, majorityPeers: [...s.majorityPeers] })) }));
  }
}
