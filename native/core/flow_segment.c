/* The flow table file's layout and take-over decision; see flow_segment.h. */
#include "flow_segment.h"

#include <stddef.h>
#include <string.h>

/* This file format's own version: bump it when the header or the regions change. */
#define L4_SEG_FORMAT 1

static uint32_t fnv1a(uint32_t h, uint64_t v) {
  for (int i = 0; i < 8; i++) {
    h ^= (uint8_t)(v >> (8 * i));
    h *= 16777619u;
  }
  return h;
}

uint32_t l4_flow_segment_layout_id(void) {
  const uint64_t parts[] = {
      L4_SEG_FORMAT,
      sizeof(struct l4_flow),
      sizeof(struct l4_flow_key),
      L4_FLOW_BUCKET,
      offsetof(struct l4_flow, ver),
      offsetof(struct l4_flow, key),
      offsetof(struct l4_flow, hash_hi),
      offsetof(struct l4_flow, backend),
      offsetof(struct l4_flow, last_seen),
      offsetof(struct l4_flow, svc),
      offsetof(struct l4_flow_key, client),
      offsetof(struct l4_flow_key, vip),
      offsetof(struct l4_flow_key, cport),
      offsetof(struct l4_flow_key, vport),
      offsetof(struct l4_flow_key, proto),
      offsetof(struct l4_flow_key, family),
      FL_SYN, FL_REPLY, FL_EST, FL_FIN_C, FL_FIN_B, FL_RST, FL_FREE, FL_SYNCED, L4_VER_LEARNED,
      L4_VER(1, 2, 3),
      L4_BIRTH_UNIT_SHIFT,
      sizeof(struct l4_flow_segment_hdr),
  };
  uint32_t h = 2166136261u;
  for (size_t i = 0; i < sizeof(parts) / sizeof(parts[0]); i++) h = fnv1a(h, parts[i]);
  return h;
}

uint64_t l4_flow_segment_key_id(const struct siphash_key *k) {
  static const char what[] = "l4nat flow table key id";
  return siphash24(k, what, sizeof(what) - 1);
}

uint64_t l4_flow_segment_nbuckets(uint64_t capacity) {
  uint64_t nb = 1;
  while (nb * L4_FLOW_BUCKET < capacity) nb <<= 1;
  return nb;
}

static uint64_t page_up(uint64_t n) { return (n + L4_SEG_PAGE - 1) / L4_SEG_PAGE * L4_SEG_PAGE; }

uint64_t l4_flow_segment_hdr_check(const struct l4_flow_segment_hdr *h) {
  const uint64_t f[] = {h->magic, h->layout, h->hdr_bytes, h->capacity, h->nbuckets, h->key_id,
                        h->entries_off, h->locks_off, h->slots_off, h->slots_bytes, h->total_bytes};
  uint32_t a = 2166136261u, b = 0x9e3779b9u;
  for (size_t i = 0; i < sizeof(f) / sizeof(f[0]); i++) {
    a = fnv1a(a, f[i]);
    b = fnv1a(b, f[i] ^ 0x5bd1e995u);
  }
  return ((uint64_t)a << 32) | b;
}

void l4_flow_segment_format(struct l4_flow_segment_hdr *h, uint64_t capacity, uint64_t key_id) {
  uint64_t nb = l4_flow_segment_nbuckets(capacity);
  memset(h, 0, sizeof(*h));
  h->magic = L4_SEG_MAGIC;
  h->layout = l4_flow_segment_layout_id();
  h->hdr_bytes = L4_SEG_PAGE;
  h->capacity = nb * L4_FLOW_BUCKET;
  h->nbuckets = nb;
  h->key_id = key_id;
  h->entries_off = L4_SEG_PAGE;
  h->locks_off = h->entries_off + page_up(h->capacity * sizeof(struct l4_flow));
  h->slots_off = h->locks_off + page_up(nb);
  h->slots_bytes = L4_SEG_SLOTS_BYTES;
  h->total_bytes = h->slots_off + 2 * h->slots_bytes;
  h->check = l4_flow_segment_hdr_check(h);
}

