// Active health checks per backend (src/control/checkers.ts): a checker made for each backend of a checked
// service, kept while the check stays the same, replaced (inheriting its state) when it changes, started only
// once the control plane runs; verdicts logged and published, on_down: reset after the publish.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import { HealthCheckers } from '../src/control/checkers';
import type { ServiceConfig } from '../src/config/model';
import type { PublishResult } from '../src/control/balancer';
import type { ProbeFn } from '../src/health/checker';
import { checkedConfig, configDir, controllerWith, FakeBackends, runningState, sleep, stateOf, until, webKey } from './rigs/control-fakes';

const dir = configDir('l4nat-control-checkers-');

const CHECKED = (interval = 0.1, type = 'tcp', onDown = 'keep'): string => `
services:
  - name: web
    vips: [10.0.0.10]
    ports: [80]
    on_down: ${onDown}
    health_check: {type: ${type}, interval: ${interval}, timeout: 0.05, fall: 1, rise: 1, jitter: 0}
    backends: ["10.0.1.11:80"]
`;
const KEY = webKey('10.0.1.11:80');

/** Checkers on a running state of `yaml`, with the publishes and resets they ask for recorded. */
async function checkersOn(yaml: string, probe?: ProbeFn) {
  const { state, bal, of } = await runningState(yaml);
  const republished: string[] = [];
  const resets: Array<{ s: ServiceConfig; key: string }> = [];
  const checkers = new HealthCheckers(
    state,
    async (reason): Promise<PublishResult> => {
      republished.push(reason);
      return { changedSlots: {} };
    },
    async (s, key) => void resets.push({ s, key }),
    probe,
  );
  const rt = state.runtime.get(KEY)!;
  const sync = (): void => checkers.sync(rt, state.services[0], state.services[0].backends[0]);
  return { state, bal, of, checkers, rt, sync, republished, resets };
}

describe('checkers', () => {
  test('a backend of a service without a check has none; with one it gets a checker, kept while the check is the same', async () => {
    const hosts = new FakeBackends();
    const c = await checkersOn(CHECKED(), hosts.probe);
    c.sync();
    const first = c.rt.checker;
    assert.ok(first);
    c.sync();
    assert.equal(c.rt.checker, first, 'the same checker');
    c.state.services[0] = { ...c.state.services[0], health: null };
    c.sync();
    assert.equal(c.rt.checker, undefined);
    c.checkers.stopAll();
  });

  test('a changed check replaces the checker: the new one inherits "down", the old one stops probing', async () => {
    const hosts = new FakeBackends(); // nobody answers
    const c = await checkersOn(CHECKED(0.1), hosts.probe);
    c.sync();
    const old = c.rt.checker!;
    await until('down', () => old.state === 'down');
    c.state.services[0] = { ...c.state.services[0], health: { ...c.state.services[0].health!, interval: 0.2 } };
    c.sync();
    assert.notEqual(c.rt.checker, old);
    assert.equal(c.rt.checker!.state, 'down', 'inherited');
    const n = old.checks.failed;
    await sleep(300);
    assert.equal(old.checks.failed, n, 'the old checker stopped');
    c.checkers.stopAll();
  });

  test('checkers start only once the control plane runs (start() starts them after the first publish)', async () => {
    const hosts = new FakeBackends();
    const c = await checkersOn(CHECKED(), hosts.probe);
    c.state.running = false;
    c.sync();
    await sleep(300);
    assert.equal(hosts.count('10.0.1.11'), 0, 'not started');
    c.checkers.startAll();
    await until('probed', () => hosts.count('10.0.1.11') > 0);
    c.checkers.stopAll();
  });

  test('a verdict is logged and published; after a down verdict\'s table, on_down is applied (flows.ts decides by the service), not after an up', async () => {
    const hosts = new FakeBackends();
    hosts.alive.add('10.0.1.11');
    const c = await checkersOn(CHECKED(0.1, 'tcp', 'reset'), hosts.probe);
    c.sync();
    hosts.alive.delete('10.0.1.11');
    await until('published', () => c.republished.length === 1);
    assert.deepEqual(c.republished, ['health: 10.0.1.11:80/tcp down']);
    const down = c.of('backend_down');
    assert.equal(down.length, 1);
    assert.equal(down[0].level, 40);
    assert.match(down[0].msg, /backend 10\.0\.1\.11:80\/tcp of 10\.0\.0\.10:80\/tcp is DOWN: connect ECONNREFUSED/);
    await until('on_down applied', () => c.resets.length === 1);
    assert.deepEqual([c.resets[0].key, c.resets[0].s.onDown], [KEY, 'reset']);
    hosts.alive.add('10.0.1.11');
    await until('back up', () => c.republished.length === 2);
    assert.equal(c.republished[1], 'health: 10.0.1.11:80/tcp up');
    assert.equal(c.of('backend_up').length, 1);
    await sleep(20);
    assert.equal(c.resets.length, 1, 'no reset when it comes up');
    c.checkers.stopAll();
  });

  test('a dataplane check on a data plane that cannot send probes fails, saying so', async () => {
    const c = await checkersOn(CHECKED(0.1, 'dataplane'));
    c.sync();
    await until('a check ran', () => c.rt.checker!.history.length > 0);
    assert.deepEqual([c.rt.checker!.history[0].ok, c.rt.checker!.history[0].detail], [false, 'this data plane build cannot send probes']);
    c.checkers.stopAll();
  });
});

describe('checkers across a reload (controller)', () => {
  test('a reload that changes the check and is taken replaces the checkers, keeping their state', async () => {
    const { bal, ctrl, hosts, file } = await controllerWith(dir, checkedConfig(0.1, ['10.0.1.11:8080', '10.0.1.12:8080']), ['10.0.1.12']);
    try {
      await until('the dead backend is down', () => stateOf(ctrl, '10.0.1.11') === 'down' && bal.table()[0]['10.0.1.11:8080'] === 0);
      writeFileSync(file, checkedConfig(0.2, ['10.0.1.11:8080', '10.0.1.12:8080']));
      await ctrl.reload();
      assert.equal(bal.table()[0]['10.0.1.11:8080'], 0, 'still out of the ring: the new checker inherited "down"');
      assert.equal(stateOf(ctrl, '10.0.1.11'), 'down');
      hosts.alive.add('10.0.1.11');
      await until('back up under the new check', () => bal.table()[0]['10.0.1.11:8080'] === 1);
    } finally {
      ctrl.stop();
    }
  });
});
