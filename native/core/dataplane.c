/* The packet path; see dataplane.h and the data-plane contract, docs/design.md items 7-16. */
#include "dataplane.h"

#include <string.h>

#include "admission.h"
#include "csum.h"
#include "decide.h"
#include "probe.h"
#include "refuse.h"
#include "sync_log.h"
#include "trace.h"

/* The packet path is compiled twice (see l4_process): with note == NULL, every NOTE() and the functions taking
 * `note` inline into a copy with no trace code at all; with a note, the decision points record why. */
#define PATH static inline __attribute__((always_inline))
#define NOTE(...)      \
  do {                 \
    if (note) {        \
      __VA_ARGS__;     \
    }                  \
  } while (0)

#define L4_Q_NAME(name, str) str,
const char *const L4_QUEUE_COUNTER_NAMES[L4_Q_MAX] = {L4_QUEUE_COUNTERS(L4_Q_NAME)};
#undef L4_Q_NAME
#define L4_O_NAME(name, str) str,
const char *const L4_OBJ_COUNTER_NAMES[L4_O_MAX] = {L4_OBJ_COUNTERS(L4_O_NAME)};
#undef L4_O_NAME

static enum l4_verdict drop(struct l4_ctx *ctx, enum l4_drop_reason r) {
  ctx->last_drop = r;
  l4_ctr_drops(ctx)[r]++;
  return L4_VERDICT_DROP;
}

/* The L4 checksum field of a TCP/UDP header, or NULL when there is none to update (UDP over IPv4 with
 * checksum 0 means "no checksum" and must stay 0, RFC 768). */
static uint8_t *l4_csum_field(const struct l4_pkt *p, uint32_t avail) {
  if (p->proto == IPPROTO_TCP_) return avail >= TCP_OFF_CSUM + 2 ? p->l4 + TCP_OFF_CSUM : NULL;
  if (p->proto == IPPROTO_UDP_) {
    if (avail < UDP_OFF_CSUM + 2) return NULL;
    if (p->family == 4 && load_u16(p->l4 + UDP_OFF_CSUM) == 0 && !p->csum_partial) return NULL;
    return p->l4 + UDP_OFF_CSUM;
  }
  return NULL;
}

/* Stores an updated L4 checksum. A UDP checksum that computes to 0 is sent as 0xffff (RFC 768). */
static void store_l4_csum(const struct l4_pkt *p, uint8_t *field, uint16_t v) {
  if (p->proto == IPPROTO_UDP_ && v == 0 && !p->csum_partial) v = 0xffff;
  store_u16(field, v);
}

/* Replaces an IP address of p (saddr or daddr) and fixes the IPv4 header checksum and the L4 checksum.
 * `l4_avail`: how many L4 bytes are present (less than the header inside an ICMP quote). */
static void rewrite_addr(const struct l4_pkt *p, uint8_t *addr, const uint8_t *new_addr, uint32_t l4_avail) {
  int n = p->addr_len;
  if (memcmp(addr, new_addr, (size_t)n) == 0) return;
  if (p->family == 4) {
    uint8_t *ck = p->l3 + IP4_OFF_CSUM;
    store_u16(ck, csum_replace(load_u16(ck), addr, new_addr, 4));
  }
  uint8_t *ck = l4_csum_field(p, l4_avail);
  if (ck) {
    /* The address is in the pseudo-header, which both a full and a partial checksum cover. */
    uint16_t v = p->csum_partial ? csum_replace_partial(load_u16(ck), addr, new_addr, (size_t)n)
                                 : csum_replace(load_u16(ck), addr, new_addr, (size_t)n);
    store_l4_csum(p, ck, v);
  }
  memcpy(addr, new_addr, (size_t)n);
}

/* Replaces a TCP/UDP port (network order). A partial checksum does not cover the L4 header yet: the
 * kernel (or the NIC) sums it later, so only a full checksum is updated. */
static void rewrite_port(const struct l4_pkt *p, uint8_t *port, uint16_t new_port, uint32_t l4_avail) {
  if (load_u16(port) == new_port) return;
  uint8_t *ck = p->csum_partial ? NULL : l4_csum_field(p, l4_avail);
  if (ck) store_l4_csum(p, ck, csum_replace(load_u16(ck), port, &new_port, 2));
  store_u16(port, new_port);
}

/* The service's per-client-address new-flow rate limit (if any) lets one more new entry in. Every entry the
 * data plane creates for a client address passes here: a SYN's, and a second chance's (reply()). */
static bool new_flow_allowed(struct l4_ctx *ctx, const struct l4_tables *t, const struct l4_service *s,
                             const struct l4_flow_key *key, uint32_t svc_slot) {
  if (!s->rate || !ctx->ratelimit) return true;
  return l4_ratelimit_take(ctx->ratelimit, l4_rate_bucket(t, key, svc_slot), s->rate, s->burst, ctx->now_ms);
}

