/* Data-plane health probes (core/probe.c and their recognition in l4_process), per-service idle timeouts,
 * and paging through the flow table with a cursor. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/probe.h"
#include "test_util.h"
#include "tests.h"

#define PROBE4 FX_PROBE4
#define PROBE6 FX_PROBE6

/* Fixture tables with or without the probe source addresses, and optionally per-service timeout words. */
static struct l4_tables *tables_with(const uint32_t *timeout_words, uint32_t ntimeouts, int probes) {
  static struct fx_input fi;
  fx_input_init(&fi, FX_RING_A, 0);
  if (!probes) {
    fi.in.probe_addr4 = NULL;
    fi.in.probe_addr6 = NULL;
  }
  fi.in.timeout_words = timeout_words;
  fi.in.ntimeouts = ntimeouts;
  char err[256];
  struct l4_tables *t = l4_tables_build(&fi.in, err, sizeof(err));
  if (!t) {
    fprintf(stderr, "tables_with: %s\n", err);
    abort();
  }
  return t;
}

/* The probe SYN, byte for byte, against the packet builder's: DF, TTL 64, window 65535, MSS 1220. */
void test_probe_syn_bytes(void) {
  for (int fam = 4; fam <= 6; fam += 2) {
    const char *src = fam == 4 ? PROBE4 : PROBE6, *dst = fam == 4 ? B4A : B6A;
    uint8_t s[16], d[16], got[L4_PROBE_MAX_LEN];
    pb_addr((uint8_t)fam, src, s);
    pb_addr((uint8_t)fam, dst, d);
    uint32_t n = l4_probe_syn(got, sizeof(got), (uint8_t)fam, s, d, 40001, 8080, 0xa1b2c3d4);
    struct pb_ip ip;
    struct pb_l4 l4;
    if (fam == 4) {
      pb_ip4(&ip, src, dst);
      ip.id = 0;
    } else {
      pb_ip6(&ip, src, dst);
      ip.flow = 0;
    }
    ip.ttl = 64;
    pb_tcp(&l4, 40001, 8080, PB_TCP_SYN);
    l4.seq = 0xa1b2c3d4;
    l4.win = 65535;
    const uint8_t mss[4] = {2, 4, 0x04, 0xc4};
    memcpy(l4.opts, mss, 4);
    l4.opts_len = 4;
    uint32_t wn = bld(g_want, NULL, &ip, &l4);
    CHECK(n == wn && memcmp(got, g_want, n) == 0, "v%d probe SYN differs from the builder's", fam);
    if (n != wn || memcmp(got, g_want, n) != 0) pb_hexdump_diff("probe syn", got, n, g_want, wn);
    CHECK(l4_probe_syn(got, n - 1, (uint8_t)fam, s, d, 1, 1, 0) == 0, "v%d: a buffer one byte short is refused", fam);
  }
  uint8_t z[16] = {0}, buf[L4_PROBE_MAX_LEN];
  CHECK(l4_probe_syn(buf, sizeof(buf), 5, z, z, 1, 1, 0) == 0, "family 5 is refused");
}

/* A packet from backend `bk` (its port 8080) to the probe address, to port dport, with ack and flags. */
static enum l4_verdict to_probe(struct env *e, int fam, const char *bk, uint16_t dport, uint32_t ack, uint8_t flags) {
  struct pb_ip ip;
  struct pb_l4 l4;
  spec_tcp(&ip, &l4, (uint8_t)fam, bk, 8080, fam == 4 ? PROBE4 : PROBE6, dport, flags, 0);
  l4.ack = ack;
  uint32_t n = bld(g_in, NULL, &ip, &l4);
  return run_raw(e, g_in, n, g_out, &g_out_len);
}

/* The answer to a backend's outstanding probe (SYN-ACK: ack = seq + 1, to the probe's source port) is counted,
 * answered with a RST to the backend, creates no flow entry and sends nothing towards a client; a RST answering
 * it (port closed) is counted and consumed. */
