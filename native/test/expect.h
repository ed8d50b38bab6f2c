/* The check of the test programs that run without the core harness (test_util.h): flow_file_test, steering_test.
 * A failed EXPECT prints where and why and counts in `failures`; the program exits non-zero if any failed. */
#ifndef L4NAT_TEST_EXPECT_H
#define L4NAT_TEST_EXPECT_H

#include <stdio.h>

static int failures;

#define EXPECT(cond, ...)                                    \
  do {                                                       \
    if (!(cond)) {                                           \
      failures++;                                            \
      printf("FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond); \
      printf(__VA_ARGS__);                                   \
      printf("\n");                                          \
    }                                                        \
  } while (0)

#endif
