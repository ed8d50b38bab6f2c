/* The running data plane's flow-table queries for the admin view: core/flow_query.h at the data plane's
 * clock and with the published table's idle timeouts. Called on the control thread, the one that publishes
 * tables (and so the only one that frees them): the timeouts stay valid for the call. Before the first
 * table every entry counts as expired. */
#ifndef L4NAT_FLOWS_H
#define L4NAT_FLOWS_H

#include <stdint.h>

#include "core/explain.h"
#include "core/flow_query.h"
#include "worker.h"

/* Live entries (walks the whole table: for tests and small tables; the views use l4_dp_flow_stats pages). */
uint64_t l4_dp_flow_count(struct l4_dp *dp);
/* l4_flow_select on the data plane's table; returns the cursor to go on from (capacity: the end). */
uint64_t l4_dp_flows(struct l4_dp *dp, const struct l4_flow_query *q,
                     void (*take)(const struct l4_flow_view *v, void *arg), void *arg);
/* l4_flow_remove_matching on the data plane's table. */
uint64_t l4_dp_delete_flows(struct l4_dp *dp, const struct l4_flow_query *q, uint32_t *deleted);
/* l4_flow_stats_page on the data plane's table. */
uint64_t l4_dp_flow_stats(struct l4_dp *dp, uint64_t start, uint64_t max_scan, struct l4_flow_stats *st);

/* l4_explain on the published table, the data plane's flow table and rate limits at its clocks, with the table's
 * generation (publishes so far). -ENODATA before the first table. */
int l4_dp_explain(struct l4_dp *dp, const struct l4_explain_query *q, struct l4_explain *out);
/* l4_flow_moves_page with the published table's hash key and timeouts (m->hash_key is set here). */
uint64_t l4_dp_flow_moves(struct l4_dp *dp, uint64_t start, uint64_t max_scan, struct l4_flow_moves *m);

/* l4_flow_sweep on the data plane's table with the published timeouts (none before the first table). */
uint64_t l4_dp_sweep(struct l4_dp *dp, uint64_t start, uint64_t max_scan, uint64_t *freed);
/* The active-flow counts (flow_table.h) of every backend slot (max_backends) and service slot (max_services). */
void l4_dp_active_flows(struct l4_dp *dp, double *backends, double *services);

#endif
