/* Watchdog pings from the data plane; see watchdog.h. */
#define _GNU_SOURCE
#include "watchdog.h"

#include <errno.h>
#include <poll.h>
#include <stddef.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

static uint64_t mono_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Every worker reads its queue and woke up within stale_ms (heartbeat_ms is CLOCK_MONOTONIC ms, written by the
 * worker). A worker whose queue failed has ended: no need to wait for its heartbeat to go stale. */
static int workers_fresh(const struct l4_watchdog *w) {
  const struct l4_dp *dp = w->dp;
  if (!dp->running || atomic_load(&dp->stopping)) return 0;
  uint64_t now = mono_ms();
  for (int q = 0; q < dp->cfg.nqueues; q++) {
    if (l4_dp_queue_error(dp, q)) return 0;
    const volatile uint64_t *hb = dp->counters + dp->counter_words * (uint64_t)q + L4_Q_HEARTBEAT_MS;
    uint64_t v = *hb;
    if (v == 0 || (now > v && now - v > w->stale_ms)) return 0;
  }
  return 1;
}

static void *watchdog_main(void *arg) {
  struct l4_watchdog *w = arg;
  static const char msg[] = "WATCHDOG=1";
  struct pollfd p = {.fd = w->stop_fd, .events = POLLIN};
  for (;;) {
    if (workers_fresh(w)) {
      if (sendto(w->fd, msg, sizeof(msg) - 1, MSG_NOSIGNAL, (struct sockaddr *)&w->addr, w->addr_len) < 0)
        atomic_fetch_add(&w->send_errors, 1);
      else
        atomic_fetch_add(&w->pings, 1);
    } else {
      atomic_fetch_add(&w->withheld, 1);
    }
    int r = poll(&p, 1, (int)w->every_ms);
    if (r > 0) break; /* stop requested */
  }
  return NULL;
}

int l4_watchdog_start(struct l4_watchdog *w, struct l4_dp *dp, const char *path, uint32_t every_ms, uint32_t stale_ms,
                      const char **failed_call) {
  if (w->running) l4_watchdog_stop(w);
  size_t n = strlen(path);
  if (n == 0 || n >= sizeof(w->addr.sun_path)) {
    *failed_call = "NOTIFY_SOCKET";
    return -ENAMETOOLONG;
  }
  memset(&w->addr, 0, sizeof(w->addr));
  w->addr.sun_family = AF_UNIX;
  memcpy(w->addr.sun_path, path, n);
  if (path[0] == '@') w->addr.sun_path[0] = 0; /* abstract namespace, as sd_notify does */
  w->addr_len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + (path[0] == '@' ? 0 : 1));
  w->dp = dp;
  w->every_ms = every_ms ? every_ms : 1;
  w->stale_ms = stale_ms;
  atomic_store(&w->pings, 0);
  atomic_store(&w->withheld, 0);
  atomic_store(&w->send_errors, 0);
  w->fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (w->fd < 0) {
    *failed_call = "socket";
    return -errno;
  }
  w->stop_fd = eventfd(0, EFD_CLOEXEC);
  if (w->stop_fd < 0) {
    int e = errno;
    close(w->fd);
    *failed_call = "eventfd";
    return -e;
  }
  int r = pthread_create(&w->thread, NULL, watchdog_main, w);
  if (r != 0) {
    close(w->fd);
    close(w->stop_fd);
    *failed_call = "pthread_create";
    return -r;
  }
  w->running = 1;
  return 0;
}

void l4_watchdog_stop(struct l4_watchdog *w) {
  if (!w->running) return;
  uint64_t one = 1;
  if (write(w->stop_fd, &one, sizeof(one)) < 0) { /* the thread also wakes every every_ms */ }
  pthread_join(w->thread, NULL);
  close(w->fd);
  close(w->stop_fd);
  w->running = 0;
}
