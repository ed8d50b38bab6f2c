/* Node-API binding of the data-plane runtime: the data plane's life (open, publish, start, stop, close, steering,
 * the watchdog, the flow table file's slot map) and the module's init. The other areas' functions are in
 * addon_flows.c, addon_probe_trace.c, addon_sync.c and addon_layout.c, their shared readers in addon_args.c
 * (addon.h). Thin by design: each function converts its arguments, calls one runtime function (worker.c,
 * watchdog.c, steering.c) and converts the result, turning errno into Node-style errors ({code, errno, syscall});
 * src/dataplane/native.ts validates, owns lifetimes and gives the API its shape. No packet ever reaches JavaScript. */
#define _GNU_SOURCE /* strerrorname_np */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "addon.h"

static void finalize_handle(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  struct handle *h = data;
  l4_watchdog_stop(&h->wd);
  if (h->open) l4_dp_destroy(&h->dp, 1); /* collected without close(): keep the device, as after a crash */
  if (h->co) h->co->h = NULL;
  free(h);
}

static void finalize_counters(napi_env env, void *data, void *hint) {
  (void)env;
  (void)data;
  struct counters_owner *co = hint;
  if (co->h) {
    l4_watchdog_stop(&co->h->wd);
    if (co->h->open) l4_dp_stop(&co->h->dp);
    co->h->co = NULL;
  }
  l4_dp_free_counters(co->mem, co->bytes);
  free(co);
}

/* open({ifname, queues, flowCapacity, maxServices, maxBackends}) -> handle */
static napi_value js_open(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  struct l4_dp_config cfg;
  memset(&cfg, 0, sizeof(cfg));
  uint32_t queues, cap_lo, cap_hi = 0;
  size_t n;
  napi_value v;
  if (argc < 1 || napi_get_named_property(env, argv[0], "ifname", &v) != napi_ok ||
      napi_get_value_string_utf8(env, v, cfg.ifname, sizeof(cfg.ifname), &n) != napi_ok ||
      get_u32(env, argv[0], "queues", &queues) || get_u32(env, argv[0], "flowCapacity", &cap_lo) ||
      get_u32(env, argv[0], "maxServices", &cfg.max_services) ||
      get_u32(env, argv[0], "maxBackends", &cfg.max_backends)) {
    napi_throw_type_error(env, "EINVAL", "l4nat addon: open() takes {ifname, queues, flowCapacity, maxServices, maxBackends}");
    return NULL;
  }
  cfg.nqueues = (int)queues;
  if (has_prop(env, argv[0], "busyPollUs") && get_u32(env, argv[0], "busyPollUs", &cfg.busy_poll_us)) {
    napi_throw_type_error(env, "EINVAL", "l4nat addon: busyPollUs must be a non-negative integer");
    return NULL;
  }
  if (has_prop(env, argv[0], "busyPollAdaptive") && get_u32(env, argv[0], "busyPollAdaptive", &cfg.busy_poll_adaptive)) {
    napi_throw_type_error(env, "EINVAL", "l4nat addon: busyPollAdaptive must be 0 or 1");
    return NULL;
  }
  if (has_prop(env, argv[0], "udpCoalesce") && get_u32(env, argv[0], "udpCoalesce", &cfg.udp_coalesce)) {
    napi_throw_type_error(env, "EINVAL", "l4nat addon: udpCoalesce must be 0 or 1");
    return NULL;
  }
  if (has_prop(env, argv[0], "flowFile")) {
    void *key;
    size_t klen;
    if (napi_get_named_property(env, argv[0], "flowFile", &v) != napi_ok ||
        napi_get_value_string_utf8(env, v, cfg.flow_file, sizeof(cfg.flow_file), &n) != napi_ok || n == 0 ||
        n >= sizeof(cfg.flow_file) - 1 || get_typed(env, argv[0], "hashKey", napi_uint8_array, &key, &klen) || klen != 16) {
      napi_throw_type_error(env, "EINVAL", "l4nat addon: flowFile must be a path shorter than 255 bytes, with hashKey a 16-byte Uint8Array");
      return NULL;
    }
    memcpy(cfg.hash_key, key, 16);
    if (has_prop(env, argv[0], "flowFileShared") && get_u32(env, argv[0], "flowFileShared", &cfg.flow_file_shared)) {
      napi_throw_type_error(env, "EINVAL", "l4nat addon: flowFileShared must be 0 or 1");
      return NULL;
    }
  }
  cfg.flow_capacity = ((uint64_t)cap_hi << 32) | cap_lo;
  struct handle *h = calloc(1, sizeof(*h));
  if (!h) return throw_errno(env, ENOMEM, "calloc", "open");
  const char *failed = "";
  int r = l4_dp_create(&h->dp, &cfg, &failed);
  if (r < 0) {
    free(h);
    return throw_errno(env, -r, failed, "open TUN data plane");
  }
  h->open = 1;
  h->co = calloc(1, sizeof(*h->co));
  if (!h->co) {
    l4_dp_destroy(&h->dp, 1);
    l4_dp_free_counters(h->dp.counters, h->dp.counter_bytes);
    free(h);
    return throw_errno(env, ENOMEM, "calloc", "open");
  }
  h->co->h = h;
  h->co->mem = h->dp.counters;
  h->co->bytes = h->dp.counter_bytes;
  napi_value ab, ext;
  CHECK(napi_create_external_arraybuffer(env, h->dp.counters, h->dp.counter_bytes, finalize_counters, h->co, &ab));
  CHECK(napi_create_reference(env, ab, 1, &h->counters_ref));
  CHECK(napi_create_external(env, h, finalize_handle, NULL, &ext));
  return ext;
}

