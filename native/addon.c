/* Node-API binding of the data-plane runtime. Thin by design: each function converts its arguments, calls one
 * runtime function (worker.c, flows.c, probe_tx.c, watchdog.c) and converts the result, turning errno into
 * Node-style errors ({code, errno, syscall}); src/dataplane/native.ts validates, owns lifetimes and gives the API
 * its shape. No packet ever reaches JavaScript. */
#define _GNU_SOURCE
#include <errno.h>
#include <node_api.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/layout.h"
#include "flows.h"
#include "probe_tx.h"
#include "watchdog.h"
#include "worker.h"

#define CHECK(call)                                                   \
  do {                                                                \
    if ((call) != napi_ok) {                                          \
      napi_throw_error(env, "EINTERNAL", "l4nat addon: " #call " failed"); \
      return NULL;                                                    \
    }                                                                 \
  } while (0)

struct counters_owner;

struct handle {
  struct l4_dp dp;
  struct l4_watchdog wd;
  int open;
  napi_ref counters_ref;
  struct counters_owner *co;
};

/* The counters memory belongs to the ArrayBuffer JS sees. When the environment is torn down (process exit)
 * Node may finalize that buffer before the handle, while workers still write to it: so the buffer's
 * finalizer stops the workers first if the handle is still open. */
struct counters_owner {
  struct handle *h; /* NULL once the handle is finalized */
  uint64_t *mem;
  size_t bytes;
};

static napi_value throw_errno(napi_env env, int err, const char *syscall, const char *what) {
  char msg[256];
  const char *code = strerrorname_np(err);
  if (!code) code = "EUNKNOWN";
  snprintf(msg, sizeof(msg), "%s: %s failed: %s", what, syscall, strerror(err));
  napi_value e, v, m;
  napi_create_string_utf8(env, msg, NAPI_AUTO_LENGTH, &m);
  napi_create_string_utf8(env, code, NAPI_AUTO_LENGTH, &v);
  napi_create_error(env, v, m, &e);
  napi_set_named_property(env, e, "code", v);
  napi_create_int32(env, -err, &v);
  napi_set_named_property(env, e, "errno", v);
  napi_create_string_utf8(env, syscall, NAPI_AUTO_LENGTH, &v);
  napi_set_named_property(env, e, "syscall", v);
  napi_throw(env, e);
  return NULL;
}

static int get_u32(napi_env env, napi_value obj, const char *name, uint32_t *out) {
  napi_value v;
  if (napi_get_named_property(env, obj, name, &v) != napi_ok) return -1;
  return napi_get_value_uint32(env, v, out) == napi_ok ? 0 : -1;
}

static int get_typed(napi_env env, napi_value obj, const char *name, napi_typedarray_type want, void **data,
                     size_t *len) {
  napi_value v;
  bool is;
  if (napi_get_named_property(env, obj, name, &v) != napi_ok) return -1;
  if (napi_is_typedarray(env, v, &is) != napi_ok || !is) return -1;
  napi_typedarray_type type;
  napi_value ab;
  size_t off;
  if (napi_get_typedarray_info(env, v, &type, len, data, &ab, &off) != napi_ok || type != want) return -1;
  return 0;
}

static bool has_prop(napi_env env, napi_value obj, const char *name) {
  bool has = false;
  napi_value v;
  napi_valuetype t;
  if (napi_has_named_property(env, obj, name, &has) != napi_ok || !has) return false;
  if (napi_get_named_property(env, obj, name, &v) != napi_ok || napi_typeof(env, v, &t) != napi_ok) return false;
  return t != napi_undefined && t != napi_null;
}

static struct handle *get_handle(napi_env env, napi_value v) {
  struct handle *h = NULL;
  if (napi_get_value_external(env, v, (void **)&h) != napi_ok || !h) {
    napi_throw_type_error(env, "EINVAL", "l4nat addon: first argument must be a data-plane handle");
    return NULL;
  }
  if (!h->open) {
    napi_throw_error(env, "ECLOSED", "l4nat addon: the data plane is closed");
    return NULL;
  }
  return h;
}

/* Reads up to *argc arguments; the first must be an open handle. NULL (with an exception pending) if not. */
static struct handle *handle_args(napi_env env, napi_callback_info info, size_t *argc, napi_value *argv) {
  if (napi_get_cb_info(env, info, argc, argv, NULL, NULL) != napi_ok) {
    napi_throw_error(env, "EINTERNAL", "l4nat addon: napi_get_cb_info failed");
    return NULL;
  }
  if (*argc < 1) {
    napi_throw_type_error(env, "EINVAL", "l4nat addon: first argument must be a data-plane handle");
    return NULL;
  }
  return get_handle(env, argv[0]);
}

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

/* explain(handle, {family: 4|6, proto: 6|17, client: Uint8Array(16), cport, vip: Uint8Array(16), vport}) ->
 * Uint32Array(explainWords): l4_explain's result, its fields at the layout's explainFields. */
static napi_value js_explain(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2], ab, arr;
  struct handle *h = handle_args(env, info, &argc, argv);
  if (!h) return NULL;
  uint32_t family, proto, cport, vport;
  void *client, *vip;
  size_t n1, n2;
  if (argc < 2 || get_u32(env, argv[1], "family", &family) || (family != 4 && family != 6) ||
      get_u32(env, argv[1], "proto", &proto) || (proto != 6 && proto != 17) ||
      get_typed(env, argv[1], "client", napi_uint8_array, &client, &n1) || n1 != 16 ||
      get_typed(env, argv[1], "vip", napi_uint8_array, &vip, &n2) || n2 != 16 || get_u32(env, argv[1], "cport", &cport) ||
      cport > 65535 || get_u32(env, argv[1], "vport", &vport) || vport > 65535) {
    napi_throw_type_error(env, "EINVAL", "l4nat addon: explain(handle, {family: 4|6, proto: 6|17, client: Uint8Array(16), cport: 0-65535, vip: Uint8Array(16), vport: 0-65535})");
    return NULL;
  }
  struct l4_explain_query q = {(uint8_t)family, (uint8_t)proto, {0}, {0}, (uint16_t)cport, (uint16_t)vport};
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

/* How many records a per-worker ring holds, and the read that moves up to max of them into out (*dropped: lost to
 * full rings so far). */
typedef uint64_t (*ring_pending_fn)(void *rings);
typedef uint32_t (*ring_read_fn)(void *rings, void *out, uint32_t max, uint64_t *dropped);

/* {records: Buffer (record_bytes each), dropped}: what the rings hold now (more may come meanwhile: next time). */
static napi_value drain_rings(napi_env env, void *rings, size_t record_bytes, ring_pending_fn pending, ring_read_fn read) {
  napi_value res, buf, v;
  uint32_t want = (uint32_t)pending(rings);
  void *data = NULL;
  CHECK(napi_create_buffer(env, (size_t)want * record_bytes, &data, &buf));
  uint64_t dropped;
  uint32_t got = read(rings, data, want, &dropped);
  CHECK(napi_create_object(env, &res));
  if (got < want) CHECK(napi_create_buffer_copy(env, (size_t)got * record_bytes, data, NULL, &buf));
  CHECK(napi_set_named_property(env, res, "records", buf));
  CHECK(napi_create_double(env, (double)dropped, &v));
  CHECK(napi_set_named_property(env, res, "dropped", v));
  return res;
}

static uint64_t trace_pending(void *r) { return l4_dp_trace_pending(r); }
static uint32_t trace_read(void *r, void *out, uint32_t max, uint64_t *dropped) { return l4_dp_trace_read(r, out, max, dropped); }
static uint64_t sync_pending(void *r) { return l4_dp_sync_pending(r); }
static uint32_t sync_read(void *r, void *out, uint32_t max, uint64_t *dropped) { return l4_dp_sync_read(r, out, max, dropped); }

/* traceDrain(handle) -> {records: Buffer (traceRecordBytes each), dropped: records lost to full rings so far} */
static napi_value js_trace_drain(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  struct handle *h = handle_args(env, info, &argc, argv);
  if (!h) return NULL;
  return drain_rings(env, &h->dp.trace, sizeof(struct l4_trace_rec), trace_pending, trace_read);
}

/* syncSet(handle, on): flow-state sync on or off (sync.h); the workers follow at their next batch. */
static napi_value js_sync_set(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  struct handle *h = handle_args(env, info, &argc, argv);
  if (!h) return NULL;
  bool on;
  if (argc < 2 || napi_get_value_bool(env, argv[1], &on) != napi_ok) {
    napi_throw_type_error(env, "EINVAL", "l4nat addon: syncSet(handle, on: boolean)");
    return NULL;
  }
  atomic_store(&h->dp.sync.on, on ? 1 : 0);
  return NULL;
}

/* syncDrain(handle) -> {records: Buffer (syncRecordBytes each), dropped: records lost to full logs so far} */
static napi_value js_sync_drain(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  struct handle *h = handle_args(env, info, &argc, argv);
  if (!h) return NULL;
  return drain_rings(env, &h->dp.sync, sizeof(struct l4_sync_rec), sync_pending, sync_read);
}

/* The records argument of syncApply/syncCheck: a Uint8Array of whole records. */
static bool get_sync_records(napi_env env, napi_value v, struct l4_sync_rec **recs, uint32_t *n) {
  bool is;
  napi_typedarray_type type;
  size_t len, off;
  void *data;
  napi_value ab;
  if (napi_is_typedarray(env, v, &is) != napi_ok || !is) return false;
  if (napi_get_typedarray_info(env, v, &type, &len, &data, &ab, &off) != napi_ok || type != napi_uint8_array) return false;
  if (len % sizeof(struct l4_sync_rec) || ((uintptr_t)data & 7)) return false;
  *recs = data;
  *n = (uint32_t)(len / sizeof(struct l4_sync_rec));
  return true;
}

/* The arguments of syncApply/syncCheck (`what`): an open handle and whole records. NULL with an exception pending. */
static struct handle *sync_args(napi_env env, napi_callback_info info, const char *what, struct l4_sync_rec **recs,
                                uint32_t *n) {
  size_t argc = 2;
  napi_value argv[2];
  struct handle *h = handle_args(env, info, &argc, argv);
  if (!h) return NULL;
  if (argc < 2 || !get_sync_records(env, argv[1], recs, n)) {
    char msg[160];
    snprintf(msg, sizeof(msg), "l4nat addon: %s(handle, records: Uint8Array of syncRecordBytes-byte records, 8-byte aligned)", what);
    napi_throw_type_error(env, "EINVAL", msg);
    return NULL;
  }
  return h;
}

/* syncApply(handle, records: Uint8Array) -> {learned, kept, forgotten, invalid}: peers' records into the flow table. */
static napi_value js_sync_apply(napi_env env, napi_callback_info info) {
  napi_value res, v;
  struct l4_sync_rec *recs;
  uint32_t n;
  struct handle *h = sync_args(env, info, "syncApply", &recs, &n);
  if (!h) return NULL;
  struct l4_sync_applied a = {0, 0, 0, 0};
  int r = l4_dp_sync_apply(&h->dp, recs, n, &a);
  if (r < 0) return throw_errno(env, -r, "syncApply", "l4nat: no table published yet");
  CHECK(napi_create_object(env, &res));
  const uint32_t vals[] = {a.learned, a.kept, a.forgotten, a.invalid};
  const char *const names[] = {"learned", "kept", "forgotten", "invalid"};
  for (int i = 0; i < 4; i++) {
    CHECK(napi_create_uint32(env, vals[i], &v));
    CHECK(napi_set_named_property(env, res, names[i], v));
  }
  return res;
}

/* syncCheck(handle, records: Uint8Array) -> Uint32Array: per record, the backend slot of its key's live entry that
 * this host logged (FL_SYNCED, not learned), else noBackend. */
static napi_value js_sync_check(napi_env env, napi_callback_info info) {
  napi_value ab, arr;
  struct l4_sync_rec *recs;
  uint32_t n;
  struct handle *h = sync_args(env, info, "syncCheck", &recs, &n);
  if (!h) return NULL;
  void *out;
  CHECK(napi_create_arraybuffer(env, sizeof(uint32_t) * (n ? n : 1), &out, &ab));
  int r = l4_dp_sync_check(&h->dp, recs, n, out);
  if (r < 0) return throw_errno(env, -r, "syncCheck", "l4nat: no table published yet");
  CHECK(napi_create_typedarray(env, napi_uint32_array, n, ab, 0, &arr));
  return arr;
}

static napi_value string_array(napi_env env, const char *const *names, uint32_t n) {
  napi_value arr, s;
  if (napi_create_array_with_length(env, n, &arr) != napi_ok) return NULL;
  for (uint32_t i = 0; i < n; i++) {
    napi_create_string_utf8(env, names[i], NAPI_AUTO_LENGTH, &s);
    napi_set_element(env, arr, i, s);
  }
  return arr;
}

struct named_u32 {
  const char *name;
  uint32_t value;
};
#define NAMED_U32(name, value) {name, (uint32_t)(value)},

static napi_value named_object(napi_env env, const struct named_u32 *p, size_t n) {
  napi_value o, v;
  if (napi_create_object(env, &o) != napi_ok) return NULL;
  for (size_t i = 0; i < n; i++) {
    if (napi_create_uint32(env, p[i].value, &v) != napi_ok || napi_set_named_property(env, o, p[i].name, v) != napi_ok) return NULL;
  }
  return o;
}

/* layout() -> the numbers, bits and names src/dataplane/addon-layout.ts checks at load (core/layout.h, counters.h) */
static napi_value js_layout(napi_env env, napi_callback_info info) {
  (void)info;
  static const struct named_u32 numbers[] = {L4_LAYOUT_NUMBERS(NAMED_U32)};
  static const struct named_u32 flow_states[] = {L4_LAYOUT_FLOW_STATES(NAMED_U32)};
  static const struct named_u32 flow_classes[] = {L4_LAYOUT_FLOW_CLASSES(NAMED_U32)};
  static const struct named_u32 bk_flags[] = {L4_LAYOUT_BK_FLAGS(NAMED_U32)};
  static const struct named_u32 opt_flags[] = {L4_LAYOUT_OPT_FLAGS(NAMED_U32)};
  static const struct named_u32 hash_modes[] = {L4_LAYOUT_HASH_MODES(NAMED_U32)};
  static const struct named_u32 balance_modes[] = {L4_LAYOUT_BALANCE_MODES(NAMED_U32)};
  static const struct named_u32 when_full[] = {L4_LAYOUT_WHEN_FULL(NAMED_U32)};
  static const struct named_u32 trace_fields[] = {L4_LAYOUT_TRACE_FIELDS(NAMED_U32)};
  static const struct named_u32 trace_dirs[] = {L4_LAYOUT_TRACE_DIRS(NAMED_U32)};
  static const struct named_u32 trace_flows[] = {L4_LAYOUT_TRACE_FLOWS(NAMED_U32)};
  static const struct named_u32 trace_match_flags[] = {L4_LAYOUT_TRACE_MATCH_FLAGS(NAMED_U32)};
  static const struct named_u32 bk_table_flags[] = {L4_LAYOUT_BK_TABLE_FLAGS(NAMED_U32)};
  static const struct named_u32 explain_fields[] = {L4_LAYOUT_EXPLAIN_FIELDS(NAMED_U32)};
  static const struct named_u32 explain_verdicts[] = {L4_LAYOUT_EXPLAIN_VERDICTS(NAMED_U32)};
  static const struct named_u32 sync_fields[] = {L4_LAYOUT_SYNC_FIELDS(NAMED_U32)};
#define N(a) (sizeof(a) / sizeof((a)[0]))
  napi_value o = named_object(env, numbers, N(numbers));
  if (!o) {
    napi_throw_error(env, "EINTERNAL", "l4nat addon: layout() failed");
    return NULL;
  }
  CHECK(napi_set_named_property(env, o, "flowStates", named_object(env, flow_states, N(flow_states))));
  CHECK(napi_set_named_property(env, o, "flowClasses", named_object(env, flow_classes, N(flow_classes))));
  CHECK(napi_set_named_property(env, o, "bkFlags", named_object(env, bk_flags, N(bk_flags))));
  CHECK(napi_set_named_property(env, o, "optFlags", named_object(env, opt_flags, N(opt_flags))));
  CHECK(napi_set_named_property(env, o, "hashModes", named_object(env, hash_modes, N(hash_modes))));
  CHECK(napi_set_named_property(env, o, "balanceModes", named_object(env, balance_modes, N(balance_modes))));
  CHECK(napi_set_named_property(env, o, "whenFull", named_object(env, when_full, N(when_full))));
  CHECK(napi_set_named_property(env, o, "traceFields", named_object(env, trace_fields, N(trace_fields))));
  CHECK(napi_set_named_property(env, o, "traceDirs", named_object(env, trace_dirs, N(trace_dirs))));
  CHECK(napi_set_named_property(env, o, "traceFlows", named_object(env, trace_flows, N(trace_flows))));
  CHECK(napi_set_named_property(env, o, "traceMatchFlags", named_object(env, trace_match_flags, N(trace_match_flags))));
  CHECK(napi_set_named_property(env, o, "bkTableFlags", named_object(env, bk_table_flags, N(bk_table_flags))));
  CHECK(napi_set_named_property(env, o, "explainFields", named_object(env, explain_fields, N(explain_fields))));
  CHECK(napi_set_named_property(env, o, "explainVerdicts", named_object(env, explain_verdicts, N(explain_verdicts))));
  CHECK(napi_set_named_property(env, o, "syncFields", named_object(env, sync_fields, N(sync_fields))));
#undef N
  CHECK(napi_set_named_property(env, o, "queueCounters", string_array(env, L4_QUEUE_COUNTER_NAMES, L4_Q_MAX)));
  CHECK(napi_set_named_property(env, o, "dropReasons", string_array(env, L4_DROP_REASON_NAMES, L4_DROP_MAX)));
  CHECK(napi_set_named_property(env, o, "objectCounters", string_array(env, L4_OBJ_COUNTER_NAMES, L4_O_MAX)));
  return o;
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
      {"flowCount", 0, js_flow_count, 0, 0, 0, napi_default, 0},
      {"flows", 0, js_flows, 0, 0, 0, napi_default, 0},
      {"deleteFlows", 0, js_delete_flows, 0, 0, 0, napi_default, 0},
      {"flowStats", 0, js_flow_stats, 0, 0, 0, napi_default, 0},
      {"sweepFlows", 0, js_sweep_flows, 0, 0, 0, napi_default, 0},
      {"activeFlows", 0, js_active_flows, 0, 0, 0, napi_default, 0},
      {"explain", 0, js_explain, 0, 0, 0, napi_default, 0},
      {"flowMoves", 0, js_flow_moves, 0, 0, 0, napi_default, 0},
      {"probe", 0, js_probe, 0, 0, 0, napi_default, 0},
      {"probeState", 0, js_probe_state, 0, 0, 0, napi_default, 0},
      {"watchdogStart", 0, js_watchdog_start, 0, 0, 0, napi_default, 0},
      {"setSteering", 0, js_set_steering, 0, 0, 0, napi_default, 0},
      {"watchdogStats", 0, js_watchdog_stats, 0, 0, 0, napi_default, 0},
      {"queueErrors", 0, js_queue_errors, 0, 0, 0, napi_default, 0},
      {"traceSet", 0, js_trace_set, 0, 0, 0, napi_default, 0},
      {"traceDrain", 0, js_trace_drain, 0, 0, 0, napi_default, 0},
      {"syncSet", 0, js_sync_set, 0, 0, 0, napi_default, 0},
      {"syncDrain", 0, js_sync_drain, 0, 0, 0, napi_default, 0},
      {"syncApply", 0, js_sync_apply, 0, 0, 0, napi_default, 0},
      {"syncCheck", 0, js_sync_check, 0, 0, 0, napi_default, 0},
      {"layout", 0, js_layout, 0, 0, 0, napi_default, 0},
  };
  if (napi_define_properties(env, exports, sizeof(d) / sizeof(d[0]), d) != napi_ok) return NULL;
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
