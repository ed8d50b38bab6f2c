// Slow start in the lab (issue 17 item 3): b1 drained, then undrained in a service with slow_start: 10; new
// connections at a steady rate throughout. b1's share of them, per second, rises over the window: its ring weight
// is 1/4, 2/4, 3/4 of b2's for a third of the window each (shares 20 %, 33 %, 43 %), then equal. Asserted over
// coarse windows (the first third of the window below the last third, and below a plain 50/50), so a second's
// noise cannot decide it. Root-only.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { adminRequest } from '../src/lab/admin-client';
import { configText, labBackends, withLab } from './rigs/fixture';
import { startProbe } from './rigs/probe-run';
import { skipUnless } from './rigs/requirements';

test('a backend undrained with slow_start: 10 takes a share of new flows that rises over the window', { skip: skipUnless(), timeout: 180_000 }, async (t) => {
  await withLab(
    {
      backends: 2,
      ipv6: false,
      config: (lab) => configText({ global: { queues: 2, stats_interval: 0 }, services: [{ name: 'web', vips: [lab.vip4], ports: [8080], slow_start: '10s', backends: labBackends(lab, { port: 8080 }) }] }),
    },
    async ({ lab, l4 }) => {
      const path = `/v1/services/${encodeURIComponent(`${lab.vip4}:8080/tcp`)}/backends/${encodeURIComponent(`${lab.backend('b1').ipv4}:8080/tcp`)}`;
      assert.equal((await adminRequest(lab, 'POST', `${path}/drain`)).status, 202);
      const probe = startProbe(lab, { target: lab.vip4, port: 8080, connRate: 100, connTimeoutMs: 3_000, durationMs: 16_000 });
      await probe.ready;
      await new Promise((r) => setTimeout(r, 1_000));
      const before = Date.now();
      const u = await adminRequest(lab, 'POST', `${path}/undrain`);
      assert.equal(u.status, 200, JSON.stringify(u.body));
      const t0 = Date.now();
      const logged = await l4.waitForLog((r) => r.event === 'slow_start', 5_000, 'slow_start');
      assert.deepEqual(logged.backends, [`${lab.vip4}:8080/tcp|${lab.backend('b1').ipv4}:8080/tcp`]);
      const r = await probe.report;
      const share = (from: number, to: number): { b1: number; n: number; failed: number } => {
        const xs = r.attempts.filter((a) => a[0] >= from && a[0] < to);
        return { b1: xs.filter((a) => a[2] === 'b1').length / Math.max(1, xs.length), n: xs.length, failed: xs.filter((a) => a[3] === 0).length };
      };
      const perSecond = Array.from({ length: 14 }, (_, i) => share(t0 + i * 1000, t0 + (i + 1) * 1000));
      t.diagnostic(`b1 share per second after the undrain (${t0 - before} ms to publish): ${perSecond.map((s) => `${Math.round(s.b1 * 100)}%/${s.n}`).join(' ')}`);
      assert.equal(share(before - 1_000, before).b1, 0, 'drained: no new flow on b1');
      const first = share(t0, t0 + 3_300);
      const last = share(t0 + 6_800, t0 + 9_900);
      const after = share(t0 + 10_500, t0 + 14_000);
      assert.ok(first.n > 150 && last.n > 150 && after.n > 150, `enough connections: ${first.n}, ${last.n}, ${after.n}`);
      assert.equal(r.attempts.filter((a) => a[3] === 0).length, 0, 'no connection failed');
      assert.ok(first.b1 > 0.08 && first.b1 < 0.32, `first third: ${first.b1.toFixed(2)}, expected about 0.20`);
      assert.ok(first.b1 < last.b1, `rising: first third ${first.b1.toFixed(2)} < last third ${last.b1.toFixed(2)}`);
      assert.ok(after.b1 > 0.35 && after.b1 < 0.65, `after the window: ${after.b1.toFixed(2)}, expected about 0.50`);
    },
  );
});
