/* Flow-state sync (docs/scale-out.md "Flow-state sync"): the entries another host cannot reconstruct.
 *
 * A flow whose entry names the backend the current ring picks needs no sync: every host's ring (same config, same
 * hash key, agreed health) picks it too. Only an entry pinned *against* the ring (made before a change that moved
 * its slot, by a second chance, or to a drained backend) carries something the other hosts lack. With sync on,
 * a worker that handles a packet on such an entry, not yet marked FL_SYNCED, logs it here and marks it; a marked
 * entry that closes (FIN both ways, RST) logs a removal and loses the mark, so a flow that lives on after a
 * forged RST is logged again by its next packet. The control plane drains the logs every ~150 ms and sends the
 * records to the cluster's peers (src/cluster/sync.ts).
 *
 * An idle flow is logged at its next packet, not at the ring change: until it sends, it loses nothing (no host
 * forwards anything for it), and its next packet both reaches this host's entry and logs it. A host that dies
 * before that packet loses the flows that were idle across the change (the window is one packet, not the change).
 *
 * One log per worker: single producer (its worker), single consumer (the addon's drain on the control thread),
 * lock-free and fixed in size, as the trace ring (trace.h). A record that finds the log full is dropped and
 * counted; the entry stays unmarked, so its next packet tries again. Pure C. */
#ifndef L4NAT_SYNC_LOG_H
#define L4NAT_SYNC_LOG_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "flow_table.h"

#define L4_SYNC_LOG_RECORDS 4096u /* per worker; a power of two */

#define L4_SYNC_ADD 1u /* the entry is pinned against the ring: peers should learn it */
#define L4_SYNC_DEL 2u /* a logged entry closed: peers may forget it */

/* One logged entry; 56 bytes. Slots are this host's (the control plane names them by identity for the peers). */
struct l4_sync_rec {
  struct l4_flow_key key;
  uint32_t backend, svc;
  uint8_t op, state, pad[6];
};

/* The record's fields as src/dataplane/sync-record.ts reads them (layout.h exports the offsets). */
#define L4_SYNC_REC_FIELDS(X)                         \
  X("client", offsetof(struct l4_sync_rec, key.client)) \
  X("vip", offsetof(struct l4_sync_rec, key.vip))       \
  X("cport", offsetof(struct l4_sync_rec, key.cport))   \
  X("vport", offsetof(struct l4_sync_rec, key.vport))   \
  X("proto", offsetof(struct l4_sync_rec, key.proto))   \
  X("family", offsetof(struct l4_sync_rec, key.family)) \
  X("backend", offsetof(struct l4_sync_rec, backend))   \
  X("svc", offsetof(struct l4_sync_rec, svc))           \
  X("op", offsetof(struct l4_sync_rec, op))             \
  X("state", offsetof(struct l4_sync_rec, state))

struct l4_sync_log {
  _Atomic uint64_t head; /* written by the worker */
  char pad1[56];
  _Atomic uint64_t tail; /* written by the reader */
  char pad2[56];
  _Atomic uint64_t dropped; /* records that found the log full (head: records written) */
  struct l4_sync_rec rec[L4_SYNC_LOG_RECORDS];
};

/* The worker's side: appends a record; false (and counted) when the log is full. */
bool l4_sync_log_put(struct l4_sync_log *log, const struct l4_flow_key *key, uint32_t backend, uint32_t svc,
                     uint8_t op, uint8_t state);
/* The reader's side: moves up to `max` records into out, oldest first; returns how many. */
uint32_t l4_sync_log_read(struct l4_sync_log *log, struct l4_sync_rec *out, uint32_t max);

#endif
