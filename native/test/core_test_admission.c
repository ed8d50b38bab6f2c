/* Bounded load and per-backend limits (admission.h), the refusal answers (refuse.h) and the active-flow counts
 * they decide by (flow_table.h). Flows are C4:cport -> VIP4:80 (TCP) unless said otherwise; each fixture
 * service has backends A and B (fixture_tables.h). */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/explain.h"
#include "test_util.h"
#include "tests.h"

/* Fixture tables with admission on service `svc` (balance, factor %, when_full) and limits on its two backends
 * (0: none). */
static struct l4_tables *adm_tables(enum fx_ring ring, uint32_t svc, uint32_t balance, uint32_t pct, uint32_t when_full,
                                    uint32_t max_a, uint32_t max_b) {
  static struct fx_input fi;
  fx_input_init(&fi, ring, 0);
  fx_set_admission(&fi, svc, balance, pct, when_full);
  fx_set_max_flows(&fi, 2 * svc, max_a);
  fx_set_max_flows(&fi, 2 * svc + 1, max_b);
  return fx_build(&fi, "adm_tables");
}

static int64_t bk_active(struct env *e, uint32_t b) { return l4_flow_active_backend(&e->ft, b); }

/* The true count: live entries (at `to`'s timeouts) that are not closed, of backend b (or of every backend: -1). */
struct recount { int64_t b; int64_t n; };
static int recount_one(const struct l4_flow_view *v, void *arg) {
  struct recount *r = arg;
  if ((r->b < 0 || v->backend == (uint32_t)r->b) && l4_flow_counted(v->key.proto, v->state)) r->n++;
  return 0;
}
static int64_t recount(struct l4_flow_table *ft, const struct l4_flow_timeouts *to, uint32_t now, int64_t b) {
  struct recount r = {b, 0};
  l4_flow_walk(ft, to, now, 0, ft->capacity, recount_one, &r);
  return r.n;
}

static struct l4_flow_key key_of(uint8_t proto, uint16_t cport) { return flow_key4(C4, cport, proto); }

static int find_view(const struct l4_flow_view *v, void *arg) {
  *(struct l4_flow_view *)arg = *v;
  return 1;
}

