/* pktgen: hostile-traffic sender for the reliability tests (issue 7), run inside the lab's client namespace.
 *
 * Every packet leaves through an AF_PACKET socket (SOCK_DGRAM: the kernel only adds the Ethernet header), so
 * the IP header is sent exactly as built: a raw IP socket (IP_HDRINCL) would rewrite the IPv4 total length and
 * header checksum (raw_send_hdrinc() in net/ipv4/raw.c), and those are among the things we want to get wrong.
 *
 *   pktgen send  --dev IF --dst-mac MAC --file F [--repeat N] [--gap-us U]
 *       F holds packets as [u16 big-endian length][u16 big-endian EtherType][IP packet bytes]...; the whole list
 *       is sent N times (default 1) with U microseconds between packets.
 *   pktgen flood --dev IF --dst-mac MAC --dst A.B.C.D --dport P --seconds S
 *                (--src-net A.B.C.D/LEN | --src A.B.C.D) [--rate PPS] [--batch B] [--flags syn|ack]
 *       TCP SYNs (MSS option, valid checksums) from random sources of --src-net (or one --src) and random source
 *       ports, in sendmmsg() batches of B (default 256), at PPS packets/s (default 0 = as fast as it can) for S
 *       seconds (at most 600). --flags ack sends bare ACKs (random acknowledgment number) instead: mid-flow
 *       packets of connections nobody has, which a backend answers with a RST.
 *
 * Both print one JSON line: {"mode":..., "sent":N, "errors":N, "firstError":"...", "elapsedMs":N, "pps":N}.
 * Exit status 0 unless the arguments are bad or the socket cannot be opened (2 and 1). Bounded: `send` by the
 * file size and --repeat (at most 100000), `flood` by --seconds.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define MAX_PKT 9000
#define MAX_BATCH 1024
#define MAX_PKTS_IN_FILE 65536

static void die(int code, const char *what) {
  fprintf(stderr, "pktgen: %s\n", what);
  exit(code);
}

static const char *arg(int argc, char **argv, const char *name) {
  for (int i = 2; i + 1 < argc; i += 2)
    if (strcmp(argv[i], name) == 0) return argv[i + 1];
  return NULL;
}

static long num_arg(int argc, char **argv, const char *name, long dflt, long min, long max) {
  const char *s = arg(argc, argv, name);
  if (!s) return dflt;
  char *end;
  errno = 0;
  long v = strtol(s, &end, 10);
  if (errno || *end || v < min || v > max) {
    fprintf(stderr, "pktgen: %s must be an integer in %ld..%ld, got %s\n", name, min, max, s);
    exit(2);
  }
  return v;
}

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int open_packet_socket(const char *dev, const char *mac, struct sockaddr_ll *ll) {
  int fd = socket(AF_PACKET, SOCK_DGRAM, 0); /* protocol 0: send only, never receive */
  if (fd < 0) die(1, "socket(AF_PACKET) failed (needs CAP_NET_RAW)");
  int one = 1;
  /* Straight to the driver (veth has no qdisc anyway); ENOBUFS is counted, not fatal. */
  (void)setsockopt(fd, SOL_PACKET, PACKET_QDISC_BYPASS, &one, sizeof(one));
  int sndbuf = 4 << 20;
  (void)setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &sndbuf, sizeof(sndbuf));
  memset(ll, 0, sizeof(*ll));
  ll->sll_family = AF_PACKET;
  ll->sll_ifindex = (int)if_nametoindex(dev);
  if (ll->sll_ifindex == 0) die(2, "--dev: no such interface");
  ll->sll_halen = 6;
  unsigned m[6];
  if (sscanf(mac, "%x:%x:%x:%x:%x:%x", &m[0], &m[1], &m[2], &m[3], &m[4], &m[5]) != 6) die(2, "--dst-mac must look like 02:00:00:00:00:01");
  for (int i = 0; i < 6; i++) ll->sll_addr[i] = (unsigned char)m[i];
  return fd;
}

static void report(const char *mode, uint64_t sent, uint64_t errors, int first_errno, uint64_t t0) {
  double ms = (double)(now_ns() - t0) / 1e6;
  printf("{\"mode\":\"%s\",\"sent\":%llu,\"errors\":%llu,\"firstError\":\"%s\",\"elapsedMs\":%.1f,\"pps\":%.0f}\n", mode,
         (unsigned long long)sent, (unsigned long long)errors, first_errno ? strerror(first_errno) : "", ms,
         ms > 0 ? (double)sent * 1000.0 / ms : 0.0);
  fflush(stdout);
}

/* ---- send: a list of prepared packets ---- */

