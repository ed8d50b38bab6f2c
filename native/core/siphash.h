/* SipHash-2-4 (Aumasson and Bernstein, 2012): the keyed hash that picks backends. The key is configuration
 * shared by every l4nat instance of a cluster, so all of them map a 5-tuple to the same Maglev slot. */
#ifndef L4NAT_SIPHASH_H
#define L4NAT_SIPHASH_H

#include <stddef.h>
#include <stdint.h>

struct siphash_key {
  uint64_t k0, k1;
};

void siphash_key_from_bytes(struct siphash_key *key, const uint8_t bytes[16]);
uint64_t siphash24(const struct siphash_key *key, const void *data, size_t len);

#endif
