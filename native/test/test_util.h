/* Test harness shared by the core_test sources: check macros, the per-test environment (real tables, a real
 * flow table, a real l4_ctx) and the fixture runner {description, input, expected output, verdict, reason}. */
#ifndef L4NAT_TEST_UTIL_H
#define L4NAT_TEST_UTIL_H

#include <stdbool.h>
#include <stdint.h>

#include "../core/dataplane.h"
#include "fixture_tables.h"
#include "pkt_builder.h"

extern int g_test_failures; /* failed checks in the current test */

void check_fail(const char *file, int line, const char *expr, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
#define CHECK(cond, ...)                                              \
  do {                                                                \
    if (!(cond)) check_fail(__FILE__, __LINE__, #cond, __VA_ARGS__);  \
  } while (0)

struct env {
  struct l4_flow_table ft;
  uint64_t *counters;
  struct l4_ctx ctx;
  struct l4_tables *t;
  uint32_t buf_extra; /* run_raw's buffer holds this many bytes past the input (room for an ICMP answer) */
};

void env_init(struct env *e, uint64_t flow_capacity, enum fx_ring ring, uint32_t options);
void env_init_tables(struct env *e, uint64_t flow_capacity, struct l4_tables *t);
/* Publishes new tables (as the addon would: later packets see only the new ones). */
void env_publish(struct env *e, struct l4_tables *t);
void env_free(struct env *e);
uint64_t env_q(struct env *e, enum l4_queue_counter c);
uint64_t env_drops(struct env *e, enum l4_drop_reason r);

/* Runs l4_process on an exactly-sized heap copy of in (so ASan sees any read past the end). The result is
 * copied to out (PB_MAX bytes) with its length. */
enum l4_verdict run_raw(struct env *e, const uint8_t *in, uint32_t in_len, uint8_t *out, uint32_t *out_len);

/* Fixture checks; return true when everything matched (and report the difference otherwise). `strict`:
 * no 0x0000/0xffff tolerance for the L4 checksum (see same_packet in test_util.c). */
bool expect_tx(struct env *e, const char *desc, const uint8_t *in, uint32_t in_len, const uint8_t *want,
               uint32_t want_len);
bool expect_tx_strict(struct env *e, const char *desc, const uint8_t *in, uint32_t in_len, const uint8_t *want,
                      uint32_t want_len);
bool expect_drop(struct env *e, const char *desc, const uint8_t *in, uint32_t in_len, enum l4_drop_reason r);

/* The last packet written by expect_tx / run (for further checks). */
extern uint8_t g_out[PB_MAX];
extern uint32_t g_out_len;
extern int g_csum_equiv; /* how many comparisons needed the 0x0000/0xffff tolerance */

/* Flow-table helpers: look up the entry for client:cport -> vip:vport (ports host order). */
bool flow_get(struct env *e, uint8_t family, uint8_t proto, const char *client, uint16_t cport, const char *vip,
              uint16_t vport, struct l4_flow_ref *ref);

/* ---- packet specs shared by the fixture files ---- */
#define C4 "198.51.100.7"
#define C4B "198.51.100.8"
#define VIP4 "10.200.0.10"
#define VIP4_SRC "10.200.0.11"
#define B4A "10.0.1.1"
#define B4B "10.0.1.2"
#define C6 "2001:db8::7"
#define VIP6 "fd4c:ffff::10"
#define B6A "fd4c:1::1"
#define B6B "fd4c:1::2"

extern uint8_t PAY[PB_MAX]; /* a payload pattern */
extern uint8_t g_in[PB_MAX], g_want[PB_MAX];

void spec_tcp(struct pb_ip *ip, struct pb_l4 *l4, uint8_t family, const char *src, uint16_t sport, const char *dst,
              uint16_t dport, uint8_t flags, uint32_t paylen);
void spec_udp(struct pb_ip *ip, struct pb_l4 *l4, uint8_t family, const char *src, uint16_t sport, const char *dst,
              uint16_t dport, uint32_t paylen);
/* pb_build into buf (PB_MAX bytes); aborts if the spec does not fit. */
uint32_t bld(uint8_t *buf, const struct pb_vnet *v, const struct pb_ip *ip, const struct pb_l4 *l4);
/* Fixture whose expected output is the input spec with the destination (fx_fwd) or source (fx_rev) address
 * and port replaced, every checksum computed from scratch by the builder. */
bool fx_fwd(struct env *e, const char *desc, const struct pb_vnet *v, const struct pb_ip *ip, const struct pb_l4 *l4,
            const char *addr, uint16_t port);
bool fx_rev(struct env *e, const char *desc, const struct pb_vnet *v, const struct pb_ip *ip, const struct pb_l4 *l4,
            const char *addr, uint16_t port);
/* The fixture backend slot g_out is addressed to (destination address and port), or -1. */
int out_backend(void);
/* client -> VIP:80 (v4 or v6 TCP, 10 bytes of data): the backend slot it was sent to, or -1 when dropped. */
int c2s_fam(struct env *e, uint8_t fam, uint16_t cport, uint8_t flags);

/* Tables whose v4 TCP service had every ring slot on `prev_backend` before its last change (no previous ring
 * without with_prev) and has them on A now, except the last slot, which holds B when `b_in_ring` (B keeps a
 * weight; without it B is drained). bk_flags are set on prev_backend (e.g. L4_BK_NO_SECOND_CHANCE); `rate`: the
 * service's new-flow rate limit (rate = burst), 0 for none. */
struct l4_tables *tables_with_previous(int with_prev, uint32_t prev_backend, uint32_t bk_flags, bool b_in_ring,
                                      uint32_t rate);
/* Fixture tables with source CIDR entries (acl: L4_ACL_WORDS each, addresses in acl_addrs) and a new-flow rate
 * limit (0: none) on the v4 TCP service (core_test_protect.c). */
struct l4_tables *protected_tables(const uint32_t *acl, const char *const *acl_addrs, uint32_t nacl, uint32_t rate,
                                   uint32_t burst);
/* Sets a new-flow rate limit (rate = burst) on the v4 TCP service of fi; 0: none. */
void fx_rate_limit(struct fx_input *fi, uint32_t rate);
/* l4_tables_build of fi; aborts naming `who` and the builder's message if it does not build. */
struct l4_tables *fx_build(const struct fx_input *fi, const char *who);
/* The first client port from `from` on whose flow client:port -> VIP4:80 (TCP) e's current ring sends to bk. */
uint16_t port_to(struct env *e, const char *client, uint16_t from, uint32_t bk);
/* The flow key of an IPv4 packet from client:cport (host order) to VIP4:80 with this protocol. */
struct l4_flow_key flow_key4(const char *client, uint16_t cport, uint8_t proto);

/* Seed corpus recording (core_test --write-corpus DIR). */
void corpus_record(const char *desc, const uint8_t *in, uint32_t len);
void corpus_record_sample(const char *desc, const uint8_t *in, uint32_t len);

#endif
