/* The read-only decision chain of one tuple; see explain.h. Follows forward() in dataplane.c step by step,
 * through the lookups they share (decide.h). */
#include "explain.h"

#include <string.h>

#include "admission.h"
#include "decide.h"
#include "drop_reasons.h"
#include "flow_query.h"
#include "packet.h"

static uint16_t be16(uint16_t host) { return (uint16_t)((host >> 8) | (host << 8)); }

/* The ring and previous-ring choices for the key, and whether the second chance would take the previous one. */
static void explain_rings(const struct l4_tables *t, const struct l4_service *s, uint32_t svc,
                          const struct l4_flow_key *key, uint64_t hash, struct l4_explain *out) {
  out->ring_size = s->ring_size;
  if (s->ring_size) out->ring_slot = l4_ring_slot(&t->hash_key, s->hash_mode, key, hash, s->ring_size);
  out->ring_backend = l4_pick_backend(t, s, key, hash);
  out->prev_ring_size = s->prev_ring_size;
  if (s->prev_ring_size) out->prev_ring_slot = l4_ring_slot(&t->hash_key, s->hash_mode, key, hash, s->prev_ring_size);
  out->prev_backend = l4_pick_previous(t, s, key, hash);
  out->prev_second_chance = out->ring_backend != L4_NO_BACKEND && l4_second_chance_target(t, out->prev_backend, out->ring_backend, svc);
}

/* The live entry for the key, if any, as forward() finds it. Returns whether the packet (a SYN with `syn`) would
 * follow it. */
static bool explain_entry(const struct l4_tables *t, struct l4_flow_table *ft, uint32_t now, uint32_t svc, bool syn,
                          const struct l4_flow_key *key, uint64_t hash, struct l4_explain *out) {
  struct l4_flow_ref ref;
  if (!l4_flow_lookup(ft, key, hash, &t->timeouts, now, &ref)) return false;
  out->flow_found = 1;
  out->flow_backend = ref.backend;
  out->flow_service = atomic_load_explicit(&ref.e->svc, memory_order_relaxed);
  out->flow_state = ref.state;
  out->flow_class = l4_flow_class_of(key->proto, ref.state);
  uint32_t idle = now - atomic_load_explicit(&ref.e->last_seen, memory_order_relaxed);
  out->flow_idle = idle > 0x7fffffffu ? 0 : idle; /* another worker's clock may be a second ahead */
  out->flow_valid = l4_backend_valid(t, ref.backend, svc);
  out->flow_off_ring = out->flow_valid && out->ring_backend != ref.backend;
  /* A UDP entry never closes. forward(): a SYN chooses again on a closed entry (the next packet of a closed entry is
   * taken for such a SYN), and on the others l4_syn_choice says. */
  if (!out->flow_valid || key->proto != IPPROTO_TCP_) return out->flow_valid;
  if (syn) out->syn_choice = l4_syn_choice(t, &t->services[svc], key, hash, &ref, now);
  else if (l4_flow_state_closed(ref.state)) out->syn_choice = L4_SYN_ON_CLOSED;
  return out->syn_choice == L4_SYN_FOLLOWS;
}

static void explain_backend(const struct l4_tables *t, uint32_t b, struct l4_explain *out) {
  const struct l4_backend *bk = &t->backends[b];
  out->backend = b;
  out->backend_flags = bk->flags;
  out->backend_port = be16(bk->port);
  memcpy(out->backend_addr, bk->addr, 16);
}

void l4_explain(const struct l4_tables *t, struct l4_flow_table *ft, const struct l4_ratelimit *rl, uint32_t now,
                uint32_t now_ms, const struct l4_explain_query *q, struct l4_explain *out) {
  memset(out, 0, sizeof(*out));
  out->service = out->acl_index = out->flow_backend = out->flow_service = out->ring_backend = out->prev_backend =
      out->backend = L4_NO_BACKEND;
  out->drop_reason = L4_DROP_NONE;
  out->verdict = L4_EXPLAIN_DROP;
  out->rate_allows = 1;

  struct l4_addr_key k;
  l4_addr_key_set(&k, q->vip, q->family, be16(q->vport), q->proto);
  uint32_t svc = l4_addr_map_get(&t->svc_map, &k);
  if (svc == L4_NO_BACKEND) {
    l4_addr_key_set(&k, q->vip, q->family, 0, 0);
    out->drop_reason = l4_addr_map_get(&t->vip_map, &k) != L4_NO_BACKEND ? L4_DROP_VIP_PORT_UNKNOWN : L4_DROP_NOT_SERVICE;
    return;
  }
  const struct l4_service *s = &t->services[svc];
  out->service = svc;
  out->vip_port = be16(s->port);
  memcpy(out->vip_addr, s->vip, 16);

  bool allowed = true;
  out->acl_entries = s->acl_n;
  if (s->acl_n) {
    int32_t at = l4_acl_decide(t, s, q->client, &allowed);
    if (at >= 0) out->acl_index = (uint32_t)at;
  }
  out->acl_allowed = allowed;

  struct l4_flow_key key;
  l4_flow_key_set(&key, q->family, q->proto, q->client, be16(q->cport), q->vip, be16(q->vport));
  uint64_t hash = l4_flow_hash(&t->hash_key, &key);
  explain_rings(t, s, svc, &key, hash, out);
  out->rate = s->rate;
  out->burst = s->burst;
  if (s->rate && rl) {
    out->rate_tokens_milli = l4_ratelimit_peek(rl, l4_rate_bucket(t, &key, svc), s->rate, s->burst, now_ms);
    out->rate_allows = out->rate_tokens_milli >= 1000;
  }
  bool follows_entry = explain_entry(t, ft, now, svc, q->syn != 0, &key, hash, out);
  /* forward()'s order: the source list first, then the entry, then the ring and the rate limit. */
  if (!allowed) {
    out->drop_reason = L4_DROP_ACL_DENIED;
  } else if (follows_entry) {
    out->verdict = L4_EXPLAIN_ENTRY;
    explain_backend(t, out->flow_backend, out);
  } else if (out->ring_backend == L4_NO_BACKEND) {
    out->drop_reason = L4_DROP_NO_BACKEND;
  } else if (!out->rate_allows) {
    out->drop_reason = L4_DROP_RATE_LIMITED;
  } else {
    /* A new flow: the service's bound and limits as they stand (admission.h), read without taking a place. */
    bool reserved;
    uint32_t b = l4_admit(ft, t, s, svc, out->ring_slot, false, &reserved);
    if (b == L4_NO_BACKEND) {
      out->drop_reason = L4_DROP_BACKENDS_FULL;
    } else {
      out->verdict = L4_EXPLAIN_RING;
      explain_backend(t, b, out);
    }
  }
}
