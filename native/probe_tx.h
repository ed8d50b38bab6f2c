/* Sending the data-plane health probes (core/probe.h) into the running data plane's TUN. */
#ifndef L4NAT_PROBE_TX_H
#define L4NAT_PROBE_TX_H

#include <stdint.h>

#include "worker.h"

struct l4_probe_spec {
  uint32_t slot;         /* the backend slot the probe is for (below max_backends) */
  uint8_t family;        /* 4 or 6 */
  const uint8_t *src;    /* 16 bytes (an IPv4 address in the first 4): the probe source address */
  const uint8_t *dst;    /* 16 bytes likewise: the backend's address */
  uint16_t sport, dport; /* host order */
  uint32_t seq;
};

/* Records the probe as backend p->slot's outstanding one (only its answer counts) and writes its SYN into the
 * first TUN queue: write() on a TUN queue is atomic per packet, so the control thread and that queue's worker
 * share the fd. Returns 0, -EINVAL for a slot or family out of range, or -errno of the write. */
int l4_dp_send_probe(struct l4_dp *dp, const struct l4_probe_spec *p);

#endif
