/* Flow-table queries (core/flow_query.h) as fixtures: a table filled with known entries -> the entries each
 * filter takes, the per-slot counts, what a removal leaves; the state classes against the idle timeouts; and
 * the named IP/TCP/UDP header offsets (core/packet.h, shared with the steering program) against packets the
 * independent builder made. */
#include <stdio.h>
#include <string.h>

#include "../core/flow_query.h"
#include "test_util.h"
#include "tests.h"

/* ---- header offsets ---- */

void test_packet_offsets(void) {
  struct pb_ip ip;
  struct pb_l4 l4;
  uint8_t buf[256], a[16];
  /* IPv4 with 4 bytes of options, so the ports sit after a header longer than 20 bytes, as the steering
   * program finds them (header length from IP_OFF_VERSION's low nibble) */
  pb_ip4(&ip, "192.0.2.1", "198.51.100.2");
  ip.ttl = 61;
  ip.frag = PB_IP4_DF;
  ip.opts_len = 4;
  memset(ip.opts, 1, 4); /* NOPs */
  pb_tcp(&l4, 40001, 8080, PB_TCP_SYN);
  uint32_t n = pb_build_ip(buf, sizeof(buf), &ip, &l4);
  uint32_t ihl = (uint32_t)(buf[IP_OFF_VERSION] & 0x0f) * 4;
  CHECK(n > 0 && buf[IP_OFF_VERSION] >> 4 == 4 && ihl == 24, "v4: version %u, header %u bytes", buf[IP_OFF_VERSION] >> 4, ihl);
  CHECK(pb_be16(buf + IP4_OFF_TOTLEN) == n, "v4 total length at IP4_OFF_TOTLEN");
  CHECK(pb_be16(buf + IP4_OFF_FRAG) == PB_IP4_DF, "v4 flags at IP4_OFF_FRAG");
  CHECK(buf[IP4_OFF_TTL] == 61, "v4 TTL at IP4_OFF_TTL");
  CHECK(buf[IP4_OFF_PROTO] == IPPROTO_TCP_, "v4 protocol at IP4_OFF_PROTO");
  uint8_t ck[2] = {buf[IP4_OFF_CSUM], buf[IP4_OFF_CSUM + 1]};
  buf[IP4_OFF_CSUM] = buf[IP4_OFF_CSUM + 1] = 0;
  uint16_t hdr_sum = pb_fold(pb_sum(0, buf, ihl));
  CHECK((uint32_t)pb_be16(ck) + hdr_sum == 0xffff, "v4 header checksum at IP4_OFF_CSUM");
  pb_addr(4, "192.0.2.1", a);
  CHECK(memcmp(buf + IP4_OFF_SADDR, a, 4) == 0, "v4 source at IP4_OFF_SADDR");
  pb_addr(4, "198.51.100.2", a);
  CHECK(memcmp(buf + IP4_OFF_DADDR, a, 4) == 0, "v4 destination at IP4_OFF_DADDR");
  CHECK(pb_be16(buf + ihl + L4_OFF_SPORT) == 40001 && pb_be16(buf + ihl + L4_OFF_DPORT) == 8080, "TCP ports at L4_OFF_SPORT/DPORT");
  CHECK(pb_be16(buf + ihl + TCP_OFF_CSUM) == pb_be16(buf + pb_l4_csum_off(buf, n)), "TCP checksum at TCP_OFF_CSUM");

  pb_ip6(&ip, "2001:db8::1", "fd4c:ffff::10");
  ip.ttl = 62;
  pb_udp(&l4, 5353, 53);
  l4.payload = PAY;
  l4.payload_len = 8;
  n = pb_build_ip(buf, sizeof(buf), &ip, &l4);
  struct pb_info in;
  CHECK(n > 0 && pb_parse(buf, n, &in) && in.l4_off == IP6_HDR_LEN, "v6: L4 right after IP6_HDR_LEN");
  CHECK(buf[IP_OFF_VERSION] >> 4 == 6, "v6 version");
  CHECK(pb_be16(buf + IP6_OFF_PLEN) == n - IP6_HDR_LEN, "v6 payload length at IP6_OFF_PLEN");
  CHECK(buf[IP6_OFF_NEXT] == IPPROTO_UDP_, "v6 next header at IP6_OFF_NEXT");
  CHECK(buf[IP6_OFF_HOPLIMIT] == 62, "v6 hop limit at IP6_OFF_HOPLIMIT");
  pb_addr(6, "2001:db8::1", a);
  CHECK(memcmp(buf + IP6_OFF_SADDR, a, 16) == 0, "v6 source at IP6_OFF_SADDR");
  pb_addr(6, "fd4c:ffff::10", a);
  CHECK(memcmp(buf + IP6_OFF_DADDR, a, 16) == 0, "v6 destination at IP6_OFF_DADDR");
  CHECK(pb_be16(buf + IP6_HDR_LEN + L4_OFF_SPORT) == 5353 && pb_be16(buf + IP6_HDR_LEN + L4_OFF_DPORT) == 53, "UDP ports");
  CHECK(IP6_HDR_LEN + UDP_OFF_CSUM == pb_l4_csum_off(buf, n), "UDP checksum at UDP_OFF_CSUM");
}