/* info(handle) -> {ifname, queues, offloads, flowCapacity, counterWords, counters: ArrayBuffer} */
static napi_value js_info(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], o, v;
  struct handle *h = handle_args(env, info, &argc, argv);
  if (!h) return NULL;
  CHECK(napi_create_object(env, &o));
  CHECK(napi_create_string_utf8(env, h->dp.ifname, NAPI_AUTO_LENGTH, &v));
  CHECK(napi_set_named_property(env, o, "ifname", v));
  CHECK(napi_create_uint32(env, (uint32_t)h->dp.cfg.nqueues, &v));
  CHECK(napi_set_named_property(env, o, "queues", v));
  CHECK(napi_create_uint32(env, h->dp.offloads, &v));
  CHECK(napi_set_named_property(env, o, "offloads", v));
  CHECK(napi_create_double(env, (double)h->dp.flows.capacity, &v));
  CHECK(napi_set_named_property(env, o, "flowCapacity", v));
  CHECK(napi_create_double(env, (double)h->dp.counter_words, &v));
  CHECK(napi_set_named_property(env, o, "counterWords", v));
  CHECK(napi_get_reference_value(env, h->counters_ref, &v));
  CHECK(napi_set_named_property(env, o, "counters", v));
  const struct l4_flow_file *f = &h->dp.flow_file;
  if (f->fd >= 0) {
    napi_value ff;
    CHECK(napi_create_object(env, &ff));
    CHECK(napi_get_boolean(env, f->adopted, &v));
    CHECK(napi_set_named_property(env, ff, "adopted", v));
    CHECK(napi_get_boolean(env, f->existed, &v));
    CHECK(napi_set_named_property(env, ff, "existed", v));
    CHECK(napi_create_string_utf8(env, l4_flow_segment_reason(f->why), NAPI_AUTO_LENGTH, &v));
    CHECK(napi_set_named_property(env, ff, "reason", v));
    CHECK(napi_create_double(env, (double)f->repaired, &v));
    CHECK(napi_set_named_property(env, ff, "repaired", v));
    CHECK(napi_set_named_property(env, o, "flowFile", ff));
  }
  return o;
}

/* detachQueues(handle): every queue detached from the TUN (a live handover; start() attaches them again) */
static napi_value js_detach_queues(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  struct handle *h = handle_args(env, info, &argc, argv);
  if (!h) return NULL;
  int r = l4_dp_set_queues(&h->dp, 0);
  if (r < 0) return throw_errno(env, -r, "ioctl TUNSETQUEUE (detach)", "detach queues");
  return NULL;
}

