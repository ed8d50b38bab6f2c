/* Data-plane health probe packets; see probe.h. */
#include "probe.h"

#include <stdlib.h>
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

uint32_t l4_tcp_write(uint8_t *buf, uint8_t family, const uint8_t *src_in, const uint8_t *dst_in, uint16_t sport,
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
  return l4_tcp_write(buf, family, src, dst, sport, dport, seq, 0, TCP_SYN, 1);
}

uint32_t l4_probe_rst(struct l4_pkt *p) {
  uint16_t sport = load_be16(p->l4), dport = load_be16(p->l4 + 2);
  uint32_t ack = load_be32(p->l4 + 8);
  /* The answer goes back the way it came: from the probe address (its destination) to the backend. */
  return l4_tcp_write(p->vnet, p->family, p->daddr, p->saddr, dport, sport, ack, 0, TCP_RST, 0);
}

/* A slot word: state << 62 | sport << 32 | seq. */
static inline uint64_t probe_word(enum l4_probe_state st, uint16_t sport, uint32_t seq) {
  return ((uint64_t)st << 62) | ((uint64_t)sport << 32) | seq;
}
#define PROBE_ID_MASK ((1ull << 48) - 1) /* sport and seq: which probe */

int l4_probes_init(struct l4_probes *pr, uint32_t nslots) {
  pr->slots = calloc(nslots ? nslots : 1, sizeof(*pr->slots));
  pr->n = pr->slots ? nslots : 0;
  return pr->slots ? 0 : -1;
}

void l4_probes_destroy(struct l4_probes *pr) {
  free((void *)pr->slots);
  pr->slots = NULL;
  pr->n = 0;
}

bool l4_probe_arm(struct l4_probes *pr, uint32_t slot, uint16_t sport, uint32_t seq) {
  if (slot >= pr->n) return false;
  atomic_store_explicit(&pr->slots[slot], probe_word(L4_PROBE_PENDING, sport, seq), memory_order_release);
  return true;
}

enum l4_probe_state l4_probe_state(const struct l4_probes *pr, uint32_t slot, uint16_t sport, uint32_t seq) {
  if (slot >= pr->n) return L4_PROBE_NONE;
  uint64_t w = atomic_load_explicit(&pr->slots[slot], memory_order_acquire);
  if ((w & PROBE_ID_MASK) != (probe_word(L4_PROBE_NONE, sport, seq) & PROBE_ID_MASK)) return L4_PROBE_NONE;
  return (enum l4_probe_state)(w >> 62);
}

enum l4_probe_match l4_probe_match(struct l4_probes *pr, uint32_t slot, uint16_t dport, uint32_t ack, bool synack) {
  if (slot >= pr->n) return L4_PROBE_UNMATCHED;
  uint64_t w = atomic_load_explicit(&pr->slots[slot], memory_order_acquire);
  /* The answer acknowledges the probe's SYN: ack = seq + 1 (RFC 9293 3.5; a RST answering a SYN does too). */
  uint64_t id = probe_word(L4_PROBE_NONE, dport, ack - 1u);
  if ((w >> 62) == L4_PROBE_NONE || (w & PROBE_ID_MASK) != id) return L4_PROBE_UNMATCHED;
  if ((w >> 62) != L4_PROBE_PENDING) return L4_PROBE_REPEATED_ANSWER;
  uint64_t answered = probe_word(synack ? L4_PROBE_SYNACK : L4_PROBE_RST, dport, ack - 1u);
  /* Two workers may see copies of one answer: one records it. A new probe armed meanwhile wins. */
  if (atomic_compare_exchange_strong_explicit(&pr->slots[slot], &w, answered, memory_order_acq_rel, memory_order_acquire))
    return L4_PROBE_FIRST_ANSWER;
  return (w & PROBE_ID_MASK) == id ? L4_PROBE_REPEATED_ANSWER : L4_PROBE_UNMATCHED;
}
