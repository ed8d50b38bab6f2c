// Bounded load and per-backend limits in the lab (issue 17 items 1 and 2; native/core/admission.h). Long
// connections are the client driver's streams (open until stopped), so the active-flow counts hold still while
// the test reads them from the API and, for the limit, from the backend's own /proc/net/tcp. Root-only.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { adminRequest } from '../src/lab/admin-client';
import type { Lab } from '../src/lab/lab';
import { repoRoot } from '../src/lab/l4nat-process';
import { startStreams, type StreamRun } from '../src/lab/workload';
import { servicesView } from './rigs/admin';
import { configText, labBackends, withLab } from './rigs/fixture';
import { skipUnless } from './rigs/requirements';

const PORT = 8080;

/** Active flows per backend name, from the API (the data plane's counts), and the service's refusals. */
async function activeByName(lab: Lab): Promise<{ active: Record<string, number>; refused: number }> {
  const v = await servicesView(lab);
  const s = v.services[0];
  return {
    active: Object.fromEntries(s.backends.map((b) => [b.name ?? b.id, b.activeFlows ?? -1])),
    refused: s.counters.full_refused ?? 0,
  };
}

/** Established TCP connections to port 8080 inside a backend's namespace (its kernel's own view). */
async function establishedAt(lab: Lab, id: string): Promise<number> {
  const { stdout } = await lab.exec(id, 'cat', ['/proc/net/tcp', '/proc/net/tcp6']); /* a dual-stack listener's IPv4 peers are in tcp6 */
  return stdout.split('\n').filter((l) => {
    const f = l.trim().split(/\s+/);
    return f.length > 3 && f[1].endsWith(`:${PORT.toString(16).toUpperCase().padStart(4, '0')}`) && f[3] === '01';
  }).length;
}

async function streams(lab: Lab, n: number, connTimeoutMs = 5_000): Promise<{ run: StreamRun; established: number; failed: number }> {
  const run = startStreams(lab, { target: lab.vip4, port: PORT, streams: n, durationMs: 60_000, intervalMs: 500, chunkBytes: 16, connTimeoutMs });
  const s = await run.streaming;
  return { run, ...s };
}

const backendPath = (lab: Lab, id: string): string =>
  `/v1/services/${encodeURIComponent(`${lab.vip4}:${PORT}/tcp`)}/backends/${encodeURIComponent(`${lab.backend(id).ipv4}:${PORT}/tcp`)}`;

test('bounded 1.25: once b1 holds more than its bound of long connections, new connections avoid it', { skip: skipUnless(), timeout: 240_000 }, async (t) => {
  await withLab(
    {
      backends: 3,
      ipv6: false,
      config: (lab) =>
        configText({
          global: { queues: 2, stats_interval: 0 },
          services: [{ name: 'web', vips: [lab.vip4], ports: [PORT], balance: 'bounded', balance_factor: 1.25, backends: labBackends(lab, { port: PORT }).map((b) => ({ ...b, weight: b.name === 'b1' ? 8 : 1 })) }],
        }),
    },
    async ({ lab }) => {
      // b1 has 8/10 of the ring and of the bound (1.25 × 8/10 = 100 %): it takes its ring share of the first 60.
      const first = await streams(lab, 60);
      assert.equal(first.failed, 0, 'the first 60 connect');
      const a = await activeByName(lab);
      t.diagnostic(`after 60 long connections: ${JSON.stringify(a.active)}`);
      assert.ok(a.active.b1 >= 35, `b1 holds most of them: ${a.active.b1}`);
      // b1's weight back to 1: its bound is now ceil(61 × 1.25 / 3) = 26 flows, and it holds more.
      assert.equal((await adminRequest(lab, 'PATCH', backendPath(lab, 'b1'), { weight: 1 })).status, 200);
      const before = (await servicesView(lab)).services[0].backends.map((b) => [b.name, b.counters.new_flows] as const);
      const second = await streams(lab, 30);
      assert.equal(second.failed, 0, 'the next 30 connect');
      const after = await activeByName(lab);
      const newFlows = Object.fromEntries((await servicesView(lab)).services[0].backends.map((b, i) => [b.name, b.counters.new_flows - before[i][1]]));
      t.diagnostic(`after 30 more: active ${JSON.stringify(after.active)}, new flows ${JSON.stringify(newFlows)}`);
      // With maglev, b1 (1/3 of the ring now) would take about 10 of the 30; none in 30 by chance is (2/3)^30 < 1e-5.
      assert.equal(newFlows.b1, 0, 'b1, over its bound, takes none of the new connections');
      assert.equal(newFlows.b2 + newFlows.b3, 30, 'they went to b2 and b3');
      assert.equal(after.active.b1, a.active.b1, 'b1 keeps its established connections');
      const report = await Promise.all([first.run, second.run].map((r) => (r.stop(), r.result)));
      assert.deepEqual(report.map((r) => r.failed), [0, 0], 'no connection was cut');
    },
  );
});

