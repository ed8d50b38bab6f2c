/* Flow-table behaviour through the real data path: pinning, pick-up, TCP states and timeouts, re-pinning,
 * eviction. Flows are v4 TCP C4:cport -> VIP4:80 unless said otherwise; the fixture rings send every new flow
 * to backend A (FX_RING_A) or B (FX_RING_B), so "which backend" is the whole story. */
#include <stdio.h>
#include <string.h>

#include "test_util.h"
#include "tests.h"

static int c2s(struct env *e, uint16_t cport, uint8_t flags) { return c2s_fam(e, 4, cport, flags); }

/* backend slot bk -> client (v4 TCP); true when it was translated to come from VIP:80 */
static bool s2c(struct env *e, int bk, uint16_t cport, uint8_t flags) {
  struct pb_ip ip;
  struct pb_l4 l4;
  spec_tcp(&ip, &l4, 4, FX_BACKENDS[bk].addr, FX_BACKENDS[bk].port, C4, cport, flags, 10);
  uint32_t n = bld(g_in, NULL, &ip, &l4);
  if (run_raw(e, g_in, n, g_out, &g_out_len) != L4_VERDICT_TX) return false;
  struct pb_info in;
  pb_parse(g_out + PB_VNET_LEN, g_out_len - PB_VNET_LEN, &in);
  uint8_t vip[16];
  pb_addr(4, VIP4, vip);
  return memcmp(in.src, vip, 4) == 0 && pb_be16(g_out + PB_VNET_LEN + in.l4_off) == 80;
}

/* the entry of C4:cport -> VIP4:80 */
static bool ent(struct env *e, uint16_t cport, struct l4_flow_ref *ref) {
  return flow_get(e, 4, 6, C4, cport, VIP4, 80, ref);
}

static void establish(struct env *e, uint16_t cport, int want_bk) {
  int b = c2s(e, cport, PB_TCP_SYN);
  CHECK(b == want_bk, "port %u: SYN went to %d, want %d", cport, b, want_bk);
  CHECK(s2c(e, want_bk, cport, PB_TCP_SYN | PB_TCP_ACK), "port %u: SYN-ACK translated", cport);
  b = c2s(e, cport, PB_TCP_ACK);
  CHECK(b == want_bk, "port %u: ACK went to %d, want %d", cport, b, want_bk);
  struct l4_flow_ref r;
  CHECK(ent(e, cport, &r) && (r.state & FL_EST), "port %u: established", cport);
}

static uint32_t timeout_of(struct env *e, const struct l4_flow_ref *r) {
  return l4_flow_timeout(l4_timeouts_of(&e->t->timeouts, r->e->svc), 6, r->state);
}

void test_flow_syn_pins(void) {
  struct env e;
  env_init(&e, 1024, FX_RING_A, 0);
  struct l4_flow_ref r;
  CHECK(c2s(&e, 40000, PB_TCP_SYN) == FX_BK_V4T_A, "SYN to A");
  CHECK(ent(&e, 40000, &r), "SYN created an entry");
  CHECK(r.backend == FX_BK_V4T_A && r.state == FL_SYN, "entry: backend %u state %#x", r.backend, r.state);
  CHECK(l4_flow_count(&e.ft, &e.t->timeouts, e.ctx.now) == 1, "one entry");
  CHECK(env_q(&e, L4_Q_FLOW_NEW) == 1, "flow_new counted");
  CHECK(timeout_of(&e, &r) == FX_TO_SYN, "half-open: SYN timeout");
  CHECK(s2c(&e, FX_BK_V4T_A, 40000, PB_TCP_SYN | PB_TCP_ACK), "SYN-ACK");
  CHECK(ent(&e, 40000, &r) && r.state == (FL_SYN | FL_REPLY), "SYN-ACK sets REPLY (%#x)", r.state);
  CHECK(c2s(&e, 40000, PB_TCP_ACK) == FX_BK_V4T_A, "ACK to A");
  CHECK(ent(&e, 40000, &r) && (r.state & FL_EST) && timeout_of(&e, &r) == FX_TO_EST, "ACK establishes (%#x)", r.state);

  env_publish(&e, fx_tables(FX_RING_B_A1, 0)); /* the ring moves to B; A keeps a slot (still takes flows) */
  e.ctx.now += 100;
  for (int i = 0; i < 5; i++) CHECK(c2s(&e, 40000, PB_TCP_ACK | PB_TCP_PSH) == FX_BK_V4T_A, "after republish: still A");
  CHECK(c2s(&e, 40000, PB_TCP_SYN) == FX_BK_V4T_A, "a retransmitted SYN on a live entry keeps A");
  CHECK(c2s(&e, 40001, PB_TCP_SYN) == FX_BK_V4T_B, "a new flow follows the new ring (B)");
  /* replies are stateless: B answering for a flow pinned to A is translated, the entry is not touched */
  CHECK(s2c(&e, FX_BK_V4T_B, 40000, PB_TCP_ACK), "reply from the other backend translated");
  CHECK(ent(&e, 40000, &r) && r.backend == FX_BK_V4T_A, "entry still on A");
  CHECK(l4_flow_count(&e.ft, &e.t->timeouts, e.ctx.now) == 2, "two entries");

  /* byte-exact: a pinned packet after the republish */
  struct pb_ip ip;
  struct pb_l4 l4;
  spec_tcp(&ip, &l4, 4, C4, 40000, VIP4, 80, PB_TCP_ACK, 64);
  fx_fwd(&e, "pinned flow after republish => 10.0.1.1:8080", NULL, &ip, &l4, B4A, 8080);

  /* IPv6 too */
  env_publish(&e, fx_tables(FX_RING_A, 0));
  CHECK(c2s_fam(&e, 6, 40000, PB_TCP_SYN) == FX_BK_V6T_A, "v6 SYN to A");
  env_publish(&e, fx_tables(FX_RING_B, 0));
  CHECK(c2s_fam(&e, 6, 40000, PB_TCP_ACK) == FX_BK_V6T_A, "v6 flow still on A after republish");
  CHECK(c2s_fam(&e, 6, 40001, PB_TCP_SYN) == FX_BK_V6T_B, "v6 new flow on B");
  env_free(&e);
}

