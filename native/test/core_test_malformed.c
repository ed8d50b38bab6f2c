/* Classification and hostile input: what is not ours, fragments, IPv6 extension headers, malformed headers,
 * inconsistent virtio_net_hdr, every truncation. Each input is run from an exactly-sized heap buffer
 * (run_raw), so AddressSanitizer turns any read past the end into a failure. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test_util.h"
#include "tests.h"

static void fix_ip4_csum(uint8_t *ip) {
  uint32_t ihl = (ip[0] & 15u) * 4;
  ip[10] = ip[11] = 0;
  pb_put_be16(ip + 10, (uint16_t)~pb_fold(pb_sum(0, ip, ihl)));
}

static void drop_spec(struct env *e, const char *desc, const struct pb_vnet *v, const struct pb_ip *ip,
                      const struct pb_l4 *l4, enum l4_drop_reason why) {
  uint32_t n = bld(g_in, v, ip, l4);
  expect_drop(e, desc, g_in, n, why);
}

void test_classify_drops(void) {
  struct env e;
  env_init(&e, 1024, FX_RING_A, L4_OPT_ICMP_ECHO);
  struct pb_ip ip;
  struct pb_l4 l4;
  spec_tcp(&ip, &l4, 4, C4, 40000, VIP4, 443, PB_TCP_SYN, 0);
  drop_spec(&e, "tcp to VIP:443 (no service)", NULL, &ip, &l4, L4_DROP_VIP_PORT_UNKNOWN);
  spec_udp(&ip, &l4, 4, C4, 5000, VIP4, 80, 10);
  drop_spec(&e, "udp to VIP:80 (a tcp-only port)", NULL, &ip, &l4, L4_DROP_VIP_PORT_UNKNOWN);
  spec_tcp(&ip, &l4, 4, C4, 40000, VIP4, 53, PB_TCP_SYN, 0);
  drop_spec(&e, "tcp to VIP:53 (a udp-only port)", NULL, &ip, &l4, L4_DROP_VIP_PORT_UNKNOWN);
  spec_tcp(&ip, &l4, 6, C6, 40000, VIP6, 22, PB_TCP_SYN, 0);
  drop_spec(&e, "v6 tcp to [VIP]:22", NULL, &ip, &l4, L4_DROP_VIP_PORT_UNKNOWN);
  spec_tcp(&ip, &l4, 4, C4, 40000, "10.200.0.99", 80, PB_TCP_SYN, 0);
  drop_spec(&e, "tcp to an address that is no VIP", NULL, &ip, &l4, L4_DROP_NOT_SERVICE);
  spec_udp(&ip, &l4, 6, C6, 5000, "fd4c:ffff::99", 53, 10);
  drop_spec(&e, "v6 udp to an address that is no VIP", NULL, &ip, &l4, L4_DROP_NOT_SERVICE);
  spec_tcp(&ip, &l4, 4, B4A, 22, C4, 40000, PB_TCP_ACK, 0);
  drop_spec(&e, "from a backend address, another port (ssh)", NULL, &ip, &l4, L4_DROP_NOT_SERVICE);
  spec_tcp(&ip, &l4, 4, B4A, 5353, C4, 40000, PB_TCP_ACK, 0);
  drop_spec(&e, "tcp from a backend's udp port", NULL, &ip, &l4, L4_DROP_NOT_SERVICE);
  spec_udp(&ip, &l4, 4, B4A, 8080, C4, 5000, 10);
  drop_spec(&e, "udp from a backend's tcp port", NULL, &ip, &l4, L4_DROP_NOT_SERVICE);
  spec_tcp(&ip, &l4, 6, "::ffff:10.0.1.1", 8080, C6, 40000, PB_TCP_ACK, 0);
  drop_spec(&e, "v4-mapped v6 source of a v4 backend", NULL, &ip, &l4, L4_DROP_NOT_SERVICE);

  pb_ip4(&ip, C4, VIP4);
  memset(&l4, 0, sizeof(l4));
  l4.proto = 47; /* GRE */
  l4.payload = PAY;
  l4.payload_len = 24;
  drop_spec(&e, "GRE to the VIP", NULL, &ip, &l4, L4_DROP_UNSUPPORTED_PROTO);
  pb_ip6(&ip, C6, VIP6);
  l4.proto = 50; /* ESP */
  drop_spec(&e, "ESP to the v6 VIP", NULL, &ip, &l4, L4_DROP_UNSUPPORTED_PROTO);
  l4.proto = 59; /* no next header (bytes after it are ignored, RFC 8200 4.7) */
  l4.payload_len = 8;
  drop_spec(&e, "IPv6 no-next-header", NULL, &ip, &l4, L4_DROP_UNSUPPORTED_PROTO);
  pb_ip4(&ip, C4, VIP4);
  pb_icmp(&l4, 6, 128, 0, 1);
  drop_spec(&e, "ICMPv6 inside IPv4", NULL, &ip, &l4, L4_DROP_UNSUPPORTED_PROTO);
  pb_ip6(&ip, C6, VIP6);
  pb_icmp(&l4, 4, 8, 0, 1);
  drop_spec(&e, "ICMPv4 inside IPv6", NULL, &ip, &l4, L4_DROP_UNSUPPORTED_PROTO);
  env_free(&e);

  /* a service without backends */
  env_init(&e, 1024, FX_RING_EMPTY, 0);
  spec_tcp(&ip, &l4, 4, C4, 40000, VIP4, 80, PB_TCP_SYN, 0);
  drop_spec(&e, "SYN to a service with an empty ring", NULL, &ip, &l4, L4_DROP_NO_BACKEND);
  spec_udp(&ip, &l4, 6, C6, 5000, VIP6, 53, 10);
  drop_spec(&e, "udp to a service with an empty ring", NULL, &ip, &l4, L4_DROP_NO_BACKEND);
  CHECK(l4_flow_count(&e.ft, &e.t->timeouts, e.ctx.now) == 0, "no entries");
  env_free(&e);
  static struct fx_input fi;
  fx_input_init(&fi, FX_RING_A, 0);
  for (int j = 0; j < FX_RING_SIZE; j++) fi.rings[FX_SVC_V4_TCP * FX_RING_SIZE + j] = L4_NO_BACKEND;
  char err[256];
  struct l4_tables *t = l4_tables_build(&fi.in, err, sizeof(err));
  CHECK(t != NULL, "ring of empty slots builds: %s", err);
  if (t) {
    env_init_tables(&e, 1024, t);
    spec_tcp(&ip, &l4, 4, C4, 40000, VIP4, 80, PB_TCP_ACK, 0);
    drop_spec(&e, "ring of empty slots", NULL, &ip, &l4, L4_DROP_NO_BACKEND);
    env_free(&e);
  }
}

