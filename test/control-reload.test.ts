// Reload (src/control/reload.ts): the file applies all of it or none of it, through the change queue; what it
// adds, removes, changes and discards; settings that need a restart are refused by name; the new options, token
// and log level take effect only once the data plane took the table.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { ConfigError, parseConfig } from '../src/config/load';
import { ControlError, Controller } from '../src/control/controller';
import { planReload } from '../src/control/reload';
import type { UpOptions } from '../src/config/options';
import { backend, capturedLog, checkedConfig, configDir, controllerWith, FakeBalancer, runningState, stateOf, until, WEB, webKey } from './rigs/control-fakes';

const dir = configDir('l4nat-control-reload-');

const TWO = `
services:
  - name: web
    vips: [10.0.0.10]
    ports: [80]
    backends: ["10.0.1.11:8080", "10.0.1.12:8080"]
  - name: dns
    vips: [10.0.0.53]
    ports: ["53/udp"]
    backends: ["10.0.2.1:53"]
`;
const opts = (yaml: string): UpOptions => parseConfig(`admin: {port: 0}\n${yaml}`, 'test.yaml');

describe('planning a reload', () => {
  test('names the services added, removed and changed, counts the unchanged, and the API backends it drops', async () => {
    const { state } = await runningState(TWO);
    state.runtime.set(webKey('10.0.1.13:8080'), { key: webKey('10.0.1.13:8080'), source: 'api' });
    state.runtime.set(webKey('10.0.1.12:8080'), { key: webKey('10.0.1.12:8080'), source: 'api' });
    const next = opts(`
services:
  - name: web
    vips: [10.0.0.10]
    ports: [80]
    backends: ["10.0.1.11:8080", "10.0.1.12:8080", "10.0.1.14:8080"]
  - name: ntp
    vips: [10.0.0.123]
    ports: ["123/udp"]
    backends: ["10.0.3.1:123"]
`);
    const { change, result } = planReload(state, '/etc/l4nat.yaml', opts(TWO), next);
    assert.deepEqual(result, {
      file: '/etc/l4nat.yaml',
      added: ['10.0.0.123:123/udp'],
      removed: ['10.0.0.53:53/udp'],
      changed: ['10.0.0.10:80/tcp'],
      unchanged: 0,
      discardedApiBackends: [webKey('10.0.1.13:8080')],
    });
    assert.deepEqual([...change.plan!.runtime.values()].map((r) => r.source), ['config', 'config', 'config', 'config'], 'a backend in the file is a config backend again');
    assert.deepEqual(change.extra, { file: '/etc/l4nat.yaml', added: result.added, removed: result.removed, changed: result.changed });
    assert.equal(state.services.length, 2, 'nothing applied');
    assert.equal(planReload(state, 'f', opts(TWO), opts(TWO)).result.unchanged, 2);
  });

  test('the table options follow the file: timeouts, icmp_echo and the probe source', async () => {
    const { state } = await runningState(TWO);
    const next = opts(`global: {icmp_echo: false, timeouts: {udp: 7}, probe_source: {ipv4: 192.0.2.77}}\n${TWO}`);
    const t = planReload(state, 'f', opts(TWO), next).change.tableOpts!;
    assert.deepEqual([t.icmpEcho, t.timeouts.udp, t.probeSource?.ipv4, t.maglevSize], [false, 7, '192.0.2.77', state.balancer.tableOptions.maglevSize]);
  });

  test('a setting that takes effect only at start is refused by name', async () => {
    const { state } = await runningState(TWO);
    assert.throws(() => planReload(state, 'f.yaml', opts(TWO), opts(`global: {queues: 3, maglev_size: 251}\n${TWO}`)), (e: unknown) => {
      assert.ok(e instanceof ConfigError);
      assert.match(e.message, /these settings take effect only at start: global\.queues, global\.maglev_size; restart l4nat to change them \(the reload changed nothing\)/);
      return true;
    });
  });
});

