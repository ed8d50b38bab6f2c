// tun-relay: the TUN path with nothing in user space, as a benchmark reference (variant `tun-relay`).
// Layers: bench/lib/variants.ts compiles this file with gcc at bench time, runs it in the lab's lb namespace
// and routes the client's and b1's packets into its device with policy rules; each packet it reads it writes
// back unchanged, and the kernel forwards it on as it would have without the detour.
//
//   tun-relay DEV QUEUES [NICE]
//       Creates TUN device DEV the way native/tun.c opens l4nat's (IFF_TUN | IFF_NO_PI | IFF_VNET_HDR |
//       IFF_MULTI_QUEUE, the same offloads, so the same GSO super-packets), QUEUES queues, one thread per
//       queue in a blocking read()/write() loop: one packet per syscall, no parsing, no flow table, no
//       rewrite. The relay threads run at nice NICE (default 0), as l4nat's workers run at --worker-nice.
//       Prints "ready" on stderr once all queues are open; on SIGTERM/SIGINT prints one JSON line with its
//       counts and exits (the device goes with its last file descriptor).
//
// Why: what is left between l4nat and direct forwarding is either what any TUN forwarder pays (two copies,
// a second pass through the stack, a wake-up per read) or l4nat's own work. This relay pays only the first.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <unistd.h>

#define MAX_QUEUES 16
/* virtio_net_hdr (10 bytes, the TUN default) + the largest GSO super-packet. */
#define BUF_SIZE (10 + 65536)
/* Not in older headers. */
#ifndef TUN_F_USO4
#define TUN_F_USO4 0x20
#define TUN_F_USO6 0x40
#endif

static int relay_nice;

struct queue {
  int fd;
  pthread_t thread;
  uint64_t packets, bytes, read_errors, write_errors;
};

static struct queue queues[MAX_QUEUES];

static void die(const char *what) {
  fprintf(stderr, "tun-relay: %s: %s\n", what, strerror(errno));
  exit(1);
}

static int open_queue(const char *dev) {
  int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
  if (fd < 0) die("open /dev/net/tun");
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  ifr.ifr_flags = IFF_TUN | IFF_NO_PI | IFF_VNET_HDR | IFF_MULTI_QUEUE;
  snprintf(ifr.ifr_name, IFNAMSIZ, "%s", dev);
  if (ioctl(fd, TUNSETIFF, &ifr) < 0) die("ioctl TUNSETIFF");
  unsigned off = TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6 | TUN_F_TSO_ECN | TUN_F_USO4 | TUN_F_USO6;
  if (ioctl(fd, TUNSETOFFLOAD, (unsigned long)off) < 0) {
    off &= ~(unsigned)(TUN_F_USO4 | TUN_F_USO6);
    if (ioctl(fd, TUNSETOFFLOAD, (unsigned long)off) < 0) die("ioctl TUNSETOFFLOAD");
  }
  return fd;
}

static void *relay(void *p) {
  struct queue *q = p;
  unsigned char *buf = malloc(BUF_SIZE);
  if (buf == NULL) die("malloc");
  /* PRIO_PROCESS with 0 is the calling thread on Linux: nice is per thread. */
  if (relay_nice != 0 && setpriority(PRIO_PROCESS, 0, relay_nice) < 0) die("setpriority");
  for (;;) {
    ssize_t n = read(q->fd, buf, BUF_SIZE);
    if (n <= 0) {
      if (n < 0 && errno == EINTR) continue;
      __atomic_add_fetch(&q->read_errors, 1, __ATOMIC_RELAXED);
      continue;
    }
    if (write(q->fd, buf, (size_t)n) != n) __atomic_add_fetch(&q->write_errors, 1, __ATOMIC_RELAXED);
    __atomic_add_fetch(&q->packets, 1, __ATOMIC_RELAXED);
    __atomic_add_fetch(&q->bytes, (uint64_t)n, __ATOMIC_RELAXED);
  }
  return NULL;
}

int main(int argc, char **argv) {
  if (argc != 3 && argc != 4) {
    fprintf(stderr, "usage: tun-relay DEV QUEUES [NICE]\n");
    return 2;
  }
  const char *dev = argv[1];
  if (strlen(dev) == 0 || strlen(dev) >= IFNAMSIZ) {
    fprintf(stderr, "tun-relay: DEV must be 1 to %d characters, got \"%s\"\n", IFNAMSIZ - 1, dev);
    return 2;
  }
  char *end;
  long nq = strtol(argv[2], &end, 10);
  if (*end != '\0' || nq < 1 || nq > MAX_QUEUES) {
    fprintf(stderr, "tun-relay: QUEUES must be an integer from 1 to %d, got \"%s\"\n", MAX_QUEUES, argv[2]);
    return 2;
  }
  if (argc == 4) {
    long nice = strtol(argv[3], &end, 10);
    if (*end != '\0' || nice < -20 || nice > 19) {
      fprintf(stderr, "tun-relay: NICE must be an integer from -20 to 19, got \"%s\"\n", argv[3]);
      return 2;
    }
    relay_nice = (int)nice;
  }
  /* The relay threads never see the stop signals: main waits for them with sigwait(). */
  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGTERM);
  sigaddset(&stop, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop, NULL);
  for (long i = 0; i < nq; i++) queues[i].fd = open_queue(dev);
  for (long i = 0; i < nq; i++) {
    if (pthread_create(&queues[i].thread, NULL, relay, &queues[i]) != 0) die("pthread_create");
  }
  fprintf(stderr, "ready\n");
  int sig;
  sigwait(&stop, &sig);
  uint64_t packets = 0, bytes = 0, rerr = 0, werr = 0;
  for (long i = 0; i < nq; i++) {
    packets += __atomic_load_n(&queues[i].packets, __ATOMIC_RELAXED);
    bytes += __atomic_load_n(&queues[i].bytes, __ATOMIC_RELAXED);
    rerr += __atomic_load_n(&queues[i].read_errors, __ATOMIC_RELAXED);
    werr += __atomic_load_n(&queues[i].write_errors, __ATOMIC_RELAXED);
  }
  printf("{\"packets\":%llu,\"bytes\":%llu,\"read_errors\":%llu,\"write_errors\":%llu}\n", (unsigned long long)packets,
         (unsigned long long)bytes, (unsigned long long)rerr, (unsigned long long)werr);
  fflush(stdout);
  return 0;
}