void test_probe_answer(void) {
  struct env e;
  struct l4_probes pr;
  CHECK(l4_probes_init(&pr, FX_MAX_BACKENDS) == 0, "probes init");
  env_init_tables(&e, 1024, tables_with(NULL, 0, 1));
  e.ctx.probes = &pr;
  for (int fam = 4; fam <= 6; fam += 2) {
    const char *probe = fam == 4 ? PROBE4 : PROBE6, *bk = fam == 4 ? B4A : B6A;
    uint32_t slot = fam == 4 ? FX_BK_V4T_A : FX_BK_V6T_A;
    CHECK(l4_probe_arm(&pr, slot, 40001, 0xa1b2c3d4), "armed");
    CHECK(l4_probe_state(&pr, slot, 40001, 0xa1b2c3d4) == L4_PROBE_PENDING, "pending");
    CHECK(to_probe(&e, fam, bk, 40001, 0xa1b2c3d5, PB_TCP_SYN | PB_TCP_ACK) == L4_VERDICT_TX, "v%d SYN-ACK to the probe address is answered", fam);
    struct pb_ip wip;
    struct pb_l4 wl4;
    if (fam == 4) {
      pb_ip4(&wip, probe, bk);
      wip.id = 0;
    } else {
      pb_ip6(&wip, probe, bk);
      wip.flow = 0;
    }
    wip.ttl = 64;
    pb_tcp(&wl4, 40001, 8080, PB_TCP_RST);
    wl4.seq = 0xa1b2c3d5;
    wl4.ack = 0;
    wl4.win = 0;
    uint32_t wn = bld(g_want, NULL, &wip, &wl4);
    CHECK(g_out_len == wn && memcmp(g_out, g_want, wn) == 0, "v%d: the answer is the RST closing the probe", fam);
    if (g_out_len != wn || memcmp(g_out, g_want, wn) != 0) pb_hexdump_diff("probe rst", g_out, g_out_len, g_want, wn);
    uint64_t *bc = l4_ctr_backend(&e.ctx, slot);
    CHECK(bc[L4_O_PROBE_SYNACKS] == 1, "v%d: probe_synacks counted for the backend", fam);
    CHECK(l4_probe_state(&pr, slot, 40001, 0xa1b2c3d4) == L4_PROBE_SYNACK, "v%d: the probe's state says SYN-ACK", fam);
    CHECK(bc[L4_O_PACKETS_OUT] == 0 && bc[L4_O_ANSWERED] == 0, "v%d: not counted as client traffic", fam);
    struct l4_flow_ref r;
    CHECK(!flow_get(&e, (uint8_t)fam, 6, probe, 40001, fam == 4 ? VIP4 : VIP6, 80, &r), "v%d: no flow entry", fam);
    /* the backend retransmits its SYN-ACK (our RST was lost): answered again, counted once */
    CHECK(to_probe(&e, fam, bk, 40001, 0xa1b2c3d5, PB_TCP_SYN | PB_TCP_ACK) == L4_VERDICT_TX, "v%d: a repeat is answered", fam);
    CHECK(bc[L4_O_PROBE_SYNACKS] == 1, "v%d: a repeat is not counted again", fam);

    CHECK(l4_probe_arm(&pr, slot, 40002, 7), "armed");
    CHECK(l4_probe_state(&pr, slot, 40001, 0xa1b2c3d4) == L4_PROBE_NONE, "v%d: a new probe replaces the old one", fam);
    CHECK(to_probe(&e, fam, bk, 40002, 8, PB_TCP_RST | PB_TCP_ACK) == L4_VERDICT_DROP && e.ctx.last_drop == L4_DROP_PROBE_ANSWER,
          "v%d: the backend's RST goes no further (probe_answer)", fam);
    CHECK(bc[L4_O_PROBE_RESETS] == 1 && l4_probe_state(&pr, slot, 40002, 7) == L4_PROBE_RST, "v%d: counted as probe_resets", fam);
  }
  CHECK(env_q(&e, L4_Q_PROBE_RST_SENT) == 4 && env_drops(&e, L4_DROP_PROBE_ANSWER) == 2, "four RSTs sent, two answers dropped");
  CHECK(env_q(&e, L4_Q_FLOW_PICKUP) == 0 && env_q(&e, L4_Q_REPLY) == 0, "no pick-up, no reply translated");
  env_free(&e);

  /* Without a probe address the same SYN-ACK is an ordinary reply (translated to the VIP). */
  env_init_tables(&e, 1024, tables_with(NULL, 0, 0));
  struct pb_ip ip;
  struct pb_l4 l4;
  spec_tcp(&ip, &l4, 4, B4A, 8080, PROBE4, 40001, PB_TCP_SYN | PB_TCP_ACK, 0);
  CHECK(fx_rev(&e, "no probe address: an ordinary reply", NULL, &ip, &l4, VIP4, 80), "translated");
  env_free(&e);
  l4_probes_destroy(&pr);
}

