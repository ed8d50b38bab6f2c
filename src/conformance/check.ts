// What a conformance check is: its row, what it needs of the run (CheckContext), what it reports (CheckResult),
// and runCheck, which turns a check's exception into an 'error' row instead of ending the run.
// Layers: target.ts (TargetKind) → this file → checks/*.ts (the checks) → checks.ts (the registry) → run.ts, tests.
import type { TargetKind } from './target';

/** 'error': the check could not run to the end (set-up failed, a helper crashed): neither pass nor a real fail. */
export type Outcome = 'pass' | 'fail' | 'n/a' | 'error';

export interface CheckResult {
  outcome: Outcome;
  /** One line of observed evidence (counter values, captured fields, what each end read). */
  evidence: string;
  /** Raw observations, for the JSON report. */
  data?: Record<string, unknown>;
  ms: number;
}

export interface CheckContext {
  /** Bytes each way on the single bulk connection (issue: 256 MiB). */
  bulkBytes: number;
  /** Concurrent connections of the many-connections integrity check, and bytes each way on each. */
  concurrentConns: number;
  concurrentBytes: number;
  /** Bytes of the path-MTU transfer. */
  pmtuBytes: number;
  /** Progress line sink (the runner prints them; tests use t.diagnostic). */
  log?: (line: string) => void;
}

export const DEFAULT_CONTEXT: CheckContext = {
  bulkBytes: 256 * 1024 * 1024,
  concurrentConns: 200,
  concurrentBytes: 256 * 1024,
  pmtuBytes: 8 * 1024 * 1024,
};

export interface Check {
  /** Row number and letter, e.g. "3a". */
  id: string;
  title: string;
  /** A terminating proxy cannot pass it: the suite asserts that HAProxy fails. */
  proxyMustFail: boolean;
  /** Targets for which the check means nothing (outcome n/a, with this reason). */
  notApplicable?: Partial<Record<TargetKind, string>>;
  run(kind: TargetKind, ctx: CheckContext): Promise<Omit<CheckResult, 'ms'>>;
}

/** Runs one check against one target; an exception becomes a failed result that quotes it. */
export async function runCheck(check: Check, kind: TargetKind, ctx: CheckContext = DEFAULT_CONTEXT): Promise<CheckResult> {
  const t0 = Date.now();
  const na = check.notApplicable?.[kind];
  if (na !== undefined) return { outcome: 'n/a', evidence: na, ms: 0 };
  try {
    const r = await check.run(kind, ctx);
    return { ...r, ms: Date.now() - t0 };
  } catch (err) {
    const msg = err instanceof Error ? err.message : String(err);
    // The first line says what failed; the last lines of a quoted process output usually say why.
    const lines = msg.split('\n').map((l) => l.trim()).filter((l) => l !== '' && !/^--- (stdout|stderr)/.test(l));
    const why = lines.length > 1 ? ` … ${lines.slice(-2).join(' | ')}` : '';
    return { outcome: 'error', evidence: `error: ${lines[0] ?? msg}${why}`, data: { error: msg }, ms: Date.now() - t0 };
  }
}

