/* Flow-state sync in the packet core (core/sync_log.h): which entries a worker logs for the cluster's peers, and
 * how a peer's entry goes into the flow table as learned (l4_flow_learn, l4_flow_forget). */
#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

#include "../core/decide.h"
#include "../core/sync_log.h"
#include "test_util.h"
#include "tests.h"

/* client:cport -> VIP4:80 (TCP) with these flags; the backend slot it was sent to, or -1 */
static int c2s(struct env *e, uint16_t cport, uint8_t flags) {
  struct pb_ip ip;
  struct pb_l4 l4;
  spec_tcp(&ip, &l4, 4, C4, cport, VIP4, 80, flags, 10);
  uint32_t n = bld(g_in, NULL, &ip, &l4);
  if (run_raw(e, g_in, n, g_out, &g_out_len) != L4_VERDICT_TX) return -1;
  return out_backend();
}

/* backend slot bk -> client:cport (TCP); true when translated */
static bool s2c(struct env *e, int bk, uint16_t cport, uint8_t flags) {
  struct pb_ip ip;
  struct pb_l4 l4;
  spec_tcp(&ip, &l4, 4, FX_BACKENDS[bk].addr, FX_BACKENDS[bk].port, C4, cport, flags, 10);
  uint32_t n = bld(g_in, NULL, &ip, &l4);
  return run_raw(e, g_in, n, g_out, &g_out_len) == L4_VERDICT_TX;
}

static void establish(struct env *e, uint16_t cport, int bk) {
  CHECK(c2s(e, cport, PB_TCP_SYN) == bk, "port %u: SYN to %d", cport, bk);
  CHECK(s2c(e, bk, cport, PB_TCP_SYN | PB_TCP_ACK), "port %u: SYN-ACK", cport);
  CHECK(c2s(e, cport, PB_TCP_ACK) == bk, "port %u: ACK to %d", cport, bk);
}

static bool ent_state_ok(struct env *e, uint16_t cport, struct l4_flow_ref *r) { return flow_get(e, 4, 6, C4, cport, VIP4, 80, r); }

struct view_acc {
  struct l4_flow_view v[4];
  int n;
};
static int take(const struct l4_flow_view *v, void *arg) {
  struct view_acc *acc = arg;
  if (acc->n < 4) acc->v[acc->n] = *v;
  acc->n++;
  return 0;
}

static uint32_t drain(struct l4_sync_log *log, struct l4_sync_rec *out, uint32_t max) { return l4_sync_log_read(log, out, max); }

static void key_of(struct l4_flow_key *k, uint16_t cport) {
  uint8_t c[16], v[16];
  pb_addr(4, C4, c);
  pb_addr(4, VIP4, v);
  l4_flow_key_set(k, 4, 6, c, htons(cport), v, htons(80));
}

/* A flow pinned to A before the ring moved to B is logged once (at its next packet) and marked; further packets,
 * replies, flows the ring agrees with and unconfirmed entries log nothing; the flow's close logs a removal. Sync
 * off: the same packets log and mark nothing. */