/* A dead backend must not be marked up by a SYN-ACK anyone can send from its address and port: only the answer
 * to its outstanding probe counts. A forged one (wrong acknowledgment, wrong port, another backend's probe), a
 * late one (to a probe a newer one replaced) and any answer while none is outstanding are dropped as
 * probe_unmatched, answered with nothing, and counted nowhere. */
void test_probe_forged_answers(void) {
  struct env e;
  struct l4_probes pr;
  CHECK(l4_probes_init(&pr, FX_MAX_BACKENDS) == 0, "probes init");
  env_init_tables(&e, 1024, tables_with(NULL, 0, 1));
  e.ctx.probes = &pr;
  uint64_t *bc = l4_ctr_backend(&e.ctx, FX_BK_V4T_A);
  const uint8_t sa = PB_TCP_SYN | PB_TCP_ACK, ra = PB_TCP_RST | PB_TCP_ACK;
  struct {
    const char *what;
    uint16_t dport;
    uint32_t ack;
    uint8_t flags;
  } forged[] = {
      {"no probe outstanding", 40001, 1001, sa},
      {"wrong acknowledgment (seq, not seq + 1)", 40001, 1000, sa},
      {"wrong acknowledgment (random)", 40001, 0xdeadbeef, sa},
      {"wrong destination port", 40002, 1001, sa},
      {"the answer to the replaced probe", 40001, 1001, sa},
      {"a RST with the wrong acknowledgment", 40005, 6, ra},
      {"a bare SYN with the right numbers", 40005, 5001, PB_TCP_SYN},
  };
  for (size_t i = 0; i < sizeof(forged) / sizeof(forged[0]); i++) {
    if (i == 1) CHECK(l4_probe_arm(&pr, FX_BK_V4T_A, 40001, 1000), "armed");
    if (i == 4) CHECK(l4_probe_arm(&pr, FX_BK_V4T_A, 40005, 5000), "a newer probe");
    CHECK(to_probe(&e, 4, B4A, forged[i].dport, forged[i].ack, forged[i].flags) == L4_VERDICT_DROP &&
              e.ctx.last_drop == L4_DROP_PROBE_UNMATCHED,
          "%s: dropped as probe_unmatched (%s)", forged[i].what, L4_DROP_REASON_NAMES[e.ctx.last_drop]);
  }
  /* another backend's outstanding probe does not make A's forged answer count */
  CHECK(l4_probe_arm(&pr, FX_BK_V4T_B, 40009, 9000), "B armed");
  CHECK(to_probe(&e, 4, B4A, 40009, 9001, sa) == L4_VERDICT_DROP && e.ctx.last_drop == L4_DROP_PROBE_UNMATCHED, "B's numbers from A");
  CHECK(bc[L4_O_PROBE_SYNACKS] == 0 && bc[L4_O_PROBE_RESETS] == 0, "nothing counted for A");
  CHECK(l4_probe_state(&pr, FX_BK_V4T_A, 40005, 5000) == L4_PROBE_PENDING, "A's probe still pending");
  CHECK(env_q(&e, L4_Q_PROBE_RST_SENT) == 0, "no RST sent for a forged answer");
  /* the real answer still counts afterwards */
  CHECK(to_probe(&e, 4, B4A, 40005, 5001, sa) == L4_VERDICT_TX && bc[L4_O_PROBE_SYNACKS] == 1, "the real answer counts");
  /* without the outstanding-probe table (NULL) nothing matches */
  e.ctx.probes = NULL;
  CHECK(to_probe(&e, 4, B4A, 40005, 5001, sa) == L4_VERDICT_DROP && e.ctx.last_drop == L4_DROP_PROBE_UNMATCHED, "no table: unmatched");
  CHECK(!l4_probe_arm(&pr, FX_MAX_BACKENDS, 1, 1) && l4_probe_state(&pr, FX_MAX_BACKENDS, 1, 1) == L4_PROBE_NONE, "slot out of range");
  env_free(&e);
  l4_probes_destroy(&pr);
}

