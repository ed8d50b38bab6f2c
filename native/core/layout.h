/* The layout TypeScript relies on, as name/value lists built from the constants the C code itself uses. The
 * addon exports them (layout() in addon.c) and src/dataplane/addon-layout.ts compares them with its own constants
 * when the addon is loaded, so an addon built from other headers than src/ was written against is refused
 * at load instead of misreading tables, flow states or counters. Counter and drop-reason names come from
 * counters.h and drop_reasons.h. Add here whatever src/ writes or decodes by number. */
#ifndef L4NAT_LAYOUT_H
#define L4NAT_LAYOUT_H

#include <stddef.h>

#include "admission.h"
#include "explain.h"
#include "flow_query.h"
#include "flow_table.h"
#include "sync_log.h"
#include "tables.h"
#include "trace.h"

/* Word counts of the typed arrays handed to l4_tables_build, and other sizes and sentinels. */
#define L4_LAYOUT_NUMBERS(X)                 \
  X("svcWords", L4_SVC_WORDS)                \
  X("bkWords", L4_BK_WORDS)                  \
  X("limitWords", L4_LIMIT_WORDS)            \
  X("aclWords", L4_ACL_WORDS)                \
  X("timeoutWords", L4_TIMEOUT_WORDS)        \
  X("prevRingWords", L4_PREV_RING_WORDS)     \
  X("factorMinPct", L4_FACTOR_MIN)           \
  X("factorMaxPct", L4_FACTOR_MAX)           \
  X("noBackend", L4_NO_BACKEND)              \
  X("flowEntryBytes", sizeof(struct l4_flow)) \
  X("traceRecordBytes", sizeof(struct l4_trace_rec)) \
  X("traceMatches", L4_TRACE_MATCHES)        \
  X("explainWords", L4_EXPLAIN_WORDS)        \
  X("moveWords", L4_MOVE_WORDS)             \
  X("syncRecordBytes", sizeof(struct l4_sync_rec)) \
  X("syncAdd", L4_SYNC_ADD)                  \
  X("syncDel", L4_SYNC_DEL)

/* A service's balance word ([8] of its svcWords) and when_full word ([10]), by the config's names; the factor
 * word ([9]) is in percent within these bounds. */
#define L4_LAYOUT_BALANCE_MODES(X) \
  X("maglev", L4_BALANCE_MAGLEV)   \
  X("bounded", L4_BALANCE_BOUNDED)
#define L4_LAYOUT_WHEN_FULL(X) \
  X("drop", L4_FULL_DROP)      \
  X("reject", L4_FULL_REJECT)

/* An entry's state bits (the flow listing decodes them into TCP states). */
#define L4_LAYOUT_FLOW_STATES(X) \
  X("SYN", FL_SYN)               \
  X("REPLY", FL_REPLY)           \
  X("EST", FL_EST)               \
  X("FIN_C", FL_FIN_C)           \
  X("FIN_B", FL_FIN_B)           \
  X("RST", FL_RST)               \
  X("SYNCED", FL_SYNCED)

/* A sync record's fields (sync_log.h; src/dataplane/sync-record.ts decodes and encodes them). */
#define L4_LAYOUT_SYNC_FIELDS(X) L4_SYNC_REC_FIELDS(X)

/* The states a flow listing shows, by the numbers a flow filter's state bits and a listed entry's class use. */
#define L4_LAYOUT_FLOW_CLASSES(X) L4_FLOW_CLASSES(X)

/* The flags word of a backend ([5] of its bkWords) as TypeScript may set it; L4_BK_PRESENT is set here. */
#define L4_LAYOUT_BK_FLAGS(X) X("NO_SECOND_CHANCE", L4_BK_NO_SECOND_CHANCE)

/* The options word of a table. */
#define L4_LAYOUT_OPT_FLAGS(X)       \
  X("ICMP_ECHO", L4_OPT_ICMP_ECHO) \
  X("NO_ICMP_TRANSLATE", L4_OPT_NO_ICMP_TRANSLATE)

/* A service's hash_mode word ([3] of its svcWords), by the config's names for it. */
#define L4_LAYOUT_HASH_MODES(X) \
  X("5tuple", L4_HASH_5TUPLE)   \
  X("src", L4_HASH_SRC)

