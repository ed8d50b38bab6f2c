/* The service table: services, backends, Maglev rings and the lookups built from them.
 *
 * TypeScript builds the rings and hands everything over as typed arrays (see l4_tables_build). A built
 * table is immutable: the addon publishes a new one by swapping a pointer, and workers read whichever
 * one they loaded at the start of a batch (see worker.c for the grace period before the old one is freed). */
#ifndef L4NAT_TABLES_H
#define L4NAT_TABLES_H

#include <stdbool.h>
#include <stdint.h>

#include "siphash.h"

#define L4_NO_BACKEND UINT32_MAX

enum l4_hash_mode { L4_HASH_5TUPLE = 0, L4_HASH_SRC = 1 };
/* How a service admits a new flow (admission.h): the ring's choice, or the ring's choice under a load bound. */
enum l4_balance { L4_BALANCE_MAGLEV = 0, L4_BALANCE_BOUNDED = 1 };
/* What a new flow gets when every candidate backend is full (max_flows): dropped, or refused (TCP RST, ICMP port
 * unreachable). */
enum l4_when_full { L4_FULL_DROP = 0, L4_FULL_REJECT = 1 };
#define L4_FACTOR_MIN 101   /* balance factor in percent: above 1.0 (1.0 would refuse every backend's next flow) */
#define L4_FACTOR_MAX 10000 /* at most 100: above that the bound never bites */
#define L4_MAX_WEIGHT (1u << 20) /* a backend's weight word: admission's arithmetic stays within 64 bits below it */

/* Per-service flag bits */
#define L4_SVC_PRESENT 1u

/* Per-backend flag bits */
#define L4_BK_PRESENT 1u
#define L4_BK_NO_SECOND_CHANCE 2u /* down: not a target of the second chance (dataplane.c), e.g. on_down reset */
#define L4_BK_IN_RING 4u /* set by l4_tables_build, not taken from the input: the backend holds a slot of its service's
                          * current ring (weight above 0). A drained backend has none: no second chance pins to it */

/* A lookup key: address (v4 in the first 4 bytes, rest zero), port in network order, protocol, family. */
struct l4_addr_key {
  uint8_t addr[16];
  uint16_t port;
  uint8_t proto;
  uint8_t family;
};

struct l4_service {
  uint32_t flags;
  uint8_t family, proto, hash_mode, acl_has_allow;
  uint16_t port; /* network order */
  uint8_t vip[16];
  uint32_t ring_size;    /* M, or 0 when the service has no backend in its ring */
  const uint32_t *ring;  /* M backend slots (L4_NO_BACKEND for none), inside l4_tables.rings */
  uint32_t prev_ring_size; /* the ring before the last change (0 = none): for the second chance, dataplane.c */
  const uint32_t *prev_ring;
  uint32_t rate, burst;  /* new flows per second per client address, and bucket size; 0 = no limit */
  uint32_t acl_off, acl_n; /* this service's source CIDR entries in l4_tables.acl */
  /* Admission (admission.h): on when the service is bounded or one of its backends has max_flows; a maglev
   * service without limits takes the ring's choice as it is. */
  uint8_t admission, balance, when_full;
  uint32_t factor_pct;   /* bounded: the balance factor in percent */
  uint64_t ring_weight;  /* the weights of its backends in the current ring, summed */
  uint32_t bk_off, bk_n; /* its backends in the current ring, in l4_tables.svc_backends (the fallback scan) */
};

/* A source CIDR rule. Deny entries always win; if a service has allow entries, a source must match one. */
struct l4_acl_entry {
  uint8_t addr[16]; /* masked to prefix */
  uint8_t prefix;
  uint8_t deny;
};

struct l4_backend {
  uint32_t flags;
  uint32_t service; /* slot of the service this backend belongs to */
  uint8_t family, proto;
  uint16_t port; /* network order */
  uint8_t addr[16];
  uint32_t weight;    /* the weight its ring was built with (bounded load's share) */
  uint32_t max_flows; /* 0: no limit */
};

/* A backend's share of its service's bounded load: its weight (a backend in the ring has one; 1 if unset). */
static inline uint32_t l4_backend_weight(const struct l4_backend *b) { return b->weight ? b->weight : 1; }

/* Open-addressed map from l4_addr_key to a slot number; sized at build time, never resized. */
struct l4_addr_map {
  uint32_t mask;
  struct l4_addr_map_entry {
    struct l4_addr_key key;
    uint32_t value; /* L4_NO_BACKEND = empty */
  } *entries;
};

/* Timeouts in seconds. */
struct l4_timeouts {
  uint32_t tcp_syn, tcp_established, tcp_fin, tcp_close, udp;
};

/* The defaults and each service slot's own (a copy of the defaults where the service sets none). */
struct l4_flow_timeouts {
  struct l4_timeouts def;
  const struct l4_timeouts *svc; /* nsvc entries, indexed by service slot */
  uint32_t nsvc;
};

