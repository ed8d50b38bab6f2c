/* An independent packet builder for the data-plane fixtures (native/test only).
 *
 * It shares nothing with native/core: its own header layouts, its own RFC 1071 checksum (summed as
 * big-endian 16-bit values, the textbook way, where csum.h sums words as they lie in memory), its own
 * minimal parser for verification. A fixture's expected output is built here from scratch, so a bug in the
 * core's incremental checksum code cannot hide behind the same bug in the test.
 *
 * Layers, bottom up: checksum helpers -> IP header (IPv4 options, IPv6 extension headers) -> L4 (TCP, UDP,
 * ICMP/ICMPv6 incl. errors quoting another built packet) -> virtio_net_hdr (include/uapi/linux/virtio_net.h,
 * the legacy 10-byte layout in native byte order, as TUN uses it without TUNSETVNETLE/BE). */
#ifndef L4NAT_TEST_PKT_BUILDER_H
#define L4NAT_TEST_PKT_BUILDER_H

#include <stdbool.h>
#include <stdint.h>

#define PB_VNET_LEN 10
#define PB_MAX 70000 /* a 64 KiB GSO super-packet plus headers */

/* virtio_net_hdr byte offsets and values (spelled out again on purpose: independent of packet.h) */
#define PB_VNET_FLAGS 0
#define PB_VNET_GSO_TYPE 1
#define PB_VNET_HDR_LEN 2
#define PB_VNET_GSO_SIZE 4
#define PB_VNET_CSUM_START 6
#define PB_VNET_CSUM_OFFSET 8
#define PB_VNET_F_NEEDS_CSUM 1
#define PB_VNET_F_DATA_VALID 2
#define PB_GSO_NONE 0
#define PB_GSO_TCPV4 1
#define PB_GSO_UDP 3
#define PB_GSO_TCPV6 4
#define PB_GSO_UDP_L4 5
#define PB_GSO_ECN 0x80

#define PB_TCP_FIN 0x01
#define PB_TCP_SYN 0x02
#define PB_TCP_RST 0x04
#define PB_TCP_PSH 0x08
#define PB_TCP_ACK 0x10
#define PB_TCP_URG 0x20
#define PB_TCP_ECE 0x40
#define PB_TCP_CWR 0x80

#define PB_IP4_DF 0x4000
#define PB_IP4_MF 0x2000

/* ---- checksum (RFC 1071), computed over big-endian 16-bit values ---- */
uint32_t pb_sum(uint32_t acc, const uint8_t *p, uint32_t len);
uint16_t pb_fold(uint32_t sum); /* end-around carry fold, not complemented */
uint32_t pb_pseudo(uint8_t family, const uint8_t *src, const uint8_t *dst, uint8_t proto, uint32_t l4_len);

/* ---- IP ---- */
#define PB_MAX_EXT 12
struct pb_ext6 {
  uint8_t type;        /* 0 hop-by-hop, 43 routing, 44 fragment, 60 destination options, or anything */
  uint16_t len;        /* total bytes of this header (a multiple of 8); bytes[0] and bytes[1] are set by pb */
  uint8_t bytes[256];
};

struct pb_ip {
  uint8_t family; /* 4 or 6 */
  uint8_t src[16], dst[16];
  uint8_t ttl, tos;
  uint16_t id;       /* IPv4 identification */
  uint16_t frag;     /* IPv4 flags + fragment offset word (PB_IP4_DF, PB_IP4_MF | offset/8) */
  uint8_t opts[40];  /* IPv4 options, opts_len a multiple of 4 */
  uint8_t opts_len;
  uint32_t flow;     /* IPv6 flow label */
  struct pb_ext6 ext[PB_MAX_EXT]; /* IPv6 extension headers, in order */
  int next;
};

void pb_ip4(struct pb_ip *ip, const char *src, const char *dst);
void pb_ip6(struct pb_ip *ip, const char *src, const char *dst);
void pb_ip6_add_opts(struct pb_ip *ip, uint8_t type /* 0 or 60 */, uint16_t len /* multiple of 8 */);
void pb_ip6_add_routing(struct pb_ip *ip, uint8_t segments_left, int naddrs);
void pb_ip6_add_frag(struct pb_ip *ip, uint16_t offset8, bool more, uint32_t ident);

/* ---- L4 ---- */
enum pb_csum {
  PB_CSUM_FULL,    /* a complete checksum (UDP: a result of 0 is sent as 0xffff) */
  PB_CSUM_PARTIAL, /* CHECKSUM_PARTIAL: the folded, uncomplemented pseudo-header sum (__tcp_v4_send_check) */
  PB_CSUM_ZERO,    /* field 0 (UDP "no checksum") */
  PB_CSUM_BAD,     /* the full checksum plus bad_delta (mod 2^16) */
};

