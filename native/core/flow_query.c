/* Flow-table queries; see flow_query.h. */
#include "flow_query.h"

#include <string.h>

#include "decide.h"
#include "packet.h"

enum l4_flow_class l4_flow_class_of(uint8_t proto, uint8_t state) {
  if (proto != IPPROTO_TCP_) return L4_FC_UDP;
  if (l4_flow_state_closed(state)) return L4_FC_CLOSE;
  if (state & (FL_FIN_C | FL_FIN_B)) return L4_FC_FIN_WAIT;
  if (state & FL_EST) return L4_FC_ESTABLISHED;
  return state & FL_REPLY ? L4_FC_SYN_RECV : L4_FC_SYN_SENT;
}

bool l4_flow_filter_match(const struct l4_flow_filter *f, const struct l4_flow_view *v) {
  if (f->backend != L4_NO_BACKEND && v->backend != f->backend) return false;
  if (f->service != L4_NO_BACKEND && v->svc != f->service) return false;
  if (f->client && memcmp(f->client, v->key.client, sizeof(v->key.client)) != 0) return false;
  if (f->classes && !(f->classes & (1u << l4_flow_class_of(v->key.proto, v->state)))) return false;
  return true;
}

struct select {
  const struct l4_flow_query *q;
  uint32_t taken;
  void (*take)(const struct l4_flow_view *v, void *arg);
  void *arg;
};

static int select_visit(const struct l4_flow_view *v, void *arg) {
  struct select *s = arg;
  if (!l4_flow_filter_match(&s->q->filter, v)) return 0;
  s->take(v, s->arg);
  return ++s->taken == s->q->limit;
}

uint64_t l4_flow_select(struct l4_flow_table *ft, const struct l4_flow_timeouts *to, uint32_t now,
                        const struct l4_flow_query *q, void (*take)(const struct l4_flow_view *v, void *arg),
                        void *arg) {
  struct select s = {q, 0, take, arg};
  return l4_flow_walk(ft, to, now, q->start, q->max_scan, select_visit, &s);
}

struct removal {
  const struct l4_flow_query *q;
  struct l4_flow_table *ft;
  uint32_t now;
  uint32_t removed;
};

static int remove_visit(const struct l4_flow_view *v, void *arg) {
  struct removal *r = arg;
  if (!l4_flow_filter_match(&r->q->filter, v) || !l4_flow_remove(r->ft, v, r->now)) return 0;
  return ++r->removed == r->q->limit;
}

uint64_t l4_flow_remove_matching(struct l4_flow_table *ft, const struct l4_flow_timeouts *to, uint32_t now,
                                 const struct l4_flow_query *q, uint32_t *removed) {
  struct removal r = {q, ft, now, 0};
  uint64_t next = l4_flow_walk(ft, to, now, q->start, q->max_scan, remove_visit, &r);
  *removed = r.removed;
  return next;
}

void l4_flow_stats_add(struct l4_flow_stats *st, const struct l4_flow_view *v) {
  st->total++;
  if (l4_flow_class_of(v->key.proto, v->state) == L4_FC_CLOSE) {
    st->closed++;
    return;
  }
  if (v->backend < st->nbackends) st->backends[v->backend]++;
  if (v->svc < st->nservices) st->services[v->svc]++;
}

static int stats_visit(const struct l4_flow_view *v, void *arg) {
  l4_flow_stats_add(arg, v);
  return 0;
}

uint64_t l4_flow_stats_page(struct l4_flow_table *ft, const struct l4_flow_timeouts *to, uint32_t now,
                            uint64_t start, uint64_t max_scan, struct l4_flow_stats *st) {
  return l4_flow_walk(ft, to, now, start, max_scan, stats_visit, st);
}

static int moves_visit(const struct l4_flow_view *v, void *arg) {
  struct l4_flow_moves *m = arg;
  if (v->svc >= m->nservices || v->backend >= m->nbackends) return 0;
  const struct l4_ring_candidate *c = &m->services[v->svc];
  if (!c->ring || l4_flow_class_of(v->key.proto, v->state) == L4_FC_CLOSE) return 0;
  uint32_t pick = L4_NO_BACKEND;
  if (c->size) pick = c->ring[l4_ring_slot(m->hash_key, c->hash_mode, &v->key, l4_flow_hash(m->hash_key, &v->key), c->size)];
  if (pick == v->backend) m->kept[v->backend]++;
  else m->moved[v->backend]++;
  return 0;
}

uint64_t l4_flow_moves_page(struct l4_flow_table *ft, const struct l4_flow_timeouts *to, uint32_t now,
                            uint64_t start, uint64_t max_scan, struct l4_flow_moves *m) {
  return l4_flow_walk(ft, to, now, start, max_scan, moves_visit, m);
}
