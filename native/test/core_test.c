/* Packet-core tests in the style of Katran's packet fixtures: {description, input packet, expected output
 * packet, expected verdict + drop reason}, run through the real l4_process with real tables (built by
 * l4_tables_build from the word arrays TypeScript hands over) and a real flow table. Expected packets are
 * built independently by pkt_builder (checksums from scratch) and compared byte for byte.
 *
 * Usage: core_test [--write-corpus DIR] [substring...]   (runs the tests whose name contains a substring)
 * Prints one line per test and ends with "N passed, M failed"; exits non-zero on any failure.
 *
 * This file: main, units (entry size, SipHash, builder, table validation), translation, GSO, partial
 * checksums. Flows, ICMP, malformed input and threads live in core_test_{flows,icmp,malformed,mt}.c. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "../core/csum.h"
#include "siphash_vectors.h"
#include "test_util.h"
#include "tests.h"

/* ------------------------------------------------------------------------------------------------------ */
/* units */

void test_flow_entry_size(void) {
  CHECK(sizeof(struct l4_flow) == 64, "sizeof(struct l4_flow) = %zu", sizeof(struct l4_flow));
  CHECK(sizeof(struct l4_flow_key) == 40, "sizeof(struct l4_flow_key) = %zu", sizeof(struct l4_flow_key));
  struct l4_flow_table ft = {0};
  CHECK(l4_flow_table_init(&ft, 1000) == 0, "init");
  CHECK(ft.capacity == 1024 && ft.nbuckets == 128, "capacity %llu buckets %llu", (unsigned long long)ft.capacity,
        (unsigned long long)ft.nbuckets);
  CHECK(((uintptr_t)ft.entries & 63) == 0, "entries are cache-line aligned");
  l4_flow_table_destroy(&ft);
}

void test_siphash_vectors(void) {
  uint8_t kb[16], msg[64];
  for (int i = 0; i < 16; i++) kb[i] = (uint8_t)i;
  for (int i = 0; i < 64; i++) msg[i] = (uint8_t)i;
  struct siphash_key key;
  siphash_key_from_bytes(&key, kb);
  for (int len = 0; len < 64; len++) {
    uint64_t h = siphash24(&key, msg, (size_t)len);
    CHECK(h == SIPHASH24_VECTORS[len], "len %d: got %016llx want %016llx", len, (unsigned long long)h,
          (unsigned long long)SIPHASH24_VECTORS[len]);
  }
  CHECK(siphash24(&key, msg, 0) == 0x726fdb47dd0e0e31ULL, "empty message");
  CHECK(siphash24(&key, msg, 15) == 0xa129ca6149be45e5ULL, "15 bytes 00..0e (the paper's example)");
}

void test_builder_selfcheck(void) {
  /* RFC 1071 section 3 example: 00 01 f2 03 f4 f5 f6 f7 sums to ddf2 */
  static const uint8_t rfc[8] = {0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7};
  CHECK(pb_fold(pb_sum(0, rfc, 8)) == 0xddf2, "RFC 1071 example: %04x", pb_fold(pb_sum(0, rfc, 8)));
  /* A well-known IPv4 header: 4500 0073 0000 4000 4011 b861 c0a8 0001 c0a8 00c7 */
  struct pb_ip ip;
  struct pb_l4 l4;
  pb_ip4(&ip, "192.168.0.1", "192.168.0.199");
  ip.id = 0;
  ip.ttl = 64;
  pb_udp(&l4, 1, 2);
  l4.payload = PAY;
  l4.payload_len = 0x73 - 28;
  uint8_t pkt[256];
  uint32_t n = pb_build_ip(pkt, sizeof(pkt), &ip, &l4);
  static const uint8_t hdr[20] = {0x45, 0, 0, 0x73, 0, 0, 0x40, 0, 0x40, 0x11, 0xb8, 0x61, 0xc0, 0xa8, 0, 1, 0xc0, 0xa8, 0, 0xc7};
  CHECK(n == 0x73 && memcmp(pkt, hdr, 20) == 0, "IPv4 header bytes (checksum b861)");
  CHECK(pb_ip4_hdr_sum(pkt) == 0xffff && pb_l4_sum(pkt, n) == 0xffff, "sums verify");
  /* The builder's sum and csum.h's memory-order sum must agree on odd and even lengths. */
  for (uint32_t len = 0; len < 300; len++) {
    uint16_t a = pb_fold(pb_sum(0, PAY + 1, len));
    uint16_t c = csum_fold(csum_add_buf(0, PAY + 1, len));
    uint8_t cb[2];
    memcpy(cb, &c, 2);
    CHECK(a == pb_be16(cb), "len %u: builder %04x, csum.h %04x (as bytes)", len, a, pb_be16(cb));
  }
  /* Partial + finish == full, for TCP and UDP, v4 and v6. */
  for (int fam = 4; fam <= 6; fam += 2) {
    for (int proto = 6; proto <= 17; proto += 11) {
      struct pb_ip ip2;
      struct pb_l4 a, b;
      if (proto == 6) spec_tcp(&ip2, &a, (uint8_t)fam, fam == 4 ? C4 : C6, 1234, fam == 4 ? VIP4 : VIP6, 80, PB_TCP_ACK, 101);
      else spec_udp(&ip2, &a, (uint8_t)fam, fam == 4 ? C4 : C6, 1234, fam == 4 ? VIP4 : VIP6, 53, 101);
      b = a;
      b.csum = PB_CSUM_PARTIAL;
      uint8_t full[400], part[400];
      uint32_t nf = pb_build_ip(full, sizeof(full), &ip2, &a), np = pb_build_ip(part, sizeof(part), &ip2, &b);
      struct pb_info in;
      pb_parse(part, np, &in);
      pb_finish_partial(part, np, (uint16_t)in.l4_off, proto == 6 ? 16 : 6, proto == 17);
      CHECK(nf == np && memcmp(full, part, nf) == 0, "v%d proto %d: partial + finish == full", fam, proto);
      CHECK(pb_l4_sum(full, nf) == 0xffff, "v%d proto %d: full checksum verifies", fam, proto);
    }
  }
}