void test_sync_divergent_log(void) {
  struct l4_sync_log *log = calloc(1, sizeof(*log));
  struct l4_sync_rec rec[8];
  struct l4_flow_ref r;
  for (int on = 1; on >= 0; on--) {
    struct env e;
    env_init(&e, 1024, FX_RING_A, 0);
    e.ctx.sync = on ? log : NULL;
    establish(&e, 40000, FX_BK_V4T_A);
    CHECK(drain(log, rec, 8) == 0, "an entry the ring agrees with is not logged");
    env_publish(&e, fx_tables(FX_RING_B_A1, 0)); /* the ring moves to B; A keeps a slot */
    CHECK(c2s(&e, 40001, PB_TCP_SYN) == FX_BK_V4T_B, "a new flow follows the new ring");
    CHECK(c2s(&e, 40001, PB_TCP_ACK) == FX_BK_V4T_B, "and is not established yet");
    for (int i = 0; i < 3; i++) CHECK(c2s(&e, 40000, PB_TCP_ACK | PB_TCP_PSH) == FX_BK_V4T_A, "the pinned flow stays on A");
    CHECK(s2c(&e, FX_BK_V4T_A, 40000, PB_TCP_ACK), "A's reply");
    uint32_t n = drain(log, rec, 8);
    CHECK(ent_state_ok(&e, 40000, &r), "entry present");
    if (on) {
      struct l4_flow_key k;
      key_of(&k, 40000);
      CHECK(n == 1 && rec[0].op == L4_SYNC_ADD && rec[0].backend == FX_BK_V4T_A && rec[0].svc == FX_SVC_V4_TCP &&
                memcmp(&rec[0].key, &k, sizeof(k)) == 0,
            "one ADD record for the pinned flow (%u records)", n);
      CHECK(r.state & FL_SYNCED, "the entry is marked (%#x)", r.state);
      CHECK(env_q(&e, L4_Q_SYNC_LOGGED) == 1, "sync_logged counted once");
    } else {
      CHECK(n == 0 && !(r.state & FL_SYNCED) && env_q(&e, L4_Q_SYNC_LOGGED) == 0, "sync off: nothing logged, no mark");
    }
    establish(&e, 40002, FX_BK_V4T_B);
    CHECK(c2s(&e, 40002, PB_TCP_ACK) == FX_BK_V4T_B && drain(log, rec, 8) == 0, "a flow on the ring's pick is not logged");
    /* the pinned flow closes: FIN both ways */
    CHECK(c2s(&e, 40000, PB_TCP_FIN | PB_TCP_ACK) == FX_BK_V4T_A, "client FIN");
    CHECK(drain(log, rec, 8) == 0, "half-closed: nothing yet");
    CHECK(s2c(&e, FX_BK_V4T_A, 40000, PB_TCP_FIN | PB_TCP_ACK), "backend FIN");
    n = drain(log, rec, 8);
    CHECK(ent_state_ok(&e, 40000, &r), "entry lingers for the close timeout");
    if (on) {
      CHECK(n == 1 && rec[0].op == L4_SYNC_DEL && rec[0].backend == FX_BK_V4T_A, "its close logs a removal (%u records)", n);
      CHECK(!(r.state & FL_SYNCED) && env_q(&e, L4_Q_SYNC_LOGGED_DEL) == 1, "and unmarks it (%#x)", r.state);
      CHECK(c2s(&e, 40000, PB_TCP_ACK) == FX_BK_V4T_A && drain(log, rec, 8) == 0, "a closed entry is not logged again");
    } else {
      CHECK(n == 0, "sync off: no removal");
    }
    env_free(&e);
  }
  /* an entry whose replies take another host (here only the client's SYN and ACK: never established) is logged
   * too, unconfirmed: it is the only one that knows the flow's backend */
  struct env e;
  env_init(&e, 1024, FX_RING_A, 0);
  e.ctx.sync = log;
  CHECK(c2s(&e, 40000, PB_TCP_SYN) == FX_BK_V4T_A && c2s(&e, 40000, PB_TCP_ACK) == FX_BK_V4T_A, "replies elsewhere");
  env_publish(&e, fx_tables(FX_RING_B_A1, 0));
  CHECK(c2s(&e, 40000, PB_TCP_ACK | PB_TCP_PSH) == FX_BK_V4T_A && drain(log, rec, 8) == 1 && rec[0].state == FL_SYN,
        "logged, unconfirmed (%#x)", rec[0].state);
  env_free(&e);
  /* a pick-up (a flow that moved from another host) is logged at once, half-open as it is; once */
  env_init(&e, 1024, FX_RING_A_B1, 0);
  e.ctx.sync = log;
  uint16_t port = port_to(&e, C4, 41000, FX_BK_V4T_B);
  CHECK(s2c(&e, FX_BK_V4T_B, port, PB_TCP_ACK), "B's reply picked up");
  CHECK(drain(log, rec, 8) == 1 && rec[0].op == L4_SYNC_ADD && rec[0].backend == FX_BK_V4T_B && rec[0].state == FL_REPLY,
        "a pick-up is logged at once, unconfirmed (%#x)", rec[0].state);
  env_publish(&e, fx_tables(FX_RING_A, 0)); /* B leaves the ring; the entry stays B's */
  CHECK(s2c(&e, FX_BK_V4T_B, port, PB_TCP_ACK) && c2s(&e, port, PB_TCP_ACK) == FX_BK_V4T_B && drain(log, rec, 8) == 0,
        "and not again when the ring moves");
  env_free(&e);
  /* a second chance's guess is logged only once its backend has answered through it */
  env_init_tables(&e, 1024, tables_with_previous(1, FX_BK_V4T_B, 0, true, 0));
  e.ctx.sync = log;
  port = port_to(&e, C4, 4001, FX_BK_V4T_A);
  CHECK(s2c(&e, FX_BK_V4T_A, port, PB_TCP_RST) == false && e.ctx.last_drop == L4_DROP_SECOND_CHANCE, "A's reset swallowed");
  CHECK(ent_state_ok(&e, port, &r) && r.backend == FX_BK_V4T_B && r.state == 0, "the guess: pinned to B, no state bits");
  CHECK(c2s(&e, port, PB_TCP_ACK) == FX_BK_V4T_B && drain(log, rec, 8) == 0, "the client alone: not logged");
  CHECK(s2c(&e, FX_BK_V4T_B, port, PB_TCP_ACK) && drain(log, rec, 8) == 1 && rec[0].backend == FX_BK_V4T_B,
        "logged once B answered through it");
  env_free(&e);
  free(log);
}

