// `l4nat explain` and `l4nat reload --dry-run` in the lab. Long-lived streams run through a service of two backends;
// explain on a live connection shows its flow entry and backend, explain on a denied source shows the source-list
// entry; a dry run of a reload that adds a third backend applies nothing (the status and every flow entry as they
// were), and once the reload is applied its predictions hold: the ring slots it said would move are the slots the
// reload moved, and the live flows it said would be sent elsewhere are exactly those whose entries' backends now
// differ from the new ring's pick for their tuple (explain after the reload, per flow). Root-only.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { writeFileSync } from 'node:fs';
import type { Explanation, FlowView, PlanPreview, ReloadResult } from '../src/control/controller';
import type { Lab } from '../src/lab/lab';
import { repoRoot } from '../src/lab/l4nat-process';
import { startStreams } from '../src/lab/workload';
import { configText, labBackends, withLab } from './rigs/fixture';
import { skipUnless } from './rigs/requirements';

async function cli<T>(lab: Lab, args: string[]): Promise<T> {
  const r = await lab.exec('lb', process.execPath, [join(repoRoot(), 'bin', 'l4nat.js'), ...args, '--json']);
  return JSON.parse(r.stdout) as T;
}

function config(lab: Lab, ids: string[]): string {
  return configText({
    global: { queues: 2, stats_interval: 0 },
    services: [
      { name: 'web', vips: [lab.vip4], ports: [8080], backends: labBackends(lab, { ids, port: 8080 }) },
      { name: 'locked', vips: [lab.vip4], ports: [8081], deny_sources: [`${lab.client.ipv4}/32`], backends: labBackends(lab, { ids: ['b1'], port: 8081 }) },
    ],
  });
}

