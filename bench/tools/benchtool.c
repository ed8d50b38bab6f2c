// benchtool: the benchmark's own traffic programs, run inside the lab's network namespaces.
// Layers: bench/lib/tools.ts compiles this file with gcc at bench time and runs its modes with
// `ip netns exec`; each mode prints one JSON line on stdout (and "ready" on stderr once it listens).
//
//   benchtool tcp-server PORT [THREADS]
//       Echo server (epoll, one SO_REUSEPORT listener per thread). Every byte it reads it writes back;
//       it closes a connection when the client has closed it. Runs until killed.
//   benchtool rr-client HOST PORT SECONDS
//       One TCP connection, 1-byte request / 1-byte response in a loop (netperf TCP_RR). Prints the
//       transaction count and the latency percentiles in microseconds.
//   benchtool crr-client HOST PORT SECONDS THREADS
//       Each thread: connect, 1-byte request, 1-byte response, close (netperf TCP_CRR). The client closes
//       first, so TIME-WAIT stays with the client (reused after 1 s with net.ipv4.tcp_tw_reuse=1), never on
//       the backends: a backend's TIME-WAIT left by one variant (client -> backend address) would meet the
//       next variant's SYN with the same 4-tuple (client -> VIP, translated) but with timestamps from
//       another per-destination offset, and PAWS would cost that SYN a 1-second retransmit.
//       Prints connections completed and failed.
//   benchtool udp-send HOST PORT SECONDS SIZE RATE RUNID [FLOWS [NEWFLOW_EVERY]]
//       UDP datagrams of SIZE payload bytes carrying {magic, RUNID, sequence number} and then the byte
//       pattern (sequence number + offset) mod 256, RATE packets/s
//       (0 = as fast as possible, sendmmsg batches of 64), over FLOWS sockets (source ports); every
//       NEWFLOW_EVERY packets one socket is replaced by a new one (a new flow). Prints packets sent.
//   benchtool udp-sink PORT MAXSECONDS IDLE_MS RUNID [MAXSEQ]
//       Counts datagrams of run RUNID (recvmmsg); with MAXSEQ, also distinct sequence numbers and
//       duplicates. Checks every datagram: its pattern (corrupt), its order (reordered: a lower sequence
//       number than one before it on the same source port), its size (min/max). Exits IDLE_MS after the
//       last datagram, after MAXSECONDS, or on SIGTERM/SIGINT, and prints its counts in every case.
//
// Timing uses CLOCK_MONOTONIC, shared by all namespaces of the machine, so times printed by a sink and
// by a sender can be compared.
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define UDP_MAGIC 0x4c344e42u /* "L4NB" */
#define BATCH 64
#define MAX_UDP_SIZE 1472

struct udp_hdr {
  uint32_t magic;
  uint32_t runid;
  uint64_t seq;
};

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void die(const char *what) {
  fprintf(stderr, "benchtool: %s: %s\n", what, strerror(errno));
  exit(1);
}

static void usage(void) {
  fprintf(stderr,
          "usage: benchtool tcp-server PORT [THREADS]\n"
          "       benchtool rr-client HOST PORT SECONDS\n"
          "       benchtool crr-client HOST PORT SECONDS THREADS\n"
          "       benchtool udp-send HOST PORT SECONDS SIZE RATE RUNID [FLOWS [NEWFLOW_EVERY]]\n"
          "       benchtool udp-sink PORT MAXSECONDS IDLE_MS RUNID [MAXSEQ]\n");
  exit(2);
}

static long parse_long(const char *s, const char *name, long min, long max) {
  char *end;
  errno = 0;
  long v = strtol(s, &end, 10);
  if (errno != 0 || *end != '\0' || v < min || v > max) {
    fprintf(stderr, "benchtool: %s must be an integer from %ld to %ld, got \"%s\"\n", name, min, max, s);
    exit(2);
  }
  return v;
}

