/* l4_explain (what the data plane would do with one tuple, read-only) against what l4_process then does with
 * the same packet, and l4_flow_moves_page (which live entries a planned ring would send elsewhere) against where
 * l4_process sends those flows once that ring is published and their entries are gone. */
#include <string.h>

#include "../core/admission.h"
#include "../core/explain.h"
#include "../core/flow_query.h"
#include "test_util.h"
#include "tests.h"

static void query(struct l4_explain_query *q, uint8_t family, uint8_t proto, const char *client, uint16_t cport,
                  const char *vip, uint16_t vport) {
  memset(q, 0, sizeof(*q));
  q->family = family;
  q->proto = proto;
  pb_addr(family, client, q->client);
  pb_addr(family, vip, q->vip);
  q->cport = cport;
  q->vport = vport;
}

static void explain(struct env *e, const struct l4_explain_query *q, struct l4_explain *x) {
  l4_explain(e->t, &e->ft, e->ctx.ratelimit, e->ctx.now, e->ctx.now_ms, q, x);
}

/* A TCP packet client:cport -> vip:vport with `flags` through l4_process; returns the verdict. */
static enum l4_verdict tcp_from(struct env *e, uint8_t family, const char *client, uint16_t cport, const char *vip,
                                uint16_t vport, uint8_t flags) {
  struct pb_ip ip;
  struct pb_l4 l4;
  spec_tcp(&ip, &l4, family, client, cport, vip, vport, flags, 0);
  uint32_t n = bld(g_in, NULL, &ip, &l4);
  return run_raw(e, g_in, n, g_out, &g_out_len);
}

/* The backend's SYN-ACK and the client's ACK: the entry of a connection opened with a SYN becomes established. */
static void establish(struct env *e, uint32_t bk, uint16_t cport) {
  const struct fx_backend_def *d = &FX_BACKENDS[bk];
  tcp_from(e, 4, d->addr, d->port, C4, cport, PB_TCP_SYN | PB_TCP_ACK); /* backend -> client (spec's names) */
  tcp_from(e, 4, C4, cport, VIP4, 80, PB_TCP_ACK);
}

void test_explain_new_tuple(void) {
  struct env e;
  env_init(&e, 4096, FX_RING_ALT, 0);
  int seen[FX_NBK] = {0};
  /* 5-tuple v4 and v6, source hash: explain first, then the SYN; explain read only (no entry, no counter) */
  struct { uint8_t family; const char *client, *vip; uint16_t vport; } cases[] = {
      {4, C4, VIP4, 80}, {6, C6, VIP6, 80}, {4, C4, VIP4_SRC, 443}};
  for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
    for (uint16_t port = 1000; port < 1016; port++) {
      struct l4_explain_query q;
      struct l4_explain x;
      query(&q, cases[c].family, 6, cases[c].client, port, cases[c].vip, cases[c].vport);
      uint64_t rx = env_q(&e, L4_Q_RX_PACKETS);
      explain(&e, &q, &x);
      struct l4_flow_ref ref;
      CHECK(!flow_get(&e, q.family, 6, cases[c].client, port, cases[c].vip, cases[c].vport, &ref) && env_q(&e, L4_Q_RX_PACKETS) == rx,
            "explain creates no entry and counts nothing");
      CHECK(x.verdict == L4_EXPLAIN_RING && !x.flow_found && x.ring_size == FX_RING_SIZE && x.ring_slot < FX_RING_SIZE,
            "case %zu port %u: by the ring (verdict %u, slot %u)", c, port, x.verdict, x.ring_slot);
      CHECK(x.backend == x.ring_backend && x.backend == e.t->services[x.service].ring[x.ring_slot], "the backend is the ring's at that slot");
      CHECK(tcp_from(&e, q.family, cases[c].client, port, cases[c].vip, cases[c].vport, PB_TCP_SYN) == L4_VERDICT_TX, "the SYN goes");
      CHECK(out_backend() == (int)x.backend, "case %zu port %u: explain said backend %u, l4_process chose %d", c, port, x.backend, out_backend());
      CHECK(x.backend_port == FX_BACKENDS[x.backend].port && x.vip_port == cases[c].vport, "rewrites: to the backend's port, replies from the VIP's");
      uint8_t a[16] = {0};
      pb_addr(q.family, FX_BACKENDS[x.backend].addr, a);
      CHECK(memcmp(x.backend_addr, a, 16) == 0 && memcmp(x.vip_addr, q.vip, 16) == 0, "rewrites: the backend's address, the VIP");
      if (x.backend < FX_NBK) seen[x.backend]++;
      /* now the entry is there: explain follows it */
      explain(&e, &q, &x);
      CHECK(x.verdict == L4_EXPLAIN_ENTRY && x.flow_found && x.flow_valid && x.flow_backend == (uint32_t)out_backend() &&
                x.flow_state == FL_SYN && x.flow_class == L4_FC_SYN_SENT && !x.flow_off_ring,
            "case %zu port %u: the SYN's entry (verdict %u state %u)", c, port, x.verdict, x.flow_state);
    }
  }
  CHECK(seen[FX_BK_V4T_A] && seen[FX_BK_V4T_B] && seen[FX_BK_V6T_A] && seen[FX_BK_V6T_B], "both backends chosen by the alternating ring");
  env_free(&e);
}

