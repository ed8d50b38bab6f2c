// Health checks end to end: l4nat started from a config file in the lab's lb namespace, TCP checks against
// three backends. A backend server is killed; the test measures how long until l4nat publishes a table
// without it (bound: interval × fall + timeout), checks that no new connection goes to it or fails after
// that, then restarts it and sees it come back after `rise` checks. Root-only.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Lab } from '../src/lab/lab';
import { labScript, runClient } from '../src/lab/workload';
import { configText, labBackends, withLab } from './rigs/fixture';
import { skipUnless } from './rigs/requirements';

const INTERVAL = 1;
const TIMEOUT = 0.5;
const FALL = 2;
const RISE = 2;

test('a killed backend leaves the ring within interval × fall + timeout; no connection fails after; it comes back after rise checks', { skip: skipUnless(), timeout: 180_000 }, async (t) => {
  const config = (lab: Lab): string => configText({
    global: { queues: 2, stats_interval: 0 },
    services: [{ name: 'web', vips: [lab.vip4], ports: [8080], health_check: { type: 'tcp', interval: INTERVAL, timeout: TIMEOUT, fall: FALL, rise: RISE, jitter: 0.2 }, backends: labBackends(lab, { port: 8080 }) }],
  });
  await withLab({ backends: 3, ipv6: false, config }, async ({ lab, l4, servers }) => {
    // Let every backend pass a first check.
    await new Promise((r) => setTimeout(r, 2_000));
    const warm = await runClient(lab, { target: lab.vip4, proto: 'tcp', count: 300, concurrency: 16, timeoutMs: 30_000 });
    assert.equal(warm.failed, 0, JSON.stringify(warm.errors));
    assert.deepEqual(Object.keys(warm.perBackend).sort(), ['b1', 'b2', 'b3']);

    const b2 = lab.backend('b2');
    const killedAt = Date.now();
    servers[1]!.kill('SIGKILL');
    await servers[1]!.exited;
    const published = await l4.waitForLog((r) => r.event === 'table_published' && typeof r.reason === 'string' && r.reason.includes(`${b2.ipv4}:8080/tcp down`), 15_000, 'table without b2');
    const detectMs = (published.time as number) - killedAt;
    const bound = (INTERVAL * FALL + TIMEOUT) * 1000;
    t.diagnostic(`detection: b2 out of the ring ${detectMs} ms after the kill (bound interval×fall+timeout = ${bound} ms)`);
    assert.ok(detectMs <= bound + 150, `took ${detectMs} ms, bound ${bound} ms`);
    const down = l4.logs().find((r) => r.event === 'backend_down');
    assert.match(String(down?.reason), /connect ECONNREFUSED/);

    const after = await runClient(lab, { target: lab.vip4, proto: 'tcp', count: 600, concurrency: 16, timeoutMs: 30_000 });
    assert.equal(after.failed, 0, `failures after detection: ${JSON.stringify(after.errors)}`);
    assert.deepEqual(Object.keys(after.perBackend).sort(), ['b1', 'b3'], JSON.stringify(after.perBackend));

    // Back: restart the server; after `rise` good checks it rejoins.
    const restartedAt = Date.now();
    lab.spawn('b2', process.execPath, [labScript('backend-server'), '--name', 'b2', '--port', '8080']);
    const up = await l4.waitForLog((r) => r.event === 'backend_up', 15_000, 'b2 up again');
    const upMs = (up.time as number) - restartedAt;
    t.diagnostic(`recovery: b2 back ${upMs} ms after its restart (rise ${RISE} × interval ${INTERVAL} s)`);
    assert.ok(upMs <= (RISE * INTERVAL + TIMEOUT) * 1000 + 500, `${upMs} ms`);
    await new Promise((r) => setTimeout(r, 200));
    const back = await runClient(lab, { target: lab.vip4, proto: 'tcp', count: 300, concurrency: 16, timeoutMs: 30_000 });
    assert.equal(back.failed, 0);
    assert.ok((back.perBackend.b2 ?? 0) > 30, JSON.stringify(back.perBackend));
    const st = await l4.stop();
    assert.equal(st.code, 0);
  });
});

test('passive check: a backend whose replies bypass the LB (the classic LVS-NAT mistake) passes its active check but is taken out; back after the hold', { skip: skipUnless(), timeout: 180_000 }, async (t) => {
  const HOLD = 6;
  const config = (lab: Lab): string => configText({
    global: { queues: 2, stats_interval: 0 },
    services: [{ name: 'web', vips: [lab.vip4], ports: [8080], health_check: { type: 'tcp', interval: 1, timeout: 0.5 }, passive_check: { window: 5, max_unanswered: 3, hold: HOLD }, backends: labBackends(lab, { port: 8080 }) }],
  });
  await withLab({ backends: 3, ipv6: false, config }, async ({ lab, l4 }) => {
    await new Promise((r) => setTimeout(r, 1_500));
    // b2 now answers clients by a route that does not go through the LB (here: nowhere). The LB's own
    // active check still gets answers: the LB is on b2's link.
    await lab.exec('b2', 'ip', ['route', 'add', 'blackhole', `${lab.client.ipv4}/32`]);
    const brokenAt = Date.now();
    const during = await runClient(lab, { target: lab.vip4, proto: 'tcp', count: 60, concurrency: 20, connTimeoutMs: 1_500, timeoutMs: 30_000 });
    assert.ok(during.failed > 0, 'connections to b2 fail while its replies go astray');
    const down = await l4.waitForLog((r) => r.event === 'backend_down', 15_000, 'passive backend_down');
    t.diagnostic(`passive detection: b2 out ${(down.time as number) - brokenAt} ms after its replies started to bypass the LB; ${during.failed} of 60 connections failed meanwhile`);
    assert.match(String(down.reason), /passive: \d+ of \d+ new flows in .* got no answer through l4nat/);
    await new Promise((r) => setTimeout(r, 200));
    const after = await runClient(lab, { target: lab.vip4, proto: 'tcp', count: 300, concurrency: 16, timeoutMs: 30_000 });
    assert.equal(after.failed, 0, JSON.stringify(after.errors));
    assert.deepEqual(Object.keys(after.perBackend).sort(), ['b1', 'b3']);
    await lab.exec('b2', 'ip', ['route', 'del', 'blackhole', `${lab.client.ipv4}/32`]);
    const up = await l4.waitForLog((r) => r.event === 'backend_up' && /passive hold/.test(String(r.reason)), (HOLD + 5) * 1000, 'passive hold over');
    t.diagnostic(`back in the ring ${(up.time as number) - (down.time as number)} ms after it was taken out (hold ${HOLD} s)`);
    const back = await runClient(lab, { target: lab.vip4, proto: 'tcp', count: 300, concurrency: 16, timeoutMs: 30_000 });
    assert.equal(back.failed, 0);
    assert.ok((back.perBackend.b2 ?? 0) > 30, JSON.stringify(back.perBackend));
    assert.equal((await l4.stop()).code, 0);
  });
});
