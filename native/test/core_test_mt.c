/* The shared flow table under concurrency: workers insert and look up overlapping keys at once (as TUN
 * queues do when the forward and reply packets of a flow land on different workers). The property checked
 * is the one the data plane relies on: once any worker has seen a key mapped to a backend, every worker
 * sees that backend for as long as the entry lives (no eviction or expiry happens in these runs), and no key
 * ends up with two live entries. Bounded iterations; run under ASan here, and under TSan with
 * `make -C native/test tsan`. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test_util.h"
#include "tests.h"

#define MT_THREADS 4
#define MT_MAX_KEYS 256
#define MT_UNSET UINT32_MAX

struct mt_shared {
  struct l4_flow_table ft;
  struct l4_flow_timeouts to;
  struct siphash_key hk;
  int nkeys, iters;
  struct l4_flow_key keys[MT_MAX_KEYS];
  uint64_t hashes[MT_MAX_KEYS];
  _Atomic uint32_t pinned[MT_MAX_KEYS];
  _Atomic int violations, evictions, insert_failed, inserted, exists;
  atomic_flag msg_taken;
  char msg[256];
  pthread_barrier_t start; /* all threads begin together, or the first may finish before the last starts */
};

struct mt_arg {
  struct mt_shared *s;
  int tid;
};

static uint64_t xorshift(uint64_t *x) {
  *x ^= *x << 13;
  *x ^= *x >> 7;
  *x ^= *x << 17;
  return *x;
}

static void observe(struct mt_shared *s, int k, uint32_t b, const char *what, int tid) {
  uint32_t expected = MT_UNSET;
  if (atomic_compare_exchange_strong(&s->pinned[k], &expected, b)) return;
  if (expected != b) {
    atomic_fetch_add(&s->violations, 1);
    if (!atomic_flag_test_and_set(&s->msg_taken))
      snprintf(s->msg, sizeof(s->msg), "key %d: thread %d's %s gave backend %u, pinned to %u", k, tid, what, b, expected);
  }
}

static void *mt_thread(void *p) {
  struct mt_arg *a = p;
  struct mt_shared *s = a->s;
  uint64_t x = 0x9e3779b97f4a7c15ULL * (uint64_t)(a->tid + 1);
  pthread_barrier_wait(&s->start);
  for (int i = 0; i < s->iters; i++) {
    uint64_t r = xorshift(&x);
    int k = (int)(r % (uint64_t)s->nkeys);
    struct l4_flow_ref ref;
    if ((r >> 32) & 1) {
      if (l4_flow_lookup(&s->ft, &s->keys[k], s->hashes[k], &s->to, 1000, &ref)) {
        observe(s, k, ref.backend, "lookup", a->tid);
        if ((r >> 33) & 1) l4_flow_touch(&s->ft, &ref, FL_REPLY, FL_RST, 1000);
      }
    } else {
      enum l4_flow_insert_result res =
          l4_flow_insert(&s->ft, &s->keys[k], s->hashes[k], (uint32_t)a->tid, 0, FL_SYN, &s->to, 1000, false, &ref);
      switch (res) {
        case FLOW_INSERTED_EVICTED:
          atomic_fetch_add(&s->evictions, 1);
          /* fall through */
        case FLOW_INSERTED:
          atomic_fetch_add(&s->inserted, 1);
          observe(s, k, (uint32_t)a->tid, "insert", a->tid);
          break;
        case FLOW_EXISTS:
          atomic_fetch_add(&s->exists, 1);
          observe(s, k, ref.backend, "insert (exists)", a->tid);
          break;
        case FLOW_INSERT_FAILED:
          atomic_fetch_add(&s->insert_failed, 1);
          break;
      }
    }
  }
  return NULL;
}

