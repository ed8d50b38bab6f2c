// Busy control plane (issue 7): l4nat's JavaScript event loop blocked for 5 s with no product hook — SIGUSR1 makes
// Node open its inspector on 127.0.0.1:9229 (inside the lb namespace), and test/rigs/inspector.ts sends a
// Runtime.evaluate of a 5-second busy loop. Meanwhile 20 streams and a UDP flow (200 datagrams/s) go through the
// VIP; the probe counts echoed bytes and UDP replies per 100 ms. Checked: every 100 ms of the block saw stream
// and UDP traffic forwarded, no stream stalled, the admin API did not answer during the block (so it was real) and
// the worker heartbeats were fresh right after it. l4nat runs with NOTIFY_SOCKET and WATCHDOG_USEC=2000000 (2 s,
// shorter than the block): the WATCHDOG=1 pings come from the data plane's own thread (native/watchdog.c) while
// the workers are fresh, so they must go on through the block — the longest gap between two of them stays under
// the 2 s after which systemd would restart l4nat. Root-only; about 20 s.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { adminRequest } from '../src/lab/admin-client';
import { monotonicMs } from '../src/util/clock';
import { counters } from './rigs/admin';
import { rigScript, sleep, withLab } from './rigs/fixture';
import { listenNotify } from './rigs/notify-listener';
import { startProbe } from './rigs/probe-run';
import { skipUnless } from './rigs/requirements';

const BLOCK_MS = 5_000;
const WATCHDOG_USEC = 2_000_000;