void test_explain_established_entry(void) {
  struct env e;
  /* the ring alternates; the previous ring (before the last change) had every slot on B */
  env_init_tables(&e, 4096, tables_with_previous(1, FX_BK_V4T_B, 0, true, 0));
  uint16_t port = port_to(&e, C4, 2000, FX_BK_V4T_A);
  CHECK(tcp_from(&e, 4, C4, port, VIP4, 80, PB_TCP_SYN) == L4_VERDICT_TX && out_backend() == FX_BK_V4T_A, "pinned to A");
  establish(&e, FX_BK_V4T_A, port);
  e.ctx.now += 7;
  struct l4_explain_query q;
  struct l4_explain x;
  query(&q, 4, 6, C4, port, VIP4, 80);
  explain(&e, &q, &x);
  CHECK(x.verdict == L4_EXPLAIN_ENTRY && x.backend == FX_BK_V4T_A && x.flow_class == L4_FC_ESTABLISHED &&
            (x.flow_state & (FL_REPLY | FL_EST)) == (FL_REPLY | FL_EST) && x.flow_idle == 7 && x.flow_service == FX_SVC_V4_TCP,
        "established on A, idle 7 s (verdict %u class %u idle %u)", x.verdict, x.flow_class, x.flow_idle);
  CHECK(x.prev_ring_size == FX_RING_SIZE && x.prev_backend == FX_BK_V4T_B && x.prev_second_chance,
        "the previous ring chose B, a second-chance target (in the ring, up)");
  CHECK(x.backend_flags & L4_BK_IN_RING, "A holds ring slots");
  /* the same tuple after the ring moved everything to B: the entry pins it to A against the ring */
  env_publish(&e, fx_tables(FX_RING_B, 0));
  explain(&e, &q, &x);
  CHECK(x.verdict == L4_EXPLAIN_ENTRY && x.backend == FX_BK_V4T_A && x.ring_backend == FX_BK_V4T_B && x.flow_off_ring,
        "entry on A against a ring that picks B");
  CHECK(!(x.backend_flags & L4_BK_IN_RING), "A is out of the ring: draining (weight 0)");
  CHECK(tcp_from(&e, 4, C4, port, VIP4, 80, PB_TCP_ACK) == L4_VERDICT_TX && out_backend() == FX_BK_V4T_A, "and l4_process keeps it on A");
  /* a closed entry: a new connection's SYN chooses again, explain says the ring */
  tcp_from(&e, 4, C4, port, VIP4, 80, PB_TCP_RST | PB_TCP_ACK);
  explain(&e, &q, &x);
  CHECK(x.verdict == L4_EXPLAIN_RING && x.flow_found && x.flow_class == L4_FC_CLOSE && x.backend == FX_BK_V4T_B, "closed: by the ring");
  CHECK(tcp_from(&e, 4, C4, port, VIP4, 80, PB_TCP_SYN) == L4_VERDICT_TX && out_backend() == FX_BK_V4T_B, "the SYN re-picks B");
  env_free(&e);
}

