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
 * Pure C over buffers: no syscalls. */
#ifndef L4NAT_PROBE_H
#define L4NAT_PROBE_H

#include <stdint.h>

#include "packet.h"

/* The largest packet l4_probe_syn writes (virtio_net_hdr + IPv6 + TCP with an MSS option). */
#define L4_PROBE_MAX_LEN (VNET_HDR_LEN + 40 + 24)

/* Writes virtio_net_hdr + IP + TCP SYN (src:sport -> dst:dport, sequence `seq`, MSS option) into buf.
 * Addresses are 4 or 16 bytes per family, ports host order. Returns the length, or 0 when cap is too
 * small or family is neither 4 nor 6. */
uint32_t l4_probe_syn(uint8_t *buf, uint32_t cap, uint8_t family, const uint8_t *src, const uint8_t *dst,
                      uint16_t sport, uint16_t dport, uint32_t seq);

/* Rewrites a parsed TCP packet from a backend to the probe source (a SYN-ACK) in place into the RST that
 * answers it: addresses and ports swapped, sequence number = its acknowledgment number (RFC 793, "Reset
 * Generation"), no options, no data, no offloads. Returns the new length (virtio_net_hdr included). */
uint32_t l4_probe_rst(struct l4_pkt *p);

#endif
