/* Flow-table queries of the running data plane; see flows.h. */
#include "flows.h"

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