void test_active_counts(void) {
  struct env e;
  env_init(&e, 8, FX_RING_A, 0); /* one bucket of 8 entries: the ninth insert evicts */
  struct l4_flow_table *ft = &e.ft;
  const struct l4_flow_timeouts *to = &e.t->timeouts;
  uint32_t now = e.ctx.now;
  struct l4_flow_ref ref;
  struct l4_flow_key k1 = key_of(6, 1001);
  uint64_t h1 = l4_flow_hash(&e.t->hash_key, &k1);
  l4_flow_insert(ft, &k1, h1, 0, 0, FL_SYN, to, now, false, &ref);
  CHECK(bk_active(&e, 0) == 1 && l4_flow_active_service(ft, 0) == 1, "insert: backend 0 and service 0 hold 1");
  l4_flow_touch(ft, &ref, FL_RST, 0, now);
  CHECK(bk_active(&e, 0) == 0 && l4_flow_active_service(ft, 0) == 0, "close (RST): 0, got %ld", (long)bk_active(&e, 0));
  l4_flow_touch(ft, &ref, FL_REPLY, FL_RST, now); /* a later packet clears the RST: the flow lives on */
  CHECK(bk_active(&e, 0) == 1, "reopen: 1, got %ld", (long)bk_active(&e, 0));
  l4_flow_touch(ft, &ref, FL_REPLY, FL_RST, now); /* nothing changes: nothing counted twice */
  CHECK(bk_active(&e, 0) == 1, "a touch that changes nothing: still 1");
  l4_flow_insert(ft, &k1, h1, 1, 0, FL_SYN, to, now, true, &ref); /* replace: re-pinned to backend 1 */
  CHECK(bk_active(&e, 0) == 0 && bk_active(&e, 1) == 1 && l4_flow_active_service(ft, 0) == 1, "replace moves the count");
  l4_flow_touch(ft, &ref, FL_FIN_C, 0, now);
  CHECK(bk_active(&e, 1) == 1, "one FIN: still open");
  l4_flow_touch(ft, &ref, FL_FIN_B, 0, now);
  CHECK(bk_active(&e, 1) == 0, "FIN both ways: closed, 0, got %ld", (long)bk_active(&e, 1));
  struct l4_flow_key k2 = key_of(17, 2002);
  l4_flow_insert(ft, &k2, l4_flow_hash(&e.t->hash_key, &k2), 2, 1, 0, to, now, false, &ref);
  CHECK(bk_active(&e, 2) == 1 && l4_flow_active_service(ft, 1) == 1, "a UDP entry counts while it exists");
  struct l4_flow_view v;
  l4_flow_walk(ft, to, now, (uint64_t)(ref.e - ft->entries), 1, find_view, &v);
  CHECK(l4_flow_remove(ft, &v, now) && bk_active(&e, 2) == 0 && l4_flow_active_service(ft, 1) == 0, "remove: 0");
  CHECK(recount(ft, to, now, -1) == 0, "recount 0");

  /* Fill the bucket (the closed k1 is still in it) and evict: the evicted entry leaves the count. */
  for (uint16_t p = 3000; p < 3009; p++) {
    struct l4_flow_key k = key_of(6, p);
    l4_flow_insert(ft, &k, l4_flow_hash(&e.t->hash_key, &k), 0, 0, FL_SYN, to, now, false, &ref);
    CHECK(bk_active(&e, 0) == recount(ft, to, now, 0), "after insert %u: count %ld = recount %ld", p, (long)bk_active(&e, 0),
          (long)recount(ft, to, now, 0));
  }
  CHECK(bk_active(&e, 0) == 8, "a full bucket of open entries: 8, got %ld", (long)bk_active(&e, 0));
  atomic_store(&ft->active_bk[0], 0); /* counts lost (a table adopted across a restart): rebuilt from the entries */
  atomic_store(&ft->active_svc[0], 0);
  l4_flow_counts_rebuild(ft);
  CHECK(bk_active(&e, 0) == 8 && l4_flow_active_service(ft, 0) == 8, "rebuilt: 8, got %ld", (long)bk_active(&e, 0));

  /* Silent expiry: the count stays until the sweep frees the entries, which it does only past its margin. */
  uint32_t later = now + FX_TO_SYN + 1;
  CHECK(recount(ft, to, later, 0) == 0 && bk_active(&e, 0) == 8, "expired, not swept: still counted (never below)");
  uint64_t freed = 0;
  CHECK(l4_flow_sweep(ft, to, later + L4_SWEEP_MARGIN - 1, 0, ft->capacity, &freed) == ft->capacity && freed == 0,
        "within the margin the sweep frees nothing, freed %lu", (unsigned long)freed);
  l4_flow_sweep(ft, to, later + L4_SWEEP_MARGIN, 0, 3, &freed); /* a page of a whole bucket: 3 rounds up to 8 */
  CHECK(freed == 8 && bk_active(&e, 0) == 0 && l4_flow_active_service(ft, 0) == 0, "past the margin: freed %lu, count %ld",
        (unsigned long)freed, (long)bk_active(&e, 0));

  /* An expired entry overwritten by an insert (no sweep in between) leaves the count too. */
  struct l4_flow_key k3 = key_of(17, 4004);
  uint64_t h3 = l4_flow_hash(&e.t->hash_key, &k3);
  l4_flow_insert(ft, &k3, h3, 3, 1, 0, to, now, false, &ref);
  l4_flow_insert(ft, &k3, h3, 3, 1, 0, to, now + FX_TO_UDP + 1, false, &ref);
  CHECK(bk_active(&e, 3) == 1, "an expired entry replaced by its own new flow: 1, got %ld", (long)bk_active(&e, 3));
  env_free(&e);
}

