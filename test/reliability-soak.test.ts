// Soak (issue 7): mixed load through one VIP — 20 long streams (every echoed byte verified), 40 new short
// connections a second, one UDP flow at 100 datagrams a second — while the backends change every 3 s through the
// admin API (drain/undrain b3, re-weight b2, add b4, drain it, remove it). l4nat's RSS, open fds and threads are
// sampled every second. Checked: no stream broken, every short connection and every API change succeeded, UDP
// answered, no error logged, RSS back within 10 MiB of where it started once the load stops and, in soaks of 120 s
// or more, flat after warm-up (the flow table is fixed at start), fds back to where they started.
//   npm test: 30 s.   The 10-minute version:  L4NAT_SOAK_SECONDS=600 node --test dist/test/reliability-soak.test.js
// Root-only.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { adminRequest } from '../src/lab/admin-client';
import type { Lab } from '../src/lab/lab';
import { SERVICE_PORT } from '../src/lab/workload';
import { configText, labBackends, sleep, withLab } from './rigs/fixture';
import { startProbe, summarizeAttempts } from './rigs/probe-run';
import { fdTargets, procStats, type ProcStats } from './rigs/proc';
import { skipUnless } from './rigs/requirements';

const SOAK_S = Number(process.env.L4NAT_SOAK_SECONDS ?? 30);
const CHANGE_EVERY_MS = 3_000;
const WARMUP_S = Math.min(10, Math.max(5, Math.round(SOAK_S / 6)));

function config(lab: Lab): string {
  return configText({
    global: { queues: 2, stats_interval: 0, hash_key: '5f3c2a1b0e9d8c7b6a5f4e3d2c1b0a99' },
    services: [{ name: 'web', vips: [lab.vip4], ports: [SERVICE_PORT, `${SERVICE_PORT}/udp`], health_check: { type: 'tcp', interval: 1, timeout: 0.5, rise: 2, fall: 3 }, backends: labBackends(lab, { ids: ['b1', 'b2', 'b3'] }) }],
  });
}

/** Least-squares slope of y over x. */
function slope(xs: readonly number[], ys: readonly number[]): number {
  const n = xs.length;
  const mx = xs.reduce((a, b) => a + b, 0) / n;
  const my = ys.reduce((a, b) => a + b, 0) / n;
  let num = 0;
  let den = 0;
  for (let i = 0; i < n; i++) {
    num += (xs[i]! - mx) * (ys[i]! - my);
    den += (xs[i]! - mx) ** 2;
  }
  return den === 0 ? 0 : num / den;
}

