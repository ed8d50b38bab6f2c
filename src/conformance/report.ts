// The conformance table: check × {l4nat, haproxy} with the outcome and its evidence, as plain text (terminal) and
// Markdown (docs/conformance.md, results file).
// Layers: checks.ts (results) → this file → run.ts.
import type { Check, CheckResult } from './checks';
import type { TargetKind } from './target';

export interface Row {
  check: Pick<Check, 'id' | 'title' | 'proxyMustFail'>;
  results: Partial<Record<TargetKind, CheckResult>>;
}

function mark(r: CheckResult | undefined): string {
  if (!r) return 'not run';
  return r.outcome === 'pass' ? 'pass' : r.outcome === 'fail' ? 'FAIL' : r.outcome === 'error' ? 'ERROR' : 'n/a';
}

/** Markdown: one row per check, each target's cell "**pass** — evidence". */
export function markdownTable(rows: readonly Row[], targets: readonly TargetKind[]): string {
  const esc = (s: string): string => s.replace(/\|/g, '\\|').replace(/\n/g, ' ');
  const lines = [
    `| # | check | ${targets.join(' | ')} |`,
    `|---|---|${targets.map(() => '---').join('|')}|`,
  ];
  for (const row of rows) {
    const cells = targets.map((t) => {
      const r = row.results[t];
      return r ? `**${mark(r)}** — ${esc(r.evidence)}` : 'not run';
    });
    lines.push(`| ${row.check.id} | ${esc(row.check.title)}${row.check.proxyMustFail ? ' ¹' : ''} | ${cells.join(' | ')} |`);
  }
  return lines.join('\n');
}

/** Plain text for a terminal: a compact outcome grid, then the evidence of every cell. */
export function textTable(rows: readonly Row[], targets: readonly TargetKind[]): string {
  const idW = Math.max(2, ...rows.map((r) => r.check.id.length));
  const titleW = 64;
  const cut = (s: string, n: number): string => (s.length > n ? `${s.slice(0, n - 1)}…` : s.padEnd(n));
  const head = `${'#'.padEnd(idW)}  ${'check'.padEnd(titleW)}  ${targets.map((t) => t.padEnd(8)).join('  ')}`;
  const out = [head, '-'.repeat(head.length)];
  for (const row of rows) {
    out.push(`${row.check.id.padEnd(idW)}  ${cut(row.check.title, titleW)}  ${targets.map((t) => mark(row.results[t]).padEnd(8)).join('  ')}`);
  }
  out.push('');
  for (const row of rows) {
    for (const t of targets) {
      const r = row.results[t];
      if (r) out.push(`${row.check.id.padEnd(idW)} ${t.padEnd(8)} ${mark(r).padEnd(5)} ${r.evidence}`);
    }
  }
  return out.join('\n');
}

/** The checks whose outcome differs from what the suite requires: l4nat passes all, HAProxy fails the marked ones. */
export function violations(rows: readonly Row[]): string[] {
  const bad: string[] = [];
  for (const row of rows) {
    const l = row.results.l4nat;
    if (l && l.outcome !== 'pass' && l.outcome !== 'n/a') bad.push(`${row.check.id} l4nat: ${l.outcome} — ${l.evidence}`);
    const h = row.results.haproxy;
    if (h && h.outcome === 'error') bad.push(`${row.check.id} haproxy: ${h.evidence}`);
    else if (h && row.check.proxyMustFail && h.outcome !== 'fail') bad.push(`${row.check.id} haproxy should fail but: ${h.outcome} — ${h.evidence}`);
  }
  return bad;
}
