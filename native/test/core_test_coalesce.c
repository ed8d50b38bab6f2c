/* UDP coalescing (native/core/coalesce.c). The property: a run of datagrams merged into one super-packet, cut
 * again the way the kernel cuts it (pb_gso_split, the builder's own model of __udp_gso_segment), gives back
 * exactly the datagrams that went in, byte for byte, checksums finished. And what must not be merged is not. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/coalesce.h"
#include "test_util.h"
#include "tests.h"

#define RUN_MAX 80
static uint8_t g_dgram[RUN_MAX][2048];
static uint32_t g_dgram_len[RUN_MAX];

/* Datagram i of a run: C4:5000 -> B4A:8080 (or v6), payload `paylen` bytes of the pattern from offset 7*i,
 * IPv4 identification id0 + i; offloaded checksum (NEEDS_CSUM) or a full one the kernel verified (DATA_VALID). */
static uint32_t dgram(uint8_t *out, uint8_t family, int i, uint32_t paylen, uint16_t id0, bool partial) {
  struct pb_ip ip;
  struct pb_l4 l4;
  spec_udp(&ip, &l4, family, family == 4 ? C4 : C6, 5000, family == 4 ? B4A : B6A, 8080, paylen);
  ip.id = (uint16_t)(id0 + i);
  ip.frag = PB_IP4_DF;
  ip.ttl = 63;
  l4.payload = PAY + 7 * i;
  l4.csum = partial ? PB_CSUM_PARTIAL : PB_CSUM_FULL;
  struct pb_vnet v = {0};
  if (!partial) v.flags = PB_VNET_F_DATA_VALID;
  uint32_t n = pb_build(out, 2048, partial ? NULL : &v, &ip, &l4);
  if (!n) abort();
  return n;
}

/* The IP packet a datagram becomes on the wire: its offloaded checksum finished. */
static void wire(const uint8_t *d, uint32_t len, uint8_t *out, uint32_t *out_len) {
  memcpy(out, d + PB_VNET_LEN, len - PB_VNET_LEN);
  *out_len = len - PB_VNET_LEN;
  struct pb_vnet v;
  pb_vnet_read(d, &v);
  if (v.flags & PB_VNET_F_NEEDS_CSUM) pb_finish_partial(out, *out_len, v.csum_start, v.csum_offset, true);
}

/* Feeds datagrams [0, n) into an empty coalescer, expecting every one to be taken; returns the segment count
 * and leaves the finished output in out/out_len. */
static uint32_t merge(struct l4_coalescer *c, int n, uint8_t *out, uint32_t *out_len) {
  CHECK(l4_co_start(c, g_dgram[0], g_dgram_len[0]), "datagram 0 starts a run");
  for (int i = 1; i < n; i++) CHECK(l4_co_append(c, g_dgram[i], g_dgram_len[i]), "datagram %d appended", i);
  uint32_t segs;
  *out_len = l4_co_finish(c, &segs);
  memcpy(out, c->buf, *out_len);
  return segs;
}

/* Splits out like the kernel and compares every segment with the datagram that went in. */
static void expect_same_datagrams(const char *desc, const uint8_t *out, uint32_t out_len, int n) {
  static uint8_t segs[RUN_MAX * 2048], want[2048];
  uint32_t lens[RUN_MAX], want_len;
  struct pb_vnet v;
  pb_vnet_read(out, &v);
  CHECK(v.gso_type == PB_GSO_UDP_L4 && (v.flags & PB_VNET_F_NEEDS_CSUM), "%s: a UDP GSO super-packet with an offloaded checksum (gso %u flags %u)",
        desc, v.gso_type, v.flags);
  /* udp_rcv trims a datagram to its UDP length before the socket cuts it: it must cover the whole run */
  struct pb_info in;
  CHECK(pb_parse(out + PB_VNET_LEN, out_len - PB_VNET_LEN, &in) && in.l3_len == out_len - PB_VNET_LEN, "%s: IP length", desc);
  CHECK(pb_be16(out + PB_VNET_LEN + in.l4_off + 4) == in.l3_len - in.l4_off, "%s: UDP length %u, IP payload %u", desc,
        pb_be16(out + PB_VNET_LEN + in.l4_off + 4), in.l3_len - in.l4_off);
  int got = pb_gso_split(out, out_len, segs, 2048, lens, RUN_MAX);
  CHECK(got == n, "%s: split into %d datagrams, want %d", desc, got, n);
  for (int i = 0; i < got && i < n; i++) {
    wire(g_dgram[i], g_dgram_len[i], want, &want_len);
    if (lens[i] != want_len || memcmp(segs + (size_t)i * 2048, want, want_len) != 0) {
      CHECK(false, "%s: datagram %d differs after the split", desc, i);
      pb_hexdump_diff(desc, segs + (size_t)i * 2048, lens[i], want, want_len);
    }
  }
}

