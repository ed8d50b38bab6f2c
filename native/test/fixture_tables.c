/* The fixture service setup; see fixture_tables.h. */
#include "fixture_tables.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pkt_builder.h"

const struct fx_service_def FX_SERVICES[FX_NSVC] = {
    [FX_SVC_V4_TCP] = {"10.200.0.10", 4, 6, L4_HASH_5TUPLE, 80},
    [FX_SVC_V4_UDP] = {"10.200.0.10", 4, 17, L4_HASH_5TUPLE, 53},
    [FX_SVC_V6_TCP] = {"fd4c:ffff::10", 6, 6, L4_HASH_5TUPLE, 80},
    [FX_SVC_V6_UDP] = {"fd4c:ffff::10", 6, 17, L4_HASH_5TUPLE, 53},
    [FX_SVC_V4_SRC] = {"10.200.0.11", 4, 6, L4_HASH_SRC, 443},
};

const struct fx_backend_def FX_BACKENDS[FX_NBK] = {
    [FX_BK_V4T_A] = {"10.0.1.1", FX_SVC_V4_TCP, 8080},  [FX_BK_V4T_B] = {"10.0.1.2", FX_SVC_V4_TCP, 8080},
    [FX_BK_V4U_A] = {"10.0.1.1", FX_SVC_V4_UDP, 5353},  [FX_BK_V4U_B] = {"10.0.1.2", FX_SVC_V4_UDP, 53},
    [FX_BK_V6T_A] = {"fd4c:1::1", FX_SVC_V6_TCP, 8080}, [FX_BK_V6T_B] = {"fd4c:1::2", FX_SVC_V6_TCP, 8080},
    [FX_BK_V6U_A] = {"fd4c:1::1", FX_SVC_V6_UDP, 5353}, [FX_BK_V6U_B] = {"fd4c:1::2", FX_SVC_V6_UDP, 53},
    [FX_BK_SRC_A] = {"10.0.2.1", FX_SVC_V4_SRC, 443},   [FX_BK_SRC_B] = {"10.0.2.2", FX_SVC_V4_SRC, 8443},
};

void fx_input_init(struct fx_input *fi, enum fx_ring ring, uint32_t options) {
  memset(fi, 0, sizeof(*fi));
  for (uint32_t s = 0; s < FX_NSVC; s++) {
    const struct fx_service_def *d = &FX_SERVICES[s];
    uint32_t *w = fi->svc_words + s * L4_SVC_WORDS;
    /* [slot, family, proto, hash_mode, port, ring_offset, ring_size, flags, balance, factor_pct, when_full]: maglev */
    w[0] = s;
    w[1] = d->family;
    w[2] = d->proto;
    w[3] = d->hash_mode;
    w[4] = d->port;
    w[5] = s * FX_RING_SIZE;
    w[6] = ring == FX_RING_EMPTY ? 0 : FX_RING_SIZE;
    w[7] = 0;
    pb_addr(d->family, d->vip, fi->svc_addrs + s * 16);
    /* each service's two backends are slots 2s and 2s+1 */
    for (uint32_t j = 0; j < FX_RING_SIZE; j++) {
      uint32_t which = ring == FX_RING_A ? 0 : ring == FX_RING_B ? 1 : (j & 1);
      if (ring == FX_RING_A_B1) which = j == FX_RING_SIZE - 1;
      if (ring == FX_RING_B_A1) which = j != FX_RING_SIZE - 1;
      fi->rings[s * FX_RING_SIZE + j] = 2 * s + which;
    }
  }
  for (uint32_t b = 0; b < FX_NBK; b++) {
    const struct fx_backend_def *d = &FX_BACKENDS[b];
    uint32_t *w = fi->bk_words + b * L4_BK_WORDS;
    /* [slot, service_slot, family, proto, port, flags, weight, max_flows]: weight 1, no limit */
    w[0] = b;
    w[1] = d->service;
    w[2] = FX_SERVICES[d->service].family;
    w[3] = FX_SERVICES[d->service].proto;
    w[4] = d->port;
    w[5] = 0;
    w[6] = 1;
    pb_addr(FX_SERVICES[d->service].family, d->addr, fi->bk_addrs + b * 16);
  }
  for (int i = 0; i < 16; i++) fi->key[i] = (uint8_t)(0xa0 + i);
  fi->in.max_services = FX_MAX_SERVICES;
  fi->in.max_backends = FX_MAX_BACKENDS;
  fi->in.svc_words = fi->svc_words;
  fi->in.nservices = FX_NSVC;
  fi->in.svc_addrs = fi->svc_addrs;
  fi->in.bk_words = fi->bk_words;
  fi->in.nbackends = FX_NBK;
  fi->in.bk_addrs = fi->bk_addrs;
  fi->in.rings = fi->rings;
  fi->in.rings_len = FX_NSVC * FX_RING_SIZE;
  fi->in.hash_key = fi->key;
  fi->in.timeouts = (struct l4_timeouts){FX_TO_SYN, FX_TO_EST, FX_TO_FIN, FX_TO_CLOSE, FX_TO_UDP};
  fi->in.options = options;
  /* data-plane probe sources (core/probe.h): documentation addresses no fixture client uses */
  pb_addr(4, FX_PROBE4, fi->probe4);
  pb_addr(6, FX_PROBE6, fi->probe6);
  fi->in.probe_addr4 = fi->probe4;
  fi->in.probe_addr6 = fi->probe6;
  uint8_t a[16];
  pb_addr(4, FX_LOCAL4, a);
  memcpy(fi->local4, a, 4);
  pb_addr(4, FX_LOCAL4_B, a);
  memcpy(fi->local4 + 4, a, 4);
  pb_addr(6, FX_LOCAL6, fi->local6);
  pb_addr(6, FX_LOCAL6_LL, fi->local6 + 16);
  fi->in.local_addrs4 = fi->local4;
  fi->in.nlocal4 = 2;
  fi->in.local_addrs6 = fi->local6;
  fi->in.nlocal6 = 2;
}

void fx_set_admission(struct fx_input *fi, uint32_t svc, uint32_t balance, uint32_t factor_pct, uint32_t when_full) {
  uint32_t *w = fi->svc_words + svc * L4_SVC_WORDS;
  w[8] = balance;
  w[9] = factor_pct;
  w[10] = when_full;
}

void fx_set_max_flows(struct fx_input *fi, uint32_t bk, uint32_t max_flows) { fi->bk_words[bk * L4_BK_WORDS + 7] = max_flows; }

struct l4_tables *fx_tables(enum fx_ring ring, uint32_t options) {
  static struct fx_input fi; /* large-ish; tests are single-threaded where they build tables */
  fx_input_init(&fi, ring, options);
  char err[256];
  struct l4_tables *t = l4_tables_build(&fi.in, err, sizeof(err));
  if (!t) {
    fprintf(stderr, "fixture tables do not build: %s\n", err);
    abort();
  }
  return t;
}
