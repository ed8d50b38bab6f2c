// Graceful shutdown in the lab: on SIGTERM l4nat admits no new flows, keeps forwarding the established ones
// for the grace period, then removes everything and exits 0; a second signal ends the grace at once (still
// removing routes and rules). Root-only.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { snapshotNetns, type NetSnapshot } from './rigs/inspect';
import { runClient, startStreams } from '../src/lab/workload';
import { withLab } from './rigs/fixture';
import { skipUnless } from './rigs/requirements';

const GRACE = 4;

/** The lb's state without IPv6 link-local addresses, which the kernel adds on its own a moment after link-up. */
async function lbState(ns: string): Promise<NetSnapshot> {
  const s = await snapshotNetns(ns);
  return { ...s, routes6: s.routes6.filter((l) => !/fe80::/.test(l)) };
}

test(`SIGTERM with --shutdown-grace ${GRACE}: established streams keep flowing, new connections are not admitted, exit 0 after the grace, nothing left`, { skip: skipUnless(), timeout: 120_000 }, async (t) => {
  await withLab({ backends: 2, ipv6: false }, async ({ lab, start }) => {
    const before = await lbState(lab.lb.ns);
    const l4 = await start({ ports: ['8080/tcp'], extraArgs: ['--shutdown-grace', String(GRACE), '--queues', '2'] });
    const streams = startStreams(lab, { target: lab.vip4, streams: 10, durationMs: 30_000, intervalMs: 20, stallMs: 30_000 });
    assert.deepEqual(await streams.streaming, { established: 10, failed: 0 });
    const s0 = await streams.status();
    const termAt = Date.now();
    l4.proc.kill('SIGTERM');
    await l4.waitForLog((r) => r.event === 'table_published' && String(r.reason).startsWith('shutdown'), 5_000, 'empty rings');
    const fresh = await runClient(lab, { target: lab.vip4, proto: 'tcp', count: 5, concurrency: 5, connTimeoutMs: 1_000, timeoutMs: 5_000 });
    assert.equal(fresh.ok, 0, `new connections during the grace period: ${JSON.stringify(fresh.perBackend)}`);
    await new Promise((r) => setTimeout(r, 1_000));
    const s1 = await streams.status();
    assert.ok(l4.running, 'still running inside the grace period');
    assert.equal(s1.failed, 0);
    for (const c of s1.conns) {
      const was = s0.conns.find((x) => x.i === c.i)!;
      assert.ok(c.bytesVerified > was.bytesVerified, `stream ${c.i} made no progress during the grace period`);
    }
    const st = await l4.proc.exited;
    const tookMs = Date.now() - termAt;
    t.diagnostic(`exit ${tookMs} ms after SIGTERM (grace ${GRACE} s)`);
    assert.equal(st.code, 0);
    assert.ok(tookMs >= GRACE * 1000 - 100 && tookMs < GRACE * 1000 + 3_000, `${tookMs} ms`);
    streams.stop();
    await streams.result.catch(() => undefined);
    assert.deepEqual(await lbState(lab.lb.ns), before, 'TUN, routes and rules are gone');
  });
});

test('a second signal during the grace period stops at once, still removing routes and rules', { skip: skipUnless(), timeout: 60_000 }, async (t) => {
  await withLab({ backends: 2, ipv6: false }, async ({ lab, start }) => {
    const before = await lbState(lab.lb.ns);
    const l4 = await start({ ports: ['8080/tcp'], extraArgs: ['--shutdown-grace', '60', '--queues', '2'] });
    const streams = startStreams(lab, { target: lab.vip4, streams: 4, durationMs: 20_000, intervalMs: 50 });
    await streams.streaming;
    l4.proc.kill('SIGTERM');
    await l4.waitForLog((r) => r.event === 'table_published' && String(r.reason).startsWith('shutdown'), 5_000, 'empty rings');
    const secondAt = Date.now();
    l4.proc.kill('SIGINT');
    const st = await l4.proc.exited;
    const tookMs = Date.now() - secondAt;
    t.diagnostic(`exit ${tookMs} ms after the second signal`);
    assert.equal(st.code, 0);
    assert.ok(tookMs < 2_000, `${tookMs} ms`);
    assert.ok(l4.logs().some((r) => r.reason === 'second signal: stopping at once'));
    streams.stop();
    await streams.result.catch(() => undefined);
    assert.deepEqual(await lbState(lab.lb.ns), before, 'TUN, routes and rules are gone');
  });
});