/* Table validation. fx_input describes the fixture setup; each case breaks one thing. */
static void add_service(struct fx_input *fi, uint32_t slot, const char *vip, uint8_t fam, uint8_t proto, uint16_t port) {
  uint32_t i = fi->in.nservices++;
  uint32_t *w = fi->svc_words + i * L4_SVC_WORDS;
  w[0] = slot, w[1] = fam, w[2] = proto, w[3] = 0, w[4] = port, w[5] = 0, w[6] = 0, w[7] = 0;
  pb_addr(fam, vip, fi->svc_addrs + i * 16);
}
static void add_backend(struct fx_input *fi, uint32_t slot, uint32_t svc, const char *addr, uint8_t fam, uint8_t proto,
                        uint16_t port) {
  uint32_t i = fi->in.nbackends++;
  uint32_t *w = fi->bk_words + i * L4_BK_WORDS;
  w[0] = slot, w[1] = svc, w[2] = fam, w[3] = proto, w[4] = port, w[5] = 0;
  pb_addr(fam, addr, fi->bk_addrs + i * 16);
}

static void expect_build_error(struct fx_input *fi, const char *desc, const char *needle) {
  char err[256] = "";
  struct l4_tables *t = l4_tables_build(&fi->in, err, sizeof(err));
  CHECK(t == NULL, "%s: built, expected an error", desc);
  CHECK(strstr(err, needle) != NULL, "%s: message \"%s\" lacks \"%s\"", desc, err, needle);
  l4_tables_free(t);
}

void test_tables_validation(void) {
  static struct fx_input fi;
  char err[256];
  fx_input_init(&fi, FX_RING_A, 0);
  struct l4_tables *t = l4_tables_build(&fi.in, err, sizeof(err));
  CHECK(t != NULL, "fixture tables build: %s", err);
  if (t) {
    const struct l4_service *s = &t->services[FX_SVC_V4_TCP];
    CHECK(pb_be16((const uint8_t *)&s->port) == 80, "service port stored in network order");
    CHECK(pb_be16((const uint8_t *)&t->backends[FX_BK_V4T_A].port) == 8080, "backend port stored in network order");
  }
  l4_tables_free(t);

  /* the same (backend address, port, proto) in two services: replies would be ambiguous */
  fx_input_init(&fi, FX_RING_A, 0);
  add_service(&fi, 5, "10.200.0.12", 4, 6, 80);
  add_backend(&fi, 10, 5, B4A, 4, 6, 8080);
  expect_build_error(&fi, "duplicate backend across services", "ambiguous");
  /* the same address and port with another protocol is fine */
  fx_input_init(&fi, FX_RING_A, 0);
  add_service(&fi, 5, "10.200.0.12", 4, 17, 80);
  add_backend(&fi, 10, 5, B4A, 4, 17, 8080);
  t = l4_tables_build(&fi.in, err, sizeof(err));
  CHECK(t != NULL, "same backend address+port, other protocol: %s", err);
  l4_tables_free(t);
  /* ... and so is the same address on another port */
  fx_input_init(&fi, FX_RING_A, 0);
  add_service(&fi, 5, "10.200.0.12", 4, 6, 80);
  add_backend(&fi, 10, 5, B4A, 4, 6, 8081);
  t = l4_tables_build(&fi.in, err, sizeof(err));
  CHECK(t != NULL, "same backend address, other port: %s", err);
  l4_tables_free(t);

  fx_input_init(&fi, FX_RING_A, 0);
  add_service(&fi, 5, VIP4, 4, 6, 80);
  expect_build_error(&fi, "duplicate VIP:port/proto", "used by another service");
  fx_input_init(&fi, FX_RING_A, 0);
  fi.svc_words[1 * L4_SVC_WORDS + 0] = 0;
  expect_build_error(&fi, "service slot used twice", "used twice");
  fx_input_init(&fi, FX_RING_A, 0);
  fi.svc_words[1] = 5;
  expect_build_error(&fi, "bad family", "family must be 4 or 6");
  fx_input_init(&fi, FX_RING_A, 0);
  fi.svc_words[2] = 1;
  expect_build_error(&fi, "bad proto", "proto must be 6");
  fx_input_init(&fi, FX_RING_A, 0);
  fi.svc_words[4] = 0;
  expect_build_error(&fi, "port 0", "port must be 1-65535");
  fx_input_init(&fi, FX_RING_A, 0);
  fi.svc_words[4] = 65536;
  expect_build_error(&fi, "port 65536", "port must be 1-65535");
  fx_input_init(&fi, FX_RING_A, 0);
  fi.svc_words[0] = FX_MAX_SERVICES;
  expect_build_error(&fi, "service slot out of range", "out of range");
  fx_input_init(&fi, FX_RING_A, 0);
  fi.svc_words[5] = FX_NSVC * FX_RING_SIZE - 3;
  expect_build_error(&fi, "ring outside the rings array", "outside rings");
  fx_input_init(&fi, FX_RING_A, 0);
  fi.rings[0] = FX_BK_V4U_A; /* the TCP service's ring holds a UDP service's backend */
  expect_build_error(&fi, "ring holds another service's backend", "of another service");
  fx_input_init(&fi, FX_RING_A, 0);
  fi.rings[0] = 15; /* no backend in slot 15 */
  expect_build_error(&fi, "ring holds a missing backend", "does not exist");
  fx_input_init(&fi, FX_RING_A, 0);
  fi.bk_words[0 * L4_BK_WORDS + 1] = 7; /* service slot 7 is empty */
  expect_build_error(&fi, "backend of a missing service", "does not exist");
  fx_input_init(&fi, FX_RING_A, 0);
  fi.bk_words[0 * L4_BK_WORDS + 2] = 6; /* a v6 backend in a v4 service */
  expect_build_error(&fi, "backend family mismatch", "family 6 differs");
  fx_input_init(&fi, FX_RING_A, 0);
  fi.bk_words[0 * L4_BK_WORDS + 3] = 17;
  expect_build_error(&fi, "backend proto mismatch", "proto 17 differs");
  fx_input_init(&fi, FX_RING_A, 0);
  fi.bk_words[1 * L4_BK_WORDS + 0] = 0;
  expect_build_error(&fi, "backend slot used twice", "used twice");
  fx_input_init(&fi, FX_RING_A, 0);
  fi.in.nservices = FX_MAX_SERVICES + 1;
  expect_build_error(&fi, "too many services", "exceed max_services");
}

