/* Which backend may take a new flow: the packet core's admission decisions beside the ring (dataplane.c calls
 * them where a flow is created or chooses again). Pure functions of the published table and an entry's copy. */
#ifndef L4NAT_ADMISSION_H
#define L4NAT_ADMISSION_H

#include <stdbool.h>
#include <stdint.h>

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

#endif
