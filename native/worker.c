/* Worker threads; see worker.h.
 *
 * Each worker owns one TUN queue fd (non-blocking): it reads packets until EAGAIN, translating each in
 * place and writing it back, and only then sleeps in poll() on the queue and the stop eventfd. That is one
 * read and one write syscall per packet (a GSO super-packet counts once), no allocation, no lock. One
 * exception to "one write per packet": consecutive UDP datagrams of one flow go out as one UDP GSO
 * super-packet (core/coalesce.h), flushed before any other packet and at the end of every batch, so packet
 * order is kept and nothing waits longer than the reads of one batch.
 *
 * A read that fails with anything but EAGAIN (EBADFD: the device was deleted, or the queue detached) will fail
 * again on every wake-up, and poll() reports POLLERR at once: the worker records the errno and ends, so its
 * heartbeat stops, the watchdog withholds its pings and the control plane (l4_dp_queue_error) says what happened
 * instead of a worker spinning at full CPU while it looks healthy.
 *
 * Table publication uses quiescent-state based reclamation: at the start of every batch a worker records
 * the generation it runs under and loads the current table; while it sleeps in poll() it records 0
 * ("holds no table"). The publisher swaps the pointer, bumps the generation and frees the old table once
 * every worker is asleep or has started a batch under the new generation. */
#define _GNU_SOURCE
#include "worker.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "core/busypoll.h"
#include "core/coalesce.h"
#include "steering.h"
#include "tun.h"

#define L4_BUF_SIZE (VNET_HDR_LEN + 65536 + 64)
#define L4_RATELIMIT_BUCKETS 65536
#define L4_BATCH 64
/* How long a new l4nat waits for the previous one to let go of the flow table file (it is exiting). */
#define FLOW_FILE_LOCK_WAIT_MS 3000

struct l4_queue {
  struct l4_dp *dp;
  int index;
  int fd;
  pthread_t thread;
  int started;
  _Atomic uint64_t active_gen; /* 0 while sleeping */
  struct l4_ctx ctx;
  uint8_t *buf;
  struct l4_coalescer co; /* co.buf NULL: not coalescing */
  uint64_t idle_since;    /* CLOCK_MONOTONIC ns the queue was last found empty; 0 while packets come */
  uint64_t spin_ns;       /* busy-polling window (core/busypoll.h); fixed at the maximum unless adaptive */
  int slept;              /* the current idle gap outlasted the spin (or the spin ceded): not a hit */
  _Atomic int read_errno; /* why reading the queue failed for good (the worker has ended); 0 while it reads */
  struct l4_trace *trace; /* this worker's copy of the trace matches and its ring (tracing.h) */
  uint32_t trace_seen;    /* the generation of the matches copied */
};

uint64_t l4_dp_now_seconds(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
  return (uint64_t)ts.tv_sec;
}

/* The trace records' clock (wall time, for people and pcap files). */
static uint64_t realtime_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

uint32_t l4_dp_now_ms(void) { return (uint32_t)(now_ns() / 1000000u); }

/* Writes the run the coalescer holds, if any. */
static void flush(struct l4_queue *q) {
  uint32_t segs, n = l4_co_finish(&q->co, &segs);
  if (!n) return;
  if (write(q->fd, q->co.buf, n) != (ssize_t)n) {
    l4_ctr_drops(&q->ctx)[L4_DROP_TX_ERROR] += segs;
    /* A kernel that announced the USO offloads but refuses the super-packet: stop merging on this queue
     * rather than lose every run. */
    if (segs > 1 && errno == EINVAL) l4_co_destroy(&q->co);
    return;
  }
  if (segs > 1) {
    q->ctx.counters[L4_Q_UDP_SUPER_PACKETS]++;
    q->ctx.counters[L4_Q_UDP_COALESCED] += segs;
  }
}

/* Sends a translated packet: into the coalescer's run if it continues it or may start one, else (after
 * writing the run, which came first) as it is. */
