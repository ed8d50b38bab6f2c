// Drains safe under port reuse, and drain deadlines (issue 17 item 4), in the lab. Root-only; needs nft.
//  - Clients whose connections to b1 ended without l4nat seeing the end (their resets dropped in the client's own
//    namespace, as when a NAT in front of the clients forgets its mappings) leave live entries on b1. b1 is
//    drained, and the client then reuses those source ports at a high rate: 0 failures, every connection on b2,
//    b1's new-flow counter unchanged, each stale entry moved once (flow_reuse_moved), and no SYN retransmitted
//    by the client (the kernel's own counter: without the rule each reused port waited for a retransmission,
//    b1 having answered the reused SYN with a challenge ACK). Streams on b1 go on meanwhile. Before the reuse,
//    `explain` of a stale tuple says the same: its next packet follows b1's entry, its SYN leaves it for b2.
//  - `drain --deadline` on the running drain removes b1's flows left at the deadline: counted in the drain view,
//    logged, and the streams on b1 end (b2 resets them) while those on b2 go on.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { adminRequest } from '../src/lab/admin-client';
import type { Explanation } from '../src/control/explain-view';
import type { Lab } from '../src/lab/lab';
import { repoRoot } from '../src/lab/l4nat-process';
import { startStreams } from '../src/lab/workload';
import { configText, labBackends, rigScript, waitUntil, withLab } from './rigs/fixture';
import { skipUnless } from './rigs/requirements';

interface ReuseReport {
  attempts: number;
  failures: number;
  errors: string[];
  perBackend: Record<string, number>;
  byPort: Record<string, string>;
}

async function reuse(lab: Lab, ports: readonly number[], rounds: number): Promise<ReuseReport> {
  const args = ['--target', lab.vip4, '--port', '8080', '--ports', ports.join(','), '--rounds', String(rounds), '--concurrency', '50', '--timeout-ms', '10000'];
  const r = await lab.exec('client', process.execPath, [rigScript('port-reuse'), ...args], { timeoutMs: 300_000 });
  return JSON.parse(r.stdout) as ReuseReport;
}

/** The client namespace's count of SYNs its kernel retransmitted (TcpExt TCPSynRetrans). */
async function synRetransmits(lab: Lab): Promise<number> {
  const lines = (await lab.exec('client', 'cat', ['/proc/net/netstat'])).stdout.split('\n').filter((l) => l.startsWith('TcpExt:'));
  const [names, values] = lines.map((l) => l.split(/\s+/));
  const i = names.indexOf('TCPSynRetrans');
  assert.ok(i > 0 && values, 'TcpExt TCPSynRetrans in /proc/net/netstat');
  return Number(values[i]);
}

interface BackendJson {
  id: string;
  counters: Record<string, number>;
  drain: { liveFlows: number | null; oldestFlowSeconds: number | null; deadline: string | null; removedAtDeadline: number | null; done: boolean; doneBy: string | null } | null;
}

async function view(lab: Lab): Promise<{ b1: BackendJson; reuseMoved: number }> {
  const r = await adminRequest(lab, 'GET', '/v1/services');
  const body = r.body as { services: Array<{ backends: BackendJson[] }>; dataplane: { counters: Record<string, number> } };
  const b1 = body.services[0].backends.find((b) => b.id === `${lab.backend('b1').ipv4}:8080/tcp`)!;
  return { b1, reuseMoved: body.dataplane.counters.flow_reuse_moved };
}