void test_flow_nonsyn_miss(void) {
  struct env e;
  env_init(&e, 1024, FX_RING_B, 0);
  struct l4_flow_ref r;
  static const uint8_t flags[] = {PB_TCP_ACK, PB_TCP_ACK | PB_TCP_PSH, PB_TCP_FIN | PB_TCP_ACK, PB_TCP_RST,
                                  PB_TCP_SYN | PB_TCP_ACK, PB_TCP_SYN | PB_TCP_RST};
  for (size_t i = 0; i < sizeof(flags); i++) {
    CHECK(c2s(&e, 41000, flags[i]) == FX_BK_V4T_B, "flags %#x without entry: by the ring (B)", flags[i]);
    CHECK(!ent(&e, 41000, &r), "flags %#x: no entry created", flags[i]);
  }
  CHECK(l4_flow_count(&e.ft, &e.t->timeouts, e.ctx.now) == 0, "table empty");
  CHECK(env_q(&e, L4_Q_FLOW_MISS_NONSYN) == sizeof(flags), "flow_miss_nonsyn %llu",
        (unsigned long long)env_q(&e, L4_Q_FLOW_MISS_NONSYN));
  CHECK(env_q(&e, L4_Q_FLOW_NEW) == 0, "no flow_new");
  env_free(&e);
}

void test_flow_pickup(void) {
  struct env e;
  env_init(&e, 1024, FX_RING_A, 0);
  struct l4_flow_ref r;
  CHECK(s2c(&e, FX_BK_V4T_A, 42000, PB_TCP_ACK | PB_TCP_PSH), "mid-flow reply translated");
  CHECK(ent(&e, 42000, &r), "the reply created an entry");
  CHECK(r.backend == FX_BK_V4T_A && r.state == FL_REPLY, "picked up on A, unconfirmed (%#x)", r.state);
  CHECK(timeout_of(&e, &r) == FX_TO_SYN, "half-open until the client confirms it");
  CHECK(env_q(&e, L4_Q_FLOW_PICKUP) == 1, "flow_pickup counted");
  env_publish(&e, fx_tables(FX_RING_B, 0));
  CHECK(c2s(&e, 42000, PB_TCP_ACK) == FX_BK_V4T_A, "the client's next packet follows the pick-up (A), not the ring");
  CHECK(ent(&e, 42000, &r) && (r.state & FL_EST) && timeout_of(&e, &r) == FX_TO_EST, "and confirms it (%#x)", r.state);
  /* the ring now sends new flows to B: A answering a flow without entry does not win it back */
  CHECK(s2c(&e, FX_BK_V4T_A, 42100, PB_TCP_ACK), "reply from A translated");
  CHECK(!ent(&e, 42100, &r), "not picked up: the ring would send this flow to B");
  CHECK(env_q(&e, L4_Q_FLOW_PICKUP) == 1, "still one pick-up");
  env_publish(&e, fx_tables(FX_RING_A, 0));
  /* a backend RST for an unknown flow creates nothing */
  CHECK(s2c(&e, FX_BK_V4T_A, 42001, PB_TCP_RST), "RST translated");
  CHECK(!ent(&e, 42001, &r), "RST created no entry");
  /* a backend FIN for an unknown flow: picked up with FIN_B */
  CHECK(s2c(&e, FX_BK_V4T_A, 42002, PB_TCP_FIN | PB_TCP_ACK), "FIN translated");
  CHECK(ent(&e, 42002, &r) && (r.state & FL_FIN_B) && timeout_of(&e, &r) == FX_TO_FIN, "picked up closing (%#x)",
        r.state);
  /* UDP: a reply creates the entry as well */
  struct pb_ip ip;
  struct pb_l4 l4;
  spec_udp(&ip, &l4, 4, B4A, 5353, C4, 6000, 20);
  fx_rev(&e, "udp reply without entry", NULL, &ip, &l4, VIP4, 53);
  CHECK(flow_get(&e, 4, 17, C4, 6000, VIP4, 53, &r) && r.backend == FX_BK_V4U_A && r.state == FL_REPLY,
        "udp picked up");
  spec_udp(&ip, &l4, 4, C4, 6000, VIP4, 53, 20);
  fx_fwd(&e, "udp after pick-up goes to the picked-up backend", NULL, &ip, &l4, B4A, 5353);
  CHECK(env_q(&e, L4_Q_FLOW_PICKUP) == 3, "flow_pickup %llu", (unsigned long long)env_q(&e, L4_Q_FLOW_PICKUP));
  env_free(&e);
}

