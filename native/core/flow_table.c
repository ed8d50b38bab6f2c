/* Shared flow table; see flow_table.h for the concurrency design. */
#define _GNU_SOURCE /* MAP_ANONYMOUS, MAP_POPULATE */
#include "flow_table.h"

#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

static inline void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  __asm__ volatile("yield");
#endif
}

_Static_assert(sizeof(struct l4_flow) == 64, "a flow entry is one cache line");
_Static_assert(sizeof(struct l4_flow_key) == 40, "flow key layout");

int l4_flow_table_init(struct l4_flow_table *ft, uint64_t capacity) {
  uint64_t nb = 1;
  while (nb * L4_FLOW_BUCKET < capacity) nb <<= 1;
  size_t bytes = (size_t)(nb * L4_FLOW_BUCKET * sizeof(struct l4_flow));
  /* mmap gives zeroed, page-aligned memory; MAP_POPULATE commits it now so memory is fixed at start. */
  void *mem = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
  if (mem == MAP_FAILED) return -1;
  ft->locks = calloc(nb, 1);
  if (!ft->locks) {
    munmap(mem, bytes);
    return -1;
  }
  ft->entries = mem;
  ft->nbuckets = nb;
  ft->capacity = nb * L4_FLOW_BUCKET;
  return 0;
}

void l4_flow_table_destroy(struct l4_flow_table *ft) {
  if (ft->entries) munmap(ft->entries, (size_t)(ft->capacity * sizeof(struct l4_flow)));
  free((void *)ft->locks);
  ft->entries = NULL;
  ft->locks = NULL;
}

uint64_t l4_flow_hash(const struct siphash_key *k, const struct l4_flow_key *key) {
  return siphash24(k, key, sizeof(*key));
}

uint32_t l4_flow_timeout(const struct l4_timeouts *to, uint8_t proto, uint8_t state) {
  if (proto != 6) return to->udp;
  if (l4_flow_state_closed(state)) return to->tcp_close;
  if (state & (FL_FIN_C | FL_FIN_B)) return to->tcp_fin;
  if (state & FL_EST) return to->tcp_established;
  return to->tcp_syn;
}

static inline bool expired(const struct l4_flow *e, uint8_t state, const struct l4_flow_timeouts *to, uint32_t now) {
  uint32_t last = atomic_load_explicit(&e->last_seen, memory_order_relaxed);
  /* last may be a second ahead of `now` when another worker's clock ticked first. */
  return (int32_t)(now - last) > (int32_t)l4_flow_timeout(l4_timeouts_of(to, e->svc), e->key.proto, state);
}

static inline struct l4_flow *bucket_of(struct l4_flow_table *ft, uint64_t hash) {
  return &ft->entries[(hash & (ft->nbuckets - 1)) * L4_FLOW_BUCKET];
}

/* Reads entry e consistently; returns false if it is empty, being written, or not `key`. */
static bool read_entry(struct l4_flow *e, const struct l4_flow_key *key, uint32_t hash_hi, struct l4_flow_ref *out) {
  for (int tries = 0; tries < 4; tries++) {
    uint32_t s1 = atomic_load_explicit(&e->seq, memory_order_acquire);
    if (s1 == 0) return false;
    if (s1 & 1) continue; /* a writer is in the middle of it */
    bool match = e->hash_hi == hash_hi && memcmp(&e->key, key, sizeof(*key)) == 0;
    uint32_t backend = e->backend;
    uint8_t state = atomic_load_explicit(&e->state, memory_order_relaxed);
    atomic_thread_fence(memory_order_acquire);
    if (atomic_load_explicit(&e->seq, memory_order_relaxed) != s1) continue;
    if (!match) return false;
    out->e = e;
    out->seq = s1;
    out->backend = backend;
    out->state = state;
    return true;
  }
  return false;
}

bool l4_flow_lookup(struct l4_flow_table *ft, const struct l4_flow_key *key, uint64_t hash,
                    const struct l4_flow_timeouts *to, uint32_t now, struct l4_flow_ref *out) {
  struct l4_flow *b = bucket_of(ft, hash);
  uint32_t hash_hi = (uint32_t)(hash >> 32);
  for (int i = 0; i < L4_FLOW_BUCKET; i++) {
    if (read_entry(&b[i], key, hash_hi, out)) {
      if (expired(out->e, out->state, to, now)) return false;
      return true;
    }
  }
  return false;
}

/* How much an entry is worth keeping, lower = evict first. */
static uint64_t keep_score(struct l4_flow *e, const struct l4_flow_timeouts *to, uint32_t now) {
  uint32_t s = atomic_load_explicit(&e->seq, memory_order_relaxed);
  if (s == 0) return 0;
  uint8_t state = atomic_load_explicit(&e->state, memory_order_relaxed);
  if (expired(e, state, to, now)) return 1;
  uint32_t last = atomic_load_explicit(&e->last_seen, memory_order_relaxed);
  uint32_t idle = now - last;
  if (idle > 0x7fffffff) idle = 0;
  /* established flows outrank half-open and closing ones, whatever their idle time (SYN floods) */
  uint64_t tier = ((state & FL_EST) && !(state & (FL_RST | FL_FIN_C | FL_FIN_B))) ? 3 : 2;
  return (tier << 32) | (uint32_t)(0xffffffffu - idle);
}

static void write_entry(struct l4_flow *e, uint32_t seq_odd, const struct l4_flow_key *key, uint32_t hash_hi,
                        uint32_t backend, uint32_t svc, uint8_t state, uint32_t now) {
  e->hash_hi = hash_hi;
  e->key = *key;
  e->backend = backend;
  e->svc = svc;
  atomic_store_explicit(&e->state, state, memory_order_relaxed);
  atomic_store_explicit(&e->last_seen, now, memory_order_relaxed);
  /* next even value; skip 0, which means "never used" */
  uint32_t next = seq_odd + 1;
  if (next == 0) next = 2;
  atomic_store_explicit(&e->seq, next, memory_order_release);
}

