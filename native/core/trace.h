/* The data plane's verdict trace (`l4nat trace`, GET /v1/trace): for packets matching one of the matches the
 * control plane installed, a fixed-size record of what the packet was, what it became and why. Off by default:
 * l4_process then takes one predictable branch on ctx->trace (NULL) and runs a copy of the packet path with
 * every note compiled out (dataplane.c). When on, the decision points fill a l4_trace_note, and l4_trace_packet
 * turns it into a record in the worker's ring if a match takes it.
 *
 * The ring is single-producer (its worker), single-consumer (the addon's drain, on the JS thread), lock-free and
 * fixed in size; a record that finds it full is dropped and counted, so the worker never waits and a record is
 * never overwritten while it is read. The record layout is part of the TS<->C contract (layout.h exports it,
 * src/dataplane/trace-record.ts decodes it). Pure C: the runtime supplies the clock. */
#ifndef L4NAT_TRACE_H
#define L4NAT_TRACE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "drop_reasons.h"
#include "packet.h"
#include "tables.h"

#define L4_TRACE_MATCHES 4          /* concurrent traces (one per API client); a record says which took it */
#define L4_TRACE_RING_RECORDS 1024u /* per worker; a power of two */

/* Which way the packet went. */
#define L4_TRACE_DIRS(X)                                                        \
  X("none", L4_TD_NONE)                       /* not classified (parse error, not a service) */ \
  X("forward", L4_TD_FORWARD)                 /* client -> VIP:port -> backend */               \
  X("reply", L4_TD_REPLY)                     /* backend -> client, as VIP:port */              \
  X("icmp_to_backend", L4_TD_ICMP_TO_BACKEND) /* an ICMP error about a reply, sent on to the flow's backend */ \
  X("icmp_to_client", L4_TD_ICMP_TO_CLIENT)   /* an ICMP error about a forwarded packet, sent on to the client */ \
  X("echo", L4_TD_ECHO)                       /* an echo request to a VIP */                    \
  X("probe", L4_TD_PROBE)                     /* a backend's answer to a data-plane probe */

/* What the flow table did. */
#define L4_TRACE_FLOWS(X)                                                       \
  X("none", L4_TF_NONE)                                                         \
  X("hit", L4_TF_HIT)                   /* the flow's entry chose the backend */ \
  X("new", L4_TF_NEW)                   /* a new entry, backend from the ring */ \
  X("repin", L4_TF_REPIN)               /* an entry's backend chosen again (SYN on a closed entry, or retransmitted after the ring moved) */ \
  X("raced", L4_TF_RACED)               /* another worker created the entry first: its choice */ \
  X("no_entry", L4_TF_NO_ENTRY)         /* mid-flow packet without an entry: by the ring, no entry created */ \
  X("insert_failed", L4_TF_INSERT_FAILED) \
  X("pickup", L4_TF_PICKUP)             /* a backend's reply created the entry */ \
  X("other_backend", L4_TF_OTHER_BACKEND) /* the entry belongs to another backend: translated, state untouched */ \
  X("second_chance", L4_TF_SECOND_CHANCE) /* a backend's reset swallowed, flow pinned to the previous ring's backend */

#define L4_TRACE_ENUM(str, name) name,
enum l4_trace_dir { L4_TRACE_DIRS(L4_TRACE_ENUM) L4_TD_MAX };
enum l4_trace_flow { L4_TRACE_FLOWS(L4_TRACE_ENUM) L4_TF_MAX };
#undef L4_TRACE_ENUM

/* Which packets a match takes: every condition whose flag is set must hold. Ports in host order. */
#define L4_TM_CLIENT 1u      /* the client's address (family, client) */
#define L4_TM_CLIENT_PORT 2u /* and port */
#define L4_TM_SERVICE 4u     /* the service's VIP, port and protocol */
#define L4_TM_BACKEND 8u     /* the backend's address and port (either protocol) */
#define L4_TM_DROPS 16u      /* only packets the data plane dropped */
#define L4_TM_ACTIVE 128u    /* the match is installed */

struct l4_trace_match {
  uint32_t flags;
  uint8_t client_family, svc_family, svc_proto, bk_family;
  uint16_t cport, vport, bport;
  uint8_t client[16], vip[16], backend[16];
};

/* One traced packet; 128 bytes. Ports and numbers in host order, addresses as on the wire (IPv4 in the first 4
 * bytes). "before": as l4nat read it; "after": as it wrote it (a dropped packet: as read). */
struct l4_trace_rec {
  uint64_t time_ns;      /* CLOCK_REALTIME */
  uint8_t family, proto, dir, verdict; /* verdict: enum l4_verdict (0 drop, 1 written) */
  uint8_t drop_reason, flow, tcp_flags, match_mask; /* match_mask: bit i = match i took it */
  uint16_t gso_size;     /* the virtio_net_hdr's: a super-packet's segment size, 0 for none */
  uint8_t gso_type, icmp_type;
  uint32_t payload_len;  /* bytes after the TCP/UDP header */
  uint32_t seq, ack;     /* TCP, as read */
  uint32_t service, backend, ring_slot; /* slots and ring index, L4_NO_BACKEND for none */
  uint16_t queue, reserved;
  uint8_t saddr[16], daddr[16], out_saddr[16], out_daddr[16];
  uint16_t sport, dport, out_sport, out_dport;
  uint32_t ip_len, reserved2;
};

