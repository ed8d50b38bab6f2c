/* Probe sending; see probe_tx.h. */
#include "probe_tx.h"

#include <errno.h>
#include <unistd.h>

int l4_dp_send_probe(struct l4_dp *dp, const struct l4_probe_spec *p) {
  uint8_t buf[L4_PROBE_MAX_LEN];
  uint32_t len = l4_probe_syn(buf, sizeof(buf), p->family, p->src, p->dst, p->sport, p->dport, p->seq);
  /* armed before the write: the answer may come at once */
  if (!len || !l4_probe_arm(&dp->probes, p->slot, p->sport, p->seq)) return -EINVAL;
  return write(dp->fds[0], buf, len) < 0 ? -errno : 0;
}