static inline void bucket_lock(struct l4_flow_table *ft, uint64_t bucket) {
  _Atomic uint8_t *l = &ft->locks[bucket];
  while (atomic_exchange_explicit(l, 1, memory_order_acquire))
    while (atomic_load_explicit(l, memory_order_relaxed)) cpu_relax();
}

static inline void bucket_unlock(struct l4_flow_table *ft, uint64_t bucket) {
  atomic_store_explicit(&ft->locks[bucket], 0, memory_order_release);
}

/* Writers (insert, remove) serialize per bucket, so two workers that see the first packets of one flow at
 * once cannot both insert it: the second finds the first's entry. A bucket lock is taken once per new flow,
 * never per packet; lookups never take it. */
enum l4_flow_insert_result l4_flow_insert(struct l4_flow_table *ft, const struct l4_flow_key *key, uint64_t hash,
                                          uint32_t backend, uint32_t svc, uint8_t state, const struct l4_flow_timeouts *to,
                                          uint32_t now, bool replace, struct l4_flow_ref *out) {
  uint64_t bi = hash & (ft->nbuckets - 1);
  struct l4_flow *b = &ft->entries[bi * L4_FLOW_BUCKET];
  uint32_t hash_hi = (uint32_t)(hash >> 32);
  bucket_lock(ft, bi);
  struct l4_flow *victim = NULL;
  uint64_t victim_score = UINT64_MAX;
  struct l4_flow *existing = NULL;
  for (int i = 0; i < L4_FLOW_BUCKET; i++) {
    struct l4_flow_ref ref;
    if (read_entry(&b[i], key, hash_hi, &ref)) {
      existing = &b[i];
      if (!replace && !expired(ref.e, ref.state, to, now)) {
        bucket_unlock(ft, bi);
        *out = ref;
        return FLOW_EXISTS;
      }
      break;
    }
    uint64_t score = keep_score(&b[i], to, now);
    if (score < victim_score) {
      victim_score = score;
      victim = &b[i];
    }
  }
  struct l4_flow *target = existing ? existing : victim;
  uint32_t s = atomic_load_explicit(&target->seq, memory_order_relaxed); /* even: we hold the lock */
  atomic_store_explicit(&target->seq, s + 1, memory_order_relaxed);
  atomic_thread_fence(memory_order_release);
  write_entry(target, s + 1, key, hash_hi, backend, svc, state, now);
  bucket_unlock(ft, bi);
  out->e = target;
  out->seq = s + 2 == 0 ? 2 : s + 2;
  out->backend = backend;
  out->state = state;
  if (existing) return FLOW_INSERTED;
  return victim_score > 1 ? FLOW_INSERTED_EVICTED : FLOW_INSERTED;
}

uint64_t l4_flow_count(struct l4_flow_table *ft, const struct l4_flow_timeouts *to, uint32_t now) {
  uint64_t n = 0;
  for (uint64_t i = 0; i < ft->capacity; i++) {
    struct l4_flow *e = &ft->entries[i];
    uint32_t s = atomic_load_explicit(&e->seq, memory_order_acquire);
    if (s == 0 || (s & 1)) continue;
    if (!expired(e, atomic_load_explicit(&e->state, memory_order_relaxed), to, now)) n++;
  }
  return n;
}

uint64_t l4_flow_walk(struct l4_flow_table *ft, const struct l4_flow_timeouts *to, uint32_t now, uint64_t start,
                      uint64_t max_scan, int (*fn)(const struct l4_flow_view *v, void *arg), void *arg) {
  uint64_t end = start < ft->capacity && ft->capacity - start > max_scan ? start + max_scan : ft->capacity;
  for (uint64_t i = start; i < end; i++) {
    struct l4_flow *e = &ft->entries[i];
    struct l4_flow_view v;
    uint32_t s1 = atomic_load_explicit(&e->seq, memory_order_acquire);
    if (s1 == 0 || (s1 & 1)) continue;
    v.key = e->key;
    v.backend = e->backend;
    v.svc = e->svc;
    v.state = atomic_load_explicit(&e->state, memory_order_relaxed);
    uint32_t last = atomic_load_explicit(&e->last_seen, memory_order_relaxed);
    atomic_thread_fence(memory_order_acquire);
    if (atomic_load_explicit(&e->seq, memory_order_relaxed) != s1) continue; /* changing: skip */
    if (expired(e, v.state, to, now)) continue;
    v.idle = (int32_t)(now - last) > 0 ? now - last : 0;
    v.e = e;
    v.seq = s1;
    if (fn(&v, arg)) return i + 1;
  }
  return end;
}

bool l4_flow_remove(struct l4_flow_table *ft, const struct l4_flow_view *v, uint32_t now) {
  uint64_t bi = (uint64_t)(v->e - ft->entries) / L4_FLOW_BUCKET;
  bucket_lock(ft, bi);
  uint32_t s = atomic_load_explicit(&v->e->seq, memory_order_relaxed);
  bool same = s == v->seq;
  if (same) {
    atomic_store_explicit(&v->e->seq, s + 1, memory_order_relaxed);
    atomic_thread_fence(memory_order_release);
    memset(&v->e->key, 0, sizeof(v->e->key));
    atomic_store_explicit(&v->e->last_seen, now - 0x40000000u, memory_order_relaxed); /* expired: free to reuse */
    atomic_store_explicit(&v->e->seq, s + 2 == 0 ? 2 : s + 2, memory_order_release);
  }
  bucket_unlock(ft, bi);
  return same;
}
