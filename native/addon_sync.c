/* The addon's flow-state sync functions: on/off, the workers' logs drained, peers' records applied and checked
 * (sync.h, core/sync_log.h). */
#include <stdatomic.h>
#include <stdio.h>

#include "addon.h"

static uint64_t sync_pending(void *r) { return l4_dp_sync_pending(r); }
static uint32_t sync_read(void *r, void *out, uint32_t max, uint64_t *dropped) { return l4_dp_sync_read(r, out, max, dropped); }

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

napi_status l4_addon_define_sync(napi_env env, napi_value exports) {
  const napi_property_descriptor d[] = {
      {"syncSet", 0, js_sync_set, 0, 0, 0, napi_default, 0},
      {"syncDrain", 0, js_sync_drain, 0, 0, 0, napi_default, 0},
      {"syncApply", 0, js_sync_apply, 0, 0, 0, napi_default, 0},
      {"syncCheck", 0, js_sync_check, 0, 0, 0, napi_default, 0},
  };
  return napi_define_properties(env, exports, sizeof(d) / sizeof(d[0]), d);
}
