/* The flow table: which backend each live flow is pinned to, shared by all workers.
 *
 * Why shared: without a steering program the TUN picks the read queue from a hash of the packet as read,
 * so the forward packets (client -> VIP) and the replies (backend -> client) of one flow land on different
 * workers, and a flow can move between queues. Every worker must see every entry.
 *
 * Concurrency: buckets of 8 entries (one 512-byte block, 8 cache lines); each entry has a version word used
 * as a seqlock: its upper 32 bits are the sequence (even = stable, odd = being written, 0 = never used), its
 * low bits the TCP state bits and the protocol. Lookups take no lock and retry an entry whose sequence
 * changed under them; every field is an atomic read with relaxed order (plain loads on x86 and arm64), so
 * the optimistic copy is not a data race in C11's sense (Boehm, "Can seqlocks get along with programming
 * language memory models?", 2012). Writers (a new flow, an admin removal) take a per-bucket spinlock, so two
 * workers that see the first packets of one flow at once cannot both insert it; that is once per new flow,
 * never per packet. A state change (rare: a handful per connection) is a compare-and-swap on the version
 * word, so it lands only on the entry the worker looked up: never on one removed or reused for another flow
 * since. last_seen is a plain atomic any worker stores; a removed entry is marked free in its version word,
 * so a late store there cannot bring it back.
 *
 * Memory is allocated once at start (capacity rounded up to a power of two); nothing is allocated later.
 * An entry is 64 bytes. */
#ifndef L4NAT_FLOW_TABLE_H
#define L4NAT_FLOW_TABLE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "tables.h"

#define L4_FLOW_BUCKET 8

/* State bits (an entry's TCP state is derived from them; see l4_flow_timeout). */
#define FL_SYN 0x01       /* created by a client SYN */
#define FL_REPLY 0x02     /* the backend has answered */
#define FL_EST 0x04       /* established: the client acknowledged after a reply, or picked up mid-flow */
#define FL_FIN_C 0x08     /* FIN from the client */
#define FL_FIN_B 0x10     /* FIN from the backend */
#define FL_RST 0x20       /* RST seen; cleared again by a later non-RST packet, so a forged RST cannot unpin a live flow */
#define FL_SYNCED 0x40    /* logged for the cluster's peers as pinned against the ring (sync_log.h); set on
                             learned entries too, so a host never sends on what it was told */
#define FL_FREE 0x80      /* removed by the admin: an empty slot (only l4_flow_remove sets it) */

/* A TCP entry in CLOSE: reset, or FIN seen both ways (it lingers for the close timeout, but carries no connection). */
static inline int l4_flow_state_closed(uint8_t state) {
  return (state & FL_RST) || (state & (FL_FIN_C | FL_FIN_B)) == (FL_FIN_C | FL_FIN_B);
}

/* The flow key, hashed with SipHash: the forward direction's 5-tuple. */
struct l4_flow_key {
  uint8_t client[16];
  uint8_t vip[16];
  uint16_t cport, vport; /* network order */
  uint8_t proto, family;
  uint8_t pad[2];
};

/* The version word: sequence << 32 | birth << 16 | protocol << 8 | state bits. The birth (when the entry was
 * written for its flow, in L4_BIRTH_UNIT-second units, wrapping) rides in bits nothing else used, so an entry
 * stays 64 bytes; state changes keep it (they only OR and clear state bits). For the admin view (a drain's
 * oldest flow), never the packet path's decisions. */
#define L4_VER_SEQ(v) ((uint32_t)((v) >> 32))
#define L4_VER_STATE(v) ((uint8_t)(v))
#define L4_VER_PROTO(v) ((uint8_t)((v) >> 8) & 0x7f)
/* Learned from a peer (l4_flow_learn), not made by this host's packets: the protocol byte's top bit (TCP and UDP
 * need 5 bits), so an entry stays 64 bytes and state changes (which only OR and clear state bits) keep it. */