/* ---- state classes ---- */

void test_flow_classes(void) {
  static const struct {
    uint8_t proto, state;
    enum l4_flow_class want;
  } cases[] = {
      {6, 0, L4_FC_SYN_SENT}, /* picked up, not confirmed */
      {6, FL_SYN, L4_FC_SYN_SENT},
      {6, FL_SYN | FL_REPLY, L4_FC_SYN_RECV},
      {6, FL_REPLY, L4_FC_SYN_RECV},
      {6, FL_SYN | FL_REPLY | FL_EST, L4_FC_ESTABLISHED},
      {6, FL_EST, L4_FC_ESTABLISHED},
      {6, FL_EST | FL_FIN_C, L4_FC_FIN_WAIT},
      {6, FL_EST | FL_FIN_B, L4_FC_FIN_WAIT},
      {6, FL_EST | FL_FIN_C | FL_FIN_B, L4_FC_CLOSE},
      {6, FL_EST | FL_RST, L4_FC_CLOSE},
      {6, FL_SYN | FL_RST, L4_FC_CLOSE},
      {6, FL_FIN_C | FL_RST, L4_FC_CLOSE},
      {17, 0, L4_FC_UDP},
      {17, FL_RST | FL_FIN_C | FL_FIN_B, L4_FC_UDP},
      {1, 0, L4_FC_UDP}, /* anything but TCP keeps the datagram timeout */
  };
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    enum l4_flow_class c = l4_flow_class_of(cases[i].proto, cases[i].state);
    CHECK(c == cases[i].want, "proto %u state %#x: class %d, want %d", cases[i].proto, cases[i].state, c, cases[i].want);
  }
  /* A listing shows the state whose idle timeout the entry has: every TCP bit combination */
  const struct l4_timeouts to = {1, 2, 3, 4, 5};
  static const uint32_t timeout_of_class[L4_FC_MAX] = {
      [L4_FC_SYN_SENT] = 1, [L4_FC_SYN_RECV] = 1, [L4_FC_ESTABLISHED] = 2, [L4_FC_FIN_WAIT] = 3, [L4_FC_CLOSE] = 4, [L4_FC_UDP] = 5};
  for (unsigned s = 0; s < 0x40; s++) {
    enum l4_flow_class c = l4_flow_class_of(6, (uint8_t)s);
    CHECK(c < L4_FC_MAX && timeout_of_class[c] == l4_flow_timeout(&to, 6, (uint8_t)s), "state %#x: class %d, timeout %u", s, c,
          l4_flow_timeout(&to, 6, (uint8_t)s));
  }
}

/* ---- filters, removal, per-slot counts ---- */

#define NOW 100000u

struct fx_flow {
  uint8_t family, proto;
  const char *client;
  uint16_t cport;
  uint32_t backend, svc;
  uint8_t state;
  uint32_t age; /* seconds since its last packet */
};

