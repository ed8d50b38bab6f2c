/* The runtime side of the verdict trace (core/trace.h): the matches the control plane installed, one ring per
 * worker, and how a worker picks up a change. The matches change rarely and under a mutex; a worker compares
 * one generation number per batch and, only when it moved, copies the matches under the mutex, so tracing off
 * costs a worker one relaxed load per batch and l4_process one branch per packet. */
#ifndef L4NAT_TRACING_H
#define L4NAT_TRACING_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/trace.h"

struct l4_dp_trace {
  pthread_mutex_t lock;
  struct l4_trace_match match[L4_TRACE_MATCHES];
  _Atomic uint32_t gen;         /* bumped on every change of match[] */
  struct l4_trace_ring *rings;  /* one per queue */
  struct l4_trace *workers;     /* one per queue: its worker's copy of the matches (kept out of the worker's
                                   struct l4_queue, whose hot fields stay where they were) */
  int nrings;
};

int l4_dp_trace_init(struct l4_dp_trace *dt, int nqueues);
void l4_dp_trace_destroy(struct l4_dp_trace *dt);
/* Sets match `slot` (m NULL: clears it). Returns 0, or -EINVAL for a slot out of range. */
int l4_dp_trace_set(struct l4_dp_trace *dt, uint32_t slot, const struct l4_trace_match *m);
/* Copies the matches into tr (under the mutex), notes their generation in *seen; tr, or NULL when none is set. */
struct l4_trace *l4_dp_trace_copy(struct l4_dp_trace *dt, struct l4_trace *tr, uint32_t *seen);
/* A worker's per-batch check: have the matches changed since the generation it copied? (Then it calls
 * l4_dp_trace_copy, whose result its ctx->trace becomes.) */
static inline bool l4_dp_trace_changed(struct l4_dp_trace *dt, uint32_t seen) {
  return atomic_load_explicit(&dt->gen, memory_order_relaxed) != seen;
}
/* Records waiting in all rings. */
uint64_t l4_dp_trace_pending(struct l4_dp_trace *dt);
/* Moves up to max records into out, queue by queue; *dropped = records lost to full rings so far (all queues). */
uint32_t l4_dp_trace_read(struct l4_dp_trace *dt, struct l4_trace_rec *out, uint32_t max, uint64_t *dropped);

#endif