/* flowSlots(handle) -> Buffer (a copy of the flow table file's slot map) or null */
static napi_value js_flow_slots(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], v;
  struct handle *h = handle_args(env, info, &argc, argv);
  if (!h) return NULL;
  const struct l4_flow_file *f = &h->dp.flow_file;
  uint32_t len = 0;
  const uint8_t *m = f->fd >= 0 ? l4_flow_segment_slots(f->hdr, f->base, &len) : NULL;
  if (!m) {
    CHECK(napi_get_null(env, &v));
    return v;
  }
  void *out;
  CHECK(napi_create_buffer_copy(env, len, m, &out, &v));
  return v;
}

/* setFlowSlots(handle, Uint8Array) -> true, or false when it does not fit (the file then holds no slot map) */
static napi_value js_set_flow_slots(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2], v;
  struct handle *h = handle_args(env, info, &argc, argv);
  if (!h) return NULL;
  void *data;
  size_t len;
  napi_typedarray_type type;
  napi_value ab;
  size_t off;
  bool is = false;
  if (argc < 2 || napi_is_typedarray(env, argv[1], &is) != napi_ok || !is ||
      napi_get_typedarray_info(env, argv[1], &type, &len, &data, &ab, &off) != napi_ok || type != napi_uint8_array) {
    napi_throw_type_error(env, "EINVAL", "l4nat addon: setFlowSlots(handle, Uint8Array)");
    return NULL;
  }
  struct l4_flow_file *f = &h->dp.flow_file;
  if (f->fd < 0) {
    napi_throw_error(env, "ENOENT", "l4nat addon: setFlowSlots: the flow table is not kept in a file");
    return NULL;
  }
  CHECK(napi_get_boolean(env, l4_flow_segment_put_slots(f->hdr, f->base, data, len) == 0, &v));
  return v;
}