/* Service 0 (v4 TCP) has its own established timeout (100 s), service 1 (v4 UDP) its own UDP timeout (5 s);
 * service 2 (v6 TCP) keeps the defaults. */
void test_per_service_timeouts(void) {
  const uint32_t words[] = {FX_SVC_V4_TCP, 0, 100, 0, 0, 0, FX_SVC_V4_UDP, 0, 0, 0, 0, 5};
  struct env e;
  env_init_tables(&e, 1024, tables_with(words, 2, 0));
  e.ctx.now = 1000;
  struct pb_ip ip;
  struct pb_l4 l4;
  /* an established v4 and v6 TCP flow: SYN, SYN-ACK, ACK */
  for (int fam = 4; fam <= 6; fam += 2) {
    const char *c = fam == 4 ? C4 : C6, *vip = fam == 4 ? VIP4 : VIP6, *bk = fam == 4 ? B4A : B6A;
    spec_tcp(&ip, &l4, (uint8_t)fam, c, 1111, vip, 80, PB_TCP_SYN, 0);
    uint32_t n = bld(g_in, NULL, &ip, &l4);
    run_raw(&e, g_in, n, g_out, &g_out_len);
    spec_tcp(&ip, &l4, (uint8_t)fam, bk, 8080, c, 1111, PB_TCP_SYN | PB_TCP_ACK, 0);
    n = bld(g_in, NULL, &ip, &l4);
    run_raw(&e, g_in, n, g_out, &g_out_len);
    spec_tcp(&ip, &l4, (uint8_t)fam, c, 1111, vip, 80, PB_TCP_ACK, 0);
    n = bld(g_in, NULL, &ip, &l4);
    run_raw(&e, g_in, n, g_out, &g_out_len);
  }
  spec_udp(&ip, &l4, 4, C4, 2222, VIP4, 53, 8);
  uint32_t n = bld(g_in, NULL, &ip, &l4);
  run_raw(&e, g_in, n, g_out, &g_out_len);
  struct l4_flow_ref r;
  CHECK(flow_get(&e, 4, 6, C4, 1111, VIP4, 80, &r) && (r.state & FL_EST), "v4 TCP flow established");
  CHECK(r.e->svc == FX_SVC_V4_TCP, "the entry remembers its service slot");
  CHECK(flow_get(&e, 4, 17, C4, 2222, VIP4, 53, &r), "UDP flow present");

  e.ctx.now = 1006; /* past the UDP service's 5 s, within the default 120 s */
  CHECK(!flow_get(&e, 4, 17, C4, 2222, VIP4, 53, &r), "the UDP service's own 5 s timeout applies");
  CHECK(flow_get(&e, 4, 6, C4, 1111, VIP4, 80, &r), "TCP flow still live at 6 s");
  e.ctx.now = 1101; /* past service 0's 100 s, within the default 3600 s */
  CHECK(!flow_get(&e, 4, 6, C4, 1111, VIP4, 80, &r), "the v4 TCP service's own 100 s established timeout applies");
  CHECK(flow_get(&e, 6, 6, C6, 1111, VIP6, 80, &r), "the v6 TCP service keeps the default 3600 s");
  CHECK(l4_flow_count(&e.ft, &e.t->timeouts, e.ctx.now) == 1, "count uses each entry's own timeouts");
  CHECK(l4_timeouts_of(&e.t->timeouts, FX_SVC_V4_TCP)->tcp_syn == FX_TO_SYN, "a 0 word keeps the default");
  CHECK(l4_timeouts_of(&e.t->timeouts, 1000)->tcp_established == FX_TO_EST, "a slot out of range gets the defaults");
  env_free(&e);

  /* validation */
  static struct fx_input fi;
  char err[256];
  fx_input_init(&fi, FX_RING_A, 0);
  const uint32_t bad_slot[] = {7, 0, 100, 0, 0, 0};
  fi.in.timeout_words = bad_slot;
  fi.in.ntimeouts = 1;
  CHECK(l4_tables_build(&fi.in, err, sizeof(err)) == NULL && strstr(err, "service slot 7 does not exist"), "unused slot: %s", err);
  fx_input_init(&fi, FX_RING_A, 0);
  const uint32_t too_big[] = {0, 0, 0x80000000u, 0, 0, 0};
  fi.in.timeout_words = too_big;
  fi.in.ntimeouts = 1;
  CHECK(l4_tables_build(&fi.in, err, sizeof(err)) == NULL && strstr(err, "too large"), "huge value: %s", err);
}

