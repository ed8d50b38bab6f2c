/* Counter layout. Each worker owns one block of uint64 words (single writer, no atomics needed for
 * increments; stores are naturally atomic on 64-bit words, so TypeScript may read them at any time and
 * sums the blocks). src/dataplane/native.ts reads this layout from the names the addon exports; src/dataplane/counter-names.ts
 * gives each counter its metric, and the addon is refused at load while the two lists differ. */
#ifndef L4NAT_COUNTERS_H
#define L4NAT_COUNTERS_H

#include <stdint.h>

#include "drop_reasons.h"

#define L4_QUEUE_COUNTERS(X)                                                                             \
  X(RX_PACKETS, "rx_packets")                                                                             \
  X(RX_BYTES, "rx_bytes")                                                                                 \
  X(TX_PACKETS, "tx_packets")                                                                             \
  X(TX_BYTES, "tx_bytes")                                                                                 \
  X(FORWARD, "forward")                     /* client -> backend packets translated */                    \
  X(REPLY, "reply")                         /* backend -> client packets translated */                    \
  X(GSO_PACKETS, "gso_packets")             /* super-packets rewritten whole */                           \
  X(ICMP_TRANSLATED, "icmp_translated")     /* ICMP errors translated (outer and quoted headers) */       \
  X(ICMP_ECHO_REPLIED, "icmp_echo_replied")                                                                \
  X(FLOW_NEW, "flow_new")                   /* entries created by a SYN or a first UDP datagram */        \
  X(FLOW_PICKUP, "flow_pickup")             /* entries created mid-flow from a backend reply */           \
  X(FLOW_REPIN, "flow_repin")               /* a SYN re-chose the backend: closed entry, or unanswered    \
                                               SYN retransmitted after the ring moved */                     \
  X(FLOW_EVICTED, "flow_evicted")           /* a live entry was evicted because its bucket was full */    \
  X(FLOW_INSERT_FAILED, "flow_insert_failed")                                                              \
  X(FLOW_MISS_NONSYN, "flow_miss_nonsyn")   /* TCP non-SYN without an entry: forwarded by the ring */     \
  X(HEARTBEAT_MS, "heartbeat_ms")           /* worker liveness: CLOCK_MONOTONIC ms at its last wake-up */ \
  X(BATCHES, "batches")                                                                                   \
  X(BUSY_POLLS, "busy_polls")               /* empty reads while busy polling */                          \
  X(PROBE_RST_SENT, "probe_rst_sent")       /* backends' SYN-ACKs to data-plane probes, answered with RST */ \
  X(UDP_SUPER_PACKETS, "udp_super_packets") /* UDP GSO super-packets written (worker.c, core/coalesce.h) */  \
  X(UDP_COALESCED, "udp_coalesced")         /* datagrams that went out inside them */                     \
  X(BUSY_POLL_HITS, "busy_poll_hits")       /* idle gaps ended by a packet while the worker still spun: a sleep \
                                               and wake-up saved (worker.c, core/busypoll.h) */            \
  X(BUSY_POLL_CEDED, "busy_poll_ceded")     /* spins cut short because a yield ran another thread: the CPU \
                                               is wanted, so the worker sleeps */           \
  X(FLOW_REUSE_MOVED, "flow_reuse_moved")   /* SYNs on a live entry of a backend taking no new flows (draining, \
                                               down): sent to the current ring at once (admission.h) */ \
  X(FLOW_ADMIT_MOVED, "flow_admit_moved")   /* new flows whose ring backend was over its bound or at its max_flows: \
                                               sent to the next candidate (admission.h) */                   \
  X(FULL_REJECTED, "full_rejected")         /* new flows refused with a RST or an ICMP port unreachable: every \
                                               candidate at its max_flows, when_full: reject (refuse.h) */ \
  X(SYNC_LOGGED, "sync_logged")             /* entries pinned against the ring logged for the peers (sync_log.h) */ \
  X(SYNC_LOGGED_DEL, "sync_logged_del")     /* closes of logged entries logged for the peers */                   \
  X(SYNC_LOG_FULL, "sync_log_full")         /* entries to log that found the worker's log full (logged at a later packet) */

#define L4_Q_ENUM(name, str) L4_Q_##name,
enum l4_queue_counter { L4_QUEUE_COUNTERS(L4_Q_ENUM) L4_Q_MAX };
#undef L4_Q_ENUM

/* per service and per backend */
#define L4_OBJ_COUNTERS(X)       \
  X(PACKETS_IN, "packets_in")    \
  X(BYTES_IN, "bytes_in")        \
  X(PACKETS_OUT, "packets_out")  \
  X(BYTES_OUT, "bytes_out")      \
  X(NEW_FLOWS, "new_flows")      \
  X(ANSWERED, "flows_answered")  /* flows whose backend answered (new_flows - answered = unanswered SYNs) */ \
  X(RESETS, "resets")            /* RSTs the backend sent */ \
  X(PROBE_SYNACKS, "probe_synacks") /* SYN-ACKs answering data-plane probes: its replies come back through us */ \
  X(PROBE_RESETS, "probe_resets")   /* RSTs answering data-plane probes: port closed */ \
  X(FULL_REFUSED, "full_refused")   /* per service: new flows no backend could take (max_flows), dropped or rejected */

#define L4_O_ENUM(name, str) L4_O_##name,
enum l4_obj_counter { L4_OBJ_COUNTERS(L4_O_ENUM) L4_O_MAX };
#undef L4_O_ENUM

extern const char *const L4_QUEUE_COUNTER_NAMES[L4_Q_MAX];
extern const char *const L4_OBJ_COUNTER_NAMES[L4_O_MAX];

/* Words in one queue's block: [queue counters][drop reasons][services x L4_O_MAX][backends x L4_O_MAX]. */
static inline uint64_t l4_counter_block_words(uint32_t max_services, uint32_t max_backends) {
  return (uint64_t)L4_Q_MAX + L4_DROP_MAX + (uint64_t)(max_services + max_backends) * L4_O_MAX;
}

#endif
