/* Per-service protections through the real data path: source CIDR allow/deny lists and the per-source
 * new-flow rate limit (token bucket), plus the UDP-over-IPv6 zero-checksum and echo-checksum policies. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test_util.h"
#include "tests.h"

/* Fixture tables plus protections on the v4 TCP service (slot FX_SVC_V4_TCP); see test_util.h. */
struct l4_tables *protected_tables(const uint32_t *acl, const char *const *acl_addrs, uint32_t nacl,
                                          uint32_t rate, uint32_t burst) {
  static struct fx_input fi;
  static uint32_t limit[L4_LIMIT_WORDS];
  static uint8_t addrs[8 * 16];
  fx_input_init(&fi, FX_RING_A, 0);
  if (rate) {
    limit[0] = FX_SVC_V4_TCP;
    limit[1] = rate;
    limit[2] = burst;
    fi.in.limit_words = limit;
    fi.in.nlimits = 1;
  }
  memset(addrs, 0, sizeof(addrs));
  for (uint32_t i = 0; i < nacl; i++) pb_addr(4, acl_addrs[i], addrs + i * 16);
  fi.in.acl_words = acl;
  fi.in.nacl = nacl;
  fi.in.acl_addrs = addrs;
  char err[256];
  struct l4_tables *t = l4_tables_build(&fi.in, err, sizeof(err));
  if (!t) {
    fprintf(stderr, "protected_tables: %s\n", err);
    abort();
  }
  return t;
}

/* a SYN from src:sport to VIP4:80; returns the verdict */
static enum l4_verdict syn_from(struct env *e, const char *src, uint16_t sport) {
  struct pb_ip ip;
  struct pb_l4 l4;
  spec_tcp(&ip, &l4, 4, src, sport, VIP4, 80, PB_TCP_SYN, 0);
  uint32_t n = bld(g_in, NULL, &ip, &l4);
  return run_raw(e, g_in, n, g_out, &g_out_len);
}

void test_acl_allow_deny(void) {
  /* allow 198.51.100.0/24, but deny 198.51.100.8/32 */
  const uint32_t acl[] = {FX_SVC_V4_TCP, 0, 24, FX_SVC_V4_TCP, 1, 32};
  const char *const addrs[] = {"198.51.100.99", "198.51.100.8"}; /* host bits of the /24 are masked off */
  struct env e;
  env_init_tables(&e, 1024, protected_tables(acl, addrs, 2, 0, 0));
  CHECK(syn_from(&e, C4, 1000) == L4_VERDICT_TX, "198.51.100.7 is inside the allowed /24");
  CHECK(syn_from(&e, C4B, 1000) == L4_VERDICT_DROP && e.ctx.last_drop == L4_DROP_ACL_DENIED, "198.51.100.8 is denied (deny wins)");
  CHECK(syn_from(&e, "203.0.113.5", 1000) == L4_VERDICT_DROP && e.ctx.last_drop == L4_DROP_ACL_DENIED, "outside every allow entry");
  CHECK(env_drops(&e, L4_DROP_ACL_DENIED) == 2, "counted as acl_denied");
  /* other services are not affected */
  struct pb_ip ip;
  struct pb_l4 l4;
  spec_udp(&ip, &l4, 4, "203.0.113.5", 5000, VIP4, 53, 8);
  uint32_t n = bld(g_in, NULL, &ip, &l4);
  CHECK(run_raw(&e, g_in, n, g_out, &g_out_len) == L4_VERDICT_TX, "the UDP service has no list");
  env_free(&e);

  /* deny-only list: everything else passes */
  const uint32_t deny[] = {FX_SVC_V4_TCP, 1, 16};
  const char *const daddr[] = {"203.0.0.0"};
  env_init_tables(&e, 1024, protected_tables(deny, daddr, 1, 0, 0));
  CHECK(syn_from(&e, C4, 1000) == L4_VERDICT_TX, "not in the denied /16");
  CHECK(syn_from(&e, "203.0.113.5", 1000) == L4_VERDICT_DROP, "in the denied /16");
  env_free(&e);
}

void test_acl_validation(void) {
  static struct fx_input fi;
  char err[256];
  uint8_t addr[16] = {10};
  fx_input_init(&fi, FX_RING_A, 0);
  const uint32_t too_long[] = {FX_SVC_V4_TCP, 0, 33};
  fi.in.acl_words = too_long;
  fi.in.nacl = 1;
  fi.in.acl_addrs = addr;
  CHECK(l4_tables_build(&fi.in, err, sizeof(err)) == NULL && strstr(err, "prefix length 33 longer than 32"), "v4 /33: %s", err);
  const uint32_t bad_action[] = {FX_SVC_V4_TCP, 2, 8};
  fi.in.acl_words = bad_action;
  CHECK(l4_tables_build(&fi.in, err, sizeof(err)) == NULL && strstr(err, "action must be 0 (allow) or 1 (deny)"), "action 2: %s", err);
  const uint32_t no_svc[] = {7, 0, 8};
  fi.in.acl_words = no_svc;
  CHECK(l4_tables_build(&fi.in, err, sizeof(err)) == NULL && strstr(err, "service slot 7 does not exist"), "service: %s", err);
  fi.in.nacl = 0;
  const uint32_t no_burst[] = {FX_SVC_V4_TCP, 10, 0};
  fi.in.limit_words = no_burst;
  fi.in.nlimits = 1;
  CHECK(l4_tables_build(&fi.in, err, sizeof(err)) == NULL && strstr(err, "needs a burst"), "burst 0: %s", err);
}

