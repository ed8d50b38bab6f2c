/* The runtime side of flow-state sync (core/sync_log.h): one log per worker, the switch the workers read once per
 * batch, and the control plane's three calls: drain the logs, put peers' entries into the flow table as learned
 * (or forget them), and check which of this host's logged entries are still live (for the periodic refresh).
 * Sync off: every worker's ctx.sync is NULL and l4_process pays one branch. */
#ifndef L4NAT_SYNC_H
#define L4NAT_SYNC_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/sync_log.h"

struct l4_dp;

struct l4_dp_sync {
  struct l4_sync_log *logs; /* one per queue (calloc: untouched pages cost nothing while sync is off) */
  int nlogs;
  _Atomic int on;
};

int l4_dp_sync_init(struct l4_dp_sync *ds, int nqueues);
void l4_dp_sync_destroy(struct l4_dp_sync *ds);
/* A worker's per-batch look at the switch: its log, or NULL. */
static inline struct l4_sync_log *l4_dp_sync_log(struct l4_dp_sync *ds, int queue) {
  return atomic_load_explicit(&ds->on, memory_order_relaxed) ? &ds->logs[queue] : (struct l4_sync_log *)0;
}
/* Moves up to max records from all logs into out; *dropped = records lost to full logs so far. */
uint32_t l4_dp_sync_read(struct l4_dp_sync *ds, struct l4_sync_rec *out, uint32_t max, uint64_t *dropped);
uint64_t l4_dp_sync_pending(struct l4_dp_sync *ds);

/* What l4_dp_sync_apply did with a batch of peers' records. */
struct l4_sync_applied {
  uint32_t learned;   /* inserted or refreshed as learned */
  uint32_t kept;      /* a live local entry won */
  uint32_t forgotten; /* learned entries removed (a peer's close) */
  uint32_t invalid;   /* slot out of range or not the service's backend (the caller maps identities: a bug) */
};
/* Applies records (op L4_SYNC_ADD: l4_flow_learn, confirmed when the record's state has FL_EST; L4_SYNC_DEL:
 * l4_flow_forget) with the published table's hash key and timeouts. -ENODATA before the first table. */
int l4_dp_sync_apply(struct l4_dp *dp, const struct l4_sync_rec *recs, uint32_t n, struct l4_sync_applied *out);
/* For each record: its key's live entry's backend slot when that entry is still marked FL_SYNCED and not learned
 * (this host's own, still to be kept on the peers), else L4_NO_BACKEND. -ENODATA before the first table. */
int l4_dp_sync_check(struct l4_dp *dp, const struct l4_sync_rec *recs, uint32_t n, uint32_t *backend_out);

#endif
