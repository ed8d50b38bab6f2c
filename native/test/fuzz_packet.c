/* libFuzzer harness for the packet core: one input = one options byte + one buffer as read from the TUN
 * (virtio_net_hdr first). It runs the real l4_process against the fixture tables (fixture_tables.h) and a
 * small flow table, and checks invariants on top of what ASan/UBSan catch:
 *   - a drop always names a reason;
 *   - on TX: the output is no longer than the input, the virtio_net_hdr is untouched, the output re-parses
 *     with l4_parse, its IPv4 header checksum is valid, and an L4 checksum that was valid on input (complete,
 *     or a correct CHECKSUM_PARTIAL seed) is valid on output;
 *   - l4_explain of the packet's tuple (client -> VIP) changes no flow-table byte, is consistent with itself, and
 *     when it says a client's SYN goes by the ring, l4_process sends that SYN to the backend it named;
 *   - a TX output the UDP coalescer (core/coalesce.h) takes, merged with its successor (the next IPv4
 *     identification), splits back, as the kernel cuts it, into exactly those two datagrams.
 *
 * Options byte: bits 0-1 ring (A, B, alternating, empty); bit 2 echo off; bit 3 L4_OPT_NO_ICMP_TRANSLATE;
 * bit 4 keep the flow table from the previous input; bit 5 process the packet twice (second time hits the
 * entry the first created); bits 6-7 advance the clock by 0, 11, 61 or 3601 s before the second run.
 *
 * Seeds: corpus/ (written from the fixtures by `make -C native/test corpus`). Short run: `make fuzz-short`
 * (60 s). Longer runs: see the comment at the top of the Makefile. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/admission.h"
#include "../core/coalesce.h"
#include "../core/dataplane.h"
#include "../core/explain.h"
#include "../core/sync_log.h"
#include "fixture_tables.h"
#include "pkt_builder.h"

#define FUZZ_FLOWS 64

static struct l4_tables *g_tables[4][4]; /* [ring][option bits 2-3] */
static struct l4_flow_table g_ft;
static uint64_t *g_counters;
static uint8_t *g_copy;
static struct l4_coalescer g_co;
static struct l4_probes g_probes; /* every backend slot has a probe outstanding: sport 40001, seq 0xa1b2c3d4 */
/* The verdict trace (core/trace.h), on for inputs of odd length: match 0 takes every packet, match 1 a client,
 * a service and a backend, so both the traced and the untraced copy of the packet path are fuzzed. */
static struct l4_trace_ring g_ring;
static struct l4_sync_log g_sync; /* flow-state sync on for inputs of length 2 or 3 mod 4 (sync_log.h) */
static struct l4_trace g_trace = {.ring = &g_ring, .match = {{.flags = L4_TM_ACTIVE},
                                  {.flags = L4_TM_ACTIVE | L4_TM_CLIENT | L4_TM_SERVICE | L4_TM_BACKEND, .client_family = 4,
                                   .svc_family = 4, .svc_proto = 6, .vport = 80, .bk_family = 4, .bport = 8080,
                                   .client = {198, 51, 100, 7}, .vip = {10, 200, 0, 10}, .backend = {10, 0, 1, 1}}}};

static void fail(const char *what, const uint8_t *pkt, uint32_t len) {
  fprintf(stderr, "fuzz_packet invariant violated: %s (len %u)\n", what, len);
  for (uint32_t i = 0; i < len && i < 128; i++) fprintf(stderr, "%02x%s", pkt[i], (i % 16 == 15) ? "\n" : " ");
  fprintf(stderr, "\n");
  abort();
}