static void transmit(struct l4_queue *q, uint32_t len) {
  if (q->co.buf) {
    if (l4_co_append(&q->co, q->buf, len)) return;
    flush(q);
    if (l4_co_start(&q->co, q->buf, len)) return;
  }
  if (write(q->fd, q->buf, len) != (ssize_t)len) l4_ctr_drops(&q->ctx)[L4_DROP_TX_ERROR]++;
}

/* A sched_yield() that nobody took returns in about a microsecond here; one that took longer than this ran
 * another thread. */
#define L4_SPIN_CEDED_NS 20000u

/* Processes packets until the queue is empty and, with busy polling, stays empty for the spin window.
 * While spinning the worker yields after each empty read, so a thread that is runnable on this CPU (a
 * client, a server, softirq work) runs first, and it stops spinning as soon as one did: spinning takes only
 * CPU nobody else wants. */
static void drain(struct l4_queue *q) {
  struct l4_dp *dp = q->dp;
  uint64_t *ctr = q->ctx.counters;
  uint64_t max_ns = (uint64_t)dp->cfg.busy_poll_us * 1000u;
  while (!atomic_load_explicit(&dp->stopping, memory_order_relaxed)) {
    atomic_store(&q->active_gen, atomic_load(&dp->gen));
    const struct l4_tables *t = atomic_load(&dp->tables);
    uint64_t now = now_ns();
    q->ctx.now = (uint32_t)l4_dp_now_seconds();
    q->ctx.now_ms = (uint32_t)(now / 1000000u);
    ctr[L4_Q_BATCHES]++;
    if (__builtin_expect(l4_dp_trace_changed(&dp->trace, q->trace_seen), 0))
      q->ctx.trace = l4_dp_trace_copy(&dp->trace, q->trace, &q->trace_seen);
    q->ctx.sync = l4_dp_sync_log(&dp->sync, q->index);
    int i, failed = 0;
    for (i = 0; i < L4_BATCH; i++) {
      ssize_t n = read(q->fd, q->buf, L4_BUF_SIZE);
      if (n <= 0) { /* EAGAIN: the queue is empty */
        if (n < 0 && errno != EAGAIN && errno != EINTR) failed = errno;
        break;
      }
      uint32_t len = (uint32_t)n;
      if (!t) continue; /* no table yet: nothing to translate with */
      if (l4_process(&q->ctx, t, q->buf, &len) == L4_VERDICT_TX) transmit(q, len);
    }
    flush(q);
    if (failed) {
      atomic_store(&q->read_errno, failed);
      return;
    }
    if (i > 0 && q->idle_since) {
      /* The queue had been empty since idle_since: that gap sizes the next window (core/busypoll.h). */
      uint64_t gap = now - q->idle_since;
      if (!q->slept) ctr[L4_Q_BUSY_POLL_HITS]++;
      if (dp->cfg.busy_poll_adaptive) q->spin_ns = l4_spin_next_window(q->spin_ns, gap, max_ns);
      q->idle_since = 0;
      q->slept = 0;
    }
    /* Every batch, not only after a sleep: a worker kept busy (a full queue, or spinning through a steady
     * request/response exchange) may not sleep for minutes, and a stale heartbeat would have the watchdog
     * and /v1/status call it stuck. */
    __atomic_store_n(&ctr[L4_Q_HEARTBEAT_MS], now / 1000000u, __ATOMIC_RELAXED);
    if (i == L4_BATCH) continue;
    /* Empty. Busy polling: keep reading until the window since the queue drained is over. An idle worker
     * sleeps: only packets restart the window. Counted, so its CPU shows in the totals. */
    uint64_t empty_at = now_ns();
    if (!q->idle_since) q->idle_since = empty_at;
    if (empty_at - q->idle_since >= q->spin_ns) {
      q->slept = 1;
      return;
    }
    ctr[L4_Q_BUSY_POLLS]++;
    sched_yield();
    if (now_ns() - empty_at > L4_SPIN_CEDED_NS) {
      /* The yield let another thread run: this CPU is wanted. Sleep now rather than spin on: a yielded
       * thread that is still runnable waits behind the others for its turn when a packet comes, while a
       * sleeping one is woken with wake-up preemption. */
      ctr[L4_Q_BUSY_POLL_CEDED]++;
      q->slept = 1;
      return;
    }
  }
}