static uint8_t tcp_state_bits(uint8_t flags, int from_client) {
  uint8_t set = 0;
  if (flags & TCP_FIN) set |= from_client ? FL_FIN_C : FL_FIN_B;
  if (flags & TCP_RST) set |= FL_RST;
  return set;
}

static void count_obj(uint64_t *c, uint32_t bytes, int in) {
  c[in ? L4_O_PACKETS_IN : L4_O_PACKETS_OUT]++;
  c[in ? L4_O_BYTES_IN : L4_O_BYTES_OUT] += bytes;
}

/* Logs an entry for the peers and marks it FL_SYNCED (a full log: counted; the entry's next packet tries again). */
static __attribute__((noinline)) void sync_log_add(struct l4_ctx *ctx, const struct l4_flow_key *key,
                                                   struct l4_flow_ref *ref, uint32_t svc_slot, uint8_t after) {
  if (l4_sync_log_put(ctx->sync, key, ref->backend, svc_slot, L4_SYNC_ADD, after)) {
    ref->state = after;
    l4_flow_touch(ctx->flows, ref, FL_SYNCED, 0, ctx->now);
    ctx->counters[L4_Q_SYNC_LOGGED]++;
  } else {
    ctx->counters[L4_Q_SYNC_LOG_FULL]++;
  }
}

/* Flow-state sync (sync_log.h), with sync on only, after a packet's state change (set, clear) on an entry it
 * hit: logs an entry pinned against the current ring once (and marks it), and the close of a marked one (and
 * unmarks it). Whatever its TCP state: with the backends' replies returning by ECMP, a flow's entry on the host its
 * client's packets reach may never see a reply (FL_SYN only, never established), and it is the one that matters.
 * Only a second chance's guess (no state bits) waits until its backend has answered through it, so a spoofed ACK
 * cannot make this host push guesses to its peers. Out of line: the path with sync off pays one branch on
 * ctx->sync. */
static __attribute__((noinline)) void sync_note(struct l4_ctx *ctx, const struct l4_tables *t, const struct l4_service *s,
                                                const struct l4_flow_key *key, uint64_t hash, struct l4_flow_ref *ref,
                                                uint32_t svc_slot, uint8_t set, uint8_t clear) {
  uint8_t before = ref->state, after = (uint8_t)((before | set) & ~clear);
  if (before & FL_SYNCED) {
    if (l4_flow_state_closed(after) && !l4_flow_state_closed(before) &&
        l4_sync_log_put(ctx->sync, key, ref->backend, svc_slot, L4_SYNC_DEL, after)) {
      ref->state = after;
      l4_flow_touch(ctx->flows, ref, 0, FL_SYNCED, ctx->now);
      ctx->counters[L4_Q_SYNC_LOGGED_DEL]++;
    }
    return;
  }
  if (l4_flow_state_closed(after) || (key->proto == IPPROTO_TCP_ && !(after & (FL_SYN | FL_REPLY | FL_EST)))) return;
  if (l4_pick_backend(t, s, key, hash) == ref->backend) return;
  sync_log_add(ctx, key, ref, svc_slot, after);
}

/* With sync on: a backend's reset of a flow this host's live entry pins to another backend, while the ring picks the
 * resetting one. The flow's client packets reach another host that has no entry for it yet (it moved there, or
 * its replies never pass there) and go by the ring; this entry knows the backend that has the connection. The
 * reset is swallowed like a second chance's, and the entry logged again (marked or not), so that host learns it
 * and the client's retransmission reaches the right backend. Sync off: the reset goes to the client, as always. */
static __attribute__((noinline)) bool sync_other_reset(struct l4_ctx *ctx, const struct l4_tables *t,
                                                       const struct l4_service *s, const struct l4_flow_key *key,
                                                       uint64_t hash, struct l4_flow_ref *ref, uint32_t bk_slot,
                                                       uint32_t svc_slot) {
  if (l4_flow_state_closed(ref->state) || !l4_backend_valid(t, ref->backend, svc_slot)) return false;
  if (l4_pick_backend(t, s, key, hash) != bk_slot) return false;
  sync_log_add(ctx, key, ref, svc_slot, (uint8_t)(ref->state & ~FL_SYNCED));
  return true;
}

/* The ring slot the flow hashes to (traced path only). */
static uint32_t ring_index(const struct l4_tables *t, const struct l4_service *s, const struct l4_flow_key *k, uint64_t hash) {
  return s->ring_size ? l4_ring_slot(&t->hash_key, s->hash_mode, k, hash, s->ring_size) : L4_NO_BACKEND;
}