static double parse_seconds(const char *s) {
  char *end;
  double v = strtod(s, &end);
  if (*end != '\0' || !(v > 0 && v <= 3600)) {
    fprintf(stderr, "benchtool: SECONDS must be a number in (0, 3600], got \"%s\"\n", s);
    exit(2);
  }
  return v;
}

/* IPv4 or IPv6 address + port into a sockaddr_storage; returns its length. */
static socklen_t make_addr(const char *host, int port, struct sockaddr_storage *ss) {
  memset(ss, 0, sizeof *ss);
  struct sockaddr_in *a4 = (struct sockaddr_in *)ss;
  struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)ss;
  if (inet_pton(AF_INET, host, &a4->sin_addr) == 1) {
    a4->sin_family = AF_INET;
    a4->sin_port = htons((uint16_t)port);
    return sizeof *a4;
  }
  if (inet_pton(AF_INET6, host, &a6->sin6_addr) == 1) {
    a6->sin6_family = AF_INET6;
    a6->sin6_port = htons((uint16_t)port);
    return sizeof *a6;
  }
  fprintf(stderr, "benchtool: HOST must be an IPv4 or IPv6 address, got \"%s\"\n", host);
  exit(2);
}

static void set_timeouts(int fd, int ms) {
  struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv); /* also bounds connect() */
}

/* ------------------------------------------------------------------------------------------------ */
/* tcp-server                                                                                        */

struct server_arg {
  int port;
};

static void *server_thread(void *p) {
  const struct server_arg *arg = p;
  int one = 1;
  int lfd = socket(AF_INET6, SOCK_STREAM | SOCK_NONBLOCK, 0);
  if (lfd < 0) die("socket");
  int zero = 0;
  setsockopt(lfd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero); /* IPv4 too */
  setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  setsockopt(lfd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
  struct sockaddr_in6 a = {.sin6_family = AF_INET6, .sin6_port = htons((uint16_t)arg->port), .sin6_addr = in6addr_any};
  if (bind(lfd, (struct sockaddr *)&a, sizeof a) < 0) die("bind");
  if (listen(lfd, 4096) < 0) die("listen");
  int ep = epoll_create1(0);
  if (ep < 0) die("epoll_create1");
  struct epoll_event ev = {.events = EPOLLIN, .data.fd = lfd};
  if (epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev) < 0) die("epoll_ctl");
  struct epoll_event evs[256];
  char buf[4096];
  for (;;) {
    int n = epoll_wait(ep, evs, 256, -1);
    if (n < 0) {
      if (errno == EINTR) continue;
      die("epoll_wait");
    }
    for (int i = 0; i < n; i++) {
      int fd = evs[i].data.fd;
      if (fd == lfd) {
        for (;;) {
          int c = accept4(lfd, NULL, NULL, SOCK_NONBLOCK);
          if (c < 0) break; /* EAGAIN, or an aborted connection: both fine */
          setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
          struct epoll_event cev = {.events = EPOLLIN, .data.fd = c};
          if (epoll_ctl(ep, EPOLL_CTL_ADD, c, &cev) < 0) close(c);
        }
        continue;
      }
      ssize_t r = read(fd, buf, sizeof buf);
      if (r < 0 && (errno == EAGAIN || errno == EINTR)) continue;
      if (r <= 0) {
        close(fd); /* close() also removes it from the epoll set */
        continue;
      }
      ssize_t w = write(fd, buf, (size_t)r);
      (void)w; /* 1-byte answers always fit in the send buffer; a failure shows up as a client error */
    }
  }
  return NULL;
}

static int cmd_tcp_server(int argc, char **argv) {
  if (argc < 1 || argc > 2) usage();
  static struct server_arg arg;
  arg.port = (int)parse_long(argv[0], "PORT", 1, 65535);
  int threads = argc > 1 ? (int)parse_long(argv[1], "THREADS", 1, 64) : 2;
  pthread_t t[64];
  for (int i = 0; i < threads; i++) {
    if (pthread_create(&t[i], NULL, server_thread, &arg) != 0) die("pthread_create");
  }
  usleep(100 * 1000); /* let every thread bind and listen */
  fprintf(stderr, "ready\n");
  for (int i = 0; i < threads; i++) pthread_join(t[i], NULL);
  return 0;
}

