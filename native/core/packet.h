/* Packet parsing: virtio_net_hdr + IPv4/IPv6 (+ extension headers) + TCP/UDP/ICMP, with every length
 * re-derived and bound-checked. Nothing here trusts a length from the kernel or the wire. */
#ifndef L4NAT_PACKET_H
#define L4NAT_PACKET_H

#include <stdbool.h>
#include <stdint.h>

#include "drop_reasons.h"

/* struct virtio_net_hdr in include/uapi/linux/virtio_net.h (the legacy 10-byte layout TUN uses by default,
 * native endian on x86). Spelled out here so the core builds without kernel headers. */
#define VNET_HDR_LEN 10
#define VNET_F_NEEDS_CSUM 1
#define VNET_F_DATA_VALID 2
#define VNET_GSO_NONE 0
#define VNET_GSO_TCPV4 1
#define VNET_GSO_UDP 3 /* UFO: deprecated, never enabled by l4nat */
#define VNET_GSO_TCPV6 4
#define VNET_GSO_UDP_L4 5
#define VNET_GSO_ECN 0x80

/* byte offsets inside the virtio_net_hdr */
#define VNET_OFF_FLAGS 0
#define VNET_OFF_GSO_TYPE 1
#define VNET_OFF_HDR_LEN 2
#define VNET_OFF_GSO_SIZE 4
#define VNET_OFF_CSUM_START 6
#define VNET_OFF_CSUM_OFFSET 8

#define IPPROTO_ICMP_ 1
#define IPPROTO_TCP_ 6
#define IPPROTO_UDP_ 17
#define IPPROTO_ICMPV6_ 58

#define TCP_FIN 0x01
#define TCP_SYN 0x02
#define TCP_RST 0x04
#define TCP_PSH 0x08
#define TCP_ACK 0x10

/* IP header byte offsets (RFC 791, RFC 8200), from the first byte of the IP header. Shared with the queue
 * steering program (native/steering.c), which loads the same fields from the packet the TUN hands it;
 * core_test's packet_offsets fixture checks them against packets the independent builder made. */
#define IP_OFF_VERSION 0 /* the version nibble (high 4 bits); IPv4 keeps its header length in the low 4 */
#define IP4_OFF_TOTLEN 2
#define IP4_OFF_FRAG 6
#define IP4_OFF_TTL 8
#define IP4_OFF_PROTO 9
#define IP4_OFF_CSUM 10
#define IP4_OFF_SADDR 12
#define IP4_OFF_DADDR 16
#define IP6_HDR_LEN 40 /* the fixed header; extension headers follow it */
#define IP6_OFF_PLEN 4
#define IP6_OFF_NEXT 6
#define IP6_OFF_HOPLIMIT 7
#define IP6_OFF_SADDR 8
#define IP6_OFF_DADDR 24

/* Port offsets inside a TCP or UDP header. */
#define L4_OFF_SPORT 0
#define L4_OFF_DPORT 2

/* Offsets of the checksum field inside each L4 header. */
#define TCP_OFF_CSUM 16
#define UDP_OFF_CSUM 6
#define ICMP_OFF_CSUM 2

/* The most extension headers we walk before giving up (RFC 8200 expects few; attackers send many). */
#define IPV6_MAX_EXT_HEADERS 8

struct l4_pkt {
  uint8_t *vnet;     /* the virtio_net_hdr */
  uint8_t *l3;       /* the IP header */
  uint32_t l3_len;   /* IP total length (header + payload), re-derived from the header, <= bytes read */
  uint8_t *l4;       /* the L4 header */
  uint32_t l4_len;   /* bytes from l4 to the end of the IP packet */
  uint8_t *saddr, *daddr;
  uint8_t family;    /* 4 or 6 */
  uint8_t addr_len;  /* 4 or 16 */
  uint8_t proto;     /* L4 protocol after extension headers */
  uint8_t tcp_flags;
  uint16_t sport, dport; /* network byte order, as in the header; 0 for ICMP */
  uint8_t gso_type;      /* VNET_GSO_* without the ECN bit */
  bool csum_partial;     /* VNET_F_NEEDS_CSUM: the L4 checksum field holds the pseudo-header sum */
};

/* Parses `len` bytes at buf (virtio_net_hdr first). Returns L4_DROP_NONE when the packet is well formed
 * for l4nat's purposes, else the reason to drop it. */
enum l4_drop_reason l4_parse(uint8_t *buf, uint32_t len, struct l4_pkt *pkt);

/* Parses an IP packet quoted inside an ICMP error (RFC 792 / RFC 4443): only the IP header and the first
 * 8 bytes of L4 must be present; lengths in the quoted header are not checked against the quote.
 * On success fills pkt (without vnet fields) and returns true. */
bool l4_parse_quoted(uint8_t *buf, uint32_t len, uint8_t family, struct l4_pkt *pkt);

#endif
