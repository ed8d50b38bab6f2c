// Resource exhaustion, the admin API (issue 7): a storm of 1500 requests, 100 at a time, each on a fresh
// connection, mixing the heavy reads (/v1/services, /metrics, /v1/flows), rejected writes, malformed JSON, 2 MiB
// bodies and unknown paths (test/rigs/api-storm.ts), while 20 streams and 30 new connections a second go
// through the VIP. Checked: forwarding does not notice (no stream stalls over 1 s, every new connection succeeds),
// no 5xx and no refused connection, rejected requests change nothing (same services and backends before and
// after), the API answers promptly right after, RSS and fds come back. The flow table and the TUN queue filling
// up are in test/reliability-synflood.test.ts. Root-only; about 25 s.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { adminRequest } from '../src/lab/admin-client';
import { servicesView } from './rigs/admin';
import type { StormReport } from './rigs/api-storm';
import { rigScript, sleep, withLab } from './rigs/fixture';
import { startProbe, summarizeAttempts } from './rigs/probe-run';
import { procStats } from './rigs/proc';
import { skipUnless } from './rigs/requirements';

const REQUESTS = 1500;
const CONCURRENCY = 100;

test(`admin API storm (${REQUESTS} requests, ${CONCURRENCY} at a time): forwarding unaffected, no 5xx, state unchanged, recovers`, { skip: skipUnless(), timeout: 120_000 }, async (t) => {
  await withLab({ backends: 2, ipv6: false, l4nat: { extraArgs: ['--hash-key', '5f3c2a1b0e9d8c7b6a5f4e3d2c1b0a99', '--queues', '2'] } }, async ({ lab, l4 }) => {
    const pid = l4.pid!;
    const probe = startProbe(lab, { target: lab.vip4, streams: 20, intervalMs: 20, chunkBytes: 256, connRate: 30, connTimeoutMs: 3_000, durationMs: 90_000 });
    assert.equal((await probe.ready).failed, 0);
    await sleep(1_000);
    const before = procStats(pid);
    const view = async (): Promise<unknown> => (await servicesView(lab)).services.map((s) => ({ id: s.id, backends: s.backends.map((b) => [b.id, b.weight, b.state]) }));
    const stateBefore = await view();

    let rssMax = 0;
    let fdMax = 0;
    const sampler = setInterval(() => {
      const s = procStats(pid);
      rssMax = Math.max(rssMax, s.rssKiB);
      fdMax = Math.max(fdMax, s.fds);
    }, 200);
    const stormFrom = Date.now();
    const out = await lab.exec('lb', process.execPath, [rigScript('api-storm'), '--requests', String(REQUESTS), '--concurrency', String(CONCURRENCY), '--timeout-ms', '20000'], { timeoutMs: 90_000 });
    const stormTo = Date.now();
    clearInterval(sampler);
    const r = JSON.parse(out.stdout) as StormReport;

    const t1 = Date.now();
    const status = await adminRequest(lab, 'GET', '/v1/status');
    const promptMs = Date.now() - t1;
    const stateAfter = await view();
    await sleep(3_000);
    const after = procStats(pid);
    probe.stop();
    const rep = await probe.report;

    const s = summarizeAttempts(rep, stormFrom, stormTo);
    const worstGap = Math.max(...rep.conns.map((c) => c.maxGapMs));
    t.diagnostic(`storm: ${r.requests} requests in ${r.elapsedMs} ms (${r.perSecond}/s): ${JSON.stringify(r.statuses)}${Object.keys(r.errors).length ? `, errors ${JSON.stringify(r.errors)}` : ''}; latency p50 ${r.p50Ms} ms, p99 ${r.p99Ms} ms, max ${r.maxMs} ms`);
    t.diagnostic(`meanwhile: new connections ${s.ok}/${s.attempts} (p99 ${s.p99Ms} ms), 20 streams intact, longest stall ${worstGap} ms; l4nat RSS ${(before.rssKiB / 1024).toFixed(1)} → max ${(rssMax / 1024).toFixed(1)} → ${(after.rssKiB / 1024).toFixed(1)} MiB 3 s after, fds ${before.fds} → max ${fdMax} → ${after.fds}; /v1/status answered ${promptMs} ms after the storm (a node process started in the namespace included)`);

    assert.equal(Object.keys(r.errors).length, 0, `connection errors: ${JSON.stringify(r.errors)}`);
    assert.ok(Object.keys(r.statuses).every((c) => Number(c) < 500), `5xx answers: ${JSON.stringify(r.statuses)}`);
    assert.ok((r.statuses['413'] ?? 0) > 0, 'oversized bodies are refused (413)');
    assert.deepEqual(stateAfter, stateBefore, 'rejected requests changed nothing');
    assert.equal(status.status, 200);
    for (const c of rep.conns) assert.equal(c.error, null, `stream ${c.i}: ${c.error}`);
    assert.ok(worstGap < 1_000, `a stream stalled ${worstGap} ms`);
    assert.equal(s.rate, 1, `new connections during the storm: ${JSON.stringify(s.errors)}`);
    assert.ok(after.fds <= before.fds + 2, `fds ${before.fds} → ${after.fds}`);
    assert.ok(after.rssKiB - before.rssKiB < 64 * 1024, `RSS ${before.rssKiB} → ${after.rssKiB} KiB`);
  });
});
