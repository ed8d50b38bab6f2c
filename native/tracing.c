/* See tracing.h. */
#include "tracing.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int l4_dp_trace_init(struct l4_dp_trace *dt, int nqueues) {
  memset(dt, 0, sizeof(*dt));
  /* calloc of this size maps zero pages: memory is touched only by records actually traced. */
  dt->rings = calloc((size_t)nqueues, sizeof(struct l4_trace_ring));
  dt->workers = calloc((size_t)nqueues, sizeof(struct l4_trace));
  if (!dt->rings || !dt->workers) {
    free(dt->rings);
    free(dt->workers);
    return -ENOMEM;
  }
  dt->nrings = nqueues;
  for (int i = 0; i < nqueues; i++) {
    dt->workers[i].ring = &dt->rings[i];
    dt->workers[i].queue = (uint16_t)i;
  }
  pthread_mutex_init(&dt->lock, NULL);
  return 0;
}

void l4_dp_trace_destroy(struct l4_dp_trace *dt) {
  if (!dt->rings) return;
  free(dt->rings);
  free(dt->workers);
  dt->rings = NULL;
  dt->workers = NULL;
  pthread_mutex_destroy(&dt->lock);
}

int l4_dp_trace_set(struct l4_dp_trace *dt, uint32_t slot, const struct l4_trace_match *m) {
  if (slot >= L4_TRACE_MATCHES) return -EINVAL;
  pthread_mutex_lock(&dt->lock);
  if (m) {
    dt->match[slot] = *m;
    dt->match[slot].flags |= L4_TM_ACTIVE;
  } else {
    memset(&dt->match[slot], 0, sizeof(dt->match[slot]));
  }
  atomic_fetch_add_explicit(&dt->gen, 1, memory_order_relaxed);
  pthread_mutex_unlock(&dt->lock);
  return 0;
}

struct l4_trace *l4_dp_trace_copy(struct l4_dp_trace *dt, struct l4_trace *tr, uint32_t *seen) {
  pthread_mutex_lock(&dt->lock);
  memcpy(tr->match, dt->match, sizeof(tr->match));
  *seen = atomic_load_explicit(&dt->gen, memory_order_relaxed);
  pthread_mutex_unlock(&dt->lock);
  for (int i = 0; i < L4_TRACE_MATCHES; i++)
    if (tr->match[i].flags & L4_TM_ACTIVE) return tr;
  return NULL;
}

uint64_t l4_dp_trace_pending(struct l4_dp_trace *dt) {
  uint64_t n = 0;
  for (int i = 0; i < dt->nrings; i++) n += l4_trace_ring_pending(&dt->rings[i]);
  return n;
}

uint32_t l4_dp_trace_read(struct l4_dp_trace *dt, struct l4_trace_rec *out, uint32_t max, uint64_t *dropped) {
  uint32_t n = 0;
  *dropped = 0;
  for (int i = 0; i < dt->nrings; i++) {
    n += l4_trace_ring_read(&dt->rings[i], out + n, max - n);
    *dropped += atomic_load_explicit(&dt->rings[i].dropped, memory_order_relaxed);
  }
  return n;
}