/* ------------------------------------------------------------------------------------------------------ */
/* translation */

void test_translate_v4_v6_tcp_udp(void) {
  struct env e;
  env_init(&e, 1024, FX_RING_A, 0);
  struct pb_ip ip;
  struct pb_l4 l4;

  spec_tcp(&ip, &l4, 4, C4, 40000, VIP4, 80, PB_TCP_SYN, 20); /* a SYN with Fast Open data */
  fx_fwd(&e, "v4 tcp SYN+data client->VIP:80 => 10.0.1.1:8080", NULL, &ip, &l4, B4A, 8080);
  spec_tcp(&ip, &l4, 4, B4A, 8080, C4, 40000, PB_TCP_SYN | PB_TCP_ACK, 0);
  fx_rev(&e, "v4 tcp SYN-ACK 10.0.1.1:8080->client => from VIP:80", NULL, &ip, &l4, VIP4, 80);
  spec_tcp(&ip, &l4, 4, C4, 40000, VIP4, 80, PB_TCP_ACK | PB_TCP_PSH, 1337); /* odd payload length */
  fx_fwd(&e, "v4 tcp data, odd length", NULL, &ip, &l4, B4A, 8080);
  spec_tcp(&ip, &l4, 4, B4A, 8080, C4, 40000, PB_TCP_ACK | PB_TCP_PSH, 999);
  fx_rev(&e, "v4 tcp reply data, odd length", NULL, &ip, &l4, VIP4, 80);

  /* IPv4 options (NOP x3 + EOL, then router alert) are carried through untouched */
  spec_tcp(&ip, &l4, 4, C4, 40001, VIP4, 80, PB_TCP_SYN, 0);
  static const uint8_t ipopts[8] = {1, 1, 1, 0, 0x94, 4, 0, 0};
  memcpy(ip.opts, ipopts, sizeof(ipopts));
  ip.opts_len = sizeof(ipopts);
  fx_fwd(&e, "v4 tcp with IP options (IHL 7)", NULL, &ip, &l4, B4A, 8080);

  spec_udp(&ip, &l4, 4, C4, 5000, VIP4, 53, 33);
  fx_fwd(&e, "v4 udp client->VIP:53 => 10.0.1.1:5353", NULL, &ip, &l4, B4A, 5353);
  spec_udp(&ip, &l4, 4, B4A, 5353, C4, 5000, 120);
  fx_rev(&e, "v4 udp 10.0.1.1:5353->client => from VIP:53", NULL, &ip, &l4, VIP4, 53);

  spec_tcp(&ip, &l4, 6, C6, 40000, VIP6, 80, PB_TCP_SYN, 0);
  fx_fwd(&e, "v6 tcp SYN client->[VIP]:80 => [fd4c:1::1]:8080", NULL, &ip, &l4, B6A, 8080);
  spec_tcp(&ip, &l4, 6, B6A, 8080, C6, 40000, PB_TCP_SYN | PB_TCP_ACK, 0);
  fx_rev(&e, "v6 tcp SYN-ACK => from [VIP]:80", NULL, &ip, &l4, VIP6, 80);
  spec_tcp(&ip, &l4, 6, C6, 40000, VIP6, 80, PB_TCP_ACK | PB_TCP_FIN, 501);
  fx_fwd(&e, "v6 tcp FIN with data", NULL, &ip, &l4, B6A, 8080);

  spec_udp(&ip, &l4, 6, C6, 5000, VIP6, 53, 47);
  fx_fwd(&e, "v6 udp client->[VIP]:53 => [fd4c:1::1]:5353", NULL, &ip, &l4, B6A, 5353);
  spec_udp(&ip, &l4, 6, B6A, 5353, C6, 5000, 48);
  fx_rev(&e, "v6 udp reply => from [VIP]:53", NULL, &ip, &l4, VIP6, 53);
  env_free(&e);

  /* ring B: the second backends; 10.0.1.2:53 keeps the port (address-only translation) */
  env_init(&e, 1024, FX_RING_B, 0);
  spec_udp(&ip, &l4, 4, C4, 5001, VIP4, 53, 40);
  fx_fwd(&e, "v4 udp => 10.0.1.2:53 (no port change)", NULL, &ip, &l4, B4B, 53);
  spec_udp(&ip, &l4, 4, B4B, 53, C4, 5001, 40);
  fx_rev(&e, "v4 udp reply from 10.0.1.2:53 (no port change)", NULL, &ip, &l4, VIP4, 53);
  spec_udp(&ip, &l4, 6, C6, 5001, VIP6, 53, 40);
  fx_fwd(&e, "v6 udp => [fd4c:1::2]:53 (no port change)", NULL, &ip, &l4, B6B, 53);
  spec_tcp(&ip, &l4, 6, C6, 40002, VIP6, 80, PB_TCP_SYN, 0);
  fx_fwd(&e, "v6 tcp => [fd4c:1::2]:8080", NULL, &ip, &l4, B6B, 8080);
  env_free(&e);
}

