/* The data-plane runtime: one worker thread per TUN queue, the shared flow table, the published service
 * table and the counters. Plain C and pthreads; addon.c exposes it to Node. */
#ifndef L4NAT_WORKER_H
#define L4NAT_WORKER_H

#include <stdatomic.h>
#include <stdint.h>

#include "core/dataplane.h"
#include "flow_file.h"
#include "sync.h"
#include "tracing.h"

struct l4_queue;

struct l4_dp_config {
  char ifname[16];
  int nqueues;
  uint64_t flow_capacity;
  uint32_t max_services, max_backends;
  uint32_t busy_poll_us; /* after the queue drains, keep reading up to this long before sleeping (0 = never) */
  uint32_t busy_poll_adaptive; /* size the window from the idle gaps seen (core/busypoll.h), else always
                                  busy_poll_us */
  uint32_t udp_coalesce; /* write runs of one flow's UDP datagrams as GSO super-packets (core/coalesce.h);
                            used only where the kernel takes them (its TUN accepted the USO offloads) */
  char flow_file[256];   /* the flow table's file, handed from one l4nat to the next (flow_file.h); "" = memory */
  uint8_t hash_key[16];  /* with flow_file: the key the entries are placed with */
  uint32_t flow_file_shared; /* a live handover: the previous l4nat still uses the file (flow_file.h) */
};

struct l4_dp {
  struct l4_dp_config cfg;
  char ifname[16];
  unsigned offloads;
  int *fds;
  struct l4_queue *queues;
  struct l4_flow_table flows;
  struct l4_flow_file flow_file; /* fd -1 unless cfg.flow_file is set */
  struct l4_ratelimit ratelimit;
  struct l4_probes probes;   /* data-plane health probes outstanding, one per backend slot (core/probe.h) */
  struct l4_dp_trace trace;  /* the verdict trace's matches and rings (tracing.h) */
  struct l4_dp_sync sync;    /* flow-state sync's per-worker logs and its switch (sync.h) */
  _Atomic(struct l4_tables *) tables;
  _Atomic uint64_t gen;      /* bumped on each publish (quiescent-state based reclamation) */
  _Atomic int stopping;
  int stop_fd;               /* eventfd that wakes workers blocked in poll */
  int running;
  int detached;              /* the queues are detached from the TUN (l4_dp_set_queues); l4_dp_start attaches them */
  uint64_t *counters;        /* nqueues blocks of l4_counter_block_words() */
  uint64_t counter_words;    /* per queue */
  size_t counter_bytes;
};

/* Creates the runtime: opens the TUN queues, allocates the flow table and counters. Returns 0 or -errno
 * with *failed_call set. Counters are allocated with mmap and released by l4_dp_free_counters. */
int l4_dp_create(struct l4_dp *dp, const struct l4_dp_config *cfg, const char **failed_call);
/* Publishes a new table. The previous one is freed once every worker has passed a quiescent point. */
void l4_dp_publish(struct l4_dp *dp, struct l4_tables *t);
/* Detaches (attach 0) or attaches every queue. Detached, the queues get no packets; a live handover's successor
 * starts so (l4_dp_start attaches them once its workers poll), and its predecessor leaves so: every packet goes to
 * the successor's queues before it stops its workers. 0 or -errno. */
int l4_dp_set_queues(struct l4_dp *dp, int attach);
int l4_dp_start(struct l4_dp *dp, const char **failed_call);
void l4_dp_stop(struct l4_dp *dp);
/* Stops workers, closes the queues (removing the device first if persist == 0), frees tables and flows. */
void l4_dp_destroy(struct l4_dp *dp, int keep_device);
void l4_dp_free_counters(uint64_t *counters, size_t bytes);
int l4_dp_set_persist(struct l4_dp *dp, int persist);
/* Attaches the queue-steering program for these VIPs (steering.h) to the device; if the kernel's verifier
 * refuses it, its message goes to stderr. Returns 0 or -errno with *failed_call set. */
int l4_dp_steer(struct l4_dp *dp, const uint8_t *vips4, uint32_t n4, const uint8_t *vips6, uint32_t n6,
                const char **failed_call);
/* Removes it: the kernel picks queues again. Returns 0 or -errno (of ioctl TUNSETSTEERINGEBPF). */
int l4_dp_unsteer(struct l4_dp *dp);
/* The errno with which reading this queue failed for good (its worker has ended), or 0 while it reads. */
int l4_dp_queue_error(const struct l4_dp *dp, int queue);
uint64_t l4_dp_now_seconds(void);
/* The workers' wrapping millisecond clock (their rate limits' l4_ctx.now_ms). */
uint32_t l4_dp_now_ms(void);

#endif