static void mt_run(uint64_t capacity, int nkeys, int iters, const char *label, bool verbose) {
  static struct mt_shared s;
  memset(&s, 0, sizeof(s));
  if (l4_flow_table_init(&s.ft, capacity) != 0) {
    CHECK(false, "%s: flow table init", label);
    return;
  }
  s.to = (struct l4_flow_timeouts){{3600, 3600, 3600, 3600, 3600}, NULL, 0};
  uint8_t kb[16];
  for (int i = 0; i < 16; i++) kb[i] = (uint8_t)(i * 3);
  siphash_key_from_bytes(&s.hk, kb);
  s.nkeys = nkeys;
  s.iters = iters;
  for (int k = 0; k < nkeys; k++) {
    struct l4_flow_key *key = &s.keys[k];
    memset(key, 0, sizeof(*key));
    key->client[0] = 198, key->client[1] = 51, key->client[2] = 100, key->client[3] = (uint8_t)k;
    key->vip[0] = 10, key->vip[1] = 200, key->vip[3] = 10;
    key->cport = (uint16_t)(1000 + k);
    key->vport = 80;
    key->proto = 6;
    key->family = 4;
    s.hashes[k] = l4_flow_hash(&s.hk, key);
    atomic_store(&s.pinned[k], MT_UNSET);
  }
  pthread_t th[MT_THREADS];
  struct mt_arg args[MT_THREADS];
  pthread_barrier_init(&s.start, NULL, MT_THREADS);
  for (int t = 0; t < MT_THREADS; t++) {
    args[t] = (struct mt_arg){&s, t};
    pthread_create(&th[t], NULL, mt_thread, &args[t]);
  }
  for (int t = 0; t < MT_THREADS; t++) pthread_join(th[t], NULL);
  pthread_barrier_destroy(&s.start);

  CHECK(atomic_load(&s.violations) == 0, "%s: %d pinning violations; first: %s", label, atomic_load(&s.violations), s.msg);
  CHECK(atomic_load(&s.evictions) == 0, "%s: %d evictions (the run must not need any)", label, atomic_load(&s.evictions));
  uint64_t live = l4_flow_count(&s.ft, &s.to, 1000);
  CHECK(live == (uint64_t)nkeys, "%s: %llu live entries for %d keys (duplicates?)", label, (unsigned long long)live, nkeys);
  for (int k = 0; k < nkeys; k++) {
    struct l4_flow_ref ref;
    bool found = l4_flow_lookup(&s.ft, &s.keys[k], s.hashes[k], &s.to, 1000, &ref);
    uint32_t pin = atomic_load(&s.pinned[k]);
    CHECK(found && ref.backend == pin, "%s: key %d ends on %u, pinned %u", label, k, found ? ref.backend : 9999, pin);
  }
  if (verbose)
    fprintf(stderr, "    %s: %d inserted, %d found existing, %d insert failures\n", label, atomic_load(&s.inserted),
            atomic_load(&s.exists), atomic_load(&s.insert_failed));
  l4_flow_table_destroy(&s.ft);
}

void test_mt_flow_table_one_bucket(void) {
  /* Every key in one bucket of 8: the most contention the table can have. Many rounds of fresh tables so
   * that the first-insert race (the interesting one) happens thousands of times. */
  for (int round = 0; round < 2000; round++) {
    int before = g_test_failures;
    mt_run(8, 6, 400, "one bucket", false);
    if (g_test_failures != before) {
      fprintf(stderr, "    (round %d)\n", round);
      break;
    }
  }
}

void test_mt_flow_table_wide(void) { mt_run(4096, MT_MAX_KEYS, 100000, "256 keys in 512 buckets", true); }

/* ---- data path: four workers, each with its own counters and its own idea of the ring ---- */

struct dp_shared {
  struct l4_flow_table ft;
  struct l4_tables *tables[2]; /* ring A for even workers, ring B for odd ones: a republish in flight */
  _Atomic uint32_t pinned[64];
  _Atomic int violations;
  atomic_flag msg_taken;
  char msg[256];
  int iters;
  pthread_barrier_t start;
};

struct dp_arg {
  struct dp_shared *s;
  int tid;
};