void test_flow_rst_close_revive(void) {
  struct env e;
  env_init(&e, 1024, FX_RING_A, 0);
  struct l4_flow_ref r;
  establish(&e, 43000, FX_BK_V4T_A);
  establish(&e, 43001, FX_BK_V4T_A);
  env_publish(&e, fx_tables(FX_RING_B, 0));

  /* X: the client resets; nothing follows; the entry lives tcp_close seconds */
  CHECK(c2s(&e, 43000, PB_TCP_RST) == FX_BK_V4T_A, "RST goes to the pinned backend");
  CHECK(ent(&e, 43000, &r) && (r.state & FL_RST) && timeout_of(&e, &r) == FX_TO_CLOSE, "RST: close timeout (%#x)",
        r.state);
  e.ctx.now = 1000 + FX_TO_CLOSE;
  CHECK(ent(&e, 43000, &r), "alive at the close timeout");
  e.ctx.now = 1000 + FX_TO_CLOSE + 1;
  CHECK(!ent(&e, 43000, &r), "expired one second later");
  CHECK(c2s(&e, 43000, PB_TCP_ACK) == FX_BK_V4T_B, "afterwards the tuple follows the ring");

  /* Y: the backend resets (or someone forges it), then the client goes on: the flow revives */
  e.ctx.now = 1000;
  CHECK(s2c(&e, FX_BK_V4T_A, 43001, PB_TCP_RST | PB_TCP_ACK), "backend RST translated");
  CHECK(ent(&e, 43001, &r) && (r.state & FL_RST), "RST recorded");
  e.ctx.now = 1005;
  CHECK(c2s(&e, 43001, PB_TCP_ACK) == FX_BK_V4T_A, "a non-RST packet within the close time: still A");
  CHECK(ent(&e, 43001, &r) && !(r.state & FL_RST) && timeout_of(&e, &r) == FX_TO_EST, "RST cleared (%#x)", r.state);
  e.ctx.now = 1005 + FX_TO_CLOSE + 1;
  CHECK(ent(&e, 43001, &r) && r.backend == FX_BK_V4T_A, "still pinned past the close timeout");
  CHECK(c2s(&e, 43001, PB_TCP_ACK) == FX_BK_V4T_A, "and forwarded to A");
  env_free(&e);
}

void test_flow_fin_both_ways(void) {
  struct env e;
  env_init(&e, 1024, FX_RING_A, 0);
  struct l4_flow_ref r;
  establish(&e, 44000, FX_BK_V4T_A);
  env_publish(&e, fx_tables(FX_RING_B, 0));
  CHECK(c2s(&e, 44000, PB_TCP_FIN | PB_TCP_ACK) == FX_BK_V4T_A, "client FIN to A");
  CHECK(ent(&e, 44000, &r) && (r.state & FL_FIN_C) && timeout_of(&e, &r) == FX_TO_FIN, "half closed: fin timeout");
  e.ctx.now = 1000 + FX_TO_FIN;
  CHECK(ent(&e, 44000, &r), "alive at the fin timeout");
  CHECK(s2c(&e, FX_BK_V4T_A, 44000, PB_TCP_FIN | PB_TCP_ACK), "backend FIN translated");
  CHECK(ent(&e, 44000, &r) && (r.state & FL_FIN_B) && timeout_of(&e, &r) == FX_TO_CLOSE, "both FINs: close timeout");
  uint32_t t0 = e.ctx.now + 5;
  e.ctx.now = t0;
  CHECK(c2s(&e, 44000, PB_TCP_ACK) == FX_BK_V4T_A, "the last ACK still goes to A");
  e.ctx.now = t0 + FX_TO_CLOSE;
  CHECK(ent(&e, 44000, &r), "alive at the close timeout");
  e.ctx.now = t0 + FX_TO_CLOSE + 1;
  CHECK(!ent(&e, 44000, &r), "expired after it");
  env_free(&e);
}

