/* The addon's flow-table functions: listing, deleting, counting, sweeping and explaining flows, and the flow moves a
 * planned ring would cause (flows.c, core/flow_query.h, core/explain.h). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "addon.h"
#include "core/layout.h"
#include "flows.h"

/* flowCount(handle) -> live entries (walks the table; for tests and the admin view, not per packet) */
static napi_value js_flow_count(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], v;
  struct handle *h = handle_args(env, info, &argc, argv);
  if (!h) return NULL;
  CHECK(napi_create_double(env, (double)l4_dp_flow_count(&h->dp), &v));
  return v;
}

/* {cursor?: entry index 0..capacity, maxScan?: entries >= 1} into *start and *max_scan (default: the whole
 * table); false if either is bad. */
static bool get_range(napi_env env, napi_value o, uint64_t capacity, uint64_t *start, uint64_t *max_scan) {
  double cursor = 0, scan = (double)capacity;
  napi_value v;
  if (has_prop(env, o, "cursor") &&
      (napi_get_named_property(env, o, "cursor", &v) != napi_ok || napi_get_value_double(env, v, &cursor) != napi_ok ||
       !(cursor >= 0 && cursor <= (double)capacity)))
    return false;
  if (has_prop(env, o, "maxScan") &&
      (napi_get_named_property(env, o, "maxScan", &v) != napi_ok || napi_get_value_double(env, v, &scan) != napi_ok || !(scan >= 1)))
    return false;
  *start = (uint64_t)cursor;
  *max_scan = (uint64_t)scan;
  return true;
}

/* A flow query for flows()/deleteFlows(): {backend?: slot, service?: slot, client?: Uint8Array(16),
 * states?: bits (1 << the layout's flowClasses), limit?: n > 0, cursor?, maxScan?}; every condition must hold. */
static bool get_flow_query(napi_env env, size_t argc, napi_value *argv, uint64_t capacity, struct l4_flow_query *q) {
  *q = (struct l4_flow_query){L4_FLOW_FILTER_ANY, 0, capacity, 0};
  if (argc < 2) return true;
  napi_value o = argv[1];
  struct l4_flow_filter *f = &q->filter;
  if (has_prop(env, o, "backend") && get_u32(env, o, "backend", &f->backend)) return false;
  if (has_prop(env, o, "service") && get_u32(env, o, "service", &f->service)) return false;
  if (has_prop(env, o, "states") && (get_u32(env, o, "states", &f->classes) || f->classes >> L4_FC_MAX)) return false;
  if (has_prop(env, o, "limit") && (get_u32(env, o, "limit", &q->limit) || q->limit == 0)) return false;
  if (has_prop(env, o, "client")) {
    void *p;
    size_t n;
    if (get_typed(env, o, "client", napi_uint8_array, &p, &n) || n != 16) return false;
    f->client = p;
  }
  return get_range(env, o, capacity, &q->start, &q->max_scan);
}

static napi_value bad_flow_query(napi_env env) {
  napi_throw_type_error(env, "EINVAL",
                        "l4nat addon: flow filter is {backend?: slot, service?: slot, client?: Uint8Array(16), states?: flowClasses bits, "
                        "limit?: number > 0, cursor?: number (0..capacity), maxScan?: number >= 1}");
  return NULL;
}

/* next: the cursor to continue from, or null at the end. */
static napi_value set_next(napi_env env, napi_value res, uint64_t next, uint64_t capacity) {
  napi_value v;
  if (next >= capacity) CHECK(napi_get_null(env, &v));
  else CHECK(napi_create_double(env, (double)next, &v));
  CHECK(napi_set_named_property(env, res, "next", v));
  return res;
}

static void set_u32(napi_env env, napi_value o, const char *name, uint32_t x) {
  napi_value v;
  napi_create_uint32(env, x, &v);
  napi_set_named_property(env, o, name, v);
}

static void set_bytes(napi_env env, napi_value o, const char *name, const uint8_t *b, size_t n) {
  napi_value ab, arr;
  void *data;
  napi_create_arraybuffer(env, n, &data, &ab);
  memcpy(data, b, n);
  napi_create_typedarray(env, napi_uint8_array, n, ab, 0, &arr);
  napi_set_named_property(env, o, name, arr);
}

struct flow_list {
  napi_env env;
  napi_value out;
  uint32_t n;
};

