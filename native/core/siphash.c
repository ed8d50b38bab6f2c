/* SipHash-2-4, written from the paper's description ("SipHash: a fast short-input PRF", 2012). */
#include "siphash.h"

#include <string.h>

static inline uint64_t rotl64(uint64_t x, int b) { return (x << b) | (x >> (64 - b)); }

static inline uint64_t load_le64(const uint8_t *p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; i--) v = (v << 8) | p[i];
  return v;
}

#define SIPROUND                                                                                          \
  do {                                                                                                    \
    v0 += v1; v1 = rotl64(v1, 13); v1 ^= v0; v0 = rotl64(v0, 32);                                         \
    v2 += v3; v3 = rotl64(v3, 16); v3 ^= v2;                                                              \
    v0 += v3; v3 = rotl64(v3, 21); v3 ^= v0;                                                              \
    v2 += v1; v1 = rotl64(v1, 17); v1 ^= v2; v2 = rotl64(v2, 32);                                         \
  } while (0)

void siphash_key_from_bytes(struct siphash_key *key, const uint8_t bytes[16]) {
  key->k0 = load_le64(bytes);
  key->k1 = load_le64(bytes + 8);
}

uint64_t siphash24(const struct siphash_key *key, const void *data, size_t len) {
  const uint8_t *p = (const uint8_t *)data;
  uint64_t v0 = key->k0 ^ 0x736f6d6570736575ULL;
  uint64_t v1 = key->k1 ^ 0x646f72616e646f6dULL;
  uint64_t v2 = key->k0 ^ 0x6c7967656e657261ULL;
  uint64_t v3 = key->k1 ^ 0x7465646279746573ULL;
  size_t blocks = len / 8;
  for (size_t i = 0; i < blocks; i++) {
    uint64_t m = load_le64(p + i * 8);
    v3 ^= m;
    SIPROUND;
    SIPROUND;
    v0 ^= m;
  }
  uint64_t b = (uint64_t)len << 56;
  const uint8_t *tail = p + blocks * 8;
  for (size_t i = 0; i < (len & 7); i++) b |= (uint64_t)tail[i] << (8 * i);
  v3 ^= b;
  SIPROUND;
  SIPROUND;
  v0 ^= b;
  v2 ^= 0xff;
  SIPROUND;
  SIPROUND;
  SIPROUND;
  SIPROUND;
  return v0 ^ v1 ^ v2 ^ v3;
}