#define L4_VER_LEARNED ((uint64_t)0x80 << 8)
#define L4_VER_BIRTH(v) ((uint16_t)((v) >> 16))
#define L4_VER(seq, proto, state) (((uint64_t)(seq) << 32) | ((uint64_t)(proto) << 8) | (uint64_t)(state))
#define L4_BIRTH_UNIT_SHIFT 2 /* 4-second units: ages are exact to 4 s and wrap after 2^18 s (72.8 hours) */
static inline uint16_t l4_birth_of(uint32_t now) { return (uint16_t)(now >> L4_BIRTH_UNIT_SHIFT); }
/* Seconds since `birth` at `now`, to L4_BIRTH_UNIT (an entry older than the wrap shows its age modulo it). */
static inline uint32_t l4_age_of(uint16_t birth, uint32_t now) {
  return (uint32_t)(uint16_t)(l4_birth_of(now) - birth) << L4_BIRTH_UNIT_SHIFT;
}
#define L4_KEY_WORDS (sizeof(struct l4_flow_key) / 8)

struct l4_flow {
  _Atomic uint64_t ver;         /* see L4_VER: sequence, protocol, FL_* bits */
  _Atomic uint64_t key[5];      /* struct l4_flow_key, as 5 words (read with relaxed atomics under the seqlock) */
  _Atomic uint32_t hash_hi;     /* upper bits of the key's hash, for a quick reject */
  _Atomic uint32_t backend;     /* backend slot */
  _Atomic uint32_t last_seen;   /* seconds on the data plane's clock */
  _Atomic uint32_t svc;         /* service slot: whose idle timeouts apply */
};
struct l4_flow_table {
  struct l4_flow *entries;
  _Atomic uint8_t *locks;  /* one per bucket, taken by writers only (new flows, removals) */
  uint64_t nbuckets;  /* power of two */
  uint64_t capacity;  /* nbuckets * L4_FLOW_BUCKET */
  bool borrowed;      /* entries and locks belong to a mapping someone else unmaps (flow_segment.h) */
  /* Active flows per backend slot and per service slot (l4_flow_counts_init; NULL: not kept). An entry is counted
   * while it holds a flow and is not closed (TCP: l4_flow_state_closed; UDP: always), and every function here that
   * writes an entry's version word keeps the counts exact on its events: insert (the overwritten entry out, the
   * new one in), touch (close, and reopen by a later packet), remove, sweep. An entry that only expires is
   * counted until l4_flow_sweep frees it or an insert reuses its slot: the figure is never below the true count
   * of live open entries, and above it by at most those that went idle past their timeout since the sweep last
   * passed them (docs/dataplane.md, "Active flows"). Separate from the entries' allocation on purpose. */
  _Atomic int64_t *active_bk, *active_svc;
  uint32_t nbk, nsvc;
};

/* A lookup result: a pointer to the entry (valid while its sequence is unchanged), and a copy of it. */
struct l4_flow_ref {
  struct l4_flow *e;
  uint32_t seq;
  uint32_t backend;
  uint32_t svc;
  uint8_t state;
};

enum l4_flow_insert_result { FLOW_INSERTED, FLOW_INSERTED_EVICTED, FLOW_EXISTS, FLOW_INSERT_FAILED };

int l4_flow_table_init(struct l4_flow_table *ft, uint64_t capacity);
/* A table over memory the caller owns (zeroed, or left by an earlier user): nbuckets * L4_FLOW_BUCKET entries and
 * nbuckets lock bytes. destroy() then forgets it without freeing. */
void l4_flow_table_init_at(struct l4_flow_table *ft, struct l4_flow *entries, _Atomic uint8_t *locks, uint64_t nbuckets);
void l4_flow_table_destroy(struct l4_flow_table *ft);
/* Allocates the active-flow counts (zero: call it on an empty table) for slots below max_services / max_backends. */
int l4_flow_counts_init(struct l4_flow_table *ft, uint32_t max_services, uint32_t max_backends);
void l4_flow_counts_destroy(struct l4_flow_table *ft);
/* Sets the counts from the entries (every one that holds an open flow, expired or not), for a table whose entries
 * outlived its counts (a table adopted across a restart). Not while workers write the table. */
void l4_flow_counts_rebuild(struct l4_flow_table *ft);

/* Does an entry of this protocol and state count as an active flow? */
static inline bool l4_flow_counted(uint8_t proto, uint8_t state) { return proto != 6 || !l4_flow_state_closed(state); }

/* Adds d to the active counts of a backend and a service slot (slots beyond the arrays are not counted). */
static inline void l4_flow_count_add(struct l4_flow_table *ft, uint32_t backend, uint32_t svc, int64_t d) {
  if (!ft->active_bk) return;
  if (backend < ft->nbk) atomic_fetch_add_explicit(&ft->active_bk[backend], d, memory_order_relaxed);
  if (svc < ft->nsvc) atomic_fetch_add_explicit(&ft->active_svc[svc], d, memory_order_relaxed);
}

