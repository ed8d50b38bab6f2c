// Prometheus metrics (prom-client), read from the data plane's shared counters at scrape time: nothing is
// sampled in between, so a scrape costs one counters() read and the numbers are exactly the data plane's.
// Names follow the Prometheus conventions: l4nat_ prefix, base units, _total for counters.
import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import { OBJECT_COUNTER_METRICS, QUEUE_COUNTER_METRICS, SERVICE_ONLY_COUNTERS } from '../dataplane/counter-names';
import type { CounterMap, CounterSnapshot } from '../dataplane/native';
import { monotonicMs } from '../util/clock';
import type { SyncStats } from '../cluster/sync-stats';

/** Of a backend in the control plane's view, what the metrics export. */
export interface MetricsBackend {
  id: string;
  name: string | null;
  state: string; // up, down, draining, drained
  weight: number;
  effectiveWeight: number;
  activeFlows: number | null;
  counters: CounterMap;
  health: { checks: { ok: number; failed: number }; lastCheck: { ms: number } | null } | null;
  drain: { done: boolean; oldestFlowSeconds: number | null; estimatedDoneAt: string | null } | null;
}

/**
 * What the metrics read of the control plane (src/control/controller.ts has it): its view of the services with the
 * data plane's counters, and its reload tally. Owned here, so that the metrics do not depend on the controller.
 */
export interface MetricsControl {
  view(c: CounterSnapshot): { services: ReadonlyArray<{ id: string; name: string; allDown: boolean; activeFlows: number | null; counters: CounterMap; backends: readonly MetricsBackend[] }> };
  readonly reloads: { ok: number; failed: number };
  /** Flow entries removed at drain deadlines since start. */
  readonly drainDeadlineRemovals: number;
  readonly lastReload: { ok: boolean } | undefined;
  /** Flow-state sync's report, while cluster.sync is on. */
  readonly syncStatus?: (() => SyncStats | null) | null;
}

export interface MetricsSource {
  ctrl: MetricsControl;
  counters(): CounterSnapshot;
  flowCount(): number;
  flowCapacity: number;
  /** Scale-out (src/cluster/): VIPs withdrawn because this host's tables differ from the cluster's majority. */
  cluster?: () => { withdrawals: number; disagreement: ReadonlyArray<{ state: string }> };
}

/** A counter whose value is set from an outside monotonic source at scrape time. */
function setCounter(c: Counter<string>, labels: Record<string, string>, v: number): void {
  // prom-client counters only go up by inc(); reset+inc sets the absolute value of this label set.
  c.remove(labels);
  c.inc(labels, v);
}

