/* Which backend may take a new flow: the packet core's admission decisions beside the ring (dataplane.c calls
 * them where a flow is created or chooses again). Pure functions of the published table and an entry's copy. */
#ifndef L4NAT_ADMISSION_H
#define L4NAT_ADMISSION_H

#include <stdbool.h>
#include <stdint.h>

#include "decide.h"
#include "flow_table.h"
#include "tables.h"

/* Does backend slot b take new flows: does it hold a slot of its service's current ring? A drained backend
 * (weight 0), one found down, or one with no slot left takes none; its established flows go on through their
 * entries. */
static inline bool l4_backend_takes_new_flows(const struct l4_tables *t, uint32_t b) {
  return (t->backends[b].flags & L4_BK_IN_RING) != 0;
}

/* A client's SYN (no ACK) on a live, not closed entry whose backend takes no new flows: a client reusing a
 * source port while the backend drains (or is down). It chooses again at once, from the current ring, and the
 * new choice replaces the entry, so the new connection never meets the old backend (which would answer with a
 * challenge ACK or a reset, or take a new flow while drained), and never waits for a SYN retransmission.
 * Why replacing the entry is safe for the old connection: a client cannot have two connections on one 4-tuple,
 * so a real client's SYN here means its old connection is gone on its side. A SYN retransmission of a
 * connection still in its handshake moves too: its backend never completed the handshake with the client (the
 * client would not retransmit a SYN otherwise), and it is leaving, so completing it on a live backend is what
 * the client wants. An established connection sends no SYN without ACK; the only such SYN carrying its tuple is
 * a forged one (a blind attacker who knows the client's address and port), which can cut that one connection on
 * a backend that is being taken out of service anyway, as a forged RST could before RFC 5961. */
static inline bool l4_syn_leaves_entry(const struct l4_tables *t, uint32_t backend, uint8_t state) {
  return !l4_flow_state_closed(state) && !l4_backend_takes_new_flows(t, backend);
}

/* Why a client's SYN (no ACK) on a live entry whose backend still serves the service does not follow it but
 * chooses again (forward() in dataplane.c; l4nat explain --syn says which). The layout exports the names. */
enum l4_syn_choice {
  L4_SYN_FOLLOWS = 0,         /* it follows the entry */
  L4_SYN_ON_CLOSED = 1,       /* the entry saw a reset or a FIN: a new connection on the tuple */
  L4_SYN_BACKEND_LEAVING = 2, /* its backend takes no new flows: l4_syn_leaves_entry */
  L4_SYN_RETRANSMITTED = 3,   /* a retransmission of a SYN nobody answered, which the ring now sends elsewhere */
};

/* A client's SYN retransmission (a second or more after the entry last saw a packet) for a connection its backend
 * never answered, while the ring now chooses another backend: the backend was taken out (found down, e.g.
 * black-holed), so the retransmission goes where the ring says instead of to the one that is not answering.
 * Two copies of one SYN within the same second (handled under two table generations) do not move it. Under
 * admission (bounded load, max_flows) a flow may sit off its ring slot by choice: it moves only when its backend
 * left the ring, never to meet the bound or a limit again (where it holds a place itself). For a SYN on an entry
 * that is not closed (l4_syn_choice decides closed ones first). */
static inline bool l4_syn_retransmit_moves(const struct l4_tables *t, const struct l4_service *s, const struct l4_flow_key *key,
                                           uint64_t hash, const struct l4_flow_ref *ref, uint32_t now) {
  if (ref->state & FL_REPLY) return false;
  if (atomic_load_explicit(&ref->e->last_seen, memory_order_relaxed) == now) return false;
  if (s->admission && l4_backend_takes_new_flows(t, ref->backend)) return false;
  return l4_pick_backend(t, s, key, hash) != ref->backend;
}

/* The choice for a SYN on a live entry `ref` whose backend still serves service s. A half-closed entry (one FIN) on
 * a backend that takes no new flows counts as the backend leaving (flow_reuse_moved), as it did before either rule
 * had a name. */
static inline enum l4_syn_choice l4_syn_choice(const struct l4_tables *t, const struct l4_service *s, const struct l4_flow_key *key,
                                               uint64_t hash, const struct l4_flow_ref *ref, uint32_t now) {
  if (l4_syn_leaves_entry(t, ref->backend, ref->state)) return L4_SYN_BACKEND_LEAVING;
  if (ref->state & (FL_RST | FL_FIN_C | FL_FIN_B)) return L4_SYN_ON_CLOSED;
  if (l4_syn_retransmit_moves(t, s, key, hash, ref, now)) return L4_SYN_RETRANSMITTED;
  return L4_SYN_FOLLOWS;
}

/* ---- Bounded load and per-backend limits (issue 17 items 1 and 2). Only a new flow meets them: a client's SYN
 * without ACK, or a UDP datagram without a live entry (dataplane.c forward()). Entries already made, mid-flow
 * packets forwarded by the ring, pick-ups and second chances are never redirected or refused. */