/* The active count of a backend / service slot (0 when not kept; never negative). */
static inline int64_t l4_flow_active_backend(const struct l4_flow_table *ft, uint32_t b) {
  if (!ft->active_bk || b >= ft->nbk) return 0;
  int64_t n = atomic_load_explicit(&ft->active_bk[b], memory_order_relaxed);
  return n > 0 ? n : 0;
}
static inline int64_t l4_flow_active_service(const struct l4_flow_table *ft, uint32_t s) {
  if (!ft->active_svc || s >= ft->nsvc) return 0;
  int64_t n = atomic_load_explicit(&ft->active_svc[s], memory_order_relaxed);
  return n > 0 ? n : 0;
}

/* Takes one of a backend's `limit` places for a new entry: adds 1 to its count unless it is at the limit
 * already (a compare-and-swap, so workers racing for the last place cannot both take it). The insert that
 * follows (l4_flow_insert_reserved) adds only the service's 1; if it does not insert, the caller gives the place
 * back with l4_flow_count_add(ft, b, UINT32_MAX, -1). */
static inline bool l4_flow_reserve(struct l4_flow_table *ft, uint32_t b, uint32_t limit) {
  if (!ft->active_bk || b >= ft->nbk) return true;
  int64_t cur = atomic_load_explicit(&ft->active_bk[b], memory_order_relaxed);
  do {
    if (cur >= (int64_t)limit) return false;
  } while (!atomic_compare_exchange_weak_explicit(&ft->active_bk[b], &cur, cur + 1, memory_order_relaxed,
                                                  memory_order_relaxed));
  return true;
}

uint64_t l4_flow_hash(const struct siphash_key *k, const struct l4_flow_key *key);

/* Seconds a flow in `state` may stay idle. */
uint32_t l4_flow_timeout(const struct l4_timeouts *to, uint8_t proto, uint8_t state);

/* The idle timeouts that apply to an entry: its service's (entries remember their service slot), or the
 * defaults for a slot beyond the list (a service removed since, or a table without per-service timeouts). */
static inline const struct l4_timeouts *l4_timeouts_of(const struct l4_flow_timeouts *to, uint32_t svc) {
  return svc < to->nsvc ? &to->svc[svc] : &to->def;
}

/* Finds a live (not expired) entry for key. */
bool l4_flow_lookup(struct l4_flow_table *ft, const struct l4_flow_key *key, uint64_t hash,
                    const struct l4_flow_timeouts *to, uint32_t now, struct l4_flow_ref *out);

/* Inserts (or, if `replace` is set and the key is present, re-pins) key -> backend with the given state.
 * When the bucket is full, evicts the least valuable entry: expired first, then not established, then the
 * longest idle. On FLOW_EXISTS, out holds the entry that was there (unless replace). */
enum l4_flow_insert_result l4_flow_insert(struct l4_flow_table *ft, const struct l4_flow_key *key, uint64_t hash,
                                          uint32_t backend, uint32_t svc, uint8_t state, const struct l4_flow_timeouts *to,
                                          uint32_t now, bool replace, struct l4_flow_ref *out);
/* The same for a backend place taken with l4_flow_reserve: the new entry's backend count is already in. */
enum l4_flow_insert_result l4_flow_insert_reserved(struct l4_flow_table *ft, const struct l4_flow_key *key, uint64_t hash,
                                                   uint32_t backend, uint32_t svc, uint8_t state,
                                                   const struct l4_flow_timeouts *to, uint32_t now, bool replace,
                                                   struct l4_flow_ref *out);

/* Records activity on a looked-up entry: ORs `set` into the state, clears `clear`, refreshes last_seen.
 * Bits the lookup already saw as wanted cost nothing: an established flow's packets do no atomic
 * read-modify-write here. A change is a compare-and-swap that gives up when the entry's sequence moved
 * (removed, or evicted and reused for another flow since the lookup). */