export function createMetrics(src: MetricsSource): Registry {
  const reg = new Registry();
  // Registered first: prom-client reads metrics in registration order, and this one's collect hook reads the
  // data plane once per scrape and fills in all the others.
  let update = (): void => undefined;
  new Gauge({
    name: 'l4nat_up',
    help: 'Always 1 while l4nat answers',
    registers: [reg],
    collect() {
      this.set(1);
      update();
    },
  });
  collectDefaultMetrics({ register: reg, prefix: 'l4nat_process_' });
  const queueCounters = new Map<string, Counter<string>>();
  for (const [k, [name, help]] of Object.entries(QUEUE_COUNTER_METRICS)) {
    queueCounters.set(k, new Counter({ name, help, labelNames: ['queue'], registers: [reg] }));
  }
  const drops = new Counter({ name: 'l4nat_dropped_packets_total', help: 'Packets dropped, by reason', labelNames: ['reason'], registers: [reg] });
  const heartbeatAge = new Gauge({ name: 'l4nat_worker_heartbeat_age_seconds', help: 'Time since each worker last woke up (idle workers wake every 250 ms)', labelNames: ['queue'], registers: [reg] });
  const flows = new Gauge({ name: 'l4nat_flow_table_entries', help: 'Flow-table entries in use (including idle ones not yet expired)', registers: [reg] });
  const flowCap = new Gauge({ name: 'l4nat_flow_table_capacity', help: 'Flow-table capacity (fixed at start)', registers: [reg] });
  const svcLabels = ['service', 'name'];
  const bkLabels = ['service', 'backend', 'backend_name'];
  const svcCounters = new Map<string, Counter<string>>();
  const bkCounters = new Map<string, Counter<string>>();
  for (const [k, [suffix, help]] of Object.entries(OBJECT_COUNTER_METRICS)) {
    svcCounters.set(k, new Counter({ name: `l4nat_service_${suffix}`, help: `${help}, per service`, labelNames: svcLabels, registers: [reg] }));
    if (!SERVICE_ONLY_COUNTERS.has(k)) bkCounters.set(k, new Counter({ name: `l4nat_backend_${suffix}`, help: `${help}, per backend`, labelNames: bkLabels, registers: [reg] }));
  }
  const bkUp = new Gauge({ name: 'l4nat_backend_up', help: '0 while the backend is down (active or passive check), else 1', labelNames: bkLabels, registers: [reg] });
  const bkState = new Gauge({ name: 'l4nat_backend_state', help: '1 for the backend\'s current state (up, down, draining, drained)', labelNames: [...bkLabels, 'state'], registers: [reg] });
  const bkWeight = new Gauge({ name: 'l4nat_backend_weight', help: 'Configured weight', labelNames: bkLabels, registers: [reg] });
  const svcActive = new Gauge({ name: 'l4nat_service_active_flows', help: 'Live flow-table entries of the service (closed TCP entries not counted)', labelNames: svcLabels, registers: [reg] });
  const bkActive = new Gauge({ name: 'l4nat_backend_active_flows', help: 'Live flow-table entries pinned to the backend (closed TCP entries not counted)', labelNames: bkLabels, registers: [reg] });
  const bkEff = new Gauge({ name: 'l4nat_backend_effective_weight', help: 'Weight in the ring now (0 when down or draining)', labelNames: bkLabels, registers: [reg] });
  const checks = new Counter({ name: 'l4nat_health_checks_total', help: 'Health-check probes, by result', labelNames: [...bkLabels, 'result'], registers: [reg] });
  const checkSeconds = new Gauge({ name: 'l4nat_health_check_last_duration_seconds', help: 'Duration of the last health-check probe', labelNames: bkLabels, registers: [reg] });
  const svcAllDown = new Gauge({ name: 'l4nat_service_no_healthy_backend', help: '1 while the service has no healthy backend', labelNames: svcLabels, registers: [reg] });
  const reloads = new Counter({ name: 'l4nat_config_reloads_total', help: 'Config reloads, by result', labelNames: ['result'], registers: [reg] });
  const drainRemoved = new Counter({ name: 'l4nat_drain_deadline_flows_removed_total', help: 'Flow entries removed because a drain reached its deadline', registers: [reg] });
  const drainOldest = new Gauge({ name: 'l4nat_backend_drain_oldest_flow_seconds', help: 'A draining backend: age of its oldest live flow at the last count (to 4 s)', labelNames: bkLabels, registers: [reg] });
  const drainLeft = new Gauge({ name: 'l4nat_backend_drain_estimated_seconds_left', help: 'A draining backend: seconds until its drain is likely done (its flows\' rate of ending so far; never past its deadline)', labelNames: bkLabels, registers: [reg] });
  const clusterWithdrawals = src.cluster
    ? new Counter({ name: 'l4nat_cluster_disagreement_withdrawals_total', help: 'VIPs withdrawn because this host\'s rings differed from the cluster\'s majority for cluster.disagreement_withdraw_after', registers: [reg] })
    : undefined;
  const clusterWithdrawn = src.cluster
    ? new Gauge({ name: 'l4nat_cluster_withdrawn_vips', help: 'VIPs withdrawn now because this host\'s rings differ from the cluster\'s majority', registers: [reg] })
    : undefined;
  const reloadOk = new Gauge({ name: 'l4nat_config_last_reload_successful', help: '1 if the last reload was applied (or none was tried)', registers: [reg] });

  const syncMsgs = new Counter({ name: 'l4nat_sync_messages_total', help: 'Flow-state sync datagrams, by direction (sent counts one per peer)', labelNames: ['direction'], registers: [reg] });
  const syncEntries = new Counter({ name: 'l4nat_sync_entries_total', help: 'Flow-state sync entries carried, by direction', labelNames: ['direction'], registers: [reg] });
  const syncRejected = new Counter({ name: 'l4nat_sync_rejected_total', help: 'Flow-state sync datagrams (unknown_backend: entries) that changed nothing, by reason', labelNames: ['reason'], registers: [reg] });
  const syncApplied = new Counter({ name: 'l4nat_sync_applied_total', help: "Peers' entries by what the flow table did: learned, kept (a live local entry won), forgotten", labelNames: ['result'], registers: [reg] });
  const syncSet = new Gauge({ name: 'l4nat_sync_divergent_entries', help: 'Entries pinned against the ring known to flow-state sync: own (logged here) and learned', labelNames: ['origin'], registers: [reg] });
  const syncPeerAge = new Gauge({ name: 'l4nat_sync_peer_last_message_age_seconds', help: 'Time since the last authenticated sync datagram from each peer (keepalives every second)', labelNames: ['peer'], registers: [reg] });
  const syncOverflow = new Counter({ name: 'l4nat_sync_overflow_total', help: 'Flow-state sync entries not kept or not sent because max_entries was reached', registers: [reg] });

  const updateSync = (st: SyncStats): void => {
    for (const d of ['sent', 'received'] as const) {
      setCounter(syncMsgs, { direction: d }, st[d].messages);
      setCounter(syncEntries, { direction: d }, st[d].entries);
    }
    for (const [reason, n] of Object.entries(st.rejected)) setCounter(syncRejected, { reason }, n);
    for (const r of ['learned', 'kept', 'forgotten'] as const) setCounter(syncApplied, { result: r }, st[r]);
    syncSet.set({ origin: 'own' }, st.own);
    syncSet.set({ origin: 'learned' }, st.known);
    syncPeerAge.reset();
    for (const p of st.peers) if (p.lastMessageAgeMs !== null) syncPeerAge.set({ peer: p.peer }, p.lastMessageAgeMs / 1000);
    setCounter(syncOverflow, {}, st.overflow);
  };

  update = (): void => {
      const c = src.counters();
      c.perQueue.forEach((q, i) => {
        for (const [k, m] of queueCounters) setCounter(m, { queue: String(i) }, q[k] ?? 0);
      });
      for (const [reason, v] of Object.entries(c.drops)) setCounter(drops, { reason }, v);
      const now = monotonicMs();
      c.heartbeatsMs.forEach((hb, i) => heartbeatAge.set({ queue: String(i) }, Math.max(0, now - hb) / 1000));
      flows.set(src.flowCount());
      flowCap.set(src.flowCapacity);
      const view = src.ctrl.view(c);
      for (const m of [...svcCounters.values(), ...bkCounters.values(), bkUp, bkState, bkWeight, bkEff, checkSeconds, svcAllDown, svcActive, bkActive, drainOldest, drainLeft]) m.reset();
      for (const s of view.services) {
        const sl = { service: s.id, name: s.name };
        for (const [k, m] of svcCounters) m.inc(sl, s.counters[k] ?? 0);
        svcAllDown.set(sl, s.allDown ? 1 : 0);
        if (s.activeFlows !== null) svcActive.set(sl, s.activeFlows);
        for (const b of s.backends) {
          const bl = { service: s.id, backend: b.id, backend_name: b.name ?? '' };
          for (const [k, m] of bkCounters) m.inc(bl, b.counters[k] ?? 0);
          bkUp.set(bl, b.state === 'down' ? 0 : 1);
          for (const st of ['up', 'down', 'draining', 'drained']) bkState.set({ ...bl, state: st }, b.state === st ? 1 : 0);
          bkWeight.set(bl, b.weight);
          bkEff.set(bl, b.effectiveWeight);
          if (b.activeFlows !== null) bkActive.set(bl, b.activeFlows);
          if (b.drain && !b.drain.done) {
            if (b.drain.oldestFlowSeconds !== null) drainOldest.set(bl, b.drain.oldestFlowSeconds);
            if (b.drain.estimatedDoneAt !== null) drainLeft.set(bl, Math.max(0, (Date.parse(b.drain.estimatedDoneAt) - Date.now()) / 1000));
          }
          if (b.health) {
            setCounter(checks, { ...bl, result: 'ok' }, b.health.checks.ok);
            setCounter(checks, { ...bl, result: 'failed' }, b.health.checks.failed);
            if (b.health.lastCheck) checkSeconds.set(bl, b.health.lastCheck.ms / 1000);
          }
        }
      }
      setCounter(reloads, { result: 'ok' }, src.ctrl.reloads.ok);
      setCounter(reloads, { result: 'failed' }, src.ctrl.reloads.failed);
      reloadOk.set(src.ctrl.lastReload?.ok === false ? 0 : 1);
      setCounter(drainRemoved, {}, src.ctrl.drainDeadlineRemovals);
      const cl = src.cluster?.();
      if (cl) {
        setCounter(clusterWithdrawals!, {}, cl.withdrawals);
        clusterWithdrawn!.set(cl.disagreement.filter((d) => d.state === 'withdrawn').length);
      }
      const st = src.ctrl.syncStatus?.();
      if (st) updateSync(st);
  };
  return reg;
}
