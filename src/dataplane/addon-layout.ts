// The contract between src/ and the addon, checked once when the addon is loaded. The addon exports its layout
// (native/core/layout.h, counters.h, drop_reasons.h: word counts, flag bits, counter names, drop reasons);
// src/ has its own copies where it must know them at compile time (src/dataplane/tables.ts, src/dataplane/flow-state.ts,
// src/dataplane/counter-names.ts). An addon built from other headers than this src/ was written against would misread
// tables and flow states or publish counters under the wrong names, so it is refused with the first difference.
import { BK_TABLE_FLAGS, EXPLAIN_FIELDS, EXPLAIN_VERDICTS, EXPLAIN_WORDS, MOVE_WORDS, SYN_CHOICES } from './explain';
import { FLOW_BITS, FLOW_CLASSES } from './flow-state';
import { HEARTBEAT_COUNTER, NO_DROP_REASON, OBJECT_COUNTER_METRICS, QUEUE_COUNTER_METRICS } from './counter-names';
import { TRACE_DIR_NUMBERS, TRACE_FIELDS, TRACE_FLOW_NUMBERS, TRACE_MATCH_FLAGS, TRACE_MATCHES, TRACE_RECORD_BYTES } from './trace-record';
import { SYNC_FIELDS, SYNC_OPS, SYNC_RECORD_BYTES } from './sync-record';
import { ACL_WORDS, BALANCE_MODES, BK_FLAGS, BK_WORDS, FACTOR_PCT, HASH_MODES, WHEN_FULL, LIMIT_WORDS, NO_BACKEND, OPT_FLAGS, PREV_RING_WORDS, SVC_WORDS, TIMEOUT_WORDS } from './tables';

/** The flow-table entry size (docs/design.md item 13: one cache line); sizes the flow table's memory in the start-up log. */
export const FLOW_ENTRY_BYTES = 64;

export interface AddonLayout {
  readonly svcWords: number;
  readonly bkWords: number;
  readonly limitWords: number;
  readonly aclWords: number;
  readonly timeoutWords: number;
  readonly prevRingWords: number;
  readonly noBackend: number;
  readonly flowEntryBytes: number;
  readonly traceRecordBytes: number;
  readonly traceMatches: number;
  /** The verdict trace (native/core/trace.h, src/dataplane/trace-record.ts): record offsets, names by number, match flags. */
  readonly traceFields: Readonly<Record<string, number>>;
  readonly traceDirs: Readonly<Record<string, number>>;
  readonly traceFlows: Readonly<Record<string, number>>;
  readonly traceMatchFlags: Readonly<Record<string, number>>;
  readonly explainWords: number;
  readonly moveWords: number;
  /** Flow-state sync records (native/core/sync_log.h, src/dataplane/sync-record.ts): size, ops, field offsets. */
  readonly syncRecordBytes: number;
  readonly syncAdd: number;
  readonly syncDel: number;
  readonly syncFields: Readonly<Record<string, number>>;
  readonly flowStates: Readonly<Record<string, number>>;
  /** The state names a listing shows, by the number a flow query and a listed entry use (native/core/flow_query.h). */
  readonly flowClasses: Readonly<Record<string, number>>;
  readonly bkFlags: Readonly<Record<string, number>>;
  readonly optFlags: Readonly<Record<string, number>>;
  readonly hashModes: Readonly<Record<string, number>>;
  readonly balanceModes: Readonly<Record<string, number>>;
  readonly whenFull: Readonly<Record<string, number>>;
  readonly factorMinPct: number;
  readonly factorMaxPct: number;
  readonly bkTableFlags: Readonly<Record<string, number>>;
  /** An explanation's fields by word (native/core/explain.h) and its verdicts (src/dataplane/explain.ts). */
  readonly explainFields: Readonly<Record<string, number>>;
  readonly explainVerdicts: Readonly<Record<string, number>>;
  /** Why a SYN leaves a live entry (native/core/admission.h), as an explanation's synChoice word says. */
  readonly synChoices: Readonly<Record<string, number>>;
  /** In block order (native/core/counters.h): the counters are read by position. */
  readonly queueCounters: readonly string[];
  readonly dropReasons: readonly string[];
  readonly objectCounters: readonly string[];
}

