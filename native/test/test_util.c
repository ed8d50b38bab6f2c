/* Test harness; see test_util.h. */
#include "test_util.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int g_test_failures;
uint8_t g_out[PB_MAX];
uint32_t g_out_len;
int g_csum_equiv;

void check_fail(const char *file, int line, const char *expr, const char *fmt, ...) {
  g_test_failures++;
  fprintf(stderr, "    check failed at %s:%d: %s\n      ", file, line, expr);
  va_list ap;
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fputc('\n', stderr);
}

void env_init_tables(struct env *e, uint64_t flow_capacity, struct l4_tables *t) {
  memset(e, 0, sizeof(*e));
  if (l4_flow_table_init(&e->ft, flow_capacity) != 0) {
    perror("l4_flow_table_init");
    abort();
  }
  e->t = t;
  uint64_t words = l4_counter_block_words(t->max_services, t->max_backends);
  e->counters = calloc(words, sizeof(uint64_t));
  if (!e->counters) abort();
  e->ctx.counters = e->counters;
  e->ctx.max_services = t->max_services;
  e->ctx.max_backends = t->max_backends;
  e->ctx.flows = &e->ft;
  e->ctx.now = 1000;
  if (l4_flow_counts_init(&e->ft, t->max_services, t->max_backends) != 0) abort();
}

void env_init(struct env *e, uint64_t flow_capacity, enum fx_ring ring, uint32_t options) {
  env_init_tables(e, flow_capacity, fx_tables(ring, options));
}

void env_publish(struct env *e, struct l4_tables *t) {
  /* Counter blocks are sized for max_services/max_backends, which the fixtures never change. */
  if (t->max_services != e->ctx.max_services || t->max_backends != e->ctx.max_backends) abort();
  l4_tables_free(e->t);
  e->t = t;
}

void env_free(struct env *e) {
  l4_tables_free(e->t);
  l4_flow_counts_destroy(&e->ft);
  l4_flow_table_destroy(&e->ft);
  free(e->counters);
  memset(e, 0, sizeof(*e));
}

uint64_t env_q(struct env *e, enum l4_queue_counter c) { return e->counters[c]; }
uint64_t env_drops(struct env *e, enum l4_drop_reason r) { return l4_ctr_drops(&e->ctx)[r]; }

enum l4_verdict run_raw(struct env *e, const uint8_t *in, uint32_t in_len, uint8_t *out, uint32_t *out_len) {
  uint32_t cap = in_len + e->buf_extra;
  uint8_t *buf = malloc(cap ? cap : 1);
  if (!buf) abort();
  memcpy(buf, in, in_len);
  uint32_t len = in_len;
  e->ctx.buf_cap = cap;
  enum l4_verdict v = l4_process(&e->ctx, e->t, buf, &len);
  if (v == L4_VERDICT_TX) {
    CHECK(len <= cap, "output length %u grew past the buffer's %u", len, cap);
    if (len > cap) len = cap;
    memcpy(out, buf, len);
    *out_len = len;
  } else {
    *out_len = 0;
  }
  free(buf);
  return v;
}

/* Byte-for-byte, except that for TCP and ICMP (never UDP, where 0 means "no checksum") an L4 checksum of
 * 0x0000 where 0xffff was computed, or the reverse, is the same one's complement value: the incremental
 * update (RFC 1624) and the from-scratch sum may pick different zeros. Then validity is compared instead
 * (the output's checksum must verify). Counted in g_csum_equiv and reported in the summary. */
static bool same_packet(const uint8_t *got, uint32_t gl, const uint8_t *want, uint32_t wl, bool strict) {
  if (gl == wl && memcmp(got, want, gl) == 0) return true;
  if (strict || gl != wl || wl <= PB_VNET_LEN) return false;
  struct pb_info in;
  if (!pb_parse(want + PB_VNET_LEN, wl - PB_VNET_LEN, &in) || in.proto == 17) return false;
  int off = pb_l4_csum_off(want + PB_VNET_LEN, wl - PB_VNET_LEN);
  if (off < 0) return false;
  uint32_t c = (uint32_t)off + PB_VNET_LEN;
  for (uint32_t i = 0; i < gl; i++)
    if (got[i] != want[i] && i != c && i != c + 1) return false;
  uint16_t g = pb_be16(got + c), w = pb_be16(want + c);
  if (!((g == 0 && w == 0xffff) || (g == 0xffff && w == 0))) return false;
  /* Same value, but only "valid" counts: over data summing to +0 (all zero) a field of 0x0000 leaves the
   * total at +0, which receivers reject (they want -0, 0xffff). */
  if (pb_l4_sum(got + PB_VNET_LEN, gl - PB_VNET_LEN) != 0xffff) return false;
  g_csum_equiv++;
  return true;
}