/* One listed entry as {client, vip, cport, vport, proto, backend, service, state, stateClass, idle, age}. */
static void list_flow(const struct l4_flow_view *v, void *arg) {
  struct flow_list *l = arg;
  napi_value o;
  napi_create_object(l->env, &o);
  size_t n = v->key.family == 4 ? 4 : 16;
  set_bytes(l->env, o, "client", v->key.client, n);
  set_bytes(l->env, o, "vip", v->key.vip, n);
  set_u32(l->env, o, "cport", (uint32_t)((v->key.cport >> 8) | ((v->key.cport & 0xff) << 8)));
  set_u32(l->env, o, "vport", (uint32_t)((v->key.vport >> 8) | ((v->key.vport & 0xff) << 8)));
  set_u32(l->env, o, "proto", v->key.proto);
  set_u32(l->env, o, "backend", v->backend);
  set_u32(l->env, o, "service", v->svc);
  set_u32(l->env, o, "state", v->state);
  set_u32(l->env, o, "stateClass", l4_flow_class_of(v->key.proto, v->state));
  set_u32(l->env, o, "idle", v->idle);
  set_u32(l->env, o, "age", v->age);
  set_u32(l->env, o, "learned", v->learned);
  napi_set_element(l->env, l->out, l->n++, o);
}

/* flows(handle, query) -> {flows: [entry], next} */
static napi_value js_flows(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2], res;
  struct handle *h = handle_args(env, info, &argc, argv);
  if (!h) return NULL;
  struct l4_flow_query q;
  if (!get_flow_query(env, argc, argv, h->dp.flows.capacity, &q)) return bad_flow_query(env);
  struct flow_list l = {env, NULL, 0};
  CHECK(napi_create_array(env, &l.out));
  uint64_t next = l4_dp_flows(&h->dp, &q, list_flow, &l);
  CHECK(napi_create_object(env, &res));
  CHECK(napi_set_named_property(env, res, "flows", l.out));
  return set_next(env, res, next, h->dp.flows.capacity);
}

/* deleteFlows(handle, query) -> {deleted, next} */
static napi_value js_delete_flows(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2], res, v;
  struct handle *h = handle_args(env, info, &argc, argv);
  if (!h) return NULL;
  struct l4_flow_query q;
  if (!get_flow_query(env, argc, argv, h->dp.flows.capacity, &q)) return bad_flow_query(env);
  uint32_t deleted = 0;
  uint64_t next = l4_dp_delete_flows(&h->dp, &q, &deleted);
  CHECK(napi_create_object(env, &res));
  CHECK(napi_create_uint32(env, deleted, &v));
  CHECK(napi_set_named_property(env, res, "deleted", v));
  return set_next(env, res, next, h->dp.flows.capacity);
}

/* A zeroed Uint32Array(n) set as o[name]; its memory in *data. */
static napi_status zeroed_u32_array(napi_env env, napi_value o, const char *name, uint32_t n, uint32_t **data) {
  napi_value ab, arr;
  void *p;
  napi_status r = napi_create_arraybuffer(env, sizeof(uint32_t) * n, &p, &ab);
  if (r != napi_ok) return r;
  memset(p, 0, sizeof(uint32_t) * n);
  *data = p;
  r = napi_create_typedarray(env, napi_uint32_array, n, ab, 0, &arr);
  return r != napi_ok ? r : napi_set_named_property(env, o, name, arr);
}

/* flowStats(handle, {cursor?, maxScan?}) -> {total, closed, backends: Uint32Array(maxBackends),
 * services: Uint32Array(maxServices), next}: the counts of entries cursor .. cursor + maxScan (default: the
 * whole table); next = where to go on, null at the end. src/dataplane/native.ts adds the pages up. */
/* (handle, {cursor?, maxScan?}): the handle and the page, the whole table by default; NULL after throwing. */
static struct handle *page_args(napi_env env, napi_callback_info info, const char *usage, uint64_t *start, uint64_t *max_scan) {
  size_t argc = 2;
  napi_value argv[2];
  struct handle *h = handle_args(env, info, &argc, argv);
  if (!h) return NULL;
  *start = 0;
  *max_scan = h->dp.flows.capacity;
  if (argc >= 2 && !get_range(env, argv[1], h->dp.flows.capacity, start, max_scan)) {
    napi_throw_type_error(env, "EINVAL", usage);
    return NULL;
  }
  return h;
}