static void *worker_main(void *arg) {
  struct l4_queue *q = arg;
  struct l4_dp *dp = q->dp;
  struct pollfd pfd[2] = {{.fd = q->fd, .events = POLLIN}, {.fd = dp->stop_fd, .events = POLLIN}};
  while (!atomic_load_explicit(&dp->stopping, memory_order_relaxed) && !atomic_load(&q->read_errno)) {
    atomic_store(&q->active_gen, 0);
    /* The timeout keeps the heartbeat going while idle: drain() stamps it in every batch, empty or not. */
    if (poll(pfd, 2, 250) < 0 && errno != EINTR) break;
    drain(q);
  }
  atomic_store(&q->active_gen, 0);
  return NULL;
}

int l4_dp_create(struct l4_dp *dp, const struct l4_dp_config *cfg, const char **failed_call) {
  memset(dp, 0, sizeof(*dp));
  dp->cfg = *cfg;
  dp->stop_fd = -1;
  int n = cfg->nqueues;
  dp->fds = calloc((size_t)n, sizeof(int));
  dp->queues = calloc((size_t)n, sizeof(struct l4_queue));
  if (!dp->fds || !dp->queues) {
    *failed_call = "calloc";
    free(dp->fds);
    free(dp->queues);
    return -ENOMEM;
  }
  memcpy(dp->ifname, cfg->ifname, sizeof(dp->ifname));
  int r = l4_tun_open(dp->ifname, n, dp->fds, &dp->offloads, failed_call);
  if (r < 0) goto fail_alloc;
  dp->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (dp->stop_fd < 0) {
    r = -errno;
    *failed_call = "eventfd";
    goto fail_fds;
  }
  dp->flow_file.fd = -1;
  if (cfg->flow_file[0]) {
    struct siphash_key k;
    siphash_key_from_bytes(&k, cfg->hash_key);
    r = l4_flow_file_open(&dp->flow_file, cfg->flow_file, cfg->flow_capacity, &k, FLOW_FILE_LOCK_WAIT_MS,
                          (int)cfg->flow_file_shared, &dp->flows, failed_call);
    if (r < 0) goto fail_fds;
  } else if (l4_flow_table_init(&dp->flows, cfg->flow_capacity) < 0) {
    r = -errno;
    *failed_call = "mmap flow table";
    goto fail_fds;
  }
  if (l4_flow_counts_init(&dp->flows, cfg->max_services, cfg->max_backends) < 0) {
    r = -ENOMEM;
    *failed_call = "calloc active-flow counts";
    goto fail_flows;
  }
  /* A table taken over from the previous l4nat holds its flows but not its counts (they are this process's):
   * count them once, before any worker of ours writes. During a live handover the predecessor still forwards
   * for a few tens of milliseconds and keeps its own counts; the flows it opens or closes in that window are
   * missing from ours (docs/dataplane.md, "Active flows"). */
  if (dp->flow_file.adopted) l4_flow_counts_rebuild(&dp->flows);
  if (l4_ratelimit_init(&dp->ratelimit, L4_RATELIMIT_BUCKETS) < 0) {
    r = -ENOMEM;
    *failed_call = "calloc rate-limit buckets";
    goto fail_flows;
  }
  if (l4_probes_init(&dp->probes, cfg->max_backends) < 0) {
    r = -ENOMEM;
    *failed_call = "calloc probe slots";
    l4_ratelimit_destroy(&dp->ratelimit);
    goto fail_flows;
  }
  if (l4_dp_trace_init(&dp->trace, n) < 0) {
    r = -ENOMEM;
    *failed_call = "calloc trace rings";
    l4_ratelimit_destroy(&dp->ratelimit);
    l4_probes_destroy(&dp->probes);
    goto fail_flows;
  }
  if (l4_dp_sync_init(&dp->sync, n) < 0) {
    r = -ENOMEM;
    *failed_call = "calloc sync logs";
    l4_dp_trace_destroy(&dp->trace);
    l4_ratelimit_destroy(&dp->ratelimit);
    l4_probes_destroy(&dp->probes);
    goto fail_flows;
  }
  dp->counter_words = l4_counter_block_words(cfg->max_services, cfg->max_backends);
  dp->counter_bytes = (size_t)(dp->counter_words * (uint64_t)n * sizeof(uint64_t));
  void *c = mmap(NULL, dp->counter_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (c == MAP_FAILED) {
    r = -errno;
    *failed_call = "mmap counters";
    l4_dp_sync_destroy(&dp->sync);
    l4_dp_trace_destroy(&dp->trace);
    l4_ratelimit_destroy(&dp->ratelimit);
    l4_probes_destroy(&dp->probes);
    goto fail_flows;
  }
  dp->counters = c;
  for (int i = 0; i < n; i++) {
    struct l4_queue *q = &dp->queues[i];
    q->dp = dp;
    q->index = i;
    q->fd = dp->fds[i];
    q->spin_ns = cfg->busy_poll_adaptive ? 0 : (uint64_t)cfg->busy_poll_us * 1000u;
    q->ctx.counters = dp->counters + dp->counter_words * (uint64_t)i;
    q->ctx.max_services = cfg->max_services;
    q->ctx.max_backends = cfg->max_backends;
    q->ctx.flows = &dp->flows;
    q->ctx.ratelimit = &dp->ratelimit;
    q->ctx.probes = &dp->probes;
    q->ctx.buf_cap = L4_BUF_SIZE;
    q->trace = &dp->trace.workers[i];
    q->trace->clock_ns = realtime_ns;
  }
  return 0;
fail_flows:
  l4_flow_counts_destroy(&dp->flows);
  l4_flow_table_destroy(&dp->flows);
  l4_flow_file_close(&dp->flow_file, 0);
fail_fds:
  for (int i = 0; i < n; i++) close(dp->fds[i]);
  if (dp->stop_fd >= 0) close(dp->stop_fd);
fail_alloc:
  free(dp->fds);
  free(dp->queues);
  dp->fds = NULL;
  dp->queues = NULL;
  return r;
}

void l4_dp_publish(struct l4_dp *dp, struct l4_tables *t) {
  struct l4_tables *old = atomic_exchange(&dp->tables, t);
  uint64_t g = atomic_fetch_add(&dp->gen, 1) + 1;
  if (!old) return;
  /* Wait (briefly: at most one batch) until no worker can still hold `old`. */
  for (int i = 0; i < dp->cfg.nqueues; i++) {
    struct l4_queue *q = &dp->queues[i];
    for (;;) {
      uint64_t a = atomic_load(&q->active_gen);
      if (!q->started || a == 0 || a >= g) break;
      struct timespec ts = {0, 20000};
      nanosleep(&ts, NULL);
    }
  }
  l4_tables_free(old);
}

int l4_dp_start(struct l4_dp *dp, const char **failed_call) {
  if (dp->running) return 0;
  atomic_store(&dp->stopping, 0);
  for (int i = 0; i < dp->cfg.nqueues; i++) {
    struct l4_queue *q = &dp->queues[i];
    atomic_store(&q->read_errno, 0);
    if (!q->buf) q->buf = malloc(L4_BUF_SIZE);
    bool uso = (dp->offloads & (L4_TUN_F_USO4 | L4_TUN_F_USO6)) == (L4_TUN_F_USO4 | L4_TUN_F_USO6);
    if (q->buf && dp->cfg.udp_coalesce && uso && !q->co.buf && l4_co_init(&q->co) < 0) {
      free(q->buf);
      q->buf = NULL;
    }
    if (!q->buf) {
      *failed_call = "malloc";
      l4_dp_stop(dp);
      return -ENOMEM;
    }
    int r = pthread_create(&q->thread, NULL, worker_main, q);
    if (r != 0) {
      *failed_call = "pthread_create";
      l4_dp_stop(dp);
      return -r;
    }
    q->started = 1;
    /* Named, so that top -H, perf and /proc/PID/task show which thread serves which queue. */
    char name[16];
    snprintf(name, sizeof(name), "l4nat-q%hu", (unsigned short)i);
    pthread_setname_np(q->thread, name);
  }
  dp->running = 1;
  /* Attached only now that a worker polls each queue (a detached queue just polls empty): nothing waits unread. */
  if (dp->detached) {
    int r = l4_dp_set_queues(dp, 1);
    if (r < 0) {
      *failed_call = "ioctl TUNSETQUEUE (attach)";
      l4_dp_stop(dp);
      return r;
    }
  }
  return 0;
}

int l4_dp_set_queues(struct l4_dp *dp, int attach) {
  /* Detached last first: the kernel moves the device's last queue into a detached one's place, so a successor's
   * queues (attached after these) end up in their own order, and each flow stays on the same worker of it. */
  for (int k = 0; k < dp->cfg.nqueues; k++) {
    int i = attach ? k : dp->cfg.nqueues - 1 - k;
    int r = l4_tun_set_queue(dp->fds[i], attach);
    if (r < 0) return r;
  }
  dp->detached = !attach;
  return 0;
}

void l4_dp_stop(struct l4_dp *dp) {
  atomic_store(&dp->stopping, 1);
  uint64_t one = 1;
  if (write(dp->stop_fd, &one, sizeof(one)) < 0) { /* poll also times out within 250 ms */ }
  for (int i = 0; i < dp->cfg.nqueues; i++) {
    struct l4_queue *q = &dp->queues[i];
    if (q->started) pthread_join(q->thread, NULL);
    q->started = 0;
  }
  uint64_t v;
  if (read(dp->stop_fd, &v, sizeof(v)) < 0) { /* nothing pending */ }
  dp->running = 0;
}

int l4_dp_queue_error(const struct l4_dp *dp, int queue) { return atomic_load(&dp->queues[queue].read_errno); }

int l4_dp_set_persist(struct l4_dp *dp, int persist) { return l4_tun_set_persist(dp->fds[0], persist); }

int l4_dp_steer(struct l4_dp *dp, const uint8_t *vips4, uint32_t n4, const uint8_t *vips6, uint32_t n6,
                const char **failed_call) {
  char log[512];
  int r = l4_steering_attach(dp->fds[0], (uint32_t)dp->cfg.nqueues, vips4, n4, vips6, n6, failed_call, log, sizeof(log));
  if (r < 0 && log[0]) fprintf(stderr, "l4nat: steering program rejected by the verifier:\n%s\n", log);
  return r;
}

int l4_dp_unsteer(struct l4_dp *dp) { return l4_steering_detach(dp->fds[0]); }

void l4_dp_destroy(struct l4_dp *dp, int keep_device) {
  if (!dp->queues) return;
  l4_dp_stop(dp);
  if (!keep_device) l4_tun_set_persist(dp->fds[0], 0);
  for (int i = 0; i < dp->cfg.nqueues; i++) {
    close(dp->fds[i]);
    free(dp->queues[i].buf);
    l4_co_destroy(&dp->queues[i].co);
  }
  close(dp->stop_fd);
  l4_tables_free(atomic_exchange(&dp->tables, NULL));
  l4_flow_counts_destroy(&dp->flows);
  l4_flow_table_destroy(&dp->flows);
  l4_flow_file_close(&dp->flow_file, 1); /* the workers have stopped: nothing half-written */
  l4_ratelimit_destroy(&dp->ratelimit);
  l4_probes_destroy(&dp->probes);
  l4_dp_trace_destroy(&dp->trace);
  l4_dp_sync_destroy(&dp->sync);
  free(dp->fds);
  free(dp->queues);
  dp->fds = NULL;
  dp->queues = NULL;
}

void l4_dp_free_counters(uint64_t *counters, size_t bytes) {
  if (counters) munmap(counters, bytes);
}
