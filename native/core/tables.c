/* Building the immutable service table; see tables.h. Runs on the control thread, never on the packet path
 * except for l4_addr_map_get. */
#include "tables.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void l4_addr_key_set(struct l4_addr_key *k, const uint8_t *addr, uint8_t family, uint16_t port, uint8_t proto) {
  memset(k, 0, sizeof(*k));
  memcpy(k->addr, addr, family == 4 ? 4 : 16);
  k->port = port;
  k->proto = proto;
  k->family = family;
}

/* A cheap mix (the maps are built from trusted configuration, so no keyed hash is needed here). */
static uint32_t key_hash(const struct l4_addr_key *k) {
  uint64_t h = 0x9e3779b97f4a7c15ULL;
  const uint8_t *p = (const uint8_t *)k;
  for (size_t i = 0; i < sizeof(*k); i += 4) {
    uint32_t w;
    memcpy(&w, p + i, 4);
    h = (h ^ w) * 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
  }
  return (uint32_t)h;
}

uint32_t l4_addr_map_get(const struct l4_addr_map *m, const struct l4_addr_key *key) {
  if (!m->entries) return L4_NO_BACKEND;
  for (uint32_t i = key_hash(key) & m->mask;; i = (i + 1) & m->mask) {
    const struct l4_addr_map_entry *e = &m->entries[i];
    if (e->value == L4_NO_BACKEND) return L4_NO_BACKEND;
    if (memcmp(&e->key, key, sizeof(*key)) == 0) return e->value;
  }
}

static int map_init(struct l4_addr_map *m, uint32_t n) {
  uint32_t size = 8;
  while (size < n * 2) size <<= 1; /* load factor <= 1/2 keeps probes short and guarantees an empty slot */
  m->entries = malloc(sizeof(*m->entries) * size);
  if (!m->entries) return -1;
  for (uint32_t i = 0; i < size; i++) m->entries[i].value = L4_NO_BACKEND;
  m->mask = size - 1;
  return 0;
}

/* Inserts key -> value; returns the value already there if the key exists, else L4_NO_BACKEND. */
static uint32_t map_put(struct l4_addr_map *m, const struct l4_addr_key *key, uint32_t value) {
  for (uint32_t i = key_hash(key) & m->mask;; i = (i + 1) & m->mask) {
    struct l4_addr_map_entry *e = &m->entries[i];
    if (e->value == L4_NO_BACKEND) {
      e->key = *key;
      e->value = value;
      return L4_NO_BACKEND;
    }
    if (memcmp(&e->key, key, sizeof(*key)) == 0) return e->value;
  }
}

void l4_tables_free(struct l4_tables *t) {
  if (!t) return;
  free(t->services);
  free(t->backends);
  free(t->rings);
  free(t->svc_map.entries);
  free(t->vip_map.entries);
  free(t->rev_map.entries);
  free(t->local_map.entries);
  free(t->acl);
  free(t->svc_backends);
  free((void *)t->timeouts.svc);
  free(t);
}

#define FAIL(...)                         \
  do {                                    \
    snprintf(err, (size_t)errlen, __VA_ARGS__); \
    l4_tables_free(t);                    \
    return NULL;                          \
  } while (0)

static int valid_family(uint32_t f) { return f == 4 || f == 6; }
static int valid_proto(uint32_t p) { return p == 6 || p == 17; }

struct l4_tables *l4_tables_build(const struct l4_tables_input *in, char *err, int errlen) {
  struct l4_tables *t = calloc(1, sizeof(*t));
  if (!t) FAIL("out of memory");
  if (in->max_services == 0 || in->max_backends == 0) FAIL("max_services and max_backends must be > 0");
  if (in->nservices > in->max_services) FAIL("%u services exceed max_services %u", in->nservices, in->max_services);
  if (in->nbackends > in->max_backends) FAIL("%u backends exceed max_backends %u", in->nbackends, in->max_backends);
  if ((uint64_t)in->nlocal4 + in->nlocal6 > L4_MAX_LOCAL_ADDRS)
    FAIL("%u IPv4 and %u IPv6 local addresses: at most %u together", in->nlocal4, in->nlocal6, L4_MAX_LOCAL_ADDRS);
  t->max_services = in->max_services;
  t->max_backends = in->max_backends;
  t->services = calloc(in->max_services, sizeof(*t->services));
  t->backends = calloc(in->max_backends, sizeof(*t->backends));
  t->rings = malloc(sizeof(uint32_t) * (in->rings_len ? in->rings_len : 1));
  if (!t->services || !t->backends || !t->rings) FAIL("out of memory");
  if (in->rings_len) memcpy(t->rings, in->rings, sizeof(uint32_t) * in->rings_len);
  if (map_init(&t->svc_map, in->nservices) || map_init(&t->vip_map, in->nservices) ||
      map_init(&t->rev_map, in->nbackends) || map_init(&t->local_map, in->nlocal4 + in->nlocal6))
    FAIL("out of memory");
  siphash_key_from_bytes(&t->hash_key, in->hash_key);
  t->timeouts.def = in->timeouts;
  t->options = in->options;
  if (in->probe_addr4) {
    memcpy(t->probe_addr4, in->probe_addr4, 4);
    t->has_probe4 = 1;
  }
  if (in->probe_addr6) {
    memcpy(t->probe_addr6, in->probe_addr6, 16);
    t->has_probe6 = 1;
  }

