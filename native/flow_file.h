/* The flow table kept in a file (core/flow_segment.h): open it, lock it for this process, take it over when its
 * header allows, else start it anew. The lock (flock) ends with the process, so a crashed l4nat's file is taken
 * over by the next one like a handed-over one. */
#ifndef L4NAT_FLOW_FILE_H
#define L4NAT_FLOW_FILE_H

#include <stdint.h>

#include "core/flow_segment.h"

struct l4_flow_file {
  int fd;          /* -1: none */
  uint8_t *base;   /* the mapping */
  uint64_t bytes;
  struct l4_flow_segment_hdr *hdr;
  int adopted;     /* 1: the entries of the previous process were taken over */
  enum l4_seg_verdict why; /* when not adopted and a file was there: why not */
  int existed;     /* a file (maybe empty) was there */
  uint64_t repaired; /* half-written entries freed (after a crash) */
};

/* Opens (creating it 0600 if missing) and maps `path` for a table of `capacity` entries placed with `key`, and
 * points ft at it. Alone (`shared` 0): waits up to lock_wait_ms for an exclusive lock (no other l4nat on it; a
 * crashed one's lock is gone), repairs, then keeps a shared lock. `shared` 1, a live handover: the previous l4nat
 * still holds its shared lock and forwards through the file; this one joins it, touching nothing, or, if the file
 * cannot be taken over, unlinks it (the other keeps its mapping) and starts a new one at the same path. Returns 0 or
 * -errno with *failed_call naming the step (then nothing is left open). */
int l4_flow_file_open(struct l4_flow_file *f, const char *path, uint64_t capacity, const struct siphash_key *key,
                      uint32_t lock_wait_ms, int shared, struct l4_flow_table *ft, const char **failed_call);

/* Unmaps and closes; when `clean` (this process's workers have stopped) and no other process holds the file, marks
 * it clean first, so the next l4nat skips the repair walk. */
void l4_flow_file_close(struct l4_flow_file *f, int clean);

#endif
