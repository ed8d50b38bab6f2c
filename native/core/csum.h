/* Internet checksum helpers: RFC 1071 sums and RFC 1624 incremental updates.
 *
 * All 16-bit words are handled exactly as they lie in memory (loaded with memcpy, never byte-swapped):
 * the one's complement sum is byte-order independent (RFC 1071 section 2(B)), so summing and storing in
 * host order gives the right field in network order. */
#ifndef L4NAT_CSUM_H
#define L4NAT_CSUM_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* Adds len bytes of buf to a 32-bit running sum (an odd trailing byte is padded with zero, as on the wire). */
static inline uint32_t csum_add_buf(uint32_t sum, const void *buf, size_t len) {
  const uint8_t *p = (const uint8_t *)buf;
  uint64_t acc = sum;
  while (len >= 4) {
    uint32_t w;
    memcpy(&w, p, 4);
    acc += w;
    p += 4;
    len -= 4;
  }
  if (len >= 2) {
    uint16_t w;
    memcpy(&w, p, 2);
    acc += w;
    p += 2;
    len -= 2;
  }
  if (len) {
    uint8_t last[2] = {p[0], 0};
    uint16_t w;
    memcpy(&w, last, 2);
    acc += w;
  }
  acc = (acc & 0xffffffffu) + (acc >> 32);
  acc = (acc & 0xffffffffu) + (acc >> 32);
  return (uint32_t)acc;
}

/* Folds a 32-bit sum to 16 bits (not complemented). */
static inline uint16_t csum_fold(uint32_t sum) {
  sum = (sum & 0xffff) + (sum >> 16);
  sum = (sum & 0xffff) + (sum >> 16);
  return (uint16_t)sum;
}

/* The checksum field value for data whose sum is `sum`. */
static inline uint16_t csum_finish(uint32_t sum) { return (uint16_t)~csum_fold(sum); }

/* RFC 1624 eqn. 3: HC' = ~(~HC + ~m + m'), for a region of `len` bytes (even) changing from old to new.
 * Works on a complemented checksum field (a normal L3/L4 checksum). */
static inline uint16_t csum_replace(uint16_t check, const void *old_bytes, const void *new_bytes, size_t len) {
  uint32_t sum = (uint16_t)~check;
  const uint8_t *o = (const uint8_t *)old_bytes, *n = (const uint8_t *)new_bytes;
  for (size_t i = 0; i + 1 < len; i += 2) {
    uint16_t ow, nw;
    memcpy(&ow, o + i, 2);
    memcpy(&nw, n + i, 2);
    sum += (uint16_t)~ow;
    sum += nw;
  }
  return (uint16_t)~csum_fold(sum);
}

/* The same update for a CHECKSUM_PARTIAL field, which holds the UNcomplemented pseudo-header sum
 * (see __tcp_v4_send_check in net/ipv4/tcp_ipv4.c: th->check = ~tcp_v4_check(len, saddr, daddr, 0)). */
static inline uint16_t csum_replace_partial(uint16_t seed, const void *old_bytes, const void *new_bytes, size_t len) {
  return (uint16_t)~csum_replace((uint16_t)~seed, old_bytes, new_bytes, len);
}

/* Sum of the TCP/UDP/ICMPv6 pseudo-header (RFC 793, RFC 768, RFC 8200 section 8.1). */
static inline uint32_t csum_pseudo(const uint8_t *saddr, const uint8_t *daddr, int addr_len, uint8_t proto,
                                   uint32_t l4_len) {
  uint32_t sum = csum_add_buf(0, saddr, (size_t)addr_len);
  sum = csum_add_buf(sum, daddr, (size_t)addr_len);
  uint8_t tail[8];
  if (addr_len == 4) {
    tail[0] = 0;
    tail[1] = proto;
    tail[2] = (uint8_t)(l4_len >> 8);
    tail[3] = (uint8_t)l4_len;
    return csum_add_buf(sum, tail, 4);
  }
  tail[0] = (uint8_t)(l4_len >> 24);
  tail[1] = (uint8_t)(l4_len >> 16);
  tail[2] = (uint8_t)(l4_len >> 8);
  tail[3] = (uint8_t)l4_len;
  tail[4] = tail[5] = tail[6] = 0;
  tail[7] = proto;
  return csum_add_buf(sum, tail, 8);
}

static inline uint16_t load_be16(const uint8_t *p) { return (uint16_t)((p[0] << 8) | p[1]); }
static inline void store_be16(uint8_t *p, uint16_t v) {
  p[0] = (uint8_t)(v >> 8);
  p[1] = (uint8_t)v;
}
static inline uint32_t load_be32(const uint8_t *p) {
  return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}
static inline uint16_t load_u16(const uint8_t *p) {
  uint16_t v;
  memcpy(&v, p, 2);
  return v;
}
static inline void store_u16(uint8_t *p, uint16_t v) { memcpy(p, &v, 2); }

#endif
