/* UDP coalescing on the write side; see coalesce.h. */
#include "coalesce.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "csum.h"

#define UDP_HDR 8

int l4_co_init(struct l4_coalescer *c) {
  memset(c, 0, sizeof(*c));
  c->buf = malloc(L4_CO_BUF_SIZE);
  return c->buf ? 0 : -ENOMEM;
}

void l4_co_destroy(struct l4_coalescer *c) {
  free(c->buf);
  memset(c, 0, sizeof(*c));
}

/* A plain UDP datagram the segmentation can reproduce: sets its UDP header offset and payload size. */
static bool mergeable(const uint8_t *pkt, uint32_t len, uint16_t *l4_off, uint16_t *payload) {
  if (len < VNET_HDR_LEN + 20 + UDP_HDR || len > L4_CO_BUF_SIZE) return false;
  uint8_t flags = pkt[VNET_OFF_FLAGS];
  if (pkt[VNET_OFF_GSO_TYPE] != VNET_GSO_NONE || !(flags & (VNET_F_NEEDS_CSUM | VNET_F_DATA_VALID))) return false;
  const uint8_t *ip = pkt + VNET_HDR_LEN;
  uint32_t ip_len = len - VNET_HDR_LEN;
  uint16_t off;
  if (ip[0] == 0x45) { /* IPv4, no options */
    if (ip[9] != IPPROTO_UDP_ || (load_be16(ip + 6) & 0x3fff) != 0 || load_be16(ip + 2) != ip_len) return false;
    off = 20;
  } else if ((ip[0] >> 4) == 6) {
    if (ip_len < 40 + UDP_HDR || ip[6] != IPPROTO_UDP_ || load_be16(ip + 4) + 40u != ip_len) return false;
    off = 40;
  } else {
    return false;
  }
  const uint8_t *udp = ip + off;
  if (load_be16(udp + 4) != ip_len - off || ip_len - off == UDP_HDR) return false;
  if (flags & VNET_F_NEEDS_CSUM) {
    uint16_t start, coff;
    memcpy(&start, pkt + VNET_OFF_CSUM_START, 2);
    memcpy(&coff, pkt + VNET_OFF_CSUM_OFFSET, 2);
    if (start != off || coff != UDP_OFF_CSUM) return false;
  } else if (off == 20 && load_u16(udp + UDP_OFF_CSUM) == 0) {
    return false; /* sent without a checksum: a merged one would add one */
  }
  *l4_off = off;
  *payload = (uint16_t)(ip_len - off - UDP_HDR);
  return true;
}

bool l4_co_start(struct l4_coalescer *c, const uint8_t *pkt, uint32_t len) {
  uint16_t off, payload;
  if (c->len || !mergeable(pkt, len, &off, &payload)) return false;
  memcpy(c->buf, pkt, len);
  c->len = len;
  c->l4_off = off;
  c->seg = payload;
  c->segs = 1;
  c->ended = false;
  if (off == 20) c->next_id = (uint16_t)(load_be16(pkt + VNET_HDR_LEN + 4) + 1);
  return true;
}

bool l4_co_append(struct l4_coalescer *c, const uint8_t *pkt, uint32_t len) {
  if (!c->len || c->ended || c->segs >= L4_CO_MAX_SEGS) return false;
  uint16_t off, payload;
  if (!mergeable(pkt, len, &off, &payload) || off != c->l4_off || payload > c->seg) return false;
  if (c->len + payload > L4_CO_BUF_SIZE) return false;
  const uint8_t *a = c->buf + VNET_HDR_LEN, *b = pkt + VNET_HDR_LEN;
  if (off == 20) {
    /* version/IHL/TOS; flags, TTL, protocol; addresses. Lengths, ID and header checksum differ. */
    if (memcmp(a, b, 2) || memcmp(a + 6, b + 6, 4) || memcmp(a + 12, b + 12, 8)) return false;
    if (load_be16(b + 4) != c->next_id) return false;
  } else {
    /* version/class/flow label; next header, hop limit, addresses. The payload length differs. */
    if (memcmp(a, b, 4) || memcmp(a + 6, b + 6, 34)) return false;
  }
  if (memcmp(a + off, b + off, 4)) return false; /* ports */
  memcpy(c->buf + c->len, b + off + UDP_HDR, payload);
  c->len += payload;
  c->segs++;
  c->next_id++;
  if (payload < c->seg) c->ended = true;
  return true;
}

uint32_t l4_co_finish(struct l4_coalescer *c, uint32_t *segs) {
  uint32_t len = c->len;
  *segs = c->segs;
  c->len = 0;
  c->segs = 0;
  if (*segs <= 1) return len; /* one datagram (or none): exactly as it came */
  uint8_t *vh = c->buf, *ip = c->buf + VNET_HDR_LEN, *udp = ip + c->l4_off;
  uint32_t ip_len = len - VNET_HDR_LEN, udp_len = ip_len - c->l4_off;
  int alen;
  if (c->l4_off == 20) {
    store_be16(ip + 2, (uint16_t)ip_len);
    store_u16(ip + 10, 0);
    store_u16(ip + 10, csum_finish(csum_add_buf(0, ip, 20)));
    alen = 4;
  } else {
    store_be16(ip + 4, (uint16_t)(ip_len - 40));
    alen = 16;
  }
  /* The segmentation gives every datagram its own length and adjusts this seed for it (__udp_gso_segment). */
  store_be16(udp + 4, (uint16_t)udp_len);
  store_u16(udp + UDP_OFF_CSUM, csum_fold(csum_pseudo(ip + (alen == 4 ? 12 : 8), ip + (alen == 4 ? 16 : 24), alen,
                                                      IPPROTO_UDP_, udp_len)));
  uint16_t hdr_len = (uint16_t)(c->l4_off + UDP_HDR), start = c->l4_off, coff = UDP_OFF_CSUM;
  vh[VNET_OFF_FLAGS] = VNET_F_NEEDS_CSUM;
  vh[VNET_OFF_GSO_TYPE] = VNET_GSO_UDP_L4;
  memcpy(vh + VNET_OFF_HDR_LEN, &hdr_len, 2);
  memcpy(vh + VNET_OFF_GSO_SIZE, &c->seg, 2);
  memcpy(vh + VNET_OFF_CSUM_START, &start, 2);
  memcpy(vh + VNET_OFF_CSUM_OFFSET, &coff, 2);
  return len;
}