void test_bound_next_candidate(void) {
  /* maglev: three SYNs the ring sends to A all go to A. bounded 1.25: the third finds A at its bound, ceil(3 ×
   * 1.25 × 1/2) = 2 flows, and goes to B. */
  for (int bounded = 0; bounded <= 1; bounded++) {
    struct env e;
    env_init_tables(&e, 1024, adm_tables(FX_RING_ALT, FX_SVC_V4_TCP, (uint32_t)bounded, bounded ? 125 : 0, 0, 0, 0));
    uint16_t p1 = port_to(&e, C4, 1000, FX_BK_V4T_A), p2 = port_to(&e, C4, p1 + 1, FX_BK_V4T_A),
             p3 = port_to(&e, C4, p2 + 1, FX_BK_V4T_A);
    CHECK(c2s_fam(&e, 4, p1, PB_TCP_SYN) == FX_BK_V4T_A && c2s_fam(&e, 4, p2, PB_TCP_SYN) == FX_BK_V4T_A, "under the bound: A");
    /* explain tells what the SYN will do */
    struct l4_explain_query q = {.family = 4, .proto = 6, .cport = p3, .vport = 80};
    pb_addr(4, C4, q.client);
    pb_addr(4, VIP4, q.vip);
    struct l4_explain x;
    l4_explain(e.t, &e.ft, NULL, e.ctx.now, 0, &q, &x);
    int want = bounded ? FX_BK_V4T_B : FX_BK_V4T_A;
    CHECK(x.verdict == L4_EXPLAIN_RING && x.ring_backend == FX_BK_V4T_A && x.backend == (uint32_t)want,
          "explain (%s): ring A, backend %d, got %u", bounded ? "bounded" : "maglev", want, x.backend);
    struct pb_ip ip;
    struct pb_l4 l4;
    spec_tcp(&ip, &l4, 4, C4, p3, VIP4, 80, PB_TCP_SYN, 0);
    fx_fwd(&e, bounded ? "bounded: A at its bound, the SYN goes to B" : "maglev: the SYN goes to A", NULL, &ip, &l4,
           bounded ? B4B : B4A, 8080);
    CHECK(env_q(&e, L4_Q_FLOW_ADMIT_MOVED) == (uint64_t)bounded, "admit_moved %lu", (unsigned long)env_q(&e, L4_Q_FLOW_ADMIT_MOVED));
    CHECK(bk_active(&e, FX_BK_V4T_A) == (bounded ? 2 : 3), "A holds %ld", (long)bk_active(&e, FX_BK_V4T_A));
    /* The flow stays on B: its next packets follow the entry, whatever the bound says now. */
    if (bounded) CHECK(c2s_fam(&e, 4, p3, PB_TCP_ACK) == FX_BK_V4T_B, "the moved flow's next packet follows its entry");
    env_free(&e);
  }
}

void test_admission_weights(void) {
  /* Weights as a slow start publishes them (65535 × 4) build, and share the bound as 1 and 1 do; a weight past
   * L4_MAX_WEIGHT is refused by name. */
  static struct fx_input fi;
  fx_input_init(&fi, FX_RING_ALT, 0);
  fx_set_admission(&fi, FX_SVC_V4_TCP, L4_BALANCE_BOUNDED, 125, L4_FULL_DROP);
  fi.bk_words[FX_BK_V4T_A * L4_BK_WORDS + 6] = fi.bk_words[FX_BK_V4T_B * L4_BK_WORDS + 6] = 4 * 65535;
  struct env e;
  env_init_tables(&e, 1024, fx_build(&fi, "admission_weights"));
  uint16_t p1 = port_to(&e, C4, 1000, FX_BK_V4T_A), p2 = port_to(&e, C4, p1 + 1, FX_BK_V4T_A),
           p3 = port_to(&e, C4, p2 + 1, FX_BK_V4T_A);
  CHECK(c2s_fam(&e, 4, p1, PB_TCP_SYN) == FX_BK_V4T_A && c2s_fam(&e, 4, p2, PB_TCP_SYN) == FX_BK_V4T_A &&
        c2s_fam(&e, 4, p3, PB_TCP_SYN) == FX_BK_V4T_B, "large equal weights: the bound of weights 1 and 1");
  env_free(&e);
  fi.bk_words[FX_BK_V4T_A * L4_BK_WORDS + 6] = L4_MAX_WEIGHT + 1;
  char err[256];
  struct l4_tables *t = l4_tables_build(&fi.in, err, sizeof(err));
  CHECK(!t && strstr(err, "weight must be 0-1048576"), "refused: %s", t ? "(built)" : err);
  l4_tables_free(t);
}

