/* native/steering.c's failure paths that return before any system call (issue 19, item 11): whatever step
 * fails, the log buffer the caller prints must be a string, empty unless the verifier spoke. Plain C, no TUN
 * and no bpf() needed: the checks below fail before the program is loaded. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../steering.h"
#include "expect.h"


/* One early error: the log starts as garbage (no terminator anywhere) and must come back "". */
static void too_many(uint32_t n4, uint32_t n6) {
  uint8_t *v4 = calloc(n4 ? n4 : 1, 4), *v6 = calloc(n6 ? n6 : 1, 16);
  char log[64];
  memset(log, 'X', sizeof(log));
  const char *failed = NULL;
  int r = l4_steering_attach(-1, 2, v4, n4, v6, n6, &failed, log, sizeof(log));
  EXPECT(r == -E2BIG, "n4 %u n6 %u: returned %d, expected -E2BIG", n4, n6, r);
  EXPECT(failed && strstr(failed, "too many VIPs"), "n4 %u n6 %u: failed_call %s", n4, n6, failed ? failed : "(unset)");
  EXPECT(log[0] == 0, "n4 %u n6 %u: log left unwritten (starts %.8s)", n4, n6, log);
  free(v4);
  free(v6);
}

int main(void) {
  too_many(L4_STEERING_MAX_VIPS + 1, 0);
  too_many(0, L4_STEERING_MAX_VIPS + 1);
  too_many(L4_STEERING_MAX_VIPS + 1, L4_STEERING_MAX_VIPS + 1);
  printf("steering_test: %s\n", failures ? "FAILED" : "ok");
  return failures ? 1 : 0;
}
