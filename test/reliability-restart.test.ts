// Restart without loss (issue 7), at 100 connections: test/restart.test.ts shows 20 streams surviving a kill -9;
// here 100 streams (a chunk every 20 ms each, every echoed byte verified) and the longest stall any of them saw,
// measured by the probe as the longest gap between two echo arrivals. The persistent TUN, its routes and rules
// and the blackhole behind them stay while no l4nat runs, so no backend reply leaks untranslated; the new process
// re-attaches with the same hash key and tables and forwards the flows it has no entry for by the same ring.
// The second test does the same with the graceful restart: SIGUSR2 (what `l4nat restart` and POST /v1/restart
// send), after which l4nat stops its workers in order and exits with status 75, keeping device, routes and rules.
// Root-only; about 30 s.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { L4natProcess } from '../src/lab/l4nat-process';
import type { ExitStatus } from '../src/lab/netns';
import { sleep, withLab } from './rigs/fixture';
import { startProbe } from './rigs/probe-run';
import { skipUnless } from './rigs/requirements';

const ARGS = ['--hash-key', '5f3c2a1b0e9d8c7b6a5f4e3d2c1b0a99', '--queues', '2'];
const STREAMS = 100;

/** 100 streams through l4nat; `restart` ends the running l4nat; a new one starts; every stream must go on. */
async function restartDuringStreams(t: { diagnostic(m: string): void }, how: string, end: (l4: L4natProcess) => Promise<ExitStatus>, wantCode: number | null): Promise<void> {
  await withLab({ backends: 3, ipv6: false, l4nat: { extraArgs: ARGS } }, async ({ lab, l4, start }) => {
    const probe = startProbe(lab, { target: lab.vip4, streams: STREAMS, intervalMs: 20, chunkBytes: 512, durationMs: 60_000 });
    assert.equal((await probe.ready).failed, 0, 'all streams set up');
    await sleep(1_000);
    const killedAt = Date.now();
    const st = await end(l4);
    assert.equal(st.code, wantCode, `exit status ${JSON.stringify(st)}`);
    // While nothing reads the TUN: device, rules and the blackhole stay.
    assert.match((await lab.exec('lb', 'ip', ['-br', 'link', 'show', 'dev', 'l4nat0'])).stdout, /^l4nat0/);
    assert.match((await lab.exec('lb', 'ip', ['route', 'show', 'table', '4400'])).stdout, /blackhole default/);
    assert.match((await lab.exec('lb', 'ip', ['rule', 'show'])).stdout, /lookup 4400/);
    await start({ extraArgs: ARGS });
    const readyAt = Date.now();
    await sleep(4_000);
    probe.stop();
    const rep = await probe.report;

    const failed = rep.conns.filter((c) => c.error !== null);
    assert.equal(failed.length, 0, `broken streams: ${JSON.stringify(failed.slice(0, 5))}`);
    const stalls = rep.conns.map((c) => c.maxGapMs).sort((a, b) => a - b);
    const worst = rep.conns.reduce((a, c) => (c.maxGapMs > a.maxGapMs ? c : a));
    // Every stream moved after the new l4nat was ready (its longest gap ended after the kill, or it never stalled).
    const resumed = rep.conns.filter((c) => c.maxGapEndAt >= killedAt).length;
    const perBackend: Record<string, number> = {};
    for (const c of rep.conns) perBackend[c.backend ?? '?'] = (perBackend[c.backend ?? '?'] ?? 0) + 1;
    t.diagnostic(`${how}: ${STREAMS - failed.length}/${STREAMS} streams survived (${JSON.stringify(perBackend)}); no l4nat for ${readyAt - killedAt} ms (signal to ready); longest stall ${worst.maxGapMs} ms (stream ${worst.i}), median stall ${stalls[Math.floor(stalls.length / 2)]} ms; ${resumed} streams' longest gap was the restart; ${(rep.conns.reduce((a, c) => a + c.bytesEchoed, 0) / 1e6).toFixed(1)} MB echoed and verified`);
    assert.ok(worst.maxGapMs < 15_000, `longest stall ${worst.maxGapMs} ms`);
    for (const c of rep.conns) assert.ok(c.bytesEchoed === c.bytesSent && c.bytesSent > 0, `stream ${c.i}: ${c.bytesEchoed}/${c.bytesSent}`);
  });
}

test(`kill -9 during ${STREAMS} streams, then start again: every stream continues; longest stall measured`, { skip: skipUnless(), timeout: 120_000 }, async (t) => {
  await restartDuringStreams(t, 'kill -9', async (l4) => {
    l4.proc.kill('SIGKILL');
    return l4.proc.exited;
  }, null);
});

test(`graceful restart (SIGUSR2: exit 75 keeping TUN, routes, rules) during ${STREAMS} streams, then start again: every stream continues`, { skip: skipUnless(), timeout: 120_000 }, async (t) => {
  await restartDuringStreams(t, 'SIGUSR2 handover', async (l4) => {
    l4.proc.kill('SIGUSR2');
    const st = await l4.proc.exited;
    assert.ok(l4.logs().some((r) => typeof r.msg === 'string' && r.msg.startsWith('handed over: TUN l4nat0')), `handover logged: ${JSON.stringify(st)} ${l4.logs().slice(-4).map((r) => String(r.msg)).join(' | ')} ${l4.stderr.slice(-3).join(' ')}`);
    return st;
  }, 75);
});
