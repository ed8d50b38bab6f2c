/* libFuzzer harness for the UDP coalescer (core/coalesce.c). fuzz_packet merges one translated datagram with
 * one exact successor; here the fuzzer writes whole sequences of datagrams of one flow that differ from the one
 * before in the ways that matter (payload size, IPv4 identification, ports, TTL, offload flags, a zero IPv4 UDP
 * checksum, any header byte), and they run through the coalescer the way the worker writes them: append while
 * it takes them, else finish the run and start a new one.
 *   byte 0: bit 0 IPv6; bit 1 checksums offloaded (NEEDS_CSUM) rather than verified (DATA_VALID);
 *   bytes 1-2: the first datagram's payload size (1..1472);
 *   then one op byte per further datagram (at most 100), each maybe followed by an argument byte:
 *     bits 0-1: payload 1 shorter by arg+1, 2 longer by arg+1, else the same; bit 2: IPv4 identification not
 *     counted up; bit 3: another source port; bit 4: another TTL / hop limit; bit 5: a GSO type set; bit 6: IPv4
 *     UDP checksum 0 (with DATA_VALID); bit 7: XOR the byte after the next one into the IP or UDP header at arg
 *     (checksums then made what l4_process would leave: see fix_sums).
 * Checked on top of ASan/UBSan: every run the coalescer finishes is what the datagrams appended to it become
 * again: one datagram exactly as it came, several a super-packet that the kernel's segmentation (pb_gso_split,
 * written from __udp_gso_segment independently of coalesce.c) cuts into exactly those datagrams as they would
 * have left (offloaded checksums finished), every one but the last of the first one's payload size; a refused
 * append changes nothing; a run never exceeds L4_CO_MAX_SEGS datagrams or 64 KiB. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/coalesce.h"
#include "pkt_builder.h"

#define MAX_DGRAMS 100
#define MAX_PAYLOAD 1472
#define SEG_STRIDE 1600

static struct l4_coalescer g_co;
static uint8_t g_pkts[MAX_DGRAMS + 1][PB_VNET_LEN + 40 + 8 + MAX_PAYLOAD + 255 + 1];
static uint32_t g_lens[MAX_DGRAMS + 1];
static uint8_t g_segs[(L4_CO_MAX_SEGS + 1) * SEG_STRIDE], g_want[SEG_STRIDE];

static void fail(const char *what, int first, int n) {
  fprintf(stderr, "fuzz_coalesce invariant violated: %s (run of datagrams %d..%d)\n", what, first, first + n - 1);
  abort();
}

/* After a header byte was changed: the checksums the datagram would carry coming out of l4_process, which
 * keeps an IPv4 header checksum valid, a NEEDS_CSUM seed the pseudo-header sum, and a DATA_VALID checksum
 * (verified by the kernel on the way in) valid, unless the datagram was sent without one (0). */
static void fix_sums(uint8_t *pkt, uint32_t len, int v6, int offload) {
  uint8_t *ip = pkt + PB_VNET_LEN;
  uint32_t off = v6 ? 40 : 20, ip_len = len - PB_VNET_LEN;
  if (!v6) {
    pb_put_be16(ip + 10, 0);
    pb_put_be16(ip + 10, (uint16_t)~pb_fold(pb_sum(0, ip, 20)));
  }
  uint8_t *udp = ip + off;
  uint32_t udp_len = ip_len - off, ps = pb_pseudo(v6 ? 6 : 4, ip + (v6 ? 8 : 12), ip + (v6 ? 24 : 16), 17, udp_len);
  if (offload) {
    pb_put_be16(udp + 6, pb_fold(ps));
  } else if (v6 || pb_be16(udp + 6) != 0) {
    pb_put_be16(udp + 6, 0);
    uint16_t c = (uint16_t)~pb_fold(pb_sum(ps, udp, udp_len));
    pb_put_be16(udp + 6, c ? c : 0xffff);
  }
}

/* Datagram i as it would leave without coalescing: the IP packet, an offloaded checksum finished. */
static uint32_t on_wire(int i, uint8_t *out) {
  struct pb_vnet v;
  pb_vnet_read(g_pkts[i], &v);
  uint32_t n = g_lens[i] - PB_VNET_LEN;
  memcpy(out, g_pkts[i] + PB_VNET_LEN, n);
  if (v.flags & PB_VNET_F_NEEDS_CSUM) pb_finish_partial(out, n, v.csum_start, v.csum_offset, true);
  return n;
}

