// Reload and drain in the lab, through the real CLI (`l4nat reload`, `l4nat backend drain`, `l4nat status`)
// and SIGHUP. Two services on one VIP (ports 8080 and 8081). Root-only.
//  - reload: changing service A's backends moves ring slots of A only; streams of both services go on; a bad
//    file (SIGHUP or `l4nat reload`) is rejected with its reason and changes nothing.
//  - drain: the drained backend's streams go on, new connections avoid it, and `drain --wait` reports it
//    drained once its last flow has closed (flow-table entries of the backend all closed).
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { adminRequest } from '../src/lab/admin-client';
import type { Lab } from '../src/lab/lab';
import { repoRoot } from '../src/lab/l4nat-process';
import { runClient, startStreams } from '../src/lab/workload';
import { configText, labBackends, withLab } from './rigs/fixture';
import { skipUnless } from './rigs/requirements';

/** Two services on the VIP: a (port 8080) with backends `a`, b (8081) with backends `b`; `overA` replaces fields of a. */
function config(lab: Lab, a: string[], b: string[], overA: Record<string, unknown> = {}): string {
  return configText({
    global: { queues: 2, stats_interval: 0 },
    services: [
      { name: 'a', vips: [lab.vip4], ports: [8080], backends: labBackends(lab, { ids: a, port: 8080 }), ...overA },
      { name: 'b', vips: [lab.vip4], ports: [8081], backends: labBackends(lab, { ids: b, port: 8081 }) },
    ],
  });
}

/** Every lab backend serves both services' ports. */
const servers = { ports: [8080, 8081] };

async function cli(lab: Lab, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const r = await lab.exec('lb', process.execPath, [join(repoRoot(), 'bin', 'l4nat.js'), ...args]);
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (e) {
    const err = e as { exitCode?: number | null; stdout?: string; stderr?: string; message: string };
    return { code: err.exitCode ?? 1, stdout: err.stdout ?? '', stderr: err.stderr ?? err.message };
  }
}

test('reload: only the changed service moves; streams of both services go on; a bad file changes nothing', { skip: skipUnless(), timeout: 180_000 }, async (t) => {
  await withLab({ backends: 3, ipv6: false, servers, config: (lab) => config(lab, ['b1', 'b2'], ['b1', 'b2']) }, async ({ lab, l4, configFile: file }) => {
    const sa = startStreams(lab, { target: lab.vip4, port: 8080, streams: 10, durationMs: 60_000, intervalMs: 20, stallMs: 30_000 });
    const sb = startStreams(lab, { target: lab.vip4, port: 8081, streams: 10, durationMs: 60_000, intervalMs: 20, stallMs: 30_000 });
    try {
      assert.deepEqual(await sa.streaming, { established: 10, failed: 0 });
      assert.deepEqual(await sb.streaming, { established: 10, failed: 0 });
      const [a0, b0] = [await sa.status(), await sb.status()];

      // A bad file through SIGHUP: rejected, logged, nothing changes.
      writeFileSync(file, config(lab, ['b1', 'b2', 'b3'], ['b1', 'b2'], { ports: [80800] }));
      l4.proc.kill('SIGHUP');
      const failed = await l4.waitForLog((r) => r.event === 'reload_failed', 5_000, 'reload_failed');
      assert.match(String(failed.err), /services\[0\]\.ports\[0\]: got 80800, expected PORT/);
      const bad = await cli(lab, ['reload']);
      assert.equal(bad.code, 1);
      assert.match(bad.stderr, /services\[0\]\.ports\[0\]: got 80800/);

      // A good one through `l4nat reload`: b3 joins service a, b1's weight doubles; service b is untouched.
      const heavierB1 = labBackends(lab, { ids: ['b1', 'b2', 'b3'], port: 8080 }).map((x) => (x.name === 'b1' ? { ...x, weight: 2 } : x));
      writeFileSync(file, config(lab, ['b1', 'b2', 'b3'], ['b1', 'b2'], { backends: heavierB1 }));
      const ok = await cli(lab, ['reload']);
      assert.equal(ok.code, 0, ok.stderr);
      assert.match(ok.stdout, /changed 10\.200\.0\.10:8080\/tcp; 1 unchanged/);
      const rec = await l4.waitForLog((r) => r.event === 'reload', 5_000, 'reload');
      const moved = rec.changedSlots as Record<string, number>;
      t.diagnostic(`ring slots moved by the reload: ${JSON.stringify(moved)}`);
      assert.deepEqual(Object.keys(moved), [`${lab.vip4}:8080/tcp`]);

      await new Promise((r) => setTimeout(r, 1_000));
      for (const [s, was] of [[sa, a0], [sb, b0]] as const) {
        const now = await s.status();
        assert.equal(now.failed, 0);
        for (const c of now.conns) assert.ok(c.bytesVerified > was.conns.find((x) => x.i === c.i)!.bytesVerified, `stream ${c.i} stalled`);
      }
      const r = await runClient(lab, { target: lab.vip4, port: 8080, proto: 'tcp', count: 800, concurrency: 16, timeoutMs: 60_000 });
      assert.equal(r.failed, 0);
      assert.ok((r.perBackend.b3 ?? 0) > 100 && (r.perBackend.b1 ?? 0) > (r.perBackend.b2 ?? 0), JSON.stringify(r.perBackend));
    } finally {
      sa.stop();
      sb.stop();
    }
    const [ra, rb] = [await sa.result, await sb.result];
    assert.equal(ra.failed + rb.failed, 0, JSON.stringify([ra.errors, rb.errors]));
    assert.equal((await l4.stop()).code, 0);
  });
});