static void init_once(void) {
  if (g_counters) return;
  for (int r = 0; r < 4; r++)
    for (int o = 0; o < 4; o++)
      g_tables[r][o] = fx_tables((enum fx_ring)r, ((o & 1) ? 0 : L4_OPT_ICMP_ECHO) | ((o & 2) ? L4_OPT_NO_ICMP_TRANSLATE : 0));
  /* FX_RING_ALT with option bits 3 also carries a previous ring (FX_RING_B's) for every service, so the
   * second-chance path (dataplane.c) is fuzzed too. */
  static struct fx_input fb, fa;
  static uint32_t prev_words[FX_NSVC * L4_PREV_RING_WORDS];
  fx_input_init(&fb, FX_RING_B, 0);
  fx_input_init(&fa, FX_RING_ALT, L4_OPT_NO_ICMP_TRANSLATE);
  uint32_t base = FX_NSVC * FX_RING_SIZE;
  for (uint32_t i = 0; i < base; i++) fa.rings[base + i] = fb.rings[i];
  for (uint32_t sv = 0; sv < FX_NSVC; sv++) {
    prev_words[sv * 3] = sv;
    prev_words[sv * 3 + 1] = base + sv * FX_RING_SIZE;
    prev_words[sv * 3 + 2] = FX_RING_SIZE;
  }
  fa.in.rings_len = 2 * base;
  fa.in.prev_ring_words = prev_words;
  fa.in.nprev_rings = FX_NSVC;
  char err[256];
  l4_tables_free(g_tables[FX_RING_ALT][3]);
  g_tables[FX_RING_ALT][3] = l4_tables_build(&fa.in, err, sizeof(err));
  if (!g_tables[FX_RING_ALT][3]) {
    fprintf(stderr, "fuzz tables: %s\n", err);
    abort();
  }
  /* Ring bits 0 with option bits 2 are FX_RING_A_B1 tables that admit new flows (core/admission.h): v4 services bounded at 1.25, v6 ones
   * maglev; backend A of every service takes 1 flow, B 2; v4 services drop when full, v6 ones reject (RST, ICMPv6). */
  static struct fx_input fadm;
  fx_input_init(&fadm, FX_RING_A_B1, L4_OPT_NO_ICMP_TRANSLATE);
  for (uint32_t sv = 0; sv < FX_NSVC; sv++) {
    int v4 = FX_SERVICES[sv].family == 4;
    fx_set_admission(&fadm, sv, v4 ? L4_BALANCE_BOUNDED : L4_BALANCE_MAGLEV, v4 ? 125 : 0, v4 ? L4_FULL_DROP : L4_FULL_REJECT);
    fx_set_max_flows(&fadm, 2 * sv, 1);
    fx_set_max_flows(&fadm, 2 * sv + 1, 2);
  }
  l4_tables_free(g_tables[0][2]);
  g_tables[0][2] = l4_tables_build(&fadm.in, err, sizeof(err));
  if (!g_tables[0][2]) {
    fprintf(stderr, "fuzz admission tables: %s\n", err);
    abort();
  }
  if (l4_flow_table_init(&g_ft, FUZZ_FLOWS) != 0 || l4_flow_counts_init(&g_ft, FX_MAX_SERVICES, FX_MAX_BACKENDS) != 0) abort();
  g_counters = calloc(l4_counter_block_words(FX_MAX_SERVICES, FX_MAX_BACKENDS), sizeof(uint64_t));
  g_copy = malloc(PB_MAX + 64);
  if (!g_counters || !g_copy || l4_co_init(&g_co) < 0 || l4_probes_init(&g_probes, FX_MAX_BACKENDS) < 0) abort();
}

/* Is the L4 checksum of this (parsed) IP packet "good" in the sense the invariant needs? For a complete
 * checksum: it verifies. For CHECKSUM_PARTIAL: the field equals the folded pseudo-header sum. */
static int l4_csum_good(const uint8_t *ip, uint32_t len, int partial) {
  struct pb_info in;
  if (!pb_parse(ip, len, &in) || in.l3_len > len || in.l4_off > in.l3_len) return -1;
  uint32_t l4_len = in.l3_len - in.l4_off;
  const uint8_t *l4 = ip + in.l4_off;
  if (in.proto == 17 && l4_len >= 8 && in.family == 4 && !partial && pb_be16(l4 + 6) == 0) return -1; /* none */
  if (partial) {
    int off = in.proto == 6 ? 16 : in.proto == 17 ? 6 : -1;
    if (off < 0 || l4_len < (uint32_t)off + 2) return -1;
    return pb_be16(l4 + off) == pb_fold(pb_pseudo(in.family, in.src, in.dst, in.proto, l4_len));
  }
  return pb_l4_sum(ip, in.l3_len) == 0xffff;
}

/* The IP packet a TX output becomes on the wire (its offloaded checksum finished), at out. */
static uint32_t on_wire(const uint8_t *pkt, uint32_t len, uint8_t *out) {
  struct pb_vnet v;
  pb_vnet_read(pkt, &v);
  memcpy(out, pkt + VNET_HDR_LEN, len - VNET_HDR_LEN);
  if (v.flags & PB_VNET_F_NEEDS_CSUM) pb_finish_partial(out, len - VNET_HDR_LEN, v.csum_start, v.csum_offset, true);
  return len - VNET_HDR_LEN;
}