void test_fragments(void) {
  struct env e;
  env_init(&e, 1024, FX_RING_A, 0);
  struct pb_ip ip;
  struct pb_l4 l4;
  spec_udp(&ip, &l4, 4, C4, 5000, VIP4, 53, 100);
  ip.frag = PB_IP4_MF;
  drop_spec(&e, "v4 first fragment (MF, offset 0)", NULL, &ip, &l4, L4_DROP_FRAGMENT);
  ip.frag = 185;
  drop_spec(&e, "v4 last fragment (offset 1480)", NULL, &ip, &l4, L4_DROP_FRAGMENT);
  ip.frag = PB_IP4_MF | 185;
  drop_spec(&e, "v4 middle fragment", NULL, &ip, &l4, L4_DROP_FRAGMENT);
  spec_tcp(&ip, &l4, 4, C4, 40000, VIP4, 80, PB_TCP_ACK, 100);
  ip.frag = PB_IP4_DF | PB_IP4_MF;
  drop_spec(&e, "v4 tcp with DF and MF", NULL, &ip, &l4, L4_DROP_FRAGMENT);
  ip.frag = 0;
  fx_fwd(&e, "v4 without DF is no fragment", NULL, &ip, &l4, B4A, 8080);
  spec_udp(&ip, &l4, 6, C6, 5000, VIP6, 53, 100);
  pb_ip6_add_frag(&ip, 0, true, 0xabcd);
  drop_spec(&e, "v6 first fragment", NULL, &ip, &l4, L4_DROP_FRAGMENT);
  spec_udp(&ip, &l4, 6, C6, 5000, VIP6, 53, 100);
  pb_ip6_add_frag(&ip, 0, false, 0xabcd);
  drop_spec(&e, "v6 atomic fragment (offset 0, M=0)", NULL, &ip, &l4, L4_DROP_FRAGMENT);
  spec_udp(&ip, &l4, 6, C6, 5000, VIP6, 53, 100);
  pb_ip6_add_opts(&ip, 0, 8);
  pb_ip6_add_frag(&ip, 100, false, 0xabcd);
  drop_spec(&e, "v6 later fragment after hop-by-hop", NULL, &ip, &l4, L4_DROP_FRAGMENT);
  CHECK(l4_flow_count(&e.ft, &e.t->timeouts, e.ctx.now) == 0, "no fragment made an entry");
  env_free(&e);
}

