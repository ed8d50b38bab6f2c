/* The packet path: classify a packet read from the TUN, translate it, and say whether to write it back.
 * Pure C over a buffer, the service table and the flow table: no syscalls, no allocation, no Node. */
#ifndef L4NAT_DATAPLANE_H
#define L4NAT_DATAPLANE_H

#include <stdint.h>

#include "counters.h"
#include "flow_table.h"
#include "packet.h"
#include "probe.h"
#include "ratelimit.h"
#include "tables.h"
#include "trace.h"

enum l4_verdict { L4_VERDICT_DROP = 0, L4_VERDICT_TX = 1 };

/* What one worker owns. */
struct l4_ctx {
  uint64_t *counters;            /* this worker's counter block */
  uint32_t max_services, max_backends;
  struct l4_flow_table *flows;   /* shared */
  uint32_t now;                  /* seconds, updated by the worker loop */
  uint32_t now_ms;               /* wrapping milliseconds, for rate limits */
  struct l4_ratelimit *ratelimit;/* shared; NULL = no per-source limits */
  struct l4_probes *probes;      /* shared: the outstanding data-plane probes; NULL = none (every answer unmatched) */
  enum l4_drop_reason last_drop; /* for tests, and the trace's drop reason */
  struct l4_trace *trace;        /* NULL: tracing off (trace.h); set by the worker between batches */
  uint32_t buf_cap;              /* bytes the packet buffer holds (virtio_net_hdr included): room for an ICMP answer */
  struct l4_sync_log *sync;      /* NULL: flow-state sync off (sync_log.h); else this worker's log */
};

/* Processes the packet at buf (virtio_net_hdr first, *len bytes). On L4_VERDICT_TX the buffer holds the
 * packet to write back and *len its length: never more than on entry, except an ICMP port unreachable refusing a
 * datagram (refuse.h), which stays within ctx->buf_cap. Counts everything it does. */
enum l4_verdict l4_process(struct l4_ctx *ctx, const struct l4_tables *t, uint8_t *buf, uint32_t *len);

static inline uint64_t *l4_ctr_drops(struct l4_ctx *c) { return c->counters + L4_Q_MAX; }
static inline uint64_t *l4_ctr_service(struct l4_ctx *c, uint32_t slot) {
  return c->counters + L4_Q_MAX + L4_DROP_MAX + (uint64_t)slot * L4_O_MAX;
}
static inline uint64_t *l4_ctr_backend(struct l4_ctx *c, uint32_t slot) {
  return c->counters + L4_Q_MAX + L4_DROP_MAX + ((uint64_t)c->max_services + slot) * L4_O_MAX;
}

#endif