void test_translate_counters(void) {
  struct env e;
  env_init(&e, 1024, FX_RING_A, 0);
  struct pb_ip ip;
  struct pb_l4 l4;
  spec_tcp(&ip, &l4, 4, C4, 40000, VIP4, 80, PB_TCP_SYN, 10);
  uint32_t n = bld(g_in, NULL, &ip, &l4);
  run_raw(&e, g_in, n, g_out, &g_out_len);
  spec_tcp(&ip, &l4, 4, B4A, 8080, C4, 40000, PB_TCP_SYN | PB_TCP_ACK, 0);
  uint32_t m = bld(g_in, NULL, &ip, &l4);
  run_raw(&e, g_in, m, g_out, &g_out_len);
  CHECK(env_q(&e, L4_Q_RX_PACKETS) == 2 && env_q(&e, L4_Q_TX_PACKETS) == 2, "rx/tx packets");
  CHECK(env_q(&e, L4_Q_RX_BYTES) == n + m && env_q(&e, L4_Q_TX_BYTES) == n + m, "rx/tx bytes (incl. vnet hdr)");
  CHECK(env_q(&e, L4_Q_FORWARD) == 1 && env_q(&e, L4_Q_REPLY) == 1, "forward %llu reply %llu",
        (unsigned long long)env_q(&e, L4_Q_FORWARD), (unsigned long long)env_q(&e, L4_Q_REPLY));
  CHECK(env_q(&e, L4_Q_FLOW_NEW) == 1, "flow_new");
  uint64_t *sc = l4_ctr_service(&e.ctx, FX_SVC_V4_TCP), *bc = l4_ctr_backend(&e.ctx, FX_BK_V4T_A);
  CHECK(sc[L4_O_PACKETS_IN] == 1 && sc[L4_O_BYTES_IN] == n - PB_VNET_LEN, "service in: %llu pkts %llu bytes",
        (unsigned long long)sc[L4_O_PACKETS_IN], (unsigned long long)sc[L4_O_BYTES_IN]);
  CHECK(sc[L4_O_PACKETS_OUT] == 1 && sc[L4_O_BYTES_OUT] == m - PB_VNET_LEN, "service out");
  CHECK(bc[L4_O_PACKETS_IN] == 1 && bc[L4_O_PACKETS_OUT] == 1 && bc[L4_O_NEW_FLOWS] == 1, "backend counters");
  CHECK(sc[L4_O_NEW_FLOWS] == 1, "service new flows");
  uint64_t other = 0;
  for (int b = 0; b < FX_MAX_BACKENDS; b++)
    if (b != FX_BK_V4T_A) other += l4_ctr_backend(&e.ctx, (uint32_t)b)[L4_O_PACKETS_IN];
  CHECK(other == 0, "no other backend counted");
  env_free(&e);
}

void test_udp_zero_csum_v4(void) {
  struct env e;
  env_init(&e, 1024, FX_RING_A, 0);
  struct pb_ip ip;
  struct pb_l4 l4;
  spec_udp(&ip, &l4, 4, C4, 5000, VIP4, 53, 30);
  l4.csum = PB_CSUM_ZERO;
  uint32_t n = bld(g_in, NULL, &ip, &l4);
  struct pb_ip ip2 = ip;
  struct pb_l4 l42 = l4;
  pb_addr(4, B4A, ip2.dst);
  l42.dport = 5353;
  uint32_t m = bld(g_want, NULL, &ip2, &l42);
  expect_tx_strict(&e, "v4 udp checksum 0 forward stays 0", g_in, n, g_want, m);
  spec_udp(&ip, &l4, 4, B4A, 5353, C4, 5000, 31);
  l4.csum = PB_CSUM_ZERO;
  n = bld(g_in, NULL, &ip, &l4);
  ip2 = ip, l42 = l4;
  pb_addr(4, VIP4, ip2.src);
  l42.sport = 53;
  m = bld(g_want, NULL, &ip2, &l42);
  expect_tx_strict(&e, "v4 udp checksum 0 reply stays 0", g_in, n, g_want, m);
  env_free(&e);
}

