/* Flow-table queries for the admin view, never the packet path: which entries a listing or a removal takes,
 * the TCP state a listing shows for an entry, and per-slot counts of live entries. Each works on one page of
 * the table (l4_flow_walk: a bounded number of entries from a cursor), so the caller never holds its thread
 * for a whole large table. Pure C over the flow table: the runtime (native/flows.c) supplies the clock and the
 * published timeouts, the addon converts arguments and results. */
#ifndef L4NAT_FLOW_QUERY_H
#define L4NAT_FLOW_QUERY_H

#include <stdbool.h>
#include <stdint.h>

#include "flow_table.h"

/* The state a listing shows for an entry, in this order: a filter takes a set of them as bits
 * (1 << L4_FC_*), and src/ names them by number (layout.h exports the names, checked at load). */
#define L4_FLOW_CLASSES(X)               \
  X("SYN_SENT", L4_FC_SYN_SENT)          \
  X("SYN_RECV", L4_FC_SYN_RECV)          \
  X("ESTABLISHED", L4_FC_ESTABLISHED)    \
  X("FIN_WAIT", L4_FC_FIN_WAIT)          \
  X("CLOSE", L4_FC_CLOSE)                \
  X("UDP", L4_FC_UDP)

#define L4_FC_ENUM(str, name) name,
enum l4_flow_class { L4_FLOW_CLASSES(L4_FC_ENUM) L4_FC_MAX };
#undef L4_FC_ENUM

/* The class of an entry with protocol `proto` and FL_* bits `state`, read as l4_flow_timeout reads them
 * (a closed entry is CLOSE whatever else it saw; FIN one way is FIN_WAIT; then established; then whether the
 * backend has answered). */
enum l4_flow_class l4_flow_class_of(uint8_t proto, uint8_t state);

/* Which entries a query takes; every condition given must hold. */
struct l4_flow_filter {
  uint32_t backend;      /* backend slot, or L4_NO_BACKEND: any */
  uint32_t service;      /* service slot, or L4_NO_BACKEND: any */
  const uint8_t *client; /* 16 bytes compared with the key's client (an IPv4 address zero-padded), or NULL: any */
  uint32_t classes;      /* 1 << enum l4_flow_class for each state taken, or 0: any */
};

/* A filter that takes every entry. */
#define L4_FLOW_FILTER_ANY ((struct l4_flow_filter){L4_NO_BACKEND, L4_NO_BACKEND, NULL, 0})

bool l4_flow_filter_match(const struct l4_flow_filter *f, const struct l4_flow_view *v);

/* A filter and the part of the table to look at. */
struct l4_flow_query {
  struct l4_flow_filter filter;
  uint64_t start;    /* entry index to begin at: 0, or the cursor a previous call returned */
  uint64_t max_scan; /* entries looked at, at most */
  uint32_t limit;    /* entries taken (listed or removed), at most; 0: no limit */
};

/* Calls take() with each live entry the query takes, in table order. Returns the cursor to go on from
 * (the table's capacity when the walk reached its end). */
uint64_t l4_flow_select(struct l4_flow_table *ft, const struct l4_flow_timeouts *to, uint32_t now,
                        const struct l4_flow_query *q, void (*take)(const struct l4_flow_view *v, void *arg),
                        void *arg);

/* Removes the live entries the query takes (an entry that changed since it was read stays); *removed = how
 * many went. Returns the cursor as l4_flow_select does. */
uint64_t l4_flow_remove_matching(struct l4_flow_table *ft, const struct l4_flow_timeouts *to, uint32_t now,
                                 const struct l4_flow_query *q, uint32_t *removed);

/* Live entries counted per slot (the control plane's "active flows"). The caller provides the arrays, zeroed;
 * pages are added up by calling l4_flow_stats_page on the same accumulator with the cursor it returned. */
struct l4_flow_stats {
  uint32_t *backends; /* by backend slot; closed TCP entries are not counted (they carry no connection) */
  uint32_t nbackends;
  uint32_t *services; /* by service slot, likewise */
  uint32_t nservices;
  uint64_t total;  /* live entries, closed ones included */
  uint64_t closed; /* TCP entries after RST or FIN both ways, lingering for the close timeout */
};

/* Counts one live entry (a slot beyond the arrays only in the totals). */
void l4_flow_stats_add(struct l4_flow_stats *st, const struct l4_flow_view *v);

/* Counts the live entries of start .. start + max_scan into st. Returns the cursor as l4_flow_select does. */
uint64_t l4_flow_stats_page(struct l4_flow_table *ft, const struct l4_flow_timeouts *to, uint32_t now,
                            uint64_t start, uint64_t max_scan, struct l4_flow_stats *st);

/* A planned change's rings (the control plane's `POST /v1/plan`), by the slot of the service the entries name:
 * which entries the new ring would send elsewhere if they lost their entry. A ring holds backend slots of the
 * running table, or values of its own (at least the table's max_backends) for backends the change adds. */
struct l4_ring_candidate {
  const uint32_t *ring; /* NULL: the service is not part of the question (its entries are not counted) */
  uint32_t size;        /* 0 with a ring: the service would have no backend (its entries count as moved) */
  uint8_t hash_mode;    /* the service's enum l4_hash_mode after the change */
};

struct l4_flow_moves {
  const struct siphash_key *hash_key; /* the running table's: the key the rings are indexed with */
  const struct l4_ring_candidate *services; /* by service slot */
  uint32_t nservices;
  uint32_t *moved; /* by the entry's backend slot: the new ring picks another backend */
  uint32_t *kept;  /* by the entry's backend slot: the new ring picks the same */
  uint32_t nbackends;
};

/* Counts the live entries of start .. start + max_scan that a candidate ring covers into m (closed TCP entries
 * carry no connection and are not counted). Returns the cursor as l4_flow_select does. */
uint64_t l4_flow_moves_page(struct l4_flow_table *ft, const struct l4_flow_timeouts *to, uint32_t now,
                            uint64_t start, uint64_t max_scan, struct l4_flow_moves *m);

#endif