static int cmd_send(int argc, char **argv) {
  const char *dev = arg(argc, argv, "--dev"), *mac = arg(argc, argv, "--dst-mac"), *file = arg(argc, argv, "--file");
  if (!dev || !mac || !file) die(2, "send needs --dev, --dst-mac and --file");
  long repeat = num_arg(argc, argv, "--repeat", 1, 1, 100000);
  long gap_us = num_arg(argc, argv, "--gap-us", 0, 0, 1000000);
  FILE *f = fopen(file, "rb");
  if (!f) die(2, "--file cannot be opened");
  static uint8_t *pkts[MAX_PKTS_IN_FILE];
  static uint16_t lens[MAX_PKTS_IN_FILE], types[MAX_PKTS_IN_FILE];
  int n = 0;
  for (;;) {
    uint8_t hdr[4];
    size_t got = fread(hdr, 1, 4, f);
    if (got == 0) break;
    if (got != 4 || n == MAX_PKTS_IN_FILE) die(2, "--file: bad record");
    uint16_t len = (uint16_t)(hdr[0] << 8 | hdr[1]);
    types[n] = (uint16_t)(hdr[2] << 8 | hdr[3]);
    if (len == 0 || len > MAX_PKT) die(2, "--file: bad record length");
    pkts[n] = malloc(len);
    if (!pkts[n] || fread(pkts[n], 1, len, f) != len) die(2, "--file: short record");
    lens[n++] = len;
  }
  fclose(f);
  struct sockaddr_ll ll;
  int fd = open_packet_socket(dev, mac, &ll);
  uint64_t sent = 0, errors = 0, t0 = now_ns();
  int first = 0;
  for (long r = 0; r < repeat; r++) {
    for (int i = 0; i < n; i++) {
      ll.sll_protocol = htons(types[i]);
      if (sendto(fd, pkts[i], lens[i], 0, (struct sockaddr *)&ll, sizeof(ll)) == (ssize_t)lens[i]) {
        sent++;
      } else {
        errors++;
        if (!first) first = errno;
      }
      if (gap_us) usleep((useconds_t)gap_us);
    }
  }
  report("send", sent, errors, first, t0);
  return 0;
}

/* ---- flood: spoofed SYNs ---- */

static uint32_t csum_add(uint32_t sum, const uint8_t *p, size_t n) {
  for (size_t i = 0; i + 1 < n; i += 2) sum += (uint32_t)(p[i] << 8 | p[i + 1]);
  if (n & 1) sum += (uint32_t)p[n - 1] << 8;
  return sum;
}

static uint16_t csum_fold(uint32_t sum) {
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return (uint16_t)~sum;
}

static uint64_t rng_state;
static inline uint64_t rng(void) { /* xorshift64* */
  rng_state ^= rng_state >> 12;
  rng_state ^= rng_state << 25;
  rng_state ^= rng_state >> 27;
  return rng_state * 2685821657736338717ull;
}

#define SYN_LEN 44 /* IPv4 20 + TCP 20 + MSS option 4 */

static void build_syn(uint8_t *p, uint32_t saddr, uint32_t daddr, uint16_t sport, uint16_t dport, uint32_t seq, int ack) {
  memset(p, 0, SYN_LEN);
  p[0] = 0x45;
  p[2] = 0;
  p[3] = SYN_LEN;
  uint16_t id = (uint16_t)rng();
  p[4] = (uint8_t)(id >> 8);
  p[5] = (uint8_t)id;
  p[6] = 0x40; /* DF */
  p[8] = 64;
  p[9] = 6;
  memcpy(p + 12, &saddr, 4);
  memcpy(p + 16, &daddr, 4);
  uint16_t ipck = csum_fold(csum_add(0, p, 20));
  p[10] = (uint8_t)(ipck >> 8);
  p[11] = (uint8_t)ipck;
  uint8_t *t = p + 20;
  t[0] = (uint8_t)(sport >> 8);
  t[1] = (uint8_t)sport;
  t[2] = (uint8_t)(dport >> 8);
  t[3] = (uint8_t)dport;
  t[4] = (uint8_t)(seq >> 24);
  t[5] = (uint8_t)(seq >> 16);
  t[6] = (uint8_t)(seq >> 8);
  t[7] = (uint8_t)seq;
  if (ack) {
    uint32_t a = (uint32_t)rng();
    t[8] = (uint8_t)(a >> 24);
    t[9] = (uint8_t)(a >> 16);
    t[10] = (uint8_t)(a >> 8);
    t[11] = (uint8_t)a;
  }
  t[12] = 6 << 4;            /* data offset 24 bytes */
  t[13] = ack ? 0x10 : 0x02; /* ACK or SYN */
  t[14] = 0xfa;   /* window 64240 */
  t[15] = 0xf0;
  t[20] = 2; /* MSS 1460 */
  t[21] = 4;
  t[22] = 0x05;
  t[23] = 0xb4;
  uint8_t pseudo[12];
  memcpy(pseudo, &saddr, 4);
  memcpy(pseudo + 4, &daddr, 4);
  pseudo[8] = 0;
  pseudo[9] = 6;
  pseudo[10] = 0;
  pseudo[11] = 24;
  uint16_t tck = csum_fold(csum_add(csum_add(0, pseudo, 12), t, 24));
  t[16] = (uint8_t)(tck >> 8);
  t[17] = (uint8_t)tck;
}