/* A new flow no backend may take (admission.h): counted for the service, then dropped or answered as its
 * when_full says. A datagram whose answer would not fit the buffer is dropped (refuse.h). */
static enum l4_verdict refuse(struct l4_ctx *ctx, const struct l4_service *s, uint32_t svc_slot, struct l4_pkt *p,
                              uint32_t *len) {
  l4_ctr_service(ctx, svc_slot)[L4_O_FULL_REFUSED]++;
  if (s->when_full == L4_FULL_REJECT) {
    uint32_t n = p->proto == IPPROTO_TCP_ ? l4_refuse_tcp(p) : l4_refuse_udp(p, ctx->buf_cap > *len ? ctx->buf_cap : *len);
    if (n) {
      *len = n;
      ctx->counters[L4_Q_FULL_REJECTED]++;
      return L4_VERDICT_TX;
    }
  }
  return drop(ctx, L4_DROP_BACKENDS_FULL);
}

/* client -> VIP:port. Picks the backend (flow table, else the ring) and rewrites the destination. */
PATH enum l4_verdict forward(struct l4_ctx *ctx, const struct l4_tables *t, struct l4_pkt *p, uint32_t svc_slot,
                             uint32_t *len, struct l4_trace_note *note) {
  const struct l4_service *s = &t->services[svc_slot];
  NOTE(note->rec.dir = L4_TD_FORWARD, note->rec.service = svc_slot);
  if (s->acl_n && !l4_acl_allows(t, s, p->saddr)) return drop(ctx, L4_DROP_ACL_DENIED);
  struct l4_flow_key key;
  l4_flow_key_set(&key, p->family, p->proto, p->saddr, p->sport, p->daddr, p->dport);
  uint64_t hash = l4_flow_hash(&t->hash_key, &key);
  struct l4_flow_ref ref;
  /* found: the tuple has a live entry; hit: and its backend still serves this service */
  bool found = l4_flow_lookup(ctx->flows, &key, hash, &t->timeouts, ctx->now, &ref);
  bool hit = found && l4_backend_valid(t, ref.backend, svc_slot);
  uint32_t b;
  uint8_t tflags = p->tcp_flags;
  bool is_tcp = p->proto == IPPROTO_TCP_;
  bool syn = is_tcp && (tflags & (TCP_SYN | TCP_ACK | TCP_RST)) == TCP_SYN;
  /* A SYN on a closed entry is a new connection reusing the tuple: choose again. So is one on an entry whose
   * backend takes no new flows (draining or down: admission.h), and a SYN retransmission that should leave a
   * backend the ring moved away from. */
  enum l4_syn_choice why = hit && syn ? l4_syn_choice(t, s, &key, hash, &ref, ctx->now) : L4_SYN_FOLLOWS;
  bool reuse_off_ring = why == L4_SYN_BACKEND_LEAVING;
  bool choose_again = why != L4_SYN_FOLLOWS;
  if (hit && !choose_again) {
    b = ref.backend;
    NOTE(note->rec.flow = L4_TF_HIT);
    uint8_t set = 0, clear = 0;
    if (is_tcp) {
      set = tcp_state_bits(tflags, 1);
      if (!(tflags & (TCP_SYN | TCP_RST)) && (ref.state & FL_REPLY)) set |= FL_EST;
      if (!(tflags & TCP_RST)) clear = FL_RST; /* the flow lives on: a forged RST does not unpin it */
    }
    l4_flow_touch(ctx->flows, &ref, set, clear, ctx->now);
    if (__builtin_expect(ctx->sync != NULL, 0)) sync_note(ctx, t, s, &key, hash, &ref, svc_slot, set, clear);
  } else {
    b = l4_pick_backend(t, s, &key, hash);
    NOTE(note->rec.ring_slot = ring_index(t, s, &key, hash), note->rec.backend = b);
    if (b == L4_NO_BACKEND) return drop(ctx, L4_DROP_NO_BACKEND);
    if (reuse_off_ring) ctx->counters[L4_Q_FLOW_REUSE_MOVED]++;
    if (is_tcp && !syn) {
      /* No entry for a mid-flow packet (after a restart, or a flow moved from another host): forward it by
       * the ring, but do not create an entry. The entry is created when the backend answers (see reply()),
       * and then unconfirmed (half-open) until both ends have spoken through it, so a flood of spoofed ACKs
       * cannot displace established flows. */
      ctx->counters[L4_Q_FLOW_MISS_NONSYN]++;
      NOTE(note->rec.flow = L4_TF_NO_ENTRY);
    } else {
      if (!new_flow_allowed(ctx, t, s, &key, svc_slot)) return drop(ctx, L4_DROP_RATE_LIMITED);
      /* A new flow (a SYN, a datagram without an entry): the service's bound and limits may send it elsewhere. */
      bool reserved = false;
      if (s->admission) {
        uint32_t ring_b = b;
        b = l4_admit(ctx->flows, t, s, svc_slot, l4_ring_slot(&t->hash_key, s->hash_mode, &key, hash, s->ring_size),
                     true, &reserved);
        NOTE(note->rec.backend = b);
        if (b == L4_NO_BACKEND) return refuse(ctx, s, svc_slot, p, len);
        if (b != ring_b) ctx->counters[L4_Q_FLOW_ADMIT_MOVED]++;
      }
      uint8_t state = is_tcp ? FL_SYN : 0;
      enum l4_flow_insert_result r =
          reserved ? l4_flow_insert_reserved(ctx->flows, &key, hash, b, svc_slot, state, &t->timeouts, ctx->now, found, &ref)
                   : l4_flow_insert(ctx->flows, &key, hash, b, svc_slot, state, &t->timeouts, ctx->now, found, &ref);
      /* Not inserted: the place reserved for it goes back. */
      if (reserved && (r == FLOW_EXISTS || r == FLOW_INSERT_FAILED)) l4_flow_count_add(ctx->flows, b, UINT32_MAX, -1);
      switch (r) {
        case FLOW_INSERTED_EVICTED:
          ctx->counters[L4_Q_FLOW_EVICTED]++;
          /* fall through */
        case FLOW_INSERTED:
          ctx->counters[found ? L4_Q_FLOW_REPIN : L4_Q_FLOW_NEW]++;
          NOTE(note->rec.flow = found ? L4_TF_REPIN : L4_TF_NEW);
          l4_ctr_service(ctx, svc_slot)[L4_O_NEW_FLOWS]++;
          l4_ctr_backend(ctx, b)[L4_O_NEW_FLOWS]++;
          break;
        case FLOW_EXISTS: /* another worker was first: follow its choice */
          if (l4_backend_valid(t, ref.backend, svc_slot)) b = ref.backend;
          NOTE(note->rec.flow = L4_TF_RACED);
          break;
        case FLOW_INSERT_FAILED:
          ctx->counters[L4_Q_FLOW_INSERT_FAILED]++;
          NOTE(note->rec.flow = L4_TF_INSERT_FAILED);
          break;
      }
    }
  }
  const struct l4_backend *bk = &t->backends[b];
  NOTE(note->rec.backend = b);
  rewrite_addr(p, p->daddr, bk->addr, p->l4_len);
  rewrite_port(p, p->l4 + 2, bk->port, p->l4_len);
  ctx->counters[L4_Q_FORWARD]++;
  count_obj(l4_ctr_service(ctx, svc_slot), p->l3_len, 1);
  count_obj(l4_ctr_backend(ctx, b), p->l3_len, 1);
  return L4_VERDICT_TX;
}