/* ------------------------------------------------------------------------------------------------ */
/* rr-client                                                                                         */

static int cmp_u32(const void *a, const void *b) {
  uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
  return x < y ? -1 : x > y;
}

static int cmd_rr_client(int argc, char **argv) {
  if (argc != 3) usage();
  struct sockaddr_storage ss;
  socklen_t sl = make_addr(argv[0], (int)parse_long(argv[1], "PORT", 1, 65535), &ss);
  double seconds = parse_seconds(argv[2]);
  int fd = socket(ss.ss_family, SOCK_STREAM, 0);
  if (fd < 0) die("socket");
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  set_timeouts(fd, 2000);
  if (connect(fd, (struct sockaddr *)&ss, sl) < 0) die("connect");
  size_t cap = 1 << 20, count = 0;
  uint32_t *lat = malloc(cap * sizeof *lat);
  if (lat == NULL) die("malloc");
  const unsigned warmup = 200; /* first transactions: caches, flow-table entry creation */
  unsigned long errors = 0;
  uint64_t start = now_ns(), deadline = start + (uint64_t)(seconds * 1e9), t1 = start;
  for (unsigned long i = 0; t1 < deadline; i++) {
    char c = 'r';
    uint64_t t0 = now_ns();
    if (write(fd, &c, 1) != 1 || read(fd, &c, 1) != 1) {
      errors++;
      break;
    }
    t1 = now_ns();
    if (i < warmup) continue;
    if (count == cap) {
      if (cap >= (1u << 28)) continue; /* keep memory bounded; percentiles stay meaningful */
      cap *= 2;
      uint32_t *n = realloc(lat, cap * sizeof *lat);
      if (n == NULL) die("realloc");
      lat = n;
    }
    uint64_t d = t1 - t0;
    lat[count++] = d > UINT32_MAX ? UINT32_MAX : (uint32_t)d;
  }
  double elapsed = (double)(t1 - start) / 1e9;
  close(fd);
  if (count == 0) {
    printf("{\"transactions\":0,\"seconds\":%.6f,\"errors\":%lu}\n", elapsed, errors);
    return 1;
  }
  qsort(lat, count, sizeof *lat, cmp_u32);
  double sum = 0;
  for (size_t i = 0; i < count; i++) sum += lat[i];
#define PCT(p) (lat[(size_t)((double)(count - 1) * (p))] / 1000.0)
  printf("{\"transactions\":%zu,\"seconds\":%.6f,\"tps\":%.1f,\"errors\":%lu,\"min_us\":%.2f,\"p50_us\":%.2f,"
         "\"p90_us\":%.2f,\"p99_us\":%.2f,\"p999_us\":%.2f,\"max_us\":%.2f,\"mean_us\":%.2f}\n",
         count, elapsed, (double)count / elapsed, errors, lat[0] / 1000.0, PCT(0.5), PCT(0.9), PCT(0.99), PCT(0.999),
         lat[count - 1] / 1000.0, sum / (double)count / 1000.0);
  free(lat);
  return errors == 0 ? 0 : 1;
}

/* ------------------------------------------------------------------------------------------------ */
/* crr-client                                                                                        */

struct crr_arg {
  struct sockaddr_storage ss;
  socklen_t sl;
  uint64_t deadline;
  unsigned long conns, errors;
};

static void *crr_thread(void *p) {
  struct crr_arg *a = p;
  while (now_ns() < a->deadline) {
    int fd = socket(a->ss.ss_family, SOCK_STREAM, 0);
    if (fd < 0) {
      a->errors++;
      continue;
    }
    set_timeouts(fd, 2000);
    char c = 'c', buf[16];
    int ok = connect(fd, (struct sockaddr *)&a->ss, a->sl) == 0 && write(fd, &c, 1) == 1 && read(fd, buf, 1) == 1 &&
             buf[0] == 'c';
    close(fd);
    if (ok)
      a->conns++;
    else
      a->errors++;
  }
  return NULL;
}