test('a drain under port reuse: reused tuples of b1\'s stale entries go to b2 at once, none fails, b1 gets no new flow; a deadline then removes what is left', { skip: skipUnless({ commands: ['nft'] }), timeout: 300_000 }, async (t) => {
  const config = (lab: Lab): string =>
    configText({ global: { queues: 2, stats_interval: 0 }, services: [{ name: 'web', vips: [lab.vip4], ports: [8080], backends: labBackends(lab, { port: 8080 }) }] });
  await withLab({ backends: 2, ipv6: false, config }, async ({ lab, l4 }) => {
    const streams = startStreams(lab, { target: lab.vip4, port: 8080, streams: 12, durationMs: 120_000, intervalMs: 20, stallMs: 30_000 });
    assert.deepEqual(await streams.streaming, { established: 12, failed: 0 });
    const s0 = await streams.status();
    const streamsOnB1 = s0.conns.filter((c) => c.backend === 'b1').length;
    assert.ok(streamsOnB1 > 0 && streamsOnB1 < 12, `streams on b1: ${streamsOnB1}`);

    // Stale entries: connections whose resets l4nat never sees (dropped on their way out of the client).
    const nft = (args: string[]): Promise<unknown> => lab.exec('client', 'nft', args);
    await nft(['add', 'table', 'inet', 'reuse']);
    await nft(['add', 'chain', 'inet', 'reuse', 'out', '{ type filter hook output priority 0; policy accept; }']);
    await nft(['add', 'rule', 'inet', 'reuse', 'out', 'ip', 'daddr', lab.vip4, 'tcp', 'dport', '8080', 'tcp', 'flags', '&', 'rst', '==', 'rst', 'drop']);
    const first = await reuse(lab, Array.from({ length: 200 }, (_, i) => 30000 + i), 1);
    assert.equal(first.failures, 0, first.errors.join('; '));
    // The ports whose stale entry is on b1 (those on b2, a backend in the ring, keep theirs: b2 answers their
    // reuse with a challenge ACK and the client retransmits, as it would without l4nat).
    const onB1 = Object.entries(first.byPort).filter(([, b]) => b === 'b1').map(([p]) => Number(p));
    assert.ok(onB1.length > 20, `stale entries on b1: ${onB1.length}`);
    await nft(['delete', 'table', 'inet', 'reuse']);

    const d = await adminRequest(lab, 'POST', `/v1/services/${encodeURIComponent(`${lab.vip4}:8080/tcp`)}/backends/${encodeURIComponent(`${lab.backend('b1').ipv4}:8080/tcp`)}/drain`);
    assert.equal(d.status, 202, JSON.stringify(d.body));
    const before = await view(lab);
    // l4nat explain says it before any reuse: a stale tuple's next packet follows b1's entry, its SYN goes to b2.
    const ask = async (packet: string): Promise<Explanation> => {
      const q = `proto=tcp&client=${lab.client.ipv4}:${onB1[0]}&vip=${lab.vip4}:8080${packet}`;
      const r = await adminRequest(lab, 'GET', `/v1/flows/explain?${q}`);
      assert.equal(r.status, 200, JSON.stringify(r.body));
      return r.body as Explanation;
    };
    const [next, syn] = [await ask(''), await ask('&packet=syn')];
    const b1id = `${lab.backend('b1').ipv4}:8080/tcp`;
    assert.deepEqual([next.verdict, next.flowEntry?.backend, next.flowEntry?.left], ['entry', b1id, null], JSON.stringify(next));
    assert.deepEqual([syn.tuple.packet, syn.verdict, syn.flowEntry?.backend, syn.flowEntry?.left, syn.backend?.id], ['syn', 'ring', b1id, 'backend_leaving', `${lab.backend('b2').ipv4}:8080/tcp`], JSON.stringify(syn));
    const retrans0 = await synRetransmits(lab);

    const ROUNDS = 5;
    const second = await reuse(lab, onB1, ROUNDS);
    const after = await view(lab);
    const retrans = (await synRetransmits(lab)) - retrans0;
    t.diagnostic(`reuse: ${second.attempts} connections, ${JSON.stringify(second.perBackend)}; stale on b1 ${onB1.length}, moved ${after.reuseMoved - before.reuseMoved}; SYN retransmissions ${retrans}`);
    assert.equal(second.failures, 0, second.errors.join('; '));
    assert.deepEqual(second.perBackend, { b2: onB1.length * ROUNDS }, 'every reused port reached b2');
    assert.equal(after.b1.counters.new_flows, before.b1.counters.new_flows, 'no new flow on the drained b1');
    assert.equal(after.reuseMoved - before.reuseMoved, onB1.length, 'each stale b1 entry moved once, at its first reuse');
    assert.equal(retrans, 0, 'no reused SYN waited for a retransmission');

    // The streams on b1 went on through it all.
    const s1 = await streams.status();
    for (const c of s1.conns.filter((x) => x.backend === 'b1')) {
      assert.ok(c.bytesVerified > s0.conns.find((x) => x.i === c.i)!.bytesVerified && c.error === null, `stream ${c.i} on the drained b1 went on`);
    }

    // A deadline for the drain under way: what is left of b1 is removed at it.
    const cli = await lab.exec('lb', process.execPath, [join(repoRoot(), 'bin', 'l4nat.js'), 'backend', 'drain', `${lab.vip4}:8080`, `${lab.backend('b1').ipv4}:8080`, '--deadline', '2']);
    assert.match(cli.stdout, /draining/);
    await waitUntil('the deadline', async () => (await view(lab)).b1.drain?.removedAtDeadline !== null, 15_000, 200);
    const done = (await view(lab)).b1.drain!;
    assert.equal(done.done, true);
    assert.ok(done.removedAtDeadline! >= streamsOnB1, `removed ${done.removedAtDeadline}, streams on b1 ${streamsOnB1}`);
    assert.match(done.doneBy ?? '', /^deadline reached: \d+ flow\(s\) removed$/);
    const logged = await l4.waitForLog((r) => r.event === 'drain_deadline', 5_000, 'drain_deadline');
    assert.equal(logged.flowsRemoved, done.removedAtDeadline);
    streams.stop();
    const rep = await streams.result;
    const ended = rep.conns.filter((c) => c.error !== null);
    assert.deepEqual(ended.map((c) => c.backend).sort(), Array(streamsOnB1).fill('b1'), 'the streams cut were those on b1, and all of them');
  });
});
