/* Floods of spoofed packets that would create flow entries without a real connection behind them: a client's
 * ACK that a backend resets after a ring change (the second chance, dataplane.c reply()), and a backend's
 * reply without an entry (the pick-up). Either may fill a small table; neither may displace real established
 * flows, pin flows to a drained backend, or get past the service's new-flow rate limit. */
#include <stdio.h>
#include <string.h>

#include "test_util.h"
#include "tests.h"

#define SPOOF_TABLE 64  /* 8 buckets of 8 */
#define SPOOF_REAL 16   /* real established flows, idle while the flood runs */
#define SPOOF_PAIRS 2000

/* The real flows: 198.51.100.7:(30000+i) -> VIP4:80, each established through SYN, SYN-ACK, ACK on the
 * backend the current ring chooses. */
static void establish_real(struct env *e, uint32_t backend_of[SPOOF_REAL]) {
  struct pb_ip ip;
  struct pb_l4 l4;
  for (int i = 0; i < SPOOF_REAL; i++) {
    uint16_t port = (uint16_t)(30000 + i);
    spec_tcp(&ip, &l4, 4, C4, port, VIP4, 80, PB_TCP_SYN, 0);
    uint32_t n = bld(g_in, NULL, &ip, &l4);
    run_raw(e, g_in, n, g_out, &g_out_len);
    int b = out_backend();
    backend_of[i] = (uint32_t)b;
    spec_tcp(&ip, &l4, 4, FX_BACKENDS[b].addr, FX_BACKENDS[b].port, C4, port, PB_TCP_SYN | PB_TCP_ACK, 0);
    n = bld(g_in, NULL, &ip, &l4);
    run_raw(e, g_in, n, g_out, &g_out_len);
    spec_tcp(&ip, &l4, 4, C4, port, VIP4, 80, PB_TCP_ACK, 0);
    n = bld(g_in, NULL, &ip, &l4);
    run_raw(e, g_in, n, g_out, &g_out_len);
  }
}

/* How many real flows are still in the table, established on their backend. */
static int real_left(struct env *e, const uint32_t backend_of[SPOOF_REAL]) {
  int left = 0;
  for (int i = 0; i < SPOOF_REAL; i++) {
    struct l4_flow_ref r;
    if (flow_get(e, 4, 6, C4, (uint16_t)(30000 + i), VIP4, 80, &r) && r.backend == backend_of[i] && (r.state & FL_EST))
      left++;
  }
  return left;
}

struct tally {
  int established, on_b;
};

static int tally_visit(const struct l4_flow_view *v, void *arg) {
  struct tally *t = arg;
  if ((v->state & FL_EST) && !(v->state & (FL_RST | FL_FIN_C | FL_FIN_B))) t->established++;
  if (v->backend == FX_BK_V4T_B) t->on_b++;
  return 0;
}

static struct tally tally(struct env *e) {
  struct tally t = {0, 0};
  l4_flow_walk(&e->ft, &e->t->timeouts, e->ctx.now, 0, e->ft.capacity, tally_visit, &t);
  return t;
}

/* A spoofed source: 100.64.x.y:port, one per i. */
static void spoofed_client(int i, char addr[32], uint16_t *port) {
  snprintf(addr, 32, "100.64.%d.%d", (i >> 8) & 0xff, i & 0xff);
  *port = (uint16_t)(1024 + (i * 7919) % 60000);
}

/* One spoofed ACK+RST pair: the ACK goes by the ring to a backend, which resets the connection it never had. */
static void ack_rst_pair(struct env *e, int i) {
  char addr[32];
  uint16_t port;
  spoofed_client(i, addr, &port);
  struct pb_ip ip;
  struct pb_l4 l4;
  spec_tcp(&ip, &l4, 4, addr, port, VIP4, 80, PB_TCP_ACK, 0);
  uint32_t n = bld(g_in, NULL, &ip, &l4);
  if (run_raw(e, g_in, n, g_out, &g_out_len) != L4_VERDICT_TX) return;
  int b = out_backend();
  if (b < 0) return;
  spec_tcp(&ip, &l4, 4, FX_BACKENDS[b].addr, FX_BACKENDS[b].port, addr, port, PB_TCP_RST, 0);
  n = bld(g_in, NULL, &ip, &l4);
  run_raw(e, g_in, n, g_out, &g_out_len);
}

/* 16 real flows idle for 100 s in a 64-entry table whose service changed its ring (every slot was B's, now
 * A holds all but one); then 2,000 spoofed ACK+RST pairs. Each makes a second-chance entry on B, but one that
 * is half-open: the flood evicts only its own entries, never the real flows. With B drained (no slot in the
 * current ring) it makes none; with a rate limit, no more than the limit lets through. */