  /* One address on several links is one entry: map_put keeps the first. */
  for (uint32_t i = 0; i < in->nlocal4 + in->nlocal6; i++) {
    struct l4_addr_key k;
    if (i < in->nlocal4) l4_addr_key_set(&k, in->local_addrs4 + (size_t)i * 4, 4, 0, 0);
    else l4_addr_key_set(&k, in->local_addrs6 + (size_t)(i - in->nlocal4) * 16, 6, 0, 0);
    map_put(&t->local_map, &k, 0);
  }

  for (uint32_t i = 0; i < in->nservices; i++) {
    const uint32_t *w = in->svc_words + (size_t)i * L4_SVC_WORDS;
    uint32_t slot = w[0], family = w[1], proto = w[2], hash_mode = w[3], port = w[4], roff = w[5], rsize = w[6];
    uint32_t balance = w[8], factor = w[9], when_full = w[10];
    if (slot >= in->max_services) FAIL("service %u: slot %u out of range (max %u)", i, slot, in->max_services);
    if (t->services[slot].flags & L4_SVC_PRESENT) FAIL("service %u: slot %u used twice", i, slot);
    if (!valid_family(family)) FAIL("service %u: family must be 4 or 6, got %u", i, family);
    if (!valid_proto(proto)) FAIL("service %u: proto must be 6 (tcp) or 17 (udp), got %u", i, proto);
    if (hash_mode > L4_HASH_SRC) FAIL("service %u: hash mode must be 0 (5-tuple) or 1 (src), got %u", i, hash_mode);
    if (port == 0 || port > 65535) FAIL("service %u: port must be 1-65535, got %u", i, port);
    if (rsize && ((uint64_t)roff + rsize > in->rings_len)) FAIL("service %u: ring [%u, +%u) outside rings (%u)", i, roff, rsize, in->rings_len);
    if (balance > L4_BALANCE_BOUNDED) FAIL("service %u: balance must be 0 (maglev) or 1 (bounded), got %u", i, balance);
    if (balance == L4_BALANCE_BOUNDED && (factor < L4_FACTOR_MIN || factor > L4_FACTOR_MAX))
      FAIL("service %u: balance factor must be %u to %u percent, got %u", i, L4_FACTOR_MIN, L4_FACTOR_MAX, factor);
    if (when_full > L4_FULL_REJECT) FAIL("service %u: when_full must be 0 (drop) or 1 (reject), got %u", i, when_full);
    struct l4_service *s = &t->services[slot];
    s->flags = L4_SVC_PRESENT;
    s->family = (uint8_t)family;
    s->proto = (uint8_t)proto;
    s->hash_mode = (uint8_t)hash_mode;
    s->port = (uint16_t)(((port & 0xff) << 8) | (port >> 8));
    memcpy(s->vip, in->svc_addrs + (size_t)i * 16, 16);
    if (family == 4) memset(s->vip + 4, 0, 12);
    s->ring_size = rsize;
    s->ring = rsize ? t->rings + roff : NULL;
    s->balance = (uint8_t)balance;
    s->factor_pct = factor;
    s->when_full = (uint8_t)when_full;
    s->admission = balance == L4_BALANCE_BOUNDED;
    struct l4_addr_key k;
    l4_addr_key_set(&k, s->vip, s->family, s->port, s->proto);
    if (map_put(&t->svc_map, &k, slot) != L4_NO_BACKEND) FAIL("service %u: VIP, port and protocol used by another service", i);
    l4_addr_key_set(&k, s->vip, s->family, 0, 0);
    map_put(&t->vip_map, &k, slot);
  }

