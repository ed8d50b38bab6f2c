/* Adaptive busy polling: how long a worker whose queue has drained keeps reading before it sleeps.
 *
 * Sleeping in poll() costs a wake-up when the next packet comes; on a VM whose other vCPU idles that is an
 * IPI and a halt exit, tens of microseconds, which is most of a request/response exchange's time here. Spinning
 * saves it only when the next packet comes soon, and costs CPU otherwise. So the window follows the idle gaps
 * the worker sees, the way KVM sizes its halt polling (virt/kvm/kvm_main.c, grow_halt_poll_ns and
 * shrink_halt_poll_ns; the guest's cpuidle-haltpoll governor does the same):
 *   - a gap the window covered leaves it as it is;
 *   - a gap longer than the window but within the maximum means a longer window would have saved the
 *     sleep, so the window doubles (from L4_SPIN_START_NS, at most the maximum);
 *   - a gap longer than the maximum means no window could have, so it halves, and drops to 0 below the
 *     starting step: an idle or slow-paced worker sleeps at once.
 * Plain C, no clock: the caller measures the gap. */
#ifndef L4NAT_BUSYPOLL_H
#define L4NAT_BUSYPOLL_H

#include <stdint.h>

#define L4_SPIN_START_NS 10000u

/* The window after an idle gap of gap_ns, given the window the gap began under and the maximum. */
static inline uint64_t l4_spin_next_window(uint64_t window_ns, uint64_t gap_ns, uint64_t max_ns) {
  if (gap_ns <= window_ns) return window_ns;
  if (gap_ns > max_ns) {
    window_ns /= 2;
    return window_ns < L4_SPIN_START_NS ? 0 : window_ns;
  }
  window_ns = window_ns ? window_ns * 2 : L4_SPIN_START_NS;
  return window_ns > max_ns ? max_ns : window_ns;
}

#endif
