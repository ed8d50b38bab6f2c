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
  l4_flow_table_init_at(ft, mem, ft->locks, nb);
  ft->borrowed = false;
  return 0;
}

void l4_flow_table_init_at(struct l4_flow_table *ft, struct l4_flow *entries, _Atomic uint8_t *locks, uint64_t nbuckets) {
  ft->entries = entries;
  ft->locks = locks;
  ft->nbuckets = nbuckets;
  ft->capacity = nbuckets * L4_FLOW_BUCKET;
  ft->borrowed = true;
  ft->active_bk = ft->active_svc = NULL; /* no counts until l4_flow_counts_init */
  ft->nbk = ft->nsvc = 0;
}

int l4_flow_counts_init(struct l4_flow_table *ft, uint32_t max_services, uint32_t max_backends) {
  ft->active_bk = calloc(max_backends ? max_backends : 1, sizeof(*ft->active_bk));
  ft->active_svc = calloc(max_services ? max_services : 1, sizeof(*ft->active_svc));
  if (!ft->active_bk || !ft->active_svc) {
    l4_flow_counts_destroy(ft);
    return -1;
  }
  ft->nbk = max_backends;
  ft->nsvc = max_services;
  return 0;
}

void l4_flow_counts_destroy(struct l4_flow_table *ft) {
  free((void *)ft->active_bk);
  free((void *)ft->active_svc);
  ft->active_bk = ft->active_svc = NULL;
  ft->nbk = ft->nsvc = 0;
}