/* Is this the backend's answer to a data-plane health probe (see probe.h)? */
static bool to_probe_source(const struct l4_tables *t, const struct l4_pkt *p) {
  if (p->proto != IPPROTO_TCP_) return false;
  if (p->family == 4) return t->has_probe4 && memcmp(p->daddr, t->probe_addr4, 4) == 0;
  return t->has_probe6 && memcmp(p->daddr, t->probe_addr6, 16) == 0;
}

/* A backend's packet to the probe address. Only the answer to the backend's outstanding probe counts (see
 * probe.h): its SYN-ACK is counted and turned into the RST that closes the half-open connection (a repeat,
 * the backend retransmitting it, is answered again but not counted), its RST is counted and dropped as
 * probe_answer. Anything else (a forged answer, one to an earlier probe, stray packets) is dropped as
 * probe_unmatched and changes nothing. Never a flow entry, never a client. */
PATH enum l4_verdict probe_answer(struct l4_ctx *ctx, struct l4_pkt *p, uint32_t bk_slot, uint32_t *len,
                                  struct l4_trace_note *note) {
  NOTE(note->rec.dir = L4_TD_PROBE, note->rec.backend = bk_slot);
  uint8_t f = p->tcp_flags & (TCP_SYN | TCP_ACK | TCP_RST);
  bool synack = f == (TCP_SYN | TCP_ACK);
  enum l4_probe_match m = L4_PROBE_UNMATCHED;
  if (ctx->probes && (synack || f == (TCP_RST | TCP_ACK)))
    m = l4_probe_match(ctx->probes, bk_slot, load_be16(p->l4 + 2), load_be32(p->l4 + 8), synack);
  if (m == L4_PROBE_UNMATCHED) return drop(ctx, L4_DROP_PROBE_UNMATCHED);
  if (synack) {
    if (m == L4_PROBE_FIRST_ANSWER) l4_ctr_backend(ctx, bk_slot)[L4_O_PROBE_SYNACKS]++;
    ctx->counters[L4_Q_PROBE_RST_SENT]++;
    *len = l4_probe_rst(p);
    return L4_VERDICT_TX;
  }
  if (m == L4_PROBE_FIRST_ANSWER) l4_ctr_backend(ctx, bk_slot)[L4_O_PROBE_RESETS]++;
  return drop(ctx, L4_DROP_PROBE_ANSWER);
}

