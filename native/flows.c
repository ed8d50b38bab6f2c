/* Flow-table queries of the running data plane; see flows.h. */
#include "flows.h"

#include <errno.h>

static const struct l4_flow_timeouts *current_timeouts(struct l4_dp *dp) {
  static const struct l4_flow_timeouts none = {{0, 0, 0, 0, 0}, NULL, 0};
  struct l4_tables *t = atomic_load(&dp->tables);
  return t ? &t->timeouts : &none;
}

static uint32_t now(void) { return (uint32_t)l4_dp_now_seconds(); }

uint64_t l4_dp_flow_count(struct l4_dp *dp) { return l4_flow_count(&dp->flows, current_timeouts(dp), now()); }

uint64_t l4_dp_flows(struct l4_dp *dp, const struct l4_flow_query *q,
                     void (*take)(const struct l4_flow_view *v, void *arg), void *arg) {
  return l4_flow_select(&dp->flows, current_timeouts(dp), now(), q, take, arg);
}

uint64_t l4_dp_delete_flows(struct l4_dp *dp, const struct l4_flow_query *q, uint32_t *deleted) {
  return l4_flow_remove_matching(&dp->flows, current_timeouts(dp), now(), q, deleted);
}

uint64_t l4_dp_flow_stats(struct l4_dp *dp, uint64_t start, uint64_t max_scan, struct l4_flow_stats *st) {
  return l4_flow_stats_page(&dp->flows, current_timeouts(dp), now(), start, max_scan, st);
}

int l4_dp_explain(struct l4_dp *dp, const struct l4_explain_query *q, struct l4_explain *out) {
  struct l4_tables *t = atomic_load(&dp->tables);
  if (!t) return -ENODATA;
  l4_explain(t, &dp->flows, &dp->ratelimit, now(), l4_dp_now_ms(), q, out);
  out->generation = (uint32_t)atomic_load(&dp->gen);
  return 0;
}

uint64_t l4_dp_flow_moves(struct l4_dp *dp, uint64_t start, uint64_t max_scan, struct l4_flow_moves *m) {
  struct l4_tables *t = atomic_load(&dp->tables);
  if (!t) return dp->flows.capacity; /* no table: every entry counts as expired */
  m->hash_key = &t->hash_key;
  return l4_flow_moves_page(&dp->flows, &t->timeouts, now(), start, max_scan, m);
}

uint64_t l4_dp_sweep(struct l4_dp *dp, uint64_t start, uint64_t max_scan, uint64_t *freed) {
  struct l4_tables *t = atomic_load(&dp->tables);
  if (!t) return dp->flows.capacity; /* no table, no timeouts: nothing is known to have expired */
  return l4_flow_sweep(&dp->flows, &t->timeouts, now(), start, max_scan, freed);
}

void l4_dp_active_flows(struct l4_dp *dp, double *backends, double *services) {
  for (uint32_t b = 0; b < dp->cfg.max_backends; b++) backends[b] = (double)l4_flow_active_backend(&dp->flows, b);
  for (uint32_t s = 0; s < dp->cfg.max_services; s++) services[s] = (double)l4_flow_active_service(&dp->flows, s);
}
