/* The verdict trace (core/trace.h) through the real data path: a packet a match takes leaves one record saying
 * what it was, what it became and why; one it does not take leaves none; a drop records its reason; a full ring
 * counts what it could not keep; and tracing changes no byte of what is written. */
#include <stdio.h>
#include <string.h>

#include "test_util.h"
#include "tests.h"

static struct l4_trace_ring g_ring;
static uint64_t fake_ns;
static uint64_t fake_clock(void) { return fake_ns += 1000; }

/* Tracing on for e with the one match m (in slot `slot`), over an empty ring. */
static struct l4_trace *trace_on(struct env *e, uint32_t slot, struct l4_trace_match m) {
  static struct l4_trace tr;
  memset(&tr, 0, sizeof(tr));
  memset(&g_ring, 0, sizeof(g_ring));
  m.flags |= L4_TM_ACTIVE;
  tr.match[slot] = m;
  tr.ring = &g_ring;
  tr.clock_ns = fake_clock;
  tr.queue = 3;
  e->ctx.trace = &tr;
  return &tr;
}

static struct l4_trace_match client_match(const char *addr, uint16_t port) {
  struct l4_trace_match m = {.flags = L4_TM_CLIENT | (port ? L4_TM_CLIENT_PORT : 0), .client_family = 4, .cport = port};
  pb_addr(4, addr, m.client);
  return m;
}

static enum l4_verdict tcp(struct env *e, const char *src, uint16_t sport, const char *dst, uint16_t dport, uint8_t flags,
                           uint32_t seq, uint32_t ack, uint32_t paylen) {
  struct pb_ip ip;
  struct pb_l4 l4;
  spec_tcp(&ip, &l4, 4, src, sport, dst, dport, flags, paylen);
  l4.seq = seq;
  l4.ack = ack;
  uint32_t n = bld(g_in, NULL, &ip, &l4);
  return run_raw(e, g_in, n, g_out, &g_out_len);
}

static bool addr_is(const uint8_t *a, const char *want) {
  uint8_t w[16] = {0};
  pb_addr(4, want, w);
  return memcmp(a, w, 16) == 0;
}

static struct l4_trace_rec next_rec(void) {
  struct l4_trace_rec r;
  memset(&r, 0xee, sizeof(r));
  CHECK(l4_trace_ring_read(&g_ring, &r, 1) == 1, "a record");
  return r;
}

void test_trace_records(void) {
  struct env e;
  env_init(&e, 1024, FX_RING_A, 0);
  trace_on(&e, 2, client_match(C4, 40000));

  /* The SYN: a new entry, the ring's slot and backend, the tuple before and after. */
  CHECK(tcp(&e, C4, 40000, VIP4, 80, PB_TCP_SYN, 1000, 0, 0) == L4_VERDICT_TX, "SYN forwarded");
  CHECK(l4_trace_ring_pending(&g_ring) == 1, "one record");
  struct l4_trace_rec r = next_rec();
  CHECK(r.dir == L4_TD_FORWARD && r.flow == L4_TF_NEW && r.verdict == 1, "forward, new entry (dir %u flow %u)", r.dir, r.flow);
  CHECK(r.service == FX_SVC_V4_TCP && r.backend == FX_BK_V4T_A, "service %u backend %u", r.service, r.backend);
  CHECK(r.ring_slot < FX_RING_SIZE, "a ring slot (%u)", r.ring_slot);
  CHECK(addr_is(r.saddr, C4) && addr_is(r.daddr, VIP4) && r.sport == 40000 && r.dport == 80, "before: client -> VIP:80");
  CHECK(addr_is(r.out_saddr, C4) && addr_is(r.out_daddr, B4A) && r.out_sport == 40000 && r.out_dport == 8080,
        "after: client -> backend A:8080 (%u -> %u)", r.out_sport, r.out_dport);
  CHECK(r.family == 4 && r.proto == 6 && r.tcp_flags == PB_TCP_SYN && r.seq == 1000 && r.payload_len == 0, "TCP SYN seq 1000");
  CHECK(r.match_mask == 1u << 2 && r.queue == 3 && r.time_ns == fake_ns && r.drop_reason == L4_DROP_NONE, "match 2, queue 3, time");

  /* The SYN-ACK: a reply, the entry hit, the client is the destination. */
  CHECK(tcp(&e, B4A, 8080, C4, 40000, PB_TCP_SYN | PB_TCP_ACK, 5000, 1001, 0) == L4_VERDICT_TX, "SYN-ACK translated");
  r = next_rec();
  CHECK(r.dir == L4_TD_REPLY && r.flow == L4_TF_HIT && r.backend == FX_BK_V4T_A, "reply, hit (dir %u flow %u)", r.dir, r.flow);
  CHECK(addr_is(r.out_saddr, VIP4) && r.out_sport == 80 && addr_is(r.out_daddr, C4), "after: VIP:80 -> client");
  CHECK(r.ack == 1001 && r.seq == 5000, "seq and ack as read");

  /* Data on the entry: a hit, no ring slot, its payload length. */
  CHECK(tcp(&e, C4, 40000, VIP4, 80, PB_TCP_ACK | PB_TCP_PSH, 1001, 5001, 100) == L4_VERDICT_TX, "data forwarded");
  r = next_rec();
  CHECK(r.flow == L4_TF_HIT && r.ring_slot == L4_NO_BACKEND && r.payload_len == 100, "hit, 100 bytes (flow %u len %u)", r.flow, r.payload_len);

  /* Another client, and another port of this one: no record. */
  CHECK(tcp(&e, C4B, 40000, VIP4, 80, PB_TCP_SYN, 1, 0, 0) == L4_VERDICT_TX, "other client forwarded");
  CHECK(tcp(&e, C4, 40001, VIP4, 80, PB_TCP_SYN, 1, 0, 0) == L4_VERDICT_TX, "other port forwarded");
  CHECK(l4_trace_ring_pending(&g_ring) == 0, "nothing recorded for packets the match does not take");

  /* A mid-flow packet without an entry: forwarded by the ring, no entry. */
  trace_on(&e, 0, client_match(C4, 0));
  CHECK(tcp(&e, C4, 41000, VIP4, 80, PB_TCP_ACK, 1, 1, 10) == L4_VERDICT_TX, "non-SYN forwarded");
  r = next_rec();
  CHECK(r.flow == L4_TF_NO_ENTRY && r.backend == FX_BK_V4T_A && r.ring_slot < FX_RING_SIZE, "no entry, by the ring (flow %u)", r.flow);
  env_free(&e);
}