/* The log is bounded: a record that finds it full is dropped and counted; the reader gets the rest in order. */
void test_sync_log_full(void) {
  struct l4_sync_log *log = calloc(1, sizeof(*log));
  struct l4_flow_key k;
  key_of(&k, 1);
  for (uint32_t i = 0; i < L4_SYNC_LOG_RECORDS; i++) CHECK(l4_sync_log_put(log, &k, i, 0, L4_SYNC_ADD, 0), "record %u fits", i);
  CHECK(!l4_sync_log_put(log, &k, 99999, 0, L4_SYNC_ADD, 0) && log->dropped == 1, "the one past the end is dropped, counted");
  static struct l4_sync_rec out[L4_SYNC_LOG_RECORDS];
  CHECK(l4_sync_log_read(log, out, 10) == 10 && out[0].backend == 0 && out[9].backend == 9, "the oldest first");
  CHECK(l4_sync_log_put(log, &k, 7, 0, L4_SYNC_DEL, 0), "room again");
  uint32_t n = l4_sync_log_read(log, out, L4_SYNC_LOG_RECORDS);
  CHECK(n == L4_SYNC_LOG_RECORDS - 9 && out[n - 1].backend == 7 && out[n - 1].op == L4_SYNC_DEL, "the rest, in order (%u)", n);
  free(log);
}

/* A peer's entry learned: established and marked, the flow goes to its backend though the ring says otherwise,
 * listed as learned, expiring by the established timeout. A live local entry wins over it; a learned one is
 * re-pinned; forgetting removes a learned entry and never a local one. */
void test_sync_learn(void) {
  struct env e;
  env_init(&e, 1024, FX_RING_A, 0);
  struct l4_flow_key k;
  struct l4_flow_ref r;
  key_of(&k, 42000);
  uint64_t h = l4_flow_hash(&e.t->hash_key, &k);
  CHECK(l4_flow_learn(&e.ft, &k, h, FX_BK_V4T_B, FX_SVC_V4_TCP, true, &e.t->timeouts, e.ctx.now) == FLOW_INSERTED, "learned");
  CHECK(ent_state_ok(&e, 42000, &r) && r.backend == FX_BK_V4T_B && (r.state & (FL_EST | FL_SYNCED)) == (FL_EST | FL_SYNCED),
        "established and marked (%#x)", r.state);
  CHECK(c2s(&e, 42000, PB_TCP_ACK | PB_TCP_PSH) == FX_BK_V4T_B, "the flow goes to the learned backend, not the ring's A");
  struct view_acc acc = {.n = 0};
  l4_flow_walk(&e.ft, &e.t->timeouts, e.ctx.now, 0, e.ft.capacity, take, &acc);
  CHECK(acc.n == 1 && acc.v[0].learned == 1, "listed as learned");
  /* a peer's newer report re-pins a learned entry */
  CHECK(l4_flow_learn(&e.ft, &k, h, FX_BK_V4T_A, FX_SVC_V4_TCP, true, &e.t->timeouts, e.ctx.now) == FLOW_INSERTED &&
            ent_state_ok(&e, 42000, &r) && r.backend == FX_BK_V4T_A,
        "a learned entry is re-pinned");
  CHECK(l4_flow_count(&e.ft, &e.t->timeouts, e.ctx.now) == 1, "one entry");
  /* a local live entry wins */
  establish(&e, 42001, FX_BK_V4T_A);
  struct l4_flow_key k2;
  key_of(&k2, 42001);
  uint64_t h2 = l4_flow_hash(&e.t->hash_key, &k2);
  CHECK(l4_flow_learn(&e.ft, &k2, h2, FX_BK_V4T_B, FX_SVC_V4_TCP, true, &e.t->timeouts, e.ctx.now) == FLOW_EXISTS, "a live local entry wins");
  CHECK(ent_state_ok(&e, 42001, &r) && r.backend == FX_BK_V4T_A && !(r.state & FL_SYNCED), "unchanged");
  CHECK(!l4_flow_forget(&e.ft, &k2, h2, e.ctx.now) && ent_state_ok(&e, 42001, &r), "forgetting never removes a local entry");
  CHECK(l4_flow_forget(&e.ft, &k, h, e.ctx.now) && !ent_state_ok(&e, 42000, &r), "a learned entry is forgotten");
  /* a closed local entry gives way */
  CHECK(c2s(&e, 42001, PB_TCP_RST) == FX_BK_V4T_A, "client reset");
  CHECK(l4_flow_learn(&e.ft, &k2, h2, FX_BK_V4T_B, FX_SVC_V4_TCP, true, &e.t->timeouts, e.ctx.now) == FLOW_INSERTED &&
            ent_state_ok(&e, 42001, &r) && r.backend == FX_BK_V4T_B,
        "a closed local entry is replaced");
  /* a peer's pick-up: learned half-open, confirmed by the client's packet through it */
  struct l4_flow_key k3;
  key_of(&k3, 42002);
  uint64_t h3 = l4_flow_hash(&e.t->hash_key, &k3);
  CHECK(l4_flow_learn(&e.ft, &k3, h3, FX_BK_V4T_B, FX_SVC_V4_TCP, false, &e.t->timeouts, e.ctx.now) == FLOW_INSERTED &&
            ent_state_ok(&e, 42002, &r) && r.state == (FL_REPLY | FL_SYNCED),
        "unconfirmed: half-open (%#x)", r.state);
  CHECK(c2s(&e, 42002, PB_TCP_ACK) == FX_BK_V4T_B && ent_state_ok(&e, 42002, &r) && (r.state & FL_EST), "the client confirms it (%#x)", r.state);
  /* same timeouts: idle past the established timeout, gone */
  e.ctx.now += FX_TO_EST - 1;
  CHECK(ent_state_ok(&e, 42001, &r), "alive before the established timeout");
  e.ctx.now += 2;
  CHECK(!ent_state_ok(&e, 42001, &r), "expired after it");
  env_free(&e);
}

