/* Data-plane health probes (issue: "a check through the data plane").
 *
 * l4nat writes a TCP SYN into the TUN as if a client at the probe source address had sent it, already
 * translated (to the backend's address and port), so the kernel routes it to the backend exactly as it
 * routes client traffic. The backend's SYN-ACK can only come back through this host if the backend routes
 * its replies here (its default gateway or a route to the clients: the LVS-NAT requirement). l4_process
 * recognises that answer (from a backend, to the probe source address), counts it for the backend and
 * turns it into the RST that closes the half-open connection, so the probe never reaches a client and
 * the backend does not keep retransmitting the SYN-ACK. A backend whose replies bypass the LB host answers
 * the probe somewhere else: the count does not move and the control plane marks it down.
 *
 * Only the answer to the probe outstanding for that backend counts: its destination port must be the probe's
 * source port and its acknowledgment number the probe's sequence + 1 (struct l4_probes). Anyone who can send
 * to the probe address could otherwise forge a SYN-ACK from a dead backend's address and port, and an answer
 * to an earlier probe that arrives late would mark a backend up that no longer answers.
 * Pure C over buffers: no syscalls. */
#ifndef L4NAT_PROBE_H
#define L4NAT_PROBE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "packet.h"

/* The largest packet l4_probe_syn writes (virtio_net_hdr + IPv6 + TCP with an MSS option). */
#define L4_PROBE_MAX_LEN (VNET_HDR_LEN + 40 + 24)

/* Writes virtio_net_hdr + IP + TCP SYN (src:sport -> dst:dport, sequence `seq`, MSS option) into buf.
 * Addresses are 4 or 16 bytes per family, ports host order. Returns the length, or 0 when cap is too
 * small or family is neither 4 nor 6. */
uint32_t l4_probe_syn(uint8_t *buf, uint32_t cap, uint8_t family, const uint8_t *src, const uint8_t *dst,
                      uint16_t sport, uint16_t dport, uint32_t seq);

/* Writes a fresh IP header and a TCP header (with the MSS option when `mss` is set) at buf, after a zeroed
 * virtio_net_hdr (no GSO, checksums complete): src:sport -> dst:dport (host order), `seq`, `ack`, `flags`.
 * src/dst may point into buf: they are copied first. The caller makes sure buf holds L4_PROBE_MAX_LEN bytes.
 * Returns the length. Shared with the refusal of a new flow (refuse.c). */
uint32_t l4_tcp_write(uint8_t *buf, uint8_t family, const uint8_t *src, const uint8_t *dst, uint16_t sport,
                      uint16_t dport, uint32_t seq, uint32_t ack, uint8_t flags, int mss);

/* The probes outstanding: one per backend slot (a new probe for a slot replaces the one before), written by the
 * control thread, matched and answered by the workers, lock-free. Each word holds the probe's state, its source
 * port and sequence number. Allocated once. */
struct l4_probes {
  _Atomic uint64_t *slots;
  uint32_t n;
};

enum l4_probe_state { L4_PROBE_NONE = 0, L4_PROBE_PENDING = 1, L4_PROBE_SYNACK = 2, L4_PROBE_RST = 3 };

/* 0, or -1 when the allocation fails. */
int l4_probes_init(struct l4_probes *pr, uint32_t nslots);
void l4_probes_destroy(struct l4_probes *pr);

/* Records a probe about to be sent to backend `slot` from source port `sport` (host order) with sequence `seq`;
 * it replaces the slot's previous one, whose answer no longer counts. Returns false for a slot out of range. */
bool l4_probe_arm(struct l4_probes *pr, uint32_t slot, uint16_t sport, uint32_t seq);

/* The state of that probe: NONE when another probe replaced it (or there was none), else PENDING or its answer. */
enum l4_probe_state l4_probe_state(const struct l4_probes *pr, uint32_t slot, uint16_t sport, uint32_t seq);

enum l4_probe_match { L4_PROBE_UNMATCHED, L4_PROBE_FIRST_ANSWER, L4_PROBE_REPEATED_ANSWER };

/* The data path: does a SYN-ACK (`synack`) or RST from backend `slot` to the probe address, to destination
 * port `dport` (host order) with acknowledgment number `ack`, answer the slot's outstanding probe? The first
 * answer records its kind; a repeat (the backend retransmitting its SYN-ACK) matches but changes nothing. */
enum l4_probe_match l4_probe_match(struct l4_probes *pr, uint32_t slot, uint16_t dport, uint32_t ack, bool synack);

/* Rewrites a parsed TCP packet from a backend to the probe source (a SYN-ACK) in place into the RST that
 * answers it: addresses and ports swapped, sequence number = its acknowledgment number (RFC 793, "Reset
 * Generation"), no options, no data, no offloads. Returns the new length (virtio_net_hdr included). */
uint32_t l4_probe_rst(struct l4_pkt *p);

#endif