void test_trace_drops(void) {
  /* deny 198.51.100.8/32 on the v4 TCP service */
  const uint32_t acl[] = {FX_SVC_V4_TCP, 1, 32};
  const char *const addrs[] = {C4B};
  struct env e;
  env_init_tables(&e, 1024, protected_tables(acl, addrs, 1, 0, 0));
  struct l4_trace_match drops = {.flags = L4_TM_DROPS};
  trace_on(&e, 0, drops);
  CHECK(tcp(&e, C4, 40000, VIP4, 80, PB_TCP_SYN, 1, 0, 0) == L4_VERDICT_TX, "allowed source forwarded");
  CHECK(l4_trace_ring_pending(&g_ring) == 0, "drops only: a forwarded packet leaves no record");
  CHECK(tcp(&e, C4B, 40000, VIP4, 80, PB_TCP_SYN, 1, 0, 0) == L4_VERDICT_DROP, "denied source dropped");
  struct l4_trace_rec r = next_rec();
  CHECK(r.verdict == 0 && r.drop_reason == L4_DROP_ACL_DENIED && r.dir == L4_TD_FORWARD, "acl_denied recorded (reason %u)", r.drop_reason);
  CHECK(r.service == FX_SVC_V4_TCP && r.backend == L4_NO_BACKEND, "the service, no backend");
  CHECK(addr_is(r.out_daddr, VIP4) && r.out_dport == 80, "dropped: after is as read");

  /* A service match: by VIP, port and protocol. */
  struct l4_trace_match svc = {.flags = L4_TM_SERVICE, .svc_family = 4, .svc_proto = 6, .vport = 80};
  pb_addr(4, VIP4, svc.vip);
  trace_on(&e, 1, svc);
  CHECK(tcp(&e, C4B, 40001, VIP4, 80, PB_TCP_SYN, 1, 0, 0) == L4_VERDICT_DROP, "denied again");
  CHECK(tcp(&e, C4, 40002, VIP4, 443, PB_TCP_SYN, 1, 0, 0) == L4_VERDICT_DROP, "no service on port 443");
  r = next_rec();
  CHECK(r.drop_reason == L4_DROP_ACL_DENIED && r.match_mask == 2, "the service's drop recorded");
  CHECK(l4_trace_ring_pending(&g_ring) == 0, "vip_port_unknown is no packet of the service");

  /* A parse failure with a drops-only match: recorded without a tuple. */
  trace_on(&e, 0, drops);
  uint8_t junk[VNET_HDR_LEN + 8] = {0};
  junk[VNET_HDR_LEN] = 0x45;
  CHECK(run_raw(&e, junk, sizeof(junk), g_out, &g_out_len) == L4_VERDICT_DROP, "junk dropped");
  r = next_rec();
  CHECK(r.drop_reason != L4_DROP_NONE && r.dir == L4_TD_NONE && r.family == 0, "a parse drop, no tuple (reason %u)", r.drop_reason);
  env_free(&e);
}

void test_trace_backend_ring_full(void) {
  struct env e;
  env_init(&e, 4096, FX_RING_A, 0);
  struct l4_trace_match bk = {.flags = L4_TM_BACKEND, .bk_family = 4, .bport = 8080};
  pb_addr(4, B4A, bk.backend);
  trace_on(&e, 0, bk);
  uint32_t n = L4_TRACE_RING_RECORDS + 5;
  for (uint32_t i = 0; i < n; i++) tcp(&e, C4, (uint16_t)(1000 + i), VIP4, 80, PB_TCP_SYN, 1, 0, 0);
  CHECK(l4_trace_ring_pending(&g_ring) == L4_TRACE_RING_RECORDS, "the ring holds its size (%u)", l4_trace_ring_pending(&g_ring));
  CHECK(atomic_load(&g_ring.dropped) == 5, "the rest counted as dropped (%lu)", (unsigned long)atomic_load(&g_ring.dropped));
  struct l4_trace_rec r = next_rec();
  CHECK(r.sport == 1000, "oldest first: nothing overwritten (port %u)", r.sport);
  /* The other backend's packets are not taken. */
  memset(&g_ring, 0, sizeof(g_ring));
  CHECK(tcp(&e, B4B, 8080, C4, 999, PB_TCP_ACK, 1, 1, 0) == L4_VERDICT_TX, "B's reply translated");
  CHECK(l4_trace_ring_pending(&g_ring) == 0, "not backend A's");

  /* Traced or not, the same bytes leave. */
  struct pb_ip ip;
  struct pb_l4 l4;
  spec_tcp(&ip, &l4, 4, C4, 40000, VIP4, 80, PB_TCP_ACK, 64);
  fx_fwd(&e, "traced packet => 10.0.1.1:8080, byte for byte", NULL, &ip, &l4, B4A, 8080);
  CHECK(l4_trace_ring_pending(&g_ring) == 1, "and recorded");
  env_free(&e);
}