/* The record's fields as src/dataplane/trace-record.ts reads them (layout.h exports the offsets). */
#define L4_TRACE_REC_FIELDS(X)                                               \
  X("timeNs", offsetof(struct l4_trace_rec, time_ns))                        \
  X("family", offsetof(struct l4_trace_rec, family))                         \
  X("proto", offsetof(struct l4_trace_rec, proto))                           \
  X("dir", offsetof(struct l4_trace_rec, dir))                               \
  X("verdict", offsetof(struct l4_trace_rec, verdict))                       \
  X("dropReason", offsetof(struct l4_trace_rec, drop_reason))                \
  X("flow", offsetof(struct l4_trace_rec, flow))                             \
  X("tcpFlags", offsetof(struct l4_trace_rec, tcp_flags))                    \
  X("matchMask", offsetof(struct l4_trace_rec, match_mask))                  \
  X("gsoSize", offsetof(struct l4_trace_rec, gso_size))                      \
  X("gsoType", offsetof(struct l4_trace_rec, gso_type))                      \
  X("icmpType", offsetof(struct l4_trace_rec, icmp_type))                    \
  X("payloadLen", offsetof(struct l4_trace_rec, payload_len))                \
  X("seq", offsetof(struct l4_trace_rec, seq))                               \
  X("ack", offsetof(struct l4_trace_rec, ack))                               \
  X("service", offsetof(struct l4_trace_rec, service))                       \
  X("backend", offsetof(struct l4_trace_rec, backend))                       \
  X("ringSlot", offsetof(struct l4_trace_rec, ring_slot))                    \
  X("queue", offsetof(struct l4_trace_rec, queue))                           \
  X("saddr", offsetof(struct l4_trace_rec, saddr))                           \
  X("daddr", offsetof(struct l4_trace_rec, daddr))                           \
  X("outSaddr", offsetof(struct l4_trace_rec, out_saddr))                    \
  X("outDaddr", offsetof(struct l4_trace_rec, out_daddr))                    \
  X("sport", offsetof(struct l4_trace_rec, sport))                           \
  X("dport", offsetof(struct l4_trace_rec, dport))                           \
  X("outSport", offsetof(struct l4_trace_rec, out_sport))                    \
  X("outDport", offsetof(struct l4_trace_rec, out_dport))                    \
  X("ipLen", offsetof(struct l4_trace_rec, ip_len))

/* What the decision points noted about one packet (dataplane.c fills it only on the traced path). */
struct l4_trace_note {
  struct l4_trace_rec rec;  /* the packet as read, then the verdict; the tuple after is filled at the end */
  bool parsed;
  uint8_t client_family;    /* the flow's client end (its address and port), for the match */
  uint16_t cport;
  uint8_t client[16];
};

struct l4_trace_ring {
  _Atomic uint64_t head; /* written by the worker */
  char pad1[56];
  _Atomic uint64_t tail; /* written by the reader */
  char pad2[56];
  _Atomic uint64_t dropped; /* records that found the ring full */
  struct l4_trace_rec rec[L4_TRACE_RING_RECORDS];
};

/* A worker's trace state: the matches in force (a copy the worker owns) and its ring. */
struct l4_trace {
  struct l4_trace_match match[L4_TRACE_MATCHES];
  struct l4_trace_ring *ring;
  uint64_t (*clock_ns)(void);
  uint16_t queue;
};

/* Starts a note for a packet read from the TUN (before parsing). */
void l4_trace_note_init(struct l4_trace_note *n);
/* The packet as read, right after it parsed. */
void l4_trace_note_before(struct l4_trace_note *n, const struct l4_pkt *p);
/* The flow's client end, when it is not the packet's source (a reply, an ICMP error). */
void l4_trace_note_client(struct l4_trace_note *n, uint8_t family, const uint8_t *addr, uint16_t port_be);
/* The packet as written (p's pointers into the rewritten buffer), after the verdict. */
void l4_trace_note_after(struct l4_trace_note *n, const struct l4_pkt *p);

/* The matches of tr that take the noted packet, as a bit mask (0: none). */
uint32_t l4_trace_match(const struct l4_trace *tr, const struct l4_tables *t, const struct l4_trace_note *n);
/* Completes the note's record (verdict, drop reason, time, queue) and puts it in the ring if a match takes it. */
void l4_trace_packet(struct l4_trace *tr, const struct l4_tables *t, struct l4_trace_note *n, int verdict,
                     enum l4_drop_reason reason);

/* The reader's side: copies up to `max` records into out, oldest first; returns how many. */
uint32_t l4_trace_ring_read(struct l4_trace_ring *r, struct l4_trace_rec *out, uint32_t max);
uint32_t l4_trace_ring_pending(struct l4_trace_ring *r);

#endif
