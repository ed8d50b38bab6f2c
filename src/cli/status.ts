// `l4nat status`: the services view as a table in the manner of `ipvsadm -Ln --stats` (service line, then
// one "->" line per backend), plus state, weights (configured/in ring) and the last health check. Pure.
import type { BackendView, FlowView, ServicesView } from '../control/controller';
import type { ClusterStatus } from '../cluster';
import type { SyncStats } from '../cluster/sync-stats';

export interface StatusView {
  summary: { services: number; backends: number; up: number; down: number; draining: number; allDown: string[] };
  workers: Array<{ queue: number; heartbeatAgeMs: number }>;
  flows: number;
  configFile: string | null;
  lastReload: { at: string; ok: boolean; error?: string } | null;
  uptimeSeconds: number;
  /** Scale-out only (src/cluster/). */
  cluster?: ClusterStatus;
  /** Flow-state sync (cluster.sync); null or absent when off. */
  sync?: SyncStats | null;
}

/** The cluster line of `l4nat status`: peers voting, and VIPs whose tables differ from the majority's. */
export function clusterLine(c: ClusterStatus, now = Date.now()): string {
  const parts = [`cluster: ${c.peers.fresh}/${c.peers.total} peers fresh`];
  if (c.disagreementWithdrawAfterSeconds === 0) parts.push('withdrawal on disagreement off');
  for (const d of c.disagreement) {
    const age = Math.round((now - d.since) / 1000);
    const rings = d.services.map((x) => `${x.service} ring ${x.mine.slice(0, 12)}, majority ${x.majority.slice(0, 12)}`).join('; ');
    parts.push(d.state === 'withdrawn' ? `VIP ${d.vip} WITHDRAWN ${age} s ago: tables differ from the majority (${rings})` : `VIP ${d.vip} differs from the majority for ${age} s (withdrawn after ${c.disagreementWithdrawAfterSeconds} s: ${rings})`);
  }
  if (c.withdrawals) parts.push(`${c.withdrawals} withdrawal(s) for disagreement since start`);
  return parts.join('; ');
}

/** The sync line: each peer's last message age (its lag), what was logged, learned and refused. */
export function formatSync(s: SyncStats): string {
  const peers = s.peers.map((p) => `${p.peer} ${p.lastMessageAgeMs === null ? 'never heard' : `${(p.lastMessageAgeMs / 1000).toFixed(1)} s ago`}`).join(', ');
  const rejected = Object.entries(s.rejected).filter(([, n]) => n > 0).map(([r, n]) => `${r} ${n}`);
  return (
    `sync: peers ${peers || 'none'}; divergent here ${s.own}, learned ${s.known}; sent ${s.sent.messages} msgs/${s.sent.entries} entries, ` +
    `received ${s.received.messages}/${s.received.entries}; flow table: ${s.learned} learned, ${s.kept} kept local, ${s.forgotten} forgotten` +
    `${rejected.length ? `; REJECTED ${rejected.join(', ')}` : ''}${s.overflow ? `; ${s.overflow} over max_entries` : ''}${s.queued ? `; ${s.queued} queued` : ''}`
  );
}

function n(v: number | undefined): string {
  const x = v ?? 0;
  if (x >= 1e10) return `${Math.round(x / 1e9)}G`;
  if (x >= 1e7) return `${Math.round(x / 1e6)}M`;
  if (x >= 1e5) return `${Math.round(x / 1e3)}K`;
  return String(x);
}

function pad(s: string, w: number, right = false): string {
  if (s.length >= w) return s;
  return right ? s.padStart(w) : s.padEnd(w);
}

function hostPort(addr: string, port: number): string {
  return addr.includes(':') ? `[${addr}]:${port}` : `${addr}:${port}`;
}