void test_limit_next_candidate(void) {
  /* Every ring slot but one is A's (FX_RING_A_B1); A takes 2 flows at most. */
  struct env e;
  env_init_tables(&e, 1024, adm_tables(FX_RING_A_B1, FX_SVC_V4_TCP, L4_BALANCE_MAGLEV, 0, L4_FULL_DROP, 2, 0));
  uint16_t p1 = port_to(&e, C4, 1000, FX_BK_V4T_A), p2 = port_to(&e, C4, p1 + 1, FX_BK_V4T_A),
           p3 = port_to(&e, C4, p2 + 1, FX_BK_V4T_A), p4 = port_to(&e, C4, p3 + 1, FX_BK_V4T_A);
  CHECK(c2s_fam(&e, 4, p1, PB_TCP_SYN) == FX_BK_V4T_A && c2s_fam(&e, 4, p2, PB_TCP_SYN) == FX_BK_V4T_A, "A's 2 flows");
  struct pb_ip ip;
  struct pb_l4 l4;
  spec_tcp(&ip, &l4, 4, C4, p3, VIP4, 80, PB_TCP_SYN, 0);
  fx_fwd(&e, "A at max_flows: the SYN goes to B", NULL, &ip, &l4, B4B, 8080);
  CHECK(bk_active(&e, FX_BK_V4T_A) == 2 && bk_active(&e, FX_BK_V4T_B) == 1, "A 2, B 1: got %ld, %ld",
        (long)bk_active(&e, FX_BK_V4T_A), (long)bk_active(&e, FX_BK_V4T_B));
  /* Established flows on a full backend keep flowing; a mid-flow packet without an entry is not admitted but
   * forwarded by the ring (to A), and creates nothing. */
  spec_tcp(&ip, &l4, 4, C4, p1, VIP4, 80, PB_TCP_ACK, 100);
  fx_fwd(&e, "A's established flow keeps flowing at the limit", NULL, &ip, &l4, B4A, 8080);
  spec_tcp(&ip, &l4, 4, C4, p4, VIP4, 80, PB_TCP_ACK, 100);
  fx_fwd(&e, "a mid-flow packet without an entry goes by the ring, limit or not", NULL, &ip, &l4, B4A, 8080);
  CHECK(bk_active(&e, FX_BK_V4T_A) == 2, "A still 2");
  /* A closes one: its place is free again at once. */
  CHECK(c2s_fam(&e, 4, p1, PB_TCP_RST | PB_TCP_ACK) == FX_BK_V4T_A && bk_active(&e, FX_BK_V4T_A) == 1, "RST frees a place");
  CHECK(c2s_fam(&e, 4, p4, PB_TCP_SYN) == FX_BK_V4T_A, "a new SYN takes A's free place");
  env_free(&e);
}

void test_admission_retransmit(void) {
  /* A and B take 1 flow each. A SYN the ring sends to A, full, goes to B; B is then full too. Its retransmission
   * two seconds later (B never answered) stays on B: it is not chosen again into a refusal by its own place. */
  struct env e;
  env_init_tables(&e, 1024, adm_tables(FX_RING_ALT, FX_SVC_V4_TCP, L4_BALANCE_MAGLEV, 0, L4_FULL_DROP, 1, 1));
  uint16_t p1 = port_to(&e, C4, 1000, FX_BK_V4T_A), p2 = port_to(&e, C4, p1 + 1, FX_BK_V4T_A);
  CHECK(c2s_fam(&e, 4, p1, PB_TCP_SYN) == FX_BK_V4T_A, "A takes the first");
  CHECK(c2s_fam(&e, 4, p2, PB_TCP_SYN) == FX_BK_V4T_B, "A full: B");
  e.ctx.now += 2;
  CHECK(c2s_fam(&e, 4, p2, PB_TCP_SYN) == FX_BK_V4T_B, "the retransmission stays on B, not refused");
  CHECK(bk_active(&e, FX_BK_V4T_A) == 1 && bk_active(&e, FX_BK_V4T_B) == 1 && env_drops(&e, L4_DROP_BACKENDS_FULL) == 0, "nothing moved or refused");
  env_free(&e);
}