void test_ipv6_ext_headers(void) {
  struct env e;
  env_init(&e, 1024, FX_RING_A, 0);
  struct pb_ip ip;
  struct pb_l4 l4;
  spec_tcp(&ip, &l4, 6, C6, 40000, VIP6, 80, PB_TCP_SYN, 0);
  pb_ip6_add_opts(&ip, 0, 8);
  pb_ip6_add_opts(&ip, 60, 16);
  fx_fwd(&e, "v6 tcp with hop-by-hop + destination options translated", NULL, &ip, &l4, B6A, 8080);
  spec_udp(&ip, &l4, 6, B6A, 5353, C6, 5000, 33);
  pb_ip6_add_opts(&ip, 0, 16);
  pb_ip6_add_opts(&ip, 60, 8);
  fx_rev(&e, "v6 udp reply with hop-by-hop + destination options translated", NULL, &ip, &l4, VIP6, 53);
  spec_tcp(&ip, &l4, 6, C6, 40001, VIP6, 80, PB_TCP_SYN, 0);
  pb_ip6_add_routing(&ip, 0, 2);
  fx_fwd(&e, "v6 routing header with segments left 0 translated", NULL, &ip, &l4, B6A, 8080);
  spec_tcp(&ip, &l4, 6, C6, 40002, VIP6, 80, PB_TCP_SYN, 0);
  pb_ip6_add_routing(&ip, 2, 2);
  drop_spec(&e, "v6 routing header with segments left 2", NULL, &ip, &l4, L4_DROP_IPV6_EXT);
  spec_tcp(&ip, &l4, 6, C6, 40002, VIP6, 80, PB_TCP_SYN, 0);
  pb_ip6_add_opts(&ip, 60, 8);
  pb_ip6_add_opts(&ip, 0, 8);
  drop_spec(&e, "v6 hop-by-hop not first", NULL, &ip, &l4, L4_DROP_IPV6_EXT);
  spec_tcp(&ip, &l4, 6, C6, 40003, VIP6, 80, PB_TCP_SYN, 0);
  for (int i = 0; i < 7; i++) pb_ip6_add_opts(&ip, 60, 8);
  fx_fwd(&e, "v6 with 7 destination options headers translated", NULL, &ip, &l4, B6A, 8080);
  spec_tcp(&ip, &l4, 6, C6, 40004, VIP6, 80, PB_TCP_SYN, 0);
  for (int i = 0; i < IPV6_MAX_EXT_HEADERS; i++) pb_ip6_add_opts(&ip, 60, 8);
  fx_fwd(&e, "v6 with IPV6_MAX_EXT_HEADERS (8) extension headers translated", NULL, &ip, &l4, B6A, 8080);
  spec_tcp(&ip, &l4, 6, C6, 40005, VIP6, 80, PB_TCP_SYN, 0);
  for (int i = 0; i < IPV6_MAX_EXT_HEADERS + 1; i++) pb_ip6_add_opts(&ip, 60, 8);
  drop_spec(&e, "v6 with 9 extension headers", NULL, &ip, &l4, L4_DROP_IPV6_EXT);
  spec_tcp(&ip, &l4, 6, C6, 40006, VIP6, 80, PB_TCP_SYN, 0);
  pb_ip6_add_opts(&ip, 0, 8);
  uint32_t n = bld(g_in, NULL, &ip, &l4);
  g_in[PB_VNET_LEN + 40 + 1] = 20; /* hop-by-hop claims 168 bytes */
  expect_drop(&e, "v6 hop-by-hop longer than the packet", g_in, n, L4_DROP_TRUNCATED);
  pb_ip6(&ip, C6, VIP6);
  memset(&l4, 0, sizeof(l4));
  l4.proto = 135; /* mobility header: not walked */
  l4.payload = PAY;
  l4.payload_len = 16;
  drop_spec(&e, "v6 mobility header", NULL, &ip, &l4, L4_DROP_UNSUPPORTED_PROTO);
  env_free(&e);
}