void test_flow_syn_on_closed_repicks(void) {
  struct env e;
  env_init(&e, 1024, FX_RING_A, 0);
  struct l4_flow_ref r;
  establish(&e, 45000, FX_BK_V4T_A);
  establish(&e, 45001, FX_BK_V4T_A);
  establish(&e, 45002, FX_BK_V4T_A);
  c2s(&e, 45000, PB_TCP_FIN | PB_TCP_ACK);
  s2c(&e, FX_BK_V4T_A, 45000, PB_TCP_FIN | PB_TCP_ACK);
  c2s(&e, 45001, PB_TCP_RST);
  env_publish(&e, fx_tables(FX_RING_B_A1, 0)); /* A keeps a slot: its live entries keep it */
  CHECK(c2s(&e, 45000, PB_TCP_SYN) == FX_BK_V4T_B, "SYN reusing a FIN-closed tuple re-picks (B)");
  CHECK(ent(&e, 45000, &r) && r.backend == FX_BK_V4T_B && r.state == FL_SYN, "entry re-pinned to B, state %#x",
        r.state);
  CHECK(c2s(&e, 45001, PB_TCP_SYN) == FX_BK_V4T_B, "SYN reusing an RST-closed tuple re-picks (B)");
  CHECK(env_q(&e, L4_Q_FLOW_REPIN) == 2, "flow_repin %llu", (unsigned long long)env_q(&e, L4_Q_FLOW_REPIN));
  CHECK(c2s(&e, 45002, PB_TCP_SYN) == FX_BK_V4T_A, "SYN on a live entry keeps A");
  CHECK(env_q(&e, L4_Q_FLOW_REPIN) == 2, "no re-pin for it");
  CHECK(l4_flow_count(&e.ft, &e.t->timeouts, e.ctx.now) == 3, "no duplicate entries");
  env_free(&e);
}

void test_flow_syn_unanswered_repicks(void) {
  struct env e;
  env_init(&e, 1024, FX_RING_A, 0);
  struct l4_flow_ref r;
  CHECK(c2s(&e, 45100, PB_TCP_SYN) == FX_BK_V4T_A, "SYN to A");
  CHECK(c2s(&e, 45100, PB_TCP_SYN) == FX_BK_V4T_A, "its retransmission, ring unchanged: A again");
  CHECK(env_q(&e, L4_Q_FLOW_REPIN) == 0, "no re-pin while the ring still says A");
  establish(&e, 45101, FX_BK_V4T_A);
  c2s(&e, 45102, PB_TCP_SYN);
  CHECK(s2c(&e, FX_BK_V4T_A, 45102, PB_TCP_SYN | PB_TCP_ACK), "45102: A answered, the client has not ACKed yet");
  env_publish(&e, fx_tables(FX_RING_B_A1, 0)); /* the ring moves from A (its weight lowered; a backend out of the ring: flow_syn_reuse_off_ring) */
  CHECK(c2s(&e, 45100, PB_TCP_SYN) == FX_BK_V4T_A, "a copy of the SYN within the same second keeps A");
  e.ctx.now += 1;
  CHECK(c2s(&e, 45100, PB_TCP_SYN) == FX_BK_V4T_B, "retransmitted SYN A never answered: re-picked (B)");
  CHECK(ent(&e, 45100, &r) && r.backend == FX_BK_V4T_B && r.state == FL_SYN, "entry on B, state %#x", r.state);
  CHECK(env_q(&e, L4_Q_FLOW_REPIN) == 1, "counted as a re-pin");
  CHECK(c2s(&e, 45101, PB_TCP_SYN) == FX_BK_V4T_A, "SYN on an established entry keeps A");
  CHECK(c2s(&e, 45102, PB_TCP_SYN) == FX_BK_V4T_A, "SYN on an entry A answered keeps A");
  CHECK(c2s(&e, 45100, PB_TCP_ACK) == FX_BK_V4T_B, "the re-picked flow goes on to B");
  CHECK(env_q(&e, L4_Q_FLOW_REPIN) == 1, "no other re-pin");
  CHECK(l4_flow_count(&e.ft, &e.t->timeouts, e.ctx.now) == 3, "no duplicate entries");
  env_free(&e);
}