/* Merges the output with its successor (same datagram, next IPv4 identification) and splits the result. */
static void check_coalesce(const uint8_t *out, uint32_t len, const uint8_t *data, uint32_t data_len) {
  if (!l4_co_start(&g_co, out, len)) return;
  static uint8_t next[PB_MAX + 64], segs[2 * 66000], want[66000];
  memcpy(next, out, len);
  uint8_t *ip = next + VNET_HDR_LEN;
  if ((ip[0] >> 4) == 4) {
    pb_put_be16(ip + 4, (uint16_t)(pb_be16(ip + 4) + 1));
    pb_put_be16(ip + 10, 0);
    pb_put_be16(ip + 10, (uint16_t)~pb_fold(pb_sum(0, ip, 20)));
  }
  uint32_t n;
  if (!l4_co_append(&g_co, next, len)) fail("a datagram's successor was not merged", data, data_len);
  uint32_t super = l4_co_finish(&g_co, &n);
  uint32_t lens[3];
  struct pb_info si; /* udp_rcv trims to the UDP length before the receiving socket cuts the run */
  if (!pb_parse(g_co.buf + VNET_HDR_LEN, super - VNET_HDR_LEN, &si) ||
      pb_be16(g_co.buf + VNET_HDR_LEN + si.l4_off + 4) != si.l3_len - si.l4_off)
    fail("a merged pair's UDP length does not cover it", data, data_len);
  if (n != 2 || pb_gso_split(g_co.buf, super, segs, 66000, lens, 3) != 2) fail("a merged pair does not split in two", data, data_len);
  const uint8_t *pair[2] = {out, next};
  for (int i = 0; i < 2; i++) {
    uint32_t w = on_wire(pair[i], len, want);
    if (lens[i] != w || memcmp(segs + (size_t)i * 66000, want, w) != 0) fail("a merged datagram changed", data, data_len);
  }
}

/* Explains the tuple of the packet in data (if it is TCP or UDP; a client's SYN as a SYN) and checks the explanation
 * against itself and the flow table (left as it was). Returns whether it said a client's SYN goes to a backend (by
 * its entry or by the ring), with the backend. */
static int explain_one(struct l4_ctx *ctx, const struct l4_tables *t, const uint8_t *data, uint32_t len, struct l4_explain *x) {
  static uint8_t copy[PB_MAX], before[FUZZ_FLOWS * 2 * sizeof(struct l4_flow)];
  memcpy(copy, data, len);
  struct l4_pkt p;
  if (l4_parse(copy, len, &p) != L4_DROP_NONE || (p.proto != 6 && p.proto != 17)) return 0;
  int syn = p.proto == 6 && (p.tcp_flags & (TCP_SYN | TCP_ACK | TCP_RST)) == TCP_SYN;
  struct l4_explain_query q = {p.family, p.proto, {0}, {0}, (uint16_t)((p.sport >> 8) | (p.sport << 8)),
                               (uint16_t)((p.dport >> 8) | (p.dport << 8)), (uint8_t)syn};
  memcpy(q.client, p.saddr, p.addr_len);
  memcpy(q.vip, p.daddr, p.addr_len);
  size_t ft_bytes = (size_t)(g_ft.capacity * sizeof(struct l4_flow));
  if (ft_bytes > sizeof(before)) abort();
  memcpy(before, g_ft.entries, ft_bytes);
  l4_explain(t, &g_ft, NULL, ctx->now, ctx->now_ms, &q, x);
  if (memcmp(before, g_ft.entries, ft_bytes) != 0) fail("explain changed the flow table", data, len);
  if (x->verdict == L4_EXPLAIN_ENTRY && !(x->flow_found && x->flow_valid && x->backend == x->flow_backend)) fail("explain: entry verdict without its entry", data, len);
  if (x->verdict == L4_EXPLAIN_RING && ((x->backend != x->ring_backend && !t->services[x->service].admission) || x->backend >= t->max_backends))
    fail("explain: ring verdict without the ring's backend", data, len);
  if (x->verdict == L4_EXPLAIN_DROP && (x->drop_reason == L4_DROP_NONE || x->backend != L4_NO_BACKEND)) fail("explain: drop without a reason", data, len);
  if (x->verdict > L4_EXPLAIN_RING) fail("explain: unknown verdict", data, len);
  if (x->syn_choice > L4_SYN_RETRANSMITTED || (x->syn_choice != L4_SYN_FOLLOWS && (!x->flow_found || x->verdict == L4_EXPLAIN_ENTRY)))
    fail("explain: a SYN choice without a live entry it leaves", data, len);
  return syn && x->verdict != L4_EXPLAIN_DROP;
}

