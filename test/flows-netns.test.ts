// `l4nat flows` and on_down in the lab. Each backend serves 8080 (traffic) and, from a second process, 9090
// (its health-check port), so a test can fail a backend's check while its service port keeps running:
//  - `l4nat flows` lists the streams with the backends the client saw; `flows delete` removes entries and the
//    streams carry on (the same ring picks the same backend, the entry comes back at the next reply);
//  - on_down: keep (default): a backend whose check fails leaves the ring and its streams go on;
//  - on_down: reset: its flows are removed and its streams end (the next packet lands on another backend,
//    which resets it), while the other backends' streams go on. Root-only.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import type { Lab } from '../src/lab/lab';
import { repoRoot } from '../src/lab/l4nat-process';
import type { NsProcess } from '../src/lab/netns';
import { labScript, startStreams } from '../src/lab/workload';
import { configText, labBackends, withLab } from './rigs/fixture';
import { skipUnless } from './rigs/requirements';

async function cli(lab: Lab, args: string[]): Promise<string> {
  return (await lab.exec('lb', process.execPath, [join(repoRoot(), 'bin', 'l4nat.js'), ...args])).stdout;
}

function checkServer(lab: Lab, id: string): NsProcess {
  return lab.spawn(id, process.execPath, [labScript('backend-server'), '--name', `${id}-check`, '--port', '9090']);
}

function config(lab: Lab, onDown: string): string {
  return configText({
    global: { queues: 2, stats_interval: 0 },
    services: [{ name: 'web', vips: [lab.vip4], ports: [8080], on_down: onDown, health_check: { type: 'tcp', port: 9090, interval: 0.5, timeout: 0.25, fall: 1, rise: 1 }, backends: labBackends(lab, { port: 8080 }) }],
  });
}

test('l4nat flows lists and deletes entries; a down backend keeps its streams with on_down keep and loses them with reset', { skip: skipUnless(), timeout: 180_000 }, async (t) => {
  await withLab({ backends: 2, ipv6: false }, async ({ lab, configFile: file, startFromConfig }) => {
    let checks = lab.backends.map((b) => checkServer(lab, b.id));
    const l4 = await startFromConfig(config(lab, 'keep'));
    await new Promise((r) => setTimeout(r, 1_000));
    const streams = startStreams(lab, { target: lab.vip4, streams: 12, durationMs: 60_000, intervalMs: 20, stallMs: 30_000 });
    try {
      assert.deepEqual(await streams.streaming, { established: 12, failed: 0 });
      const s0 = await streams.status();
      const onB2 = s0.conns.filter((c) => c.backend === 'b2').map((c) => c.i);
      assert.ok(onB2.length > 0 && onB2.length < 12, `streams on b2: ${onB2.length}`);

      // l4nat flows: every stream is there, with the backend the client saw.
      const b1 = `${lab.backend('b1').ipv4}:8080`;
      const b2 = `${lab.backend('b2').ipv4}:8080`;
      const listing = await cli(lab, ['flows']);
      const est = listing.split('\n').filter((l) => /^TCP ESTABLISHED/.test(l));
      assert.equal(est.length, 12, listing);
      assert.equal(est.filter((l) => l.includes(`${b2} (b2)`)).length, onB2.length, listing);
      const json = JSON.parse(await cli(lab, ['flows', '--backend', b1, '--json'])) as { flows: Array<{ backend: string }> };
      assert.equal(json.flows.length, 12 - onB2.length);
      assert.ok(json.flows.every((f) => f.backend === `${b1}/tcp`));
      // flows delete: the entries go; the streams go on (same ring, same backend; re-pinned at the next reply).
      assert.match(await cli(lab, ['flows', 'delete', '--backend', b1]), new RegExp(`^${12 - onB2.length} flow\\(s\\) removed`));
      await new Promise((r) => setTimeout(r, 1_000));
      const s1 = await streams.status();
      assert.equal(s1.failed, 0);
      for (const c of s1.conns) assert.ok(c.bytesVerified > s0.conns.find((x) => x.i === c.i)!.bytesVerified, `stream ${c.i} stalled after flows delete`);
      assert.equal((await cli(lab, ['flows'])).split('\n').filter((l) => /^TCP ESTABLISHED/.test(l)).length, 12, 'entries pinned again');

      // on_down: keep — b2's check fails, it leaves the ring, its streams go on.
      checks[1]!.kill('SIGKILL');
      await l4.waitForLog((r) => r.event === 'backend_down', 10_000, 'b2 down');
      await new Promise((r) => setTimeout(r, 1_000));
      const s2 = await streams.status();
      assert.equal(s2.failed, 0);
      for (const i of onB2) assert.ok(s2.conns.find((x) => x.i === i)!.bytesVerified > s1.conns.find((x) => x.i === i)!.bytesVerified, `stream ${i} on the down b2 stalled (on_down keep)`);

      // Back up, switch to on_down: reset by a reload, fail the check again: b2's streams end, b1's go on.
      checks[1] = checkServer(lab, 'b2');
      await l4.waitForLog((r) => r.event === 'backend_up', 10_000, 'b2 up');
      writeFileSync(file, config(lab, 'reset'));
      assert.match(await cli(lab, ['reload']), /changed/);
      const s3 = await streams.status();
      checks[1]!.kill('SIGKILL');
      const reset = await l4.waitForLog((r) => r.event === 'backend_flows_reset', 10_000, 'flows reset');
      t.diagnostic(`on_down reset removed ${String(reset.flows)} flow(s) of b2`);
      assert.equal(reset.flows, onB2.length);
      await new Promise((r) => setTimeout(r, 2_000));
      const s4 = await streams.status();
      for (const i of onB2) assert.ok(s4.conns.find((x) => x.i === i)!.error !== null, `stream ${i} on b2 should have been reset`);
      for (const c of s4.conns.filter((x) => !onB2.includes(x.i))) {
        assert.equal(c.error, null);
        assert.ok(c.bytesVerified > s3.conns.find((x) => x.i === c.i)!.bytesVerified, `stream ${c.i} on b1 stalled`);
      }
    } finally {
      streams.stop();
    }
    await streams.result.catch(() => undefined);
    checks = [];
    assert.equal((await l4.stop()).code, 0);
  });
});
