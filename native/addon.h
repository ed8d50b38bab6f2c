/* What the addon's files share (native/addon*.c): the handle JavaScript holds, the argument readers and the
 * errno-to-Error conversion, and each area's exports. The binding is thin by design: each function converts its
 * arguments, calls one runtime function and converts the result; src/dataplane/native.ts validates, owns
 * lifetimes and gives the API its shape. */
#ifndef L4NAT_ADDON_H
#define L4NAT_ADDON_H

#include <node_api.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

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

/* Throws a Node-style error {code: "E…", errno: -err, syscall} saying `what` failed; returns NULL. */
napi_value throw_errno(napi_env env, int err, const char *syscall, const char *what);
/* obj[name] as a uint32 / a typed array of type `want`; 0 on success, -1 if missing or of another type. */
int get_u32(napi_env env, napi_value obj, const char *name, uint32_t *out);
int get_typed(napi_env env, napi_value obj, const char *name, napi_typedarray_type want, void **data, size_t *len);
/* obj has `name` and it is neither undefined nor null. */
bool has_prop(napi_env env, napi_value obj, const char *name);
/* Reads up to *argc arguments; the first must be an open handle. NULL (with an exception pending) if not. */
struct handle *handle_args(napi_env env, napi_callback_info info, size_t *argc, napi_value *argv);

/* How many records a per-worker ring holds, and the read that moves up to max of them into out (*dropped: lost to
 * full rings so far): the verdict trace's and flow-state sync's rings. */
typedef uint64_t (*ring_pending_fn)(void *rings);
typedef uint32_t (*ring_read_fn)(void *rings, void *out, uint32_t max, uint64_t *dropped);
/* {records: Buffer (record_bytes each), dropped}: what the rings hold now (more may come meanwhile: next time). */
napi_value drain_rings(napi_env env, void *rings, size_t record_bytes, ring_pending_fn pending, ring_read_fn read);

/* Each area's functions, defined on the module's exports by init (addon.c). */
napi_status l4_addon_define_flows(napi_env env, napi_value exports);      /* addon_flows.c */
napi_status l4_addon_define_probe_trace(napi_env env, napi_value exports); /* addon_probe_trace.c */
napi_status l4_addon_define_sync(napi_env env, napi_value exports);       /* addon_sync.c */
napi_status l4_addon_define_layout(napi_env env, napi_value exports);     /* addon_layout.c */

#endif
