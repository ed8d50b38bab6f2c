/* libFuzzer harness for the ICMP error translation (dataplane.c icmp_error). fuzz_packet reaches it with raw
 * bytes but checks no ICMP checksum and nothing about the quote; here every input is a well-formed ICMP or
 * ICMPv6 error about a flow of the fixture tables (fixture_tables.h), whose quote the fuzzer cuts and corrupts:
 *   byte 0: bit 0 IPv6; bit 1 direction (0: about our reply, sent to the VIP; 1: about a forwarded packet, sent to
 *           the client, from the backend itself when bit 5); bits 2-3 the error type; bit 4 a UDP flow (else
 *           TCP); bits 6-7 the ring (A, B, alternating);
 *   byte 1: where the quote is cut (every length from 1 byte to the whole packet);
 *   the rest: XORed over the quote from its first byte.
 * Checked on top of ASan/UBSan, for every translated error: the length is unchanged; the output re-parses; the
 * outer IPv4 header checksum and the ICMP checksum are valid; only addresses, ports and checksums changed; the
 * quote now names the backend (about a reply) or the VIP and service port (about a forwarded packet), and the
 * outer destination is that backend (about a reply); a quoted IPv4 header checksum and a complete quoted L4
 * checksum (the whole datagram present, as its own header says) that were valid stay valid. A drop names a reason. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/dataplane.h"
#include "fixture_tables.h"
#include "pkt_builder.h"

#define CLIENT4 "198.51.100.7"
#define CLIENT6 "2001:db8::7"
#define ROUTER4 "203.0.113.1"
#define ROUTER6 "2001:db8:ff::1"

static struct l4_tables *g_tables[3];
static struct l4_flow_table g_ft;
static uint64_t *g_counters;

static void fail(const char *what, const uint8_t *pkt, uint32_t len) {
  fprintf(stderr, "fuzz_icmp invariant violated: %s (len %u)\n", what, len);
  for (uint32_t i = 0; i < len && i < 160; i++) fprintf(stderr, "%02x%s", pkt[i], (i % 16 == 15) ? "\n" : " ");
  fprintf(stderr, "\n");
  abort();
}

static void init_once(void) {
  if (g_counters) return;
  for (int r = 0; r < 3; r++) g_tables[r] = fx_tables((enum fx_ring)r, 0);
  if (l4_flow_table_init(&g_ft, 64) != 0) abort();
  g_counters = calloc(l4_counter_block_words(FX_MAX_SERVICES, FX_MAX_BACKENDS), sizeof(uint64_t));
  if (!g_counters) abort();
}

/* The service of the fixture tables with this family and protocol (port 80 TCP, 53 UDP). */
static uint32_t service_of(int v6, int udp) { return v6 ? (udp ? FX_SVC_V6_UDP : FX_SVC_V6_TCP) : (udp ? FX_SVC_V4_UDP : FX_SVC_V4_TCP); }

static bool is_backend_of(uint32_t svc, uint8_t fam, const uint8_t *addr, uint16_t port) {
  for (uint32_t b = 0; b < FX_NBK; b++) {
    if (FX_BACKENDS[b].service != svc) continue;
    uint8_t a[16];
    pb_addr(fam, FX_BACKENDS[b].addr, a);
    if (memcmp(a, addr, fam == 4 ? 4 : 16) == 0 && FX_BACKENDS[b].port == port) return true;
  }
  return false;
}

/* The quoted L4 header's offset in a quote (IPv4 header length, or 40 for IPv6 straight to TCP/UDP); 0 when
 * the quote is not laid out that way (a corrupted version or next header), which the mask check then skips. */
static uint32_t quoted_l4_off(const uint8_t *q, uint32_t qn, int v6) {
  if (qn < 1) return 0;
  if (!v6) return (q[0] >> 4) == 4 && (q[0] & 0xf) >= 5 ? (uint32_t)(q[0] & 0xf) * 4 : 0;
  return qn >= 40 && (q[0] >> 4) == 6 && (q[6] == 6 || q[6] == 17) ? 40 : 0;
}