/* Index = fixture number: the bit (1 << index) names the entry in an expected set. */
static const struct fx_flow FLOWS[] = {
    {4, 6, C4, 1000, 0, 0, FL_SYN, 0},                    /* 0 SYN_SENT */
    {4, 6, C4, 1001, 1, 0, FL_SYN | FL_REPLY | FL_EST, 5}, /* 1 ESTABLISHED */
    {4, 6, C4B, 1002, 1, 0, FL_SYN | FL_REPLY, 1},         /* 2 SYN_RECV */
    {4, 6, C4B, 1003, 0, 0, FL_EST | FL_FIN_C, 2},         /* 3 FIN_WAIT */
    {4, 6, C4, 1004, 1, 0, FL_EST | FL_RST, 3},            /* 4 CLOSE */
    {4, 17, C4, 53, 2, 1, 0, 0},                           /* 5 UDP */
    {6, 6, C6, 2000, 3, 2, FL_EST, 7},                     /* 6 ESTABLISHED, IPv6 */
    {4, 17, C4, 54, 2, 1, 0, 301},                         /* 7 expired (UDP timeout 300): never listed or counted */
};
#define NFLOWS (sizeof(FLOWS) / sizeof(FLOWS[0]))
#define LIVE 0x7fu

static const struct l4_flow_timeouts TO = {{30, 900, 120, 10, 300}, NULL, 0};

static struct l4_flow_key fx_key(const struct fx_flow *f) {
  struct l4_flow_key k;
  memset(&k, 0, sizeof(k));
  uint8_t a[16];
  pb_addr(f->family, f->client, a);
  memcpy(k.client, a, f->family == 4 ? 4 : 16);
  pb_addr(f->family, f->family == 4 ? VIP4 : VIP6, a);
  memcpy(k.vip, a, f->family == 4 ? 4 : 16);
  pb_put_be16((uint8_t *)&k.cport, f->cport);
  pb_put_be16((uint8_t *)&k.vport, 80);
  k.proto = f->proto;
  k.family = f->family;
  return k;
}

static void fill(struct l4_flow_table *ft) {
  struct siphash_key sk;
  uint8_t kb[16] = {7};
  siphash_key_from_bytes(&sk, kb);
  CHECK(l4_flow_table_init(ft, 64) == 0, "flow table");
  for (size_t i = 0; i < NFLOWS; i++) {
    struct l4_flow_key k = fx_key(&FLOWS[i]);
    struct l4_flow_ref ref;
    enum l4_flow_insert_result r = l4_flow_insert(ft, &k, l4_flow_hash(&sk, &k), FLOWS[i].backend, FLOWS[i].svc, FLOWS[i].state,
                                                  &TO, NOW - FLOWS[i].age, false, &ref);
    CHECK(r == FLOW_INSERTED, "entry %zu inserted (%d)", i, r);
  }
}

/* The fixture an entry came from, by its client port. */
static int fx_index(const struct l4_flow_view *v) {
  for (size_t i = 0; i < NFLOWS; i++) {
    struct l4_flow_key k = fx_key(&FLOWS[i]);
    if (memcmp(&k, &v->key, sizeof(k)) == 0) return (int)i;
  }
  return -1;
}

struct taken {
  uint32_t set; /* bit per fixture taken */
  int order[NFLOWS * 2];
  int n, dup, unknown;
};

static void take(const struct l4_flow_view *v, void *arg) {
  struct taken *t = arg;
  int i = fx_index(v);
  if (i < 0) {
    t->unknown++;
    return;
  }
  if (t->set & (1u << i)) t->dup++;
  t->set |= 1u << i;
  if (t->n < (int)(NFLOWS * 2)) t->order[t->n++] = i;
  CHECK(v->backend == FLOWS[i].backend && v->svc == FLOWS[i].svc && v->state == FLOWS[i].state && v->idle == FLOWS[i].age,
        "entry %d read back as backend %u service %u state %#x idle %u", i, v->backend, v->svc, v->state, v->idle);
}

static struct l4_flow_query whole(struct l4_flow_filter f, struct l4_flow_table *ft) {
  return (struct l4_flow_query){f, 0, ft->capacity, 0};
}

#define CLASS(c) (1u << (c))