/** What src/ expects: numbers and bit sets exactly; counter names as sets (src/ reads them in the addon's order). */
export interface ExpectedLayout {
  numbers: Readonly<Record<string, number>>;
  bits: Readonly<Record<string, Readonly<Record<string, number>>>>;
  counters: Readonly<Record<'queueCounters' | 'objectCounters', readonly string[]>>;
}

export const EXPECTED_LAYOUT: ExpectedLayout = {
  numbers: {
    svcWords: SVC_WORDS,
    bkWords: BK_WORDS,
    limitWords: LIMIT_WORDS,
    aclWords: ACL_WORDS,
    timeoutWords: TIMEOUT_WORDS,
    prevRingWords: PREV_RING_WORDS,
    noBackend: NO_BACKEND,
    flowEntryBytes: FLOW_ENTRY_BYTES,
    traceRecordBytes: TRACE_RECORD_BYTES,
    traceMatches: TRACE_MATCHES,
    explainWords: EXPLAIN_WORDS,
    moveWords: MOVE_WORDS,
    factorMinPct: FACTOR_PCT.min,
    factorMaxPct: FACTOR_PCT.max,
    syncRecordBytes: SYNC_RECORD_BYTES,
    syncAdd: SYNC_OPS.add,
    syncDel: SYNC_OPS.del,
  },
  bits: {
    flowStates: FLOW_BITS,
    flowClasses: FLOW_CLASSES,
    bkFlags: BK_FLAGS,
    optFlags: OPT_FLAGS,
    hashModes: HASH_MODES,
    balanceModes: BALANCE_MODES,
    whenFull: WHEN_FULL,
    traceFields: TRACE_FIELDS,
    traceDirs: TRACE_DIR_NUMBERS,
    traceFlows: TRACE_FLOW_NUMBERS,
    traceMatchFlags: TRACE_MATCH_FLAGS,
    bkTableFlags: BK_TABLE_FLAGS,
    explainFields: EXPLAIN_FIELDS,
    explainVerdicts: EXPLAIN_VERDICTS,
    synChoices: SYN_CHOICES,
    syncFields: SYNC_FIELDS,
  },
  counters: {
    queueCounters: [...Object.keys(QUEUE_COUNTER_METRICS), HEARTBEAT_COUNTER],
    objectCounters: Object.keys(OBJECT_COUNTER_METRICS),
  },
};

const WHERE = {
  queueCounters: 'src/dataplane/counter-names.ts QUEUE_COUNTER_METRICS',
  objectCounters: 'src/dataplane/counter-names.ts OBJECT_COUNTER_METRICS',
} as const;

const show = (v: unknown): string => (v === undefined ? 'nothing' : JSON.stringify(v));
const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** A list of distinct non-empty names, or what is wrong with it. */
function nameListProblem(key: string, v: unknown): string | null {
  if (!Array.isArray(v) || v.length === 0) return `${key}: src/ expects a list of names, the addon has ${show(v)}`;
  const seen = new Set<string>();
  for (const [i, n] of v.entries()) {
    if (typeof n !== 'string' || n === '') return `${key}[${i}]: src/ expects a name, the addon has ${show(n)}`;
    if (seen.has(n)) return `${key}: the addon has ${show(n)} twice`;
    seen.add(n);
  }
  return null;
}