static int cmd_flood(int argc, char **argv) {
  const char *dev = arg(argc, argv, "--dev"), *mac = arg(argc, argv, "--dst-mac"), *dst = arg(argc, argv, "--dst");
  const char *src_net = arg(argc, argv, "--src-net"), *src = arg(argc, argv, "--src");
  if (!dev || !mac || !dst || (!src_net == !src)) die(2, "flood needs --dev, --dst-mac, --dst and one of --src-net, --src");
  long dport = num_arg(argc, argv, "--dport", 80, 1, 65535);
  long seconds = num_arg(argc, argv, "--seconds", 1, 1, 600);
  long rate = num_arg(argc, argv, "--rate", 0, 0, 100000000);
  long batch = num_arg(argc, argv, "--batch", 256, 1, MAX_BATCH);
  const char *flags = arg(argc, argv, "--flags");
  if (flags && strcmp(flags, "syn") != 0 && strcmp(flags, "ack") != 0) die(2, "--flags must be syn or ack");
  int ack = flags && strcmp(flags, "ack") == 0;
  struct in_addr d, s;
  if (inet_pton(AF_INET, dst, &d) != 1) die(2, "--dst must be an IPv4 address");
  uint32_t base, mask;
  if (src) {
    if (inet_pton(AF_INET, src, &s) != 1) die(2, "--src must be an IPv4 address");
    base = ntohl(s.s_addr);
    mask = 0;
  } else {
    char buf[64];
    snprintf(buf, sizeof(buf), "%s", src_net);
    char *slash = strchr(buf, '/');
    if (!slash) die(2, "--src-net must be A.B.C.D/LEN");
    *slash = 0;
    int len = atoi(slash + 1);
    if (inet_pton(AF_INET, buf, &s) != 1 || len < 8 || len > 32) die(2, "--src-net must be A.B.C.D/LEN with LEN 8..32");
    mask = len == 32 ? 0 : (0xffffffffu >> len);
    base = ntohl(s.s_addr) & ~mask;
  }
  struct sockaddr_ll ll;
  int fd = open_packet_socket(dev, mac, &ll);
  ll.sll_protocol = htons(ETH_P_IP);
  rng_state = now_ns() ^ ((uint64_t)getpid() << 32) ^ 0x9e3779b97f4a7c15ull;
  static uint8_t bufs[MAX_BATCH][SYN_LEN];
  static struct iovec iov[MAX_BATCH];
  static struct mmsghdr msgs[MAX_BATCH];
  for (long i = 0; i < batch; i++) {
    iov[i].iov_base = bufs[i];
    iov[i].iov_len = SYN_LEN;
    msgs[i].msg_hdr.msg_name = &ll;
    msgs[i].msg_hdr.msg_namelen = sizeof(ll);
    msgs[i].msg_hdr.msg_iov = &iov[i];
    msgs[i].msg_hdr.msg_iovlen = 1;
  }
  uint64_t sent = 0, errors = 0, t0 = now_ns(), end = t0 + (uint64_t)seconds * 1000000000ull;
  int first = 0;
  for (;;) {
    uint64_t t = now_ns();
    if (t >= end) break;
    long want = batch;
    if (rate > 0) {
      /* how many should have gone by now */
      uint64_t due = (uint64_t)((double)(t - t0) * (double)rate / 1e9);
      if (due <= sent) {
        struct timespec ts = {0, 200000}; /* 0.2 ms */
        nanosleep(&ts, NULL);
        continue;
      }
      if ((uint64_t)want > due - sent) want = (long)(due - sent);
    }
    for (long i = 0; i < want; i++) {
      uint32_t sa = htonl(base | ((uint32_t)rng() & mask));
      uint16_t sport = (uint16_t)(1024 + rng() % 64000);
      build_syn(bufs[i], sa, d.s_addr, sport, (uint16_t)dport, (uint32_t)rng(), ack);
    }
    int r = sendmmsg(fd, msgs, (unsigned)want, 0);
    if (r < 0) {
      errors += (uint64_t)want;
      if (!first) first = errno;
      if (errno == ENOBUFS) sched_yield();
      continue;
    }
    sent += (uint64_t)r;
    if (r < want) {
      errors += (uint64_t)(want - r);
      if (!first) first = EAGAIN;
    }
  }
  report("flood", sent, errors, first, t0);
  return 0;
}

int main(int argc, char **argv) {
  if (argc < 2) die(2, "usage: pktgen send|flood --dev IF --dst-mac MAC ... (see the comment at the top of pktgen.c)");
  setvbuf(stdout, NULL, _IOLBF, 0);
  if (strcmp(argv[1], "send") == 0) return cmd_send(argc, argv);
  if (strcmp(argv[1], "flood") == 0) return cmd_flood(argc, argv);
  die(2, "unknown mode (send or flood)");
  return 2;
}