void test_flow_backend_removed(void) {
  struct env e;
  env_init(&e, 1024, FX_RING_A, 0);
  struct l4_flow_ref r;
  establish(&e, 46000, FX_BK_V4T_A);
  /* new tables: backend A (slot 0) is gone altogether, the ring holds only B */
  static struct fx_input fi;
  fx_input_init(&fi, FX_RING_B, 0);
  memmove(fi.bk_words, fi.bk_words + L4_BK_WORDS, sizeof(uint32_t) * L4_BK_WORDS * (FX_NBK - 1));
  memmove(fi.bk_addrs, fi.bk_addrs + 16, 16 * (FX_NBK - 1));
  fi.in.nbackends = FX_NBK - 1;
  char err[256];
  struct l4_tables *t = l4_tables_build(&fi.in, err, sizeof(err));
  CHECK(t != NULL, "tables without backend 0: %s", err);
  if (!t) {
    env_free(&e);
    return;
  }
  env_publish(&e, t);
  uint64_t miss = env_q(&e, L4_Q_FLOW_MISS_NONSYN);
  CHECK(c2s(&e, 46000, PB_TCP_ACK) == FX_BK_V4T_B, "the pinned backend is gone: forwarded by the ring");
  CHECK(env_q(&e, L4_Q_FLOW_MISS_NONSYN) == miss + 1, "counted as a miss");
  CHECK(c2s(&e, 46000, PB_TCP_SYN) == FX_BK_V4T_B, "a SYN re-pins");
  CHECK(ent(&e, 46000, &r) && r.backend == FX_BK_V4T_B, "entry now on B");
  CHECK(env_q(&e, L4_Q_FLOW_REPIN) == 1, "flow_repin");
  /* replies from the removed backend are not ours any more */
  struct pb_ip ip;
  struct pb_l4 l4;
  spec_tcp(&ip, &l4, 4, B4A, 8080, C4, 46000, PB_TCP_ACK, 0);
  uint32_t n = bld(g_in, NULL, &ip, &l4);
  expect_drop(&e, "reply from a removed backend", g_in, n, L4_DROP_NOT_SERVICE);
  env_free(&e);
}

void test_flow_udp(void) {
  struct env e;
  env_init(&e, 1024, FX_RING_A, 0);
  struct l4_flow_ref r;
  struct pb_ip ip;
  struct pb_l4 l4;
  spec_udp(&ip, &l4, 4, C4, 5000, VIP4, 53, 20);
  uint32_t n = bld(g_in, NULL, &ip, &l4);
  run_raw(&e, g_in, n, g_out, &g_out_len);
  CHECK(out_backend() == FX_BK_V4U_A, "first datagram to A");
  CHECK(flow_get(&e, 4, 17, C4, 5000, VIP4, 53, &r) && r.backend == FX_BK_V4U_A && r.state == 0, "udp entry");
  CHECK(env_q(&e, L4_Q_FLOW_NEW) == 1, "flow_new");
  env_publish(&e, fx_tables(FX_RING_B, 0));
  e.ctx.now = 1000 + FX_TO_UDP;
  run_raw(&e, g_in, n, g_out, &g_out_len);
  CHECK(out_backend() == FX_BK_V4U_A, "at the udp timeout still A");
  e.ctx.now = 1000 + 2 * FX_TO_UDP + 1;
  run_raw(&e, g_in, n, g_out, &g_out_len);
  CHECK(out_backend() == FX_BK_V4U_B, "after the timeout: the new ring (B)");
  CHECK(env_q(&e, L4_Q_FLOW_NEW) == 2, "a new entry");
  env_free(&e);
}

void test_flow_eviction(void) {
  struct env e;
  env_init(&e, 8, FX_RING_A, 0); /* one bucket of 8 */
  CHECK(e.ft.nbuckets == 1 && e.ft.capacity == 8, "one bucket");
  struct l4_flow_ref r;
  for (uint16_t p = 1; p <= 4; p++) establish(&e, p, FX_BK_V4T_A);
  for (uint16_t p = 5; p <= 8; p++) {
    e.ctx.now = 1000u + (p - 4u);
    CHECK(c2s(&e, p, PB_TCP_SYN) == FX_BK_V4T_A, "half-open %u", p);
  }
  CHECK(l4_flow_count(&e.ft, &e.t->timeouts, e.ctx.now) == 8, "bucket full");
  CHECK(env_q(&e, L4_Q_FLOW_EVICTED) == 0, "nothing evicted yet");
  e.ctx.now = 1005;
  CHECK(c2s(&e, 9, PB_TCP_SYN) == FX_BK_V4T_A, "SYN into the full bucket");
  CHECK(env_q(&e, L4_Q_FLOW_EVICTED) == 1, "eviction counted (%llu)", (unsigned long long)env_q(&e, L4_Q_FLOW_EVICTED));
  CHECK(ent(&e, 9, &r), "the new flow is in");
  CHECK(!ent(&e, 5, &r), "the longest-idle half-open entry (5) was evicted");
  for (uint16_t p = 1; p <= 4; p++) CHECK(ent(&e, p, &r), "established %u kept although idle longer", p);
  for (uint16_t p = 6; p <= 8; p++) CHECK(ent(&e, p, &r), "half-open %u kept", p);

  /* all established: the longest idle one goes */
  e.ctx.now = 1006;
  for (uint16_t p = 6; p <= 9; p++) {
    s2c(&e, FX_BK_V4T_A, p, PB_TCP_SYN | PB_TCP_ACK);
    c2s(&e, p, PB_TCP_ACK);
    CHECK(ent(&e, p, &r) && (r.state & FL_EST), "%u established", p);
  }
  e.ctx.now = 1007;
  c2s(&e, 2, PB_TCP_ACK); /* 2, 3, 4 busy; 1 idle since 1000 */
  c2s(&e, 3, PB_TCP_ACK);
  c2s(&e, 4, PB_TCP_ACK);
  CHECK(c2s(&e, 10, PB_TCP_SYN) == FX_BK_V4T_A, "SYN into a bucket of established flows");
  CHECK(env_q(&e, L4_Q_FLOW_EVICTED) == 2, "second eviction counted");
  CHECK(!ent(&e, 1, &r) && ent(&e, 10, &r), "the longest-idle established flow (1) made room");
  for (uint16_t p = 2; p <= 9; p++) CHECK(p == 5 || ent(&e, p, &r), "flow %u kept", p);

  /* an expired entry is reused without counting an eviction */
  e.ctx.now = 1007 + FX_TO_SYN + 1; /* 10 (half-open since 1007) has expired */
  CHECK(c2s(&e, 11, PB_TCP_SYN) == FX_BK_V4T_A, "SYN 11");
  CHECK(env_q(&e, L4_Q_FLOW_EVICTED) == 2, "reusing an expired slot is not an eviction");
  CHECK(ent(&e, 11, &r), "11 in");
  for (uint16_t p = 2; p <= 9; p++) CHECK(p == 5 || ent(&e, p, &r), "established %u kept", p);
  env_free(&e);
}

