/* What the data plane would do now with a client's packet of one tuple (l4nat explain): the decision chain of
 * forward() in dataplane.c — service, source CIDR list, flow-table entry, ring (and the previous ring the second
 * chance consults), rate limit, backend and its rewrite — from the same lookups (decide.h), without creating,
 * touching or removing an entry and without taking a rate-limit token. For the admin view, never the packet path.
 *
 * The packet explained is the tuple's next packet from the client: it follows a live entry whose backend still
 * serves the service (unless the entry is closed: then it is taken as a new connection's opening packet, as a SYN
 * on it would be); without one, it is a new connection's opening packet (a SYN, or a UDP datagram), which the ring
 * decides and the rate limit must let in. A mid-flow TCP packet without an entry is forwarded by the ring without
 * the rate limit (dataplane.c), which `ring_backend` shows. With `syn` set the packet is a client's SYN (no ACK):
 * on a live entry it takes forward()'s choice (admission.h l4_syn_choice) — a SYN on an entry that saw a reset or
 * a FIN, on one whose backend takes no new flows (a client reusing its port), or a retransmission the ring now
 * sends elsewhere chooses again, and `syn_choice` says which. */
#ifndef L4NAT_EXPLAIN_H
#define L4NAT_EXPLAIN_H

#include <stdint.h>

#include "flow_table.h"
#include "ratelimit.h"
#include "tables.h"

/* How the packet would be decided. */
enum l4_explain_verdict {
  L4_EXPLAIN_DROP = 0,  /* dropped, for `drop_reason` */
  L4_EXPLAIN_ENTRY = 1, /* forwarded by its flow-table entry */
  L4_EXPLAIN_RING = 2,  /* forwarded by the ring; a new entry pins it there */
};

/* The tuple: addresses as 16 bytes (IPv4 in the first 4, the rest zero), ports in host order. */
struct l4_explain_query {
  uint8_t family, proto;
  uint8_t client[16], vip[16];
  uint16_t cport, vport;
  uint8_t syn; /* 1: a SYN without ACK; 0: the tuple's next packet */
};

/* Every field a uint32 word (layout.h exports their positions); L4_NO_BACKEND where there is nothing. */
struct l4_explain {
  uint32_t verdict;            /* enum l4_explain_verdict */
  uint32_t drop_reason;        /* enum l4_drop_reason, L4_DROP_NONE unless dropped */
  uint32_t service;            /* service slot */
  uint32_t acl_entries;        /* the service's source CIDR entries */
  uint32_t acl_index;          /* the entry that decided (l4_acl_decide), or L4_NO_BACKEND: none matched */
  uint32_t acl_allowed;        /* 1: the source may use the service */
  uint32_t rate;               /* new flows per second per client address, 0: no limit */
  uint32_t burst;
  uint32_t rate_tokens_milli;  /* the client's bucket now, in thousandths of a new flow */
  uint32_t rate_allows;        /* 1: a new flow now would pass the limit (or there is none) */
  uint32_t flow_found;         /* 1: a live (unexpired) entry holds the tuple */
  uint32_t flow_backend;       /* its backend slot */
  uint32_t flow_service;       /* its service slot */
  uint32_t flow_state;         /* its FL_* bits */
  uint32_t flow_class;         /* enum l4_flow_class */
  uint32_t flow_idle;          /* seconds since its last packet */
  uint32_t flow_valid;         /* 1: its backend still serves the service */
  uint32_t flow_off_ring;      /* 1: the ring now picks another backend (the entry pins it against the ring) */
  uint32_t ring_size;          /* 0: the service's ring is empty */
  uint32_t ring_slot;          /* the slot the tuple falls on */
  uint32_t ring_backend;       /* the backend there */
  uint32_t prev_ring_size;     /* the ring before the service's last change; 0: none */
  uint32_t prev_ring_slot;
  uint32_t prev_backend;       /* what it chose */
  uint32_t prev_second_chance; /* 1: a reset from ring_backend would pin the flow to prev_backend (dataplane.c) */
  uint32_t backend;            /* where the packet goes (entry or ring), or L4_NO_BACKEND: dropped */
  uint32_t backend_flags;      /* its L4_BK_* flags (L4_BK_IN_RING: holds ring slots; NO_SECOND_CHANCE: down) */
  uint32_t backend_port;       /* the forward rewrite's destination port (host order) */
  uint32_t backend_addr[4];    /* and address (the bytes as in the table) */
  uint32_t vip_port;           /* the reply's rewrite: backend:port -> this VIP:port (host order) */
  uint32_t vip_addr[4];
  uint32_t generation;         /* the published table's generation (set by the runtime, 0 here) */
  uint32_t syn_choice;         /* enum l4_syn_choice: why the packet leaves the live entry (L4_SYN_FOLLOWS: it does not,
                                  or there is none) */
};

#define L4_EXPLAIN_WORDS (sizeof(struct l4_explain) / sizeof(uint32_t))

/* Explains the tuple against table t, flow table ft and rate limits rl (NULL: none) at the data plane's clocks
 * (now: seconds, now_ms: wrapping milliseconds). Reads only. */
void l4_explain(const struct l4_tables *t, struct l4_flow_table *ft, const struct l4_ratelimit *rl, uint32_t now,
                uint32_t now_ms, const struct l4_explain_query *q, struct l4_explain *out);

#endif