/* explain with syn set: a client's SYN on a live entry takes forward()'s choice (admission.h l4_syn_choice), and
 * l4_process then sends that SYN where explain said; the tuple's next packet (syn unset) still follows the entry. */
void test_explain_syn(void) {
  struct env e;
  struct l4_explain_query q;
  struct l4_explain x;
  /* backend leaving: an established entry on A, then a ring with every slot on B (A drained) */
  env_init(&e, 4096, FX_RING_ALT, 0);
  uint16_t pa = port_to(&e, C4, 2000, FX_BK_V4T_A);
  tcp_from(&e, 4, C4, pa, VIP4, 80, PB_TCP_SYN);
  establish(&e, FX_BK_V4T_A, pa);
  env_publish(&e, fx_tables(FX_RING_B, 0));
  query(&q, 4, 6, C4, pa, VIP4, 80);
  explain(&e, &q, &x);
  CHECK(x.verdict == L4_EXPLAIN_ENTRY && x.backend == FX_BK_V4T_A && x.syn_choice == L4_SYN_FOLLOWS, "the next packet follows the entry on A");
  q.syn = 1;
  explain(&e, &q, &x);
  CHECK(x.verdict == L4_EXPLAIN_RING && x.flow_found && x.flow_backend == FX_BK_V4T_A && x.syn_choice == L4_SYN_BACKEND_LEAVING &&
            x.backend == FX_BK_V4T_B,
        "a SYN leaves A, which takes no new flows, for B (verdict %u choice %u backend %u)", x.verdict, x.syn_choice, x.backend);
  CHECK(tcp_from(&e, 4, C4, pa, VIP4, 80, PB_TCP_SYN) == L4_VERDICT_TX && out_backend() == FX_BK_V4T_B &&
            env_q(&e, L4_Q_FLOW_REUSE_MOVED) == 1,
        "l4_process sends it to B (flow_reuse_moved)");
  env_free(&e);

  /* a FIN seen: the next packet follows the half-closed entry, a SYN chooses again */
  env_init(&e, 4096, FX_RING_ALT, 0);
  uint16_t pf = port_to(&e, C4, 2100, FX_BK_V4T_A);
  tcp_from(&e, 4, C4, pf, VIP4, 80, PB_TCP_SYN);
  establish(&e, FX_BK_V4T_A, pf);
  tcp_from(&e, 4, C4, pf, VIP4, 80, PB_TCP_FIN | PB_TCP_ACK);
  env_publish(&e, tables_with_previous(0, 0, 0, true, 0)); /* A in the ring, B on the last slot only */
  query(&q, 4, 6, C4, pf, VIP4, 80);
  explain(&e, &q, &x);
  CHECK(x.verdict == L4_EXPLAIN_ENTRY && x.syn_choice == L4_SYN_FOLLOWS, "one FIN: the next packet follows the entry");
  q.syn = 1;
  explain(&e, &q, &x);
  CHECK(x.verdict == L4_EXPLAIN_RING && x.syn_choice == L4_SYN_ON_CLOSED && x.backend == x.ring_backend, "a SYN after a FIN: by the ring (choice %u)",
        x.syn_choice);
  CHECK(tcp_from(&e, 4, C4, pf, VIP4, 80, PB_TCP_SYN) == L4_VERDICT_TX && out_backend() == (int)x.backend, "l4_process agrees");
  env_free(&e);

  /* a retransmitted SYN nobody answered, on B, which the ring now leaves for A while B keeps a slot */
  env_init(&e, 4096, FX_RING_ALT, 0);
  uint16_t pb = 2200;
  struct l4_tables *next = tables_with_previous(0, 0, 0, true, 0);
  for (;; pb++) { /* on B now, on A in the next ring */
    pb = port_to(&e, C4, pb, FX_BK_V4T_B);
    struct l4_flow_key k = flow_key4(C4, pb, 6);
    if (l4_pick_backend(next, &next->services[FX_SVC_V4_TCP], &k, l4_flow_hash(&next->hash_key, &k)) == FX_BK_V4T_A) break;
  }
  query(&q, 4, 6, C4, pb, VIP4, 80);
  tcp_from(&e, 4, C4, pb, VIP4, 80, PB_TCP_SYN);
  env_publish(&e, next);
  q.syn = 1;
  explain(&e, &q, &x);
  CHECK(x.verdict == L4_EXPLAIN_ENTRY && x.backend == FX_BK_V4T_B && x.syn_choice == L4_SYN_FOLLOWS,
        "a second copy within the same second stays on B (choice %u)", x.syn_choice);
  e.ctx.now += 1;
  explain(&e, &q, &x);
  CHECK(x.verdict == L4_EXPLAIN_RING && x.syn_choice == L4_SYN_RETRANSMITTED && x.backend == FX_BK_V4T_A,
        "the retransmission a second later: to A (verdict %u choice %u)", x.verdict, x.syn_choice);
  CHECK(tcp_from(&e, 4, C4, pb, VIP4, 80, PB_TCP_SYN) == L4_VERDICT_TX && out_backend() == FX_BK_V4T_A, "l4_process agrees");
  /* answered, the connection's SYN would follow its entry */
  establish(&e, FX_BK_V4T_A, pb);
  e.ctx.now += 1;
  explain(&e, &q, &x);
  CHECK(x.verdict == L4_EXPLAIN_ENTRY && x.backend == FX_BK_V4T_A && x.syn_choice == L4_SYN_FOLLOWS, "an answered entry in the ring: followed");
  env_free(&e);
}