/* The passive check counts a backend's resets: on a live flow yes; on a flow already closed (both FINs) or one
 * without an entry no — a RST answering a late packet of a finished connection is not a fault. */
void test_flow_backend_resets(void) {
  struct env e;
  env_init(&e, 1024, FX_RING_A, 0);
  struct pb_ip ip;
  struct pb_l4 l4;
  uint64_t *bc = l4_ctr_backend(&e.ctx, FX_BK_V4T_A);
  /* 1: SYN, then the backend resets it (port closed, app crashed): counted */
  spec_tcp(&ip, &l4, 4, C4, 3001, VIP4, 80, PB_TCP_SYN, 0);
  uint32_t n = bld(g_in, NULL, &ip, &l4);
  run_raw(&e, g_in, n, g_out, &g_out_len);
  spec_tcp(&ip, &l4, 4, B4A, 8080, C4, 3001, PB_TCP_RST | PB_TCP_ACK, 0);
  n = bld(g_in, NULL, &ip, &l4);
  CHECK(run_raw(&e, g_in, n, g_out, &g_out_len) == L4_VERDICT_TX, "the RST is forwarded to the client");
  CHECK(bc[L4_O_RESETS] == 1, "a reset on a live flow counts (%llu)", (unsigned long long)bc[L4_O_RESETS]);
  /* 2: a connection that ends with FIN both ways, then a RST for a late segment: not counted */
  const uint8_t seq[][2] = {{0, PB_TCP_SYN}, {1, PB_TCP_SYN | PB_TCP_ACK}, {0, PB_TCP_ACK}, {0, PB_TCP_FIN | PB_TCP_ACK},
                            {1, PB_TCP_FIN | PB_TCP_ACK}, {1, PB_TCP_RST}};
  for (size_t i = 0; i < sizeof(seq) / sizeof(seq[0]); i++) {
    if (seq[i][0] == 0) spec_tcp(&ip, &l4, 4, C4, 3002, VIP4, 80, seq[i][1], 0);
    else spec_tcp(&ip, &l4, 4, B4A, 8080, C4, 3002, seq[i][1], 0);
    n = bld(g_in, NULL, &ip, &l4);
    run_raw(&e, g_in, n, g_out, &g_out_len);
  }
  CHECK(bc[L4_O_RESETS] == 1, "a reset after both FINs does not count (%llu)", (unsigned long long)bc[L4_O_RESETS]);
  /* 3: a RST for a flow with no entry (after a restart, say): not counted */
  spec_tcp(&ip, &l4, 4, B4A, 8080, C4, 3003, PB_TCP_RST, 0);
  n = bld(g_in, NULL, &ip, &l4);
  run_raw(&e, g_in, n, g_out, &g_out_len);
  CHECK(bc[L4_O_RESETS] == 1, "a reset without an entry does not count (%llu)", (unsigned long long)bc[L4_O_RESETS]);
  env_free(&e);
}

/* The interleavings of a worker's state update with a removal or a reuse, replayed in one thread: worker 1
 * looks an entry up; the admin removes it (or worker 2 evicts it for a new flow); then worker 1 records the
 * packet it had looked the entry up for. The update must not land: a removed entry must stay gone (not
 * counted, not listed), and another flow's entry must not take the first flow's state bits. */
static int first_view(const struct l4_flow_view *v, void *arg) {
  *(struct l4_flow_view *)arg = *v;
  return 1;
}

