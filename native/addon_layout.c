/* The addon's layout(): the numbers, bits and names of the TS<->C contract, checked at load by
 * src/dataplane/addon-layout.ts and counter-names.ts. */
#include "addon.h"
#include "core/layout.h"

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
  static const struct named_u32 syn_choices[] = {L4_LAYOUT_SYN_CHOICES(NAMED_U32)};
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
  CHECK(napi_set_named_property(env, o, "synChoices", named_object(env, syn_choices, N(syn_choices))));
  CHECK(napi_set_named_property(env, o, "syncFields", named_object(env, sync_fields, N(sync_fields))));
#undef N
  CHECK(napi_set_named_property(env, o, "queueCounters", string_array(env, L4_QUEUE_COUNTER_NAMES, L4_Q_MAX)));
  CHECK(napi_set_named_property(env, o, "dropReasons", string_array(env, L4_DROP_REASON_NAMES, L4_DROP_MAX)));
  CHECK(napi_set_named_property(env, o, "objectCounters", string_array(env, L4_OBJ_COUNTER_NAMES, L4_O_MAX)));
  return o;
}

napi_status l4_addon_define_layout(napi_env env, napi_value exports) {
  const napi_property_descriptor d[] = {
      {"layout", 0, js_layout, 0, 0, 0, napi_default, 0},
  };
  return napi_define_properties(env, exports, sizeof(d) / sizeof(d[0]), d);
}
