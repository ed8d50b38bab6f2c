// sd_notify against a datagram socket the test creates (systemd is not PID 1 here): READY=1 with STATUS=,
// STATUS= updates, WATCHDOG=1 only while the workers' heartbeats are fresh, STOPPING=1; the variables are
// removed from the environment. The second part runs the real l4nat in a lab (root only).
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import pino from 'pino';
import { SystemdNotifier, workersAlive } from '../src/host/systemd';
import { withLab } from './rigs/fixture';
import { listenNotify as listen } from './rigs/notify-listener';
import { skipUnless } from './rigs/requirements';

const log = pino({ level: 'silent' });
const dir = mkdtempSync(join(tmpdir(), 'l4nat-sd-'));
after(() => rmSync(dir, { recursive: true, force: true }));

test('READY=1, STATUS=, WATCHDOG=1 only while workers are alive, STOPPING=1; environment cleared', async () => {
  const path = join(dir, 'notify.sock');
  const l = listen(path);
  try {
    const env: NodeJS.ProcessEnv = { NOTIFY_SOCKET: path, WATCHDOG_USEC: '200000', WATCHDOG_PID: String(process.pid), OTHER: 'x' };
    const n = SystemdNotifier.fromEnv(log, env)!;
    assert.ok(n);
    assert.deepEqual(env, { OTHER: 'x' }, 'NOTIFY_SOCKET, WATCHDOG_USEC and WATCHDOG_PID are removed');
    assert.equal(n.watchdogUsec, 200000);
    n.ready('1 services; backends 2 up');
    assert.match(await l.waitFor((m) => m.startsWith('READY=1')), /^READY=1\nMAINPID=\d+\nSTATUS=1 services; backends 2 up$/);
    n.status('1 services; backends 1 up, 1 down');
    n.status('1 services; backends 1 up, 1 down'); // unchanged: not sent again
    await l.waitFor((m) => m === 'STATUS=1 services; backends 1 up, 1 down');
    let alive: string | null = null;
    n.startWatchdog(() => alive);
    await new Promise((r) => setTimeout(r, 350)); // pings every 100 ms
    const pings = l.messages.filter((m) => m === 'WATCHDOG=1').length;
    assert.ok(pings >= 3, `${pings} pings`);
    alive = 'worker 0 silent';
    await new Promise((r) => setTimeout(r, 120));
    const stalled = l.messages.filter((m) => m === 'WATCHDOG=1').length;
    await new Promise((r) => setTimeout(r, 350));
    assert.equal(l.messages.filter((m) => m === 'WATCHDOG=1').length, stalled, 'no pings while a worker is stalled');
    alive = null;
    await new Promise((r) => setTimeout(r, 250));
    assert.ok(l.messages.filter((m) => m === 'WATCHDOG=1').length > stalled, 'pings resume');
    n.stopping('stopping (SIGTERM)');
    await l.waitFor((m) => m.startsWith('STOPPING=1'));
    n.close();
    assert.equal(l.messages.filter((m) => m === 'STATUS=1 services; backends 1 up, 1 down').length, 1);
  } finally {
    l.close();
  }
});

test('no NOTIFY_SOCKET: no notifier; an abstract socket is refused; WATCHDOG_PID of another process disables the watchdog', () => {
  assert.equal(SystemdNotifier.fromEnv(log, {}), undefined);
  assert.equal(SystemdNotifier.fromEnv(log, { NOTIFY_SOCKET: '@abstract' }), undefined);
  const n = SystemdNotifier.fromEnv(log, { NOTIFY_SOCKET: join(dir, 'none.sock'), WATCHDOG_USEC: '1000000', WATCHDOG_PID: '1' })!;
  assert.equal(n.watchdogUsec, undefined);
  n.close();
});

test('workersAlive: fresh heartbeats pass, a stale one is named', () => {
  assert.equal(workersAlive([1000, 1100], 1500), null);
  assert.match(workersAlive([1000, -5000], 1500) ?? '', /worker\(s\) 1 \(6500 ms\) silent/);
  assert.equal(workersAlive([], 1), 'no workers');
});

test('the real l4nat: READY=1 once forwarding, WATCHDOG=1 from worker heartbeats, STOPPING=1 on SIGTERM', { skip: skipUnless(), timeout: 60_000 }, async () => {
  const path = join(dir, 'l4nat-notify.sock');
  const l = listen(path);
  await withLab({ backends: 2, ipv6: false, l4nat: { ports: ['8080/tcp'], extraArgs: ['--queues', '2'], env: { NOTIFY_SOCKET: path, WATCHDOG_USEC: '400000' } } }, async ({ l4, defer }) => {
    defer(() => l.close());
    const ready = await l.waitFor((m) => m.startsWith('READY=1'));
    assert.match(ready, /STATUS=1 services; backends 2 up, 0 down, 0 draining; \d+ flows/);
    await new Promise((r) => setTimeout(r, 700));
    assert.ok(l.messages.filter((m) => m === 'WATCHDOG=1').length >= 3, JSON.stringify(l.messages));
    const st = await l4.stop();
    assert.equal(st.code, 0);
    await l.waitFor((m) => m.startsWith('STOPPING=1'));
  });
});

const unit = join(__dirname, '..', '..', 'systemd', 'l4nat.service');

test('the unit file: Type=notify with a watchdog, unprivileged with ambient CAP_NET_ADMIN, CAP_NET_RAW (icmp checks) and CAP_BPF only, bpf() allowed, hardened; /run/l4nat kept across restarts for the flow table file', () => {
  const text = require('node:fs').readFileSync(unit, 'utf8') as string;
  for (const line of ['Type=notify', 'NotifyAccess=main', 'WatchdogSec=10', 'ExecReload=/bin/kill -HUP $MAINPID', 'AmbientCapabilities=CAP_NET_ADMIN CAP_NET_RAW CAP_BPF', 'CapabilityBoundingSet=CAP_NET_ADMIN CAP_NET_RAW CAP_BPF', 'SystemCallFilter=@system-service bpf', 'NoNewPrivileges=yes', 'ProtectSystem=strict', 'DeviceAllow=/dev/net/tun rw', 'KillMode=mixed', 'User=l4nat', 'LimitNICE=-10', 'RuntimeDirectory=l4nat', 'RuntimeDirectoryMode=0700', 'RuntimeDirectoryPreserve=restart']) {
    assert.ok(text.split('\n').includes(line), `missing ${line}`);
  }
});

test('systemd-analyze accepts the unit file', { skip: skipUnless({ root: false, commands: ['systemd-analyze'] }) }, () => {
  const r = require('node:child_process').spawnSync('systemd-analyze', ['verify', unit], { encoding: 'utf8' }) as { error?: Error; status: number; stderr: string };
  assert.doesNotMatch(r.stderr, /Unknown key|Invalid|Failed to parse/i, r.stderr);
});
