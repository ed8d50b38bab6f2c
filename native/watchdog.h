/* systemd's watchdog fed from the data plane itself: a thread that sends WATCHDOG=1 to $NOTIFY_SOCKET every
 * `every_ms` while every worker's heartbeat is younger than `stale_ms`, and withholds it otherwise. It lives
 * here, not in JavaScript, so that a busy or blocked JS event loop (a long admin request, a GC pause) neither
 * stops the pings while packets flow, nor can a wedged worker be hidden by a healthy JS loop. */
#ifndef L4NAT_WATCHDOG_H
#define L4NAT_WATCHDOG_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "worker.h"

struct l4_watchdog {
  struct l4_dp *dp;
  int fd;      /* AF_UNIX datagram socket */
  int stop_fd; /* eventfd */
  struct sockaddr_un addr;
  socklen_t addr_len;
  uint32_t every_ms, stale_ms;
  pthread_t thread;
  int running;
  _Atomic uint64_t pings, withheld, send_errors;
};

/* Starts the thread. `path` is NOTIFY_SOCKET: a filesystem path, or "@name" for an abstract socket.
 * Returns 0 or -errno with *failed_call set. */
int l4_watchdog_start(struct l4_watchdog *w, struct l4_dp *dp, const char *path, uint32_t every_ms, uint32_t stale_ms,
                      const char **failed_call);
/* Stops and joins the thread; idempotent. Must run before the data plane's counters go away. */
void l4_watchdog_stop(struct l4_watchdog *w);

#endif