void test_malformed_headers(void) {
  struct env e;
  env_init(&e, 1024, FX_RING_A, 0);
  struct pb_ip ip;
  struct pb_l4 l4;
  uint32_t n;
  uint8_t *p = g_in + PB_VNET_LEN;
#define V4_TCP() (spec_tcp(&ip, &l4, 4, C4, 40000, VIP4, 80, PB_TCP_ACK, 10), n = bld(g_in, NULL, &ip, &l4))
#define V4_UDP() (spec_udp(&ip, &l4, 4, C4, 5000, VIP4, 53, 10), n = bld(g_in, NULL, &ip, &l4))
  V4_TCP();
  p[0] = 0x44;
  expect_drop(&e, "IHL 4", g_in, n, L4_DROP_BAD_IP_HEADER);
  V4_TCP();
  p[0] = 0x40;
  expect_drop(&e, "IHL 0", g_in, n, L4_DROP_BAD_IP_HEADER);
  spec_tcp(&ip, &l4, 4, C4, 40000, VIP4, 80, PB_TCP_ACK, 0);
  n = bld(g_in, NULL, &ip, &l4); /* 52 bytes of IP */
  p[0] = 0x4f;
  expect_drop(&e, "IHL 15 (60 bytes) on a 52-byte packet", g_in, n, L4_DROP_TRUNCATED);
  V4_TCP();
  p[0] = 0x4f; /* 60 <= 62 bytes: the header checksum over 60 bytes fails */
  expect_drop(&e, "IHL 15 inside the packet", g_in, n, L4_DROP_BAD_IP_CSUM);
  V4_TCP();
  pb_put_be16(p + 2, 19), fix_ip4_csum(p);
  expect_drop(&e, "total length 19 < IHL", g_in, n, L4_DROP_BAD_IP_HEADER);
  V4_TCP();
  pb_put_be16(p + 2, (uint16_t)(n - PB_VNET_LEN + 1)), fix_ip4_csum(p);
  expect_drop(&e, "total length one past the buffer", g_in, n, L4_DROP_TRUNCATED);
  V4_TCP();
  p[0] = 0x55;
  expect_drop(&e, "IP version 5", g_in, n, L4_DROP_BAD_IP_HEADER);
  V4_TCP();
  p[0] = 0x05;
  expect_drop(&e, "IP version 0", g_in, n, L4_DROP_BAD_IP_HEADER);
  V4_TCP();
  p[10] ^= 0x40;
  expect_drop(&e, "bad IPv4 header checksum", g_in, n, L4_DROP_BAD_IP_CSUM);
  V4_TCP();
  p[8]--; /* TTL changed, checksum not */
  expect_drop(&e, "IPv4 header changed after its checksum", g_in, n, L4_DROP_BAD_IP_CSUM);
  V4_TCP();
  p[20 + 12] = 4 << 4;
  expect_drop(&e, "TCP data offset 4", g_in, n, L4_DROP_BAD_L4_HEADER);
  V4_TCP();
  p[20 + 12] = 15 << 4; /* 60 > 20 + 12 + 10 */
  expect_drop(&e, "TCP data offset past the packet", g_in, n, L4_DROP_BAD_L4_HEADER);
  V4_UDP();
  pb_put_be16(p + 20 + 4, 0);
  expect_drop(&e, "UDP length 0", g_in, n, L4_DROP_BAD_L4_HEADER);
  V4_UDP();
  pb_put_be16(p + 20 + 4, 7);
  expect_drop(&e, "UDP length 7", g_in, n, L4_DROP_BAD_L4_HEADER);
  V4_UDP();
  pb_put_be16(p + 20 + 4, 19);
  expect_drop(&e, "UDP length one past the IP payload", g_in, n, L4_DROP_BAD_L4_HEADER);
  V4_UDP();
  pb_put_be16(p + 20 + 4, 0xffff);
  expect_drop(&e, "UDP length 65535", g_in, n, L4_DROP_BAD_L4_HEADER);
  spec_udp(&ip, &l4, 6, C6, 5000, VIP6, 53, 10);
  n = bld(g_in, NULL, &ip, &l4);
  pb_put_be16(p + 40 + 4, 100);
  expect_drop(&e, "v6 UDP length too large", g_in, n, L4_DROP_BAD_L4_HEADER);
  n = bld(g_in, NULL, &ip, &l4);
  pb_put_be16(p + 4, 0);
  expect_drop(&e, "v6 payload length 0 (jumbogram)", g_in, n, L4_DROP_BAD_IP_HEADER);
  n = bld(g_in, NULL, &ip, &l4);
  pb_put_be16(p + 4, 19);
  expect_drop(&e, "v6 payload length past the buffer", g_in, n, L4_DROP_TRUNCATED);
  expect_drop(&e, "empty buffer", g_in, 0, L4_DROP_BAD_VNET_HDR);
  expect_drop(&e, "9 bytes", g_in, 9, L4_DROP_BAD_VNET_HDR);
  memset(g_in, 0, PB_VNET_LEN);
  expect_drop(&e, "virtio_net_hdr only", g_in, PB_VNET_LEN, L4_DROP_TRUNCATED);
  env_free(&e);
#undef V4_TCP
#undef V4_UDP
}

