/* The verdict trace; see trace.h. Only the traced path calls into here. */
#include "trace.h"

#include <string.h>

#include "csum.h"

void l4_trace_note_init(struct l4_trace_note *n) {
  memset(n, 0, sizeof(*n));
  n->rec.service = n->rec.backend = n->rec.ring_slot = L4_NO_BACKEND;
}

/* Bytes after the TCP or UDP header. */
static uint32_t payload_len(const struct l4_pkt *p) {
  uint32_t h = 0;
  if (p->proto == IPPROTO_TCP_ && p->l4_len >= 20) h = (uint32_t)(p->l4[12] >> 4) * 4u;
  else if (p->proto == IPPROTO_UDP_) h = 8;
  else return 0;
  return p->l4_len > h ? p->l4_len - h : 0;
}

static bool has_ports(const struct l4_pkt *p) { return p->proto == IPPROTO_TCP_ || p->proto == IPPROTO_UDP_; }

void l4_trace_note_before(struct l4_trace_note *n, const struct l4_pkt *p) {
  struct l4_trace_rec *r = &n->rec;
  n->parsed = true;
  r->family = p->family;
  r->proto = p->proto;
  r->ip_len = p->l3_len;
  memcpy(r->saddr, p->saddr, p->addr_len);
  memcpy(r->daddr, p->daddr, p->addr_len);
  if (has_ports(p)) {
    r->sport = load_be16(p->l4 + L4_OFF_SPORT);
    r->dport = load_be16(p->l4 + L4_OFF_DPORT);
    r->payload_len = payload_len(p);
  } else {
    r->icmp_type = p->l4[0];
  }
  if (p->proto == IPPROTO_TCP_) {
    r->tcp_flags = p->tcp_flags;
    r->seq = load_be32(p->l4 + 4);
    r->ack = load_be32(p->l4 + 8);
  }
  uint16_t gso_size;
  memcpy(&gso_size, p->vnet + VNET_OFF_GSO_SIZE, 2);
  r->gso_type = p->gso_type;
  r->gso_size = p->gso_type == VNET_GSO_NONE ? 0 : gso_size;
  /* Until a decision point says otherwise, the client is the source. */
  n->client_family = p->family;
  memcpy(n->client, p->saddr, p->addr_len);
  n->cport = r->sport;
}

void l4_trace_note_client(struct l4_trace_note *n, uint8_t family, const uint8_t *addr, uint16_t port_be) {
  n->client_family = family;
  memset(n->client, 0, sizeof(n->client));
  memcpy(n->client, addr, family == 4 ? 4 : 16);
  n->cport = load_be16((const uint8_t *)&port_be);
}

void l4_trace_note_after(struct l4_trace_note *n, const struct l4_pkt *p) {
  struct l4_trace_rec *r = &n->rec;
  memcpy(r->out_saddr, p->saddr, p->addr_len);
  memcpy(r->out_daddr, p->daddr, p->addr_len);
  if (has_ports(p)) {
    r->out_sport = load_be16(p->l4 + L4_OFF_SPORT);
    r->out_dport = load_be16(p->l4 + L4_OFF_DPORT);
  }
}

static bool same_addr(uint8_t family, const uint8_t *a, uint8_t fb, const uint8_t *b) {
  return family == fb && memcmp(a, b, family == 4 ? 4 : 16) == 0;
}

static bool takes(const struct l4_trace_match *m, const struct l4_tables *t, const struct l4_trace_note *n) {
  const struct l4_trace_rec *r = &n->rec;
  uint32_t f = m->flags;
  if (!(f & L4_TM_ACTIVE)) return false;
  if ((f & L4_TM_DROPS) && r->verdict != 0) return false;
  if (f & (L4_TM_CLIENT | L4_TM_CLIENT_PORT)) {
    if (!n->parsed) return false;
    if ((f & L4_TM_CLIENT) && !same_addr(n->client_family, n->client, m->client_family, m->client)) return false;
    if ((f & L4_TM_CLIENT_PORT) && n->cport != m->cport) return false;
  }
  if (f & L4_TM_SERVICE) {
    if (r->service >= t->max_services) return false;
    const struct l4_service *s = &t->services[r->service];
    if (s->proto != m->svc_proto || load_be16((const uint8_t *)&s->port) != m->vport ||
        !same_addr(s->family, s->vip, m->svc_family, m->vip))
      return false;
  }
  if (f & L4_TM_BACKEND) {
    if (r->backend >= t->max_backends) return false;
    const struct l4_backend *b = &t->backends[r->backend];
    if (load_be16((const uint8_t *)&b->port) != m->bport || !same_addr(b->family, b->addr, m->bk_family, m->backend))
      return false;
  }
  return true;
}

uint32_t l4_trace_match(const struct l4_trace *tr, const struct l4_tables *t, const struct l4_trace_note *n) {
  uint32_t mask = 0;
  for (uint32_t i = 0; i < L4_TRACE_MATCHES; i++)
    if (takes(&tr->match[i], t, n)) mask |= 1u << i;
  return mask;
}

void l4_trace_packet(struct l4_trace *tr, const struct l4_tables *t, struct l4_trace_note *n, int verdict,
                     enum l4_drop_reason reason) {
  struct l4_trace_rec *r = &n->rec;
  r->verdict = (uint8_t)verdict;
  r->drop_reason = (uint8_t)reason;
  if (!verdict) { /* dropped: nothing was written, "after" is the packet as read */
    memcpy(r->out_saddr, r->saddr, 16);
    memcpy(r->out_daddr, r->daddr, 16);
    r->out_sport = r->sport;
    r->out_dport = r->dport;
  }
  uint32_t mask = l4_trace_match(tr, t, n);
  if (!mask) return;
  r->match_mask = (uint8_t)mask;
  r->queue = tr->queue;
  r->time_ns = tr->clock_ns ? tr->clock_ns() : 0;
  struct l4_trace_ring *ring = tr->ring;
  uint64_t h = atomic_load_explicit(&ring->head, memory_order_relaxed);
  uint64_t tail = atomic_load_explicit(&ring->tail, memory_order_acquire);
  if (h - tail >= L4_TRACE_RING_RECORDS) {
    atomic_fetch_add_explicit(&ring->dropped, 1, memory_order_relaxed);
    return;
  }
  ring->rec[h & (L4_TRACE_RING_RECORDS - 1)] = *r;
  atomic_store_explicit(&ring->head, h + 1, memory_order_release);
}

uint32_t l4_trace_ring_pending(struct l4_trace_ring *r) {
  return (uint32_t)(atomic_load_explicit(&r->head, memory_order_acquire) -
                    atomic_load_explicit(&r->tail, memory_order_relaxed));
}

uint32_t l4_trace_ring_read(struct l4_trace_ring *r, struct l4_trace_rec *out, uint32_t max) {
  uint64_t tail = atomic_load_explicit(&r->tail, memory_order_relaxed);
  uint64_t h = atomic_load_explicit(&r->head, memory_order_acquire);
  uint32_t n = 0;
  for (; tail + n < h && n < max; n++) out[n] = r->rec[(tail + n) & (L4_TRACE_RING_RECORDS - 1)];
  atomic_store_explicit(&r->tail, tail + n, memory_order_release);
  return n;
}
