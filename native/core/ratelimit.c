/* Token buckets for new flows; see ratelimit.h. */
#include "ratelimit.h"

#include <stdlib.h>

int l4_ratelimit_init(struct l4_ratelimit *rl, uint32_t nbuckets) {
  uint32_t n = 1;
  while (n < nbuckets) n <<= 1;
  rl->buckets = calloc(n, sizeof(*rl->buckets));
  if (!rl->buckets) return -1;
  rl->mask = n - 1;
  return 0;
}

void l4_ratelimit_destroy(struct l4_ratelimit *rl) {
  free((void *)rl->buckets);
  rl->buckets = NULL;
}

/* Milli-tokens in bucket word `old` at now_ms, refilled at `rate` up to cap. */
static uint64_t refilled(uint64_t old, uint32_t rate, uint64_t cap, uint32_t now_ms) {
  uint32_t last = (uint32_t)(old >> 32);
  uint64_t tokens = (uint32_t)old;
  /* An untouched bucket (0) starts full. rate tokens/s = rate milli-tokens/ms. */
  uint32_t elapsed = old == 0 ? UINT32_MAX : now_ms - last;
  /* Slightly "negative": another worker read the clock a little later and stored first. Anything else is
   * real time (the 32-bit clock wraps every 49.7 days; a long-idle bucket simply refills). */
  if (elapsed > 0xffff0000u && old != 0) elapsed = 0;
  uint64_t refill = (uint64_t)elapsed * rate;
  return tokens + refill > cap ? cap : tokens + refill;
}

static uint64_t capacity(uint32_t burst) {
  uint64_t cap = (uint64_t)burst * 1000; /* milli-tokens */
  return cap > UINT32_MAX ? UINT32_MAX : cap;
}

bool l4_ratelimit_take(struct l4_ratelimit *rl, uint64_t hash, uint32_t rate, uint32_t burst, uint32_t now_ms) {
  _Atomic uint64_t *b = &rl->buckets[hash & rl->mask];
  uint64_t cap = capacity(burst);
  uint64_t old = atomic_load_explicit(b, memory_order_relaxed);
  for (int i = 0; i < 8; i++) {
    uint64_t tokens = refilled(old, rate, cap, now_ms);
    if (tokens < 1000) {
      /* Remember the refill so far only if time moved, to keep contention low under a flood. */
      return false;
    }
    uint64_t next = ((uint64_t)now_ms << 32) | (tokens - 1000);
    if (atomic_compare_exchange_weak_explicit(b, &old, next, memory_order_relaxed, memory_order_relaxed)) return true;
  }
  return false; /* heavy contention on one bucket: that source is flooding */
}

uint32_t l4_ratelimit_peek(const struct l4_ratelimit *rl, uint64_t hash, uint32_t rate, uint32_t burst, uint32_t now_ms) {
  uint64_t old = atomic_load_explicit(&rl->buckets[hash & rl->mask], memory_order_relaxed);
  return (uint32_t)refilled(old, rate, capacity(burst), now_ms);
}