static void vnet_case(struct env *e, const char *desc, uint8_t fam, uint8_t proto, bool partial, uint8_t flags,
                      uint8_t gso, uint16_t gso_size, int start_delta, int off_delta, enum l4_drop_reason why) {
  struct pb_ip ip;
  struct pb_l4 l4;
  if (proto == 6) spec_tcp(&ip, &l4, fam, fam == 4 ? C4 : C6, 40000, fam == 4 ? VIP4 : VIP6, 80, PB_TCP_ACK, 3000);
  else if (proto == 17) spec_udp(&ip, &l4, fam, fam == 4 ? C4 : C6, 5000, fam == 4 ? VIP4 : VIP6, 53, 3000);
  else {
    if (fam == 4) pb_ip4(&ip, C4, VIP4);
    else pb_ip6(&ip, C6, VIP6);
    pb_icmp(&l4, fam, fam == 4 ? 8 : 128, 0, 1);
  }
  if (partial) l4.csum = PB_CSUM_PARTIAL;
  uint32_t n = bld(g_in, NULL, &ip, &l4);
  struct pb_vnet v;
  pb_vnet_read(g_in, &v);
  if (!partial) {
    struct pb_info in;
    pb_parse(g_in + PB_VNET_LEN, n - PB_VNET_LEN, &in);
    v.csum_start = (uint16_t)in.l4_off;
    v.csum_offset = proto == 6 ? 16 : proto == 17 ? 6 : 2;
  }
  v.flags = flags;
  v.gso_type = gso;
  v.gso_size = gso_size;
  v.csum_start = (uint16_t)(v.csum_start + start_delta);
  v.csum_offset = (uint16_t)(v.csum_offset + off_delta);
  pb_vnet_write(g_in, &v);
  if (why == L4_DROP_NONE) {
    uint64_t before = env_q(e, L4_Q_TX_PACKETS);
    run_raw(e, g_in, n, g_out, &g_out_len);
    CHECK(env_q(e, L4_Q_TX_PACKETS) == before + 1, "%s: accepted (got %s)", desc, L4_DROP_REASON_NAMES[e->ctx.last_drop]);
  } else {
    expect_drop(e, desc, g_in, n, why);
  }
}

