/* See sync_log.h. */
#include "sync_log.h"

#include <string.h>

_Static_assert(sizeof(struct l4_sync_rec) == 56, "sync record layout");

bool l4_sync_log_put(struct l4_sync_log *log, const struct l4_flow_key *key, uint32_t backend, uint32_t svc,
                     uint8_t op, uint8_t state) {
  uint64_t h = atomic_load_explicit(&log->head, memory_order_relaxed);
  uint64_t tail = atomic_load_explicit(&log->tail, memory_order_acquire);
  if (h - tail >= L4_SYNC_LOG_RECORDS) {
    atomic_fetch_add_explicit(&log->dropped, 1, memory_order_relaxed);
    return false;
  }
  struct l4_sync_rec *r = &log->rec[h & (L4_SYNC_LOG_RECORDS - 1)];
  r->key = *key;
  r->backend = backend;
  r->svc = svc;
  r->op = op;
  r->state = state;
  memset(r->pad, 0, sizeof(r->pad));
  atomic_store_explicit(&log->head, h + 1, memory_order_release);
  return true;
}

uint32_t l4_sync_log_read(struct l4_sync_log *log, struct l4_sync_rec *out, uint32_t max) {
  uint64_t t = atomic_load_explicit(&log->tail, memory_order_relaxed);
  uint64_t h = atomic_load_explicit(&log->head, memory_order_acquire);
  uint32_t n = 0;
  while (t + n < h && n < max) {
    out[n] = log->rec[(t + n) & (L4_SYNC_LOG_RECORDS - 1)];
    n++;
  }
  atomic_store_explicit(&log->tail, t + n, memory_order_release);
  return n;
}