/* Fixture tables with a source list on the v4 TCP service: allow 198.51.100.0/24, deny 198.51.100.8/32. */
static struct l4_tables *acl_tables(uint32_t rate) {
  static struct fx_input fi;
  static const uint32_t acl[] = {FX_SVC_V4_TCP, 0, 24, FX_SVC_V4_TCP, 1, 32};
  static uint8_t addrs[2 * 16];
  fx_input_init(&fi, FX_RING_A, 0);
  memset(addrs, 0, sizeof(addrs));
  pb_addr(4, "198.51.100.0", addrs);
  pb_addr(4, C4B, addrs + 16);
  fi.in.acl_words = acl;
  fi.in.nacl = 2;
  fi.in.acl_addrs = addrs;
  fx_rate_limit(&fi, rate);
  return fx_build(&fi, "acl_tables");
}

void test_explain_acl_and_rate(void) {
  struct env e;
  struct l4_ratelimit rl;
  CHECK(l4_ratelimit_init(&rl, 1024) == 0, "init");
  env_init_tables(&e, 4096, acl_tables(3));
  e.ctx.ratelimit = &rl;
  e.ctx.now_ms = 5000;
  struct l4_explain_query q;
  struct l4_explain x;
  query(&q, 4, 6, C4B, 1000, VIP4, 80);
  explain(&e, &q, &x);
  CHECK(x.verdict == L4_EXPLAIN_DROP && x.drop_reason == L4_DROP_ACL_DENIED && !x.acl_allowed && x.acl_entries == 2 && x.acl_index == 1,
        "the deny entry (index 1) decides (verdict %u reason %u index %u)", x.verdict, x.drop_reason, x.acl_index);
  CHECK(tcp_from(&e, 4, C4B, 1000, VIP4, 80, PB_TCP_SYN) == L4_VERDICT_DROP && e.ctx.last_drop == L4_DROP_ACL_DENIED, "l4_process agrees");
  query(&q, 4, 6, "203.0.113.5", 1000, VIP4, 80);
  explain(&e, &q, &x);
  CHECK(x.drop_reason == L4_DROP_ACL_DENIED && x.acl_index == L4_NO_BACKEND, "outside every allow entry: no entry matched");
  /* allowed by entry 0; the bucket starts full and explain takes no token */
  query(&q, 4, 6, C4, 1000, VIP4, 80);
  for (int i = 0; i < 10; i++) explain(&e, &q, &x);
  CHECK(x.verdict == L4_EXPLAIN_RING && x.acl_allowed && x.acl_index == 0 && x.rate == 3 && x.burst == 3 &&
            x.rate_tokens_milli == 3000 && x.rate_allows,
        "allowed by entry 0, a full bucket of 3 after 10 explains (tokens %u)", x.rate_tokens_milli);
  int ok = 0;
  for (uint16_t p = 1; p <= 5; p++) ok += tcp_from(&e, 4, C4, p, VIP4, 80, PB_TCP_SYN) == L4_VERDICT_TX;
  CHECK(ok == 3, "the burst is whole: %d of 5 SYNs", ok);
  query(&q, 4, 6, C4, 6, VIP4, 80);
  explain(&e, &q, &x);
  CHECK(x.verdict == L4_EXPLAIN_DROP && x.drop_reason == L4_DROP_RATE_LIMITED && x.rate_tokens_milli < 1000 && !x.rate_allows,
        "an empty bucket: rate_limited (tokens %u)", x.rate_tokens_milli);
  CHECK(tcp_from(&e, 4, C4, 6, VIP4, 80, PB_TCP_SYN) == L4_VERDICT_DROP && e.ctx.last_drop == L4_DROP_RATE_LIMITED, "l4_process agrees");
  query(&q, 4, 6, C4, 1, VIP4, 80);
  explain(&e, &q, &x);
  CHECK(x.verdict == L4_EXPLAIN_ENTRY, "an admitted flow follows its entry whatever the bucket");
  e.ctx.now_ms += 400; /* 3/s: one token and a fifth */
  query(&q, 4, 6, C4, 6, VIP4, 80);
  explain(&e, &q, &x);
  CHECK(x.verdict == L4_EXPLAIN_RING && x.rate_tokens_milli == 1200, "refilled by 400 ms: 1200 milli-tokens, got %u", x.rate_tokens_milli);
  env_free(&e);
  l4_ratelimit_destroy(&rl);
}

