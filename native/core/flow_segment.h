/* The flow table in a file both an l4nat and the next one map (the handover of issue 18: a restart keeps every
 * flow's backend). The table's concurrency (flow_table.h) needs nothing per process: entries and bucket locks
 * are plain atomics, so they work unchanged in a MAP_SHARED mapping as long as both live in it. This module is
 * the file's layout and the decision whether a file found at start can be taken over; the syscalls (open, lock,
 * map) are native/flow_file.c's.
 *
 * File layout (every region page-aligned):
 *   header (one page) | entries (capacity * 64) | bucket locks (nbuckets bytes) | slot map A | slot map B
 * Entries name their backend and service by SLOT number; the slot map (written by the control plane after each
 * publish, src/dataplane/flow-slots.ts) says which backend and service each slot held, so the next process gives
 * the same backends the same slots. It is double-buffered: the new copy goes into the buffer not in use and
 * `slots_current` flips after it, so a crash in the middle of a write leaves the previous copy readable. */
#ifndef L4NAT_FLOW_SEGMENT_H
#define L4NAT_FLOW_SEGMENT_H

#include <stdatomic.h>
#include <stdint.h>

#include "flow_table.h"
#include "siphash.h"

#define L4_SEG_MAGIC 0x574c46544e34344cull /* "L44NTFLW" */
#define L4_SEG_PAGE 4096u
/* Each slot map buffer; a map that does not fit is not written, and the next start begins empty (says so). */
#define L4_SEG_SLOTS_BYTES (2u << 20)

struct l4_flow_segment_hdr {
  uint64_t magic;
  uint32_t layout;      /* l4_flow_segment_layout_id() of the writer */
  uint32_t hdr_bytes;   /* L4_SEG_PAGE */
  uint64_t capacity;    /* entries (a power of two times L4_FLOW_BUCKET) */
  uint64_t nbuckets;
  uint64_t key_id;      /* l4_flow_segment_key_id(): which hash key placed the entries, without revealing it */
  uint64_t entries_off, locks_off, slots_off, slots_bytes, total_bytes;
  uint64_t check;       /* l4_flow_segment_hdr_check() over the fields above */
  _Atomic uint32_t slots_current; /* 0: no slot map yet; 1 or 2: buffer A or B holds the latest */
  _Atomic uint32_t slots_len[2];
  _Atomic uint32_t clean; /* set once the last user's workers stopped (a handover): nothing to repair */
};

enum l4_seg_verdict {
  L4_SEG_OK,
  L4_SEG_TRUNCATED,     /* shorter than its header says (or than a header) */
  L4_SEG_NOT_SEGMENT,   /* wrong magic */
  L4_SEG_CORRUPT,       /* header check value or region offsets wrong */
  L4_SEG_LAYOUT,        /* written by a build with another entry layout */
  L4_SEG_CAPACITY,      /* another flow table capacity */
  L4_SEG_KEY,           /* another hash key: every entry would sit in the wrong bucket */
  L4_SEG_NO_SLOTS,      /* no (readable) slot map: the entries' slot numbers mean nothing */
};

/* The entry-layout contract in one number: entry and key sizes, field offsets, bucket size, state bits, the
 * version word's packing and this file format's own version. A build that changes any of them writes another id,
 * and its file is not taken over. */
uint32_t l4_flow_segment_layout_id(void);

/* Identifies a hash key (SipHash of a fixed text under the key): equal keys, equal ids. */
uint64_t l4_flow_segment_key_id(const struct siphash_key *k);

/* The table's geometry for a requested capacity, exactly as l4_flow_table_init rounds it. */
uint64_t l4_flow_segment_nbuckets(uint64_t capacity);

/* Fills a header (offsets, sizes, ids, check value) for a table of `capacity` entries; no slot map yet. */
void l4_flow_segment_format(struct l4_flow_segment_hdr *h, uint64_t capacity, uint64_t key_id);

uint64_t l4_flow_segment_hdr_check(const struct l4_flow_segment_hdr *h);

/* May a file of file_bytes whose first bytes are `h` be taken over by a process wanting `capacity` entries
 * placed with key `key_id`? (h may be read from at most file_bytes bytes; pass file_bytes < sizeof *h for an
 * empty file.) */
enum l4_seg_verdict l4_flow_segment_check(const struct l4_flow_segment_hdr *h, uint64_t file_bytes, uint64_t capacity,
                                          uint64_t key_id);

/* One line saying why a file was not taken over. */
const char *l4_flow_segment_reason(enum l4_seg_verdict v);

/* The slot map buffer currently valid (NULL, *len = 0 if none). `base` is the start of the mapping. */
const uint8_t *l4_flow_segment_slots(const struct l4_flow_segment_hdr *h, const uint8_t *base, uint32_t *len);

/* Writes a new slot map into the spare buffer and makes it current. Returns 0, or -1 (nothing current any more)
 * if it does not fit: a table whose slots nobody can name must not be taken over. Control thread only. */
int l4_flow_segment_put_slots(struct l4_flow_segment_hdr *h, uint8_t *base, const uint8_t *map, uint64_t len);

/* Points ft at a mapped segment's entries and locks (taken over or new). `alone`: no other process uses the
 * segment; then, unless the last user left it clean, repairs what a process that died mid-write left: every bucket
 * lock released, an entry caught half-written (odd sequence) freed. Without `alone` (a live handover: the previous
 * l4nat still forwards through it) nothing is touched. Only before any worker of this process runs. Returns the
 * entries freed. */
uint64_t l4_flow_segment_attach(struct l4_flow_table *ft, struct l4_flow_segment_hdr *h, uint8_t *base, int alone);

/* Marks the segment clean: call once this process's workers have stopped (no lock held, no entry mid-write). */
void l4_flow_segment_release(struct l4_flow_segment_hdr *h);

#endif