  for (uint32_t i = 0; i < in->nbackends; i++) {
    const uint32_t *w = in->bk_words + (size_t)i * L4_BK_WORDS;
    uint32_t slot = w[0], svc = w[1], family = w[2], proto = w[3], port = w[4], flags = w[5], weight = w[6], max_flows = w[7];
    if (slot >= in->max_backends) FAIL("backend %u: slot %u out of range (max %u)", i, slot, in->max_backends);
    if (t->backends[slot].flags & L4_BK_PRESENT) FAIL("backend %u: slot %u used twice", i, slot);
    if (svc >= in->max_services || !(t->services[svc].flags & L4_SVC_PRESENT)) FAIL("backend %u: service slot %u does not exist", i, svc);
    if (family != t->services[svc].family) FAIL("backend %u: family %u differs from its service's", i, family);
    if (proto != t->services[svc].proto) FAIL("backend %u: proto %u differs from its service's", i, proto);
    if (port == 0 || port > 65535) FAIL("backend %u: port must be 1-65535, got %u", i, port);
    /* 65535 configured, times the steps of a slow start's ramp (src/control/slow-start.ts) */
    if (weight > L4_MAX_WEIGHT) FAIL("backend %u: weight must be 0-%u, got %u", i, L4_MAX_WEIGHT, weight);
    struct l4_backend *b = &t->backends[slot];
    b->weight = weight;
    b->max_flows = max_flows;
    if (max_flows) t->services[svc].admission = 1;
    b->flags = L4_BK_PRESENT | (flags & ~(L4_BK_PRESENT | L4_BK_IN_RING));
    b->service = svc;
    b->family = (uint8_t)family;
    b->proto = (uint8_t)proto;
    b->port = (uint16_t)(((port & 0xff) << 8) | (port >> 8));
    memcpy(b->addr, in->bk_addrs + (size_t)i * 16, 16);
    if (family == 4) memset(b->addr + 4, 0, 12);
    struct l4_addr_key k;
    l4_addr_key_set(&k, b->addr, b->family, b->port, b->proto);
    /* Reverse translation is stateless: a (backend, port, proto) in two services would be ambiguous. */
    if (map_put(&t->rev_map, &k, slot) != L4_NO_BACKEND) FAIL("backend %u: address, port and protocol used by another backend entry (replies would be ambiguous)", i);
  }

  for (uint32_t i = 0; i < in->nlimits; i++) {
    const uint32_t *w = in->limit_words + (size_t)i * L4_LIMIT_WORDS;
    if (w[0] >= in->max_services || !(t->services[w[0]].flags & L4_SVC_PRESENT)) FAIL("limit %u: service slot %u does not exist", i, w[0]);
    if (w[1] > 4000000 || w[2] > 4000000) FAIL("limit %u: rate and burst must be at most 4000000, got %u and %u", i, w[1], w[2]);
    if (w[1] && !w[2]) FAIL("limit %u: a rate needs a burst of at least 1", i);
    t->services[w[0]].rate = w[1];
    t->services[w[0]].burst = w[2];
  }

  /* Every slot gets its own copy (the defaults unless the service sets some), so a lookup is one index. */
  struct l4_timeouts *svc_to = malloc(sizeof(*svc_to) * in->max_services);
  if (!svc_to) FAIL("out of memory");
  for (uint32_t i = 0; i < in->max_services; i++) svc_to[i] = in->timeouts;
  t->timeouts.svc = svc_to;
  t->timeouts.nsvc = in->max_services;
  for (uint32_t i = 0; i < in->ntimeouts; i++) {
    const uint32_t *w = in->timeout_words + (size_t)i * L4_TIMEOUT_WORDS;
    if (w[0] >= in->max_services || !(t->services[w[0]].flags & L4_SVC_PRESENT)) FAIL("timeouts %u: service slot %u does not exist", i, w[0]);
    for (int k = 1; k < L4_TIMEOUT_WORDS; k++)
      if (w[k] > 0x7fffffffu) FAIL("timeouts %u: value %u too large (seconds, at most 2147483647)", i, w[k]);
    struct l4_timeouts *o = &svc_to[w[0]];
    if (w[1]) o->tcp_syn = w[1];
    if (w[2]) o->tcp_established = w[2];
    if (w[3]) o->tcp_fin = w[3];
    if (w[4]) o->tcp_close = w[4];
    if (w[5]) o->udp = w[5];
  }

  if (in->nacl) {
    t->acl = calloc(in->nacl, sizeof(*t->acl));
    if (!t->acl) FAIL("out of memory");
  }
  /* Group entries by service (stable: the order given within a service is kept). */
  uint32_t n = 0;
  for (uint32_t s = 0; s < in->max_services && in->nacl; s++) {
    struct l4_service *svc = &t->services[s];
    svc->acl_off = n;
    for (uint32_t i = 0; i < in->nacl; i++) {
      const uint32_t *w = in->acl_words + (size_t)i * L4_ACL_WORDS;
      if (w[0] >= in->max_services || !(t->services[w[0]].flags & L4_SVC_PRESENT)) FAIL("acl %u: service slot %u does not exist", i, w[0]);
      if (w[0] != s) continue;
      uint32_t maxp = svc->family == 4 ? 32 : 128;
      if (w[1] > 1) FAIL("acl %u: action must be 0 (allow) or 1 (deny), got %u", i, w[1]);
      if (w[2] > maxp) FAIL("acl %u: prefix length %u longer than %u", i, w[2], maxp);
      struct l4_acl_entry *e = &t->acl[n++];
      memcpy(e->addr, in->acl_addrs + (size_t)i * 16, 16);
      e->prefix = (uint8_t)w[2];
      e->deny = (uint8_t)w[1];
      for (uint32_t bit = w[2]; bit < 128; bit++) e->addr[bit / 8] &= (uint8_t)~(0x80u >> (bit % 8));
      if (!e->deny) svc->acl_has_allow = 1;
    }
    svc->acl_n = n - svc->acl_off;
  }