static inline void l4_flow_touch(struct l4_flow_table *ft, struct l4_flow_ref *ref, uint8_t set, uint8_t clear, uint32_t now) {
  struct l4_flow *e = ref->e;
  if ((set & ~ref->state) || (clear & ref->state)) {
    uint64_t cur = atomic_load_explicit(&e->ver, memory_order_relaxed);
    for (;;) {
      if (L4_VER_SEQ(cur) != ref->seq) return; /* not the entry we looked up any more */
      uint64_t next = (cur | set) & ~(uint64_t)clear;
      if (next == cur) break;
      if (atomic_compare_exchange_weak_explicit(&e->ver, &cur, next, memory_order_relaxed, memory_order_relaxed)) {
        /* Closed by this packet (RST, the second FIN), or open again (a later packet cleared the RST). The
         * sequence was ours when the swap succeeded, so ref's backend and service are the entry's. */
        bool was = l4_flow_counted(L4_VER_PROTO(cur), L4_VER_STATE(cur)), is = l4_flow_counted(L4_VER_PROTO(next), L4_VER_STATE(next));
        if (was != is) l4_flow_count_add(ft, ref->backend, ref->svc, is ? 1 : -1);
        break;
      }
    }
  }
  /* Only write when the second changes, so busy flows do not bounce the cache line between workers. A store
   * that lands after the entry was removed is harmless (FL_FREE); after it was reused, it only refreshes it. */
  if (atomic_load_explicit(&e->last_seen, memory_order_relaxed) != now)
    atomic_store_explicit(&e->last_seen, now, memory_order_relaxed);
}

/* A consistent copy of one live entry, for listing. */
struct l4_flow_view {
  struct l4_flow_key key;
  uint32_t backend;
  uint32_t svc;
  uint8_t state;
  uint32_t idle; /* seconds since the last packet */
  uint32_t age;  /* seconds since the entry was written for its flow (l4_age_of) */
  uint8_t learned; /* L4_VER_LEARNED */
  struct l4_flow *e;
  uint32_t seq;
};

/* Calls fn for every live entry (a consistent copy) from entry index `start` on, looking at no more than
 * `max_scan` entries; stops early when fn returns non-zero. For the admin view, never the packet path: a
 * caller pages through a large table with the returned cursor instead of walking all of it at once.
 * Returns the index to continue from (capacity when the walk reached the end). */
uint64_t l4_flow_walk(struct l4_flow_table *ft, const struct l4_flow_timeouts *to, uint32_t now, uint64_t start,
                      uint64_t max_scan, int (*fn)(const struct l4_flow_view *v, void *arg), void *arg);

/* Removes the entry a view was taken from, if it has not changed since. Returns true if removed. */
bool l4_flow_remove(struct l4_flow_table *ft, const struct l4_flow_view *v, uint32_t now);

/* Frees entries that expired more than L4_SWEEP_MARGIN seconds ago, from entry index `start` on, looking at no more
 * than `max_scan` entries (rounded to whole buckets, each taken under its lock like a removal), and takes the
 * counted ones out of the active counts. Returns the index to continue from (capacity at the end); *freed (may be
 * NULL) grows by the entries freed. The control plane pages through the whole table every few seconds. */
#define L4_SWEEP_MARGIN 2
uint64_t l4_flow_sweep(struct l4_flow_table *ft, const struct l4_flow_timeouts *to, uint32_t now, uint64_t start,
                       uint64_t max_scan, uint64_t *freed);

/* Inserts an entry a peer reported (flow-state sync, sync_log.h) as learned, FL_SYNCED, expiring by the same
 * timeouts: TCP `confirmed` (both ends spoke through the peer's entry) established (SYN, REPLY, EST), else as the
 * peer's pick-up was, half-open (REPLY: SYN timeout, evicted first; the client's next packet through it confirms
 * it); UDP no bits. A live entry this host made itself, not closed,
 * wins (FLOW_EXISTS): its packets went through this host, a peer's report is older news. A learned one is
 * re-pinned and refreshed (a peer's newer report), and a closed or expired one replaced. */
enum l4_flow_insert_result l4_flow_learn(struct l4_flow_table *ft, const struct l4_flow_key *key, uint64_t hash,
                                         uint32_t backend, uint32_t svc, bool confirmed, const struct l4_flow_timeouts *to,
                                         uint32_t now);

/* Removes key's entry if it is a learned one (a peer reported the flow closed); a local entry stays. */
bool l4_flow_forget(struct l4_flow_table *ft, const struct l4_flow_key *key, uint64_t hash, uint32_t now);

/* Counts live entries (for tests and the admin view; walks the whole table). */
uint64_t l4_flow_count(struct l4_flow_table *ft, const struct l4_flow_timeouts *to, uint32_t now);

#endif