void test_ack_flood_after_ring_change(void) {
  uint32_t backend_of[SPOOF_REAL];
  struct env e;
  env_init_tables(&e, SPOOF_TABLE, tables_with_previous(1, FX_BK_V4T_B, 0, true, 0));
  establish_real(&e, backend_of);
  CHECK(real_left(&e, backend_of) == SPOOF_REAL, "%d real flows established", real_left(&e, backend_of));
  e.ctx.now += 100;
  for (int i = 0; i < SPOOF_PAIRS; i++) ack_rst_pair(&e, i);
  uint64_t chances = env_drops(&e, L4_DROP_SECOND_CHANCE);
  struct tally t = tally(&e);
  CHECK(chances > SPOOF_TABLE, "the flood made second-chance entries (%llu)", (unsigned long long)chances);
  CHECK(real_left(&e, backend_of) == SPOOF_REAL, "all %d real flows kept (%d left; %d established entries, %llu evictions)",
        SPOOF_REAL, real_left(&e, backend_of), t.established, (unsigned long long)env_q(&e, L4_Q_FLOW_EVICTED));
  CHECK(t.established == SPOOF_REAL, "no spoofed entry is established (%d established)", t.established);
  CHECK(l4_flow_count(&e.ft, &e.t->timeouts, e.ctx.now) <= SPOOF_TABLE, "table within its size");
  /* unconfirmed entries carry the SYN timeout: after it, only the real flows remain */
  e.ctx.now += FX_TO_SYN + 1;
  CHECK(l4_flow_count(&e.ft, &e.t->timeouts, e.ctx.now) == SPOOF_REAL, "the guesses expire with the SYN timeout (%llu left)",
        (unsigned long long)l4_flow_count(&e.ft, &e.t->timeouts, e.ctx.now));
  env_free(&e);

  /* B drained: no entry pins a flow to it, so its drain can finish */
  env_init_tables(&e, SPOOF_TABLE, tables_with_previous(1, FX_BK_V4T_B, 0, false, 0));
  establish_real(&e, backend_of);
  e.ctx.now += 100;
  for (int i = 0; i < SPOOF_PAIRS; i++) ack_rst_pair(&e, i);
  t = tally(&e);
  CHECK(t.on_b == 0 && env_drops(&e, L4_DROP_SECOND_CHANCE) == 0, "nothing pinned to the drained backend (%d entries)", t.on_b);
  CHECK(real_left(&e, backend_of) == SPOOF_REAL, "real flows kept");
  env_free(&e);

  /* a rate limit of 5 new flows a second per client address: one spoofed address gets 5 guesses, not 2,000 */
  struct l4_ratelimit rl;
  CHECK(l4_ratelimit_init(&rl, 1024) == 0, "ratelimit init");
  env_init_tables(&e, 1024, tables_with_previous(1, FX_BK_V4T_B, 0, true, 5));
  e.ctx.ratelimit = &rl;
  e.ctx.now_ms = 5000;
  struct pb_ip ip;
  struct pb_l4 l4;
  for (int i = 0; i < SPOOF_PAIRS; i++) {
    uint16_t port = (uint16_t)(1024 + i);
    spec_tcp(&ip, &l4, 4, B4A, 8080, C4B, port, PB_TCP_RST, 0);
    uint32_t n = bld(g_in, NULL, &ip, &l4);
    run_raw(&e, g_in, n, g_out, &g_out_len);
  }
  /* the ring's one B slot sends some of these flows to B itself, whose reset is not a second chance */
  CHECK(env_drops(&e, L4_DROP_SECOND_CHANCE) == 5, "%llu second chances for one address (want the burst, 5)",
        (unsigned long long)env_drops(&e, L4_DROP_SECOND_CHANCE));
  env_free(&e);
  l4_ratelimit_destroy(&rl);
}

/* 16 real flows idle for 100 s in a 64-entry table, then 2,000 packets from backend A's address to spoofed
 * clients (what reaches the TUN if the backends' network is not the only way in). Each is picked up, but
 * unconfirmed: they evict one another, never the real flows. */
void test_reply_pickup_flood(void) {
  uint32_t backend_of[SPOOF_REAL];
  struct env e;
  env_init(&e, SPOOF_TABLE, FX_RING_A, 0);
  establish_real(&e, backend_of);
  e.ctx.now += 100;
  struct pb_ip ip;
  struct pb_l4 l4;
  for (int i = 0; i < SPOOF_PAIRS; i++) {
    char addr[32];
    uint16_t port;
    spoofed_client(i, addr, &port);
    spec_tcp(&ip, &l4, 4, B4A, 8080, addr, port, (i & 1) ? PB_TCP_ACK : (PB_TCP_ACK | PB_TCP_PSH), (i & 1) ? 0 : 100);
    uint32_t n = bld(g_in, NULL, &ip, &l4);
    run_raw(&e, g_in, n, g_out, &g_out_len);
  }
  struct tally t = tally(&e);
  CHECK(env_q(&e, L4_Q_FLOW_PICKUP) > SPOOF_TABLE, "the flood was picked up (%llu)", (unsigned long long)env_q(&e, L4_Q_FLOW_PICKUP));
  CHECK(real_left(&e, backend_of) == SPOOF_REAL, "all %d real flows kept (%d left)", SPOOF_REAL, real_left(&e, backend_of));
  CHECK(t.established == SPOOF_REAL, "no picked-up entry is established (%d established)", t.established);
  env_free(&e);
}