void test_bad_vnet_hdr(void) {
  struct env e;
  env_init(&e, 1024, FX_RING_A, L4_OPT_ICMP_ECHO);
  const uint8_t NC = PB_VNET_F_NEEDS_CSUM;
  vnet_case(&e, "csum_start 0 (not at L4)", 4, 6, true, NC, 0, 0, -20, 0, L4_DROP_BAD_VNET_HDR);
  vnet_case(&e, "csum_start one past L4", 4, 6, true, NC, 0, 0, 1, 0, L4_DROP_BAD_VNET_HDR);
  vnet_case(&e, "v6 csum_start at the IPv6 header end + 8", 6, 17, true, NC, 0, 0, 8, 0, L4_DROP_BAD_VNET_HDR);
  vnet_case(&e, "csum_offset 6 on TCP", 4, 6, true, NC, 0, 0, 0, -10, L4_DROP_BAD_VNET_HDR);
  vnet_case(&e, "csum_offset 16 on UDP", 4, 17, true, NC, 0, 0, 0, 10, L4_DROP_BAD_VNET_HDR);
  vnet_case(&e, "NEEDS_CSUM on an ICMP echo", 4, 1, false, NC, 0, 0, 0, 0, L4_DROP_BAD_VNET_HDR);
  vnet_case(&e, "unknown flag 0x04", 4, 6, false, 0x04, 0, 0, 0, 0, L4_DROP_BAD_VNET_HDR);
  vnet_case(&e, "GSO TCPV4 on an IPv6 packet", 6, 6, true, NC, PB_GSO_TCPV4, 1400, 0, 0, L4_DROP_UNSUPPORTED_GSO);
  vnet_case(&e, "GSO TCPV6 on an IPv4 packet", 4, 6, true, NC, PB_GSO_TCPV6, 1400, 0, 0, L4_DROP_UNSUPPORTED_GSO);
  vnet_case(&e, "GSO TCPV4 on UDP", 4, 17, true, NC, PB_GSO_TCPV4, 1400, 0, 0, L4_DROP_UNSUPPORTED_GSO);
  vnet_case(&e, "GSO UDP_L4 on TCP", 4, 6, true, NC, PB_GSO_UDP_L4, 1400, 0, 0, L4_DROP_UNSUPPORTED_GSO);
  vnet_case(&e, "UFO (GSO_UDP, deprecated)", 4, 17, true, NC, PB_GSO_UDP, 1400, 0, 0, L4_DROP_UNSUPPORTED_GSO);
  vnet_case(&e, "GSO type 2", 4, 6, true, NC, 2, 1400, 0, 0, L4_DROP_UNSUPPORTED_GSO);
  vnet_case(&e, "GSO TCPV4 without NEEDS_CSUM", 4, 6, false, 0, PB_GSO_TCPV4, 1400, 0, 0, L4_DROP_BAD_VNET_HDR);
  vnet_case(&e, "GSO TCPV4 with gso_size 0", 4, 6, true, NC, PB_GSO_TCPV4, 0, 0, 0, L4_DROP_BAD_VNET_HDR);
  vnet_case(&e, "GSO on ICMP", 4, 1, false, 0, PB_GSO_TCPV4, 1400, 0, 0, L4_DROP_UNSUPPORTED_GSO);
  vnet_case(&e, "accepted: TSO4 + ECN", 4, 6, true, NC, PB_GSO_TCPV4 | PB_GSO_ECN, 1400, 0, 0, L4_DROP_NONE);
  vnet_case(&e, "accepted: USO6", 6, 17, true, NC, PB_GSO_UDP_L4, 1400, 0, 0, L4_DROP_NONE);
  vnet_case(&e, "accepted: NEEDS_CSUM | DATA_VALID", 4, 6, true, NC | PB_VNET_F_DATA_VALID, 0, 0, 0, 0, L4_DROP_NONE);
  env_free(&e);
}

/* ---- every prefix ---- */

static uint8_t SAMPLES[16][4200];
static uint32_t SAMPLE_LEN[16];
static int nsamples;

static void add_sample(const struct pb_vnet *v, const struct pb_ip *ip, const struct pb_l4 *l4) {
  uint32_t n = pb_build(SAMPLES[nsamples], sizeof(SAMPLES[0]), v, ip, l4);
  if (!n) abort();
  SAMPLE_LEN[nsamples++] = n;
}

static void add_gso_sample(struct pb_ip *ip, struct pb_l4 *l4, uint8_t gso, uint16_t size) {
  l4->csum = PB_CSUM_PARTIAL;
  add_sample(NULL, ip, l4);
  struct pb_vnet v;
  pb_vnet_read(SAMPLES[nsamples - 1], &v);
  v.gso_type = gso;
  v.gso_size = size;
  pb_vnet_write(SAMPLES[nsamples - 1], &v);
}