static napi_value js_flow_stats(napi_env env, napi_callback_info info) {
  napi_value res, v;
  uint64_t start, max_scan;
  struct handle *h = page_args(env, info, "l4nat addon: flowStats(handle, {cursor?: number (0..capacity), maxScan?: number >= 1})", &start, &max_scan);
  if (!h) return NULL;
  struct l4_flow_stats st = {NULL, h->dp.cfg.max_backends, NULL, h->dp.cfg.max_services, 0, 0};
  CHECK(napi_create_object(env, &res));
  CHECK(zeroed_u32_array(env, res, "backends", st.nbackends, &st.backends));
  CHECK(zeroed_u32_array(env, res, "services", st.nservices, &st.services));
  uint64_t next = l4_dp_flow_stats(&h->dp, start, max_scan, &st);
  CHECK(napi_create_double(env, (double)st.total, &v));
  CHECK(napi_set_named_property(env, res, "total", v));
  CHECK(napi_create_double(env, (double)st.closed, &v));
  CHECK(napi_set_named_property(env, res, "closed", v));
  return set_next(env, res, next, h->dp.flows.capacity);
}

/* sweepFlows(handle, {cursor?, maxScan?}) -> {freed, next}: frees entries cursor .. cursor + maxScan expired for
 * longer than the sweep's margin (l4_flow_sweep); next = where to go on, null at the end. */
static napi_value js_sweep_flows(napi_env env, napi_callback_info info) {
  napi_value res, v;
  uint64_t start, max_scan;
  struct handle *h = page_args(env, info, "l4nat addon: sweepFlows(handle, {cursor?: number (0..capacity), maxScan?: number >= 1})", &start, &max_scan);
  if (!h) return NULL;
  uint64_t freed = 0;
  uint64_t next = l4_dp_sweep(&h->dp, start, max_scan, &freed);
  CHECK(napi_create_object(env, &res));
  CHECK(napi_create_double(env, (double)freed, &v));
  CHECK(napi_set_named_property(env, res, "freed", v));
  return set_next(env, res, next, h->dp.flows.capacity);
}

/* A Float64Array(n) set as o[name]; its memory in *data. */
static napi_status f64_array(napi_env env, napi_value o, const char *name, uint32_t n, double **data) {
  napi_value ab, arr;
  void *p;
  napi_status r = napi_create_arraybuffer(env, sizeof(double) * (n ? n : 1), &p, &ab);
  if (r != napi_ok) return r;
  *data = p;
  r = napi_create_typedarray(env, napi_float64_array, n, ab, 0, &arr);
  return r != napi_ok ? r : napi_set_named_property(env, o, name, arr);
}

/* activeFlows(handle) -> {backends: Float64Array(maxBackends), services: Float64Array(maxServices)}: the active-flow
 * counts by slot (core/flow_table.h). */
static napi_value js_active_flows(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], res;
  struct handle *h = handle_args(env, info, &argc, argv);
  if (!h) return NULL;
  double *bk, *svc;
  CHECK(napi_create_object(env, &res));
  CHECK(f64_array(env, res, "backends", h->dp.cfg.max_backends, &bk));
  CHECK(f64_array(env, res, "services", h->dp.cfg.max_services, &svc));
  l4_dp_active_flows(&h->dp, bk, svc);
  return res;
}

/* explain(handle, {family: 4|6, proto: 6|17, client: Uint8Array(16), cport, vip: Uint8Array(16), vport, syn: 0|1})
 * -> Uint32Array(explainWords): l4_explain's result, its fields at the layout's explainFields. */
static napi_value js_explain(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2], ab, arr;
  struct handle *h = handle_args(env, info, &argc, argv);
  if (!h) return NULL;
  uint32_t family, proto, cport, vport, syn;
  void *client, *vip;
  size_t n1, n2;
  if (argc < 2 || get_u32(env, argv[1], "family", &family) || (family != 4 && family != 6) ||
      get_u32(env, argv[1], "proto", &proto) || (proto != 6 && proto != 17) ||
      get_typed(env, argv[1], "client", napi_uint8_array, &client, &n1) || n1 != 16 ||
      get_typed(env, argv[1], "vip", napi_uint8_array, &vip, &n2) || n2 != 16 || get_u32(env, argv[1], "cport", &cport) ||
      cport > 65535 || get_u32(env, argv[1], "vport", &vport) || vport > 65535 || get_u32(env, argv[1], "syn", &syn) || syn > 1) {
    napi_throw_type_error(env, "EINVAL", "l4nat addon: explain(handle, {family: 4|6, proto: 6|17, client: Uint8Array(16), cport: 0-65535, vip: Uint8Array(16), vport: 0-65535, syn: 0|1})");
    return NULL;
  }
  struct l4_explain_query q = {(uint8_t)family, (uint8_t)proto, {0}, {0}, (uint16_t)cport, (uint16_t)vport, (uint8_t)syn};
  memcpy(q.client, client, 16);
  memcpy(q.vip, vip, 16);
  void *data;
  CHECK(napi_create_arraybuffer(env, sizeof(struct l4_explain), &data, &ab));
  int r = l4_dp_explain(&h->dp, &q, data);
  if (r < 0) return throw_errno(env, -r, "explain", "explain (no table published yet)");
  CHECK(napi_create_typedarray(env, napi_uint32_array, L4_EXPLAIN_WORDS, ab, 0, &arr));
  return arr;
}