void test_flow_touch_stale_ref(void) {
  struct env e;
  env_init(&e, 8, FX_RING_A, 0); /* one bucket of 8 */
  struct l4_flow_ref stale, r;
  establish(&e, 1, FX_BK_V4T_A);
  CHECK(ent(&e, 1, &stale), "looked up");
  struct l4_flow_view v;
  memset(&v, 0, sizeof(v));
  l4_flow_walk(&e.ft, &e.t->timeouts, e.ctx.now, 0, e.ft.capacity, first_view, &v);
  CHECK(l4_flow_remove(&e.ft, &v, e.ctx.now), "removed");
  e.ctx.now += 1;
  l4_flow_touch(&e.ft, &stale, FL_FIN_C, FL_RST, e.ctx.now); /* the client's FIN, processed with the old lookup */
  CHECK(l4_flow_count(&e.ft, &e.t->timeouts, e.ctx.now) == 0, "a removed entry stays removed (count %llu)",
        (unsigned long long)l4_flow_count(&e.ft, &e.t->timeouts, e.ctx.now));
  memset(&v, 0, sizeof(v));
  bool listed = l4_flow_walk(&e.ft, &e.t->timeouts, e.ctx.now, 0, e.ft.capacity, first_view, &v) != e.ft.capacity;
  CHECK(!listed, "a removed entry is not listed (backend %u, state %#x)", v.backend, v.state);
  CHECK(!ent(&e, 1, &r), "nor found");

  /* reuse: 7 established flows and one half-open (8); a new SYN (9) evicts 8, then 8's late update arrives */
  for (uint16_t p = 2; p <= 7; p++) establish(&e, p, FX_BK_V4T_A);
  CHECK(c2s(&e, 10, PB_TCP_SYN) == FX_BK_V4T_A, "SYN 10");
  establish(&e, 11, FX_BK_V4T_A);
  CHECK(c2s(&e, 8, PB_TCP_SYN) == FX_BK_V4T_A, "SYN 8");
  CHECK(ent(&e, 8, &stale) && stale.state == FL_SYN, "8 looked up, half-open");
  e.ctx.now += 1;
  c2s(&e, 10, PB_TCP_ACK); /* 10 busier than 8: 8 is the victim */
  CHECK(c2s(&e, 9, PB_TCP_SYN) == FX_BK_V4T_A, "SYN 9 into the full bucket");
  CHECK(!ent(&e, 8, &r) && ent(&e, 9, &r) && r.e == stale.e, "9 took 8's entry");
  l4_flow_touch(&e.ft, &stale, FL_REPLY | FL_EST, FL_RST, e.ctx.now); /* 8's late update */
  CHECK(ent(&e, 9, &r) && r.state == FL_SYN, "9 keeps its own state (%#x, want %#x)", r.state, FL_SYN);
  env_free(&e);
}

/* Drains safe under port reuse (issue 17 item 4, admission.h): a SYN reusing the tuple of a live entry whose
 * backend takes no new flows goes to the current ring at once; the old entry's packets go on until then. */
