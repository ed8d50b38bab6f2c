/* The service setup every fixture (and the fuzzer) runs against, built through the real l4_tables_build
 * from the same word arrays TypeScript hands over (tables.h: L4_SVC_WORDS, L4_BK_WORDS, host-order ports).
 *
 *   slot  service                           backends (slot: address:port)
 *   0     10.200.0.10:80 tcp, 5-tuple hash  0: 10.0.1.1:8080    1: 10.0.1.2:8080
 *   1     10.200.0.10:53 udp                2: 10.0.1.1:5353    3: 10.0.1.2:53
 *   2     [fd4c:ffff::10]:80 tcp            4: [fd4c:1::1]:8080 5: [fd4c:1::2]:8080
 *   3     [fd4c:ffff::10]:53 udp            6: [fd4c:1::1]:5353 7: [fd4c:1::2]:53
 *   4     10.200.0.11:443 tcp, source hash  8: 10.0.2.1:443     9: 10.0.2.2:8443
 *
 * Rings (13 slots each, the way TypeScript lays them out: one flat array, an offset per service):
 * FX_RING_A puts every slot on each service's first backend, FX_RING_B on its second, FX_RING_ALT
 * alternates; FX_RING_A_B1 and FX_RING_B_A1 are A and B with the last slot on the other backend, which so
 * stays in the ring (it takes new flows: admission.h). Same hash key and timeouts in all three, so republishing only moves the rings. */
#ifndef L4NAT_TEST_FIXTURE_TABLES_H
#define L4NAT_TEST_FIXTURE_TABLES_H

#include <stdint.h>

#include "../core/tables.h"

enum fx_ring { FX_RING_A, FX_RING_B, FX_RING_ALT, FX_RING_EMPTY, FX_RING_A_B1, FX_RING_B_A1 };

enum { FX_SVC_V4_TCP, FX_SVC_V4_UDP, FX_SVC_V6_TCP, FX_SVC_V6_UDP, FX_SVC_V4_SRC, FX_NSVC };
enum {
  FX_BK_V4T_A, FX_BK_V4T_B, FX_BK_V4U_A, FX_BK_V4U_B, FX_BK_V6T_A, FX_BK_V6T_B,
  FX_BK_V6U_A, FX_BK_V6U_B, FX_BK_SRC_A, FX_BK_SRC_B, FX_NBK
};

#define FX_RING_SIZE 13
#define FX_MAX_SERVICES 8
#define FX_MAX_BACKENDS 16

/* data-plane probe source addresses, set in every fixture table */
#define FX_PROBE4 "192.0.2.1"
#define FX_PROBE6 "2001:db8::1"

/* this host's own addresses, set in every fixture table: an ICMP error from one of them speaks as the VIP */
#define FX_LOCAL4 "10.201.0.1"
#define FX_LOCAL4_B "10.0.1.100"
#define FX_LOCAL6 "fd4c:0:ff::1"
#define FX_LOCAL6_LL "fe80::1"

/* timeouts (seconds) */
#define FX_TO_SYN 30
#define FX_TO_EST 3600
#define FX_TO_FIN 60
#define FX_TO_CLOSE 10
#define FX_TO_UDP 120

struct fx_service_def {
  const char *vip;
  uint8_t family, proto, hash_mode;
  uint16_t port;
};
struct fx_backend_def {
  const char *addr;
  uint32_t service;
  uint16_t port;
};
extern const struct fx_service_def FX_SERVICES[FX_NSVC];
extern const struct fx_backend_def FX_BACKENDS[FX_NBK];

/* Builds the fixture tables; aborts with the builder's message if they do not build. */
struct l4_tables *fx_tables(enum fx_ring ring, uint32_t options);

/* Fills an l4_tables_input for the fixture setup (arrays are static storage inside fixture_tables.c, valid
 * until the next call). Tests edit the arrays to provoke validation errors. */
struct fx_input {
  struct l4_tables_input in;
  uint32_t svc_words[FX_MAX_SERVICES * L4_SVC_WORDS];
  uint8_t svc_addrs[FX_MAX_SERVICES * 16];
  uint32_t bk_words[FX_MAX_BACKENDS * L4_BK_WORDS];
  uint8_t bk_addrs[FX_MAX_BACKENDS * 16];
  uint32_t rings[2 * FX_MAX_SERVICES * FX_RING_SIZE]; /* room for previous rings after the current ones */
  uint8_t key[16];
  uint8_t probe4[16], probe6[16];
  uint8_t local4[2 * 4], local6[2 * 16];
};
void fx_input_init(struct fx_input *fi, enum fx_ring ring, uint32_t options);
/* A service's admission words (balance, factor in percent, when_full: tables.h) and a backend's max_flows. */
void fx_set_admission(struct fx_input *fi, uint32_t svc, uint32_t balance, uint32_t factor_pct, uint32_t when_full);
void fx_set_max_flows(struct fx_input *fi, uint32_t bk, uint32_t max_flows);

#endif
