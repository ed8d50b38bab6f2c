/* The flow table file's layout and take-over decision (core/flow_segment.h), without a file: the header check
 * (compatible, and each reason not to take a file over), the double-buffered slot map, and the repair of what a
 * process that died mid-write left. native/test/flow_file_test.c maps real files. */
#include <stdlib.h>
#include <string.h>

#include "../core/flow_segment.h"
#include "keys.h"
#include "test_util.h"
#include "tests.h"

#define SEG_CAP 1024

/* A whole segment in memory, formatted for SEG_CAP entries and key 0x11, with a slot map. */
static uint8_t *segment_new(struct l4_flow_segment_hdr **hp) {
  struct l4_flow_segment_hdr h;
  struct siphash_key k = key_of(0x11);
  l4_flow_segment_format(&h, SEG_CAP, l4_flow_segment_key_id(&k));
  uint8_t *base = aligned_alloc(L4_SEG_PAGE, h.total_bytes);
  memset(base, 0, h.total_bytes);
  memcpy(base, &h, sizeof(h));
  *hp = (struct l4_flow_segment_hdr *)(void *)base;
  return base;
}

static void reseal(struct l4_flow_segment_hdr *h) { h->check = l4_flow_segment_hdr_check(h); }

void test_flow_segment_header(void) {
  struct l4_flow_segment_hdr *h;
  uint8_t *base = segment_new(&h);
  struct siphash_key k = key_of(0x11), other = key_of(0x22);
  uint64_t kid = l4_flow_segment_key_id(&k);
  CHECK(kid != l4_flow_segment_key_id(&other), "different keys, different ids");
  CHECK(kid == l4_flow_segment_key_id(&k), "the same key, the same id");
  CHECK(h->capacity == SEG_CAP && h->nbuckets == SEG_CAP / L4_FLOW_BUCKET, "geometry %lu/%lu", (unsigned long)h->capacity, (unsigned long)h->nbuckets);
  CHECK(h->entries_off % L4_SEG_PAGE == 0 && h->locks_off % L4_SEG_PAGE == 0 && h->slots_off % L4_SEG_PAGE == 0, "regions page-aligned");
  uint64_t size = h->total_bytes;
  /* Never published a table: the slot numbers in it name nothing. */
  CHECK(l4_flow_segment_check(h, size, SEG_CAP, kid) == L4_SEG_NO_SLOTS, "no slot map yet");
  CHECK(l4_flow_segment_put_slots(h, base, (const uint8_t *)"{}", 2) == 0, "slot map written");
  CHECK(l4_flow_segment_check(h, size, SEG_CAP, kid) == L4_SEG_OK, "compatible");
  /* A capacity that rounds to the same table is the same table. */
  CHECK(l4_flow_segment_check(h, size, SEG_CAP - 5, kid) == L4_SEG_OK, "capacity rounded the same way");
  CHECK(l4_flow_segment_check(h, 0, SEG_CAP, kid) == L4_SEG_TRUNCATED, "empty file");
  CHECK(l4_flow_segment_check(h, size - 1, SEG_CAP, kid) == L4_SEG_TRUNCATED, "shorter than its header says");
  CHECK(l4_flow_segment_check(h, size, SEG_CAP * 2, kid) == L4_SEG_CAPACITY, "another capacity");
  CHECK(l4_flow_segment_check(h, size, SEG_CAP, l4_flow_segment_key_id(&other)) == L4_SEG_KEY, "another hash key");
  struct l4_flow_segment_hdr saved = *h;
  h->layout ^= 1;
  reseal(h);
  CHECK(l4_flow_segment_check(h, size, SEG_CAP, kid) == L4_SEG_LAYOUT, "another entry layout");
  *h = saved;
  h->capacity ^= 8; /* not resealed: the check value catches it */
  CHECK(l4_flow_segment_check(h, size, SEG_CAP, kid) == L4_SEG_CORRUPT, "a field changed under the check value");
  *h = saved;
  h->locks_off += L4_SEG_PAGE;
  reseal(h);
  CHECK(l4_flow_segment_check(h, size, SEG_CAP, kid) == L4_SEG_CORRUPT, "a region where this build does not put it");
  *h = saved;
  h->magic = 0x1234;
  CHECK(l4_flow_segment_check(h, size, SEG_CAP, kid) == L4_SEG_NOT_SEGMENT, "wrong magic");
  *h = saved;
  CHECK(l4_flow_segment_check(h, size, SEG_CAP, kid) == L4_SEG_OK, "restored");
  for (int v = L4_SEG_OK; v <= L4_SEG_NO_SLOTS; v++) CHECK(strlen(l4_flow_segment_reason((enum l4_seg_verdict)v)) > 5, "reason %d", v);
  free(base);
}