/* publish(handle, {svcWords, svcAddrs, bkWords, bkAddrs, rings, hashKey, timeouts, options}) */
static napi_value js_publish(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  struct handle *h = handle_args(env, info, &argc, argv);
  if (!h) return NULL;
  struct l4_tables_input in;
  memset(&in, 0, sizeof(in));
  void *p;
  size_t n, na, nt;
  uint32_t *to;
  in.max_services = h->dp.cfg.max_services;
  in.max_backends = h->dp.cfg.max_backends;
  if (argc < 2 || get_typed(env, argv[1], "svcWords", napi_uint32_array, &p, &n)) goto bad;
  in.svc_words = p;
  in.nservices = (uint32_t)(n / L4_SVC_WORDS);
  if (get_typed(env, argv[1], "svcAddrs", napi_uint8_array, &p, &na) || na != (size_t)in.nservices * 16 ||
      n % L4_SVC_WORDS)
    goto bad;
  in.svc_addrs = p;
  if (get_typed(env, argv[1], "bkWords", napi_uint32_array, &p, &n)) goto bad;
  in.bk_words = p;
  in.nbackends = (uint32_t)(n / L4_BK_WORDS);
  if (get_typed(env, argv[1], "bkAddrs", napi_uint8_array, &p, &na) || na != (size_t)in.nbackends * 16 ||
      n % L4_BK_WORDS)
    goto bad;
  in.bk_addrs = p;
  if (get_typed(env, argv[1], "rings", napi_uint32_array, &p, &n)) goto bad;
  in.rings = p;
  in.rings_len = (uint32_t)n;
  if (get_typed(env, argv[1], "hashKey", napi_uint8_array, &p, &n) || n != 16) goto bad;
  in.hash_key = p;
  if (get_typed(env, argv[1], "timeouts", napi_uint32_array, &p, &nt) || nt != 5) goto bad;
  to = p;
  in.timeouts = (struct l4_timeouts){to[0], to[1], to[2], to[3], to[4]};
  if (get_u32(env, argv[1], "options", &in.options)) goto bad;
  /* optional: per-source new-flow limits and source CIDR lists */
  if (has_prop(env, argv[1], "limitWords")) {
    if (get_typed(env, argv[1], "limitWords", napi_uint32_array, &p, &n) || n % L4_LIMIT_WORDS) goto bad;
    in.limit_words = p;
    in.nlimits = (uint32_t)(n / L4_LIMIT_WORDS);
  }
  if (has_prop(env, argv[1], "aclWords")) {
    if (get_typed(env, argv[1], "aclWords", napi_uint32_array, &p, &n) || n % L4_ACL_WORDS) goto bad;
    in.acl_words = p;
    in.nacl = (uint32_t)(n / L4_ACL_WORDS);
    if (get_typed(env, argv[1], "aclAddrs", napi_uint8_array, &p, &na) || na != (size_t)in.nacl * 16) goto bad;
    in.acl_addrs = p;
  }
  /* optional: per-service idle timeouts and the data-plane probe source addresses */
  if (has_prop(env, argv[1], "timeoutWords")) {
    if (get_typed(env, argv[1], "timeoutWords", napi_uint32_array, &p, &n) || n % L4_TIMEOUT_WORDS) goto bad;
    in.timeout_words = p;
    in.ntimeouts = (uint32_t)(n / L4_TIMEOUT_WORDS);
  }
  if (has_prop(env, argv[1], "prevRingWords")) {
    if (get_typed(env, argv[1], "prevRingWords", napi_uint32_array, &p, &n) || n % L4_PREV_RING_WORDS) goto bad;
    in.prev_ring_words = p;
    in.nprev_rings = (uint32_t)(n / L4_PREV_RING_WORDS);
  }
  if (has_prop(env, argv[1], "probeAddr4")) {
    if (get_typed(env, argv[1], "probeAddr4", napi_uint8_array, &p, &n) || n != 4) goto bad;
    in.probe_addr4 = p;
  }
  if (has_prop(env, argv[1], "probeAddr6")) {
    if (get_typed(env, argv[1], "probeAddr6", napi_uint8_array, &p, &n) || n != 16) goto bad;
    in.probe_addr6 = p;
  }
  /* optional: this host's own addresses (ICMP errors it sends itself) */
  if (has_prop(env, argv[1], "localAddrs4")) {
    if (get_typed(env, argv[1], "localAddrs4", napi_uint8_array, &p, &n) || n % 4) goto bad;
    in.local_addrs4 = p;
    in.nlocal4 = (uint32_t)(n / 4);
  }
  if (has_prop(env, argv[1], "localAddrs6")) {
    if (get_typed(env, argv[1], "localAddrs6", napi_uint8_array, &p, &n) || n % 16) goto bad;
    in.local_addrs6 = p;
    in.nlocal6 = (uint32_t)(n / 16);
  }
  char err[256];
  struct l4_tables *t = l4_tables_build(&in, err, sizeof(err));
  if (!t) {
    napi_throw_range_error(env, "EINVAL", err);
    return NULL;
  }
  l4_dp_publish(&h->dp, t);
  return NULL;
bad:
  napi_throw_type_error(env, "EINVAL",
                        "l4nat addon: publish() takes {svcWords: Uint32Array, svcAddrs: Uint8Array, bkWords: Uint32Array, "
                        "bkAddrs: Uint8Array, rings: Uint32Array, hashKey: Uint8Array(16), timeouts: Uint32Array(5), options, "
                        "limitWords?: Uint32Array, aclWords?: Uint32Array, aclAddrs?: Uint8Array, timeoutWords?: Uint32Array, "
                        "prevRingWords?: Uint32Array, probeAddr4?: Uint8Array(4), probeAddr6?: Uint8Array(16), "
                        "localAddrs4?: Uint8Array(4 each), localAddrs6?: Uint8Array(16 each)}");
  return NULL;
}

static napi_value js_start(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  struct handle *h = handle_args(env, info, &argc, argv);
  if (!h) return NULL;
  const char *failed = "";
  int r = l4_dp_start(&h->dp, &failed);
  if (r < 0) return throw_errno(env, -r, failed, "start workers");
  return NULL;
}