/* Fills both backends of a service (max_flows 1 each) with two new flows from `fam` clients. */
static void fill_two(struct env *e, uint8_t fam, uint8_t proto) {
  for (uint16_t p = 7000; p < 7002; p++) {
    struct pb_ip ip;
    struct pb_l4 l4;
    if (proto == 6) spec_tcp(&ip, &l4, fam, fam == 4 ? C4 : C6, p, fam == 4 ? VIP4 : VIP6, 80, PB_TCP_SYN, 0);
    else spec_udp(&ip, &l4, fam, fam == 4 ? C4 : C6, p, fam == 4 ? VIP4 : VIP6, 53, 20);
    uint32_t n = bld(g_in, NULL, &ip, &l4);
    CHECK(run_raw(e, g_in, n, g_out, &g_out_len) == L4_VERDICT_TX, "flow %u admitted", p);
  }
}

void test_full_drop(void) {
  struct env e;
  env_init_tables(&e, 1024, adm_tables(FX_RING_ALT, FX_SVC_V4_TCP, L4_BALANCE_MAGLEV, 0, L4_FULL_DROP, 1, 1));
  fill_two(&e, 4, 6);
  struct pb_ip ip;
  struct pb_l4 l4;
  spec_tcp(&ip, &l4, 4, C4, 7100, VIP4, 80, PB_TCP_SYN, 0);
  uint32_t n = bld(g_in, NULL, &ip, &l4);
  expect_drop(&e, "every backend at max_flows, when_full drop: dropped", g_in, n, L4_DROP_BACKENDS_FULL);
  CHECK(l4_ctr_service(&e.ctx, FX_SVC_V4_TCP)[L4_O_FULL_REFUSED] == 1, "refusal counted for the service");
  CHECK(bk_active(&e, FX_BK_V4T_A) == 1 && bk_active(&e, FX_BK_V4T_B) == 1, "nothing taken by the refused flow");
  spec_tcp(&ip, &l4, 4, C4, 7000, VIP4, 80, PB_TCP_ACK, 50);
  n = bld(g_in, NULL, &ip, &l4);
  CHECK(run_raw(&e, g_in, n, g_out, &g_out_len) == L4_VERDICT_TX, "an established flow on a full service keeps flowing");
  env_free(&e);
}

void test_full_reject_tcp(void) {
  for (uint8_t fam = 4; fam <= 6; fam += 2) {
    uint32_t svc = fam == 4 ? FX_SVC_V4_TCP : FX_SVC_V6_TCP;
    struct env e;
    env_init_tables(&e, 1024, adm_tables(FX_RING_ALT, svc, L4_BALANCE_MAGLEV, 0, L4_FULL_REJECT, 1, 1));
    fill_two(&e, fam, 6);
    const char *client = fam == 4 ? C4 : C6, *vip = fam == 4 ? VIP4 : VIP6;
    struct pb_ip ip, ip2;
    struct pb_l4 l4, l42;
    spec_tcp(&ip, &l4, fam, client, 7100, vip, 80, PB_TCP_SYN, 10); /* a SYN with data: the ack covers it */
    uint32_t n = bld(g_in, NULL, &ip, &l4);
    /* RFC 9293 3.10.7.1: <SEQ=0><ACK=SEG.SEQ+SEG.LEN><CTL=RST,ACK>, from the VIP back to the client */
    if (fam == 4) {
      pb_ip4(&ip2, vip, client);
      ip2.id = 0;
    } else {
      pb_ip6(&ip2, vip, client);
      ip2.flow = 0;
    }
    ip2.ttl = 64;
    pb_tcp(&l42, 80, 7100, PB_TCP_RST | PB_TCP_ACK);
    l42.seq = 0;
    l42.ack = 0x11223344u + 10 + 1;
    l42.win = 0;
    uint32_t m = bld(g_want, NULL, &ip2, &l42);
    expect_tx_strict(&e, fam == 4 ? "every backend full, reject: RST to the SYN (v4)" : "every backend full, reject: RST to the SYN (v6)",
                     g_in, n, g_want, m);
    CHECK(env_q(&e, L4_Q_FULL_REJECTED) == 1 && l4_ctr_service(&e.ctx, svc)[L4_O_FULL_REFUSED] == 1, "counted");
    env_free(&e);
  }
}