/* backend -> client. Stateless: the source becomes the service's VIP:port. The flow entry (if any) only
 * learns the TCP state; a missing one is created so a flow picked up mid-way stays pinned. */
PATH enum l4_verdict reply(struct l4_ctx *ctx, const struct l4_tables *t, struct l4_pkt *p, uint32_t bk_slot,
                           uint32_t *len, struct l4_trace_note *note) {
  if (to_probe_source(t, p)) return probe_answer(ctx, p, bk_slot, len, note);
  const struct l4_backend *bk = &t->backends[bk_slot];
  const struct l4_service *s = &t->services[bk->service];
  NOTE(note->rec.dir = L4_TD_REPLY, note->rec.service = bk->service, note->rec.backend = bk_slot,
       l4_trace_note_client(note, p->family, p->daddr, p->dport));
  struct l4_flow_key key;
  l4_flow_key_set(&key, p->family, p->proto, p->daddr, p->dport, s->vip, s->port);
  uint64_t hash = l4_flow_hash(&t->hash_key, &key);
  struct l4_flow_ref ref;
  bool is_tcp = p->proto == IPPROTO_TCP_;
  bool rst = is_tcp && (p->tcp_flags & TCP_RST);
  if (l4_flow_lookup(ctx->flows, &key, hash, &t->timeouts, ctx->now, &ref)) {
    /* A backend's RST counts against it (passive health) only on a live flow: one answering a late packet of
     * a connection already closed (both FINs seen, or reset) is the normal end of TCP, not a fault. */
    if (rst && ref.backend == bk_slot && !l4_flow_state_closed(ref.state))
      l4_ctr_backend(ctx, bk_slot)[L4_O_RESETS]++;
    NOTE(note->rec.flow = ref.backend == bk_slot ? L4_TF_HIT : L4_TF_OTHER_BACKEND);
    if (ref.backend == bk_slot) {
      uint8_t set = FL_REPLY, clear = 0;
      if (!(ref.state & FL_REPLY)) l4_ctr_backend(ctx, bk_slot)[L4_O_ANSWERED]++;
      if (is_tcp) {
        set |= tcp_state_bits(p->tcp_flags, 0);
        if (!(p->tcp_flags & TCP_RST)) clear = FL_RST;
      }
      l4_flow_touch(ctx->flows, &ref, set, clear, ctx->now);
      if (__builtin_expect(ctx->sync != NULL, 0)) sync_note(ctx, t, s, &key, hash, &ref, bk->service, set, clear);
    } else if (__builtin_expect(ctx->sync != NULL, 0) && rst &&
               sync_other_reset(ctx, t, s, &key, hash, &ref, bk_slot, bk->service)) {
      NOTE(note->rec.flow = L4_TF_SECOND_CHANCE, note->rec.backend = ref.backend);
      return drop(ctx, L4_DROP_SECOND_CHANCE);
    }
  } else if (rst && l4_pick_backend(t, s, &key, hash) == bk_slot) {
    /* Second chance: a flow we have no entry for (it was decided on another host, or before a restart) went by
     * the current ring to this backend, which does not know it. If the ring before the service's last change
     * chose another backend that still takes flows, the flow most likely began before the change: pin it
     * there and swallow the reset, so the client's next packet (its retransmission) reaches the backend that
     * has the connection. Were we wrong, that backend resets it in turn, through the entry, and the client
     * sees it.
     * Anyone can make a backend send such a reset (a spoofed ACK), so the entry is a guess, not a flow: it
     * starts with no state bits (half-open: SYN timeout, evicted before established flows) and becomes
     * established only once the pinned backend has answered through it and the client acknowledged
     * (forward()); it passes the service's new-flow rate limit like a SYN's; and a target out of the current
     * ring (drained: weight 0) or down gets none, so such entries cannot hold a drain open. */
    uint32_t prev = l4_pick_previous(t, s, &key, hash);
    if (l4_second_chance_target(t, prev, bk_slot, bk->service) && new_flow_allowed(ctx, t, s, &key, bk->service)) {
      enum l4_flow_insert_result r =
          l4_flow_insert(ctx->flows, &key, hash, prev, bk->service, 0, &t->timeouts, ctx->now, false, &ref);
      if (r == FLOW_INSERTED || r == FLOW_INSERTED_EVICTED) {
        if (r == FLOW_INSERTED_EVICTED) ctx->counters[L4_Q_FLOW_EVICTED]++;
        NOTE(note->rec.flow = L4_TF_SECOND_CHANCE, note->rec.backend = prev,
             note->rec.ring_slot = ring_index(t, s, &key, hash));
        return drop(ctx, L4_DROP_SECOND_CHANCE);
      }
    }
  } else if (!rst && l4_pick_backend(t, s, &key, hash) == bk_slot) {
    /* Picked up only where the ring would send the flow anyway: a backend taken out of the ring (down,
     * drained, its flows deleted to reset them) must not win its flows back by answering first.
     * The entry starts unconfirmed (FL_REPLY without FL_EST: half-open, SYN timeout, evicted before
     * established flows) and becomes established with the client's next packet through it (forward()). A
     * backend's address can be spoofed wherever the TUN's routes reach past the backends; were picked-up
     * entries established at once, a flood of such packets would displace real idle flows. A SYN-ACK without
     * an entry answers a SYN whose entry was evicted (a SYN flood the backend answers): half-open as well. */
    uint8_t state = FL_REPLY;
    if (is_tcp) state |= (uint8_t)(((p->tcp_flags & TCP_SYN) ? FL_SYN : 0) | tcp_state_bits(p->tcp_flags, 0));
    enum l4_flow_insert_result r =
        l4_flow_insert(ctx->flows, &key, hash, bk_slot, bk->service, state, &t->timeouts, ctx->now, false, &ref);
    if (r == FLOW_INSERTED || r == FLOW_INSERTED_EVICTED) {
      ctx->counters[L4_Q_FLOW_PICKUP]++;
      /* A flow that moved from another host (or outlived a restart): the ring agrees with it now, but if it changes
       * before the client's packets and this backend's replies meet on one host (replies return by ECMP), only
       * this entry knows the flow's backend. Its peers learn it (half-open, as here). */
      if (__builtin_expect(ctx->sync != NULL, 0)) sync_log_add(ctx, &key, &ref, bk->service, state);
    }
    NOTE(note->rec.flow = r == FLOW_INSERT_FAILED ? L4_TF_INSERT_FAILED : r == FLOW_EXISTS ? L4_TF_RACED : L4_TF_PICKUP);
    if (r == FLOW_INSERTED_EVICTED) ctx->counters[L4_Q_FLOW_EVICTED]++;
    if (r == FLOW_INSERT_FAILED) ctx->counters[L4_Q_FLOW_INSERT_FAILED]++;
  }
  rewrite_addr(p, p->saddr, s->vip, p->l4_len);
  rewrite_port(p, p->l4, s->port, p->l4_len);
  ctx->counters[L4_Q_REPLY]++;
  count_obj(l4_ctr_service(ctx, bk->service), p->l3_len, 0);
  count_obj(l4_ctr_backend(ctx, bk_slot), p->l3_len, 0);
  return L4_VERDICT_TX;
}