/* The verdict trace (trace.h): a record's field offsets, its direction and flow-verdict numbers, a match's flags. */
#define L4_LAYOUT_TRACE_FIELDS(X) L4_TRACE_REC_FIELDS(X)
#define L4_LAYOUT_TRACE_DIRS(X) L4_TRACE_DIRS(X)
#define L4_LAYOUT_TRACE_FLOWS(X) L4_TRACE_FLOWS(X)
#define L4_LAYOUT_TRACE_MATCH_FLAGS(X) \
  X("CLIENT", L4_TM_CLIENT)            \
  X("CLIENT_PORT", L4_TM_CLIENT_PORT)  \
  X("SERVICE", L4_TM_SERVICE)          \
  X("BACKEND", L4_TM_BACKEND)          \
  X("DROPS", L4_TM_DROPS)

/* A backend's flags as the table holds them (an explanation's backend_flags). */
#define L4_LAYOUT_BK_TABLE_FLAGS(X)  \
  X("PRESENT", L4_BK_PRESENT)        \
  X("NO_SECOND_CHANCE", L4_BK_NO_SECOND_CHANCE) \
  X("IN_RING", L4_BK_IN_RING)

/* An explanation (explain.h): the word each field is at, and its verdicts. */
#define L4_EXPLAIN_AT(field) (offsetof(struct l4_explain, field) / sizeof(uint32_t))
#define L4_LAYOUT_EXPLAIN_FIELDS(X)                                  \
  X("verdict", L4_EXPLAIN_AT(verdict))                               \
  X("dropReason", L4_EXPLAIN_AT(drop_reason))                        \
  X("service", L4_EXPLAIN_AT(service))                               \
  X("aclEntries", L4_EXPLAIN_AT(acl_entries))                        \
  X("aclIndex", L4_EXPLAIN_AT(acl_index))                            \
  X("aclAllowed", L4_EXPLAIN_AT(acl_allowed))                        \
  X("rate", L4_EXPLAIN_AT(rate))                                     \
  X("burst", L4_EXPLAIN_AT(burst))                                   \
  X("rateTokensMilli", L4_EXPLAIN_AT(rate_tokens_milli))             \
  X("rateAllows", L4_EXPLAIN_AT(rate_allows))                        \
  X("flowFound", L4_EXPLAIN_AT(flow_found))                          \
  X("flowBackend", L4_EXPLAIN_AT(flow_backend))                      \
  X("flowService", L4_EXPLAIN_AT(flow_service))                      \
  X("flowState", L4_EXPLAIN_AT(flow_state))                          \
  X("flowClass", L4_EXPLAIN_AT(flow_class))                          \
  X("flowIdle", L4_EXPLAIN_AT(flow_idle))                            \
  X("flowValid", L4_EXPLAIN_AT(flow_valid))                          \
  X("flowOffRing", L4_EXPLAIN_AT(flow_off_ring))                     \
  X("ringSize", L4_EXPLAIN_AT(ring_size))                            \
  X("ringSlot", L4_EXPLAIN_AT(ring_slot))                            \
  X("ringBackend", L4_EXPLAIN_AT(ring_backend))                      \
  X("prevRingSize", L4_EXPLAIN_AT(prev_ring_size))                   \
  X("prevRingSlot", L4_EXPLAIN_AT(prev_ring_slot))                   \
  X("prevBackend", L4_EXPLAIN_AT(prev_backend))                      \
  X("prevSecondChance", L4_EXPLAIN_AT(prev_second_chance))           \
  X("backend", L4_EXPLAIN_AT(backend))                               \
  X("backendFlags", L4_EXPLAIN_AT(backend_flags))                    \
  X("backendPort", L4_EXPLAIN_AT(backend_port))                      \
  X("backendAddr", L4_EXPLAIN_AT(backend_addr))                      \
  X("vipPort", L4_EXPLAIN_AT(vip_port))                              \
  X("vipAddr", L4_EXPLAIN_AT(vip_addr))                              \
  X("generation", L4_EXPLAIN_AT(generation))                         \
  X("synChoice", L4_EXPLAIN_AT(syn_choice))

#define L4_LAYOUT_EXPLAIN_VERDICTS(X) \
  X("drop", L4_EXPLAIN_DROP)          \
  X("entry", L4_EXPLAIN_ENTRY)        \
  X("ring", L4_EXPLAIN_RING)

/* Why a SYN leaves a live entry (admission.h enum l4_syn_choice), as an explanation's synChoice word says. */
#define L4_LAYOUT_SYN_CHOICES(X)                    \
  X("follows", L4_SYN_FOLLOWS)                      \
  X("closed", L4_SYN_ON_CLOSED)                     \
  X("backend_leaving", L4_SYN_BACKEND_LEAVING)      \
  X("retransmitted", L4_SYN_RETRANSMITTED)

/* The rows of a flow-move question (flowMoves() in addon.c): [service_slot, hash_mode, ring_offset, ring_size]. */
#define L4_MOVE_WORDS 4

#endif
