/*
 * tcpkit: the socket options Node does not expose, for the TCP conformance suite (src/conformance/).
 * Compiled at test time with `gcc -O2 -Wall -Wextra -Werror` (tools.ts) and run inside lab namespaces.
 *
 *   tcpkit tfo-server --name NAME --port PORT [--qlen N]
 *       Dual-stack listener with TCP_FASTOPEN (the backend side of the Fast Open check). For every connection:
 *       read one line (5 s at most), answer "NAME PEER_ADDR PEER_PORT\n", close. Prints one JSON line per
 *       connection: {"event":"conn","peer":..,"peerPort":..,"req":..,"synData":bool} where synData is the
 *       kernel's own verdict (TCP_INFO tcpi_options & TCPI_OPT_SYN_DATA: the request bytes came in the SYN).
 *
 *   tcpkit client --host ADDR --port PORT [--bind-port N] [--mss N] [--keepalive IDLE,INTVL,CNT] [--tfo]
 *                 [--send LINE]... [--idle-ms N] [--close fin|rst] [--timeout-ms N]
 *       Sets the options before connecting (TCP_MAXSEG, SO_KEEPALIVE + TCP_KEEPIDLE/KEEPINTVL/KEEPCNT,
 *       SO_REUSEADDR + bind for a chosen source port), connects (with --tfo: sendto(MSG_FASTOPEN) carrying the
 *       first line, so it rides in the SYN when a cookie is cached), then for each --send: write the line and
 *       read one reply line; waits --idle-ms before every line after the first. --close rst closes with
 *       SO_LINGER {1, 0} (a reset). Prints one JSON line:
 *       {"ok":bool,"localAddr":..,"localPort":..,"replies":[..],"synDataAcked":bool,"error":..}.
 *
 * Exit status: 0 when the JSON line says ok, 1 when it does not, 2 on bad arguments.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#ifndef MSG_FASTOPEN
#define MSG_FASTOPEN 0x20000000
#endif
#ifndef TCPI_OPT_SYN_DATA
#define TCPI_OPT_SYN_DATA 32
#endif

#define MAX_SENDS 8
#define LINE_MAX_BYTES 1024

static void usage(const char *why) {
  fprintf(stderr, "tcpkit: %s\n", why);
  exit(2);
}

static int parse_int(const char *flag, const char *v, long lo, long hi) {
  char *end = NULL;
  errno = 0;
  long n = strtol(v, &end, 10);
  if (errno != 0 || end == v || *end != '\0' || n < lo || n > hi) {
    fprintf(stderr, "tcpkit: %s expects an integer in %ld..%ld, got \"%s\"\n", flag, lo, hi, v);
    exit(2);
  }
  return (int)n;
}

/* Writes s as a JSON string (the lines here are short and printable; anything else is escaped). */
static void json_str(FILE *f, const char *s) {
  fputc('"', f);
  for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
    if (*p == '"' || *p == '\\') fprintf(f, "\\%c", *p);
    else if (*p < 0x20 || *p >= 0x7f) fprintf(f, "\\u%04x", *p);
    else fputc(*p, f);
  }
  fputc('"', f);
}

static long long now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Reads up to and including '\n' into buf (NUL-terminated, newline stripped). Returns length, -1 on error
 * (errno set; ETIMEDOUT on deadline), -2 on EOF before a newline. */
