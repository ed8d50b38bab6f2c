/* The adaptive busy-polling window (native/core/busypoll.h), step by step, and from sequences of gaps the
 * way a worker meets them: a request/response pace must open the window, an idle queue must close it. */
#include "../core/busypoll.h"
#include "test_util.h"
#include "tests.h"

#define US 1000u

static uint64_t after_gaps(uint64_t window, const uint64_t *gaps_us, int n, uint64_t max) {
  for (int i = 0; i < n; i++) window = l4_spin_next_window(window, gaps_us[i] * US, max);
  return window;
}

void test_busypoll_window(void) {
  const uint64_t max = 100 * US;
  /* Steps. */
  CHECK(l4_spin_next_window(0, 5 * US, max) == 10 * US, "a closed window opens at the starting step on a short gap");
  CHECK(l4_spin_next_window(0, 40 * US, max) == 10 * US, "a missed gap within the maximum opens the window at 10 us");
  CHECK(l4_spin_next_window(10 * US, 40 * US, max) == 20 * US, "and doubles it");
  CHECK(l4_spin_next_window(80 * US, 90 * US, max) == 100 * US, "never past the maximum");
  CHECK(l4_spin_next_window(40 * US, 30 * US, max) == 40 * US, "a gap caught by the window leaves it");
  CHECK(l4_spin_next_window(40 * US, 100 * US, max) == 80 * US, "a gap of exactly the maximum still grows it");
  CHECK(l4_spin_next_window(80 * US, 101 * US, max) == 40 * US, "a gap past the maximum halves it");
  CHECK(l4_spin_next_window(15 * US, 5000 * US, max) == 0, "below the starting step it closes");
  CHECK(l4_spin_next_window(0, 250000 * US, max) == 0, "an idle worker stays closed");
  CHECK(l4_spin_next_window(0, 40 * US, 5 * US) == 0, "a gap past a maximum below the step: closed");
  CHECK(l4_spin_next_window(0, 4 * US, 5 * US) == 5 * US, "a maximum below the starting step caps the first step");

  /* Sequences. A request/response pace of 30-70 us gaps opens the window to cover it within a few gaps. */
  const uint64_t rr[] = {45, 60, 38, 70, 52, 41, 66, 30};
  uint64_t w = after_gaps(0, rr, 8, max);
  CHECK(w >= 70 * US && w <= max, "rr pace: window %llu ns covers the gaps", (unsigned long long)w);
  /* Then the client stops: one heartbeat-long sleep halves it, a few close it. */
  const uint64_t idle[] = {250000, 250000, 250000, 250000};
  CHECK(after_gaps(w, idle, 1, max) == w / 2, "one long gap halves");
  CHECK(after_gaps(w, idle, 4, max) == 0, "idle: closed after %d long gaps", 4);
  /* A slow pace (gaps over the maximum) never opens it. */
  const uint64_t slow[] = {300, 150, 900, 120, 400};
  CHECK(after_gaps(0, slow, 5, max) == 0, "slow pace: stays closed");
  /* Bulk: the queue is rarely empty, and its gaps are short: once open, the window holds. */
  const uint64_t bulk[] = {3, 1, 8, 2, 9, 4};
  CHECK(after_gaps(20 * US, bulk, 6, max) == 20 * US, "short gaps hold the window");
}