enum l4_seg_verdict l4_flow_segment_check(const struct l4_flow_segment_hdr *h, uint64_t file_bytes, uint64_t capacity,
                                          uint64_t key_id) {
  if (file_bytes < sizeof(*h)) return L4_SEG_TRUNCATED;
  if (h->magic != L4_SEG_MAGIC) return L4_SEG_NOT_SEGMENT;
  if (h->check != l4_flow_segment_hdr_check(h)) return L4_SEG_CORRUPT;
  if (h->layout != l4_flow_segment_layout_id()) return L4_SEG_LAYOUT;
  struct l4_flow_segment_hdr want;
  l4_flow_segment_format(&want, capacity, key_id);
  if (h->capacity != want.capacity) return L4_SEG_CAPACITY;
  if (h->key_id != want.key_id) return L4_SEG_KEY;
  /* Same layout and capacity: the regions must be where this build puts them. */
  if (h->hdr_bytes != want.hdr_bytes || h->nbuckets != want.nbuckets || h->entries_off != want.entries_off ||
      h->locks_off != want.locks_off || h->slots_off != want.slots_off || h->slots_bytes != want.slots_bytes ||
      h->total_bytes != want.total_bytes)
    return L4_SEG_CORRUPT;
  if (file_bytes < h->total_bytes) return L4_SEG_TRUNCATED;
  uint32_t len;
  if (!l4_flow_segment_slots(h, NULL, &len)) return L4_SEG_NO_SLOTS;
  return L4_SEG_OK;
}

const char *l4_flow_segment_reason(enum l4_seg_verdict v) {
  switch (v) {
    case L4_SEG_OK: return "compatible";
    case L4_SEG_TRUNCATED: return "the file is shorter than its header says (or empty)";
    case L4_SEG_NOT_SEGMENT: return "not an l4nat flow table file (wrong magic number)";
    case L4_SEG_CORRUPT: return "its header is corrupt (check value or region offsets wrong)";
    case L4_SEG_LAYOUT: return "written by an l4nat with another flow entry layout";
    case L4_SEG_CAPACITY: return "its flow table capacity differs from --flow-capacity";
    case L4_SEG_KEY: return "its entries were placed with another hash key";
    case L4_SEG_NO_SLOTS: return "it holds no slot map (the writer never published a table, or its map did not fit)";
  }
  return "unknown";
}

const uint8_t *l4_flow_segment_slots(const struct l4_flow_segment_hdr *h, const uint8_t *base, uint32_t *len) {
  uint32_t cur = atomic_load_explicit(&h->slots_current, memory_order_acquire);
  *len = 0;
  if (cur != 1 && cur != 2) return NULL;
  uint32_t n = atomic_load_explicit(&h->slots_len[cur - 1], memory_order_relaxed);
  if (n == 0 || n > h->slots_bytes) return NULL;
  *len = n;
  /* Without a base (the header check) any non-NULL pointer says "present". */
  return base ? base + h->slots_off + (cur - 1) * h->slots_bytes : (const uint8_t *)h;
}

int l4_flow_segment_put_slots(struct l4_flow_segment_hdr *h, uint8_t *base, const uint8_t *map, uint64_t len) {
  uint32_t cur = atomic_load_explicit(&h->slots_current, memory_order_relaxed);
  if (len == 0 || len > h->slots_bytes) {
    atomic_store_explicit(&h->slots_current, 0, memory_order_release);
    return -1;
  }
  uint32_t next = cur == 1 ? 2 : 1;
  memcpy(base + h->slots_off + (next - 1) * h->slots_bytes, map, (size_t)len);
  atomic_store_explicit(&h->slots_len[next - 1], (uint32_t)len, memory_order_relaxed);
  atomic_store_explicit(&h->slots_current, next, memory_order_release);
  return 0;
}

uint64_t l4_flow_segment_attach(struct l4_flow_table *ft, struct l4_flow_segment_hdr *h, uint8_t *base, int alone) {
  l4_flow_table_init_at(ft, (struct l4_flow *)(void *)(base + h->entries_off),
                        (_Atomic uint8_t *)(void *)(base + h->locks_off), h->nbuckets);
  if (!alone) return 0;
  /* From here on this process writes: a crash leaves the file to be repaired by the next one. */
  if (atomic_exchange_explicit(&h->clean, 0, memory_order_acq_rel)) return 0;
  for (uint64_t i = 0; i < h->nbuckets; i++) atomic_store_explicit(&ft->locks[i], 0, memory_order_relaxed);
  uint64_t freed = 0;
  for (uint64_t i = 0; i < ft->capacity; i++) {
    struct l4_flow *e = &ft->entries[i];
    uint64_t v = atomic_load_explicit(&e->ver, memory_order_relaxed);
    if (!(L4_VER_SEQ(v) & 1)) continue;
    /* Its writer died between the odd and the even sequence: the fields may be half old, half new. */
    for (size_t w = 0; w < L4_KEY_WORDS; w++) atomic_store_explicit(&e->key[w], 0, memory_order_relaxed);
    atomic_store_explicit(&e->ver, L4_VER(L4_VER_SEQ(v) + 1, 0, FL_FREE), memory_order_relaxed);
    freed++;
  }
  return freed;
}

void l4_flow_segment_release(struct l4_flow_segment_hdr *h) { atomic_store_explicit(&h->clean, 1, memory_order_release); }