/* The run of datagrams first..first+n-1 was finished into `len` bytes of g_co.buf. */
static void check_run(int first, uint32_t len, uint32_t segs) {
  if (segs < 1 || segs > L4_CO_MAX_SEGS) fail("run size out of bounds", first, (int)segs);
  if (len > L4_CO_BUF_SIZE) fail("run longer than 64 KiB", first, (int)segs);
  if (segs == 1) {
    if (len != g_lens[first] || memcmp(g_co.buf, g_pkts[first], len) != 0) fail("a single datagram changed", first, 1);
    return;
  }
  uint32_t lens[L4_CO_MAX_SEGS + 1];
  int got = pb_gso_split(g_co.buf, len, g_segs, SEG_STRIDE, lens, L4_CO_MAX_SEGS + 1);
  if (got != (int)segs) fail("the super-packet does not split into as many datagrams as were merged", first, (int)segs);
  uint32_t first_payload = g_lens[first];
  for (uint32_t k = 0; k < segs; k++) {
    uint32_t w = on_wire(first + (int)k, g_want);
    if (lens[k] != w || memcmp(g_segs + (size_t)k * SEG_STRIDE, g_want, w) != 0) fail("a merged datagram came out different", first, (int)segs);
    if (k + 1 < segs && g_lens[first + (int)k] != first_payload) fail("a datagram before the last has another size", first, (int)segs);
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (!g_co.buf && l4_co_init(&g_co) < 0) abort();
  if (size < 3) return 0;
  int v6 = data[0] & 1, offload = (data[0] >> 1) & 1;
  uint32_t payload = 1 + (uint32_t)((data[1] | data[2] << 8) % MAX_PAYLOAD);
  uint16_t id = 0x1234, sport = 5353;
  uint8_t ttl = 64;
  static uint8_t pay[MAX_PAYLOAD + 256];
  for (uint32_t i = 0; i < sizeof(pay); i++) pay[i] = (uint8_t)(i * 7 + 1);
  size_t pos = 3;
  int n = 0;
  for (; n <= MAX_DGRAMS; n++) {
    uint8_t op = 0, arg = 0, x = 0;
    if (n > 0) {
      if (pos >= size) break;
      op = data[pos++];
      arg = pos < size ? data[pos++] : 0;
      if (op & 0x80) x = pos < size ? data[pos++] : 0;
      if ((op & 3) == 1) payload = payload > (uint32_t)arg + 1 ? payload - arg - 1 : 1;
      if ((op & 3) == 2) payload = payload + arg + 1 > MAX_PAYLOAD ? MAX_PAYLOAD : payload + arg + 1;
      if (!(op & 4)) id++;
      if (op & 8) sport++;
      if (op & 16) ttl--;
    }
    struct pb_ip ip;
    struct pb_l4 l4;
    if (v6) {
      pb_ip6(&ip, "fd4c:ffff::10", "2001:db8::7");
    } else {
      pb_ip4(&ip, "10.200.0.10", "198.51.100.7");
      ip.id = id;
      ip.frag = 0x4000; /* DF, as Linux sends it */
    }
    ip.ttl = ttl;
    pb_udp(&l4, sport, 40000);
    l4.payload = pay;
    l4.payload_len = payload;
    l4.csum = offload ? PB_CSUM_PARTIAL : ((op & 64) && !v6 ? PB_CSUM_ZERO : PB_CSUM_FULL);
    uint32_t len = pb_build(g_pkts[n], sizeof(g_pkts[n]), NULL, &ip, &l4);
    if (!len) abort();
    if (!offload) g_pkts[n][PB_VNET_FLAGS] = PB_VNET_F_DATA_VALID;
    if (op & 32) g_pkts[n][PB_VNET_GSO_TYPE] = 5; /* VIRTIO_NET_HDR_GSO_UDP_L4 on a plain datagram */
    if (op & 0x80) {
      g_pkts[n][PB_VNET_LEN + arg % (v6 ? 48 : 28)] ^= x; /* a byte of the IP or UDP header */
      fix_sums(g_pkts[n], len, v6, offload);
    }
    g_lens[n] = len;
  }
  /* the worker's loop: append while the run takes them, else finish it and start anew */
  int run_first = -1;
  for (int i = 0; i < n; i++) {
    if (run_first >= 0) {
      uint32_t len0 = g_co.len;
      uint16_t segs0 = g_co.segs;
      if (l4_co_append(&g_co, g_pkts[i], g_lens[i])) continue;
      if (g_co.len != len0 || g_co.segs != segs0) fail("a refused datagram changed the run", run_first, segs0);
      uint32_t segs;
      uint32_t len = l4_co_finish(&g_co, &segs);
      check_run(run_first, len, segs);
      run_first = -1;
    }
    if (l4_co_start(&g_co, g_pkts[i], g_lens[i])) run_first = i;
  }
  if (run_first >= 0) {
    uint32_t segs;
    uint32_t len = l4_co_finish(&g_co, &segs);
    check_run(run_first, len, segs);
  }
  return 0;
}