struct pb_l4 {
  uint8_t proto; /* 6, 17, 1, 58, or other (payload only) */
  uint16_t sport, dport;
  /* TCP */
  uint32_t seq, ack;
  uint8_t flags;
  uint16_t win, urg;
  uint8_t opts[40], opts_len; /* opts_len a multiple of 4 */
  uint8_t doff_words;         /* 0 = computed; else forced into the header */
  /* UDP */
  bool udp_len_set;
  uint16_t udp_len;           /* forced UDP length when udp_len_set */
  /* ICMP / ICMPv6 */
  uint8_t icmp_type, icmp_code;
  uint32_t icmp_rest;         /* the 4 bytes after the checksum: id/seq, unused/MTU, MTU */
  /* all */
  const uint8_t *payload;
  uint32_t payload_len;
  enum pb_csum csum;
  uint16_t bad_delta;
  /* Pseudo-header length used for PB_CSUM_PARTIAL (0 = the real L4 length). */
  uint32_t partial_len;
};

void pb_tcp(struct pb_l4 *l4, uint16_t sport, uint16_t dport, uint8_t flags);
void pb_tcp_std_opts(struct pb_l4 *l4); /* MSS 1460, SACK permitted, timestamps, window scale 7 */
void pb_udp(struct pb_l4 *l4, uint16_t sport, uint16_t dport);
void pb_icmp(struct pb_l4 *l4, uint8_t family, uint8_t type, uint8_t code, uint32_t rest);

/* Builds the IP packet (no virtio_net_hdr) into out; returns its length (0 if cap is too small). */
uint32_t pb_build_ip(uint8_t *out, uint32_t cap, const struct pb_ip *ip, const struct pb_l4 *l4);

/* ---- virtio_net_hdr ---- */
struct pb_vnet {
  uint8_t flags, gso_type;
  uint16_t hdr_len, gso_size, csum_start, csum_offset;
};

/* Builds virtio_net_hdr + IP packet. vnet NULL: all zero, except that a PB_CSUM_PARTIAL L4 gets
 * NEEDS_CSUM with csum_start/csum_offset pointing at its checksum field. Returns the total length. */
uint32_t pb_build(uint8_t *out, uint32_t cap, const struct pb_vnet *vnet, const struct pb_ip *ip,
                  const struct pb_l4 *l4);
void pb_vnet_write(uint8_t *buf, const struct pb_vnet *v);
void pb_vnet_read(const uint8_t *buf, struct pb_vnet *v);
void pb_put16_native(uint8_t *p, uint16_t v);

/* ---- verification (own minimal parser) ---- */
struct pb_info {
  uint8_t family, proto;
  uint32_t l3_len; /* from the IP header */
  uint32_t l4_off; /* from the start of the IP header */
  const uint8_t *src, *dst;
};
/* Walks an IP packet; false if it cannot find the L4 header. */
bool pb_parse(const uint8_t *ip, uint32_t len, struct pb_info *info);
/* The folded sum of the IPv4 header (0xffff when its checksum is right). */
uint16_t pb_ip4_hdr_sum(const uint8_t *ip);
/* The folded sum over pseudo-header (none for ICMPv4) and L4 bytes incl. the checksum field: 0xffff when
 * the L4 checksum is right. */
uint16_t pb_l4_sum(const uint8_t *ip, uint32_t len);
/* Offset of the L4 checksum field from the IP header start (or -1). */
int pb_l4_csum_off(const uint8_t *ip, uint32_t len);
/* Does the work the kernel does for CHECKSUM_PARTIAL (skb_checksum_help): sums ip[csum_start..len) with
 * the seed in place and stores the complement at csum_start + csum_offset. UDP: 0 becomes 0xffff. */
void pb_finish_partial(uint8_t *ip, uint32_t len, uint16_t csum_start, uint16_t csum_offset, bool udp);

/* Splits a GSO super-packet (virtio_net_hdr + IP) into segments as tcp_gso_segment / __udp_gso_segment
 * would, with finished checksums. Segment i is written at segs + i * stride (IP packet, no vnet header),
 * its length at lens[i]. Returns the number of segments, or -1 on a malformed input. */
int pb_gso_split(const uint8_t *buf, uint32_t len, uint8_t *segs, uint32_t stride, uint32_t *lens, int max);

/* ---- misc ---- */
void pb_hexdump_diff(const char *label, const uint8_t *got, uint32_t got_len, const uint8_t *want, uint32_t want_len);
uint16_t pb_be16(const uint8_t *p);
void pb_put_be16(uint8_t *p, uint16_t v);
uint32_t pb_be32(const uint8_t *p);
void pb_put_be32(uint8_t *p, uint32_t v);
void pb_addr(uint8_t family, const char *text, uint8_t out[16]);

#endif
