/* The answer to a new flow that no backend may take (every candidate at its max_flows, the service's when_full:
 * reject; admission.h): written in place over the client's packet, from the VIP back to the client, so the
 * client learns at once instead of retransmitting into a drop. Pure C over the packet buffer. */
#ifndef L4NAT_REFUSE_H
#define L4NAT_REFUSE_H

#include <stdint.h>

#include "packet.h"

/* The most an ICMP answer quotes of the refused datagram: the answer stays within the minimum MTU every link
 * carries (RFC 1812 4.3.2.3: 576 bytes for IPv4; RFC 4443 2.4(c): 1280 for IPv6). */
#define L4_REFUSE_ICMP4_MAX 576
#define L4_REFUSE_ICMP6_MAX 1280

/* A client's SYN -> the RST that refuses it (RFC 9293 3.10.7.1, a SYN to a closed port: seq 0, ack = the SYN's
 * sequence + its length, RST+ACK), VIP:port -> client:port, no options, no data, no offloads. Never longer than
 * the SYN. Returns the new length (virtio_net_hdr included). */
uint32_t l4_refuse_tcp(struct l4_pkt *p);

/* A UDP datagram -> ICMP port unreachable (IPv4 type 3 code 3, ICMPv6 type 1 code 4) from the VIP to the client,
 * quoting the datagram as it came (moved up in the buffer), truncated to the limits above and to `cap`, the bytes
 * the buffer holds (virtio_net_hdr included). Returns the new length, or 0 when the quote could not hold the
 * datagram's IP header and 8 bytes (RFC 792): then nothing is written that matters, and the caller drops. */
uint32_t l4_refuse_udp(struct l4_pkt *p, uint32_t cap);

#endif