void test_flow_filter(void) {
  struct l4_flow_table ft = {0};
  fill(&ft);
  uint8_t c4b[16] = {0}, c6[16];
  pb_addr(4, C4B, c4b);
  pb_addr(6, C6, c6);
  const struct {
    const char *desc;
    struct l4_flow_filter f;
    uint32_t want;
  } cases[] = {
      {"every live entry", L4_FLOW_FILTER_ANY, LIVE},
      {"backend 1", {1, L4_NO_BACKEND, NULL, 0}, 0x16},
      {"backend 9 (none)", {9, L4_NO_BACKEND, NULL, 0}, 0},
      {"service 1 (the expired entry's too)", {L4_NO_BACKEND, 1, NULL, 0}, 0x20},
      {"client " C4B, {L4_NO_BACKEND, L4_NO_BACKEND, c4b, 0}, 0x0c},
      {"client " C6, {L4_NO_BACKEND, L4_NO_BACKEND, c6, 0}, 0x40},
      {"ESTABLISHED", {L4_NO_BACKEND, L4_NO_BACKEND, NULL, CLASS(L4_FC_ESTABLISHED)}, 0x42},
      {"SYN_SENT or SYN_RECV", {L4_NO_BACKEND, L4_NO_BACKEND, NULL, CLASS(L4_FC_SYN_SENT) | CLASS(L4_FC_SYN_RECV)}, 0x05},
      {"CLOSE", {L4_NO_BACKEND, L4_NO_BACKEND, NULL, CLASS(L4_FC_CLOSE)}, 0x10},
      {"UDP", {L4_NO_BACKEND, L4_NO_BACKEND, NULL, CLASS(L4_FC_UDP)}, 0x20},
      {"backend 1, ESTABLISHED or CLOSE", {1, L4_NO_BACKEND, NULL, CLASS(L4_FC_ESTABLISHED) | CLASS(L4_FC_CLOSE)}, 0x12},
      {"backend 0, service 0, client " C4B ", FIN_WAIT", {0, 0, c4b, CLASS(L4_FC_FIN_WAIT)}, 0x08},
      {"backend 0, client " C4B ", ESTABLISHED (none)", {0, L4_NO_BACKEND, c4b, CLASS(L4_FC_ESTABLISHED)}, 0},
  };
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    struct taken t = {0};
    struct l4_flow_query q = whole(cases[i].f, &ft);
    uint64_t next = l4_flow_select(&ft, &TO, NOW, &q, take, &t);
    CHECK(t.set == cases[i].want && !t.dup && !t.unknown && next == ft.capacity, "%s: took %#x, want %#x (next %llu)", cases[i].desc, t.set,
          cases[i].want, (unsigned long long)next);
  }

  /* limit: one entry per call, each call going on from the last one's cursor, gives the whole listing in order */
  struct taken all = {0};
  struct l4_flow_query q = whole(L4_FLOW_FILTER_ANY, &ft);
  l4_flow_select(&ft, &TO, NOW, &q, take, &all);
  struct taken one = {0};
  int calls = 0;
  for (q.limit = 1; q.start < ft.capacity && calls < 100; calls++) q.start = l4_flow_select(&ft, &TO, NOW, &q, take, &one);
  CHECK(one.n == all.n && memcmp(one.order, all.order, sizeof(int) * (size_t)all.n) == 0 && !one.dup, "limit 1: %d entries in %d calls", one.n, calls);
  CHECK(calls == all.n || calls == all.n + 1, "a call per entry (and one finding the rest empty): %d calls", calls);
  /* limit with a filter counts matches, not the entries looked at */
  struct taken est = {0};
  q = whole((struct l4_flow_filter){L4_NO_BACKEND, L4_NO_BACKEND, NULL, CLASS(L4_FC_ESTABLISHED)}, &ft);
  q.limit = 2;
  uint64_t next = l4_flow_select(&ft, &TO, NOW, &q, take, &est);
  CHECK(est.set == 0x42 && next <= ft.capacity, "limit 2 of ESTABLISHED: took %#x", est.set);
  /* max_scan: pages of 5 entries cover the table once */
  struct taken paged = {0};
  q = whole(L4_FLOW_FILTER_ANY, &ft);
  q.max_scan = 5;
  int pages = 0;
  for (q.start = 0; q.start < ft.capacity && pages < 100; pages++) q.start = l4_flow_select(&ft, &TO, NOW, &q, take, &paged);
  CHECK(paged.set == LIVE && !paged.dup && pages == (int)((ft.capacity + 4) / 5), "pages of 5: took %#x in %d pages", paged.set, pages);
  l4_flow_table_destroy(&ft);
}

