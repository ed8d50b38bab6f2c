// `npm run conformance`: every check of checks.ts through l4nat and through HAProxy, then the table (terminal and
// Markdown) and a JSON file with the raw observations. Needs root, l4nat built, haproxy and gcc.
//   node dist/src/conformance/run.js [--only 1,3a,7c] [--targets l4nat,haproxy] [--bulk-mib 256]
//        [--concurrent 200] [--out dist/conformance-results.md] [--json dist/conformance-results.json]
// (the default files live under dist/, which git ignores).
// Exit status: 0 when l4nat passes every check and HAProxy fails every check a proxy must fail, 1 otherwise,
// 2 on bad arguments.
// Layers: checks.ts → report.ts → this file.
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { CHECKS, CheckContext, DEFAULT_CONTEXT, runCheck } from './checks';
import { markdownTable, Row, textTable, violations } from './report';
import { TargetKind, TARGETS } from './target';

export interface RunOptions {
  only: string[] | null;
  targets: TargetKind[];
  ctx: CheckContext;
  out: string;
  json: string;
}

export function parseRunArgs(argv: readonly string[]): RunOptions {
  const o: RunOptions = {
    only: null,
    targets: [...TARGETS],
    ctx: { ...DEFAULT_CONTEXT },
    out: 'dist/conformance-results.md',
    json: 'dist/conformance-results.json',
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const v = argv[++i];
    if (v === undefined) throw new Error(`${a} needs a value`);
    const int = (lo: number, hi: number): number => {
      const n = Number(v);
      if (!Number.isInteger(n) || n < lo || n > hi) throw new Error(`${a} expects an integer in ${lo}..${hi}, got ${v}`);
      return n;
    };
    if (a === '--only') {
      o.only = v.split(',').map((s) => s.trim()).filter(Boolean);
      const unknown = o.only.filter((id) => !CHECKS.some((c) => c.id === id || c.id.replace(/[a-z]$/, '') === id));
      if (unknown.length > 0) throw new Error(`--only: unknown check ${unknown.join(', ')} (checks: ${CHECKS.map((c) => c.id).join(', ')})`);
    } else if (a === '--targets') {
      const ts = v.split(',').map((s) => s.trim());
      for (const t of ts) if (!TARGETS.includes(t as TargetKind)) throw new Error(`--targets expects l4nat and/or haproxy, got ${t}`);
      o.targets = ts as TargetKind[];
    } else if (a === '--bulk-mib') o.ctx.bulkBytes = int(1, 4096) * 1024 * 1024;
    else if (a === '--concurrent') o.ctx.concurrentConns = int(1, 2000);
    else if (a === '--out') o.out = v;
    else if (a === '--json') o.json = v;
    else throw new Error(`unknown argument ${a}`);
  }
  return o;
}

async function main(argv: readonly string[]): Promise<number> {
  let o: RunOptions;
  try {
    o = parseRunArgs(argv);
  } catch (err) {
    process.stderr.write(`conformance: ${(err as Error).message}\n`);
    return 2;
  }
  if (typeof process.getuid !== 'function' || process.getuid() !== 0) {
    process.stderr.write('conformance: needs root (network namespaces, TUN, captures)\n');
    return 1;
  }
  const checks = CHECKS.filter((c) => o.only === null || o.only.some((id) => c.id === id || c.id.replace(/[a-z]$/, '') === id));
  const started = new Date();
  const rows: Row[] = [];
  for (const check of checks) {
    const row: Row = { check, results: {} };
    rows.push(row);
    for (const t of o.targets) {
      process.stdout.write(`[${check.id}] ${t.padEnd(8)} ${check.title}\n`);
      const r = await runCheck(check, t, o.ctx);
      row.results[t] = r;
      process.stdout.write(`     → ${r.outcome} (${(r.ms / 1000).toFixed(1)} s): ${r.evidence}\n`);
    }
  }
  const seconds = (Date.now() - started.getTime()) / 1000;
  const bad = violations(rows);
  const header =
    `TCP conformance run ${started.toISOString().slice(0, 16).replace('T', ' ')} UTC on Linux ${os.release()}, ` +
    `${os.cpus().length} CPUs; ${(seconds / 60).toFixed(1)} min; integrity ${o.ctx.bulkBytes / 1024 / 1024} MiB each way, ` +
    `${o.ctx.concurrentConns} concurrent connections`;
  process.stdout.write(`\n${header}\n\n${textTable(rows, o.targets)}\n\n`);
  const md = [
    `${header}.`,
    '',
    markdownTable(rows, o.targets),
    '',
    '¹ a terminating proxy cannot pass this check; the suite asserts that HAProxy fails it.',
    '',
  ].join('\n');
  for (const f of [o.out, o.json]) mkdirSync(path.dirname(path.resolve(f)), { recursive: true });
  writeFileSync(o.out, md);
  writeFileSync(o.json, `${JSON.stringify({ started: started.toISOString(), seconds, ctx: o.ctx, rows }, null, 1)}\n`);
  process.stdout.write(`wrote ${o.out} and ${o.json}\n`);
  if (bad.length > 0) {
    process.stdout.write(`\nNOT AS REQUIRED:\n${bad.map((b) => `  ${b}`).join('\n')}\n`);
    return 1;
  }
  process.stdout.write('as required: l4nat passes every check; HAProxy fails every check a proxy must fail\n');
  return 0;
}

if (require.main === module) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (err: unknown) => {
      process.stderr.write(`conformance: ${err instanceof Error ? err.stack ?? err.message : String(err)}\n`);
      process.exit(1);
    },
  );
}