const median = (xs: readonly number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

test(`soak ${SOAK_S} s: mixed load with backend changes every 3 s; RSS flat, fds stable, no errors`, { skip: skipUnless(), timeout: (SOAK_S + 120) * 1000 }, async (t) => {
  assert.ok(Number.isInteger(SOAK_S) && SOAK_S >= 20 && SOAK_S <= 3600, 'L4NAT_SOAK_SECONDS must be a whole number from 20 to 3600');
  await withLab({ backends: 4, ipv6: false, config }, async ({ lab, l4 }) => {
    const pid = l4.pid!;
    const proc = l4;
    await sleep(1_000);
    const start = procStats(pid);
    const startFds = fdTargets(pid);

    const probe = startProbe(lab, { target: lab.vip4, streams: 20, intervalMs: 50, chunkBytes: 256, connRate: 40, connTimeoutMs: 3_000, udpRate: 100, durationMs: (SOAK_S + 60) * 1000, binMs: 1000 });
    assert.equal((await probe.ready).failed, 0);
    const sid = encodeURIComponent(`${lab.vip4}:${SERVICE_PORT}/tcp`);
    const bid = (id: string): string => encodeURIComponent(`${lab.backend(id).ipv4}:${SERVICE_PORT}/tcp`);
    const changes: Array<[string, string, string, unknown?]> = [
      ['drain b3', 'POST', `/v1/services/${sid}/backends/${bid('b3')}/drain`],
      ['undrain b3', 'POST', `/v1/services/${sid}/backends/${bid('b3')}/undrain`],
      ['weight b2 = 2', 'PATCH', `/v1/services/${sid}/backends/${bid('b2')}`, { weight: 2 }],
      ['weight b2 = 1', 'PATCH', `/v1/services/${sid}/backends/${bid('b2')}`, { weight: 1 }],
      ['add b4', 'POST', `/v1/services/${sid}/backends`, { backend: `${lab.backend('b4').ipv4}:${SERVICE_PORT}` }],
      ['drain b4', 'POST', `/v1/services/${sid}/backends/${bid('b4')}/drain`],
      ['remove b4', 'DELETE', `/v1/services/${sid}/backends/${bid('b4')}`],
    ];
    const samples: Array<ProcStats & { s: number }> = [];
    const failures: string[] = [];
    let applied = 0;
    const t0 = Date.now();
    let nextChange = t0 + CHANGE_EVERY_MS;
    const died = async (): Promise<never> => {
      const st = await proc.proc.exited;
      throw new Error(`l4nat exited during the soak (code ${st.code}, signal ${st.signal}) after ${((Date.now() - t0) / 1000).toFixed(0)} s\n${proc.proc.tail(40)}`);
    };
    for (let k = 0; Date.now() - t0 < SOAK_S * 1000; ) {
      if (!proc.running) await died();
      samples.push({ s: (Date.now() - t0) / 1000, ...procStats(pid) });
      if (Date.now() >= nextChange) {
        const [what, method, path, body] = changes[k++ % changes.length]!;
        const r = await adminRequest(lab, method, path, body).catch(async (e: Error) => (proc.running ? { status: 0, body: e.message } : died()));
        if (r.status < 200 || r.status > 299) failures.push(`${what}: ${r.status} ${JSON.stringify(r.body)}`);
        else applied++;
        nextChange += CHANGE_EVERY_MS;
      }
      await sleep(1_000);
    }
    probe.stop();
    const rep = await probe.report;
    await sleep(3_000); // closing connections and health-check sockets settle
    const end = procStats(pid);
    // The heap V8 grew under load is given back over seconds, not at once: the least RSS over the next 10 s.
    let keptKiB = end.rssKiB;
    for (let i = 0; i < 10 && keptKiB - start.rssKiB >= 4 * 1024; i++) {
      await sleep(1_000);
      keptKiB = Math.min(keptKiB, procStats(pid).rssKiB);
    }
    const endFds = fdTargets(pid);

    const broken = rep.conns.filter((c) => c.error !== null);
    assert.equal(broken.length, 0, `broken streams: ${JSON.stringify(broken.slice(0, 3))}`);
    const short = summarizeAttempts(rep);
    assert.equal(failures.length, 0, `API changes failed: ${failures.join('; ')}`);
    assert.ok(short.rate === 1, `short connections: ${short.ok}/${short.attempts} ${JSON.stringify(short.errors)}`);
    assert.ok(rep.udp && rep.udp.replies >= rep.udp.sent * 0.99, `UDP ${rep.udp?.replies}/${rep.udp?.sent}`);
    const errors = l4.logs().filter((r) => (r.level as number) >= 50);
    assert.deepEqual(errors.map((r) => r.msg), [], 'error-level log records');
    assert.ok(l4.running);

    const steady = samples.filter((x) => x.s >= WARMUP_S);
    const rss = steady.map((x) => x.rssKiB);
    const half = Math.floor(steady.length / 2);
    const early = median(rss.slice(0, half));
    const late = median(rss.slice(half));
    const kibPerMin = slope(steady.map((x) => x.s), rss) * 60;
    const fdMax = Math.max(...samples.map((x) => x.fds));
    t.diagnostic(`${SOAK_S} s: ${rep.conns.length} streams intact (${(rep.conns.reduce((a, c) => a + c.bytesEchoed, 0) / 1e6).toFixed(1)} MB verified, longest stall ${Math.max(...rep.conns.map((c) => c.maxGapMs))} ms), short connections ${short.ok}/${short.attempts} (p99 ${short.p99Ms} ms), UDP ${rep.udp!.replies}/${rep.udp!.sent}, ${applied} backend changes applied`);
    t.diagnostic(`RSS: ${(start.rssKiB / 1024).toFixed(1)} MiB before load, median ${(early / 1024).toFixed(1)} → ${(late / 1024).toFixed(1)} MiB (first vs second half after ${WARMUP_S} s warm-up), slope ${kibPerMin.toFixed(0)} KiB/min, ${(end.rssKiB / 1024).toFixed(1)} MiB after (${(keptKiB / 1024).toFixed(1)} MiB kept); fds ${start.fds} before, max ${fdMax} during, ${end.fds} after; threads ${start.threads} → ${end.threads}`);
    // What the process keeps once the load has stopped: a leak per connection or per change stays, while the heap
    // V8 grew under load is mostly given back (measured after load: +1 to +3 MiB in 120 s soaks, +6.6 MiB in a
    // 30 s one on a loaded machine).
    assert.ok(keptKiB - start.rssKiB < 10 * 1024, `RSS ${start.rssKiB} KiB before the load, ${keptKiB} KiB kept after it`);
    // Growth during the load is judged only over a long soak: over 30 s the halves are 12 s of samples, and the
    // heap's own growth under load moved their medians by -8 to +9 MiB between runs of one build.
    if (SOAK_S >= 120) assert.ok(late - early < 8 * 1024, `RSS grew from ${early} to ${late} KiB`);
    assert.ok(end.fds <= start.fds + 2, `fds ${start.fds} → ${end.fds}: new ${JSON.stringify(endFds.filter((f) => !startFds.includes(f)))}`);
    assert.equal(end.threads, start.threads, 'thread count');
  });
});