/* The ICMP port unreachable expected for the datagram in g_in[0..n), quoting `quote` bytes of its IP packet. */
static uint32_t icmp_unreach(uint8_t fam, uint32_t n, uint32_t quote) {
  const char *client = fam == 4 ? C4 : C6, *vip = fam == 4 ? VIP4 : VIP6;
  struct pb_ip ip;
  struct pb_l4 l4;
  if (fam == 4) {
    pb_ip4(&ip, vip, client);
    ip.id = 0;
    ip.frag = 0;
  } else {
    pb_ip6(&ip, vip, client);
    ip.flow = 0;
  }
  ip.ttl = 64;
  pb_icmp(&l4, fam, fam == 4 ? 3 : 1, fam == 4 ? 3 : 4, 0);
  static uint8_t quoted[PB_MAX];
  memcpy(quoted, g_in + PB_VNET_LEN, n - PB_VNET_LEN);
  l4.payload = quoted;
  l4.payload_len = quote;
  return bld(g_want, NULL, &ip, &l4);
}

void test_full_reject_udp(void) {
  for (uint8_t fam = 4; fam <= 6; fam += 2) {
    uint32_t svc = fam == 4 ? FX_SVC_V4_UDP : FX_SVC_V6_UDP;
    const char *client = fam == 4 ? C4 : C6, *vip = fam == 4 ? VIP4 : VIP6;
    struct env e;
    env_init_tables(&e, 1024, adm_tables(FX_RING_ALT, svc, L4_BALANCE_MAGLEV, 0, L4_FULL_REJECT, 1, 1));
    e.buf_extra = 2048; /* the worker's buffer holds 64 KiB more than any answer */
    fill_two(&e, fam, 17);
    struct pb_ip ip;
    struct pb_l4 l4;
    spec_udp(&ip, &l4, fam, client, 7100, vip, 53, 30);
    uint32_t n = bld(g_in, NULL, &ip, &l4);
    uint32_t m = icmp_unreach(fam, n, n - PB_VNET_LEN);
    expect_tx_strict(&e, fam == 4 ? "full, reject: ICMP port unreachable quoting the datagram (v4)"
                                   : "full, reject: ICMPv6 port unreachable quoting the datagram (v6)", g_in, n, g_want, m);
    /* A large datagram: the quote stops where the answer reaches 576 (v4) / 1280 (v6) bytes. */
    spec_udp(&ip, &l4, fam, client, 7101, vip, 53, 1400);
    n = bld(g_in, NULL, &ip, &l4);
    m = icmp_unreach(fam, n, fam == 4 ? 576 - 28 : 1280 - 48);
    expect_tx_strict(&e, "full, reject: a large datagram's quote truncated to the minimum MTU", g_in, n, g_want, m);
    /* A buffer with no room beyond a small datagram: the answer cannot hold its header and 8 bytes: dropped. */
    e.buf_extra = 0;
    spec_udp(&ip, &l4, fam, client, 7102, vip, 53, 4);
    n = bld(g_in, NULL, &ip, &l4);
    expect_drop(&e, "full, reject, no room for the ICMP answer: dropped", g_in, n, L4_DROP_BACKENDS_FULL);
    CHECK(env_q(&e, L4_Q_FULL_REJECTED) == 2 && l4_ctr_service(&e.ctx, svc)[L4_O_FULL_REFUSED] == 3, "counted: %lu rejected",
          (unsigned long)env_q(&e, L4_Q_FULL_REJECTED));
    env_free(&e);
  }
}

/* ---- ThreadSanitizer: several threads create, close, reopen and sweep; the counts equal a full recount. ---- */
#define AC_THREADS 4
#define AC_KEYS 512
struct ac_shared {
  struct l4_flow_table ft;
  struct l4_flow_timeouts to;
  struct siphash_key hk;
  struct l4_flow_key keys[AC_KEYS];
  uint64_t hashes[AC_KEYS];
  pthread_barrier_t start;
};
struct ac_arg {
  struct ac_shared *s;
  int tid;
};