void test_flow_segment_slots(void) {
  struct l4_flow_segment_hdr *h;
  uint8_t *base = segment_new(&h);
  uint32_t len;
  CHECK(l4_flow_segment_slots(h, base, &len) == NULL && len == 0, "none at first");
  CHECK(l4_flow_segment_put_slots(h, base, (const uint8_t *)"first", 5) == 0, "first written");
  const uint8_t *m = l4_flow_segment_slots(h, base, &len);
  CHECK(m && len == 5 && memcmp(m, "first", 5) == 0, "first read back");
  const uint8_t *first_at = m;
  CHECK(l4_flow_segment_put_slots(h, base, (const uint8_t *)"second!", 7) == 0, "second written");
  m = l4_flow_segment_slots(h, base, &len);
  CHECK(m && len == 7 && memcmp(m, "second!", 7) == 0, "second read back");
  /* The second went into the other buffer: a writer dying in the middle of it left the first intact. */
  CHECK(m != first_at && memcmp(first_at, "first", 5) == 0, "double-buffered");
  uint8_t *big = calloc(1, (size_t)h->slots_bytes + 1);
  CHECK(l4_flow_segment_put_slots(h, base, big, h->slots_bytes + 1) < 0, "a map too big is refused");
  CHECK(l4_flow_segment_slots(h, base, &len) == NULL, "and no map is current after it (the old one is stale)");
  CHECK(l4_flow_segment_put_slots(h, base, big, h->slots_bytes) == 0, "a map of exactly the buffer's size fits");
  free(big);
  free(base);
}

static struct l4_flow_key seg_key(uint16_t port) {
  struct l4_flow_key k;
  memset(&k, 0, sizeof(k));
  k.client[0] = 10;
  k.client[3] = 7;
  k.vip[0] = 10;
  k.vip[3] = 1;
  k.cport = port;
  k.vport = 80;
  k.proto = 17;
  k.family = 4;
  return k;
}

void test_flow_segment_repair(void) {
  struct l4_flow_segment_hdr *h;
  uint8_t *base = segment_new(&h);
  struct siphash_key k = key_of(0x11);
  struct l4_flow_timeouts to = {.def = {60, 600, 60, 10, 300}};
  struct l4_flow_table ft;
  CHECK(l4_flow_segment_attach(&ft, h, base, 1) == 0, "a new segment needs no repair");
  CHECK(ft.capacity == SEG_CAP && ft.borrowed, "table over the segment");
  for (uint16_t p = 1; p <= 100; p++) {
    struct l4_flow_key fk = seg_key(p);
    struct l4_flow_ref ref;
    CHECK(l4_flow_insert(&ft, &fk, l4_flow_hash(&k, &fk), p % 7, 0, 0, &to, 1000, false, &ref) == FLOW_INSERTED, "insert %u", p);
  }
  /* A crash: a writer held bucket 3's lock and had entry 0 of flow 5's bucket half-written. */
  struct l4_flow_key k5 = seg_key(5);
  struct l4_flow_ref r5;
  CHECK(l4_flow_lookup(&ft, &k5, l4_flow_hash(&k, &k5), &to, 1000, &r5), "flow 5 there");
  uint64_t v = atomic_load(&r5.e->ver);
  atomic_store(&r5.e->ver, v | (1ull << 32)); /* odd sequence */
  atomic_store(&ft.locks[3], 1);
  l4_flow_table_destroy(&ft); /* borrowed: frees nothing */
  struct l4_flow_table ft2;
  CHECK(l4_flow_segment_attach(&ft2, h, base, 1) == 1, "the half-written entry freed");
  CHECK(atomic_load(&ft2.locks[3]) == 0, "the dead writer's lock released");
  CHECK(!l4_flow_lookup(&ft2, &k5, l4_flow_hash(&k, &k5), &to, 1000, &r5), "the half-written flow is gone");
  for (uint16_t p = 1; p <= 100; p++) {
    if (p == 5) continue;
    struct l4_flow_key fk = seg_key(p);
    struct l4_flow_ref ref;
    CHECK(l4_flow_lookup(&ft2, &fk, l4_flow_hash(&k, &fk), &to, 1001, &ref) && ref.backend == p % 7u, "flow %u kept its backend", p);
  }
  /* Insert into the bucket whose lock was stuck: it would spin forever without the repair. */
  struct l4_flow_ref ref;
  CHECK(l4_flow_insert(&ft2, &k5, l4_flow_hash(&k, &k5), 3, 0, 0, &to, 1001, false, &ref) == FLOW_INSERTED, "re-inserted");
  /* Left clean (a handover): the next attach skips the walk. */
  l4_flow_segment_release(h);
  atomic_store(&ft2.locks[0], 1);
  CHECK(l4_flow_segment_attach(&ft2, h, base, 1) == 0 && atomic_load(&ft2.locks[0]) == 1, "a clean segment is not walked");
  CHECK(atomic_load(&h->clean) == 0, "taken: not clean until released again");
  free(base);
}
