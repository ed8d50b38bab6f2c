/* The addon's shared argument readers and conversions (addon.h). */
#define _GNU_SOURCE /* strerrorname_np */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "addon.h"

napi_value throw_errno(napi_env env, int err, const char *syscall, const char *what) {
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

int get_u32(napi_env env, napi_value obj, const char *name, uint32_t *out) {
  napi_value v;
  if (napi_get_named_property(env, obj, name, &v) != napi_ok) return -1;
  return napi_get_value_uint32(env, v, out) == napi_ok ? 0 : -1;
}

int get_typed(napi_env env, napi_value obj, const char *name, napi_typedarray_type want, void **data,
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

bool has_prop(napi_env env, napi_value obj, const char *name) {
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
struct handle *handle_args(napi_env env, napi_callback_info info, size_t *argc, napi_value *argv) {
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

napi_value drain_rings(napi_env env, void *rings, size_t record_bytes, ring_pending_fn pending, ring_read_fn read) {
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