void test_rate_limit(void) {
  struct env e;
  struct l4_ratelimit rl;
  CHECK(l4_ratelimit_init(&rl, 1024) == 0, "init");
  env_init_tables(&e, 4096, protected_tables(NULL, NULL, 0, 10, 5)); /* 10 new flows/s, bursts of 5 */
  e.ctx.ratelimit = &rl;
  e.ctx.now_ms = 5000;
  int ok = 0;
  for (uint16_t p = 1; p <= 8; p++) ok += syn_from(&e, C4, p) == L4_VERDICT_TX;
  CHECK(ok == 5, "a burst of 5 new flows, got %d", ok);
  CHECK(env_drops(&e, L4_DROP_RATE_LIMITED) == 3, "3 counted as rate_limited");
  CHECK(syn_from(&e, C4B, 1) == L4_VERDICT_TX, "another client has its own bucket");
  /* an admitted flow is not limited: its retransmitted SYN and data pass */
  CHECK(syn_from(&e, C4, 1) == L4_VERDICT_TX, "a live flow's SYN again");
  e.ctx.now_ms += 100; /* 100 ms at 10/s refills one token */
  CHECK(syn_from(&e, C4, 100) == L4_VERDICT_TX, "one token after 100 ms");
  CHECK(syn_from(&e, C4, 101) == L4_VERDICT_DROP, "and only one");
  e.ctx.now_ms += 10000; /* refill caps at the burst */
  ok = 0;
  for (uint16_t p = 200; p < 210; p++) ok += syn_from(&e, C4, p) == L4_VERDICT_TX;
  CHECK(ok == 5, "refill capped at the burst, got %d", ok);
  /* the 32-bit ms clock wraps: a client drains its bucket just before, and it refills just after */
  e.ctx.now_ms = 0xfffffff0u;
  ok = 0;
  for (uint16_t p = 300; p < 306; p++) ok += syn_from(&e, "198.51.100.50", p) == L4_VERDICT_TX;
  CHECK(ok == 5, "a fresh bucket before the wrap gives the burst, got %d", ok);
  e.ctx.now_ms = 0x00000100u; /* 272 ms later: 2 tokens */
  ok = 0;
  for (uint16_t p = 400; p < 404; p++) ok += syn_from(&e, "198.51.100.50", p) == L4_VERDICT_TX;
  CHECK(ok == 2, "refilled across the wrap by 272 ms worth (2 tokens), got %d", ok);
  env_free(&e);
  l4_ratelimit_destroy(&rl);
}

void test_udp6_zero_csum_dropped(void) {
  struct env e;
  env_init(&e, 1024, FX_RING_A, 0);
  struct pb_ip ip;
  struct pb_l4 l4;
  spec_udp(&ip, &l4, 6, C6, 5000, VIP6, 53, 8);
  uint32_t n = bld(g_in, NULL, &ip, &l4);
  /* zero the UDP checksum (RFC 8200 8.1: invalid over IPv6) */
  struct pb_info info;
  pb_parse(g_in + PB_VNET_LEN, n - PB_VNET_LEN, &info);
  g_in[PB_VNET_LEN + info.l4_off + 6] = 0;
  g_in[PB_VNET_LEN + info.l4_off + 7] = 0;
  CHECK(expect_drop(&e, "UDP/IPv6 with checksum 0", g_in, n, L4_DROP_BAD_L4_HEADER), "dropped as bad_l4_header");
  env_free(&e);
}

void test_synack_pickup_half_open(void) {
  struct env e;
  env_init(&e, 1024, FX_RING_A, 0);
  struct pb_ip ip;
  struct pb_l4 l4;
  /* backend A answers a SYN l4nat has no entry for (evicted): the pick-up is half-open, not established */
  spec_tcp(&ip, &l4, 4, FX_BACKENDS[FX_BK_V4T_A].addr, FX_BACKENDS[FX_BK_V4T_A].port, C4, 4242, PB_TCP_SYN | PB_TCP_ACK, 0);
  uint32_t n = bld(g_in, NULL, &ip, &l4);
  CHECK(run_raw(&e, g_in, n, g_out, &g_out_len) == L4_VERDICT_TX, "SYN-ACK translated");
  struct l4_flow_ref r;
  CHECK(flow_get(&e, 4, 6, C4, 4242, VIP4, 80, &r) && !(r.state & FL_EST) && (r.state & FL_SYN), "picked up half-open (state %#x)", r.state);
  /* a mid-flow ACK from the backend is picked up unconfirmed: established only with the client's answer */
  spec_tcp(&ip, &l4, 4, FX_BACKENDS[FX_BK_V4T_A].addr, FX_BACKENDS[FX_BK_V4T_A].port, C4, 4343, PB_TCP_ACK, 10);
  n = bld(g_in, NULL, &ip, &l4);
  CHECK(run_raw(&e, g_in, n, g_out, &g_out_len) == L4_VERDICT_TX, "ACK translated");
  CHECK(flow_get(&e, 4, 6, C4, 4343, VIP4, 80, &r) && r.state == FL_REPLY, "picked up unconfirmed (state %#x)", r.state);
  spec_tcp(&ip, &l4, 4, C4, 4343, VIP4, 80, PB_TCP_ACK, 0);
  n = bld(g_in, NULL, &ip, &l4);
  CHECK(run_raw(&e, g_in, n, g_out, &g_out_len) == L4_VERDICT_TX, "the client's ACK forwarded");
  CHECK(flow_get(&e, 4, 6, C4, 4343, VIP4, 80, &r) && (r.state & FL_EST), "confirmed: established (state %#x)", r.state);
  env_free(&e);
}