test('explain shows a live flow\'s entry and a denied source\'s list entry; reload --dry-run predicts the slots and flows the reload moves, applying nothing', { skip: skipUnless(), timeout: 180_000 }, async (t) => {
  await withLab({ backends: 3, ipv6: false }, async ({ lab, configFile, startFromConfig }) => {
    await startFromConfig(config(lab, ['b1', 'b2']));
    const web = `${lab.vip4}:8080/tcp`;
    const streams = startStreams(lab, { target: lab.vip4, streams: 24, durationMs: 90_000, intervalMs: 50, stallMs: 60_000 });
    try {
      assert.deepEqual(await streams.streaming, { established: 24, failed: 0 });
      const listed = (await cli<{ flows: FlowView[] }>(lab, ['flows', '--service', web])).flows;
      assert.equal(listed.length, 24, 'one entry per stream');
      const byName = new Map(lab.backends.map((b) => [b.id, `${b.ipv4}:8080/tcp`]));
      const seen = (await streams.status()).conns.map((c) => byName.get(c.backend ?? ''));

      // explain on a live connection: its entry and backend, forwarded by the entry.
      const f = listed[0];
      const x = await cli<Explanation>(lab, ['explain', 'tcp', `${f.client}:${f.clientPort}`, `${lab.vip4}:8080`]);
      assert.equal(x.verdict, 'entry');
      assert.equal(x.flowEntry?.state, 'ESTABLISHED');
      assert.equal(x.flowEntry?.backend, f.backend);
      assert.equal(x.backend?.id, f.backend);
      assert.equal(x.backend?.state, 'up');
      assert.ok(f.backend !== null && seen.includes(f.backend), `${f.backend} is a backend the client saw`);
      const bAddr = f.backend.replace(/\/tcp$/, '');
      assert.deepEqual(x.rewrite?.forward, { before: `${f.client}:${f.clientPort} -> ${lab.vip4}:8080`, after: `${f.client}:${f.clientPort} -> ${bAddr}` });
      assert.deepEqual(x.rewrite?.reply, { before: `${bAddr} -> ${f.client}:${f.clientPort}`, after: `${lab.vip4}:8080 -> ${f.client}:${f.clientPort}` });
      // explain on a denied source: the deny entry, dropped as acl_denied.
      const d = await cli<Explanation>(lab, ['explain', 'tcp', `${lab.client.ipv4}:40000`, `${lab.vip4}:8081`]);
      assert.equal(d.verdict, 'drop');
      assert.equal(d.dropReason, 'acl_denied');
      assert.deepEqual(d.acl.matched, { action: 'deny', cidr: `${lab.client.ipv4}/32` });

      // The dry run: b3 joins. Nothing is applied: the status and the entries stay as they were.
      writeFileSync(configFile, config(lab, ['b1', 'b2', 'b3']));
      const statusBefore = await cli<{ services: unknown[] }>(lab, ['status']);
      const p = await cli<PlanPreview>(lab, ['reload', '--dry-run']);
      const statusAfter = await cli<{ services: unknown[] }>(lab, ['status']);
      const strip = (s: { services: unknown[] }): string => JSON.stringify(s.services, (k, v: unknown) => (/^(packets|bytes|In|Out|rx|tx|lastCheck|history|latency|ms|at)/i.test(k) ? undefined : v));
      assert.equal(strip(statusAfter), strip(statusBefore), 'the dry run changed nothing the status shows');
      const relisted = (await cli<{ flows: FlowView[] }>(lab, ['flows', '--service', web])).flows;
      assert.deepEqual(relisted.map((e) => [e.clientPort, e.backend]).sort(), listed.map((e) => [e.clientPort, e.backend]).sort(), 'entries unchanged');
      assert.equal(p.applied, false);
      const svc = p.services.find((s) => s.service === web)!;
      const b3 = svc.backends.find((b) => b.backend === byName.get('b3'))!;
      assert.equal(b3.change, 'added');
      assert.equal(p.flows?.live, 24);
      t.diagnostic(`plan: ${svc.slotsMoved} slots move, ${p.flows?.wouldMove} of 24 flows would move (${p.flows?.pages} page(s), ${p.flows?.ms} ms in the data plane); b3 gets ${b3.slots.after} slots (${(b3.share.after * 100).toFixed(1)}%)`);

      // Apply it: the slots it said would move are the reload's.
      const r = await cli<ReloadResult>(lab, ['reload']);
      assert.deepEqual(r.changedSlots, p.changedSlots, 'slots moved: plan = reload');
      // Flows: per backend, the entries whose backend the new ring no longer picks for their tuple, asked of the data plane.
      const moved = new Map<string, number>();
      for (const e of listed) {
        const y = await cli<Explanation>(lab, ['explain', 'tcp', `${e.client}:${e.clientPort}`, `${lab.vip4}:8080`]);
        assert.equal(y.flowEntry?.backend, e.backend, 'the reload kept every entry');
        if (y.ring.backend !== e.backend) moved.set(String(e.backend), (moved.get(String(e.backend)) ?? 0) + 1);
        assert.equal(y.flowEntry?.pinnedAgainstRing, y.ring.backend !== e.backend);
      }
      for (const b of svc.backends) assert.equal(b.flows?.wouldMove ?? 0, moved.get(b.backend) ?? 0, `${b.backend}: flows that would move`);
      assert.equal(p.flows?.wouldMove, [...moved.values()].reduce((a, b) => a + b, 0));
      assert.ok(p.flows!.wouldMove > 0 && p.flows!.wouldMove < 24, `some flows move to b3, not all: ${p.flows?.wouldMove}`);
      const s = await streams.status();
      assert.equal(s.failed, 0, 'every stream goes on (their entries hold)');

      // A removal, seen by the streams: b2's flows lose their backend and meet the ring; the plan said all of them move.
      const b2 = byName.get('b2')!;
      const pr = await cli<PlanPreview>(lab, ['backend', 'remove', `${lab.vip4}:8080`, b2.replace(/\/tcp$/, ''), '--dry-run']);
      const b2plan = pr.services.find((x) => x.service === web)!.backends.find((b) => b.backend === b2)!;
      const onB2 = s.conns.filter((c) => byName.get(c.backend ?? '') === b2).map((c) => c.i);
      assert.deepEqual(b2plan.flows, { live: onB2.length, wouldMove: onB2.length });
      assert.equal(b2plan.change, 'removed');
      await cli(lab, ['backend', 'remove', `${lab.vip4}:8080`, b2.replace(/\/tcp$/, '')]);
      await new Promise((res) => setTimeout(res, 3_000));
      const after = await streams.status();
      const failed = after.conns.filter((c) => c.error !== null).map((c) => c.i).sort((a, b) => a - b);
      assert.deepEqual(failed, onB2.sort((a, b) => a - b), 'exactly the streams on b2 ended (reset by the backend the ring now picks)');
    } finally {
      streams.stop();
      await streams.result.catch(() => undefined);
    }
  });
});