static bool do_expect_tx(struct env *e, const char *desc, const uint8_t *in, uint32_t in_len, const uint8_t *want,
                         uint32_t want_len, bool strict) {
  corpus_record(desc, in, in_len);
  enum l4_verdict v = run_raw(e, in, in_len, g_out, &g_out_len);
  if (v != L4_VERDICT_TX) {
    CHECK(v == L4_VERDICT_TX, "%s: dropped (%s), expected a translated packet", desc,
          L4_DROP_REASON_NAMES[e->ctx.last_drop]);
    return false;
  }
  if (!same_packet(g_out, g_out_len, want, want_len, strict)) {
    CHECK(false, "%s: output differs from the expected packet", desc);
    pb_hexdump_diff(desc, g_out, g_out_len, want, want_len);
    return false;
  }
  return true;
}

bool expect_tx(struct env *e, const char *desc, const uint8_t *in, uint32_t in_len, const uint8_t *want,
               uint32_t want_len) {
  return do_expect_tx(e, desc, in, in_len, want, want_len, false);
}

bool expect_tx_strict(struct env *e, const char *desc, const uint8_t *in, uint32_t in_len, const uint8_t *want,
                      uint32_t want_len) {
  return do_expect_tx(e, desc, in, in_len, want, want_len, true);
}

bool expect_drop(struct env *e, const char *desc, const uint8_t *in, uint32_t in_len, enum l4_drop_reason r) {
  corpus_record(desc, in, in_len);
  uint64_t before = env_drops(e, r);
  enum l4_verdict v = run_raw(e, in, in_len, g_out, &g_out_len);
  if (v != L4_VERDICT_DROP) {
    CHECK(v == L4_VERDICT_DROP, "%s: transmitted, expected a drop (%s)", desc, L4_DROP_REASON_NAMES[r]);
    return false;
  }
  if (e->ctx.last_drop != r) {
    CHECK(e->ctx.last_drop == r, "%s: dropped as %s, expected %s", desc, L4_DROP_REASON_NAMES[e->ctx.last_drop],
          L4_DROP_REASON_NAMES[r]);
    return false;
  }
  CHECK(env_drops(e, r) == before + 1, "%s: drop counter %s not incremented", desc, L4_DROP_REASON_NAMES[r]);
  return true;
}

bool flow_get(struct env *e, uint8_t family, uint8_t proto, const char *client, uint16_t cport, const char *vip,
              uint16_t vport, struct l4_flow_ref *ref) {
  struct l4_flow_key k;
  memset(&k, 0, sizeof(k));
  uint8_t a[16];
  pb_addr(family, client, a);
  memcpy(k.client, a, family == 4 ? 4 : 16);
  pb_addr(family, vip, a);
  memcpy(k.vip, a, family == 4 ? 4 : 16);
  pb_put_be16((uint8_t *)&k.cport, cport);
  pb_put_be16((uint8_t *)&k.vport, vport);
  k.proto = proto;
  k.family = family;
  uint64_t h = l4_flow_hash(&e->t->hash_key, &k);
  return l4_flow_lookup(&e->ft, &k, h, &e->t->timeouts, e->ctx.now, ref);
}

/* ---- packet specs ---- */
uint8_t PAY[PB_MAX];
uint8_t g_in[PB_MAX], g_want[PB_MAX];

__attribute__((constructor)) static void init_payload(void) {
  for (uint32_t i = 0; i < PB_MAX; i++) PAY[i] = (uint8_t)(i * 7 + (i >> 8) + 3);
}

void spec_tcp(struct pb_ip *ip, struct pb_l4 *l4, uint8_t family, const char *src, uint16_t sport, const char *dst,
              uint16_t dport, uint8_t flags, uint32_t paylen) {
  if (family == 4) pb_ip4(ip, src, dst);
  else pb_ip6(ip, src, dst);
  pb_tcp(l4, sport, dport, flags);
  if (flags & PB_TCP_SYN) {
    pb_tcp_std_opts(l4);
  } else {
    static const uint8_t ts[12] = {1, 1, 8, 10, 0, 0, 0x12, 0x34, 0, 0x0a, 0xbc, 0xde};
    memcpy(l4->opts, ts, sizeof(ts));
    l4->opts_len = sizeof(ts);
  }
  l4->payload = PAY;
  l4->payload_len = paylen;
}

void spec_udp(struct pb_ip *ip, struct pb_l4 *l4, uint8_t family, const char *src, uint16_t sport, const char *dst,
              uint16_t dport, uint32_t paylen) {
  if (family == 4) pb_ip4(ip, src, dst);
  else pb_ip6(ip, src, dst);
  pb_udp(l4, sport, dport);
  l4->payload = PAY;
  l4->payload_len = paylen;
}

uint32_t bld(uint8_t *buf, const struct pb_vnet *v, const struct pb_ip *ip, const struct pb_l4 *l4) {
  uint32_t n = pb_build(buf, PB_MAX, v, ip, l4);
  if (!n) {
    fprintf(stderr, "packet spec does not fit\n");
    abort();
  }
  return n;
}