struct page_seen {
  uint8_t seen[4096];
  int dup;
  uint64_t n;
};

static int page_visit(const struct l4_flow_view *v, void *arg) {
  struct page_seen *ps = arg;
  uint16_t port = (uint16_t)((v->key.cport >> 8) | (v->key.cport << 8));
  if (ps->seen[port]) ps->dup++;
  ps->seen[port] = 1;
  ps->n++;
  return 0;
}

static int stop_after_3(const struct l4_flow_view *v, void *arg) {
  (void)v;
  return ++*(int *)arg >= 3;
}

/* Paging: 500 flows listed in windows of 97 entries visit each flow exactly once; an early stop returns the
 * index after the entry it stopped at. */
void test_flow_walk_pages(void) {
  struct env e;
  env_init(&e, 1024, FX_RING_A, 0);
  struct pb_ip ip;
  struct pb_l4 l4;
  for (uint16_t p = 1000; p < 1500; p++) {
    spec_udp(&ip, &l4, 4, C4, p, VIP4, 53, 8);
    uint32_t n = bld(g_in, NULL, &ip, &l4);
    run_raw(&e, g_in, n, g_out, &g_out_len);
  }
  uint64_t live = l4_flow_count(&e.ft, &e.t->timeouts, e.ctx.now);
  static struct page_seen ps;
  memset(&ps, 0, sizeof(ps));
  uint64_t cursor = 0;
  int pages = 0;
  while (cursor < e.ft.capacity && pages < 1000) {
    cursor = l4_flow_walk(&e.ft, &e.t->timeouts, e.ctx.now, cursor, 97, page_visit, &ps);
    pages++;
  }
  CHECK(ps.n == live && ps.dup == 0, "paged walk saw %llu of %llu, %d twice", (unsigned long long)ps.n, (unsigned long long)live, ps.dup);
  CHECK(pages == (int)((e.ft.capacity + 96) / 97), "%d pages for %llu entries", pages, (unsigned long long)e.ft.capacity);
  int k = 0;
  uint64_t next = l4_flow_walk(&e.ft, &e.t->timeouts, e.ctx.now, 0, e.ft.capacity, stop_after_3, &k);
  CHECK(k == 3 && next > 0 && next < e.ft.capacity, "an early stop gives a cursor inside the table (%llu)", (unsigned long long)next);
  CHECK(l4_flow_walk(&e.ft, &e.t->timeouts, e.ctx.now, e.ft.capacity + 5, 10, page_visit, &ps) == e.ft.capacity, "a cursor past the end is the end");
  env_free(&e);
}