void test_explain_drops(void) {
  struct env e;
  env_init(&e, 1024, FX_RING_EMPTY, 0);
  struct l4_explain_query q;
  struct l4_explain x;
  query(&q, 4, 6, C4, 1000, VIP4, 80);
  explain(&e, &q, &x);
  CHECK(x.drop_reason == L4_DROP_NO_BACKEND && x.ring_size == 0 && x.ring_backend == L4_NO_BACKEND, "empty ring: no_backend");
  CHECK(tcp_from(&e, 4, C4, 1000, VIP4, 80, PB_TCP_SYN) == L4_VERDICT_DROP && e.ctx.last_drop == L4_DROP_NO_BACKEND, "l4_process agrees");
  query(&q, 4, 6, C4, 1000, VIP4, 81);
  explain(&e, &q, &x);
  CHECK(x.drop_reason == L4_DROP_VIP_PORT_UNKNOWN && x.service == L4_NO_BACKEND, "a VIP's other port");
  query(&q, 4, 17, C4, 1000, "10.9.9.9", 80);
  explain(&e, &q, &x);
  CHECK(x.drop_reason == L4_DROP_NOT_SERVICE, "not a VIP");
  env_free(&e);
}

/* Moves counted for a candidate ring, against where l4_process sends each flow once that ring is published and
 * the entries are gone (a mid-flow packet without an entry goes by the ring and creates none). */
