/* The addon's data-plane health probes (probe_tx.h) and the verdict trace (tracing.h, core/trace.h). */
#include <string.h>

#include "addon.h"
#include "probe_tx.h"

/* probe(handle, {slot, family, src: Uint8Array(16), dst: Uint8Array(16), sport, dport, seq}): sends a data-plane
 * health probe for backend `slot` (probe_tx.h). */
static napi_value js_probe(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  struct handle *h = handle_args(env, info, &argc, argv);
  if (!h) return NULL;
  uint32_t slot, family, sport, dport, seq;
  void *src, *dst;
  size_t n1, n2;
  if (argc < 2 || get_u32(env, argv[1], "slot", &slot) || slot >= h->dp.cfg.max_backends ||
      get_u32(env, argv[1], "family", &family) || (family != 4 && family != 6) ||
      get_typed(env, argv[1], "src", napi_uint8_array, &src, &n1) || n1 != 16 ||
      get_typed(env, argv[1], "dst", napi_uint8_array, &dst, &n2) || n2 != 16 || get_u32(env, argv[1], "sport", &sport) ||
      sport == 0 || sport > 65535 || get_u32(env, argv[1], "dport", &dport) || dport == 0 || dport > 65535 ||
      get_u32(env, argv[1], "seq", &seq)) {
    napi_throw_type_error(env, "EINVAL", "l4nat addon: probe(handle, {slot: backend slot below maxBackends, family: 4|6, src: Uint8Array(16), dst: Uint8Array(16), sport: 1-65535, dport: 1-65535, seq: uint32})");
    return NULL;
  }
  struct l4_probe_spec p = {slot, (uint8_t)family, src, dst, (uint16_t)sport, (uint16_t)dport, seq};
  int r = l4_dp_send_probe(&h->dp, &p);
  if (r < 0) return throw_errno(env, -r, "write", "probe");
  return NULL;
}

/* probeState(handle, {slot, sport, seq}) -> 0 none (replaced, or never sent), 1 pending, 2 SYN-ACK, 3 RST */
static napi_value js_probe_state(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2], v;
  struct handle *h = handle_args(env, info, &argc, argv);
  if (!h) return NULL;
  uint32_t slot, sport, seq;
  if (argc < 2 || get_u32(env, argv[1], "slot", &slot) || get_u32(env, argv[1], "sport", &sport) || sport > 65535 ||
      get_u32(env, argv[1], "seq", &seq)) {
    napi_throw_type_error(env, "EINVAL", "l4nat addon: probeState(handle, {slot: uint32, sport: 1-65535, seq: uint32})");
    return NULL;
  }
  CHECK(napi_create_uint32(env, (uint32_t)l4_probe_state(&h->dp.probes, slot, (uint16_t)sport, seq), &v));
  return v;
}

/* traceSet(handle, slot, {flags, clientFamily, client: Uint8Array(16), cport, svcFamily, svcProto, vip, vport,
 * bkFamily, backend, bport} | null): installs (or with null removes) trace match `slot` (core/trace.h). */
static napi_value js_trace_set(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  struct handle *h = handle_args(env, info, &argc, argv);
  if (!h) return NULL;
  uint32_t slot, w[8];
  void *client, *vip, *backend;
  size_t n1, n2, n3;
  napi_valuetype t = napi_null;
  if (argc == 3) napi_typeof(env, argv[2], &t);
  static const char *const names[] = {"flags", "clientFamily", "cport", "svcFamily", "svcProto", "vport", "bkFamily", "bport"};
  bool bad = argc < 3 || napi_get_value_uint32(env, argv[1], &slot) != napi_ok || slot >= L4_TRACE_MATCHES;
  if (!bad && t != napi_null) {
    for (int i = 0; i < 8 && !bad; i++) bad = get_u32(env, argv[2], names[i], &w[i]) != 0;
    bad = bad || w[2] > 65535 || w[5] > 65535 || w[7] > 65535 || w[4] > 255 ||
          get_typed(env, argv[2], "client", napi_uint8_array, &client, &n1) || n1 != 16 ||
          get_typed(env, argv[2], "vip", napi_uint8_array, &vip, &n2) || n2 != 16 ||
          get_typed(env, argv[2], "backend", napi_uint8_array, &backend, &n3) || n3 != 16;
  }
  if (bad) {
    napi_throw_type_error(env, "EINVAL", "l4nat addon: traceSet(handle, slot below traceMatches, {flags, clientFamily, client: Uint8Array(16), cport, svcFamily, svcProto, vip: Uint8Array(16), vport, bkFamily, backend: Uint8Array(16), bport} | null)");
    return NULL;
  }
  if (t == napi_null) {
    l4_dp_trace_set(&h->dp.trace, slot, NULL);
    return NULL;
  }
  struct l4_trace_match m = {.flags = w[0], .client_family = (uint8_t)w[1], .cport = (uint16_t)w[2], .svc_family = (uint8_t)w[3],
                             .svc_proto = (uint8_t)w[4], .vport = (uint16_t)w[5], .bk_family = (uint8_t)w[6], .bport = (uint16_t)w[7]};
  memcpy(m.client, client, 16);
  memcpy(m.vip, vip, 16);
  memcpy(m.backend, backend, 16);
  l4_dp_trace_set(&h->dp.trace, slot, &m);
  return NULL;
}

static uint64_t trace_pending(void *r) { return l4_dp_trace_pending(r); }
static uint32_t trace_read(void *r, void *out, uint32_t max, uint64_t *dropped) { return l4_dp_trace_read(r, out, max, dropped); }

/* traceDrain(handle) -> {records: Buffer (traceRecordBytes each), dropped: records lost to full rings so far} */
static napi_value js_trace_drain(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  struct handle *h = handle_args(env, info, &argc, argv);
  if (!h) return NULL;
  return drain_rings(env, &h->dp.trace, sizeof(struct l4_trace_rec), trace_pending, trace_read);
}

napi_status l4_addon_define_probe_trace(napi_env env, napi_value exports) {
  const napi_property_descriptor d[] = {
      {"probe", 0, js_probe, 0, 0, 0, napi_default, 0},
      {"probeState", 0, js_probe_state, 0, 0, 0, napi_default, 0},
      {"traceSet", 0, js_trace_set, 0, 0, 0, napi_default, 0},
      {"traceDrain", 0, js_trace_drain, 0, 0, 0, napi_default, 0},
  };
  return napi_define_properties(env, exports, sizeof(d) / sizeof(d[0]), d);
}
