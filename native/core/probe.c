/* Data-plane health probe packets; see probe.h. */
#include "probe.h"

#include <string.h>

#include "csum.h"

#define TCP_HDR_LEN 20
#define TCP_OPT_MSS_LEN 4
#define PROBE_MSS 1220 /* small enough for any path: the probe carries no data anyway */

static void store_be32(uint8_t *p, uint32_t v) {
  p[0] = (uint8_t)(v >> 24);
  p[1] = (uint8_t)(v >> 16);
  p[2] = (uint8_t)(v >> 8);
  p[3] = (uint8_t)v;
}

static uint32_t load_be32(const uint8_t *p) {
  return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

/* Writes a fresh IP header and a TCP header (with the MSS option when `mss` is set) at buf, after a zeroed
 * virtio_net_hdr (no GSO, checksums complete). src/dst may point into buf: they are copied first. */
static uint32_t write_tcp(uint8_t *buf, uint8_t family, const uint8_t *src_in, const uint8_t *dst_in, uint16_t sport,
                          uint16_t dport, uint32_t seq, uint32_t ack, uint8_t flags, int mss) {
  uint8_t src[16], dst[16];
  int alen = family == 4 ? 4 : 16;
  memcpy(src, src_in, (size_t)alen);
  memcpy(dst, dst_in, (size_t)alen);
  uint32_t tcp_len = TCP_HDR_LEN + (mss ? TCP_OPT_MSS_LEN : 0);
  uint32_t ip_len = family == 4 ? 20 : 40;
  memset(buf, 0, VNET_HDR_LEN + ip_len + tcp_len);
  uint8_t *ip = buf + VNET_HDR_LEN;
  if (family == 4) {
    ip[0] = 0x45;
    store_be16(ip + 2, (uint16_t)(ip_len + tcp_len));
    ip[6] = 0x40; /* DF */
    ip[8] = 64;   /* TTL */
    ip[9] = IPPROTO_TCP_;
    memcpy(ip + 12, src, 4);
    memcpy(ip + 16, dst, 4);
    store_u16(ip + 10, csum_finish(csum_add_buf(0, ip, 20)));
  } else {
    ip[0] = 0x60;
    store_be16(ip + 4, (uint16_t)tcp_len);
    ip[6] = IPPROTO_TCP_;
    ip[7] = 64; /* hop limit */
    memcpy(ip + 8, src, 16);
    memcpy(ip + 24, dst, 16);
  }
  uint8_t *th = ip + ip_len;
  store_be16(th, sport);
  store_be16(th + 2, dport);
  store_be32(th + 4, seq);
  store_be32(th + 8, ack);
  th[12] = (uint8_t)((tcp_len / 4) << 4);
  th[13] = flags;
  store_be16(th + 14, flags & TCP_RST ? 0 : 65535); /* window */
  if (mss) {
    th[20] = 2; /* kind: MSS */
    th[21] = 4;
    store_be16(th + 22, PROBE_MSS);
  }
  uint32_t sum = csum_pseudo(src, dst, alen, IPPROTO_TCP_, tcp_len);
  store_u16(th + TCP_OFF_CSUM, csum_finish(csum_add_buf(sum, th, tcp_len)));
  return VNET_HDR_LEN + ip_len + tcp_len;
}

uint32_t l4_probe_syn(uint8_t *buf, uint32_t cap, uint8_t family, const uint8_t *src, const uint8_t *dst,
                      uint16_t sport, uint16_t dport, uint32_t seq) {
  if (family != 4 && family != 6) return 0;
  uint32_t need = VNET_HDR_LEN + (family == 4 ? 20u : 40u) + TCP_HDR_LEN + TCP_OPT_MSS_LEN;
  if (cap < need) return 0;
  return write_tcp(buf, family, src, dst, sport, dport, seq, 0, TCP_SYN, 1);
}

uint32_t l4_probe_rst(struct l4_pkt *p) {
  uint16_t sport = load_be16(p->l4), dport = load_be16(p->l4 + 2);
  uint32_t ack = load_be32(p->l4 + 8);
  /* The answer goes back the way it came: from the probe address (its destination) to the backend. */
  return write_tcp(p->vnet, p->family, p->daddr, p->saddr, dport, sport, ack, 0, TCP_RST, 0);
}