/* Chooses the last payload word so that the translated packet's UDP checksum computes to 0, which RFC 768
 * says to send as 0xffff. */
static void udp_zero_result(uint8_t fam, bool fwd) {
  struct env e;
  env_init(&e, 1024, FX_RING_A, 0);
  static uint8_t pay[32];
  memcpy(pay, PAY, sizeof(pay));
  pay[30] = pay[31] = 0;
  struct pb_ip ip, ip2;
  struct pb_l4 l4, l42;
  const char *c = fam == 4 ? C4 : C6, *vip = fam == 4 ? VIP4 : VIP6, *bk = fam == 4 ? B4A : B6A;
  if (fwd) spec_udp(&ip, &l4, fam, c, 5000, vip, 53, 0);
  else spec_udp(&ip, &l4, fam, bk, 5353, c, 5000, 0);
  l4.payload = pay;
  l4.payload_len = sizeof(pay);
  ip2 = ip, l42 = l4;
  if (fwd) pb_addr(fam, bk, ip2.dst), l42.dport = 5353;
  else pb_addr(fam, vip, ip2.src), l42.sport = 53;
  l42.csum = PB_CSUM_ZERO;
  uint32_t m = bld(g_want, NULL, &ip2, &l42);
  uint16_t s = pb_l4_sum(g_want + PB_VNET_LEN, m - PB_VNET_LEN);
  pb_put_be16(pay + 30, (uint16_t)(0xffff - s));
  l42.csum = PB_CSUM_FULL;
  m = bld(g_want, NULL, &ip2, &l42);
  int off = pb_l4_csum_off(g_want + PB_VNET_LEN, m - PB_VNET_LEN) + PB_VNET_LEN;
  CHECK(pb_be16(g_want + off) == 0xffff, "builder: the crafted checksum is sent as 0xffff (%04x)", pb_be16(g_want + off));
  uint32_t n = bld(g_in, NULL, &ip, &l4);
  char desc[96];
  snprintf(desc, sizeof(desc), "v%d udp %s whose checksum computes to 0 => 0xffff", fam, fwd ? "forward" : "reply");
  expect_tx_strict(&e, desc, g_in, n, g_want, m);
  env_free(&e);
}

void test_udp_result_zero_is_ffff(void) {
  udp_zero_result(4, true);
  udp_zero_result(4, false);
  udp_zero_result(6, true);
  udp_zero_result(6, false);
}

/* The input's checksum is off by `delta`; the output must be off by the same amount (the incremental
 * update must not repair it) and otherwise equal the expected translation. */
static void bad_csum_case(struct env *e, const char *desc, struct pb_ip *ip, struct pb_l4 *l4, bool fwd,
                          const char *addr, uint16_t port, enum pb_csum mode, uint16_t delta) {
  l4->csum = mode;
  l4->bad_delta = delta;
  uint32_t n = bld(g_in, NULL, ip, l4);
  uint16_t in_sum = pb_l4_sum(g_in + PB_VNET_LEN, n - PB_VNET_LEN);
  CHECK(in_sum != 0xffff, "%s: the input checksum is bad", desc);
  struct pb_ip ip2 = *ip;
  struct pb_l4 l42 = *l4;
  if (fwd) pb_addr(ip->family, addr, ip2.dst), l42.dport = port;
  else pb_addr(ip->family, addr, ip2.src), l42.sport = port;
  l42.csum = PB_CSUM_FULL;
  uint32_t m = bld(g_want, NULL, &ip2, &l42);
  if (run_raw(e, g_in, n, g_out, &g_out_len) != L4_VERDICT_TX) {
    CHECK(false, "%s: dropped (%s)", desc, L4_DROP_REASON_NAMES[e->ctx.last_drop]);
    return;
  }
  uint16_t out_sum = pb_l4_sum(g_out + PB_VNET_LEN, g_out_len - PB_VNET_LEN);
  CHECK(out_sum == in_sum, "%s: output sum %04x, input sum %04x (must stay bad by the same amount)", desc, out_sum,
        in_sum);
  int off = pb_l4_csum_off(g_want + PB_VNET_LEN, m - PB_VNET_LEN) + PB_VNET_LEN;
  bool rest_same = g_out_len == m && memcmp(g_out, g_want, (size_t)off) == 0 &&
                   memcmp(g_out + off + 2, g_want + off + 2, m - (uint32_t)off - 2) == 0;
  CHECK(rest_same, "%s: everything but the checksum matches the translation", desc);
  if (!rest_same) pb_hexdump_diff(desc, g_out, g_out_len, g_want, m);
}

