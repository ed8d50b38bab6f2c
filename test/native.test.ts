// The packet core's own tests (native/test: plain C, no Node) run from node:test: the fixture suite
// bin/core_test under ASan/UBSan, and a short libFuzzer run of bin/fuzz_packet when clang built it.
// `npm test` builds them first (make -C native/test); run alone, this file builds them when they are
// missing or older than their sources.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { spawnSync, SpawnSyncReturns } from 'child_process';
import { existsSync, readdirSync, statSync, mkdirSync } from 'fs';
import { join, resolve } from 'path';

const ROOT = resolve(__dirname, '..', '..'); // dist/test -> repository root
const DIR = join(ROOT, 'native', 'test');
const CORE_TEST = join(DIR, 'bin', 'core_test');
const FUZZER = join(DIR, 'bin', 'fuzz_packet');
const FUZZ_SECONDS = 20;

function newestSource(): number {
  let newest = 0;
  for (const dir of [join(ROOT, 'native', 'core'), DIR]) {
    for (const name of readdirSync(dir)) {
      if (/\.(c|h)$/.test(name) || name === 'Makefile') newest = Math.max(newest, statSync(join(dir, name)).mtimeMs);
    }
  }
  return newest;
}

function tail(text: string, lines: number): string {
  return text.split('\n').slice(-lines).join('\n');
}

function ensureBuilt(): void {
  if (existsSync(CORE_TEST) && statSync(CORE_TEST).mtimeMs >= newestSource()) return;
  const r = spawnSync('make', ['-C', DIR], { encoding: 'utf8', timeout: 10 * 60_000 });
  assert.equal(r.error, undefined, `make -C native/test could not run: ${r.error?.message}`);
  assert.equal(r.status, 0, `make -C native/test failed:\n${tail(r.stdout + r.stderr, 40)}`);
}

function run(cmd: string, args: string[], timeoutMs: number): SpawnSyncReturns<string> {
  return spawnSync(cmd, args, { cwd: DIR, encoding: 'utf8', timeout: timeoutMs, maxBuffer: 64 * 1024 * 1024 });
}

test('native packet core: fixture suite (bin/core_test, ASan + UBSan)', (t) => {
  ensureBuilt();
  const r = run(CORE_TEST, [], 10 * 60_000);
  assert.equal(r.error, undefined, `core_test could not run: ${r.error?.message}`);
  const summary = /^(\d+) passed, (\d+) failed$/m.exec(r.stdout);
  const failures = r.stdout.split('\n').filter((l) => l.startsWith('FAIL'));
  const report = `${failures.join('\n')}\n--- stderr (tail) ---\n${tail(r.stderr, 60)}`;
  assert.ok(summary, `core_test printed no summary line (exit ${r.status}, signal ${r.signal}):\n${report}`);
  t.diagnostic(`core_test: ${summary[0]}`);
  assert.equal(summary[2], '0', `core_test: ${summary[0]}\n${report}`);
  assert.equal(r.status, 0, `core_test exited ${r.status}\n${report}`);
  assert.ok(Number(summary[1]) > 0, 'core_test ran no tests');
});

test(`native packet core: fuzz_packet for ${FUZZ_SECONDS} s (libFuzzer, ASan + UBSan)`, (t) => {
  ensureBuilt();
  if (!existsSync(FUZZER)) {
    t.skip('bin/fuzz_packet not built: clang with the libFuzzer runtime is not installed');
    return;
  }
  mkdirSync(join(DIR, 'bin', 'corpus-work'), { recursive: true });
  const r = run(
    FUZZER,
    [`-max_total_time=${FUZZ_SECONDS}`, '-timeout=10', '-rss_limit_mb=2048', '-artifact_prefix=bin/',
      '-print_final_stats=1', 'bin/corpus-work', 'corpus'],
    (FUZZ_SECONDS + 120) * 1000,
  );
  assert.equal(r.error, undefined, `fuzz_packet could not run: ${r.error?.message}`);
  const done = /^Done (\d+) runs in (\d+) second/m.exec(r.stderr);
  if (done) t.diagnostic(`fuzz_packet: ${done[1]} runs in ${done[2]} s`);
  assert.equal(r.status, 0, `fuzz_packet found a problem (exit ${r.status}; input saved under native/test/bin/):\n${tail(r.stderr, 60)}`);
  assert.ok(done, `fuzz_packet did not finish normally:\n${tail(r.stderr, 20)}`);
});