static napi_value js_stop(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  struct handle *h = handle_args(env, info, &argc, argv);
  if (!h) return NULL;
  l4_watchdog_stop(&h->wd);
  l4_dp_stop(&h->dp);
  return NULL;
}

/* setSteering(handle, {vips4: Uint8Array(4n), vips6: Uint8Array(16n)} | null): attaches (or with null removes)
 * the queue-steering program (steering.h). */
static napi_value js_set_steering(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  napi_valuetype t = napi_null;
  struct handle *h = handle_args(env, info, &argc, argv);
  if (!h) return NULL;
  if (argc >= 2) napi_typeof(env, argv[1], &t);
  if (t == napi_null || t == napi_undefined) {
    int r = l4_dp_unsteer(&h->dp);
    if (r < 0) return throw_errno(env, -r, "ioctl(TUNSETSTEERINGEBPF)", "remove steering");
    return NULL;
  }
  void *v4, *v6;
  size_t n4, n6;
  if (get_typed(env, argv[1], "vips4", napi_uint8_array, &v4, &n4) || n4 % 4 ||
      get_typed(env, argv[1], "vips6", napi_uint8_array, &v6, &n6) || n6 % 16) {
    napi_throw_type_error(env, "EINVAL", "l4nat addon: setSteering(handle, {vips4: Uint8Array(4 x n), vips6: Uint8Array(16 x n)} | null)");
    return NULL;
  }
  const char *failed = "";
  int r = l4_dp_steer(&h->dp, v4, (uint32_t)(n4 / 4), v6, (uint32_t)(n6 / 16), &failed);
  if (r < 0) return throw_errno(env, -r, failed, "attach the steering program");
  return NULL;
}

/* watchdogStart(handle, {path, everyMs, staleMs}): WATCHDOG=1 to path every everyMs while all workers are fresh */
static napi_value js_watchdog_start(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2], v;
  struct handle *h = handle_args(env, info, &argc, argv);
  if (!h) return NULL;
  char path[sizeof(((struct sockaddr_un *)0)->sun_path) + 1];
  size_t n = 0;
  uint32_t every, stale;
  if (argc < 2 || napi_get_named_property(env, argv[1], "path", &v) != napi_ok ||
      napi_get_value_string_utf8(env, v, path, sizeof(path), &n) != napi_ok || n == 0 || n >= sizeof(path) - 1 ||
      get_u32(env, argv[1], "everyMs", &every) || every == 0 || get_u32(env, argv[1], "staleMs", &stale)) {
    napi_throw_type_error(env, "EINVAL", "l4nat addon: watchdogStart(handle, {path: string (1-107 bytes), everyMs: > 0, staleMs})");
    return NULL;
  }
  const char *failed = "";
  int r = l4_watchdog_start(&h->wd, &h->dp, path, every, stale, &failed);
  if (r < 0) return throw_errno(env, -r, failed, "start watchdog");
  return NULL;
}

/* watchdogStats(handle) -> {running, pings, withheld, sendErrors} */
static napi_value js_watchdog_stats(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], o, v;
  struct handle *h = handle_args(env, info, &argc, argv);
  if (!h) return NULL;
  CHECK(napi_create_object(env, &o));
  CHECK(napi_get_boolean(env, h->wd.running != 0, &v));
  CHECK(napi_set_named_property(env, o, "running", v));
  CHECK(napi_create_double(env, (double)atomic_load(&h->wd.pings), &v));
  CHECK(napi_set_named_property(env, o, "pings", v));
  CHECK(napi_create_double(env, (double)atomic_load(&h->wd.withheld), &v));
  CHECK(napi_set_named_property(env, o, "withheld", v));
  CHECK(napi_create_double(env, (double)atomic_load(&h->wd.send_errors), &v));
  CHECK(napi_set_named_property(env, o, "sendErrors", v));
  return o;
}

/* queueErrors(handle) -> [null | {errno, code, message} per queue]: null while the queue's worker reads it, else
 * why reading failed for good (the worker has ended; worker.c). Named here: Node knows no name for some of these
 * errno values (EBADFD). */