static int read_line(int fd, char *buf, size_t cap, long long deadline) {
  size_t n = 0;
  while (n + 1 < cap) {
    long long left = deadline - now_ms();
    if (left <= 0) {
      errno = ETIMEDOUT;
      return -1;
    }
    struct pollfd pfd = {.fd = fd, .events = POLLIN};
    int pr = poll(&pfd, 1, (int)left);
    if (pr < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    if (pr == 0) continue;
    ssize_t r = read(fd, buf + n, 1);
    if (r < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    if (r == 0) {
      buf[n] = '\0';
      return -2;
    }
    if (buf[n] == '\n') {
      buf[n] = '\0';
      if (n > 0 && buf[n - 1] == '\r') buf[--n] = '\0';
      return (int)n;
    }
    n++;
  }
  errno = EMSGSIZE;
  return -1;
}

static int write_all(int fd, const char *p, size_t len) {
  while (len > 0) {
    ssize_t w = write(fd, p, len);
    if (w < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    p += w;
    len -= (size_t)w;
  }
  return 0;
}

static void addr_text(const struct sockaddr_storage *ss, char *out, size_t cap, int *port) {
  if (ss->ss_family == AF_INET6) {
    const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)ss;
    if (IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr)) {
      inet_ntop(AF_INET, &s6->sin6_addr.s6_addr[12], out, (socklen_t)cap);
    } else {
      inet_ntop(AF_INET6, &s6->sin6_addr, out, (socklen_t)cap);
    }
    *port = ntohs(s6->sin6_port);
  } else {
    const struct sockaddr_in *s4 = (const struct sockaddr_in *)ss;
    inet_ntop(AF_INET, &s4->sin_addr, out, (socklen_t)cap);
    *port = ntohs(s4->sin_port);
  }
}

/* ------------------------------------------------------------------------------------------------------ */

static int tfo_server(int argc, char **argv) {
  const char *name = NULL;
  int port = 0, qlen = 64;
  for (int i = 0; i < argc; i++) {
    if (i + 1 >= argc) usage("every flag needs a value");
    if (!strcmp(argv[i], "--name")) name = argv[++i];
    else if (!strcmp(argv[i], "--port")) port = parse_int("--port", argv[++i], 1, 65535);
    else if (!strcmp(argv[i], "--qlen")) qlen = parse_int("--qlen", argv[++i], 1, 65535);
    else usage("unknown tfo-server flag");
  }
  if (name == NULL || port == 0) usage("tfo-server needs --name and --port");

  int ls = socket(AF_INET6, SOCK_STREAM, 0);
  int one = 1, zero = 0;
  if (ls < 0 || setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0 ||
      setsockopt(ls, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero) < 0) {
    perror("tcpkit: socket");
    return 1;
  }
  struct sockaddr_in6 sa = {.sin6_family = AF_INET6, .sin6_port = htons((uint16_t)port), .sin6_addr = in6addr_any};
  if (bind(ls, (struct sockaddr *)&sa, sizeof sa) < 0) {
    perror("tcpkit: bind");
    return 1;
  }
  /* The server side of Fast Open: without this option (or tcp_fastopen & 0x400) the listener ignores cookies. */
  if (setsockopt(ls, IPPROTO_TCP, TCP_FASTOPEN, &qlen, sizeof qlen) < 0) {
    perror("tcpkit: TCP_FASTOPEN");
    return 1;
  }
  if (listen(ls, 128) < 0) {
    perror("tcpkit: listen");
    return 1;
  }
  printf("{\"ready\":true,\"name\":");
  json_str(stdout, name);
  printf(",\"port\":%d,\"pid\":%d}\n", port, (int)getpid());
  fflush(stdout);

  for (;;) {
    struct sockaddr_storage peer;
    socklen_t plen = sizeof peer;
    int c = accept(ls, (struct sockaddr *)&peer, &plen);
    if (c < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      perror("tcpkit: accept");
      return 1;
    }
    char paddr[INET6_ADDRSTRLEN];
    int pport = 0;
    addr_text(&peer, paddr, sizeof paddr, &pport);
    struct tcp_info ti;
    socklen_t tlen = sizeof ti;
    memset(&ti, 0, sizeof ti);
    getsockopt(c, IPPROTO_TCP, TCP_INFO, &ti, &tlen);
    char line[LINE_MAX_BYTES];
    int n = read_line(c, line, sizeof line, now_ms() + 5000);
    if (n >= 0) {
      char reply[LINE_MAX_BYTES + 128];
      int rl = snprintf(reply, sizeof reply, "%s %s %d\n", name, paddr, pport);
      if (write_all(c, reply, (size_t)rl) < 0) n = -1;
    }
    printf("{\"event\":\"conn\",\"peer\":");
    json_str(stdout, paddr);
    printf(",\"peerPort\":%d,\"req\":", pport);
    json_str(stdout, n >= 0 ? line : "");
    printf(",\"synData\":%s,\"error\":", (ti.tcpi_options & TCPI_OPT_SYN_DATA) ? "true" : "false");
    if (n >= 0) printf("null");
    else json_str(stdout, n == -2 ? "EOF" : strerror(errno));
    printf("}\n");
    fflush(stdout);
    close(c);
  }
}

/* ------------------------------------------------------------------------------------------------------ */

static int client(int argc, char **argv) {
  const char *host = NULL, *sends[MAX_SENDS];
  int nsends = 0, port = 0, bind_port = 0, mss = 0, tfo = 0, idle_ms = 0, timeout_ms = 10000, rst = 0;
  int ka_idle = 0, ka_intvl = 0, ka_cnt = 0;
  for (int i = 0; i < argc; i++) {
    const char *f = argv[i];
    if (!strcmp(f, "--tfo")) {
      tfo = 1;
      continue;
    }
    if (i + 1 >= argc) usage("every flag but --tfo needs a value");
    const char *v = argv[++i];
    if (!strcmp(f, "--host")) host = v;
    else if (!strcmp(f, "--port")) port = parse_int(f, v, 1, 65535);
    else if (!strcmp(f, "--bind-port")) bind_port = parse_int(f, v, 1, 65535);
    else if (!strcmp(f, "--mss")) mss = parse_int(f, v, 88, 65535);
    else if (!strcmp(f, "--idle-ms")) idle_ms = parse_int(f, v, 0, 3600000);
    else if (!strcmp(f, "--timeout-ms")) timeout_ms = parse_int(f, v, 1, 3600000);
    else if (!strcmp(f, "--close")) {
      if (!strcmp(v, "rst")) rst = 1;
      else if (strcmp(v, "fin")) usage("--close expects fin or rst");
    } else if (!strcmp(f, "--keepalive")) {
      if (sscanf(v, "%d,%d,%d", &ka_idle, &ka_intvl, &ka_cnt) != 3 || ka_idle < 1 || ka_intvl < 1 || ka_cnt < 1)
        usage("--keepalive expects IDLE,INTVL,CNT (seconds, seconds, count; all >= 1)");
    } else if (!strcmp(f, "--send")) {
      if (nsends == MAX_SENDS) usage("too many --send");
      if (strlen(v) == 0 || strlen(v) > LINE_MAX_BYTES - 2 || strchr(v, '\n')) usage("--send expects a short line");
      sends[nsends++] = v;
    } else usage("unknown client flag");
  }
  if (host == NULL || port == 0 || nsends == 0) usage("client needs --host, --port and at least one --send");

  struct sockaddr_storage dst;
  socklen_t dlen;
  memset(&dst, 0, sizeof dst);
  int family = strchr(host, ':') ? AF_INET6 : AF_INET;
  if (family == AF_INET6) {
    struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&dst;
    s6->sin6_family = AF_INET6;
    s6->sin6_port = htons((uint16_t)port);
    if (inet_pton(AF_INET6, host, &s6->sin6_addr) != 1) usage("--host is not an address");
    dlen = sizeof *s6;
  } else {
    struct sockaddr_in *s4 = (struct sockaddr_in *)&dst;
    s4->sin_family = AF_INET;
    s4->sin_port = htons((uint16_t)port);
    if (inet_pton(AF_INET, host, &s4->sin_addr) != 1) usage("--host is not an address");
    dlen = sizeof *s4;
  }

  const char *err = NULL;
  char errbuf[160];
  char replies[MAX_SENDS][LINE_MAX_BYTES];
  int nreplies = 0;
  long long deadline = now_ms() + timeout_ms + idle_ms;
  int one = 1;
  int fd = socket(family, SOCK_STREAM, 0);
#define FAIL(what)                                                         \
  do {                                                                     \
    snprintf(errbuf, sizeof errbuf, "%s: %s", what, strerror(errno));      \
    err = errbuf;                                                          \
    goto done;                                                             \
  } while (0)
  if (fd < 0) FAIL("socket");
  if (mss > 0 && setsockopt(fd, IPPROTO_TCP, TCP_MAXSEG, &mss, sizeof mss) < 0) FAIL("TCP_MAXSEG");
  if (ka_idle > 0) {
    if (setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one) < 0) FAIL("SO_KEEPALIVE");
    if (setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &ka_idle, sizeof ka_idle) < 0) FAIL("TCP_KEEPIDLE");
    if (setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &ka_intvl, sizeof ka_intvl) < 0) FAIL("TCP_KEEPINTVL");
    if (setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &ka_cnt, sizeof ka_cnt) < 0) FAIL("TCP_KEEPCNT");
  }
  if (bind_port > 0) {
    struct sockaddr_storage src;
    memset(&src, 0, sizeof src);
    src.ss_family = (sa_family_t)family;
    if (family == AF_INET6) ((struct sockaddr_in6 *)&src)->sin6_port = htons((uint16_t)bind_port);
    else ((struct sockaddr_in *)&src)->sin_port = htons((uint16_t)bind_port);
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0) FAIL("SO_REUSEADDR");
    if (bind(fd, (struct sockaddr *)&src, family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in)) < 0)
      FAIL("bind");
  }
  int first = 0;
  if (tfo) {
    /* Blocking sendto with MSG_FASTOPEN: connects, and puts the line in the SYN when a cookie is cached. */
    size_t len = strlen(sends[0]);
    char line[LINE_MAX_BYTES];
    memcpy(line, sends[0], len);
    line[len++] = '\n';
    if (sendto(fd, line, len, MSG_FASTOPEN, (struct sockaddr *)&dst, dlen) != (ssize_t)len) FAIL("sendto(MSG_FASTOPEN)");
    first = 1;
  } else if (connect(fd, (struct sockaddr *)&dst, dlen) < 0) {
    FAIL("connect");
  }
  for (int i = 0; i < nsends; i++) {
    if (i > 0 && idle_ms > 0) {
      struct timespec ts = {.tv_sec = idle_ms / 1000, .tv_nsec = (long)(idle_ms % 1000) * 1000000L};
      while (nanosleep(&ts, &ts) < 0 && errno == EINTR) {
      }
    }
    if (i >= first) {
      char line[LINE_MAX_BYTES];
      size_t len = strlen(sends[i]);
      memcpy(line, sends[i], len);
      line[len++] = '\n';
      if (write_all(fd, line, len) < 0) FAIL("write");
    }
    int n = read_line(fd, replies[nreplies], sizeof replies[0], deadline);
    if (n == -2) {
      err = "EOF before the reply";
      goto done;
    }
    if (n < 0) FAIL("read");
    nreplies++;
  }
