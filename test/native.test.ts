// The packet core's own tests (native/test: plain C, no Node) run from node:test: the fixture suite
// bin/core_test under ASan/UBSan, short libFuzzer runs of the fuzzers clang built (fuzz_packet, fuzz_icmp,
// fuzz_coalesce), and the threaded tests under ThreadSanitizer.
// `npm test` builds them first (make -C native/test); run alone, this file builds them when they are
// missing or older than their sources.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { spawnSync, SpawnSyncReturns } from 'child_process';
import { existsSync, readdirSync, statSync, mkdirSync } from 'fs';
import { join, resolve } from 'path';
import { skipUnlessCI } from './rigs/requirements';

const ROOT = resolve(__dirname, '..', '..'); // dist/test -> repository root
const DIR = join(ROOT, 'native', 'test');
const CORE_TEST = join(DIR, 'bin', 'core_test');
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

// Each fuzzer with its own corpus: fuzz_packet from the seeds the fixtures wrote (corpus/), the other two from
// what earlier runs kept. Under CI=true a missing libFuzzer runtime fails these tests: CI installs it
// (scripts/install-deps.sh), so its absence there is a broken install, not something to skip.
const FUZZERS = [
  { name: 'fuzz_packet', what: 'l4_process', seconds: FUZZ_SECONDS, corpus: ['bin/corpus-work', 'corpus'] },
  { name: 'fuzz_icmp', what: 'ICMP error translation', seconds: 5, corpus: ['bin/corpus-icmp'] },
  { name: 'fuzz_coalesce', what: 'UDP coalescer', seconds: 5, corpus: ['bin/corpus-coalesce'] },
];

for (const f of FUZZERS) {
  test(`native packet core: ${f.name} (${f.what}) for ${f.seconds} s (libFuzzer, ASan + UBSan)`, (t) => {
    ensureBuilt();
    const bin = join(DIR, 'bin', f.name);
    if (!existsSync(bin)) {
      const why = `bin/${f.name} not built: clang with the libFuzzer runtime is not installed (Debian: clang libclang-rt-14-dev, see scripts/install-deps.sh)`;
      skipUnlessCI(why); // under CI=true it throws: there a missing libFuzzer runtime is a missing install step
      t.skip(why);
      return;
    }
    mkdirSync(join(DIR, f.corpus[0]), { recursive: true });
    const r = run(
      bin,
      [`-max_total_time=${f.seconds}`, '-timeout=10', '-rss_limit_mb=2048', '-artifact_prefix=bin/', '-print_final_stats=1', ...f.corpus],
      (f.seconds + 120) * 1000,
    );
    assert.equal(r.error, undefined, `${f.name} could not run: ${r.error?.message}`);
    const done = /^Done (\d+) runs in (\d+) second/m.exec(r.stderr);
    if (done) t.diagnostic(`${f.name}: ${done[1]} runs in ${done[2]} s`);
    assert.equal(r.status, 0, `${f.name} found a problem (exit ${r.status}; input saved under native/test/bin/):\n${tail(r.stderr, 60)}`);
    assert.ok(done, `${f.name} did not finish normally:\n${tail(r.stderr, 20)}`);
  });
}

// The threaded flow-table tests under ThreadSanitizer, with no suppressions: the seqlock readers read with
// relaxed atomics (native/core/flow_table.h), so any report is a real race. gcc ships TSan's runtime
// (libtsan, with build-essential); under CI=true its absence fails.
test('native packet core: threaded tests under ThreadSanitizer (make -C native/test tsan)', (t) => {
  const probe = spawnSync('gcc', ['-fsanitize=thread', '-x', 'c', '-', '-o', '/dev/null'], { input: 'int main(void){return 0;}', encoding: 'utf8' });
  if (probe.status !== 0) {
    const why = 'needs gcc to link with -fsanitize=thread (libtsan: Debian package build-essential)';
    skipUnlessCI(why); // under CI=true it throws: there a missing libtsan is a missing install step
    t.skip(why);
    return;
  }
  const r = spawnSync('make', ['-C', DIR, 'tsan'], { encoding: 'utf8', timeout: 15 * 60_000, maxBuffer: 64 * 1024 * 1024 });
  assert.equal(r.error, undefined, `make tsan could not run: ${r.error?.message}`);
  const summary = /^(\d+) passed, (\d+) failed$/m.exec(r.stdout);
  assert.equal(r.status, 0, `make tsan failed (exit ${r.status}):\n${tail(r.stdout + r.stderr, 60)}`);
  assert.ok(summary && summary[2] === '0' && Number(summary[1]) > 0, `no clean summary:\n${tail(r.stdout, 20)}`);
  t.diagnostic(`tsan: ${summary[0]}`);
});
