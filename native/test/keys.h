/* A hash key of 16 equal bytes: distinct keys by one byte, for the tests of what a key decides (the flow table
 * file's key identity, placement). */
#ifndef L4NAT_TEST_KEYS_H
#define L4NAT_TEST_KEYS_H

#include <string.h>

#include "../core/siphash.h"

static inline struct siphash_key key_of(uint8_t b) {
  uint8_t raw[16];
  memset(raw, b, sizeof(raw));
  struct siphash_key k;
  siphash_key_from_bytes(&k, raw);
  return k;
}

#endif