static void build_samples(void) {
  struct pb_ip ip, qip;
  struct pb_l4 l4, ql4;
  static uint8_t q[2000];
  nsamples = 0;
  spec_tcp(&ip, &l4, 4, C4, 40000, VIP4, 80, PB_TCP_SYN, 20);
  add_sample(NULL, &ip, &l4);
  spec_tcp(&ip, &l4, 4, B4A, 8080, C4, 40000, PB_TCP_ACK, 21);
  static const uint8_t ipopts[8] = {1, 1, 1, 0, 0x94, 4, 0, 0};
  memcpy(ip.opts, ipopts, 8);
  ip.opts_len = 8;
  add_sample(NULL, &ip, &l4);
  spec_udp(&ip, &l4, 4, C4, 5000, VIP4, 53, 30);
  add_sample(NULL, &ip, &l4);
  spec_udp(&ip, &l4, 4, B4A, 5353, C4, 5000, 30);
  l4.csum = PB_CSUM_ZERO;
  add_sample(NULL, &ip, &l4);
  spec_tcp(&ip, &l4, 6, C6, 40000, VIP6, 80, PB_TCP_SYN, 0);
  pb_ip6_add_opts(&ip, 0, 8);
  pb_ip6_add_opts(&ip, 60, 16);
  add_sample(NULL, &ip, &l4);
  spec_udp(&ip, &l4, 6, B6A, 5353, C6, 5000, 31);
  add_sample(NULL, &ip, &l4);
  spec_tcp(&qip, &ql4, 4, VIP4, 80, C4, 40000, PB_TCP_ACK, 100);
  uint32_t qn = pb_build_ip(q, sizeof(q), &qip, &ql4);
  pb_ip4(&ip, "203.0.113.1", VIP4);
  pb_icmp(&l4, 4, 3, 4, 1400);
  l4.payload = q, l4.payload_len = qn;
  add_sample(NULL, &ip, &l4);
  spec_udp(&qip, &ql4, 4, C4, 5000, B4A, 5353, 30);
  qn = pb_build_ip(q, sizeof(q), &qip, &ql4);
  pb_ip4(&ip, B4A, C4);
  pb_icmp(&l4, 4, 3, 3, 0);
  l4.payload = q, l4.payload_len = 28;
  add_sample(NULL, &ip, &l4);
  spec_tcp(&qip, &ql4, 6, VIP6, 80, C6, 40000, PB_TCP_ACK, 100);
  pb_ip6_add_opts(&qip, 60, 8);
  qn = pb_build_ip(q, sizeof(q), &qip, &ql4);
  pb_ip6(&ip, "2001:db8:ffff::1", VIP6);
  pb_icmp(&l4, 6, 2, 0, 1280);
  l4.payload = q, l4.payload_len = qn;
  add_sample(NULL, &ip, &l4);
  pb_ip4(&ip, C4, VIP4);
  pb_icmp(&l4, 4, 8, 0, 0x10001);
  l4.payload = PAY, l4.payload_len = 56;
  add_sample(NULL, &ip, &l4);
  pb_ip6(&ip, C6, VIP6);
  pb_icmp(&l4, 6, 128, 0, 0x10001);
  l4.payload = PAY, l4.payload_len = 57;
  add_sample(NULL, &ip, &l4);
  spec_tcp(&ip, &l4, 4, C4, 40000, VIP4, 80, PB_TCP_ACK | PB_TCP_PSH, 3000);
  add_gso_sample(&ip, &l4, PB_GSO_TCPV4 | PB_GSO_ECN, 1448);
  spec_udp(&ip, &l4, 6, B6A, 5353, C6, 5000, 2500);
  add_gso_sample(&ip, &l4, PB_GSO_UDP_L4, 1000);
  spec_tcp(&ip, &l4, 6, B6A, 8080, C6, 40000, PB_TCP_ACK, 41);
  l4.csum = PB_CSUM_PARTIAL;
  add_sample(NULL, &ip, &l4);
}