static void *ac_thread(void *p) {
  struct ac_arg *a = p;
  struct ac_shared *s = a->s;
  uint64_t x = 0x9e3779b97f4a7c15ULL * (uint64_t)(a->tid + 7);
  pthread_barrier_wait(&s->start);
  for (int i = 0; i < 20000; i++) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    int k = (int)(x % AC_KEYS);
    uint32_t now = 1000 + (uint32_t)((x >> 20) % 8); /* clocks a few seconds apart: entries expire and get swept */
    struct l4_flow_ref ref;
    switch ((x >> 32) % 4) {
      case 0:
        l4_flow_insert(&s->ft, &s->keys[k], s->hashes[k], (uint32_t)a->tid, (uint32_t)(k & 1), FL_SYN, &s->to, now,
                       (x >> 40) & 1, &ref);
        break;
      case 1:
        if (l4_flow_lookup(&s->ft, &s->keys[k], s->hashes[k], &s->to, now, &ref)) l4_flow_touch(&s->ft, &ref, FL_RST, 0, now);
        break;
      case 2:
        if (l4_flow_lookup(&s->ft, &s->keys[k], s->hashes[k], &s->to, now, &ref))
          l4_flow_touch(&s->ft, &ref, FL_REPLY | FL_EST, FL_RST, now);
        break;
      default:
        l4_flow_sweep(&s->ft, &s->to, now, (x >> 8) % s->ft.capacity, 16, NULL);
    }
  }
  return NULL;
}

void test_mt_active_counts(void) {
  static struct ac_shared s;
  memset(&s, 0, sizeof(s));
  if (l4_flow_table_init(&s.ft, 256) != 0 || l4_flow_counts_init(&s.ft, 2, AC_THREADS) != 0) abort();
  s.to.def = (struct l4_timeouts){2, 4, 3, 1, 2};
  uint8_t kb[16];
  for (int i = 0; i < 16; i++) kb[i] = (uint8_t)(i * 11 + 1);
  siphash_key_from_bytes(&s.hk, kb);
  for (int k = 0; k < AC_KEYS; k++) {
    s.keys[k] = key_of(6, (uint16_t)(20000 + k));
    s.hashes[k] = l4_flow_hash(&s.hk, &s.keys[k]);
  }
  pthread_barrier_init(&s.start, NULL, AC_THREADS);
  pthread_t th[AC_THREADS];
  struct ac_arg args[AC_THREADS];
  for (int t = 0; t < AC_THREADS; t++) {
    args[t] = (struct ac_arg){&s, t};
    pthread_create(&th[t], NULL, ac_thread, &args[t]);
  }
  for (int t = 0; t < AC_THREADS; t++) pthread_join(th[t], NULL);
  pthread_barrier_destroy(&s.start);
  /* Recount every entry that holds an open flow, expired or not (timeouts nothing reaches). */
  struct l4_flow_timeouts never = {{1u << 30, 1u << 30, 1u << 30, 1u << 30, 1u << 30}, NULL, 0};
  int64_t total = 0;
  for (uint32_t b = 0; b < AC_THREADS; b++) {
    int64_t want = recount(&s.ft, &never, 1000, b);
    CHECK(l4_flow_active_backend(&s.ft, b) == want && atomic_load(&s.ft.active_bk[b]) == want,
          "backend %u: count %ld, recount %ld", b, (long)atomic_load(&s.ft.active_bk[b]), (long)want);
    total += want;
  }
  CHECK(atomic_load(&s.ft.active_svc[0]) + atomic_load(&s.ft.active_svc[1]) == total, "services add up to %ld", (long)total);
  /* A sweep far later frees every entry: every count back to 0, none below. */
  l4_flow_sweep(&s.ft, &s.to, 100000, 0, s.ft.capacity, NULL);
  for (uint32_t b = 0; b < AC_THREADS; b++) CHECK(atomic_load(&s.ft.active_bk[b]) == 0, "backend %u back to 0", b);
  CHECK(atomic_load(&s.ft.active_svc[0]) == 0 && atomic_load(&s.ft.active_svc[1]) == 0, "services back to 0");
  l4_flow_counts_destroy(&s.ft);
  l4_flow_table_destroy(&s.ft);
}