void test_coalesce_udp_runs(void) {
  struct l4_coalescer c;
  CHECK(l4_co_init(&c) == 0, "init");
  static uint8_t out[L4_CO_BUF_SIZE];
  uint32_t out_len, segs;

  /* IPv4, offloaded checksums, 64-byte payloads, identifications wrapping through 0xffff */
  for (int i = 0; i < 5; i++) g_dgram_len[i] = dgram(g_dgram[i], 4, i, 64, 0xfffe, true);
  segs = merge(&c, 5, out, &out_len);
  CHECK(segs == 5 && out_len == PB_VNET_LEN + 20 + 8 + 5 * 64, "v4: 5 datagrams in %u bytes (segs %u)", out_len, segs);
  struct pb_vnet v;
  pb_vnet_read(out, &v);
  CHECK(v.gso_size == 64 && v.hdr_len == 28 && v.csum_start == 20 && v.csum_offset == 6, "v4: gso_size %u hdr_len %u csum %u+%u",
        v.gso_size, v.hdr_len, v.csum_start, v.csum_offset);
  CHECK(pb_ip4_hdr_sum(out + PB_VNET_LEN) == 0xffff, "v4: the super-packet's IPv4 header checksum is right (ip_rcv checks it)");
  expect_same_datagrams("v4 x5", out, out_len, 5);

  /* a shorter datagram ends the run; nothing is appended after it */
  for (int i = 0; i < 3; i++) g_dgram_len[i] = dgram(g_dgram[i], 4, i, 100, 700, true);
  g_dgram_len[3] = dgram(g_dgram[3], 4, 3, 40, 700, true);
  CHECK(l4_co_start(&c, g_dgram[0], g_dgram_len[0]), "start");
  for (int i = 1; i < 4; i++) CHECK(l4_co_append(&c, g_dgram[i], g_dgram_len[i]), "short run: %d appended", i);
  uint8_t extra[2048];
  uint32_t extra_len = dgram(extra, 4, 4, 40, 700, true);
  CHECK(!l4_co_append(&c, extra, extra_len), "nothing after the shorter datagram");
  out_len = l4_co_finish(&c, &segs);
  memcpy(out, c.buf, out_len);
  CHECK(segs == 4, "short run: 4 datagrams");
  expect_same_datagrams("v4 3x100 + 40", out, out_len, 4);

  /* IPv6, full checksums the kernel verified */
  for (int i = 0; i < 7; i++) g_dgram_len[i] = dgram(g_dgram[i], 6, i, 1200, 0, false);
  segs = merge(&c, 7, out, &out_len);
  CHECK(segs == 7, "v6: 7 datagrams");
  expect_same_datagrams("v6 x7 DATA_VALID", out, out_len, 7);

  /* limits: at most L4_CO_MAX_SEGS datagrams, and 64 KiB */
  for (int i = 0; i <= L4_CO_MAX_SEGS; i++) g_dgram_len[i] = dgram(g_dgram[i], 4, i, 16, 1, true);
  CHECK(l4_co_start(&c, g_dgram[0], g_dgram_len[0]), "start");
  for (int i = 1; i < L4_CO_MAX_SEGS; i++) l4_co_append(&c, g_dgram[i], g_dgram_len[i]);
  CHECK(!l4_co_append(&c, g_dgram[L4_CO_MAX_SEGS], g_dgram_len[L4_CO_MAX_SEGS]), "datagram %d refused", L4_CO_MAX_SEGS + 1);
  out_len = l4_co_finish(&c, &segs);
  memcpy(out, c.buf, out_len);
  CHECK(segs == L4_CO_MAX_SEGS, "%u datagrams at most", segs);
  expect_same_datagrams("64 x 16 B", out, out_len, L4_CO_MAX_SEGS);
  int taken = 1;
  for (int i = 0; i < 60; i++) g_dgram_len[i] = dgram(g_dgram[i], 4, i, 1472, 9, true);
  CHECK(l4_co_start(&c, g_dgram[0], g_dgram_len[0]), "start");
  while (taken < 60 && l4_co_append(&c, g_dgram[taken], g_dgram_len[taken])) taken++;
  CHECK(taken == (65535 - 28) / 1472, "1472-byte payloads: %d fit in 64 KiB", taken);
  out_len = l4_co_finish(&c, &segs);
  CHECK(out_len - PB_VNET_LEN <= 65535, "IP length %u", out_len - PB_VNET_LEN);
  l4_co_destroy(&c);
}