test('drain through the CLI: streams on the drained backend go on, new connections avoid it, drain --wait reports it drained; status shows it', { skip: skipUnless(), timeout: 180_000 }, async (t) => {
  await withLab({ backends: 2, ipv6: false, servers, config: (lab) => config(lab, ['b1', 'b2'], ['b1']) }, async ({ lab, l4 }) => {
    const streams = startStreams(lab, { target: lab.vip4, port: 8080, streams: 12, durationMs: 60_000, intervalMs: 20, stallMs: 30_000 });
    assert.deepEqual(await streams.streaming, { established: 12, failed: 0 });
    const s0 = await streams.status();
    const onB1 = s0.conns.filter((c) => c.backend === 'b1');
    assert.ok(onB1.length > 0, 'some streams are on b1');
    const b1 = `${lab.backend('b1').ipv4}:8080`;
    const d = await cli(lab, ['backend', 'drain', `${lab.vip4}:8080`, b1]);
    assert.equal(d.code, 0, d.stderr);
    assert.match(d.stdout, /draining/);
    const status = await cli(lab, ['status']);
    assert.equal(status.code, 0, status.stderr);
    assert.match(status.stdout, new RegExp(`-> ${b1.replace(/\./g, '\\.')}\\s+b1\\s+draining\\s+1/0`));
    const r = await runClient(lab, { target: lab.vip4, port: 8080, proto: 'tcp', count: 300, concurrency: 16, timeoutMs: 30_000 });
    assert.equal(r.failed, 0);
    assert.deepEqual(Object.keys(r.perBackend), ['b2'], 'new connections avoid the drained backend');
    await new Promise((res) => setTimeout(res, 1_000));
    const s1 = await streams.status();
    for (const c of s1.conns.filter((x) => x.backend === 'b1')) {
      assert.ok(c.bytesVerified > s0.conns.find((x) => x.i === c.i)!.bytesVerified, `stream ${c.i} on the drained b1 stalled`);
    }
    streams.stop();
    const rep = await streams.result;
    assert.equal(rep.failed, 0);
    const stoppedAt = Date.now();
    const w = await cli(lab, ['backend', 'drain', `${lab.vip4}:8080`, b1, '--wait', '20']);
    assert.equal(w.code, 0, w.stdout + w.stderr);
    assert.match(w.stdout, /drained \(no live flows left\)/);
    t.diagnostic(`drain reported done ${Date.now() - stoppedAt} ms after the last stream closed`);
    const u = await cli(lab, ['backend', 'undrain', `${lab.vip4}:8080`, b1]);
    assert.match(u.stdout, /back in the ring \(state up\)/);
    const r2 = await runClient(lab, { target: lab.vip4, port: 8080, proto: 'tcp', count: 300, concurrency: 16, timeoutMs: 30_000 });
    assert.ok((r2.perBackend.b1 ?? 0) > 50, JSON.stringify(r2.perBackend));
    assert.equal((await l4.stop()).code, 0);
  });
});

test('source deny list from the config, applied and lifted by reloads: denied clients are dropped and counted as acl_denied', { skip: skipUnless(), timeout: 120_000 }, async () => {
  await withLab({ backends: 2, ipv6: false, servers, config: (lab) => config(lab, ['b1', 'b2'], ['b1']) }, async ({ lab, l4, configFile: file }) => {
    const plain = config(lab, ['b1', 'b2'], ['b1']);
    const ok = await runClient(lab, { target: lab.vip4, port: 8080, proto: 'tcp', count: 50, concurrency: 10, timeoutMs: 20_000 });
    assert.equal(ok.failed, 0);
    writeFileSync(file, config(lab, ['b1', 'b2'], ['b1'], { deny_sources: [`${lab.client.ipv4}/32`] }));
    assert.equal((await cli(lab, ['reload'])).code, 0);
    const denied = await runClient(lab, { target: lab.vip4, port: 8080, proto: 'tcp', count: 5, concurrency: 5, connTimeoutMs: 1_000, timeoutMs: 10_000 });
    assert.equal(denied.ok, 0, 'the denied client gets nothing through');
    const other = await runClient(lab, { target: lab.vip4, port: 8081, proto: 'tcp', count: 20, concurrency: 5, timeoutMs: 10_000 });
    assert.equal(other.failed, 0, 'the other service has no deny list');
    const counters = (await adminRequest(lab, 'GET', '/v1/counters')).body as { drops: Record<string, number> };
    assert.ok((counters.drops.acl_denied ?? 0) >= 5, JSON.stringify(counters.drops));
    writeFileSync(file, plain);
    assert.equal((await cli(lab, ['reload'])).code, 0);
    const again = await runClient(lab, { target: lab.vip4, port: 8080, proto: 'tcp', count: 50, concurrency: 10, timeoutMs: 20_000 });
    assert.equal(again.failed, 0);
    assert.equal((await l4.stop()).code, 0);
  });
});