/* With sync on, a reset from the backend the ring picks, for a flow this host's live entry pins to another backend
 * (its client packets reach a host without the entry), is swallowed and the entry logged again; sync off: the reset
 * reaches the client. A reset from the entry's own backend always goes through. */
void test_sync_other_reset(void) {
  struct l4_sync_log *log = calloc(1, sizeof(*log));
  struct l4_sync_rec rec[8];
  struct l4_flow_ref r;
  for (int on = 1; on >= 0; on--) {
    struct env e;
    env_init(&e, 1024, FX_RING_B, 0);
    e.ctx.sync = on ? log : NULL;
    establish(&e, 40000, FX_BK_V4T_B);
    env_publish(&e, fx_tables(FX_RING_A_B1, 0)); /* the ring moves to A; B keeps a slot */
    uint16_t port = 40000;
    CHECK(c2s(&e, port, PB_TCP_ACK) == FX_BK_V4T_B, "the pinned flow stays on B");
    drain(log, rec, 8);
    CHECK(ent_state_ok(&e, port, &r) && r.backend == FX_BK_V4T_B, "pinned to B");
    bool pinned_against_ring = true;
    {
      struct l4_flow_key k;
      key_of(&k, port);
      pinned_against_ring = l4_pick_backend(e.t, &e.t->services[FX_SVC_V4_TCP], &k, l4_flow_hash(&e.t->hash_key, &k)) == FX_BK_V4T_A;
    }
    CHECK(pinned_against_ring, "port %u: the ring picks A now", port);
    struct pb_ip ip;
    struct pb_l4 l4;
    spec_tcp(&ip, &l4, 4, B4A, 8080, C4, port, PB_TCP_RST, 0);
    uint32_t n = bld(g_in, NULL, &ip, &l4);
    enum l4_verdict v = run_raw(&e, g_in, n, g_out, &g_out_len);
    if (on) {
      CHECK(v == L4_VERDICT_DROP && e.ctx.last_drop == L4_DROP_SECOND_CHANCE, "A's reset swallowed");
      CHECK(drain(log, rec, 8) == 1 && rec[0].op == L4_SYNC_ADD && rec[0].backend == FX_BK_V4T_B, "the entry logged again");
      CHECK(ent_state_ok(&e, port, &r) && r.backend == FX_BK_V4T_B && !(r.state & FL_RST), "still B's, not reset (%#x)", r.state);
    } else {
      CHECK(v == L4_VERDICT_TX, "sync off: A's reset goes to the client");
      CHECK(drain(log, rec, 8) == 0, "nothing logged");
    }
    CHECK(s2c(&e, FX_BK_V4T_B, port, PB_TCP_RST), "B's own reset goes through");
    env_free(&e);
  }
  free(log);
}