bool fx_fwd(struct env *e, const char *desc, const struct pb_vnet *v, const struct pb_ip *ip, const struct pb_l4 *l4,
            const char *addr, uint16_t port) {
  uint32_t n = bld(g_in, v, ip, l4);
  struct pb_ip ip2 = *ip;
  struct pb_l4 l42 = *l4;
  pb_addr(ip->family, addr, ip2.dst);
  l42.dport = port;
  uint32_t m = bld(g_want, v, &ip2, &l42);
  return expect_tx(e, desc, g_in, n, g_want, m);
}

bool fx_rev(struct env *e, const char *desc, const struct pb_vnet *v, const struct pb_ip *ip, const struct pb_l4 *l4,
            const char *addr, uint16_t port) {
  uint32_t n = bld(g_in, v, ip, l4);
  struct pb_ip ip2 = *ip;
  struct pb_l4 l42 = *l4;
  pb_addr(ip->family, addr, ip2.src);
  l42.sport = port;
  uint32_t m = bld(g_want, v, &ip2, &l42);
  return expect_tx(e, desc, g_in, n, g_want, m);
}

int c2s_fam(struct env *e, uint8_t fam, uint16_t cport, uint8_t flags) {
  struct pb_ip ip;
  struct pb_l4 l4;
  spec_tcp(&ip, &l4, fam, fam == 4 ? C4 : C6, cport, fam == 4 ? VIP4 : VIP6, 80, flags, 10);
  uint32_t n = bld(g_in, NULL, &ip, &l4);
  if (run_raw(e, g_in, n, g_out, &g_out_len) != L4_VERDICT_TX) return -1;
  return out_backend();
}

int out_backend(void) {
  struct pb_info in;
  if (g_out_len <= PB_VNET_LEN || !pb_parse(g_out + PB_VNET_LEN, g_out_len - PB_VNET_LEN, &in)) return -1;
  uint16_t dport = pb_be16(g_out + PB_VNET_LEN + in.l4_off + 2);
  for (int b = 0; b < FX_NBK; b++) {
    const struct fx_backend_def *d = &FX_BACKENDS[b];
    uint8_t a[16];
    uint8_t fam = FX_SERVICES[d->service].family;
    if (fam != in.family || FX_SERVICES[d->service].proto != in.proto) continue;
    pb_addr(fam, d->addr, a);
    if (memcmp(a, in.dst, fam == 4 ? 4 : 16) == 0 && d->port == dport) return b;
  }
  return -1;
}

struct l4_tables *tables_with_previous(int with_prev, uint32_t prev_backend, uint32_t bk_flags, bool b_in_ring,
                                      uint32_t rate) {
  static struct fx_input fi;
  static uint32_t words[L4_PREV_RING_WORDS];
  fx_input_init(&fi, FX_RING_A, 0);
  if (b_in_ring) fi.rings[FX_SVC_V4_TCP * FX_RING_SIZE + FX_RING_SIZE - 1] = FX_BK_V4T_B;
  uint32_t off = FX_NSVC * FX_RING_SIZE;
  for (uint32_t i = 0; i < FX_RING_SIZE; i++) fi.rings[off + i] = prev_backend;
  fi.in.rings_len = off + FX_RING_SIZE;
  if (with_prev) {
    words[0] = FX_SVC_V4_TCP;
    words[1] = off;
    words[2] = FX_RING_SIZE;
    fi.in.prev_ring_words = words;
    fi.in.nprev_rings = 1;
  }
  fi.bk_words[prev_backend * L4_BK_WORDS + 5] = bk_flags;
  fx_rate_limit(&fi, rate);
  return fx_build(&fi, "tables_with_previous");
}

void fx_rate_limit(struct fx_input *fi, uint32_t rate) {
  static uint32_t limit[L4_LIMIT_WORDS];
  if (!rate) return;
  limit[0] = FX_SVC_V4_TCP;
  limit[1] = limit[2] = rate;
  fi->in.limit_words = limit;
  fi->in.nlimits = 1;
}

struct l4_tables *fx_build(const struct fx_input *fi, const char *who) {
  char err[256];
  struct l4_tables *t = l4_tables_build(&fi->in, err, sizeof(err));
  if (!t) {
    fprintf(stderr, "%s: %s\n", who, err);
    abort();
  }
  return t;
}

struct l4_flow_key flow_key4(const char *client, uint16_t cport, uint8_t proto) {
  struct l4_flow_key k;
  memset(&k, 0, sizeof(k));
  pb_addr(4, client, k.client);
  pb_addr(4, VIP4, k.vip);
  k.cport = (uint16_t)((cport >> 8) | (cport << 8));
  k.vport = (uint16_t)(80 << 8);
  k.proto = proto;
  k.family = 4;
  return k;
}

uint16_t port_to(struct env *e, const char *client, uint16_t from, uint32_t bk) {
  const struct l4_service *s = &e->t->services[FX_SVC_V4_TCP];
  for (uint32_t p = from; p <= 0xffff; p++) {
    struct l4_flow_key k = flow_key4(client, (uint16_t)p, 6);
    if (s->ring_size && s->ring[l4_flow_hash(&e->t->hash_key, &k) % s->ring_size] == bk) return (uint16_t)p;
  }
  abort();
}