void test_bad_l4_csum_stays_bad(void) {
  struct env e;
  env_init(&e, 1024, FX_RING_A, 0);
  struct pb_ip ip;
  struct pb_l4 l4;
  spec_tcp(&ip, &l4, 4, C4, 40000, VIP4, 80, PB_TCP_SYN, 5);
  bad_csum_case(&e, "v4 tcp forward, checksum +0x0101", &ip, &l4, true, B4A, 8080, PB_CSUM_BAD, 0x0101);
  spec_tcp(&ip, &l4, 4, B4A, 8080, C4, 40000, PB_TCP_ACK, 5);
  bad_csum_case(&e, "v4 tcp reply, checksum +1", &ip, &l4, false, VIP4, 80, PB_CSUM_BAD, 1);
  spec_udp(&ip, &l4, 4, C4, 5000, VIP4, 53, 9);
  bad_csum_case(&e, "v4 udp forward, checksum +0x8000", &ip, &l4, true, B4A, 5353, PB_CSUM_BAD, 0x8000);
  spec_tcp(&ip, &l4, 6, C6, 40000, VIP6, 80, PB_TCP_SYN, 5);
  bad_csum_case(&e, "v6 tcp forward, checksum +0x1234", &ip, &l4, true, B6A, 8080, PB_CSUM_BAD, 0x1234);
  spec_udp(&ip, &l4, 6, B6A, 5353, C6, 5000, 9);
  bad_csum_case(&e, "v6 udp reply, checksum +7", &ip, &l4, false, VIP6, 53, PB_CSUM_BAD, 7);
  /* UDP over IPv6 with checksum 0 (invalid, RFC 8200 8.1) is dropped: see test_udp6_zero_csum_dropped */
  env_free(&e);
}

void test_trailing_bytes_trimmed(void) {
  struct env e;
  env_init(&e, 1024, FX_RING_A, 0);
  struct pb_ip ip, ip2;
  struct pb_l4 l4, l42;
  for (int fam = 4; fam <= 6; fam += 2) {
    spec_tcp(&ip, &l4, (uint8_t)fam, fam == 4 ? C4 : C6, 40000, fam == 4 ? VIP4 : VIP6, 80, PB_TCP_ACK, 100);
    uint32_t n = bld(g_in, NULL, &ip, &l4);
    memset(g_in + n, 0xee, 17); /* e.g. Ethernet padding that survived */
    ip2 = ip, l42 = l4;
    pb_addr((uint8_t)fam, fam == 4 ? B4A : B6A, ip2.dst);
    l42.dport = 8080;
    uint32_t m = bld(g_want, NULL, &ip2, &l42);
    expect_tx(&e, fam == 4 ? "v4: 17 trailing bytes cut" : "v6: 17 trailing bytes cut", g_in, n + 17, g_want, m);
  }
  env_free(&e);
}

/* ------------------------------------------------------------------------------------------------------ */
/* GSO and CHECKSUM_PARTIAL */

static uint8_t g_segs[64 * 1600];
static uint32_t g_seg_lens[64];

/* Builds a GSO super-packet from ip/l4 (with a partial checksum), runs it, compares it with the translation
 * built from scratch, then splits the output as the kernel would and checks every segment's checksums. */
static void gso_case(struct env *e, const char *desc, uint8_t gso_type, uint16_t gso_size, struct pb_ip *ip,
                     struct pb_l4 *l4, bool fwd, const char *addr, uint16_t port) {
  l4->csum = PB_CSUM_PARTIAL;
  uint32_t n = bld(g_in, NULL, ip, l4);
  struct pb_vnet v;
  pb_vnet_read(g_in, &v);
  struct pb_info in;
  pb_parse(g_in + PB_VNET_LEN, n - PB_VNET_LEN, &in);
  v.gso_type = gso_type;
  v.gso_size = gso_size;
  v.hdr_len = (uint16_t)(in.l4_off + (l4->proto == 6 ? 20u + l4->opts_len : 8u));
  pb_vnet_write(g_in, &v);
  struct pb_ip ip2 = *ip;
  struct pb_l4 l42 = *l4;
  if (fwd) pb_addr(ip->family, addr, ip2.dst), l42.dport = port;
  else pb_addr(ip->family, addr, ip2.src), l42.sport = port;
  uint32_t m = bld(g_want, &v, &ip2, &l42);
  uint64_t gso_before = env_q(e, L4_Q_GSO_PACKETS);
  if (!expect_tx_strict(e, desc, g_in, n, g_want, m)) return;
  CHECK(env_q(e, L4_Q_GSO_PACKETS) == gso_before + 1, "%s: gso_packets counted", desc);
  int nseg = pb_gso_split(g_out, g_out_len, g_segs, 1600, g_seg_lens, 64);
  uint32_t payload = l4->payload_len;
  int want_segs = (int)((payload + gso_size - 1) / gso_size);
  CHECK(nseg == want_segs, "%s: %d segments, want %d", desc, nseg, want_segs);
  for (int i = 0; i < nseg; i++) {
    uint8_t *s = g_segs + (size_t)i * 1600;
    if (ip->family == 4) CHECK(pb_ip4_hdr_sum(s) == 0xffff, "%s: segment %d IPv4 header checksum", desc, i);
    uint16_t sum = pb_l4_sum(s, g_seg_lens[i]);
    CHECK(sum == 0xffff, "%s: segment %d L4 checksum does not validate (sum %04x)", desc, i, sum);
    struct pb_info si;
    pb_parse(s, g_seg_lens[i], &si);
    uint8_t a[16];
    pb_addr(ip->family, addr, a);
    CHECK(memcmp(fwd ? si.dst : si.src, a, ip->family == 4 ? 4 : 16) == 0, "%s: segment %d address", desc, i);
  }
}