/* Data-plane options that travel with the table, so one publish changes them atomically. */
#define L4_OPT_ICMP_ECHO 1u          /* answer ICMP echo requests to a VIP */
#define L4_OPT_NO_ICMP_TRANSLATE 2u  /* debug: drop ICMP errors instead of translating (tests show PMTUD breaking) */

struct l4_tables {
  uint32_t max_services, max_backends;
  struct l4_service *services; /* indexed by service slot */
  struct l4_backend *backends; /* indexed by backend slot */
  uint32_t *rings;
  struct l4_addr_map svc_map;  /* (VIP, port, proto) -> service slot */
  struct l4_addr_map vip_map;  /* (VIP, 0, 0) -> any service slot: "this address is a VIP" */
  struct l4_addr_map rev_map;  /* (backend address, port, proto) -> backend slot */
  struct l4_addr_map local_map; /* (address, 0, 0) -> 0: this host's own addresses (ICMP errors it sent itself) */
  struct siphash_key hash_key;
  struct l4_flow_timeouts timeouts;
  uint32_t options;
  struct l4_acl_entry *acl;    /* grouped by service */
  uint32_t *svc_backends;      /* backend slots in each service's current ring, grouped by service (bk_off) */
  /* Data-plane health probes (src/health/dataplane-probe.ts): replies to this source address are the
   * backends' answers to probes, consumed here and never forwarded. */
  uint8_t probe_addr4[4], probe_addr6[16];
  uint8_t has_probe4, has_probe6;
};

/* The layout TypeScript hands over (src/dataplane/tables.ts; checked at load through layout.h). Integers are host-order uint32 words. */
#define L4_SVC_WORDS 11 /* [slot, family, proto, hash_mode, port, ring_offset, ring_size, flags, balance, factor_pct,
                          *  when_full] */
#define L4_BK_WORDS 8   /* [slot, service_slot, family, proto, port, flags, weight, max_flows] */
#define L4_LIMIT_WORDS 3 /* [service_slot, rate, burst] */
#define L4_ACL_WORDS 3   /* [service_slot, deny (0 allow, 1 deny), prefix_len]; address in acl_addrs */
#define L4_TIMEOUT_WORDS 6 /* [service_slot, tcp_syn, tcp_established, tcp_fin, tcp_close, udp]; 0 = the default */
#define L4_MAX_LOCAL_ADDRS 65536 /* this host's own addresses, both families together */
#define L4_PREV_RING_WORDS 3 /* [service_slot, ring_offset, ring_size]: the service's ring before its last change */

struct l4_tables_input {
  uint32_t max_services, max_backends;
  const uint32_t *svc_words; uint32_t nservices; const uint8_t *svc_addrs; /* 16 bytes each */
  const uint32_t *bk_words; uint32_t nbackends; const uint8_t *bk_addrs;
  const uint32_t *rings; uint32_t rings_len;
  const uint8_t *hash_key; /* 16 bytes */
  struct l4_timeouts timeouts;
  uint32_t options;
  /* optional (NULL / 0 = none) */
  const uint32_t *limit_words; uint32_t nlimits;
  const uint32_t *acl_words; uint32_t nacl; const uint8_t *acl_addrs; /* 16 bytes each */
  const uint32_t *timeout_words; uint32_t ntimeouts;
  const uint32_t *prev_ring_words; uint32_t nprev_rings;
  const uint8_t *probe_addr4; /* 4 bytes, or NULL: no IPv4 probes */
  const uint8_t *probe_addr6; /* 16 bytes, or NULL */
  /* this host's own addresses (src/host/local-addrs.ts): 4 bytes each, 16 bytes each */
  const uint8_t *local_addrs4; uint32_t nlocal4;
  const uint8_t *local_addrs6; uint32_t nlocal6;
};

/* Validates and builds a table. On error returns NULL and writes a message naming the bad field. */
struct l4_tables *l4_tables_build(const struct l4_tables_input *in, char *err, int errlen);
void l4_tables_free(struct l4_tables *t);

void l4_addr_key_set(struct l4_addr_key *k, const uint8_t *addr, uint8_t family, uint16_t port, uint8_t proto);
/* Returns the slot stored for key, or L4_NO_BACKEND. */
uint32_t l4_addr_map_get(const struct l4_addr_map *m, const struct l4_addr_key *key);
/* May a client at `addr` use service s? (its source CIDR lists) */
bool l4_acl_allows(const struct l4_tables *t, const struct l4_service *s, const uint8_t *addr);
/* The same decision, and the entry that made it: the index (within the service's entries) of the first deny
 * entry the address matches, else of the first allow entry it matches, else -1 (no entry matched: allowed unless
 * the service has allow entries). */
int32_t l4_acl_decide(const struct l4_tables *t, const struct l4_service *s, const uint8_t *addr, bool *allowed);

#endif