static bool is_icmp_error(uint8_t family, uint8_t type) {
  if (family == 4) return type == 3 || type == 11 || type == 12; /* unreachable, time exceeded, parameter problem */
  return type >= 1 && type <= 4; /* unreachable, packet too big, time exceeded, parameter problem */
}

static void icmp_recompute(struct l4_pkt *p) {
  uint8_t *ck = p->l4 + ICMP_OFF_CSUM;
  store_u16(ck, 0);
  uint32_t sum = p->family == 6 ? csum_pseudo(p->saddr, p->daddr, 16, IPPROTO_ICMPV6_, p->l4_len) : 0;
  store_u16(ck, csum_finish(csum_add_buf(sum, p->l4, p->l4_len)));
}

/* Is `addr` (of p's family) one of this host's own addresses? */
static bool is_local_addr(const struct l4_tables *t, const struct l4_pkt *p, const uint8_t *addr) {
  struct l4_addr_key k;
  l4_addr_key_set(&k, addr, p->family, 0, 0);
  return l4_addr_map_get(&t->local_map, &k) != L4_NO_BACKEND;
}

/* ICMP errors about a translated flow get their outer and quoted headers translated, so that path-MTU
 * discovery and unreachables work through l4nat. The quote is the packet as the complaining node saw it. */
