// A TUN deleted under a running l4nat (issue 19, item 3). Before: poll() reported POLLERR at once and every read
// EBADFD, so the workers spun at full CPU, kept stamping their heartbeats, WATCHDOG=1 went on and nothing
// re-attached: a zombie that looked healthy. Now a worker whose queue cannot be read any more records why and ends,
// the watchdog pings stop, and l4nat logs an error naming the device and exits with status 74 keeping its routes
// and rules (as after a crash: no reply leaks), so systemd (Restart=on-failure) starts it again, which creates the
// TUN again. Checked against a notification socket like systemd's, then the restart systemd would do.
// Root-only (lab), about 15 s.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { runClient } from '../src/lab/workload';
import { withLab } from './rigs/fixture';
import { listenNotify } from './rigs/notify-listener';
import { skipUnless } from './rigs/requirements';
import { DATAPLANE_FAILED_EXIT_CODE } from '../src/daemon/up';

/** CPU time (user + system, in clock ticks) a process has used. */
function cpuTicks(pid: number): number {
  const f = require('node:fs').readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ') as string[];
  return Number(f[11]) + Number(f[12]);
}

test('TUN deleted under l4nat: the error names the device, the watchdog pings stop, exit 74 keeping routes and rules; started again it forwards', { skip: skipUnless(), timeout: 120_000 }, async (t) => {
  await withLab({ backends: 2, ipv6: false }, async ({ lab, dir, start, defer }) => {
    const notify = listenNotify(join(dir, 'notify.sock'));
    defer(() => notify.close());
    const opts = { ports: ['8080/tcp'], extraArgs: ['--queues', '2'], env: { NOTIFY_SOCKET: join(dir, 'notify.sock'), WATCHDOG_USEC: '400000' } };
    const l4 = await start(opts);
    await notify.waitFor((m) => m === 'WATCHDOG=1');
    const before = await runClient(lab, { target: lab.vip4, count: 50, concurrency: 8 });
    assert.equal(before.failed, 0, JSON.stringify(before.errors));
    const rules = (await lab.ip('lb', ['rule'])).trim();

    const deletedAt = Date.now();
    await lab.ip('lb', ['link', 'del', 'l4nat0']);
    const st = await Promise.race([l4.proc.exited, new Promise<null>((r) => setTimeout(() => r(null), 10_000))]);
    let spun = '';
    if (st === null && l4.pid) {
      const c0 = cpuTicks(l4.pid);
      await new Promise((r) => setTimeout(r, 1000));
      spun = `; still running, ${cpuTicks(l4.pid) - c0} CPU ticks in the last second`;
    }
    assert.ok(st !== null, `l4nat did not exit within 10 s of the deletion${spun}`);
    assert.equal(st.code, DATAPLANE_FAILED_EXIT_CODE, `exit status\n${l4.stderr.join('\n')}`);
    const err = l4.logs().find((r) => r.level === 50 && /^TUN l4nat0: reading queues 0, 1 failed with EBADFD \(File descriptor in bad state\): the device was deleted\. /.test(String(r.msg)));
    assert.ok(err, `an error naming the device and the errno: ${l4.lines.slice(-5).map((l) => l.raw).join('\n')}`);
    assert.match(String(err.msg), /exiting with status 74 so that the service manager starts l4nat again/);
    const exitedAfterMs = Date.now() - deletedAt;
    // Pings sent before the workers saw the error may still arrive; none a second later.
    const late = notify.arrivedAt.filter((at, i) => notify.messages[i] === 'WATCHDOG=1' && at > deletedAt + 1000).length;
    assert.equal(late, 0, 'no WATCHDOG=1 a second or more after the deletion');
    assert.ok(notify.messages.some((m) => m.startsWith('STATUS=data plane failed: TUN l4nat0')), `STATUS= says so: ${JSON.stringify(notify.messages.slice(-3))}`);
    // As after a crash: the rules stay (replies hit the blackhole, they do not leak untranslated).
    assert.equal((await lab.ip('lb', ['rule'])).trim(), rules, 'the rules are kept');
    t.diagnostic(`deleted -> exit ${st.code} after ${exitedAfterMs} ms (error: ${String(err.msg).slice(0, 110)}...); rules kept`);

    // What systemd's Restart=on-failure does next: the new l4nat creates the TUN again and forwards.
    const again = await start({ ports: opts.ports, extraArgs: opts.extraArgs });
    const after = await runClient(lab, { target: lab.vip4, count: 50, concurrency: 8 });
    assert.equal(after.failed, 0, JSON.stringify(after.errors));
    assert.equal((await again.stop()).code, 0);
  });
});
