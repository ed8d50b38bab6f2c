// Health probes against local servers (TCP, HTTP status, command exit codes and timeouts) and the
// rise/fall state machine with its timing rule (jitter only shortens the wait). No root needed.
import assert from 'node:assert/strict';
import { createServer as createHttp } from 'node:http';
import { createServer as createTcp } from 'node:net';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import { HealthChecker, type ProbeFn } from '../src/health/checker';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { probe, probeCommand } from '../src/health/probe';
import type { HealthCheckSpec } from '../src/config/model';

const spec = (o: Partial<HealthCheckSpec>): HealthCheckSpec => ({
  type: 'tcp', interval: 1, timeout: 0.5, rise: 2, fall: 3, jitter: 0, path: '/', expectStatus: [], tlsVerify: false, ...o,
});
const local = (port: number): { addr: string; family: 4; port: number } => ({ addr: '127.0.0.1', family: 4, port });

test('tcp: a listening port passes, a closed one fails with ECONNREFUSED', async () => {
  const srv = createTcp((s) => s.end()).listen(0, '127.0.0.1');
  await new Promise((r) => srv.once('listening', r));
  const port = (srv.address() as AddressInfo).port;
  assert.deepEqual((await probe(spec({}), local(port))).ok, true);
  srv.close();
  await new Promise((r) => srv.once('close', r));
  const r = await probe(spec({}), local(port));
  assert.equal(r.ok, false);
  assert.equal(r.detail, 'connect ECONNREFUSED');
});

test('http: expected status passes, another fails naming both; a hung server times out; port override', async () => {
  let status = 200;
  let hang = false;
  let seenPath = '';
  const srv = createHttp((req, res) => {
    seenPath = req.url ?? '';
    if (hang) return;
    res.statusCode = status;
    res.end('x');
  }).listen(0, '127.0.0.1');
  await new Promise((r) => srv.once('listening', r));
  const port = (srv.address() as AddressInfo).port;
  try {
    const s = spec({ type: 'http', path: '/healthz', expectStatus: [200, 204], port });
    assert.equal((await probe(s, local(1))).ok, true, 'checks the override port, not the backend port');
    assert.equal(seenPath, '/healthz');
    status = 503;
    assert.deepEqual(await probe(s, local(1)).then((r) => [r.ok, r.detail]), [false, 'status 503, expected 200|204']);
    status = 302;
    assert.equal((await probe(spec({ type: 'http', port }), local(1))).ok, true, 'default: any 2xx or 3xx');
    hang = true;
    const t = await probe(spec({ type: 'http', port, timeout: 0.2 }), local(1));
    assert.deepEqual([t.ok, t.detail], [false, 'timeout after 200 ms']);
    assert.ok(t.ms >= 190 && t.ms < 1000, `${t.ms} ms`);
  } finally {
    srv.closeAllConnections();
    srv.close();
  }
});

test('command: exit 0 passes with the backend in its environment; exit 2 fails with its stderr; a hung one is killed at the timeout', async () => {
  const node = process.execPath;
  // Generous timeouts: starting node takes a while on a loaded machine.
  const ok = await probe(spec({ type: 'command', interval: 10, timeout: 10, command: [node, '-e', 'process.exit(process.env.L4NAT_BACKEND_ADDR === "127.0.0.1" && process.env.L4NAT_BACKEND_PORT === "8080" ? 0 : 1)'] }), local(8080));
  assert.equal(ok.ok, true, ok.detail);
  const bad = await probe(spec({ type: 'command', interval: 10, timeout: 10, command: [node, '-e', 'console.error("disk full"); process.exit(2)'] }), local(8080));
  assert.deepEqual([bad.ok, bad.detail], [false, 'exit code 2: disk full']);
  const hung = await probe(spec({ type: 'command', timeout: 0.3, command: [node, '-e', 'setTimeout(() => {}, 60000)'] }), local(8080));
  assert.deepEqual([hung.ok, hung.detail], [false, 'timeout after 300 ms']);
  const missing = await probe(spec({ type: 'command', command: ['/nonexistent/check'] }), local(8080));
  assert.deepEqual([missing.ok, missing.detail], [false, 'cannot run /nonexistent/check: ENOENT']);
});

/** A process is gone once it is reaped, or a zombie where nobody reaps orphans (state Z). */
function gone(pid: number): boolean {
  if (!existsSync(`/proc/${pid}`)) return true;
  try {
    return /^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return true;
  }
}