void test_flow_remove_matching(void) {
  struct l4_flow_table ft = {0};
  fill(&ft);
  uint32_t removed = 99;
  struct l4_flow_query q = whole((struct l4_flow_filter){1, L4_NO_BACKEND, NULL, 0}, &ft);
  uint64_t next = l4_flow_remove_matching(&ft, &TO, NOW, &q, &removed);
  CHECK(removed == 3 && next == ft.capacity, "backend 1: %u removed", removed);
  struct taken left = {0};
  q = whole(L4_FLOW_FILTER_ANY, &ft);
  l4_flow_select(&ft, &TO, NOW, &q, take, &left);
  CHECK(left.set == (LIVE & ~0x16u), "left %#x", left.set);
  CHECK(l4_flow_count(&ft, &TO, NOW) == 4, "count after removal");
  /* limit: one removal per call */
  q = whole((struct l4_flow_filter){L4_NO_BACKEND, L4_NO_BACKEND, NULL, CLASS(L4_FC_ESTABLISHED) | CLASS(L4_FC_UDP)}, &ft);
  q.limit = 1;
  next = l4_flow_remove_matching(&ft, &TO, NOW, &q, &removed);
  CHECK(removed == 1 && next < ft.capacity, "limit 1: %u removed, cursor %llu", removed, (unsigned long long)next);
  q.start = next;
  q.limit = 0;
  l4_flow_remove_matching(&ft, &TO, NOW, &q, &removed);
  CHECK(removed == 1, "the rest: %u removed", removed);
  struct taken rest = {0};
  q = whole(L4_FLOW_FILTER_ANY, &ft);
  l4_flow_select(&ft, &TO, NOW, &q, take, &rest);
  CHECK(rest.set == 0x09, "SYN_SENT and FIN_WAIT stay (%#x)", rest.set);
  /* nothing matches: nothing removed */
  q = whole((struct l4_flow_filter){7, L4_NO_BACKEND, NULL, 0}, &ft);
  l4_flow_remove_matching(&ft, &TO, NOW, &q, &removed);
  CHECK(removed == 0 && l4_flow_count(&ft, &TO, NOW) == 2, "no match: %u removed", removed);
  l4_flow_table_destroy(&ft);
}

void test_flow_stats(void) {
  struct l4_flow_table ft = {0};
  fill(&ft);
  /* three backend slots: slot 3 (the IPv6 entry's) is counted in the totals only */
  uint32_t bk[3] = {0}, svc[4] = {0};
  struct l4_flow_stats st = {bk, 3, svc, 4, 0, 0};
  uint64_t next = l4_flow_stats_page(&ft, &TO, NOW, 0, ft.capacity, &st);
  CHECK(next == ft.capacity && st.total == 7 && st.closed == 1, "total %llu closed %llu", (unsigned long long)st.total, (unsigned long long)st.closed);
  CHECK(bk[0] == 2 && bk[1] == 2 && bk[2] == 1, "by backend %u %u %u (the closed entry of 1 not counted)", bk[0], bk[1], bk[2]);
  CHECK(svc[0] == 4 && svc[1] == 1 && svc[2] == 1 && svc[3] == 0, "by service %u %u %u %u", svc[0], svc[1], svc[2], svc[3]);
  /* pages of 3 entries added up on one accumulator: the same figures */
  uint32_t bk2[3] = {0}, svc2[4] = {0};
  struct l4_flow_stats paged = {bk2, 3, svc2, 4, 0, 0};
  int pages = 0;
  for (uint64_t c = 0; c < ft.capacity && pages < 100; pages++) c = l4_flow_stats_page(&ft, &TO, NOW, c, 3, &paged);
  CHECK(paged.total == st.total && paged.closed == st.closed && !memcmp(bk, bk2, sizeof(bk)) && !memcmp(svc, svc2, sizeof(svc)),
        "pages of 3 (%d pages): total %llu", pages, (unsigned long long)paged.total);
  CHECK(pages == (int)((ft.capacity + 2) / 3), "%d pages", pages);
  /* a page past the end counts nothing */
  uint32_t bk3[3] = {0}, svc3[4] = {0};
  struct l4_flow_stats none = {bk3, 3, svc3, 4, 0, 0};
  CHECK(l4_flow_stats_page(&ft, &TO, NOW, ft.capacity, 10, &none) == ft.capacity && none.total == 0, "past the end");
  l4_flow_table_destroy(&ft);
}
