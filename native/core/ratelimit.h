/* Per-source new-flow rate limiting: a token bucket per (service, client address), hashed into one fixed
 * table shared by all workers (a client's flows are read by every queue, so per-worker buckets would let it
 * through N times). Lossy by design: sources whose hashes collide share a bucket; the table is large
 * enough that this is rare, and under a flood it errs towards limiting. Memory is allocated once. */
#ifndef L4NAT_RATELIMIT_H
#define L4NAT_RATELIMIT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

struct l4_ratelimit {
  _Atomic uint64_t *buckets; /* [ms clock at last refill : 32 | milli-tokens : 32] */
  uint32_t mask;
};

int l4_ratelimit_init(struct l4_ratelimit *rl, uint32_t nbuckets);
void l4_ratelimit_destroy(struct l4_ratelimit *rl);

/* Takes one token from the bucket for `hash`, refilled at `rate` tokens per second up to `burst`. Returns
 * true if the new flow may start. `now_ms` is a wrapping millisecond clock. */
bool l4_ratelimit_take(struct l4_ratelimit *rl, uint64_t hash, uint32_t rate, uint32_t burst, uint32_t now_ms);

/* The milli-tokens that bucket holds at now_ms, taking none (a new flow passes with at least 1000). */
uint32_t l4_ratelimit_peek(const struct l4_ratelimit *rl, uint64_t hash, uint32_t rate, uint32_t burst, uint32_t now_ms);

#endif