test('command: what a check leaves running in the background is killed when it exits (its process group)', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'l4nat-check-'));
  const pidFile = join(dir, 'pid');
  try {
    const r = await probe(spec({ type: 'command', interval: 10, timeout: 10, command: ['/bin/sh', '-c', `sleep 60 & echo $! > ${pidFile}; exit 0`] }), local(8080));
    assert.equal(r.ok, true, r.detail);
    const pid = Number(readFileSync(pidFile, 'utf8'));
    assert.ok(pid > 0);
    for (let i = 0; i < 40 && !gone(pid); i++) await new Promise((res) => setTimeout(res, 50));
    assert.ok(gone(pid), `the background sleep (pid ${pid}) outlived the check`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('command with ambient capabilities: run through setpriv; without setpriv the error names setpriv, not the check', async () => {
  const node = process.execPath;
  // Through setpriv (clearing sets that are empty here needs no privilege): the check runs and passes.
  const ok = await probeCommand(local(8080), [node, '-e', 'process.exit(0)'], 10_000, 1n << 12n);
  assert.deepEqual([ok.ok, ok.detail], [true, '']);
  // A check setpriv cannot start: setpriv says which (exit 127).
  const missing = await probeCommand(local(8080), ['/nonexistent/check'], 10_000, 1n << 12n);
  assert.equal(missing.ok, false);
  assert.match(missing.detail, /^exit code 127: setpriv: failed to execute \/nonexistent\/check/);
  const path = process.env.PATH;
  const empty = mkdtempSync(join(tmpdir(), 'l4nat-nopath-'));
  process.env.PATH = empty; // no setpriv to be found
  try {
    const r = await probeCommand(local(8080), [node, '-e', 'process.exit(0)'], 10_000, 1n << 12n);
    assert.deepEqual([r.ok, r.detail], [false, "cannot run setpriv (util-linux), which runs command checks without l4nat's capabilities: ENOENT"]);
  } finally {
    process.env.PATH = path;
    rmSync(empty, { recursive: true, force: true });
  }
});

test('rise/fall: starts up with fall−1 failures counted, goes down after fall failures, up after rise successes', async () => {
  const results: boolean[] = [];
  const fake: ProbeFn = async () => {
    const ok = results.shift() ?? true;
    return { ok, ms: 1, detail: ok ? '' : 'connect ECONNREFUSED' };
  };
  const changes: string[] = [];
  const c = new HealthChecker('k', spec({ fall: 3, rise: 2 }), local(1), (_c, t) => changes.push(`${t.from}->${t.to}`), fake);
  (c as unknown as { stopped: boolean }).stopped = false; // run probes by hand, no timer
  const run = async (ok: boolean): Promise<void> => {
    results.push(ok);
    await c.runOnce();
    c.stop();
    (c as unknown as { stopped: boolean }).stopped = false;
  };
  await run(true);
  assert.equal(c.state, 'up');
  await run(false);
  await run(false);
  assert.equal(c.state, 'up', 'two failures < fall 3');
  await run(false);
  assert.equal(c.state, 'down');
  await run(true);
  assert.equal(c.state, 'down', 'one success < rise 2');
  await run(false);
  await run(true);
  await run(true);
  assert.equal(c.state, 'up');
  assert.deepEqual(changes, ['up->down', 'down->up']);
  assert.match(c.transitions[0].reason, /connect ECONNREFUSED \(3 failed tcp check\(s\) in a row, fall 3\)/);
  assert.deepEqual(c.checks, { ok: 4, failed: 4 });
  c.stop();

  const fresh = new HealthChecker('k2', spec({ fall: 3 }), local(1), (_c, t) => changes.push(`fresh ${t.to}`), fake);
  (fresh as unknown as { stopped: boolean }).stopped = false;
  results.push(false);
  await fresh.runOnce();
  fresh.stop();
  assert.equal(fresh.state, 'down', 'a new backend goes down at its first failed check');
});

test('jitter only shortens the wait: interval × (1 − jitter × random)', () => {
  for (const r of [0, 0.5, 0.999]) {
    const c = new HealthChecker('k', spec({ interval: 2, jitter: 0.2 }), local(1), () => undefined, undefined, () => r);
    const d = c.nextDelayMs();
    assert.ok(d <= 2000 && d >= 1600, `${d}`);
  }
});

test('https: a self-signed backend passes with tls_verify false (default) and fails, naming the reason, with tls_verify true', async () => {
  const { execFileSync } = await import('node:child_process');
  const { mkdtempSync, readFileSync, rmSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const { join } = await import('node:path');
  const { createServer } = await import('node:https');
  const dir = mkdtempSync(join(tmpdir(), 'l4nat-https-'));
  try {
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', 'k.pem', '-out', 'c.pem', '-days', '1', '-subj', '/CN=backend'], { cwd: dir, stdio: 'ignore' });
    const srv = createServer({ key: readFileSync(join(dir, 'k.pem')), cert: readFileSync(join(dir, 'c.pem')) }, (_req, res) => res.end('ok')).listen(0, '127.0.0.1');
    await new Promise((r) => srv.once('listening', r));
    const port = (srv.address() as AddressInfo).port;
    try {
      assert.equal((await probe(spec({ type: 'https', timeout: 5, interval: 5 }), local(port))).ok, true);
      const v = await probe(spec({ type: 'https', tlsVerify: true, timeout: 5, interval: 5 }), local(port));
      assert.equal(v.ok, false);
      assert.match(v.detail, /^https (DEPTH_ZERO_SELF_SIGNED_CERT|SELF_SIGNED_CERT_IN_CHAIN|ERR_TLS_CERT_ALTNAME_INVALID)/);
    } finally {
      srv.close();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