void test_coalesce_refusals(void) {
  struct l4_coalescer c;
  CHECK(l4_co_init(&c) == 0, "init");
  uint8_t a[2048], b[2048];
  uint32_t alen = dgram(a, 4, 0, 64, 100, true), blen, segs;

  /* one datagram alone comes out exactly as it went in */
  CHECK(l4_co_start(&c, a, alen), "start");
  CHECK(!l4_co_start(&c, a, alen), "a second start while holding is refused");
  CHECK(l4_co_finish(&c, &segs) == alen && segs == 1 && memcmp(c.buf, a, alen) == 0, "a lone datagram is unchanged");
  CHECK(l4_co_finish(&c, &segs) == 0 && segs == 0, "empty after finishing");
  CHECK(!l4_co_append(&c, a, alen), "nothing to append to");

  struct pb_ip ip;
  struct pb_l4 l4;
#define SECOND(...)                                                                   \
  do {                                                                                \
    spec_udp(&ip, &l4, 4, C4, 5000, B4A, 8080, 64);                                   \
    ip.id = 101;                                                                      \
    ip.frag = PB_IP4_DF;                                                              \
    ip.ttl = 63;                                                                      \
    l4.csum = PB_CSUM_PARTIAL;                                                        \
    __VA_ARGS__;                                                                      \
    blen = bld(b, NULL, &ip, &l4);                                                    \
  } while (0)
#define REFUSED(desc)                                                                 \
  do {                                                                                \
    CHECK(l4_co_start(&c, a, alen), "start");                                         \
    CHECK(!l4_co_append(&c, b, blen), "%s: not appended", desc);                      \
    l4_co_finish(&c, &segs);                                                          \
  } while (0)
  SECOND((void)0);
  CHECK(l4_co_start(&c, a, alen) && l4_co_append(&c, b, blen), "the control case is appended");
  l4_co_finish(&c, &segs);
  SECOND(l4.sport = 5001);
  REFUSED("another source port");
  SECOND(l4.dport = 8081);
  REFUSED("another destination port");
  SECOND(l4.payload_len = 65);
  REFUSED("a larger payload");
  SECOND(ip.id = 103);
  REFUSED("an identification out of sequence");
  SECOND(ip.ttl = 62);
  REFUSED("another TTL");
  SECOND(ip.tos = 2);
  REFUSED("another TOS (ECN)");
  SECOND(ip.frag = 0);
  REFUSED("without DF where the first had it");
  SECOND(pb_addr(4, C4B, ip.src));
  REFUSED("another client");
  SECOND(l4.csum = PB_CSUM_ZERO);
  REFUSED("no checksum information in the virtio header");
  SECOND(pb_ip6(&ip, C6, B6A));
  REFUSED("another family");

  /* never the start of a run */
  struct pb_vnet dv = {.flags = PB_VNET_F_DATA_VALID};
  SECOND(l4.csum = PB_CSUM_ZERO);
  blen = bld(b, &dv, &ip, &l4);
  CHECK(!l4_co_start(&c, b, blen), "IPv4 sent without a checksum (0) is never merged");
  SECOND(l4.csum = PB_CSUM_FULL);
  CHECK(!l4_co_start(&c, b, blen), "a full checksum nobody verified is never merged");
  SECOND(ip.opts_len = 4; memset(ip.opts, 1, 4));
  CHECK(!l4_co_start(&c, b, blen), "IPv4 with options");
  SECOND(ip.frag = PB_IP4_MF);
  CHECK(!l4_co_start(&c, b, blen), "a first fragment");
  SECOND(l4.payload_len = 0);
  CHECK(!l4_co_start(&c, b, blen), "an empty datagram");
  SECOND(pb_ip6(&ip, C6, B6A); pb_ip6_add_opts(&ip, 60, 8));
  CHECK(!l4_co_start(&c, b, blen), "IPv6 with an extension header");
  spec_tcp(&ip, &l4, 4, C4, 5000, B4A, 8080, PB_TCP_ACK, 64);
  l4.csum = PB_CSUM_PARTIAL;
  blen = bld(b, NULL, &ip, &l4);
  CHECK(!l4_co_start(&c, b, blen), "TCP");
  SECOND((void)0);
  struct pb_vnet gso = {.flags = PB_VNET_F_NEEDS_CSUM, .gso_type = PB_GSO_UDP_L4, .hdr_len = 28, .gso_size = 32, .csum_start = 20, .csum_offset = 6};
  blen = bld(b, &gso, &ip, &l4);
  CHECK(!l4_co_start(&c, b, blen), "a GSO packet already");
  CHECK(c.len == 0, "still empty");
#undef SECOND
#undef REFUSED
  l4_co_destroy(&c);
}
