/* seccomp-exec: runs a command under the system-call filters a systemd unit's settings install, for testing
 * l4nat in its unit's sandbox where systemd is not PID 1 (test/rigs/unit-sandbox.ts builds the lists).
 *
 *   seccomp-exec --errno N --allow NAME[,NAME...] [--families N[,N...]] -- CMD [ARGS...]
 *
 * Two filters, loaded the way systemd's execute.c loads them (seccomp-util.c):
 *   1. SystemCallFilter= (an allow list) with SystemCallErrorNumber=N: every system call not in --allow fails
 *      with errno N. Names this architecture does not have are skipped, as systemd skips them.
 *   2. RestrictAddressFamilies= (an allow list, --families): socket() with any other family fails with
 *      EAFNOSUPPORT; every other call passes this filter (the kernel applies the stricter of the two verdicts).
 * Both for the native architecture only: a call through another ABI (SystemCallArchitectures=native) kills the
 * process, libseccomp's default for a foreign architecture.
 * Loading a filter needs no_new_privs (setpriv --no-new-privs before this, as NoNewPrivileges=yes) or
 * CAP_SYS_ADMIN. Exit status 2 for bad arguments, 1 if a filter cannot be loaded; otherwise it execs CMD.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <seccomp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static void usage(void) {
  fprintf(stderr, "usage: seccomp-exec --errno N --allow NAME[,NAME...] [--families N[,N...]] -- CMD [ARGS...]\n");
  exit(2);
}

/* A non-negative decimal number up to max, or usage(). */
static unsigned long number(const char *s, unsigned long max) {
  char *end;
  errno = 0;
  unsigned long v = strtoul(s, &end, 10);
  if (errno || end == s || *end || v > max) usage();
  return v;
}

static int load_syscall_filter(int err, char *allow, unsigned *added, unsigned *skipped) {
  scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ERRNO((uint32_t)err));
  if (!ctx) return -ENOMEM;
  for (char *save = NULL, *name = strtok_r(allow, ",", &save); name; name = strtok_r(NULL, ",", &save)) {
    int nr = seccomp_syscall_resolve_name(name);
    if (nr == __NR_SCMP_ERROR || seccomp_rule_add_exact(ctx, SCMP_ACT_ALLOW, nr, 0) < 0) {
      (*skipped)++;
      continue;
    }
    (*added)++;
  }
  int r = seccomp_load(ctx);
  seccomp_release(ctx);
  return r;
}

static int load_family_filter(const char *families) {
  int allowed[AF_MAX] = {0};
  char *list = strdup(families);
  if (!list) return -ENOMEM;
  for (char *save = NULL, *f = strtok_r(list, ",", &save); f; f = strtok_r(NULL, ",", &save))
    allowed[number(f, AF_MAX - 1)] = 1;
  free(list);
  scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
  if (!ctx) return -ENOMEM;
  int r = 0;
  for (int af = 0; af < AF_MAX && r == 0; af++) {
    if (!allowed[af]) r = seccomp_rule_add_exact(ctx, SCMP_ACT_ERRNO(EAFNOSUPPORT), SCMP_SYS(socket), 1, SCMP_A0(SCMP_CMP_EQ, (scmp_datum_t)af));
  }
  if (r == 0) r = seccomp_rule_add_exact(ctx, SCMP_ACT_ERRNO(EAFNOSUPPORT), SCMP_SYS(socket), 1, SCMP_A0(SCMP_CMP_GE, (scmp_datum_t)AF_MAX));
  if (r == 0) r = seccomp_load(ctx);
  seccomp_release(ctx);
  return r;
}

int main(int argc, char **argv) {
  int err = -1;
  char *allow = NULL;
  const char *families = NULL;
  int i = 1;
  for (; i < argc; i++) {
    if (strcmp(argv[i], "--") == 0) break;
    if (i + 1 >= argc) usage();
    if (strcmp(argv[i], "--errno") == 0) err = (int)number(argv[++i], 4095);
    else if (strcmp(argv[i], "--allow") == 0) allow = argv[++i];
    else if (strcmp(argv[i], "--families") == 0) families = argv[++i];
    else usage();
  }
  if (err < 0 || !allow || i + 1 >= argc) usage();
  if (families) {
    int r = load_family_filter(families);
    if (r < 0) {
      fprintf(stderr, "seccomp-exec: address-family filter: %s\n", strerror(-r));
      return 1;
    }
  }
  unsigned added = 0, skipped = 0;
  int r = load_syscall_filter(err, allow, &added, &skipped);
  if (r < 0) {
    fprintf(stderr, "seccomp-exec: system-call filter: %s\n", strerror(-r));
    return 1;
  }
  if (added == 0) {
    fprintf(stderr, "seccomp-exec: no system call of the allow list exists here\n");
    return 1;
  }
  execvp(argv[i + 1], argv + i + 1);
  fprintf(stderr, "seccomp-exec: cannot run %s: %s\n", argv[i + 1], strerror(errno));
  return 127;
}
