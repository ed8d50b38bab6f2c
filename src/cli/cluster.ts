// `l4nat cluster status [--json]`: every host's view side by side, from GET /v1/cluster (src/cluster/view.ts): the
// hosts (fresh or not, what they announce, VIPs withdrawn because their tables differ), then per service each host's
// ring digest marked against the majority's and each backend's state and weights per host. The formatting is pure.
// Exit codes: 0 shown, 1 the API said no (e.g. no cluster section), 2 usage error.
import { OptionError } from '../config/options';
import type { ClusterHostView, ClusterView, RingMark } from '../cluster/view';
import type { VipDisagreement } from '../cluster/disagreement';
import { apiRequest, ApiError, CLIENT_FLAGS, clientOptions } from './client';
import { splitArgs } from './up-args';

const MARK: Record<RingMark, string> = { majority: '=', differs: 'DIFFERS', 'no majority': 'no majority', stale: 'stale', absent: '' };

const secs = (ms: number): string => `${(ms / 1000).toFixed(ms < 10_000 ? 1 : 0)} s`;

function peerText(h: ClusterHostView): string {
  switch (h.peer) {
    case 'self':
      return 'self';
    case 'fresh':
      return `fresh, ${secs(h.ageMs ?? 0)}`;
    case 'stale':
      return `STALE, ${secs(h.ageMs ?? 0)}${h.error ? `: ${h.error}` : ''}`;
    default:
      return `NO ANSWER${h.error ? `: ${h.error}` : ''}`;
  }
}

function disagreementText(ds: readonly VipDisagreement[], now: number): string {
  if (!ds.length) return '-';
  return ds.map((d) => `${d.vip} ${d.state === 'withdrawn' ? 'WITHDRAWN' : 'differs'} ${secs(Math.max(0, now - d.since))}${d.agreeingSince !== null ? ` (agrees ${secs(Math.max(0, now - d.agreeingSince))})` : ''}`).join(', ');
}

export function formatClusterView(v: ClusterView, now = Date.now()): string {
  const out: string[] = [];
  out.push(`cluster, as ${v.self} sees it: a peer votes while it answered within ${v.peerTimeoutSeconds} s; disagreement_withdraw_after ${v.disagreementWithdrawAfterSeconds ? `${v.disagreementWithdrawAfterSeconds} s` : 'off'}`);
  const w = Math.max(22, ...v.hosts.map((h) => h.host.length + 2));
  const pad = (s: string, n: number): string => (s.length >= n ? `${s} ` : s.padEnd(n));
  const peerW = Math.max(16, ...v.hosts.map((h) => peerText(h).length + 2));
  out.push(`${pad('Host', w)}${pad('Peer', peerW)}${pad('Announces', 18)}Tables differ (VIP, state, for)`);
  for (const h of v.hosts) out.push(`${pad(h.host, w)}${pad(peerText(h), peerW)}${pad(h.announced === null ? '?' : h.announced.join(',') || 'nothing', 18)}${disagreementText(h.disagreement, now)}`.trimEnd());
  const hosts = v.hosts.map((h) => h.host);
  const label = 26;
  for (const s of v.services) {
    out.push('');
    out.push(`${pad(s.service, label)}${hosts.map((h) => pad(h, w)).join('')}`.trimEnd());
    out.push(`${pad('  ring', label)}${hosts.map((h) => {
      const r = s.rings[h]!;
      return pad(r.digest === null ? '-' : `${r.digest.slice(0, 12)} ${MARK[r.mark]}`.trimEnd(), w);
    }).join('')}`.trimEnd());
    for (const b of s.backends) {
      const cells = hosts.map((h) => {
        const x = b.hosts[h];
        return pad(x ? `${x.state} ${x.weight}/${x.inRing}` : '-', w);
      });
      out.push(`${pad(`  -> ${b.backend.replace(/\/(tcp|udp)$/, '')}`, label)}${cells.join('')}`.trimEnd());
    }
  }
  out.push('');
  out.push('ring: the first 12 hex digits of the sha256 of the ring; "=" the digest a strict majority of the voting hosts holds, DIFFERS another one,');
  out.push('"no majority" no digest has one (nobody withdraws), stale: the host does not vote. Backends: state configured weight/weight in the ring.');
  return `${out.join('\n')}\n`;
}

export async function clusterCommand(argv: readonly string[]): Promise<number> {
  const { pos, flags } = splitArgs(argv, { ...CLIENT_FLAGS, json: { value: false } });
  if (pos[0] !== 'status' || pos.length > 1) throw new OptionError(`cluster expects "status" [--json] [API flags], got "${pos.join(' ')}"`);
  const o = clientOptions(flags);
  try {
    const v = await apiRequest<ClusterView>(o, 'GET', '/v1/cluster');
    process.stdout.write(flags.has('json') ? `${JSON.stringify(v, null, 2)}\n` : formatClusterView(v));
    return 0;
  } catch (e) {
    if (e instanceof ApiError) {
      process.stderr.write(`l4nat: ${e.status === 401 ? 'admin API: ' : ''}${e.message}\n`);
      return 1;
    }
    throw e;
  }
}