/* How many ring slots after the flow's own admission walks before scanning the service's backends in order. */
#define L4_ADMIT_RING_STEPS 64

/* Is backend b under its service's load bound? HAProxy's chash_server_is_eligible (lb_chash.c, consistent hashing
 * with bounded loads, Mirrokni, Thorup and Zadimoghaddam): the service's active flows with this one, times the
 * factor, shared out by weight and rounded up, at least 1 each: b may take the flow while it holds fewer than its
 * share. HAProxy hands the remainder of the division out by cumulative weight; rounding each share up instead is
 * a little more lenient (never more than one flow per backend) and needs no per-backend prefix sum. */
static inline bool l4_under_bound(const struct l4_flow_table *ft, const struct l4_service *s, uint32_t svc_slot,
                                  const struct l4_backend *bk, uint32_t b) {
  uint64_t active = (uint64_t)l4_flow_active_service(ft, svc_slot);
  /* No more than a flow table holds (2^28): with the factor (< 2^14) and a weight (<= 2^20) the product stays
   * below 2^63. */
  if (active > (1u << 28)) active = 1u << 28;
  uint64_t den = 100 * (s->ring_weight ? s->ring_weight : 1);
  uint64_t slots = ((active + 1) * s->factor_pct * l4_backend_weight(bk) + den - 1) / den;
  return (uint64_t)l4_flow_active_backend(ft, b) < (slots ? slots : 1);
}

/* May backend b take this new flow? Under the bound (when `bound`), and below its max_flows: with `reserve`, its
 * place is taken at once (l4_flow_reserve: a backend with max_flows 50 never holds more than 50, whichever workers
 * race), and *reserved says so; without (explain), only read. */
static inline bool l4_admits(struct l4_flow_table *ft, const struct l4_tables *t, const struct l4_service *s,
                             uint32_t svc_slot, uint32_t b, bool bound, bool reserve, bool *reserved) {
  const struct l4_backend *bk = &t->backends[b];
  if (bound && !l4_under_bound(ft, s, svc_slot, bk, b)) return false;
  if (!bk->max_flows) return true;
  if (!reserve) return l4_flow_active_backend(ft, b) < (int64_t)bk->max_flows;
  return *reserved = l4_flow_reserve(ft, b, bk->max_flows);
}

static inline bool l4_tried(const uint32_t *tried, uint32_t n, uint32_t b) {
  for (uint32_t i = 0; i < n; i++)
    if (tried[i] == b) return true;
  return false;
}

/* One pass over the candidates: the ring's slot, the next L4_ADMIT_RING_STEPS slots (the ring's own order, so
 * a backend comes up in proportion to its weight, the same way on every host), then every backend of the
 * service's ring from a place the slot decides. */
static inline uint32_t l4_admit_pass(struct l4_flow_table *ft, const struct l4_tables *t, const struct l4_service *s,
                                     uint32_t svc_slot, uint32_t slot, bool bound, bool reserve, bool *reserved) {
  uint32_t tried[L4_ADMIT_RING_STEPS + 1], n = 0;
  for (uint32_t step = 0; step <= L4_ADMIT_RING_STEPS && n < s->bk_n; step++) {
    uint32_t b = s->ring[(uint32_t)(((uint64_t)slot + step) % s->ring_size)];
    if (b == L4_NO_BACKEND || l4_tried(tried, n, b)) continue;
    if (l4_admits(ft, t, s, svc_slot, b, bound, reserve, reserved)) return b;
    tried[n++] = b;
  }
  for (uint32_t i = 0; i < s->bk_n && n < s->bk_n; i++) {
    uint32_t b = t->svc_backends[s->bk_off + (uint32_t)(((uint64_t)slot + i) % s->bk_n)];
    if (l4_tried(tried, n, b)) continue;
    if (l4_admits(ft, t, s, svc_slot, b, bound, reserve, reserved)) return b;
  }
  return L4_NO_BACKEND;
}

/* The backend a new flow falling on ring slot `slot` goes to, or L4_NO_BACKEND when every candidate is at its
 * max_flows (the service's when_full answers). A service without admission takes the ring's choice as it is.
 * A bounded service whose candidates are all over the bound (possible only while the counts of a reused backend
 * slot still hold another service's flows) takes the first one its limits let in: the bound moves flows, it
 * never refuses one. */
static inline uint32_t l4_admit(struct l4_flow_table *ft, const struct l4_tables *t, const struct l4_service *s,
                                uint32_t svc_slot, uint32_t slot, bool reserve, bool *reserved) {
  *reserved = false;
  if (!s->ring_size) return L4_NO_BACKEND;
  if (!s->admission) return s->ring[slot];
  bool bounded = s->balance == L4_BALANCE_BOUNDED;
  uint32_t b = l4_admit_pass(ft, t, s, svc_slot, slot, bounded, reserve, reserved);
  if (b == L4_NO_BACKEND && bounded) b = l4_admit_pass(ft, t, s, svc_slot, slot, false, reserve, reserved);
  return b;
}

#endif
