// The shared test requirements (test/rigs/requirements.ts): a missing tool skips a test on a developer's machine and
// fails it under CI=true; and no test file decides on its own whether the machine has what it needs. No root needed.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { missingFor, skipUnlessCI, underCI } from './rigs/requirements';

test('a missing command is named with its Debian package; present ones are not', () => {
  assert.equal(missingFor({ root: false, commands: ['sh'] }), null);
  assert.equal(missingFor({ root: false, commands: ['sh', 'l4nat-no-such-tool'] }), 'needs l4nat-no-such-tool (Debian package l4nat-no-such-tool: bash scripts/install-deps.sh)');
  const saved = process.env.PATH;
  process.env.PATH = '/nonexistent';
  try {
    // /usr/sbin and /sbin are searched whatever PATH says (a non-root PATH often lacks them); tcpdump is in neither.
    assert.match(missingFor({ root: false, commands: ['tcpdump', 'iperf3'] }) ?? '', /^needs tcpdump, iperf3 \(Debian packages tcpdump, iperf3: bash scripts\/install-deps\.sh\)$/);
  } finally {
    process.env.PATH = saved;
  }
});

test('a missing C header is named with its package, after the missing commands', () => {
  assert.equal(missingFor({ root: false, headers: ['stdio.h'] }), null);
  assert.equal(missingFor({ root: false, commands: ['l4nat-no-such-tool'], headers: ['l4nat-no-such-header.h'] }), 'needs l4nat-no-such-tool, l4nat-no-such-header.h (Debian packages l4nat-no-such-tool, l4nat-no-such-header.h: bash scripts/install-deps.sh)');
});

test('skipUnlessCI: the reason skips, except under CI=true, where it throws naming what is missing', () => {
  assert.equal(skipUnlessCI('needs haproxy', {}), 'needs haproxy');
  assert.equal(skipUnlessCI('needs haproxy', { CI: 'false' }), 'needs haproxy');
  assert.equal(skipUnlessCI(false, { CI: 'true' }), false);
  assert.equal(skipUnlessCI(null, { CI: 'true' }), false);
  assert.throws(() => skipUnlessCI('needs haproxy (Debian package haproxy)', { CI: 'true' }), /^Error: CI=true, and this test needs haproxy \(Debian package haproxy\): under CI a missing tool is a missing install step/);
  assert.equal(underCI({ CI: 'true' }), true);
  assert.equal(underCI({}), false);
});

test('a test file whose tool is missing: skipped without CI, failed under CI=true', () => {
  const dir = mkdtempSync(join(tmpdir(), 'l4nat-req-'));
  try {
    const file = join(dir, 'needs.test.js');
    const req = JSON.stringify(join(__dirname, 'rigs', 'requirements.js'));
    writeFileSync(file, `const { test } = require('node:test');\nconst { skipUnless } = require(${req});\ntest('uses a tool', { skip: skipUnless({ root: false, commands: ['l4nat-no-such-tool'] }) }, () => {});\n`);
    const env = { ...process.env };
    delete env.CI;
    delete env.NODE_TEST_CONTEXT; // set by the outer runner: the inner one would report to it instead of stdout
    const dev = spawnSync(process.execPath, ['--test', file], { encoding: 'utf8', env });
    assert.equal(dev.status, 0, dev.stdout + dev.stderr);
    assert.match(dev.stdout, /# skipped 1/);
    const ci = spawnSync(process.execPath, ['--test', file], { encoding: 'utf8', env: { ...env, CI: 'true' } });
    assert.notEqual(ci.status, 0, 'under CI=true the run fails');
    assert.match(ci.stdout + ci.stderr, /needs l4nat-no-such-tool/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('no test file checks root, /dev/net/tun, installed commands or CI on its own (they all go through test/rigs/requirements.ts)', () => {
  const dir = join(__dirname, '..', '..', 'test');
  // up-args.test.ts runs one test as root and its counterpart as another user: not a missing tool.
  const own = /process\.getuid\(\) !== 0|process\.getuid\?\.\(\) !== 0|existsSync\('\/dev\/net\/tun'\)|command -v|labSkipReason|l4natUnavailable\(\)|process\.env\.CI\b/;
  const offenders = readdirSync(dir)
    .filter((f) => f.endsWith('.test.ts') && f !== 'up-args.test.ts' && f !== 'requirements.test.ts')
    .filter((f) => own.test(readFileSync(join(dir, f), 'utf8')));
  assert.deepEqual(offenders, []);
});