static int cmd_crr_client(int argc, char **argv) {
  if (argc != 4) usage();
  static struct crr_arg args[64];
  struct sockaddr_storage ss;
  socklen_t sl = make_addr(argv[0], (int)parse_long(argv[1], "PORT", 1, 65535), &ss);
  double seconds = parse_seconds(argv[2]);
  int threads = (int)parse_long(argv[3], "THREADS", 1, 64);
  uint64_t start = now_ns(), deadline = start + (uint64_t)(seconds * 1e9);
  pthread_t t[64];
  for (int i = 0; i < threads; i++) {
    args[i].ss = ss;
    args[i].sl = sl;
    args[i].deadline = deadline;
    if (pthread_create(&t[i], NULL, crr_thread, &args[i]) != 0) die("pthread_create");
  }
  unsigned long conns = 0, errors = 0;
  for (int i = 0; i < threads; i++) {
    pthread_join(t[i], NULL);
    conns += args[i].conns;
    errors += args[i].errors;
  }
  double elapsed = (double)(now_ns() - start) / 1e9;
  printf("{\"connections\":%lu,\"errors\":%lu,\"threads\":%d,\"seconds\":%.6f,\"rate\":%.1f}\n", conns, errors, threads,
         elapsed, (double)conns / elapsed);
  return conns > 0 ? 0 : 1;
}

/* ------------------------------------------------------------------------------------------------ */
/* udp-send                                                                                          */

static int udp_socket(const struct sockaddr_storage *ss, socklen_t sl) {
  int fd = socket(ss->ss_family, SOCK_DGRAM, 0);
  if (fd < 0) die("socket");
  if (connect(fd, (const struct sockaddr *)ss, sl) < 0) die("connect");
  return fd;
}

static int cmd_udp_send(int argc, char **argv) {
  if (argc < 6 || argc > 8) usage();
  struct sockaddr_storage ss;
  socklen_t sl = make_addr(argv[0], (int)parse_long(argv[1], "PORT", 1, 65535), &ss);
  double seconds = parse_seconds(argv[2]);
  size_t size = (size_t)parse_long(argv[3], "SIZE", (long)sizeof(struct udp_hdr), MAX_UDP_SIZE);
  long rate = parse_long(argv[4], "RATE", 0, 100000000);
  uint32_t runid = (uint32_t)parse_long(argv[5], "RUNID", 0, UINT32_MAX);
  int flows = argc > 6 ? (int)parse_long(argv[6], "FLOWS", 1, 4096) : 1;
  long newflow_every = argc > 7 ? parse_long(argv[7], "NEWFLOW_EVERY", 0, 1000000000) : 0;

  int *fds = calloc((size_t)flows, sizeof *fds);
  if (fds == NULL) die("calloc");
  for (int i = 0; i < flows; i++) fds[i] = udp_socket(&ss, sl);

  static char bufs[BATCH][MAX_UDP_SIZE];
  struct iovec iov[BATCH];
  struct mmsghdr msgs[BATCH];
  memset(bufs, 0, sizeof bufs);
  memset(msgs, 0, sizeof msgs);
  for (int i = 0; i < BATCH; i++) {
    iov[i].iov_base = bufs[i];
    iov[i].iov_len = size;
    msgs[i].msg_hdr.msg_iov = &iov[i];
    msgs[i].msg_hdr.msg_iovlen = 1;
  }
  uint64_t seq = 0, errors = 0, since_newflow = 0, newflows = 0;
  int cur = 0;
  uint64_t start = now_ns(), deadline = start + (uint64_t)(seconds * 1e9), t = start;
  while ((t = now_ns()) < deadline) {
    size_t n = BATCH;
    if (rate > 0) {
      /* Pace: send what the clock allows, at most a batch; sleep a little when ahead. */
      uint64_t due = (uint64_t)((double)(t - start) * (double)rate / 1e9) + 1;
      if (due <= seq) {
        struct timespec ts = {0, 20000};
        nanosleep(&ts, NULL);
        continue;
      }
      if (due - seq < n) n = (size_t)(due - seq);
      if (n > 8) n = 8; /* small bursts */
    }
    for (size_t i = 0; i < n; i++) {
      struct udp_hdr h = {UDP_MAGIC, runid, seq + i};
      memcpy(bufs[i], &h, sizeof h);
      for (size_t j = sizeof h; j < size; j++) bufs[i][j] = (char)(uint8_t)(h.seq + j);
    }
    size_t done = 0;
    while (done < n) {
      int r = sendmmsg(fds[cur], msgs + done, (unsigned)(n - done), 0);
      if (r < 0) {
        if (errno == EINTR) continue;
        errors++;
        if (errors > 1000000) die("sendmmsg");
        if (now_ns() >= deadline) break;
        continue; /* ENOBUFS and the like: retry the same sequence numbers */
      }
      done += (size_t)r;
    }
    seq += done;
    since_newflow += done;
    cur = (cur + 1) % flows;
    if (newflow_every > 0 && since_newflow >= (uint64_t)newflow_every) {
      /* Replace one socket: its successor gets a new source port, i.e. a new flow. */
      since_newflow = 0;
      close(fds[cur]);
      fds[cur] = udp_socket(&ss, sl);
      newflows++;
    }
  }
  double elapsed = (double)(t - start) / 1e9;
  printf("{\"sent\":%llu,\"errors\":%llu,\"flows\":%d,\"new_flows\":%llu,\"seconds\":%.6f,\"pps\":%.1f,"
         "\"start_ns\":%llu,\"end_ns\":%llu}\n",
         (unsigned long long)seq, (unsigned long long)errors, flows, (unsigned long long)newflows, elapsed,
         (double)seq / elapsed, (unsigned long long)start, (unsigned long long)t);
  return 0;
}

