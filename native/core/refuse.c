/* Refusing a new flow; see refuse.h. */
#include "refuse.h"

#include <string.h>

#include "csum.h"
#include "probe.h"

uint32_t l4_refuse_tcp(struct l4_pkt *p) {
  uint32_t doff = (uint32_t)(p->l4[12] >> 4) * 4;
  uint32_t seg_len = (p->l4_len > doff ? p->l4_len - doff : 0) + 1 /* SYN */ + ((p->tcp_flags & TCP_FIN) ? 1 : 0);
  uint32_t ack = load_be32(p->l4 + 4) + seg_len;
  uint16_t sport = load_be16(p->l4), dport = load_be16(p->l4 + 2);
  /* The answer fits: a SYN has at least the same IP header and 20 bytes of TCP. */
  return l4_tcp_write(p->vnet, p->family, p->daddr, p->saddr, dport, sport, 0, ack, TCP_RST | TCP_ACK, 0);
}

uint32_t l4_refuse_udp(struct l4_pkt *p, uint32_t cap) {
  uint32_t hdr = p->family == 4 ? 20 + 8 : 40 + 8;
  uint32_t limit = p->family == 4 ? L4_REFUSE_ICMP4_MAX : L4_REFUSE_ICMP6_MAX;
  uint32_t room = cap > VNET_HDR_LEN + hdr ? cap - VNET_HDR_LEN - hdr : 0;
  uint32_t quote = p->l3_len;
  if (quote > limit - hdr) quote = limit - hdr;
  if (quote > room) quote = room;
  uint32_t l3_hdr = (uint32_t)(p->l4 - p->l3);
  if (quote < l3_hdr + 8) return 0;
  uint8_t src[16], dst[16];
  int n = p->addr_len;
  memcpy(src, p->daddr, (size_t)n); /* from the VIP */
  memcpy(dst, p->saddr, (size_t)n); /* to the client */
  uint8_t *ip = p->vnet + VNET_HDR_LEN;
  memmove(ip + hdr, p->l3, quote);
  memset(p->vnet, 0, VNET_HDR_LEN + hdr); /* no offloads: every checksum below is complete */
  uint8_t *icmp = ip + hdr - 8;
  uint32_t icmp_len = 8 + quote;
  if (p->family == 4) {
    ip[0] = 0x45;
    store_be16(ip + IP4_OFF_TOTLEN, (uint16_t)(20 + icmp_len));
    ip[IP4_OFF_TTL] = 64;
    ip[IP4_OFF_PROTO] = IPPROTO_ICMP_;
    memcpy(ip + IP4_OFF_SADDR, src, 4);
    memcpy(ip + IP4_OFF_DADDR, dst, 4);
    store_u16(ip + IP4_OFF_CSUM, csum_finish(csum_add_buf(0, ip, 20)));
    icmp[0] = 3; /* destination unreachable */
    icmp[1] = 3; /* port unreachable */
    store_u16(icmp + ICMP_OFF_CSUM, csum_finish(csum_add_buf(0, icmp, icmp_len)));
  } else {
    ip[0] = 0x60;
    store_be16(ip + IP6_OFF_PLEN, (uint16_t)icmp_len);
    ip[IP6_OFF_NEXT] = IPPROTO_ICMPV6_;
    ip[IP6_OFF_HOPLIMIT] = 64;
    memcpy(ip + IP6_OFF_SADDR, src, 16);
    memcpy(ip + IP6_OFF_DADDR, dst, 16);
    icmp[0] = 1; /* destination unreachable */
    icmp[1] = 4; /* port unreachable */
    uint32_t sum = csum_pseudo(src, dst, 16, IPPROTO_ICMPV6_, icmp_len);
    store_u16(icmp + ICMP_OFF_CSUM, csum_finish(csum_add_buf(sum, icmp, icmp_len)));
  }
  return VNET_HDR_LEN + hdr + quote;
}