/** b1 with 4/6 of the ring and max_flows 50, b2 and b3 with 40 each, and `whenFull`. */
const limitedConfig = (lab: Lab, whenFull: 'drop' | 'reject'): string =>
  configText({
    global: { queues: 2, stats_interval: 0 },
    services: [{ name: 'web', vips: [lab.vip4], ports: [PORT], when_full: whenFull, backends: labBackends(lab, { port: PORT }).map((b) => (b.name === 'b1' ? { ...b, weight: 4, max_flows: 50 } : { ...b, max_flows: 40 })) }],
  });

test('max_flows 50: b1 never holds more than 50; every backend full: reject resets at once, drop times out; limits changed at run time', { skip: skipUnless(), timeout: 300_000 }, async (t) => {
  await withLab(
    {
      backends: 3,
      ipv6: false,
      config: (lab) => limitedConfig(lab, 'reject'),
    },
    async ({ lab, configFile }) => {
      // b1 has 4/6 of the ring (about 80 of 120) but takes 50; b2 and b3 (40 each) take the rest: 130 places.
      let maxSeen = 0;
      let polling = true;
      const poller = (async () => {
        while (polling) {
          const a = await activeByName(lab);
          maxSeen = Math.max(maxSeen, a.active.b1);
          await new Promise((r) => setTimeout(r, 100));
        }
      })();
      const first = await streams(lab, 120);
      polling = false;
      await poller;
      assert.equal(first.failed, 0, 'all 120 connect: there are places for them');
      const a = await activeByName(lab);
      const kernel = await establishedAt(lab, 'b1');
      t.diagnostic(`120 long connections: active ${JSON.stringify(a.active)}, b1's kernel has ${kernel} established, most b1 seen ${maxSeen}`);
      assert.equal(a.active.b1, 50, 'b1 filled to its limit');
      assert.ok(maxSeen <= 50, `b1 never above 50 (most seen ${maxSeen})`);
      assert.ok(kernel <= 50, `b1's kernel never has more than 50 connections from the VIP: ${kernel}`);
      assert.equal(a.active.b1 + a.active.b2 + a.active.b3, 120);

      // 10 places left: 20 more connections, 10 refused with a reset, at once.
      const t0 = Date.now();
      const more = await streams(lab, 20, 4_000);
      const took = Date.now() - t0;
      const errors = (await more.run.status()).conns.map((c) => c.error).filter((e) => e !== null);
      t.diagnostic(`20 more: ${more.established} established, errors ${JSON.stringify(errors)} in ${took} ms`);
      assert.equal(more.established, 10, 'the last 10 places taken');
      assert.deepEqual(errors, Array(10).fill('ECONNREFUSED'), 'the other 10 refused with a reset (ECONNREFUSED)');
      assert.ok(took < 3_500, `refused at once, not after a timeout: ${took} ms`);
      const refused = (await activeByName(lab)).refused;
      assert.ok(refused >= 10, `refusals counted for the service: ${refused}`);

      // when_full: drop (a reload: the established connections stay) -> a new connection times out.
      writeFileSync(configFile, limitedConfig(lab, 'drop'));
      const rl = await adminRequest(lab, 'POST', '/v1/reload');
      assert.equal(rl.status, 200, JSON.stringify(rl.body));
      const dropped = await streams(lab, 3, 1_500);
      const dropErrors = (await dropped.run.status()).conns.map((c) => c.error);
      dropped.run.stop();
      t.diagnostic(`drop: ${JSON.stringify(dropErrors)}`);
      assert.equal(dropped.established, 0, 'no place: nothing connects');
      assert.deepEqual(dropErrors, ['ETIMEDOUT', 'ETIMEDOUT', 'ETIMEDOUT'], 'dropped: the client times out instead of a reset');
      assert.ok((await activeByName(lab)).refused >= refused + 3, 'drops counted as refusals too');

      // At run time (no reload): b2's limit raised to 45 with `l4nat backend max-flows` -> 5 more places, all on b2;
      // b1's lowered to 40 through the API -> its 50 established connections go on, and it takes no new one.
      const cli = await lab.exec('lb', process.execPath, [join(repoRoot(), 'bin', 'l4nat.js'), 'backend', 'max-flows', `${lab.vip4}:${PORT}`, `${lab.backend('b2').ipv4}:${PORT}`, '45']);
      assert.match(cli.stdout, /max_flows 45/);
      assert.equal((await adminRequest(lab, 'PATCH', backendPath(lab, 'b1'), { max_flows: 40 })).status, 200);
      const raised = await streams(lab, 6, 1_500);
      const r = await activeByName(lab);
      t.diagnostic(`after b2 -> 45, b1 -> 40 at run time: 6 more, ${raised.established} established; active ${JSON.stringify(r.active)}`);
      assert.equal(raised.established, 5, 'the 5 new places on b2 taken, the sixth dropped');
      assert.deepEqual([r.active.b1, r.active.b2, r.active.b3], [50, 45, 40], 'b1 keeps its 50 above its new limit; b2 filled to 45');
      raised.run.stop();
      more.run.stop();
      const rf = (first.run.stop(), await first.run.result);
      assert.equal(rf.failed, 0, 'the first 120 were never cut');
      await more.run.result;
      await raised.run.result;
    },
  );
});