static void run_one(struct l4_ctx *ctx, const struct l4_tables *t, const uint8_t *data, uint32_t len) {
  /* Exactly-sized heap copy, so a read past the end is an ASan report. */
  uint8_t *buf = malloc(len ? len : 1);
  if (!buf) abort();
  memcpy(buf, data, len);
  uint32_t out_len = len;
  uint64_t rst_before = ctx->counters[L4_Q_PROBE_RST_SENT], rejected_before = ctx->counters[L4_Q_FULL_REJECTED];
  struct l4_explain x;
  int syn_sent = explain_one(ctx, t, data, len, &x);
  enum l4_verdict v = l4_process(ctx, t, buf, &out_len);
  if (syn_sent) {
    struct l4_pkt o;
    memcpy(g_copy, buf, out_len);
    if (v != L4_VERDICT_TX || l4_parse(g_copy, out_len, &o) != L4_DROP_NONE || memcmp(o.daddr, x.backend_addr, o.addr_len) != 0 ||
        o.dport != (uint16_t)((x.backend_port >> 8) | (x.backend_port << 8)))
      fail("a SYN went elsewhere than explain said", data, len);
  }
  /* A backend's SYN-ACK to the probe address becomes a fresh RST (core/probe.c): no offloads, full checksums. */
  int probe_rst = ctx->counters[L4_Q_PROBE_RST_SENT] != rst_before;
  /* A refused new flow (core/refuse.h) is a fresh packet as well: a RST, or an ICMP error checked below. */
  int refused = ctx->counters[L4_Q_FULL_REJECTED] != rejected_before;
  if (v == L4_VERDICT_DROP) {
    if (ctx->last_drop == L4_DROP_NONE || ctx->last_drop >= L4_DROP_MAX) fail("drop without a reason", data, len);
    free(buf);
    return;
  }
  if (v != L4_VERDICT_TX) fail("unknown verdict", data, len);
  if (out_len > len) fail("output longer than input", data, len);
  if (out_len < VNET_HDR_LEN + 20) fail("output shorter than any IP packet", data, len);
  static const uint8_t zero_vnet[VNET_HDR_LEN];
  if (memcmp(buf, probe_rst || refused ? zero_vnet : data, VNET_HDR_LEN) != 0) fail("virtio_net_hdr changed", data, len);
  memcpy(g_copy, buf, out_len);
  struct l4_pkt p;
  enum l4_drop_reason r = l4_parse(g_copy, out_len, &p);
  if (r != L4_DROP_NONE) {
    fprintf(stderr, "re-parse: %s\n", L4_DROP_REASON_NAMES[r]);
    fail("output does not re-parse", data, len);
  }
  const uint8_t *ip = buf + VNET_HDR_LEN;
  uint32_t iplen = out_len - VNET_HDR_LEN;
  if ((ip[0] >> 4) == 4 && pb_ip4_hdr_sum(ip) != 0xffff) fail("IPv4 header checksum invalid on output", data, len);
  int partial = (data[VNET_OFF_FLAGS] & VNET_F_NEEDS_CSUM) != 0;
  if (refused) {
    if (pb_l4_sum(ip, iplen) != 0xffff) fail("refusal with an invalid checksum", data, len);
    free(buf);
    return;
  }
  if (probe_rst) {
    if (l4_csum_good(ip, iplen, 0) != 1 || (ip[(ip[0] >> 4) == 4 ? 33 : 53] & 0x3f) != 0x04) fail("probe answer is not a valid RST", data, len);
    free(buf);
    return;
  }
  if (l4_csum_good(data + VNET_HDR_LEN, len - VNET_HDR_LEN, partial) == 1 && l4_csum_good(ip, iplen, partial) != 1)
    fail("a valid L4 checksum became invalid", data, len);
  if (l4_csum_good(ip, iplen, partial) == 1) check_coalesce(buf, out_len, data, len);
  free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  init_once();
  if (size < 1 || size > PB_MAX) return 0;
  uint8_t opt = data[0];
  const uint8_t *pkt = data + 1;
  uint32_t len = (uint32_t)(size - 1);
  const struct l4_tables *t = g_tables[opt & 3][(opt >> 2) & 3];
  if (!(opt & 0x10)) {
    memset(g_ft.entries, 0, (size_t)(g_ft.capacity * sizeof(struct l4_flow)));
    for (uint32_t b = 0; b < g_ft.nbk; b++) atomic_store(&g_ft.active_bk[b], 0);
    for (uint32_t sv = 0; sv < g_ft.nsvc; sv++) atomic_store(&g_ft.active_svc[sv], 0);
  }
  for (uint32_t b = 0; b < FX_MAX_BACKENDS; b++) l4_probe_arm(&g_probes, b, 40001, 0xa1b2c3d4);
  struct l4_ctx ctx = {.counters = g_counters, .max_services = FX_MAX_SERVICES, .max_backends = FX_MAX_BACKENDS,
                       .flows = &g_ft, .now = 100000, .probes = &g_probes, .trace = (len & 1) ? &g_trace : NULL,
                       .sync = (len & 2) ? &g_sync : NULL};
  run_one(&ctx, t, pkt, len);
  if (opt & 0x20) {
    static const uint32_t advance[4] = {0, 11, 61, 3601};
    ctx.now += advance[opt >> 6];
    run_one(&ctx, t, pkt, len);
  }
  struct l4_trace_rec rec[2];
  while (l4_trace_ring_read(&g_ring, rec, 2) > 0) {
  }
  struct l4_sync_rec srec[8];
  while (l4_sync_log_read(&g_sync, srec, 8) > 0) {
  }
  return 0;
}
