// API operations (src/control/operations.ts): add, remove, reweigh, limit (max_flows), drain and undrain a backend; a request
// that is wrong gets the status and a reason naming it and publishes nothing; drain and undrain are idempotent.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ControlError } from '../src/control/controller';
import { Operations } from '../src/control/operations';
import { backend, runningState, TWO_BACKENDS, WEB, webKey } from './rigs/control-fakes';

async function setupOps() {
  const r = await runningState(TWO_BACKENDS);
  let held = 0;
  r.queue.beforePlannedChange = async () => void held++;
  return { ...r, ops: new Operations(r.state, r.queue), held: () => held };
}

const is = (status: number, re: RegExp) => (e: unknown): boolean => e instanceof ControlError && e.status === status && re.test(e.message);

describe('operations', () => {
  test('add: published, an API backend, logged; the table reason names it', async () => {
    const { ops, bal, state, of } = await setupOps();
    assert.deepEqual(await ops.addBackend(WEB, { ...backend('10.0.1.13', 4), name: 'three' }), { service: WEB, backend: '10.0.1.13:8080/tcp' });
    assert.deepEqual(bal.table(), [{ '10.0.1.11:8080': 1, '10.0.1.12:8080': 1, '10.0.1.13:8080': 4 }]);
    assert.equal(state.runtime.get(webKey('10.0.1.13:8080'))!.source, 'api');
    assert.deepEqual(of('backend_added').map((e) => [e.backend, e.weight, e.name]), [['10.0.1.13:8080/tcp', 4, 'three']]);
    assert.equal(of('table_published').at(-1)!.reason, 'api: add 10.0.1.13:8080/tcp to 10.0.0.10:80/tcp');
  });

  test('wrong requests: the status and a reason naming what is wrong; nothing held, nothing published', async () => {
    const { ops, bal, held, of } = await setupOps();
    const n = bal.published.length;
    await assert.rejects(ops.addBackend('10.9.9.9:80/tcp', backend('10.0.1.13')), is(404, /^no service 10\.9\.9\.9:80\/tcp$/));
    await assert.rejects(ops.addBackend(WEB, { addr: 'fd00::1', family: 6, port: 8080, weight: 1 }), is(400, /^backend fd00::1 is IPv6 but service 10\.0\.0\.10:80\/tcp is IPv4$/));
    await assert.rejects(ops.addBackend(WEB, backend('10.0.1.11', 9)), is(409, /^backend 10\.0\.1\.11:8080\/tcp already serves 10\.0\.0\.10:80\/tcp$/));
    await assert.rejects(ops.addBackend(WEB, backend('10.0.0.10')), is(400, /is the VIP of service 10\.0\.0\.10:80\/tcp/));
    await assert.rejects(ops.removeBackend(WEB, '10.0.1.99:8080/tcp'), is(404, /^no backend 10\.0\.1\.99:8080\/tcp in service 10\.0\.0\.10:80\/tcp$/));
    await assert.rejects(ops.update(WEB, '10.0.1.99:8080/tcp', { weight: 2 }), is(404, /no backend 10\.0\.1\.99:8080\/tcp/));
    await assert.rejects(ops.drain(WEB, '10.0.1.99:8080/tcp'), is(404, /no backend 10\.0\.1\.99:8080\/tcp/));
    assert.deepEqual([held(), bal.published.length], [0, n]);
    assert.equal(of('backend_added').length, 0);
  });

  test('a write the data plane refuses is not logged as done', async () => {
    const { ops, bal, state, of } = await setupOps();
    bal.refuse = () => 'refused (test)';
    await assert.rejects(ops.removeBackend(WEB, '10.0.1.12:8080/tcp'), /refused \(test\)/);
    assert.equal(state.services[0].backends.length, 2);
    assert.equal(of('backend_removed').length, 0);
  });

  test('remove and weight: published; the weight\'s table reason and log say from what to what', async () => {
    const { ops, bal, of } = await setupOps();
    await ops.update(WEB, '10.0.1.11:8080/tcp', { weight: 3 });
    assert.equal(of('table_published').at(-1)!.reason, 'api: weight 10.0.1.11:8080/tcp 1->3');
    assert.deepEqual(of('backend_weight').map((e) => [e.from, e.to]), [[1, 3]]);
    await ops.removeBackend(WEB, '10.0.1.12:8080/tcp');
    assert.deepEqual(bal.table(), [{ '10.0.1.11:8080': 3 }]);
    assert.equal(of('backend_removed').length, 1);
  });

  test('max_flows: set, changed and lifted at run time (published, logged from what to what); with a weight as one change; bad ones refused, nothing published', async () => {
    const { ops, bal, of, held } = await setupOps();
    const limit = (): Array<number | undefined> => bal.last[0].backends.map((b) => b.maxFlows);
    await ops.update(WEB, '10.0.1.11:8080/tcp', { maxFlows: 100 });
    assert.deepEqual(limit(), [100, undefined]);
    assert.equal(of('table_published').at(-1)!.reason, 'api: max_flows 10.0.1.11:8080/tcp none->100');
    await ops.update(WEB, '10.0.1.11:8080/tcp', { weight: 2, maxFlows: 50 });
    assert.deepEqual([limit(), bal.table()], [[50, undefined], [{ '10.0.1.11:8080': 2, '10.0.1.12:8080': 1 }]]);
    assert.equal(of('table_published').at(-1)!.reason, 'api: weight 10.0.1.11:8080/tcp 1->2, max_flows 10.0.1.11:8080/tcp 100->50');
    await ops.update(WEB, '10.0.1.11:8080/tcp', { maxFlows: null });
    assert.deepEqual(limit(), [undefined, undefined]);
    assert.deepEqual(of('backend_max_flows').map((e) => [e.from, e.to]), [[null, 100], [100, 50], [50, null]]);
    const n = [bal.published.length, held()];
    await assert.rejects(ops.update(WEB, '10.0.1.11:8080/tcp', { maxFlows: 0 }), is(400, /^max_flows: got 0, expected a whole number of flows from 1 to 268435456, or null for no limit$/));
    await assert.rejects(ops.update(WEB, '10.0.1.11:8080/tcp', { maxFlows: 2.5 }), is(400, /max_flows: got 2\.5/));
    await assert.rejects(ops.update(WEB, '10.0.1.11:8080/tcp', {}), is(400, /give a weight, a max_flows, or both/));
    await assert.rejects(ops.update(WEB, '10.0.1.99:8080/tcp', { maxFlows: 5 }), is(404, /no backend 10\.0\.1\.99:8080\/tcp/));
    assert.deepEqual([bal.published.length, held()], n, 'nothing published or held for a refused change');
  });

  test('drain and undrain: out of the ring and back; asking again does nothing (no hold, no table, no log)', async () => {
    const { ops, bal, held, of } = await setupOps();
    await ops.drain(WEB, '10.0.1.11:8080/tcp');
    assert.deepEqual(bal.table(), [{ '10.0.1.11:8080': 0, '10.0.1.12:8080': 1 }]);
    const n = bal.published.length;
    await ops.drain(WEB, '10.0.1.11:8080/tcp');
    assert.deepEqual([bal.published.length, held(), of('backend_draining').length], [n, 1, 1]);
    await ops.undrain(WEB, '10.0.1.11:8080/tcp');
    assert.deepEqual(bal.table(), [{ '10.0.1.11:8080': 1, '10.0.1.12:8080': 1 }]);
    await ops.undrain(WEB, '10.0.1.11:8080/tcp');
    assert.deepEqual([bal.published.length, held(), of('backend_undrained').length], [n + 1, 2, 1]);
  });
});