export function formatStatus(view: ServicesView, st: StatusView): string {
  const lines: string[] = [];
  const m = st.summary;
  const stale = st.workers.filter((w) => w.heartbeatAgeMs > 2000).length;
  lines.push(
    `l4nat: ${m.services} services; backends ${m.up} up, ${m.down} down, ${m.draining} draining/drained; ${st.flows} flows; ` +
      `workers ${st.workers.length - stale}/${st.workers.length} alive; up ${st.uptimeSeconds} s`,
  );
  if (st.configFile) {
    const r = st.lastReload;
    lines.push(`config: ${st.configFile}${r ? `; last reload ${r.at} ${r.ok ? 'ok' : `FAILED: ${r.error ?? ''}`}` : ''}`);
  }
  if (st.sync) lines.push(formatSync(st.sync));
  if (m.allDown.length) lines.push(`NO HEALTHY BACKEND: ${m.allDown.join(', ')}`);
  if (st.cluster) lines.push(clusterLine(st.cluster));
  const cols: Array<[string, number, boolean]> = [
    ['Prot LocalAddress:Port', 34, false],
    ['Name', 12, false],
    ['State', 9, false],
    ['Weight', 7, true],
    ['ActConn', 8, true],
    ['Conns', 9, true],
    ['InPkts', 9, true],
    ['OutPkts', 9, true],
    ['InBytes', 9, true],
    ['OutBytes', 9, true],
  ];
  const row = (vals: string[], extra = ''): string => `${vals.map((v, i) => pad(v, cols[i][1], cols[i][2])).join(' ')}${extra ? `  ${extra}` : ''}`.trimEnd();
  lines.push(row(cols.map((c) => c[0]), 'Health'));
  lines.push('  -> RemoteAddress:Port');
  for (const s of view.services) {
    const c = s.counters;
    const check = s.healthCheck ? `${s.healthCheck.type} every ${s.healthCheck.interval}s rise ${s.healthCheck.rise} fall ${s.healthCheck.fall}` : 'no check';
    lines.push(
      row(
        [`${s.proto.toUpperCase()}  ${hostPort(s.vip, s.port)} ${s.hash}`, s.name, s.allDown ? 'ALL-DOWN' : '', '', s.activeFlows === null ? '-' : n(s.activeFlows), n(c.new_flows), n(c.packets_in), n(c.packets_out), n(c.bytes_in), n(c.bytes_out)],
        `${check}${s.allDown ? `; on_all_down ${s.onAllDown}` : ''}${admissionText(s)}`,
      ),
    );
    for (const b of s.backends) {
      const bc = b.counters;
      const h = b.health;
      let health = h ? (h.lastCheck ? (h.lastCheck.ok ? `ok ${h.lastCheck.ms} ms` : h.lastCheck.detail) : 'not checked yet') : '';
      if (h && h.consecutiveFailures > 0 && b.state !== 'down') health += ` (${h.consecutiveFailures} failed)`;
      if (b.passive) health = `${b.passive.reason} (until ${b.passive.heldUntil})`;
      if (b.slowStart) health = `${health ? `${health}; ` : ''}slow start ${b.slowStart.step}/${b.slowStart.steps} of its weight`;
      if (b.maxFlows !== null) health = `${health ? `${health}; ` : ''}max_flows ${b.maxFlows}${b.activeFlows !== null && b.activeFlows >= b.maxFlows ? ' (full)' : ''}`;
      if (b.drain) health = `${health ? `${health}; ` : ''}${b.drain.done ? `drained (${b.drain.doneBy ?? 'done'})` : `draining, ${drainProgress(b.drain)}`}`;
      lines.push(
        row(
          [`  -> ${hostPort(b.addr, b.port)}`, b.name ?? '', b.state, `${b.weight}/${b.effectiveWeight}`, b.activeFlows === null ? '-' : n(b.activeFlows), n(bc.new_flows), n(bc.packets_in), n(bc.packets_out), n(bc.bytes_in), n(bc.bytes_out)],
          health,
        ),
      );
    }
  }
  lines.push('Weight = configured/in ring; ActConn = live flow-table entries (closed ones not counted); Conns = new flows since start; In = from clients, Out = from backends.');
  return `${lines.join('\n')}\n`;
}

/** A service's admission when it is not the plain ring: "; bounded 1.25", "; when full reject". */
function admissionText(s: ServicesView['services'][number]): string {
  const a = s.admission;
  const bounded = a.balance === 'bounded' ? `; bounded ${a.balanceFactor ?? ''}`.trimEnd() : '';
  const full = s.backends.some((b) => b.maxFlows !== null) ? `; when full ${a.whenFull}` : '';
  return `${bounded}${full}`;
}

/** A drain under way in words: flows left, the oldest one's age, when it will likely be done, its deadline. */
export function drainProgress(d: NonNullable<BackendView['drain']>, now = Date.now()): string {
  if (d.liveFlows === null) return `quiet ${d.quietSeconds} s`;
  const parts = [`${d.liveFlows} live flows`];
  if (d.oldestFlowSeconds !== null) parts.push(`oldest ${d.oldestFlowSeconds} s`);
  if (d.estimatedDoneAt !== null) parts.push(`done in ~${Math.max(0, Math.round((Date.parse(d.estimatedDoneAt) - now) / 1000))} s`);
  if (d.deadline !== null) parts.push(`deadline in ${Math.max(0, Math.round((Date.parse(d.deadline) - now) / 1000))} s`);
  return parts.join(', ');
}

/** `l4nat flows`: one line per flow-table entry, like `ipvsadm -Lnc`. */
export function formatFlows(flows: readonly FlowView[], truncated: boolean, next: number | null = null): string {
  const lines = [`${pad('Pro', 4)}${pad('State', 12)}${pad('Idle', 8, true)}  ${pad('Source', 24)}${pad('Virtual', 24)}Destination`];
  for (const f of flows) {
    const dest = f.backend ? f.backend.replace(/\/(tcp|udp)$/, '') : `slot ${f.backendSlot}`;
    lines.push(
      `${pad(f.proto.toUpperCase(), 4)}${pad(f.state, 12)}${pad(`${f.idleSeconds}s`, 8, true)}  ${pad(hostPort(f.client, f.clientPort), 24)}${pad(hostPort(f.vip, f.vipPort), 24)}${dest}${f.backendName ? ` (${f.backendName})` : ''}${f.sync ? `  ${f.sync}` : ''}`,
    );
  }
  const more = next !== null ? ` (more may exist: --cursor ${next} for the next page)` : truncated ? ' (more exist: raise --limit or filter)' : '';
  lines.push(`${flows.length} flow(s)${more}`);
  return `${lines.join('\n')}\n`;
}
