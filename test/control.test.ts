// The Controller façade (src/control/controller.ts) on its own (no root): a fake Balancer and fake health
// probes. What each concern decides is tested in its own file (test/control-*.test.ts); here, what the façade
// wires together: start (publish, then checks), the cluster's hooks, graceful stop, the events the daemon
// listens to, and the public API the daemon, admin, metrics and cluster use.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Controller } from '../src/control/controller';
import { checkedConfig, configDir, controllerWith, sleep, until, WEB } from './rigs/control-fakes';

const dir = configDir('l4nat-control-');
const KEY11 = `${WEB}|10.0.1.11:8080/tcp`;
const KEY12 = `${WEB}|10.0.1.12:8080/tcp`;

describe('the façade', () => {
  test('keeps the public API', () => {
    const methods = [
      'counters', 'flowCount', 'countFlows', 'start', 'localHealth', 'republish', 'effective', 'samplePassive', 'sampleDrains',
      'addBackend', 'removeBackend', 'updateBackend', 'drain', 'undrain', 'reload', 'quiesce', 'stop',
      'backendState', 'view', 'serviceView', 'serviceById', 'summary', 'listFlows', 'deleteFlows',
    ];
    for (const m of methods) assert.equal(typeof (Controller.prototype as unknown as Record<string, unknown>)[m], 'function', m);
    for (const p of ['current', 'publishedWeights', 'healthVote', 'beforePlannedChange']) assert.ok(Object.getOwnPropertyDescriptor(Controller.prototype, p)?.get, p);
  });

  test('start publishes the configured services, then starts their checks; a "change" event per table', async () => {
    const { ctrl, hosts, publishedReasons, bal } = await controllerWith(dir, checkedConfig(0.1, ['10.0.1.11:8080', '10.0.1.12:8080']), ['10.0.1.11', '10.0.1.12']);
    try {
      assert.deepEqual(publishedReasons, ['start']);
      assert.deepEqual(bal.table(), [{ '10.0.1.11:8080': 1, '10.0.1.12:8080': 1 }]);
      assert.deepEqual(ctrl.publishedWeights.get(WEB), new Map([['10.0.1.11:8080/tcp', 1], ['10.0.1.12:8080/tcp', 1]]));
      await until('both probed', () => hosts.count('10.0.1.11') > 0 && hosts.count('10.0.1.12') > 0);
      let changes = 0;
      ctrl.on('change', () => void changes++);
      hosts.alive.delete('10.0.1.12');
      await until('down and republished', () => bal.table()[0]['10.0.1.12:8080'] === 0);
      assert.equal(changes, 1);
      assert.deepEqual(ctrl.summary(), { services: 1, backends: 2, up: 1, down: 1, draining: 0, allDown: [] });
    } finally {
      ctrl.stop();
    }
  });

  test('the cluster\'s vote decides the ring, this host\'s own view stays what its checks say; unset, the checks decide again', async () => {
    const { ctrl, bal } = await controllerWith(dir, checkedConfig(0.1, ['10.0.1.11:8080', '10.0.1.12:8080']), ['10.0.1.11', '10.0.1.12']);
    try {
      ctrl.healthVote = (key, local) => (key === KEY12 ? false : local);
      await ctrl.republish('cluster health: test');
      assert.deepEqual(bal.table(), [{ '10.0.1.11:8080': 1, '10.0.1.12:8080': 0 }]);
      assert.deepEqual([...ctrl.localHealth()], [[KEY11, true], [KEY12, true]]);
      assert.equal(ctrl.view().services[0].backends[1].state, 'down', 'the API shows what the ring does');
      ctrl.healthVote = null;
      assert.equal(ctrl.healthVote, null);
      await ctrl.republish('cluster left');
      assert.deepEqual(bal.table(), [{ '10.0.1.11:8080': 1, '10.0.1.12:8080': 1 }]);
    } finally {
      ctrl.stop();
    }
  });

  test('the cluster\'s hold comes before a planned change is queued; health verdicts are not held', async () => {
    const { ctrl, bal, publishedReasons } = await controllerWith(dir, checkedConfig(0.1, ['10.0.1.11:8080', '10.0.1.12:8080']), ['10.0.1.11', '10.0.1.12']);
    try {
      let release!: () => void;
      const holds: string[] = [];
      ctrl.beforePlannedChange = (reason) => {
        holds.push(reason);
        return new Promise<void>((r) => (release = r));
      };
      const drain = ctrl.drain(WEB, '10.0.1.11:8080/tcp');
      await sleep(20);
      assert.deepEqual(holds, ['api: drain 10.0.1.11:8080/tcp']);
      await ctrl.republish('health: meanwhile');
      assert.deepEqual(publishedReasons, ['start', 'health: meanwhile'], 'the verdict went out while the drain was held');
      release();
      await drain;
      assert.equal(bal.table()[0]['10.0.1.11:8080'], 0);
      ctrl.beforePlannedChange = null;
      assert.equal(ctrl.beforePlannedChange, null);
      await ctrl.undrain(WEB, '10.0.1.11:8080/tcp');
      assert.equal(holds.length, 1);
    } finally {
      ctrl.stop();
    }
  });

  test('quiesce empties every ring and keeps it empty whatever health says; stop ends the checks', async () => {
    const { ctrl, bal, hosts, publishedReasons } = await controllerWith(dir, checkedConfig(0.1, ['10.0.1.11:8080', '10.0.1.12:8080']), ['10.0.1.11', '10.0.1.12']);
    try {
      await ctrl.quiesce();
      assert.equal(publishedReasons.at(-1), 'shutdown: admitting no new flows');
      assert.deepEqual(bal.table(), [{ '10.0.1.11:8080': 0, '10.0.1.12:8080': 0 }]);
      assert.deepEqual(ctrl.effective().specs[0].backends.map((b) => b.weight), [0, 0]);
      hosts.alive.delete('10.0.1.12');
      await until('the verdict published', () => publishedReasons.length > 2);
      assert.deepEqual(bal.table(), [{ '10.0.1.11:8080': 0, '10.0.1.12:8080': 0 }]);
    } finally {
      ctrl.stop();
    }
    const n = hosts.count('10.0.1.11');
    await sleep(300);
    assert.equal(hosts.count('10.0.1.11'), n, 'no probe after stop');
  });
});
