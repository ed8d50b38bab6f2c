/* See sync.h. */
#include "sync.h"

#include <errno.h>
#include <stdlib.h>

#include "core/decide.h"
#include "worker.h"

int l4_dp_sync_init(struct l4_dp_sync *ds, int nqueues) {
  ds->logs = calloc((size_t)nqueues, sizeof(struct l4_sync_log));
  if (!ds->logs) return -ENOMEM;
  ds->nlogs = nqueues;
  atomic_store(&ds->on, 0);
  return 0;
}

void l4_dp_sync_destroy(struct l4_dp_sync *ds) {
  free(ds->logs);
  ds->logs = NULL;
  ds->nlogs = 0;
}

uint32_t l4_dp_sync_read(struct l4_dp_sync *ds, struct l4_sync_rec *out, uint32_t max, uint64_t *dropped) {
  uint32_t n = 0;
  *dropped = 0;
  for (int i = 0; i < ds->nlogs; i++) {
    n += l4_sync_log_read(&ds->logs[i], out + n, max - n);
    *dropped += atomic_load_explicit(&ds->logs[i].dropped, memory_order_relaxed);
  }
  return n;
}

uint64_t l4_dp_sync_pending(struct l4_dp_sync *ds) {
  uint64_t n = 0;
  for (int i = 0; i < ds->nlogs; i++)
    n += atomic_load_explicit(&ds->logs[i].head, memory_order_acquire) -
         atomic_load_explicit(&ds->logs[i].tail, memory_order_relaxed);
  return n;
}

int l4_dp_sync_apply(struct l4_dp *dp, const struct l4_sync_rec *recs, uint32_t n, struct l4_sync_applied *out) {
  struct l4_tables *t = atomic_load(&dp->tables);
  if (!t) return -ENODATA;
  uint32_t now = (uint32_t)l4_dp_now_seconds();
  for (uint32_t i = 0; i < n; i++) {
    const struct l4_sync_rec *r = &recs[i];
    uint64_t hash = l4_flow_hash(&t->hash_key, &r->key);
    if (r->op == L4_SYNC_DEL) {
      if (l4_flow_forget(&dp->flows, &r->key, hash, now)) out->forgotten++;
      continue;
    }
    if (r->op != L4_SYNC_ADD || r->svc >= t->max_services || !l4_backend_valid(t, r->backend, r->svc)) {
      out->invalid++;
      continue;
    }
    bool confirmed = (r->state & FL_EST) != 0;
    if (l4_flow_learn(&dp->flows, &r->key, hash, r->backend, r->svc, confirmed, &t->timeouts, now) == FLOW_EXISTS)
      out->kept++;
    else
      out->learned++;
  }
  return 0;
}

int l4_dp_sync_check(struct l4_dp *dp, const struct l4_sync_rec *recs, uint32_t n, uint32_t *backend_out) {
  struct l4_tables *t = atomic_load(&dp->tables);
  if (!t) return -ENODATA;
  uint32_t now = (uint32_t)l4_dp_now_seconds();
  for (uint32_t i = 0; i < n; i++) {
    struct l4_flow_ref ref;
    uint64_t hash = l4_flow_hash(&t->hash_key, &recs[i].key);
    backend_out[i] = L4_NO_BACKEND;
    if (!l4_flow_lookup(&dp->flows, &recs[i].key, hash, &t->timeouts, now, &ref) || !(ref.state & FL_SYNCED)) continue;
    if (atomic_load_explicit(&ref.e->ver, memory_order_relaxed) & L4_VER_LEARNED) continue;
    backend_out[i] = ref.backend;
  }
  return 0;
}