  for (uint32_t i = 0; i < in->nprev_rings; i++) {
    const uint32_t *w = in->prev_ring_words + (size_t)i * L4_PREV_RING_WORDS;
    if (w[0] >= in->max_services || !(t->services[w[0]].flags & L4_SVC_PRESENT)) FAIL("previous ring %u: service slot %u does not exist", i, w[0]);
    if (!w[2] || (uint64_t)w[1] + w[2] > in->rings_len) FAIL("previous ring %u: [%u, +%u) outside rings (%u)", i, w[1], w[2], in->rings_len);
    t->services[w[0]].prev_ring = t->rings + w[1];
    t->services[w[0]].prev_ring_size = w[2];
  }

  for (uint32_t i = 0; i < in->rings_len; i++) {
    uint32_t b = t->rings[i];
    if (b != L4_NO_BACKEND && (b >= in->max_backends || !(t->backends[b].flags & L4_BK_PRESENT)))
      FAIL("rings[%u]: backend slot %u does not exist", i, b);
  }
  for (uint32_t s = 0; s < in->max_services; s++) {
    const struct l4_service *svc = &t->services[s];
    for (uint32_t j = 0; svc->ring && j < svc->ring_size; j++) {
      uint32_t b = svc->ring[j];
      if (b != L4_NO_BACKEND && t->backends[b].service != s) FAIL("service slot %u: ring holds backend slot %u of another service", s, b);
      if (b != L4_NO_BACKEND) t->backends[b].flags |= L4_BK_IN_RING;
    }
    for (uint32_t j = 0; svc->prev_ring && j < svc->prev_ring_size; j++) {
      uint32_t b = svc->prev_ring[j];
      if (b != L4_NO_BACKEND && t->backends[b].service != s) FAIL("service slot %u: previous ring holds backend slot %u of another service", s, b);
    }
  }
  /* Each service's backends in its current ring, for admission's fallback scan, and their weights summed. */
  t->svc_backends = malloc(sizeof(uint32_t) * (in->nbackends ? in->nbackends : 1));
  if (!t->svc_backends) FAIL("out of memory");
  for (uint32_t b = 0; b < in->max_backends; b++) {
    const struct l4_backend *bk = &t->backends[b];
    if (!(bk->flags & L4_BK_IN_RING)) continue;
    t->services[bk->service].bk_n++;
    t->services[bk->service].ring_weight += l4_backend_weight(bk);
  }
  uint32_t nsb = 0;
  for (uint32_t s = 0; s < in->max_services; s++) {
    t->services[s].bk_off = nsb;
    nsb += t->services[s].bk_n;
    t->services[s].bk_n = 0;
  }
  for (uint32_t b = 0; b < in->max_backends; b++) {
    struct l4_service *svc = &t->services[t->backends[b].service];
    if (t->backends[b].flags & L4_BK_IN_RING) t->svc_backends[svc->bk_off + svc->bk_n++] = b;
  }
  return t;
}

static bool prefix_match(const uint8_t *addr, const struct l4_acl_entry *e) {
  uint32_t full = e->prefix / 8, rest = e->prefix % 8;
  if (memcmp(addr, e->addr, full) != 0) return false;
  if (!rest) return true;
  uint8_t mask = (uint8_t)(0xff00u >> rest);
  return (addr[full] & mask) == e->addr[full];
}

int32_t l4_acl_decide(const struct l4_tables *t, const struct l4_service *s, const uint8_t *addr, bool *allowed) {
  int32_t allow_at = -1;
  for (uint32_t i = 0; i < s->acl_n; i++) {
    const struct l4_acl_entry *e = &t->acl[s->acl_off + i];
    if (!prefix_match(addr, e)) continue;
    if (e->deny) {
      *allowed = false;
      return (int32_t)i;
    }
    if (allow_at < 0) allow_at = (int32_t)i;
  }
  *allowed = allow_at >= 0 || !s->acl_has_allow;
  return allow_at;
}

bool l4_acl_allows(const struct l4_tables *t, const struct l4_service *s, const uint8_t *addr) {
  bool allowed;
  l4_acl_decide(t, s, addr, &allowed);
  return allowed;
}