/* ------------------------------------------------------------------------------------------------ */
/* udp-sink                                                                                          */

static volatile sig_atomic_t sink_stop;

static void on_stop_signal(int sig) {
  (void)sig;
  sink_stop = 1;
}

static int cmd_udp_sink(int argc, char **argv) {
  if (argc < 4 || argc > 5) usage();
  int port = (int)parse_long(argv[0], "PORT", 1, 65535);
  double maxseconds = parse_seconds(argv[1]);
  long idle_ms = parse_long(argv[2], "IDLE_MS", 1, 3600000);
  uint32_t runid = (uint32_t)parse_long(argv[3], "RUNID", 0, UINT32_MAX);
  uint64_t maxseq = argc > 4 ? (uint64_t)parse_long(argv[4], "MAXSEQ", 0, 1L << 36) : 0;
  uint8_t *seen = maxseq > 0 ? calloc((size_t)(maxseq / 8 + 1), 1) : NULL;
  if (maxseq > 0 && seen == NULL) die("calloc");

  int fd = socket(AF_INET6, SOCK_DGRAM, 0);
  if (fd < 0) die("socket");
  int zero = 0, one = 1, rcvbuf = 32 << 20;
  setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero);
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof rcvbuf) < 0)
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
  struct sockaddr_in6 a = {.sin6_family = AF_INET6, .sin6_port = htons((uint16_t)port), .sin6_addr = in6addr_any};
  if (bind(fd, (struct sockaddr *)&a, sizeof a) < 0) die("bind");
  struct timeval tv = {0, 50000};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_stop_signal; /* no SA_RESTART: recvmmsg returns EINTR */
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGINT, &sa, NULL);
  fprintf(stderr, "ready\n");

  static char bufs[BATCH][2048];
  static struct sockaddr_in6 from[BATCH];
  struct iovec iov[BATCH];
  struct mmsghdr msgs[BATCH];
  uint64_t received = 0, unique = 0, dups = 0, foreign = 0, out_of_range = 0, first = 0, last = 0;
  uint64_t corrupt = 0, reordered = 0, min_len = UINT64_MAX, max_len = 0;
  static uint64_t next_seq[65536]; /* by source port: the sequence number after the highest seen */
  uint64_t start = now_ns(), deadline = start + (uint64_t)(maxseconds * 1e9);
  for (;;) {
    for (int i = 0; i < BATCH; i++) {
      iov[i].iov_base = bufs[i];
      iov[i].iov_len = sizeof bufs[i];
      memset(&msgs[i].msg_hdr, 0, sizeof msgs[i].msg_hdr);
      msgs[i].msg_hdr.msg_iov = &iov[i];
      msgs[i].msg_hdr.msg_iovlen = 1;
      msgs[i].msg_hdr.msg_name = &from[i];
      msgs[i].msg_hdr.msg_namelen = sizeof from[i];
    }
    int r = recvmmsg(fd, msgs, BATCH, MSG_WAITFORONE, NULL);
    uint64_t t = now_ns();
    if (r > 0) {
      for (int i = 0; i < r; i++) {
        struct udp_hdr h;
        if (msgs[i].msg_len < sizeof h) {
          foreign++;
          continue;
        }
        memcpy(&h, bufs[i], sizeof h);
        if (h.magic != UDP_MAGIC || h.runid != runid) {
          foreign++;
          continue;
        }
        received++;
        uint32_t n = msgs[i].msg_len;
        if (n < min_len) min_len = n;
        if (n > max_len) max_len = n;
        for (uint32_t j = sizeof h; j < n; j++) {
          if ((uint8_t)bufs[i][j] != (uint8_t)(h.seq + j)) {
            corrupt++;
            break;
          }
        }
        uint16_t sport = ntohs(from[i].sin6_port);
        if (h.seq + 1 < next_seq[sport]) reordered++;
        else next_seq[sport] = h.seq + 1;
        if (seen != NULL) {
          if (h.seq >= maxseq) {
            out_of_range++;
          } else if (seen[h.seq >> 3] & (1u << (h.seq & 7))) {
            dups++;
          } else {
            seen[h.seq >> 3] |= (uint8_t)(1u << (h.seq & 7));
            unique++;
          }
        }
        if (first == 0) first = t;
        last = t;
      }
    } else if (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
      die("recvmmsg");
    }
    if (t >= deadline || sink_stop) break;
    if (received > 0 && t - last >= (uint64_t)idle_ms * 1000000ull) break;
  }
  double span = received > 1 ? (double)(last - first) / 1e9 : 0;
  printf("{\"received\":%llu,\"unique\":%llu,\"duplicates\":%llu,\"out_of_range\":%llu,\"foreign\":%llu,"
         "\"corrupt\":%llu,\"reordered\":%llu,\"min_len\":%llu,\"max_len\":%llu,"
         "\"first_ns\":%llu,\"last_ns\":%llu,\"span_seconds\":%.6f}\n",
         (unsigned long long)received, (unsigned long long)unique, (unsigned long long)dups,
         (unsigned long long)out_of_range, (unsigned long long)foreign, (unsigned long long)corrupt,
         (unsigned long long)reordered, (unsigned long long)(received ? min_len : 0), (unsigned long long)max_len,
         (unsigned long long)first, (unsigned long long)last, span);
  fflush(stdout);
  return 0;
}

int main(int argc, char **argv) {
  if (argc < 2) usage();
  /* A peer that resets a connection must cost a failed write, not the server. */
  signal(SIGPIPE, SIG_IGN);
  const char *mode = argv[1];
  argc -= 2;
  argv += 2;
  if (strcmp(mode, "tcp-server") == 0) return cmd_tcp_server(argc, argv);
  if (strcmp(mode, "rr-client") == 0) return cmd_rr_client(argc, argv);
  if (strcmp(mode, "crr-client") == 0) return cmd_crr_client(argc, argv);
  if (strcmp(mode, "udp-send") == 0) return cmd_udp_send(argc, argv);
  if (strcmp(mode, "udp-sink") == 0) return cmd_udp_sink(argc, argv);
  usage();
  return 2;
}