static void *dp_thread(void *p) {
  struct dp_arg *a = p;
  struct dp_shared *s = a->s;
  const struct l4_tables *t = s->tables[a->tid & 1];
  uint64_t *counters = calloc(l4_counter_block_words(t->max_services, t->max_backends), sizeof(uint64_t));
  struct l4_ctx ctx = {.counters = counters, .max_services = t->max_services, .max_backends = t->max_backends,
                       .flows = &s->ft, .now = 1000};
  uint64_t x = 0x2545f4914f6cdd1dULL * (uint64_t)(a->tid + 1);
  uint8_t buf[256];
  struct pb_ip ip;
  struct pb_l4 l4;
  pthread_barrier_wait(&s->start);
  for (int i = 0; i < s->iters; i++) {
    uint64_t r = xorshift(&x);
    int k = (int)(r % 64);
    uint16_t cport = (uint16_t)(20000 + k);
    uint32_t pin = atomic_load(&s->pinned[k]);
    int action = (int)((r >> 32) % 3);
    if (pin == MT_UNSET) action = 0; /* until someone's SYN went through, only SYNs make sense */
    if (action == 2) {
      /* the pinned backend answers: translated statelessly, touches the entry */
      const struct fx_backend_def *d = &FX_BACKENDS[pin];
      spec_tcp(&ip, &l4, 4, d->addr, d->port, C4, cport, PB_TCP_ACK, 8);
    } else {
      spec_tcp(&ip, &l4, 4, C4, cport, VIP4, 80, action == 0 ? PB_TCP_SYN : PB_TCP_ACK, 8);
    }
    uint32_t len = pb_build(buf, sizeof(buf), NULL, &ip, &l4);
    if (l4_process(&ctx, t, buf, &len) != L4_VERDICT_TX) {
      atomic_fetch_add(&s->violations, 1);
      if (!atomic_flag_test_and_set(&s->msg_taken))
        snprintf(s->msg, sizeof(s->msg), "worker %d: dropped (%s)", a->tid, L4_DROP_REASON_NAMES[ctx.last_drop]);
      continue;
    }
    if (action == 2) continue;
    uint32_t b = buf[PB_VNET_LEN + 19] == 1 ? FX_BK_V4T_A : FX_BK_V4T_B; /* 10.0.1.1 or 10.0.1.2 */
    uint32_t expected = MT_UNSET;
    if (atomic_compare_exchange_strong(&s->pinned[k], &expected, b)) continue;
    if (expected != b) {
      atomic_fetch_add(&s->violations, 1);
      if (!atomic_flag_test_and_set(&s->msg_taken))
        snprintf(s->msg, sizeof(s->msg), "port %u: worker %d (ring %c) sent a %s to backend %u, flow pinned to %u", cport,
                 a->tid, (a->tid & 1) ? 'B' : 'A', action == 0 ? "SYN" : "ACK", b, expected);
    }
  }
  free(counters);
  return NULL;
}

void test_mt_dataplane_pinning(void) {
  for (int round = 0; round < 200; round++) {
    static struct dp_shared s;
    memset(&s, 0, sizeof(s));
    if (l4_flow_table_init(&s.ft, 8192) != 0) {
      CHECK(false, "flow table init");
      return;
    }
    /* both backends stay in both rings: a SYN on an entry of a backend out of the ring moves (admission.h) */
    s.tables[0] = fx_tables(FX_RING_A_B1, 0);
    s.tables[1] = fx_tables(FX_RING_B_A1, 0);
    s.iters = 2000;
    for (int k = 0; k < 64; k++) atomic_store(&s.pinned[k], MT_UNSET);
    pthread_t th[MT_THREADS];
    struct dp_arg args[MT_THREADS];
    pthread_barrier_init(&s.start, NULL, MT_THREADS);
    for (int t = 0; t < MT_THREADS; t++) {
      args[t] = (struct dp_arg){&s, t};
      pthread_create(&th[t], NULL, dp_thread, &args[t]);
    }
    for (int t = 0; t < MT_THREADS; t++) pthread_join(th[t], NULL);
    pthread_barrier_destroy(&s.start);
    CHECK(atomic_load(&s.violations) == 0, "round %d: %d violations; first: %s", round, atomic_load(&s.violations), s.msg);
    uint64_t live = l4_flow_count(&s.ft, &s.tables[0]->timeouts, 1000);
    CHECK(live == 64, "round %d: %llu live entries for 64 flows", round, (unsigned long long)live);
    l4_tables_free(s.tables[0]);
    l4_tables_free(s.tables[1]);
    l4_flow_table_destroy(&s.ft);
    if (g_test_failures) break;
  }
}