void l4_flow_table_destroy(struct l4_flow_table *ft) {
  if (!ft->borrowed) {
    if (ft->entries) munmap(ft->entries, (size_t)(ft->capacity * sizeof(struct l4_flow)));
    free((void *)ft->locks);
  }
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

/* Has an entry of this protocol and state, last seen at `last`, timed out? */
static inline bool expired_at(const struct l4_flow *e, uint8_t proto, uint8_t state, uint32_t last,
                              const struct l4_flow_timeouts *to, uint32_t now) {
  uint32_t svc = atomic_load_explicit(&e->svc, memory_order_relaxed);
  /* last may be a second ahead of `now` when another worker's clock ticked first. */
  return (int32_t)(now - last) > (int32_t)l4_flow_timeout(l4_timeouts_of(to, svc), proto, state);
}

static inline bool expired(const struct l4_flow *e, uint8_t proto, uint8_t state, const struct l4_flow_timeouts *to,
                           uint32_t now) {
  return expired_at(e, proto, state, atomic_load_explicit(&e->last_seen, memory_order_relaxed), to, now);
}

/* An entry that holds a flow (maybe expired): used, not being written, not removed. */
static inline bool holds_flow(uint64_t v) {
  return L4_VER_SEQ(v) != 0 && !(L4_VER_SEQ(v) & 1) && !(L4_VER_STATE(v) & FL_FREE);
}

static inline struct l4_flow *bucket_of(struct l4_flow_table *ft, uint64_t hash) {
  return &ft->entries[(hash & (ft->nbuckets - 1)) * L4_FLOW_BUCKET];
}

static inline void key_words(const struct l4_flow_key *key, uint64_t w[L4_KEY_WORDS]) { memcpy(w, key, sizeof(*key)); }

/* Reads entry e consistently; returns false if it is empty, being written, or not the key (as words). */
static bool read_entry(struct l4_flow *e, const uint64_t kw[L4_KEY_WORDS], uint32_t hash_hi, struct l4_flow_ref *out) {
  for (int tries = 0; tries < 4; tries++) {
    uint64_t v1 = atomic_load_explicit(&e->ver, memory_order_acquire);
    uint32_t s1 = L4_VER_SEQ(v1);
    if (s1 == 0) return false;
    if (s1 & 1) continue; /* a writer is in the middle of it */
    bool match = atomic_load_explicit(&e->hash_hi, memory_order_relaxed) == hash_hi;
    for (size_t i = 0; i < L4_KEY_WORDS && match; i++) match = atomic_load_explicit(&e->key[i], memory_order_relaxed) == kw[i];
    uint32_t backend = atomic_load_explicit(&e->backend, memory_order_relaxed);
    uint32_t svc = atomic_load_explicit(&e->svc, memory_order_relaxed);
    atomic_thread_fence(memory_order_acquire);
    uint64_t v2 = atomic_load_explicit(&e->ver, memory_order_relaxed);
    if (L4_VER_SEQ(v2) != s1) continue;
    if (!match) return false; /* a removed entry's key is zero: it never matches */
    out->e = e;
    out->seq = s1;
    out->backend = backend;
    out->svc = svc;
    out->state = L4_VER_STATE(v2); /* state bits change without a new sequence: take the latest */
    return true;
  }
  return false;
}

bool l4_flow_lookup(struct l4_flow_table *ft, const struct l4_flow_key *key, uint64_t hash,
                    const struct l4_flow_timeouts *to, uint32_t now, struct l4_flow_ref *out) {
  struct l4_flow *b = bucket_of(ft, hash);
  uint32_t hash_hi = (uint32_t)(hash >> 32);
  uint64_t kw[L4_KEY_WORDS];
  key_words(key, kw);
  for (int i = 0; i < L4_FLOW_BUCKET; i++) {
    if (read_entry(&b[i], kw, hash_hi, out)) {
      if (expired(out->e, key->proto, out->state, to, now)) return false;
      return true;
    }
  }
  return false;
}

/* How much an entry is worth keeping, lower = evict first. */
static uint64_t keep_score(struct l4_flow *e, const struct l4_flow_timeouts *to, uint32_t now) {
  uint64_t v = atomic_load_explicit(&e->ver, memory_order_relaxed);
  if (!holds_flow(v)) return 0; /* never used or removed (we hold the bucket lock: nobody is writing it) */
  uint32_t last = atomic_load_explicit(&e->last_seen, memory_order_relaxed);
  if (expired_at(e, L4_VER_PROTO(v), L4_VER_STATE(v), last, to, now)) return 1;
  uint32_t idle = now - last;
  if (idle > 0x7fffffff) idle = 0;
  /* Established flows outrank half-open and closing ones, whatever their idle time (SYN floods). Entries the
   * data plane created without a client's confirmation (a second chance, a reply picked up: dataplane.c) are
   * not established until it comes, so a flood of them competes only with other unconfirmed entries. */
  uint8_t state = L4_VER_STATE(v);
  uint64_t tier = ((state & FL_EST) && !(state & (FL_RST | FL_FIN_C | FL_FIN_B))) ? 3 : 2;
  return (tier << 32) | (uint32_t)(0xffffffffu - idle);
}

/* Writes an entry whose version word the caller holds odd at sequence seq_odd (bucket lock held), then
 * publishes it with the next even sequence and `state`. Returns that sequence. */
static uint32_t write_entry_ver(struct l4_flow *e, uint32_t seq_odd, const struct l4_flow_key *key, uint32_t hash_hi,
                                uint32_t backend, uint32_t svc, uint64_t ver_bits, uint32_t now) {
  uint64_t kw[L4_KEY_WORDS];
  key_words(key, kw);
  atomic_store_explicit(&e->hash_hi, hash_hi, memory_order_relaxed);
  for (size_t i = 0; i < L4_KEY_WORDS; i++) atomic_store_explicit(&e->key[i], kw[i], memory_order_relaxed);
  atomic_store_explicit(&e->backend, backend, memory_order_relaxed);
  atomic_store_explicit(&e->svc, svc, memory_order_relaxed);
  atomic_store_explicit(&e->last_seen, now, memory_order_relaxed);
  /* next even value; skip 0, which means "never used" */
  uint32_t next = seq_odd + 1;
  if (next == 0) next = 2;
  atomic_store_explicit(&e->ver, L4_VER(next, key->proto, 0) | ver_bits | ((uint64_t)l4_birth_of(now) << 16),
                        memory_order_release);
  return next;
}

static uint32_t write_entry(struct l4_flow *e, uint32_t seq_odd, const struct l4_flow_key *key, uint32_t hash_hi,
                            uint32_t backend, uint32_t svc, uint8_t state, uint32_t now) {
  return write_entry_ver(e, seq_odd, key, hash_hi, backend, svc, state, now);
}

/* Marks an entry as being written (odd sequence); the caller holds the bucket lock. A state change a worker
 * makes in the meantime fails its compare-and-swap, because the sequence moved. Returns the odd sequence.
 * An exchange, not a store: the old word it returns is the one no touch can change any more, so the active
 * counts take out exactly what the entry held (a touch that closed it just before has already taken it out).
 * If the entry was counted, its backend and service lose it. */
static uint32_t begin_write(struct l4_flow_table *ft, struct l4_flow *e) {
  uint64_t cur = atomic_load_explicit(&e->ver, memory_order_relaxed);
  uint32_t s = L4_VER_SEQ(cur); /* even, and no other writer: we hold the lock */
  uint64_t old = atomic_exchange_explicit(&e->ver, L4_VER(s + 1, 0, 0), memory_order_relaxed);
  atomic_thread_fence(memory_order_release);
  if (holds_flow(old) && l4_flow_counted(L4_VER_PROTO(old), L4_VER_STATE(old)))
    l4_flow_count_add(ft, atomic_load_explicit(&e->backend, memory_order_relaxed),
                      atomic_load_explicit(&e->svc, memory_order_relaxed), -1);
  return s + 1;
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
static enum l4_flow_insert_result insert(struct l4_flow_table *ft, const struct l4_flow_key *key, uint64_t hash,
                                         uint32_t backend, uint32_t svc, uint8_t state, const struct l4_flow_timeouts *to,
                                         uint32_t now, bool replace, bool reserved, struct l4_flow_ref *out) {
  uint64_t bi = hash & (ft->nbuckets - 1);
  struct l4_flow *b = &ft->entries[bi * L4_FLOW_BUCKET];
  uint32_t hash_hi = (uint32_t)(hash >> 32);
  bucket_lock(ft, bi);
  struct l4_flow *victim = NULL;
  uint64_t victim_score = UINT64_MAX;
  struct l4_flow *existing = NULL;
  uint64_t kw[L4_KEY_WORDS];
  key_words(key, kw);
  for (int i = 0; i < L4_FLOW_BUCKET; i++) {
    struct l4_flow_ref ref;
    if (read_entry(&b[i], kw, hash_hi, &ref)) {
      existing = &b[i];
      if (!replace && !expired(ref.e, key->proto, ref.state, to, now)) {
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
  uint32_t seq = write_entry(target, begin_write(ft, target), key, hash_hi, backend, svc, state, now);
  /* In the count before the lock is let go: a sweep or another insert that takes the entry out again comes after. */
  bool counted = l4_flow_counted(key->proto, state);
  if (counted) l4_flow_count_add(ft, reserved ? UINT32_MAX : backend, svc, 1);
  else if (reserved) l4_flow_count_add(ft, backend, UINT32_MAX, -1);
  bucket_unlock(ft, bi);
  out->e = target;
  out->seq = seq;
  out->backend = backend;
  out->svc = svc;
  out->state = state;
  if (existing) return FLOW_INSERTED;
  return victim_score > 1 ? FLOW_INSERTED_EVICTED : FLOW_INSERTED;
}

enum l4_flow_insert_result l4_flow_insert(struct l4_flow_table *ft, const struct l4_flow_key *key, uint64_t hash,
                                          uint32_t backend, uint32_t svc, uint8_t state, const struct l4_flow_timeouts *to,
                                          uint32_t now, bool replace, struct l4_flow_ref *out) {
  return insert(ft, key, hash, backend, svc, state, to, now, replace, false, out);
}

enum l4_flow_insert_result l4_flow_insert_reserved(struct l4_flow_table *ft, const struct l4_flow_key *key, uint64_t hash,
                                                   uint32_t backend, uint32_t svc, uint8_t state,
                                                   const struct l4_flow_timeouts *to, uint32_t now, bool replace,
                                                   struct l4_flow_ref *out) {
  return insert(ft, key, hash, backend, svc, state, to, now, replace, true, out);
}

uint64_t l4_flow_count(struct l4_flow_table *ft, const struct l4_flow_timeouts *to, uint32_t now) {
  uint64_t n = 0;
  for (uint64_t i = 0; i < ft->capacity; i++) {
    struct l4_flow *e = &ft->entries[i];
    uint64_t v = atomic_load_explicit(&e->ver, memory_order_acquire);
    if (holds_flow(v) && !expired(e, L4_VER_PROTO(v), L4_VER_STATE(v), to, now)) n++;
  }
  return n;
}

uint64_t l4_flow_walk(struct l4_flow_table *ft, const struct l4_flow_timeouts *to, uint32_t now, uint64_t start,
                      uint64_t max_scan, int (*fn)(const struct l4_flow_view *v, void *arg), void *arg) {
  uint64_t end = start < ft->capacity && ft->capacity - start > max_scan ? start + max_scan : ft->capacity;
  for (uint64_t i = start; i < end; i++) {
    struct l4_flow *e = &ft->entries[i];
    struct l4_flow_view v;
    uint64_t v1 = atomic_load_explicit(&e->ver, memory_order_acquire);
    if (!holds_flow(v1)) continue;
    uint64_t kw[L4_KEY_WORDS];
    for (size_t k = 0; k < L4_KEY_WORDS; k++) kw[k] = atomic_load_explicit(&e->key[k], memory_order_relaxed);
    v.backend = atomic_load_explicit(&e->backend, memory_order_relaxed);
    v.svc = atomic_load_explicit(&e->svc, memory_order_relaxed);
    uint32_t last = atomic_load_explicit(&e->last_seen, memory_order_relaxed);
    atomic_thread_fence(memory_order_acquire);
    uint64_t v2 = atomic_load_explicit(&e->ver, memory_order_relaxed);
    if (L4_VER_SEQ(v2) != L4_VER_SEQ(v1)) continue; /* changing: skip */
    if (expired_at(e, L4_VER_PROTO(v2), L4_VER_STATE(v2), last, to, now)) continue;
    memcpy(&v.key, kw, sizeof(v.key));
    v.state = L4_VER_STATE(v2);
    v.learned = (v2 & L4_VER_LEARNED) != 0;
    v.idle = (int32_t)(now - last) > 0 ? now - last : 0;
    v.age = l4_age_of(L4_VER_BIRTH(v2), now);
    v.e = e;
    v.seq = L4_VER_SEQ(v1);
    if (fn(&v, arg)) return i + 1;
  }
  return end;
}

/* Empties an entry (bucket lock held): not counted, not listed, the first choice to reuse, whatever a late
 * l4_flow_touch stores. begin_write takes it out of the active counts if it was in. */
static void free_entry(struct l4_flow_table *ft, struct l4_flow *e, uint32_t now) {
  uint32_t odd = begin_write(ft, e);
  for (size_t i = 0; i < L4_KEY_WORDS; i++) atomic_store_explicit(&e->key[i], 0, memory_order_relaxed);
  atomic_store_explicit(&e->last_seen, now - 0x40000000u, memory_order_relaxed);
  uint32_t next = odd + 1;
  if (next == 0) next = 2;
  atomic_store_explicit(&e->ver, L4_VER(next, 0, FL_FREE), memory_order_release);
}

bool l4_flow_remove(struct l4_flow_table *ft, const struct l4_flow_view *v, uint32_t now) {
  uint64_t bi = (uint64_t)(v->e - ft->entries) / L4_FLOW_BUCKET;
  struct l4_flow *e = v->e;
  bucket_lock(ft, bi);
  bool same = L4_VER_SEQ(atomic_load_explicit(&e->ver, memory_order_relaxed)) == v->seq;
  if (same) free_entry(ft, e, now);
  bucket_unlock(ft, bi);
  return same;
}

void l4_flow_counts_rebuild(struct l4_flow_table *ft) {
  if (!ft->active_bk) return;
  for (uint32_t b = 0; b < ft->nbk; b++) atomic_store_explicit(&ft->active_bk[b], 0, memory_order_relaxed);
  for (uint32_t s = 0; s < ft->nsvc; s++) atomic_store_explicit(&ft->active_svc[s], 0, memory_order_relaxed);
  for (uint64_t i = 0; i < ft->capacity; i++) {
    struct l4_flow *e = &ft->entries[i];
    uint64_t v = atomic_load_explicit(&e->ver, memory_order_acquire);
    if (holds_flow(v) && l4_flow_counted(L4_VER_PROTO(v), L4_VER_STATE(v)))
      l4_flow_count_add(ft, atomic_load_explicit(&e->backend, memory_order_relaxed), atomic_load_explicit(&e->svc, memory_order_relaxed), 1);
  }
}

uint64_t l4_flow_sweep(struct l4_flow_table *ft, const struct l4_flow_timeouts *to, uint32_t now, uint64_t start,
                       uint64_t max_scan, uint64_t *freed) {
  uint64_t first = start / L4_FLOW_BUCKET, nb = (max_scan + L4_FLOW_BUCKET - 1) / L4_FLOW_BUCKET;
  if (!nb) nb = 1;
  uint64_t last = first < ft->nbuckets && ft->nbuckets - first > nb ? first + nb : ft->nbuckets;
  for (uint64_t bi = first; bi < last; bi++) {
    struct l4_flow *b = &ft->entries[bi * L4_FLOW_BUCKET];
    bucket_lock(ft, bi);
    for (int i = 0; i < L4_FLOW_BUCKET; i++) {
      struct l4_flow *e = &b[i];
      uint64_t v = atomic_load_explicit(&e->ver, memory_order_relaxed);
      if (!holds_flow(v)) continue;
      uint32_t svc = atomic_load_explicit(&e->svc, memory_order_relaxed);
      uint32_t last_seen = atomic_load_explicit(&e->last_seen, memory_order_relaxed);
      /* Only entries expired for more than the margin: a worker's clock is read once per batch and may be a
       * second behind this one, so an entry that just expired here may have been found live there a moment
       * ago, with its packet on the way; the margin leaves such an entry to that worker (it refreshes it).
       * Counted entries past the timeout but within the margin are the figure's only excess besides those
       * the sweep has not reached yet. */
      uint32_t limit = l4_flow_timeout(l4_timeouts_of(to, svc), L4_VER_PROTO(v), L4_VER_STATE(v));
      if ((int64_t)(int32_t)(now - last_seen) <= (int64_t)limit + L4_SWEEP_MARGIN) continue;
      free_entry(ft, e, now);
      if (freed) (*freed)++;
    }
    bucket_unlock(ft, bi);
  }
  return last * L4_FLOW_BUCKET;
}

enum l4_flow_insert_result l4_flow_learn(struct l4_flow_table *ft, const struct l4_flow_key *key, uint64_t hash,
                                         uint32_t backend, uint32_t svc, bool confirmed, const struct l4_flow_timeouts *to,
                                         uint32_t now) {
  uint64_t bi = hash & (ft->nbuckets - 1);
  struct l4_flow *b = &ft->entries[bi * L4_FLOW_BUCKET];
  uint32_t hash_hi = (uint32_t)(hash >> 32);
  uint64_t kw[L4_KEY_WORDS];
  key_words(key, kw);
  bucket_lock(ft, bi);
  struct l4_flow *target = NULL;
  uint64_t victim_score = UINT64_MAX;
  bool existing = false;
  for (int i = 0; i < L4_FLOW_BUCKET; i++) {
    struct l4_flow_ref ref;
    if (read_entry(&b[i], kw, hash_hi, &ref)) {
      bool learned = (atomic_load_explicit(&b[i].ver, memory_order_relaxed) & L4_VER_LEARNED) != 0;
      if (!learned && !l4_flow_state_closed(ref.state) && !expired(ref.e, key->proto, ref.state, to, now)) {
        bucket_unlock(ft, bi);
        return FLOW_EXISTS; /* this host's own live entry wins */
      }
      target = &b[i];
      existing = true;
      break;
    }
    uint64_t score = keep_score(&b[i], to, now);
    if (score < victim_score) {
      victim_score = score;
      target = &b[i];
    }
  }
  uint8_t tcp = confirmed ? FL_SYN | FL_REPLY | FL_EST : FL_REPLY;
  uint8_t state = (uint8_t)((key->proto == 6 ? tcp : 0) | FL_SYNCED);
  write_entry_ver(target, begin_write(ft, target), key, hash_hi, backend, svc, state | L4_VER_LEARNED, now);
  l4_flow_count_add(ft, backend, svc, 1); /* a learned entry is open (established or half-open): counted */
  bucket_unlock(ft, bi);
  return existing || victim_score <= 1 ? FLOW_INSERTED : FLOW_INSERTED_EVICTED;
}

bool l4_flow_forget(struct l4_flow_table *ft, const struct l4_flow_key *key, uint64_t hash, uint32_t now) {
  struct l4_flow *b = bucket_of(ft, hash);
  uint64_t kw[L4_KEY_WORDS];
  key_words(key, kw);
  for (int i = 0; i < L4_FLOW_BUCKET; i++) {
    struct l4_flow_ref ref;
    if (!read_entry(&b[i], kw, (uint32_t)(hash >> 32), &ref)) continue;
    uint64_t v = atomic_load_explicit(&b[i].ver, memory_order_relaxed);
    if (L4_VER_SEQ(v) != ref.seq || !(v & L4_VER_LEARNED)) return false;
    struct l4_flow_view view = {.e = ref.e, .seq = ref.seq};
    return l4_flow_remove(ft, &view, now);
  }
  return false;
}