void test_gso_super_packets(void) {
  struct env e;
  env_init(&e, 1024, FX_RING_A, 0);
  struct pb_ip ip;
  struct pb_l4 l4;
  spec_tcp(&ip, &l4, 4, C4, 40000, VIP4, 80, PB_TCP_ACK | PB_TCP_PSH | PB_TCP_CWR, 5000);
  gso_case(&e, "TSO4 + ECN forward, 5000 bytes / 1448", PB_GSO_TCPV4 | PB_GSO_ECN, 1448, &ip, &l4, true, B4A, 8080);
  spec_tcp(&ip, &l4, 4, B4A, 8080, C4, 40000, PB_TCP_ACK | PB_TCP_PSH | PB_TCP_FIN, 4345);
  gso_case(&e, "TSO4 reply with FIN, 4345 bytes / 1448", PB_GSO_TCPV4, 1448, &ip, &l4, false, VIP4, 80);
  spec_tcp(&ip, &l4, 4, C4, 40001, VIP4, 80, PB_TCP_ACK, 65535 - 52);
  gso_case(&e, "TSO4 64 KiB super-packet", PB_GSO_TCPV4, 1448, &ip, &l4, true, B4A, 8080);
  spec_tcp(&ip, &l4, 6, C6, 40000, VIP6, 80, PB_TCP_ACK | PB_TCP_PSH, 7000);
  gso_case(&e, "TSO6 forward, 7000 bytes / 1428", PB_GSO_TCPV6, 1428, &ip, &l4, true, B6A, 8080);
  spec_tcp(&ip, &l4, 6, B6A, 8080, C6, 40000, PB_TCP_ACK | PB_TCP_CWR, 3001);
  gso_case(&e, "TSO6 + ECN reply, 3001 bytes / 1428", PB_GSO_TCPV6 | PB_GSO_ECN, 1428, &ip, &l4, false, VIP6, 80);
  spec_udp(&ip, &l4, 4, C4, 5000, VIP4, 53, 4000);
  gso_case(&e, "UDP_L4 v4 forward, 4000 bytes / 1200", PB_GSO_UDP_L4, 1200, &ip, &l4, true, B4A, 5353);
  spec_udp(&ip, &l4, 6, B6A, 5353, C6, 5000, 3333);
  gso_case(&e, "UDP_L4 v6 reply, 3333 bytes / 1000", PB_GSO_UDP_L4, 1000, &ip, &l4, false, VIP6, 53);
  env_free(&e);
}

static void partial_case(struct env *e, const char *desc, struct pb_ip *ip, struct pb_l4 *l4, bool fwd,
                         const char *addr, uint16_t port) {
  l4->csum = PB_CSUM_PARTIAL;
  bool ok = fwd ? fx_fwd(e, desc, NULL, ip, l4, addr, port) : fx_rev(e, desc, NULL, ip, l4, addr, port);
  if (!ok) return;
  struct pb_vnet v;
  pb_vnet_read(g_out, &v);
  CHECK(v.flags == PB_VNET_F_NEEDS_CSUM, "%s: NEEDS_CSUM kept", desc);
  pb_finish_partial(g_out + PB_VNET_LEN, g_out_len - PB_VNET_LEN, v.csum_start, v.csum_offset, l4->proto == 17);
  CHECK(pb_l4_sum(g_out + PB_VNET_LEN, g_out_len - PB_VNET_LEN) == 0xffff,
        "%s: the checksum the kernel finishes validates", desc);
}

void test_checksum_partial(void) {
  struct env e;
  env_init(&e, 1024, FX_RING_A, 0);
  struct pb_ip ip;
  struct pb_l4 l4;
  spec_tcp(&ip, &l4, 4, C4, 40000, VIP4, 80, PB_TCP_SYN, 0);
  partial_case(&e, "partial v4 tcp SYN forward", &ip, &l4, true, B4A, 8080);
  spec_tcp(&ip, &l4, 4, B4A, 8080, C4, 40000, PB_TCP_ACK, 77);
  partial_case(&e, "partial v4 tcp reply", &ip, &l4, false, VIP4, 80);
  spec_udp(&ip, &l4, 4, C4, 5000, VIP4, 53, 61);
  partial_case(&e, "partial v4 udp forward", &ip, &l4, true, B4A, 5353);
  spec_udp(&ip, &l4, 6, C6, 5000, VIP6, 53, 61);
  partial_case(&e, "partial v6 udp forward", &ip, &l4, true, B6A, 5353);
  spec_tcp(&ip, &l4, 6, B6A, 8080, C6, 40000, PB_TCP_ACK, 1);
  partial_case(&e, "partial v6 tcp reply", &ip, &l4, false, VIP6, 80);
  /* DATA_VALID alone (checksum verified by the sender) is accepted and changes nothing */
  spec_tcp(&ip, &l4, 4, C4, 40002, VIP4, 80, PB_TCP_SYN, 0);
  struct pb_vnet v = {.flags = PB_VNET_F_DATA_VALID};
  fx_fwd(&e, "DATA_VALID full checksum forward", &v, &ip, &l4, B4A, 8080);
  env_free(&e);
}