void test_every_prefix_dropped(void) {
  struct env e;
  env_init(&e, 1024, FX_RING_A, L4_OPT_ICMP_ECHO);
  build_samples();
  uint64_t runs = 0;
  for (int s = 0; s < nsamples; s++) {
    char desc[64];
    snprintf(desc, sizeof(desc), "sample %d (%u bytes) whole", s, SAMPLE_LEN[s]);
    corpus_record_sample(desc, SAMPLES[s], SAMPLE_LEN[s]);
    enum l4_verdict v = run_raw(&e, SAMPLES[s], SAMPLE_LEN[s], g_out, &g_out_len);
    CHECK(v == L4_VERDICT_TX, "%s: translated (got %s)", desc, L4_DROP_REASON_NAMES[e.ctx.last_drop]);
    for (uint32_t len = 0; len < SAMPLE_LEN[s]; len++) {
      uint64_t drops_before = 0, drops_after = 0;
      for (int r = 0; r < L4_DROP_MAX; r++) drops_before += env_drops(&e, (enum l4_drop_reason)r);
      v = run_raw(&e, SAMPLES[s], len, g_out, &g_out_len);
      for (int r = 0; r < L4_DROP_MAX; r++) drops_after += env_drops(&e, (enum l4_drop_reason)r);
      runs++;
      if (v != L4_VERDICT_DROP || e.ctx.last_drop == L4_DROP_NONE || drops_after != drops_before + 1) {
        CHECK(false, "sample %d cut to %u of %u bytes: verdict %d reason %s", s, len, SAMPLE_LEN[s], v,
              L4_DROP_REASON_NAMES[e.ctx.last_drop]);
        break;
      }
      if (len < PB_VNET_LEN) CHECK(e.ctx.last_drop == L4_DROP_BAD_VNET_HDR, "sample %d cut to %u: bad_vnet_hdr", s, len);
      else CHECK(e.ctx.last_drop == L4_DROP_TRUNCATED, "sample %d cut to %u: truncated, got %s", s, len,
                 L4_DROP_REASON_NAMES[e.ctx.last_drop]);
    }
  }
  CHECK(runs > 5000, "ran %llu prefixes", (unsigned long long)runs);
  env_free(&e);
}

/* The IP length is made consistent with the cut, so the IP layer accepts it and the L4 layer must refuse. */
void test_l4_cut_short(void) {
  struct env e;
  env_init(&e, 1024, FX_RING_A, L4_OPT_ICMP_ECHO);
  struct pb_ip ip;
  struct pb_l4 l4;
  for (int fam = 4; fam <= 6; fam += 2) {
    for (int kind = 0; kind < 3; kind++) {
      const char *c = fam == 4 ? C4 : C6, *vip = fam == 4 ? VIP4 : VIP6;
      uint32_t hdr;
      if (kind == 0) spec_tcp(&ip, &l4, (uint8_t)fam, c, 40000, vip, 80, PB_TCP_SYN, 0), hdr = 40;
      else if (kind == 1) spec_udp(&ip, &l4, (uint8_t)fam, c, 5000, vip, 53, 0), hdr = 8;
      else {
        if (fam == 4) pb_ip4(&ip, c, vip);
        else pb_ip6(&ip, c, vip);
        pb_icmp(&l4, (uint8_t)fam, fam == 4 ? 8 : 128, 0, 1);
        hdr = 8;
      }
      bld(g_in, NULL, &ip, &l4);
      uint32_t l3 = fam == 4 ? 20 : 40;
      for (uint32_t k = 0; k < hdr; k++) {
        uint8_t *p = g_in + PB_VNET_LEN;
        if (fam == 4) {
          pb_put_be16(p + 2, (uint16_t)(l3 + k));
          fix_ip4_csum(p);
        } else {
          if (k == 0) continue; /* payload length 0 is the jumbogram case */
          pb_put_be16(p + 4, (uint16_t)k);
        }
        enum l4_drop_reason want = (kind == 0 && k >= 20) ? L4_DROP_BAD_L4_HEADER : L4_DROP_TRUNCATED;
        char desc[96];
        snprintf(desc, sizeof(desc), "v%d %s: L4 cut to %u bytes", fam, kind == 0 ? "tcp" : kind == 1 ? "udp" : "icmp", k);
        expect_drop(&e, desc, g_in, PB_VNET_LEN + l3 + k, want);
      }
    }
  }
  env_free(&e);
}