void test_flow_moves(void) {
  struct env e;
  env_init(&e, 4096, FX_RING_ALT, 0);
  enum { N = 64 };
  int was[N];
  for (int i = 0; i < N; i++) {
    tcp_from(&e, 4, C4, (uint16_t)(3000 + i), VIP4, 80, PB_TCP_SYN);
    was[i] = out_backend();
    establish(&e, (uint32_t)was[i], (uint16_t)(3000 + i));
  }
  tcp_from(&e, 4, C4, 2999, VIP4, 80, PB_TCP_SYN); /* a closed entry: not counted */
  int closed_on = out_backend();
  tcp_from(&e, 4, C4, 2999, VIP4, 80, PB_TCP_RST);
  tcp_from(&e, 6, C6, 3000, VIP6, 80, PB_TCP_SYN); /* another service's entry, no candidate: not counted */
  /* the candidate: the v4 TCP service's ring with A on the first 5 slots and B on the rest */
  uint32_t ring[FX_RING_SIZE];
  for (int i = 0; i < FX_RING_SIZE; i++) ring[i] = i < 5 ? FX_BK_V4T_A : FX_BK_V4T_B;
  struct l4_ring_candidate cand[FX_MAX_SERVICES] = {{0}};
  cand[FX_SVC_V4_TCP] = (struct l4_ring_candidate){ring, FX_RING_SIZE, L4_HASH_5TUPLE};
  uint32_t moved[FX_MAX_BACKENDS] = {0}, kept[FX_MAX_BACKENDS] = {0};
  struct l4_flow_moves m = {&e.t->hash_key, cand, FX_MAX_SERVICES, moved, kept, FX_MAX_BACKENDS};
  uint64_t c = 0;
  int pages = 0;
  while (c < e.ft.capacity) c = l4_flow_moves_page(&e.ft, &e.t->timeouts, e.ctx.now, c, 100, &m), pages++;
  CHECK(pages == (int)((e.ft.capacity + 99) / 100), "paged: %d pages", pages);
  /* publish that ring, remove every entry, and send each flow's next packet */
  struct fx_input fi;
  fx_input_init(&fi, FX_RING_ALT, 0);
  memcpy(fi.rings + FX_SVC_V4_TCP * FX_RING_SIZE, ring, sizeof(ring));
  env_publish(&e, fx_build(&fi, "the candidate ring"));
  struct l4_flow_query all = {L4_FLOW_FILTER_ANY, 0, e.ft.capacity, 0};
  uint32_t removed = 0;
  l4_flow_remove_matching(&e.ft, &e.t->timeouts, e.ctx.now, &all, &removed);
  uint32_t want_moved[FX_MAX_BACKENDS] = {0}, want_kept[FX_MAX_BACKENDS] = {0};
  for (int i = 0; i < N; i++) {
    tcp_from(&e, 4, C4, (uint16_t)(3000 + i), VIP4, 80, PB_TCP_ACK);
    if (out_backend() == was[i]) want_kept[was[i]]++;
    else want_moved[was[i]]++;
  }
  CHECK(removed == N + 2, "removed %u", removed);
  CHECK(!memcmp(moved, want_moved, sizeof(moved)) && !memcmp(kept, want_kept, sizeof(kept)),
        "moved A %u B %u kept A %u B %u; l4_process: moved A %u B %u kept A %u B %u", moved[0], moved[1], kept[0], kept[1],
        want_moved[0], want_moved[1], want_kept[0], want_kept[1]);
  CHECK(moved[FX_BK_V4T_A] + moved[FX_BK_V4T_B] > 0 && kept[FX_BK_V4T_A] + kept[FX_BK_V4T_B] > 0, "some move, some stay");
  CHECK(moved[FX_BK_V6T_A] + moved[FX_BK_V6T_B] + kept[FX_BK_V6T_A] + kept[FX_BK_V6T_B] == 0 && closed_on >= 0,
        "the other service and the closed entry are not counted");
  /* an empty candidate ring (the service would have no backend): every counted entry moves */
  memset(moved, 0, sizeof(moved));
  memset(kept, 0, sizeof(kept));
  cand[FX_SVC_V4_TCP].size = 0;
  l4_flow_moves_page(&e.ft, &e.t->timeouts, e.ctx.now, 0, e.ft.capacity, &m);
  CHECK(moved[FX_BK_V4T_A] + moved[FX_BK_V4T_B] == 0, "nothing left to move: the entries were removed");
  env_free(&e);
}