done:;
  char laddr[INET6_ADDRSTRLEN] = "";
  int lport = 0, syn_data = 0;
  if (fd >= 0) {
    struct sockaddr_storage local;
    socklen_t llen = sizeof local;
    if (getsockname(fd, (struct sockaddr *)&local, &llen) == 0) addr_text(&local, laddr, sizeof laddr, &lport);
    struct tcp_info ti;
    socklen_t tlen = sizeof ti;
    memset(&ti, 0, sizeof ti);
    if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &tlen) == 0) syn_data = (ti.tcpi_options & TCPI_OPT_SYN_DATA) != 0;
  }
  printf("{\"ok\":%s,\"localAddr\":", err == NULL ? "true" : "false");
  json_str(stdout, laddr);
  printf(",\"localPort\":%d,\"replies\":[", lport);
  for (int i = 0; i < nreplies; i++) {
    if (i > 0) putchar(',');
    json_str(stdout, replies[i]);
  }
  printf("],\"synDataAcked\":%s,\"error\":", syn_data ? "true" : "false");
  if (err == NULL) printf("null");
  else json_str(stdout, err);
  printf("}\n");
  fflush(stdout);
  if (fd >= 0) {
    if (rst) {
      struct linger lg = {.l_onoff = 1, .l_linger = 0};
      setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    }
    close(fd);
  }
  return err == NULL ? 0 : 1;
}

int main(int argc, char **argv) {
  signal(SIGPIPE, SIG_IGN);
  if (argc < 2) usage("usage: tcpkit tfo-server|client [flags]");
  if (!strcmp(argv[1], "tfo-server")) return tfo_server(argc - 2, argv + 2);
  if (!strcmp(argv[1], "client")) return client(argc - 2, argv + 2);
  usage("unknown command (tfo-server, client)");
  return 2;
}