void test_flow_syn_reuse_off_ring(void) {
  struct env e;
  env_init(&e, 1024, FX_RING_A, 0);
  struct l4_flow_ref r;
  establish(&e, 47000, FX_BK_V4T_A);
  CHECK(c2s(&e, 47001, PB_TCP_SYN) == FX_BK_V4T_A, "47001: SYN to A, not answered yet");
  establish(&e, 47003, FX_BK_V4T_A);
  CHECK(c2s(&e, 47003, PB_TCP_FIN | PB_TCP_ACK) == FX_BK_V4T_A, "47003: the client's FIN (FIN_WAIT)");
  establish(&e, 47004, FX_BK_V4T_A);
  env_publish(&e, fx_tables(FX_RING_B, 0)); /* A drained: out of the ring, its flows kept */

  /* the old connection goes on through its entry, byte for byte */
  struct pb_ip ip;
  struct pb_l4 l4;
  spec_tcp(&ip, &l4, 4, C4, 47000, VIP4, 80, PB_TCP_ACK | PB_TCP_PSH, 100);
  fx_fwd(&e, "drained A: the established flow's data still reaches A", NULL, &ip, &l4, B4A, 8080);
  CHECK(env_q(&e, L4_Q_FLOW_REUSE_MOVED) == 0, "nothing moved by data");

  /* the client reuses the port: in the same second, no retransmission needed, byte for byte to B */
  spec_tcp(&ip, &l4, 4, C4, 47000, VIP4, 80, PB_TCP_SYN, 0);
  fx_fwd(&e, "SYN reusing a drained backend's live tuple goes to B at once", NULL, &ip, &l4, B4B, 8080);
  CHECK(ent(&e, 47000, &r) && r.backend == FX_BK_V4T_B && r.state == FL_SYN, "entry replaced: B, state %#x", r.state);
  CHECK(env_q(&e, L4_Q_FLOW_REUSE_MOVED) == 1, "counted flow_reuse_moved");
  CHECK(s2c(&e, FX_BK_V4T_B, 47000, PB_TCP_SYN | PB_TCP_ACK), "B's SYN-ACK translated");
  CHECK(c2s(&e, 47000, PB_TCP_ACK) == FX_BK_V4T_B, "the new connection's ACK goes to B");
  CHECK(ent(&e, 47000, &r) && (r.state & FL_EST) && r.backend == FX_BK_V4T_B, "established on B");

  /* an unanswered SYN's copy in the same second and a half-closed entry's reuse move too */
  CHECK(c2s(&e, 47001, PB_TCP_SYN) == FX_BK_V4T_B, "SYN retransmission of a handshake A never answered: B at once");
  CHECK(c2s(&e, 47003, PB_TCP_SYN) == FX_BK_V4T_B, "SYN reusing a FIN_WAIT entry on drained A: B");
  CHECK(env_q(&e, L4_Q_FLOW_REUSE_MOVED) == 3, "3 moved, got %llu", (unsigned long long)env_q(&e, L4_Q_FLOW_REUSE_MOVED));
  /* not a SYN without ACK: stays on its entry */
  CHECK(c2s(&e, 47004, PB_TCP_SYN | PB_TCP_ACK) == FX_BK_V4T_A, "SYN+ACK from the client is no new connection: A");
  CHECK(c2s(&e, 47004, PB_TCP_RST) == FX_BK_V4T_A, "the client's RST reaches A");
  CHECK(l4_flow_count(&e.ft, &e.t->timeouts, e.ctx.now) == 4, "no duplicate entries");

  /* no live backend at all: the SYN is dropped (never a new flow for the drained one), the old flow goes on */
  establish(&e, 47005, FX_BK_V4T_B);
  env_publish(&e, fx_tables(FX_RING_EMPTY, 0));
  CHECK(c2s(&e, 47005, PB_TCP_SYN) == -1 && e.ctx.last_drop == L4_DROP_NO_BACKEND, "empty ring: SYN dropped no_backend");
  CHECK(c2s(&e, 47005, PB_TCP_ACK) == FX_BK_V4T_B, "its established flow still reaches B");
  CHECK(ent(&e, 47005, &r) && r.backend == FX_BK_V4T_B && (r.state & FL_EST), "entry kept");
  env_free(&e);

  /* a backend still in the ring keeps its established entry when the ring moves (only A's slot moved to B) */
  env_init(&e, 1024, FX_RING_B, 0);
  establish(&e, 47100, FX_BK_V4T_B);
  env_publish(&e, tables_with_previous(0, FX_BK_V4T_A, 0, true, 0)); /* ring on A, B keeps the last slot */
  uint16_t moved = port_to(&e, C4, 47100, FX_BK_V4T_A);
  CHECK(moved == 47100 || c2s(&e, moved, PB_TCP_SYN) == FX_BK_V4T_A, "a port the new ring sends to A");
  CHECK(c2s(&e, 47100, PB_TCP_SYN) == FX_BK_V4T_B, "SYN on an established entry of B, still in the ring: B");
  CHECK(env_q(&e, L4_Q_FLOW_REUSE_MOVED) == 0, "nothing moved");
  env_free(&e);
}

static int take_view(const struct l4_flow_view *v, void *arg) {
  *(struct l4_flow_view *)arg = *v;
  return 1;
}

/* An entry's age (the drain view's oldest flow): from its creation, kept by state changes and packets, reset when
 * a SYN replaces the entry for a new connection; exact to 4 s, wrapping after 2^18 s. */
void test_flow_age(void) {
  struct env e;
  env_init(&e, 1024, FX_RING_A, 0);
  e.ctx.now = 1003; /* not on a 4 s boundary */
  establish(&e, 48000, FX_BK_V4T_A);
  struct l4_flow_view v;
  e.ctx.now += 1000;
  CHECK(c2s(&e, 48000, PB_TCP_ACK | PB_TCP_PSH) == FX_BK_V4T_A, "data");
  CHECK(s2c(&e, FX_BK_V4T_A, 48000, PB_TCP_FIN | PB_TCP_ACK), "the backend's FIN (a state change)");
  e.ctx.now += 10;
  memset(&v, 0, sizeof(v));
  l4_flow_walk(&e.ft, &e.t->timeouts, e.ctx.now, 0, e.ft.capacity, take_view, &v);
  CHECK(v.age >= 1010 - 4 && v.age <= 1010 + 4 && v.idle == 10, "age %u (want 1010 +- 4), idle %u", v.age, v.idle);
  env_publish(&e, fx_tables(FX_RING_B, 0));
  CHECK(c2s(&e, 48000, PB_TCP_SYN) == FX_BK_V4T_B, "reuse: a new connection on B");
  e.ctx.now += 8;
  l4_flow_walk(&e.ft, &e.t->timeouts, e.ctx.now, 0, e.ft.capacity, take_view, &v);
  CHECK(v.backend == FX_BK_V4T_B && v.age >= 4 && v.age <= 12, "the new entry's age %u (want 8 +- 4)", v.age);
  CHECK(l4_age_of(l4_birth_of(5), 5 + (1u << 18) + 40) == 40, "wraps after 2^18 s");
  env_free(&e);
}