/* Is byte i of the IP packet one the translation may change? */
static bool may_change(uint32_t i, int v6, uint32_t icmp_off, uint32_t qoff, uint32_t ql4, int udp) {
  uint32_t alen = v6 ? 16 : 4, a0 = v6 ? 8 : 12;
  if (i >= a0 && i < a0 + 2 * alen) return true;   /* outer addresses */
  if (!v6 && (i == 10 || i == 11)) return true;    /* outer IPv4 header checksum */
  if (i == icmp_off + 2 || i == icmp_off + 3) return true; /* ICMP checksum */
  if (i < qoff) return false;
  uint32_t j = i - qoff;
  if (j >= a0 && j < a0 + 2 * alen) return true;   /* quoted addresses */
  if (!v6 && (j == 10 || j == 11)) return true;    /* quoted IPv4 header checksum */
  if (!ql4) return false;
  if (j >= ql4 && j < ql4 + 4) return true;        /* quoted ports */
  uint32_t ck = ql4 + (udp ? 6 : 16);
  return j == ck || j == ck + 1;                   /* quoted L4 checksum */
}

static uint16_t icmp_sum(const uint8_t *ip, uint32_t len, int v6, uint32_t off) {
  uint32_t s = v6 ? pb_pseudo(6, ip + 8, ip + 24, 58, len - off) : 0;
  return pb_fold(pb_sum(s, ip + off, len - off));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  init_once();
  if (size < 2 || size > 2 + PB_MAX / 2) return 0;
  uint8_t opt = data[0];
  int v6 = opt & 1, about_forwarded = (opt >> 1) & 1, udp = (opt >> 4) & 1, from_backend = (opt >> 5) & 1;
  int ring = (opt >> 6) % 3;
  uint8_t fam = v6 ? 6 : 4;
  uint32_t svc = service_of(v6, udp);
  const struct fx_service_def *sd = &FX_SERVICES[svc];
  const struct l4_tables *t = g_tables[ring];
  /* no flow entries (the table is cleared for every input): the error follows the ring's choice */
  memset(g_ft.entries, 0, (size_t)(g_ft.capacity * sizeof(struct l4_flow)));
  const char *client = v6 ? CLIENT6 : CLIENT4;

  /* the quoted packet: about a reply VIP:port -> client:40000, or a forwarded client:40000 -> backend A */
  static uint8_t q[PB_MAX], in[PB_MAX + 64], out[PB_MAX + 64];
  struct pb_ip qip;
  struct pb_l4 ql4;
  const struct fx_backend_def *ba = NULL;
  for (uint32_t b = 0; b < FX_NBK; b++)
    if (FX_BACKENDS[b].service == svc) {
      ba = &FX_BACKENDS[b];
      break;
    }
  const char *qsrc = about_forwarded ? client : sd->vip, *qdst = about_forwarded ? ba->addr : client;
  uint16_t qsport = about_forwarded ? 40000 : sd->port, qdport = about_forwarded ? ba->port : 40000;
  if (v6) pb_ip6(&qip, qsrc, qdst);
  else pb_ip4(&qip, qsrc, qdst);
  if (udp) pb_udp(&ql4, qsport, qdport);
  else pb_tcp(&ql4, qsport, qdport, PB_TCP_ACK);
  static const uint8_t pay[64] = {1, 2, 3, 4, 5, 6, 7, 8};
  ql4.payload = pay;
  ql4.payload_len = sizeof(pay);
  uint32_t qfull = pb_build_ip(q, sizeof(q), &qip, &ql4);
  uint32_t qn = 1 + data[1] % qfull;
  for (size_t i = 2; i < size && i - 2 < qn; i++) q[i - 2] ^= data[i];

  static const uint8_t types4[4] = {3, 11, 12, 3}, types6[4] = {1, 2, 3, 4};
  uint8_t type = v6 ? types6[(opt >> 2) & 3] : types4[(opt >> 2) & 3];
  struct pb_ip ip;
  struct pb_l4 l4;
  const char *osrc = about_forwarded ? (from_backend ? ba->addr : (v6 ? ROUTER6 : ROUTER4)) : (v6 ? ROUTER6 : ROUTER4);
  const char *odst = about_forwarded ? client : sd->vip;
  if (v6) pb_ip6(&ip, osrc, odst);
  else pb_ip4(&ip, osrc, odst);
  ip.frag = 0;
  pb_icmp(&l4, fam, type, 4, type == 2 && v6 ? 1280 : 0);
  l4.payload = q;
  l4.payload_len = qn;
  uint32_t n = pb_build(in, sizeof(in), NULL, &ip, &l4);
  if (!n) return 0;

  uint8_t *buf = malloc(n);
  if (!buf) abort();
  memcpy(buf, in, n);
  uint32_t out_len = n;
  struct l4_ctx ctx = {.counters = g_counters, .max_services = FX_MAX_SERVICES, .max_backends = FX_MAX_BACKENDS,
                       .flows = &g_ft, .now = 1000};
  enum l4_verdict v = l4_process(&ctx, t, buf, &out_len);
  if (v == L4_VERDICT_DROP) {
    if (ctx.last_drop == L4_DROP_NONE || ctx.last_drop >= L4_DROP_MAX) fail("drop without a reason", in, n);
    free(buf);
    return 0;
  }
  if (out_len != n) fail("the length changed", in, n);
  memcpy(out, buf, n);
  free(buf);
  struct l4_pkt p;
  if (l4_parse(out, out_len, &p) != L4_DROP_NONE) fail("output does not re-parse", in, n);
  const uint8_t *oi = out + VNET_HDR_LEN, *ii = in + VNET_HDR_LEN;
  uint32_t il = n - VNET_HDR_LEN, icmp_off = v6 ? 40 : 20, qoff = icmp_off + 8;
  if (!v6 && pb_ip4_hdr_sum(oi) != 0xffff) fail("outer IPv4 header checksum invalid", in, n);
  if (icmp_sum(oi, il, v6, icmp_off) != 0xffff) fail("ICMP checksum invalid", in, n);
  uint32_t ql4o = quoted_l4_off(ii + qoff, qn, v6);
  if (ql4o) {
    for (uint32_t i = 0; i < il; i++)
      if (oi[i] != ii[i] && !may_change(i, v6, icmp_off, qoff, ql4o, udp)) fail("a byte changed that is not an address, port or checksum", in, n);
  }
  /* what the quote and the outer header must say now (when the ports are in the quote) */
  uint32_t alen = v6 ? 16 : 4, a0 = v6 ? 8 : 12;
  const uint8_t *oq = oi + qoff;
  if (ql4o && qn >= ql4o + 4) {
    if (!about_forwarded) {
      if (!is_backend_of(svc, fam, oq + a0, pb_be16(oq + ql4o))) fail("the quote about a reply does not name a backend", in, n);
      if (memcmp(oi + a0 + alen, oq + a0, alen) != 0) fail("the error does not go to the quoted backend", in, n);
    } else {
      uint8_t vip[16];
      pb_addr(fam, sd->vip, vip);
      if (memcmp(oq + a0 + alen, vip, alen) != 0 || pb_be16(oq + ql4o + 2) != sd->port) fail("the quote does not name the VIP and service port", in, n);
      /* the complaining node is the backend the quote was addressed to: it speaks as the VIP */
      const uint8_t *qbk = ii + qoff + a0 + alen;
      if (memcmp(ii + a0, qbk, alen) == 0 && memcmp(oi + a0, vip, alen) != 0) fail("the backend's own error does not come from the VIP", in, n);
    }
  }
  if (!v6 && qn >= 20 && pb_ip4_hdr_sum(ii + qoff) == 0xffff && pb_ip4_hdr_sum(oq) != 0xffff) fail("a valid quoted IPv4 header checksum became invalid", in, n);
  /* "Complete": every byte of the quoted datagram is there AND its own IP header says so. The data plane bounds a
   * quote by the quoted header's length (never trusting more than both say), so with a corrupted, shorter length
   * it sees no L4 checksum to update; the receiver ignores quoted checksums anyway. */
  uint32_t qstated = v6 ? 40u + pb_be16(ii + qoff + 4) : pb_be16(ii + qoff + 2);
  if (ql4o && qn == qfull && qstated == qn && pb_l4_sum(ii + qoff, qn) == 0xffff && pb_l4_sum(oq, qn) != 0xffff) fail("a valid complete quoted L4 checksum became invalid", in, n);
  return 0;
}