PATH enum l4_verdict icmp_error(struct l4_ctx *ctx, const struct l4_tables *t, struct l4_pkt *p,
                                struct l4_trace_note *note) {
  if (t->options & L4_OPT_NO_ICMP_TRANSLATE) return drop(ctx, L4_DROP_ICMP_UNHANDLED);
  struct l4_pkt q;
  if (!l4_parse_quoted(p->l4 + 8, p->l4_len - 8, p->family, &q)) return drop(ctx, L4_DROP_ICMP_NOT_OURS);
  if (q.proto != IPPROTO_TCP_ && q.proto != IPPROTO_UDP_) return drop(ctx, L4_DROP_ICMP_NOT_OURS);
  int n = p->addr_len;
  struct l4_addr_key k;

  /* A: about a reply we sent (VIP:port -> client); the error comes back to the VIP. Steer it to the
   * flow's backend and make the quote read backend:port -> client, as the backend sent it. */
  l4_addr_key_set(&k, q.saddr, q.family, q.sport, q.proto);
  uint32_t svc = l4_addr_map_get(&t->svc_map, &k);
  if (svc != L4_NO_BACKEND && memcmp(p->daddr, q.saddr, (size_t)n) == 0) {
    const struct l4_service *s = &t->services[svc];
    NOTE(note->rec.dir = L4_TD_ICMP_TO_BACKEND, note->rec.service = svc,
         l4_trace_note_client(note, q.family, q.daddr, q.dport));
    struct l4_flow_key key;
    l4_flow_key_set(&key, q.family, q.proto, q.daddr, q.dport, q.saddr, q.sport);
    uint64_t hash = l4_flow_hash(&t->hash_key, &key);
    struct l4_flow_ref ref;
    uint32_t b;
    if (l4_flow_lookup(ctx->flows, &key, hash, &t->timeouts, ctx->now, &ref) && l4_backend_valid(t, ref.backend, svc))
      b = ref.backend;
    else
      b = l4_pick_backend(t, s, &key, hash);
    NOTE(note->rec.backend = b);
    if (b == L4_NO_BACKEND) return drop(ctx, L4_DROP_NO_BACKEND);
    const struct l4_backend *bk = &t->backends[b];
    rewrite_addr(&q, q.saddr, bk->addr, q.l4_len);
    rewrite_port(&q, q.l4, bk->port, q.l4_len);
    rewrite_addr(p, p->daddr, bk->addr, 0);
    /* Sent by this host itself (its own link or route to the client is narrower than what we wrote): its
     * source is one of the host's addresses, and the kernel takes the translated error coming back from the
     * TUN for a martian and drops it (IPv4: fib_validate_source, a local source on a device without
     * addresses; IPv6 does not forward a link-local source). The VIP is the one address of this host the
     * kernel accepts from the TUN, so the error speaks as the VIP. The backend loses nothing: Linux finds the
     * socket and the new path MTU in the quote, not in the outer source. Errors from other hosts (a router
     * further on) keep their source, which is routable and names who complained. */
    if (is_local_addr(t, p, p->saddr)) rewrite_addr(p, p->saddr, s->vip, 0);
  } else {
    /* B: about a packet we forwarded (client -> backend:port); the error goes to the client. Make the quote
     * read client -> VIP:port, and if the backend itself complains, let it speak as the VIP. */
    l4_addr_key_set(&k, q.daddr, q.family, q.dport, q.proto);
    uint32_t b = l4_addr_map_get(&t->rev_map, &k);
    if (b == L4_NO_BACKEND || memcmp(p->daddr, q.saddr, (size_t)n) != 0) return drop(ctx, L4_DROP_ICMP_NOT_OURS);
    const struct l4_backend *bk = &t->backends[b];
    const struct l4_service *s = &t->services[bk->service];
    NOTE(note->rec.dir = L4_TD_ICMP_TO_CLIENT, note->rec.service = bk->service, note->rec.backend = b,
         l4_trace_note_client(note, q.family, q.saddr, q.sport));
    rewrite_addr(&q, q.daddr, s->vip, q.l4_len);
    rewrite_port(&q, q.l4 + 2, s->port, q.l4_len);
    if (memcmp(p->saddr, bk->addr, (size_t)n) == 0) rewrite_addr(p, p->saddr, s->vip, 0);
  }
  icmp_recompute(p);
  ctx->counters[L4_Q_ICMP_TRANSLATED]++;
  return L4_VERDICT_TX;
}

/* Echo request to a VIP: answer it in place (swap addresses; the checksums' sums do not change with the
 * swap, only with the type and the TTL). */
