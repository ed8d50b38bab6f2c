// The data plane's counters that src/ knows by name (native/core/counters.h lists them in C), each with the
// Prometheus metric it is published as. The addon exports its own lists; src/dataplane/addon-layout.ts refuses an addon
// whose lists differ from these, so a counter added in C cannot go unpublished, and a metric here cannot
// silently read a counter the addon no longer has. The order and the drop reasons come from the addon.

/** Per-queue counters: counter name -> [metric name, help]; each metric is labelled by `queue`. */
export const QUEUE_COUNTER_METRICS: Readonly<Record<string, readonly [string, string]>> = {
  rx_packets: ['l4nat_rx_packets_total', 'Packets read from the TUN'],
  rx_bytes: ['l4nat_rx_bytes_total', 'Bytes read from the TUN'],
  tx_packets: ['l4nat_tx_packets_total', 'Packets written back to the TUN'],
  tx_bytes: ['l4nat_tx_bytes_total', 'Bytes written back to the TUN'],
  forward: ['l4nat_forwarded_packets_total', 'Client-to-backend packets translated'],
  reply: ['l4nat_reply_packets_total', 'Backend-to-client packets translated'],
  gso_packets: ['l4nat_gso_packets_total', 'GSO super-packets translated as one'],
  icmp_translated: ['l4nat_icmp_translated_total', 'ICMP errors about translated flows, translated'],
  icmp_echo_replied: ['l4nat_icmp_echo_replies_total', 'Echo requests to a VIP answered'],
  flow_new: ['l4nat_flows_created_total', 'Flow entries created'],
  flow_pickup: ['l4nat_flows_picked_up_total', 'Flows without an entry pinned again at their first reply'],
  flow_repin: ['l4nat_flows_repinned_total', 'SYNs on closed entries that chose a backend again'],
  flow_evicted: ['l4nat_flows_evicted_total', 'Flow entries evicted because their bucket was full'],
  flow_insert_failed: ['l4nat_flow_insert_failures_total', 'Flow entries that could not be created'],
  flow_miss_nonsyn: ['l4nat_flow_miss_nonsyn_total', 'Non-SYN TCP packets without a flow entry, forwarded by the ring'],
  batches: ['l4nat_worker_batches_total', 'Worker read batches'],
  busy_polls: ['l4nat_worker_busy_polls_total', 'Empty reads while busy polling'],
  probe_rst_sent: ['l4nat_probe_resets_sent_total', "Backends' SYN-ACKs to data-plane health probes, answered with a RST"],
  udp_super_packets: ['l4nat_udp_super_packets_total', 'UDP GSO super-packets written (runs of one flow merged)'],
  udp_coalesced: ['l4nat_udp_coalesced_total', 'UDP datagrams that went out inside super-packets'],
  busy_poll_hits: ['l4nat_worker_busy_poll_hits_total', 'Idle gaps a busy-polling worker caught before it slept (a wake-up saved)'],
  busy_poll_ceded: ['l4nat_worker_busy_poll_ceded_total', 'Busy polls cut short because another thread wanted the CPU'],
  flow_reuse_moved: ['l4nat_flows_reuse_moved_total', 'SYNs reusing the tuple of a live flow on a backend taking no new flows (draining, down), sent to a live backend at once'],
  flow_admit_moved: ['l4nat_flows_admit_moved_total', 'New flows whose ring backend was over its load bound or at its max_flows, sent to the next candidate'],
  full_rejected: ['l4nat_flows_full_rejected_total', 'New flows refused with a TCP RST or an ICMP port unreachable (every candidate at its max_flows, when_full: reject)'],
  sync_logged: ['l4nat_sync_divergent_logged_total', 'Flow entries pinned against the current ring logged for the cluster peers (flow-state sync)'],
  sync_logged_del: ['l4nat_sync_divergent_closed_total', 'Closes of logged flow entries logged for the cluster peers'],
  sync_log_full: ['l4nat_sync_log_full_total', "Divergent entries that found the worker's sync log full (logged again at a later packet)"],
};

/** The per-queue word that is not a count: each worker's last wake-up (published as a heartbeat age). */
export const HEARTBEAT_COUNTER = 'heartbeat_ms';

/** Per-service and per-backend counters: counter name -> [metric name after l4nat_service_ / l4nat_backend_, help]. */
export const OBJECT_COUNTER_METRICS: Readonly<Record<string, readonly [string, string]>> = {
  packets_in: ['packets_in_total', 'Packets from clients'],
  bytes_in: ['bytes_in_total', 'Bytes from clients'],
  packets_out: ['packets_out_total', 'Packets from backends'],
  bytes_out: ['bytes_out_total', 'Bytes from backends'],
  new_flows: ['flows_total', 'New flows'],
  flows_answered: ['flows_answered_total', 'New flows the backend answered'],
  resets: ['resets_total', 'TCP resets sent by the backend'],
  probe_synacks: ['probe_synacks_total', 'Dataplane health probes answered through this host'],
  probe_resets: ['probe_resets_total', 'Dataplane health probes refused (RST)'],
  full_refused: ['full_refusals_total', 'New flows no backend could take (every candidate at its max_flows): dropped or rejected as when_full says'],
};

/** Object counters that only a service counts (no backend took the flow): published per service only. */
export const SERVICE_ONLY_COUNTERS: ReadonlySet<string> = new Set(['full_refused']);

/** Drop reason 0: not a drop (its counter stays 0 and is not published). */
export const NO_DROP_REASON = 'none';