/* flowMoves(handle, {services: Uint32Array of moveWords rows, rings: Uint32Array, cursor?, maxScan?}) ->
 * {moved: Uint32Array(maxBackends), kept: Uint32Array(maxBackends), next}: l4_flow_moves_page over the entries
 * cursor .. cursor + maxScan; each row [service_slot, hash_mode, ring_offset, ring_size] gives a service's
 * planned ring as rings[ring_offset, +ring_size). */
static napi_value js_flow_moves(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2], res;
  struct handle *h = handle_args(env, info, &argc, argv);
  if (!h) return NULL;
  uint32_t *rows, *rings;
  size_t nrows = 0, nrings = 0;
  uint64_t start = 0, max_scan = h->dp.flows.capacity;
  bool ok = argc >= 2 && !get_typed(env, argv[1], "services", napi_uint32_array, (void **)&rows, &nrows) &&
            nrows % L4_MOVE_WORDS == 0 && !get_typed(env, argv[1], "rings", napi_uint32_array, (void **)&rings, &nrings) &&
            get_range(env, argv[1], h->dp.flows.capacity, &start, &max_scan);
  struct l4_ring_candidate *cand = ok ? calloc(h->dp.cfg.max_services, sizeof(*cand)) : NULL;
  for (size_t i = 0; cand && i < nrows / L4_MOVE_WORDS; i++) {
    const uint32_t *w = rows + i * L4_MOVE_WORDS;
    if (w[0] >= h->dp.cfg.max_services || w[1] > L4_HASH_SRC || (uint64_t)w[2] + w[3] > nrings) {
      ok = false;
      break;
    }
    static const uint32_t no_rings[1]; /* an empty Uint32Array may have no memory: a ring of size 0 is still asked */
    cand[w[0]] = (struct l4_ring_candidate){(rings ? rings : no_rings) + w[2], w[3], (uint8_t)w[1]};
  }
  if (!ok || !cand) {
    free(cand);
    if (ok) return throw_errno(env, ENOMEM, "calloc", "flowMoves");
    napi_throw_type_error(env, "EINVAL", "l4nat addon: flowMoves(handle, {services: Uint32Array of [service_slot < maxServices, hash_mode 0|1, ring_offset, ring_size] rows inside rings, rings: Uint32Array, cursor?: number (0..capacity), maxScan?: number >= 1})");
    return NULL;
  }
  struct l4_flow_moves m = {NULL, cand, h->dp.cfg.max_services, NULL, NULL, h->dp.cfg.max_backends};
  if (napi_create_object(env, &res) != napi_ok || zeroed_u32_array(env, res, "moved", m.nbackends, &m.moved) != napi_ok ||
      zeroed_u32_array(env, res, "kept", m.nbackends, &m.kept) != napi_ok) {
    free(cand);
    napi_throw_error(env, "EINTERNAL", "l4nat addon: flowMoves() failed");
    return NULL;
  }
  uint64_t next = l4_dp_flow_moves(&h->dp, start, max_scan, &m);
  free(cand);
  return set_next(env, res, next, h->dp.flows.capacity);
}

napi_status l4_addon_define_flows(napi_env env, napi_value exports) {
  const napi_property_descriptor d[] = {
      {"flowCount", 0, js_flow_count, 0, 0, 0, napi_default, 0},
      {"flows", 0, js_flows, 0, 0, 0, napi_default, 0},
      {"deleteFlows", 0, js_delete_flows, 0, 0, 0, napi_default, 0},
      {"flowStats", 0, js_flow_stats, 0, 0, 0, napi_default, 0},
      {"sweepFlows", 0, js_sweep_flows, 0, 0, 0, napi_default, 0},
      {"activeFlows", 0, js_active_flows, 0, 0, 0, napi_default, 0},
      {"explain", 0, js_explain, 0, 0, 0, napi_default, 0},
      {"flowMoves", 0, js_flow_moves, 0, 0, 0, napi_default, 0},
  };
  return napi_define_properties(env, exports, sizeof(d) / sizeof(d[0]), d);
}