/* A mid-flow packet with no entry goes by the current ring to A; A does not know the flow and resets it: the
 * reset is swallowed and the flow pinned to B, which the ring before the change chose; the client's next
 * packet reaches B. The entry is a guess until B answers through it and the client acknowledges: half-open
 * until then. Without a previous ring, when it chose A too, or when B is down or drained (out of the current
 * ring), the reset goes to the client. */
void test_second_chance(void) {
  struct pb_ip ip;
  struct pb_l4 l4;
  struct l4_flow_ref r;
  struct env e;
  env_init_tables(&e, 1024, tables_with_previous(1, FX_BK_V4T_B, 0, true, 0));
  uint16_t port = port_to(&e, C4, 4001, FX_BK_V4T_A);
  spec_tcp(&ip, &l4, 4, C4, port, VIP4, 80, PB_TCP_ACK | PB_TCP_PSH, 100);
  CHECK(fx_fwd(&e, "mid-flow data without an entry goes by the current ring", NULL, &ip, &l4, B4A, 8080), "to A");
  CHECK(!flow_get(&e, 4, 6, C4, port, VIP4, 80, &r), "no entry yet");
  spec_tcp(&ip, &l4, 4, B4A, 8080, C4, port, PB_TCP_RST, 0);
  uint32_t n = bld(g_in, NULL, &ip, &l4);
  CHECK(run_raw(&e, g_in, n, g_out, &g_out_len) == L4_VERDICT_DROP && e.ctx.last_drop == L4_DROP_SECOND_CHANCE, "A's reset is swallowed");
  CHECK(flow_get(&e, 4, 6, C4, port, VIP4, 80, &r) && r.backend == FX_BK_V4T_B && r.state == 0, "the flow is pinned to B, unconfirmed (%#x)", r.state);
  CHECK(l4_flow_timeout(l4_timeouts_of(&e.t->timeouts, FX_SVC_V4_TCP), 6, r.state) == FX_TO_SYN, "with the SYN timeout");
  spec_tcp(&ip, &l4, 4, C4, port, VIP4, 80, PB_TCP_ACK | PB_TCP_PSH, 100);
  CHECK(fx_fwd(&e, "the retransmission reaches B", NULL, &ip, &l4, B4B, 8080), "to B");
  CHECK(flow_get(&e, 4, 6, C4, port, VIP4, 80, &r) && !(r.state & FL_EST), "the client alone does not confirm it (%#x)", r.state);
  spec_tcp(&ip, &l4, 4, B4B, 8080, C4, port, PB_TCP_ACK, 0);
  CHECK(fx_rev(&e, "B answers through the entry", NULL, &ip, &l4, VIP4, 80), "translated");
  spec_tcp(&ip, &l4, 4, C4, port, VIP4, 80, PB_TCP_ACK, 0);
  CHECK(fx_fwd(&e, "the client acknowledges", NULL, &ip, &l4, B4B, 8080), "to B");
  CHECK(flow_get(&e, 4, 6, C4, port, VIP4, 80, &r) && (r.state & FL_EST), "now established (%#x)", r.state);
  /* a guess B does not confirm: its reset goes through the entry to the client */
  port = port_to(&e, C4, (uint16_t)(port + 1), FX_BK_V4T_A);
  spec_tcp(&ip, &l4, 4, B4A, 8080, C4, port, PB_TCP_RST, 0);
  n = bld(g_in, NULL, &ip, &l4);
  CHECK(run_raw(&e, g_in, n, g_out, &g_out_len) == L4_VERDICT_DROP && e.ctx.last_drop == L4_DROP_SECOND_CHANCE, "A's reset is swallowed");
  spec_tcp(&ip, &l4, 4, B4B, 8080, C4, port, PB_TCP_RST, 0);
  CHECK(fx_rev(&e, "B's reset reaches the client", NULL, &ip, &l4, VIP4, 80), "translated");
  CHECK(l4_ctr_backend(&e.ctx, FX_BK_V4T_A)[L4_O_RESETS] == 0, "the swallowed resets do not count against A");
  env_free(&e);

  /* the previous ring's backend is down (flagged): the reset goes to the client, as on_down: reset wants */
  env_init_tables(&e, 1024, tables_with_previous(1, FX_BK_V4T_B, L4_BK_NO_SECOND_CHANCE, true, 0));
  port = port_to(&e, C4, 4004, FX_BK_V4T_A);
  spec_tcp(&ip, &l4, 4, B4A, 8080, C4, port, PB_TCP_RST, 0);
  CHECK(fx_rev(&e, "previous backend down: reset forwarded", NULL, &ip, &l4, VIP4, 80), "translated");
  CHECK(!flow_get(&e, 4, 6, C4, port, VIP4, 80, &r), "no entry");
  env_free(&e);
  /* the previous ring's backend is drained (weight 0: no slot in the current ring): the same */
  env_init_tables(&e, 1024, tables_with_previous(1, FX_BK_V4T_B, 0, false, 0));
  CHECK(!(e.t->backends[FX_BK_V4T_B].flags & L4_BK_IN_RING) && (e.t->backends[FX_BK_V4T_A].flags & L4_BK_IN_RING), "in-ring flags");
  spec_tcp(&ip, &l4, 4, B4A, 8080, C4, 4005, PB_TCP_RST, 0);
  CHECK(fx_rev(&e, "previous backend drained: reset forwarded", NULL, &ip, &l4, VIP4, 80), "translated");
  CHECK(!flow_get(&e, 4, 6, C4, 4005, VIP4, 80, &r), "no entry");
  env_free(&e);
  /* no previous ring: the reset goes to the client */
  env_init_tables(&e, 1024, tables_with_previous(0, FX_BK_V4T_B, 0, true, 0));
  port = port_to(&e, C4, 4002, FX_BK_V4T_A);
  spec_tcp(&ip, &l4, 4, B4A, 8080, C4, port, PB_TCP_RST, 0);
  CHECK(fx_rev(&e, "no previous ring: reset forwarded", NULL, &ip, &l4, VIP4, 80), "translated");
  env_free(&e);
  /* the previous ring chose A as well: the reset goes to the client */
  env_init_tables(&e, 1024, tables_with_previous(1, FX_BK_V4T_A, 0, true, 0));
  port = port_to(&e, C4, 4003, FX_BK_V4T_A);
  spec_tcp(&ip, &l4, 4, B4A, 8080, C4, port, PB_TCP_RST, 0);
  CHECK(fx_rev(&e, "same backend before: reset forwarded", NULL, &ip, &l4, VIP4, 80), "translated");
  env_free(&e);
  /* an input flag cannot claim a place in the ring */
  env_init_tables(&e, 1024, tables_with_previous(1, FX_BK_V4T_B, L4_BK_IN_RING, false, 0));
  CHECK(!(e.t->backends[FX_BK_V4T_B].flags & L4_BK_IN_RING), "L4_BK_IN_RING is computed, not taken from the input");
  env_free(&e);
  /* a previous ring holding another service's backend is refused */
  static struct fx_input fi;
  static const uint32_t bad[] = {FX_SVC_V4_TCP, 0, FX_RING_SIZE * 2}; /* services 0 and 1: backend 2 is service 1's */
  char err[256];
  fx_input_init(&fi, FX_RING_A, 0);
  fi.in.prev_ring_words = bad;
  fi.in.nprev_rings = 1;
  CHECK(l4_tables_build(&fi.in, err, sizeof(err)) == NULL && strstr(err, "previous ring holds backend slot"), "refused: %s", err);
}