void test_source_hash_service(void) {
  struct env e;
  env_init(&e, 4096, FX_RING_ALT, 0);
  struct pb_ip ip;
  struct pb_l4 l4;
  int first = -1;
  for (uint16_t p = 0; p < 32; p++) {
    spec_tcp(&ip, &l4, 4, C4, (uint16_t)(30000 + p * 7), VIP4_SRC, 443, PB_TCP_SYN, 0);
    uint32_t n = bld(g_in, NULL, &ip, &l4);
    if (run_raw(&e, g_in, n, g_out, &g_out_len) != L4_VERDICT_TX) {
      CHECK(false, "source-hash SYN dropped (%s)", L4_DROP_REASON_NAMES[e.ctx.last_drop]);
      break;
    }
    int b = out_backend();
    CHECK(b == FX_BK_SRC_A || b == FX_BK_SRC_B, "a backend of the service (%d)", b);
    if (first < 0) first = b;
    CHECK(b == first, "port %u went to backend %d, the client's first port to %d", 30000 + p * 7, b, first);
  }
  bool seen[FX_NBK] = {false};
  char client[32];
  for (int c = 1; c <= 64; c++) {
    snprintf(client, sizeof(client), "203.0.113.%d", c);
    spec_tcp(&ip, &l4, 4, client, 1234, VIP4_SRC, 443, PB_TCP_SYN, 0);
    uint32_t n = bld(g_in, NULL, &ip, &l4);
    if (run_raw(&e, g_in, n, g_out, &g_out_len) == L4_VERDICT_TX && out_backend() >= 0) seen[out_backend()] = true;
  }
  CHECK(seen[FX_BK_SRC_A] && seen[FX_BK_SRC_B], "64 clients spread over both backends");
  /* the port change 443 -> 8443 happens for backend B */
  if (seen[FX_BK_SRC_B]) {
    for (int c = 1; c <= 64; c++) {
      snprintf(client, sizeof(client), "203.0.113.%d", c);
      spec_tcp(&ip, &l4, 4, client, 1234, VIP4_SRC, 443, PB_TCP_ACK, 0);
      uint32_t n = bld(g_in, NULL, &ip, &l4);
      run_raw(&e, g_in, n, g_out, &g_out_len);
      if (out_backend() == FX_BK_SRC_B) {
        fx_fwd(&e, "source-hash service to 10.0.2.2:8443", NULL, &ip, &l4, "10.0.2.2", 8443);
        break;
      }
    }
  }
  env_free(&e);
}

/* ------------------------------------------------------------------------------------------------------ */
/* main */

static const char *g_corpus_dir;
static int g_corpus_n, g_corpus_this_test;

static void corpus_write(const char *desc, const uint8_t *in, uint32_t len) {
  char name[512];
  int k = snprintf(name, sizeof(name), "%s/seed_%02d_", g_corpus_dir, g_corpus_n);
  bool sep = false;
  for (const char *p = desc; *p && k < 100; p++) {
    bool keep = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '.';
    if (keep) {
      if (sep && name[k - 1] != '_') name[k++] = '_';
      name[k++] = *p;
      sep = false;
    } else {
      sep = true;
    }
  }
  name[k] = 0;
  FILE *f = fopen(name, "wb");
  if (!f) return;
  uint8_t opt = 0; /* fuzz_packet.c: the first byte chooses options; 0 = fresh flow table, ring A, echo on */
  fwrite(&opt, 1, 1, f);
  fwrite(in, 1, len, f);
  fclose(f);
  g_corpus_n++;
}

/* Keeps the seed corpus small and varied: the first two inputs of each test (<= 2 KiB), at most 64. */
void corpus_record(const char *desc, const uint8_t *in, uint32_t len) {
  if (!g_corpus_dir || g_corpus_n >= 64 || g_corpus_this_test >= 2 || len > 2048) return;
  g_corpus_this_test++;
  corpus_write(desc, in, len);
}

/* Always recorded (every_prefix_dropped's samples: one of each kind, GSO super-packets included). */
void corpus_record_sample(const char *desc, const uint8_t *in, uint32_t len) {
  if (g_corpus_dir) corpus_write(desc, in, len);
}

struct test_def {
  const char *name, *desc;
  void (*fn)(void);
};
#define TEST_ENTRY(name, desc) {#name, desc, test_##name},
static const struct test_def TESTS[] = {CORE_TESTS(TEST_ENTRY)};
#undef TEST_ENTRY

int main(int argc, char **argv) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  int nfilters = 0;
  const char *filters[32];
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--write-corpus") == 0 && i + 1 < argc) {
      g_corpus_dir = argv[++i];
      if (mkdir(g_corpus_dir, 0755) != 0 && errno != EEXIST) {
        perror(g_corpus_dir);
        return 2;
      }
    } else if (nfilters < 32) {
      filters[nfilters++] = argv[i];
    }
  }
  int passed = 0, failed = 0;
  for (size_t i = 0; i < sizeof(TESTS) / sizeof(TESTS[0]); i++) {
    bool run = nfilters == 0;
    for (int f = 0; f < nfilters; f++)
      if (strstr(TESTS[i].name, filters[f])) run = true;
    if (!run) continue;
    g_test_failures = 0;
    g_corpus_this_test = 0;
    TESTS[i].fn();
    fflush(stderr);
    if (g_test_failures == 0) {
      passed++;
      printf("ok   %-28s %s\n", TESTS[i].name, TESTS[i].desc);
    } else {
      failed++;
      printf("FAIL %-28s %s (%d failed checks)\n", TESTS[i].name, TESTS[i].desc, g_test_failures);
    }
  }
  if (g_csum_equiv) printf("note: %d comparisons accepted an L4 checksum of 0x0000 for 0xffff (same value)\n", g_csum_equiv);
  if (g_corpus_dir) printf("wrote %d seed files to %s\n", g_corpus_n, g_corpus_dir);
  printf("%d passed, %d failed\n", passed, failed);
  return failed ? 1 : 0;
}
