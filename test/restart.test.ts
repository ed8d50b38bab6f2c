// Crash and restart: SIGKILL l4nat while connections stream. The persistent TUN, its routes and rules stay
// (table T's blackhole means no reply leaks untranslated); a new l4nat re-attaches to them and every
// connection carries on: it takes over the crashed one's flow table file (src/daemon/flow-handover.ts), and flows it
// has no entry for are forwarded by the same Maglev table. A full stop then removes the device, routes, rules and
// the file. Root-only.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { startStreams } from '../src/lab/workload';
import { withLab } from './rigs/fixture';
import { skipUnless } from './rigs/requirements';

const HASH_KEY = ['--hash-key', '5f3c2a1b0e9d8c7b6a5f4e3d2c1b0a99'];

test('kill -9 during 20 streams: device, routes and rules stay; a restarted l4nat re-attaches and every stream continues', { skip: skipUnless(), timeout: 180_000 }, async (t) => {
  await withLab({ backends: 3 }, async ({ lab, start }) => {
    let l4 = await start({ extraArgs: HASH_KEY });
    const streams = startStreams(lab, { target: lab.vip4, streams: 20, durationMs: 60_000, intervalMs: 20, stallMs: 30_000 });
    assert.deepEqual(await streams.streaming, { established: 20, failed: 0 });
    try {
      const before = await streams.status();
      l4.proc.kill('SIGKILL');
      await l4.proc.exited;
      const links = (await lab.exec('lb', 'ip', ['-br', 'link', 'show', 'dev', 'l4nat0'])).stdout;
      assert.match(links, /^l4nat0/, 'the persistent TUN survives the crash');
      const rules = (await lab.exec('lb', 'ip', ['rule'])).stdout;
      assert.match(rules, /ipproto tcp sport 8080 lookup 4400 proto 244/);
      const table = (await lab.exec('lb', 'ip', ['route', 'show', 'table', '4400'])).stdout;
      assert.match(table, /blackhole default/);
      assert.match(table, /default dev l4nat0/);

      const started = Date.now();
      l4 = await start({ extraArgs: HASH_KEY });
      t.diagnostic(`restart took ${Date.now() - started} ms`);
      // The crashed l4nat's flow table file stays too: the new one takes it over (its entries, repaired if half-written).
      assert.ok(l4.logs().some((r) => typeof r.msg === 'string' && r.msg.startsWith('took over the flow table of the previous l4nat')), 'the flow table is taken over after a crash');
      await new Promise((r) => setTimeout(r, 3_000));
      const afterRestart = await streams.status();
      assert.equal(afterRestart.failed, 0, JSON.stringify(afterRestart));
      for (const c of afterRestart.conns) {
        const was = before.conns.find((x) => x.i === c.i)!;
        assert.ok(c.bytesVerified > was.bytesVerified, `stream ${c.i} (${c.backend}) made no progress after the restart`);
      }
    } finally {
      streams.stop();
    }
    const rep = await streams.result;
    assert.equal(rep.failed, 0, `broken streams: ${JSON.stringify(rep.errors)}`);
    assert.equal(rep.ok, 20);
    t.diagnostic(`${rep.ok} of 20 streams survived the crash and restart`);

    const stop = await l4.stop();
    assert.equal(stop.code, 0);
    const links = (await lab.exec('lb', 'ip', ['-br', 'link'])).stdout;
    assert.doesNotMatch(links, /l4nat0/, 'the TUN is gone after a full stop');
    assert.doesNotMatch((await lab.exec('lb', 'ip', ['rule'])).stdout, /proto 244|lookup 4400/);
    assert.doesNotMatch((await lab.exec('lb', 'ip', ['-6', 'rule'])).stdout, /proto 244|lookup 4400/);
    assert.equal((await lab.exec('lb', 'ip', ['route', 'show', 'table', 'all', 'proto', '244'])).stdout.trim(), '');
  });
});