static napi_value js_queue_errors(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], arr, o, v;
  struct handle *h = handle_args(env, info, &argc, argv);
  if (!h) return NULL;
  CHECK(napi_create_array_with_length(env, (size_t)h->dp.cfg.nqueues, &arr));
  for (int q = 0; q < h->dp.cfg.nqueues; q++) {
    int err = l4_dp_queue_error(&h->dp, q);
    if (!err) {
      CHECK(napi_get_null(env, &o));
    } else {
      const char *code = strerrorname_np(err);
      CHECK(napi_create_object(env, &o));
      CHECK(napi_create_int32(env, err, &v));
      CHECK(napi_set_named_property(env, o, "errno", v));
      CHECK(napi_create_string_utf8(env, code ? code : "EUNKNOWN", NAPI_AUTO_LENGTH, &v));
      CHECK(napi_set_named_property(env, o, "code", v));
      CHECK(napi_create_string_utf8(env, strerror(err), NAPI_AUTO_LENGTH, &v));
      CHECK(napi_set_named_property(env, o, "message", v));
    }
    CHECK(napi_set_element(env, arr, (uint32_t)q, o));
  }
  return arr;
}

/* setPersist(handle, bool) */
static napi_value js_set_persist(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  bool persist = false;
  struct handle *h = handle_args(env, info, &argc, argv);
  if (!h) return NULL;
  if (argc < 2 || napi_get_value_bool(env, argv[1], &persist) != napi_ok) {
    napi_throw_type_error(env, "EINVAL", "l4nat addon: setPersist(handle, boolean)");
    return NULL;
  }
  int r = l4_dp_set_persist(&h->dp, persist);
  if (r < 0) return throw_errno(env, -r, "ioctl TUNSETPERSIST", "set persist");
  return NULL;
}

/* close(handle, keepDevice) */
static napi_value js_close(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  bool keep = true;
  struct handle *h = handle_args(env, info, &argc, argv);
  if (!h) return NULL;
  if (argc >= 2) napi_get_value_bool(env, argv[1], &keep);
  l4_watchdog_stop(&h->wd);
  l4_dp_destroy(&h->dp, keep);
  h->open = 0;
  napi_delete_reference(env, h->counters_ref); /* the counters live on until JS drops its views */
  h->counters_ref = NULL;
  return NULL;
}

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor d[] = {
      {"open", 0, js_open, 0, 0, 0, napi_default, 0},
      {"info", 0, js_info, 0, 0, 0, napi_default, 0},
      {"publish", 0, js_publish, 0, 0, 0, napi_default, 0},
      {"start", 0, js_start, 0, 0, 0, napi_default, 0},
      {"stop", 0, js_stop, 0, 0, 0, napi_default, 0},
      {"setPersist", 0, js_set_persist, 0, 0, 0, napi_default, 0},
      {"flowSlots", 0, js_flow_slots, 0, 0, 0, napi_default, 0},
      {"detachQueues", 0, js_detach_queues, 0, 0, 0, napi_default, 0},
      {"setFlowSlots", 0, js_set_flow_slots, 0, 0, 0, napi_default, 0},
      {"close", 0, js_close, 0, 0, 0, napi_default, 0},
      {"watchdogStart", 0, js_watchdog_start, 0, 0, 0, napi_default, 0},
      {"setSteering", 0, js_set_steering, 0, 0, 0, napi_default, 0},
      {"watchdogStats", 0, js_watchdog_stats, 0, 0, 0, napi_default, 0},
      {"queueErrors", 0, js_queue_errors, 0, 0, 0, napi_default, 0},
  };
  if (napi_define_properties(env, exports, sizeof(d) / sizeof(d[0]), d) != napi_ok ||
      l4_addon_define_flows(env, exports) != napi_ok || l4_addon_define_probe_trace(env, exports) != napi_ok ||
      l4_addon_define_sync(env, exports) != napi_ok || l4_addon_define_layout(env, exports) != napi_ok)
    return NULL;
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