/** The first difference between the addon's layout and what src/ expects, in words; null when they agree. */
export function layoutMismatch(actual: unknown, expected: ExpectedLayout = EXPECTED_LAYOUT): string | null {
  if (!isRecord(actual)) return `src/ expects an object from layout(), the addon has ${show(actual)}`;
  const known = new Set([...Object.keys(expected.numbers), ...Object.keys(expected.bits), ...Object.keys(expected.counters), 'dropReasons']);
  for (const [key, want] of Object.entries(expected.numbers)) {
    if (actual[key] !== want) return `${key}: src/ expects ${want}, the addon has ${show(actual[key])}`;
  }
  for (const [key, want] of Object.entries(expected.bits)) {
    const got = actual[key];
    if (!isRecord(got)) return `${key}: src/ expects ${show(want)}, the addon has ${show(got)}`;
    for (const [name, bit] of Object.entries(want)) {
      if (got[name] !== bit) return `${key}.${name}: src/ expects ${bit}, the addon has ${show(got[name])}`;
    }
    const extra = Object.keys(got).find((name) => !(name in want));
    if (extra !== undefined) return `${key}.${extra}: the addon has ${show(got[extra])}, src/ does not know it`;
  }
  for (const [key, want] of Object.entries(expected.counters) as Array<[keyof typeof WHERE, readonly string[]]>) {
    const got = actual[key];
    const bad = nameListProblem(key, got);
    if (bad) return bad;
    const names = new Set(got as string[]);
    const missing = want.find((n) => !names.has(n));
    if (missing !== undefined) return `${key}: src/ expects ${show(missing)} (${WHERE[key]}), the addon has no such counter`;
    const extra = (got as string[]).find((n) => !want.includes(n));
    if (extra !== undefined) return `${key}: the addon has ${show(extra)}, which ${WHERE[key]} does not name (it would not be published)`;
  }
  const drops = nameListProblem('dropReasons', actual.dropReasons);
  if (drops) return drops;
  const first = (actual.dropReasons as string[])[0];
  if (first !== NO_DROP_REASON) return `dropReasons[0]: src/ expects ${show(NO_DROP_REASON)}, the addon has ${show(first)}`;
  const unknown = Object.keys(actual).find((k) => !known.has(k));
  if (unknown !== undefined) return `${unknown}: the addon has ${show(actual[unknown])}, src/ does not know it`;
  return null;
}

/** The addon's layout, frozen, if it is the one src/ expects; else throws naming the first difference. */
export function checkLayout(actual: unknown, expected: ExpectedLayout = EXPECTED_LAYOUT): AddonLayout {
  const m = layoutMismatch(actual, expected);
  if (m !== null) {
    throw new Error(
      `l4nat addon layout: ${m}. The addon does not match this src/: rebuild it (npx node-gyp rebuild); if it is freshly built, ` +
        'native/core and src/ disagree: bring src/dataplane/tables.ts, src/dataplane/flow-state.ts, src/dataplane/explain.ts, src/dataplane/trace-record.ts, src/dataplane/sync-record.ts and src/dataplane/counter-names.ts in line with native/core/layout.h and counters.h',
    );
  }
  const a = actual as unknown as AddonLayout;
  return Object.freeze({
    ...a,
    flowStates: Object.freeze({ ...a.flowStates }),
    flowClasses: Object.freeze({ ...a.flowClasses }),
    bkFlags: Object.freeze({ ...a.bkFlags }),
    optFlags: Object.freeze({ ...a.optFlags }),
    hashModes: Object.freeze({ ...a.hashModes }),
    balanceModes: Object.freeze({ ...a.balanceModes }),
    whenFull: Object.freeze({ ...a.whenFull }),
    traceFields: Object.freeze({ ...a.traceFields }),
    traceDirs: Object.freeze({ ...a.traceDirs }),
    traceFlows: Object.freeze({ ...a.traceFlows }),
    traceMatchFlags: Object.freeze({ ...a.traceMatchFlags }),
    bkTableFlags: Object.freeze({ ...a.bkTableFlags }),
    explainFields: Object.freeze({ ...a.explainFields }),
    explainVerdicts: Object.freeze({ ...a.explainVerdicts }),
    synChoices: Object.freeze({ ...a.synChoices }),
    syncFields: Object.freeze({ ...a.syncFields }),
    queueCounters: Object.freeze([...a.queueCounters]),
    dropReasons: Object.freeze([...a.dropReasons]),
    objectCounters: Object.freeze([...a.objectCounters]),
  });
}