test('JS event loop blocked 5 s (inspector Runtime.evaluate): forwarding goes on, workers stay fresh, watchdog gap reported', { skip: skipUnless(), timeout: 120_000 }, async (t) => {
  await withLab({ backends: 2, ipv6: false }, async ({ lab, dir, start, defer }) => {
    const notifyPath = join(dir, 'notify.sock');
    const notify = listenNotify(notifyPath);
    defer(() => notify.close());
    const l4 = await start({
      extraArgs: ['--hash-key', '5f3c2a1b0e9d8c7b6a5f4e3d2c1b0a99', '--queues', '2'],
      env: { NOTIFY_SOCKET: notifyPath, WATCHDOG_USEC: String(WATCHDOG_USEC) },
    });
    const probe = startProbe(lab, { target: lab.vip4, streams: 20, intervalMs: 20, chunkBytes: 256, udpRate: 200, durationMs: 60_000, binMs: 100 });
    assert.equal((await probe.ready).failed, 0);
    await sleep(1_500);
    const c0 = await counters(lab);

    // Open the inspector: Node prints "Debugger listening on ws://127.0.0.1:9229/..." on stderr.
    l4.proc.kill('SIGUSR1');
    await l4.proc.waitForLine((l) => /Debugger listening on ws:\/\/127\.0\.0\.1:9229\//.test(l), { timeoutMs: 10_000, what: 'inspector listening', stream: 'stderr' });
    const expression = `(() => { const end = Date.now() + ${BLOCK_MS}; let n = 0; while (Date.now() < end) n++; return n; })()`;
    const evaluating = lab.exec('lb', process.execPath, [rigScript('inspector'), '--port', '9229', '--expression', expression, '--timeout-ms', '30000'], { timeoutMs: 40_000 });
    // An admin request made one second into the block must wait for its end.
    await sleep(1_000);
    const askedAt = Date.now();
    const during = await adminRequest(lab, 'GET', '/v1/status');
    const answeredAt = Date.now();
    const ev = JSON.parse((await evaluating).stdout) as { sentAt: number; doneAt: number; response: { result?: { result?: { value?: number } }; error?: unknown } };
    const c1 = await counters(lab);
    const hbAges = c1.heartbeatsMs.map((hb) => monotonicMs() - hb);
    await sleep(WATCHDOG_USEC / 1000 / 2 + 1_000); // one more watchdog ping after the block
    probe.stop();
    const rep = await probe.report;

    assert.ok(ev.response.result?.result?.value, `the busy loop ran: ${JSON.stringify(ev.response)}`);
    const blocked = ev.doneAt - ev.sentAt;
    assert.ok(blocked >= BLOCK_MS - 100, `evaluate returned after ${blocked} ms`);
    assert.equal(during.status, 200);
    assert.ok(answeredAt >= ev.sentAt + BLOCK_MS - 300, `the admin API answered ${answeredAt - askedAt} ms after the request, ${answeredAt - ev.sentAt} ms into the block: the loop was not blocked?`);

    // Forwarding during the block (bins wholly inside it, a little margin at both ends).
    const from = ev.sentAt + 300;
    const to = ev.doneAt - 300;
    const inside = rep.bins.filter((b) => b.t >= from && b.t + 100 <= to);
    assert.ok(inside.length >= (to - from) / 100 - 2, `${inside.length} bins inside the block`);
    const empty = inside.filter((b) => b.echoedBytes === 0 || b.udpReplies === 0);
    assert.equal(empty.length, 0, `100-ms bins with no stream echo or no UDP reply during the block: ${JSON.stringify(empty.slice(0, 5))}`);
    const udpSent = inside.reduce((a, b) => a + b.udpSent, 0);
    const udpReplies = inside.reduce((a, b) => a + b.udpReplies, 0);
    const echoed = inside.reduce((a, b) => a + b.echoedBytes, 0);
    assert.ok(udpReplies >= udpSent * 0.98, `UDP replies ${udpReplies} of ${udpSent} during the block`);
    for (const c of rep.conns) assert.equal(c.error, null, `stream ${c.i}: ${c.error}`);
    const worstGap = Math.max(...rep.conns.map((c) => c.maxGapMs));
    assert.ok(worstGap < 1_000, `a stream stalled ${worstGap} ms`);
    assert.ok(hbAges.every((a) => a < 1_000), `worker heartbeat ages right after the block: ${hbAges.join(', ')} ms`);
    const fwd = c1.total.forward! - c0.total.forward!;

    // The watchdog: pings every WATCHDOG_USEC/2 from the native thread, only while the workers are fresh.
    const pings = notify.arrivedAt.filter((_, i) => /^WATCHDOG=1$/m.test(notify.messages[i]!));
    const gaps = pings.slice(1).map((p, i) => p - pings[i]!);
    const maxGap = Math.max(...gaps);
    const afterBlock = pings.filter((p) => p > ev.doneAt).length;
    assert.ok(afterBlock >= 1, 'watchdog pings after the block');
    const pingsInBlock = pings.filter((p) => p > ev.doneAt - BLOCK_MS && p < ev.doneAt).length;
    assert.ok(pingsInBlock >= 3, `${pingsInBlock} watchdog pings during the ${BLOCK_MS} ms block (one every ${WATCHDOG_USEC / 2000} ms expected)`);
    t.diagnostic(`event loop blocked ${blocked} ms (admin request during it answered after ${answeredAt - askedAt} ms); inside the block (${inside.length} × 100 ms bins, every one with traffic): ${(echoed / 1024).toFixed(0)} KiB echoed over 20 streams, UDP ${udpReplies}/${udpSent} replies; longest stream stall over the whole run ${worstGap} ms; l4nat forwarded ${fwd} client→backend packets between a counter read 1.5 s before the block and one right after it`);
    t.diagnostic(`worker heartbeats right after the block: ${hbAges.join(', ')} ms old; WATCHDOG=1 pings (WATCHDOG_USEC=${WATCHDOG_USEC}): ${pings.length}, longest gap ${maxGap} ms (systemd would restart at ${WATCHDOG_USEC / 1000} ms), ${afterBlock} after the block`);
    assert.ok(maxGap < WATCHDOG_USEC / 1000, `watchdog gap ${maxGap} ms reached WatchdogSec`);
  });
});
