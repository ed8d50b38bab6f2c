/* The lookups a client packet's decision is made of, shared by the packet path (dataplane.c), the read-only
 * explanation of a tuple (explain.c) and the flow-move count of a planned change (flow_query.c), so that what
 * those report is what l4_process does. Pure and side-effect free: no entry is created or touched. */
#ifndef L4NAT_DECIDE_H
#define L4NAT_DECIDE_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "flow_table.h"
#include "siphash.h"
#include "tables.h"

/* The hash a service's ring is indexed by: the flow's (`flow_hash`, l4_flow_hash of the key) or, for a
 * source-hashed service, the client address's alone. */
static inline uint64_t l4_ring_hash(const struct siphash_key *k, uint8_t hash_mode, const struct l4_flow_key *key,
                                    uint64_t flow_hash) {
  return hash_mode == L4_HASH_SRC ? siphash24(k, key->client, 16) : flow_hash;
}

/* The slot of a ring of `size` (> 0) a flow falls on. */
static inline uint32_t l4_ring_slot(const struct siphash_key *k, uint8_t hash_mode, const struct l4_flow_key *key,
                                    uint64_t flow_hash, uint32_t size) {
  return (uint32_t)(l4_ring_hash(k, hash_mode, key, flow_hash) % size);
}

/* The backend the service's current ring chooses for the flow, or L4_NO_BACKEND. */
static inline uint32_t l4_pick_backend(const struct l4_tables *t, const struct l4_service *s,
                                       const struct l4_flow_key *k, uint64_t hash) {
  if (!s->ring_size) return L4_NO_BACKEND;
  return s->ring[l4_ring_slot(&t->hash_key, s->hash_mode, k, hash, s->ring_size)];
}

/* The backend the ring before the service's last change chose for this flow, or L4_NO_BACKEND. */
static inline uint32_t l4_pick_previous(const struct l4_tables *t, const struct l4_service *s,
                                        const struct l4_flow_key *k, uint64_t hash) {
  if (!s->prev_ring_size) return L4_NO_BACKEND;
  return s->prev_ring[l4_ring_slot(&t->hash_key, s->hash_mode, k, hash, s->prev_ring_size)];
}

/* A flow entry's backend is usable if it still exists and still belongs to the same service. */
static inline bool l4_backend_valid(const struct l4_tables *t, uint32_t b, uint32_t svc) {
  return b < t->max_backends && (t->backends[b].flags & L4_BK_PRESENT) && t->backends[b].service == svc;
}

/* May the second chance pin a flow of service `svc` to backend `prev` (the previous ring's choice) rather than
 * to `current`? Only a backend that still serves the service, holds a slot of its ring (not drained) and is not
 * down (dataplane.c reply()). */
static inline bool l4_second_chance_target(const struct l4_tables *t, uint32_t prev, uint32_t current, uint32_t svc) {
  return prev != L4_NO_BACKEND && prev != current && l4_backend_valid(t, prev, svc) &&
         (t->backends[prev].flags & (L4_BK_NO_SECOND_CHANCE | L4_BK_IN_RING)) == L4_BK_IN_RING;
}

/* The rate-limit bucket of a client address for a service (ratelimit.h). */
static inline uint64_t l4_rate_bucket(const struct l4_tables *t, const struct l4_flow_key *key, uint32_t svc_slot) {
  return siphash24(&t->hash_key, key->client, 16) ^ svc_slot;
}

/* The flow key of the forward direction (client -> VIP); ports in network order. */
static inline void l4_flow_key_set(struct l4_flow_key *k, uint8_t family, uint8_t proto, const uint8_t *client,
                                   uint16_t cport, const uint8_t *vip, uint16_t vport) {
  memset(k, 0, sizeof(*k));
  int n = family == 4 ? 4 : 16;
  memcpy(k->client, client, (size_t)n);
  memcpy(k->vip, vip, (size_t)n);
  k->cport = cport;
  k->vport = vport;
  k->proto = proto;
  k->family = family;
}

#endif