describe('reload', () => {
  test('started from flags: a 409, nothing to reload', async () => {
    const ctrl = new Controller(new FakeBalancer(), { ...opts(TWO), configFile: undefined }, capturedLog().log);
    await ctrl.start();
    await assert.rejects(ctrl.reload(), (e: unknown) => e instanceof ControlError && e.status === 409 && /started from flags, not from a config file/.test(e.message));
    assert.deepEqual(ctrl.reloads, { ok: 0, failed: 0 });
    ctrl.stop();
  });

  test('the new options and log level take effect once the table is in; the outcome is kept and the reload event says what is now running', async () => {
    const { bal, ctrl, file, of } = await controllerWith(dir, `admin: {port: 0}\n${TWO}`);
    const old = ctrl.opts;
    writeFileSync(file, `admin: {port: 0}\nglobal: {log_level: warn, stats_interval: 7}\n${TWO.replace('"10.0.2.1:53"', '"10.0.2.1:53", "10.0.2.2:53"')}`);
    const emitted: UpOptions[] = [];
    ctrl.on('reload', (next: UpOptions) => emitted.push(next));
    bal.delayMs = 100;
    const r = ctrl.reload();
    await new Promise((res) => setTimeout(res, 30));
    assert.equal(ctrl.opts, old, 'not before the data plane took the table');
    const res = await r;
    assert.deepEqual([res.added, res.removed, res.changed, res.unchanged, res.changedSlots], [[], [], ['10.0.0.53:53/udp'], 1, {}]);
    assert.equal(ctrl.opts.statsInterval, 7);
    assert.deepEqual(emitted, [ctrl.opts]);
    assert.equal(ctrl.lastReload?.ok, true);
    assert.deepEqual(ctrl.reloads, { ok: 1, failed: 0 });
    assert.equal(of('reload').length, 0, 'the reload line is info, and the log level is warn now');
    assert.deepEqual(bal.table()[1], { '10.0.2.1:53': 1, '10.0.2.2:53': 1 });
    ctrl.stop();
  });

  test('a file that does not parse is a 400 naming the problem; counted, kept as the last reload, logged; nothing published', async () => {
    const { bal, ctrl, file, of } = await controllerWith(dir, `admin: {port: 0}\n${TWO}`);
    const n = bal.published.length;
    writeFileSync(file, `admin: {port: 0}\n${TWO.replace('ports: [80]', 'ports: [99999]')}`);
    await assert.rejects(ctrl.reload(), (e: unknown) => e instanceof ControlError && e.status === 400 && /services\[0\]\.ports\[0\]: got 99999/.test(e.message));
    assert.deepEqual(ctrl.reloads, { ok: 0, failed: 1 });
    assert.equal(ctrl.lastReload?.ok, false);
    assert.match(ctrl.lastReload?.error ?? '', /got 99999/);
    assert.equal(of('reload_failed').length, 1);
    assert.equal(bal.published.length, n);
    ctrl.stop();
  });

  test('backends added through the API and not in the file are dropped, and the drop is logged', async () => {
    const { bal, ctrl, of } = await controllerWith(dir, `admin: {port: 0}\n${TWO}`);
    await ctrl.addBackend(WEB, backend('10.0.1.13'));
    const res = await ctrl.reload();
    assert.deepEqual(res.discardedApiBackends, [webKey('10.0.1.13:8080')]);
    assert.deepEqual(of('reload_discarded').map((e) => e.backends), [[webKey('10.0.1.13:8080')]]);
    assert.deepEqual(Object.keys(bal.table()[0]), ['10.0.1.11:8080', '10.0.1.12:8080']);
    ctrl.stop();
  });

  test('reload: after a reload refused for want of backend slots, the old checks run on, and a backend that then dies goes down and out of the ring', async () => {
    const { bal, ctrl, hosts, file } = await controllerWith(dir, checkedConfig(0.1, ['10.0.1.11:8080', '10.0.1.12:8080']), ['10.0.1.11', '10.0.1.12']);
    try {
      await until('both backends probed', () => hosts.count('10.0.1.11') > 0 && hosts.count('10.0.1.12') > 0);
      // A new check interval (every checker is replaced) and a third backend the data plane has no slot for.
      writeFileSync(file, checkedConfig(0.2, ['10.0.1.11:8080', '10.0.1.12:8080', '10.0.1.13:8080']));
      hosts.alive.add('10.0.1.13');
      bal.refuse = (services) => (services.reduce((n, s) => n + s.backends.length, 0) > 2 ? 'no free backend slot: 2 in use, 2 at most (test)' : undefined);
      const before = JSON.stringify(ctrl.current);
      await assert.rejects(ctrl.reload(), /no free backend slot/);
      assert.equal(JSON.stringify(ctrl.current), before, 'the services are as they were');
      assert.equal(ctrl.opts.services[0].health?.interval, 0.1, 'the running options are the old ones');
      assert.equal(ctrl.lastReload?.ok, false);
      assert.equal(hosts.count('10.0.1.13'), 0, 'the refused backend was never probed');

      hosts.alive.delete('10.0.1.11');
      await until('the dead backend is down and out of the published ring', () => stateOf(ctrl, '10.0.1.11') === 'down' && bal.table()[0]['10.0.1.11:8080'] === 0);
      assert.equal(bal.table()[0]['10.0.1.12:8080'], 1);
      const v = ctrl.serviceView(ctrl.current[0], bal.dp.counters(), Date.now(), true);
      assert.equal(v.healthCheck?.interval, 0.1);
      assert.equal(v.backends[0].health?.state, 'down', 'the API shows the checker that decides');
    } finally {
      ctrl.stop();
    }
  });

  test('the token file is read again: a token the file no longer names is no longer accepted', async () => {
    const tokenFile = join(dir, 'reload.token');
    writeFileSync(tokenFile, 'first-token-first-token-0123\n', { mode: 0o600 });
    const text = `admin: {port: 0, token_file: ${tokenFile}}\n${TWO}`;
    const { ctrl } = await controllerWith(dir, text);
    assert.equal(ctrl.token, 'first-token-first-token-0123');
    writeFileSync(tokenFile, 'second-token-second-token-0123\n', { mode: 0o600 });
    await ctrl.reload();
    assert.equal(ctrl.token, 'second-token-second-token-0123');
    ctrl.stop();
  });
});