static enum l4_verdict echo_reply(struct l4_ctx *ctx, struct l4_pkt *p) {
  uint8_t tmp[16];
  int n = p->addr_len;
  memcpy(tmp, p->saddr, (size_t)n);
  memcpy(p->saddr, p->daddr, (size_t)n);
  memcpy(p->daddr, tmp, (size_t)n);
  p->l4[0] = p->family == 4 ? 0 : 129;
  /* Recomputed, not updated: an echo whose data is all zero has checksum 0xffff, which the incremental
   * update (RFC 1624 eqn. 3) would give as 0x0000 (no pseudo-header makes the sum non-zero for ICMPv4). */
  icmp_recompute(p);
  if (p->family == 4) {
    uint8_t old[2] = {p->l3[IP4_OFF_TTL], p->l3[IP4_OFF_TTL + 1]};
    p->l3[IP4_OFF_TTL] = 64;
    uint8_t *ipck = p->l3 + IP4_OFF_CSUM;
    store_u16(ipck, csum_replace(load_u16(ipck), old, p->l3 + IP4_OFF_TTL, 2));
  } else {
    p->l3[IP6_OFF_HOPLIMIT] = 64;
  }
  ctx->counters[L4_Q_ICMP_ECHO_REPLIED]++;
  return L4_VERDICT_TX;
}

PATH enum l4_verdict icmp(struct l4_ctx *ctx, const struct l4_tables *t, struct l4_pkt *p, struct l4_trace_note *note) {
  uint8_t type = p->l4[0];
  if (is_icmp_error(p->family, type)) return icmp_error(ctx, t, p, note);
  uint8_t echo_request = p->family == 4 ? 8 : 128;
  struct l4_addr_key k;
  l4_addr_key_set(&k, p->daddr, p->family, 0, 0);
  if (type == echo_request && (t->options & L4_OPT_ICMP_ECHO) && l4_addr_map_get(&t->vip_map, &k) != L4_NO_BACKEND) {
    NOTE(note->rec.dir = L4_TD_ECHO);
    return echo_reply(ctx, p);
  }
  return drop(ctx, L4_DROP_ICMP_UNHANDLED);
}

PATH enum l4_verdict process(struct l4_ctx *ctx, const struct l4_tables *t, uint8_t *buf, uint32_t *len,
                             struct l4_trace_note *note) {
  struct l4_pkt p;
  ctx->last_drop = L4_DROP_NONE;
  ctx->counters[L4_Q_RX_PACKETS]++;
  ctx->counters[L4_Q_RX_BYTES] += *len;
  enum l4_drop_reason r = l4_parse(buf, *len, &p);
  if (r != L4_DROP_NONE) return drop(ctx, r);
  /* Trailing bytes past the IP length (if any) are not part of the packet. */
  *len = VNET_HDR_LEN + p.l3_len;
  if (p.gso_type != VNET_GSO_NONE) ctx->counters[L4_Q_GSO_PACKETS]++;
  NOTE(l4_trace_note_before(note, &p));

  enum l4_verdict v;
  if (p.proto == IPPROTO_TCP_ || p.proto == IPPROTO_UDP_) {
    struct l4_addr_key k;
    l4_addr_key_set(&k, p.daddr, p.family, p.dport, p.proto);
    uint32_t svc = l4_addr_map_get(&t->svc_map, &k);
    if (svc != L4_NO_BACKEND) {
      v = forward(ctx, t, &p, svc, len, note);
    } else {
      l4_addr_key_set(&k, p.saddr, p.family, p.sport, p.proto);
      uint32_t b = l4_addr_map_get(&t->rev_map, &k);
      if (b != L4_NO_BACKEND) {
        v = reply(ctx, t, &p, b, len, note);
      } else {
        l4_addr_key_set(&k, p.daddr, p.family, 0, 0);
        v = drop(ctx, l4_addr_map_get(&t->vip_map, &k) != L4_NO_BACKEND ? L4_DROP_VIP_PORT_UNKNOWN : L4_DROP_NOT_SERVICE);
      }
    }
  } else {
    v = icmp(ctx, t, &p, note);
  }
  if (v == L4_VERDICT_TX) {
    ctx->counters[L4_Q_TX_PACKETS]++;
    ctx->counters[L4_Q_TX_BYTES] += *len;
    NOTE(l4_trace_note_after(note, &p));
  }
  return v;
}

/* The traced packet path: out of line, so the untraced one stays as it was. */
static __attribute__((noinline)) enum l4_verdict process_traced(struct l4_ctx *ctx, const struct l4_tables *t,
                                                                 uint8_t *buf, uint32_t *len) {
  struct l4_trace_note n;
  l4_trace_note_init(&n);
  enum l4_verdict v = process(ctx, t, buf, len, &n);
  l4_trace_packet(ctx->trace, t, &n, v, ctx->last_drop);
  return v;
}

enum l4_verdict l4_process(struct l4_ctx *ctx, const struct l4_tables *t, uint8_t *buf, uint32_t *len) {
  /* Tracing off: this one branch, and the copy of the path with no trace code. */
  if (__builtin_expect(ctx->trace != NULL, 0)) return process_traced(ctx, t, buf, len);
  return process(ctx, t, buf, len, NULL);
}
