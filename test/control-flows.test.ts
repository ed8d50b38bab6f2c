// Flow queries (src/control/flows.ts): pages of flow-table entries named by service and backend, filtered by
// service, backend, client and state; deletes by backend slot and/or client; on_down: reset; and the per-slot
// statistics the views read, counted a page at a time and at most once a second.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import pino from 'pino';
import { createAdminServer } from '../src/admin/server';
import { ControlError } from '../src/control/controller';
import { flowPage, FlowQueries } from '../src/control/flows';
import type { FlowEntry, FlowFilter } from '../src/dataplane/native';
import type { ServiceConfig } from '../src/config/model';
import { checkedConfig, configDir, controllerWith, flowEntry, PagedTable, runningState, servicesOf, sleep, until, WEB, webKey } from './rigs/control-fakes';

const dir = configDir('l4nat-control-flows-');

// Backend 10.0.1.11:8080/tcp serves both services. The config refuses that (replies would be ambiguous), but
// the queries do not rely on it: a backend id in several services names each one's slot.
const WEB_YAML = `
services:
  - name: web
    vips: [10.0.0.10]
    ports: [80]
    on_down: reset
    backends: ["10.0.1.11:8080", {address: 10.0.1.12, port: 8080, name: two}]
`;
const API_YAML = `
services:
  - name: api
    vips: [10.0.0.11]
    ports: [80]
    backends: ["10.0.1.11:8080", "10.0.1.13:8080"]
`;
const both = (): ServiceConfig[] => [...servicesOf(WEB_YAML), ...servicesOf(API_YAML)];
const API = '10.0.0.11:80/tcp';
const SHARED = '10.0.1.11:8080/tcp';

const is = (status: number, re: RegExp) => (e: unknown): boolean => e instanceof ControlError && e.status === status && re.test(e.message);

/** Flow queries over a data plane that lists (and deletes) `entries` as the addon filters them. */
async function queries(entries: FlowEntry[] = []) {
  const r = await runningState(both());
  const deleted: FlowFilter[] = [];
  const matches = (f: FlowFilter) => (e: FlowEntry): boolean =>
    (f.backendSlot === undefined || e.backendSlot === f.backendSlot) &&
    (f.serviceSlot === undefined || e.serviceSlot === f.serviceSlot) &&
    (f.client === undefined || e.client === f.client) &&
    (!f.states?.length || f.states.includes(e.state));
  Object.assign(r.bal.dp, {
    flows: (f: FlowFilter): FlowEntry[] => entries.filter(matches(f)).slice(0, f.limit ?? 1000),
    deleteFlows: (f: FlowFilter): number => {
      deleted.push(f);
      return entries.filter(matches(f)).length;
    },
  });
  const slot = (sid: string, bid: string): number => r.bal.backendSlot(`${sid}|${bid}`)!;
  return { ...r, fq: new FlowQueries(r.state), deleted, slot };
}

const at = (backendSlot: number, serviceSlot: number, clientPort: number, client = '192.0.2.1'): FlowEntry => ({ ...flowEntry(backendSlot, clientPort), serviceSlot, client });

describe('listing flows', () => {
  test('entries are named by service and backend (and the backend\'s name); an unknown slot by nulls', async () => {
    const entries: FlowEntry[] = [];
    const { fq, slot } = await queries(entries);
    entries.push(at(slot(WEB, '10.0.1.12:8080/tcp'), 0, 1), at(slot(API, SHARED), 1, 2), at(99, 0, 3));
    const { flows, truncated, next } = fq.listFlows({});
    assert.deepEqual(flows.map((f) => [f.service, f.backend, f.backendName]), [[WEB, '10.0.1.12:8080/tcp', 'two'], [API, SHARED, null], [null, null, null]]);
    assert.deepEqual([truncated, next], [false, null]);
  });

  test('a service filters by its slot; a backend within a service by the backend\'s slot; state and client pass through', async () => {
    const entries: FlowEntry[] = [];
    const { fq, slot, bal } = await queries(entries);
    entries.push(at(slot(WEB, SHARED), 0, 1), at(slot(API, SHARED), 1, 2), at(slot(API, '10.0.1.13:8080/tcp'), 1, 3, '192.0.2.9'));
    assert.equal(bal.serviceSlot(API), 1);
    assert.deepEqual(fq.listFlows({ service: API }).flows.map((f) => f.clientPort), [2, 3]);
    assert.deepEqual(fq.listFlows({ service: API, backend: SHARED }).flows.map((f) => f.clientPort), [2]);
    assert.deepEqual(fq.listFlows({ service: API, client: '192.0.2.9' }).flows.map((f) => f.clientPort), [3]);
    assert.deepEqual(fq.listFlows({ state: ['CLOSE'] }).flows, []);
  });

  test('a backend id several services share lists each one\'s flows, truncated at the limit; a cursor then needs the service', async () => {
    const entries: FlowEntry[] = [];
    const { fq, slot } = await queries(entries);
    entries.push(at(slot(WEB, SHARED), 0, 1), at(slot(WEB, SHARED), 0, 2), at(slot(API, SHARED), 1, 3), at(slot(WEB, '10.0.1.12:8080/tcp'), 0, 4));
    let r = fq.listFlows({ backend: SHARED });
    assert.deepEqual([r.flows.map((f) => f.clientPort), r.truncated, r.next], [[1, 2, 3], false, null]);
    r = fq.listFlows({ backend: SHARED, limit: 2 });
    assert.deepEqual([r.flows.map((f) => f.clientPort), r.truncated], [[1, 2], true]);
    assert.throws(() => fq.listFlows({ backend: SHARED, cursor: 0 }), is(400, /^backend 10\.0\.1\.11:8080\/tcp is in 2 services: give service too to page through its flows$/));
    assert.deepEqual(fq.listFlows({ service: WEB, backend: SHARED, cursor: 0 }).flows.map((f) => f.clientPort), [1, 2]);
  });

  test('a shared backend id: a page that did not reach the end of the table makes the listing truncated (no cursor to go on)', async () => {
    const { fq, bal } = await queries();
    bal.dp.flowPage = (f: FlowFilter) => ({ flows: [flowEntry(f.backendSlot!, 1)], next: 128 });
    const r = fq.listFlows({ backend: SHARED });
    assert.deepEqual([r.flows.length, r.truncated, r.next], [2, true, null]);
  });

  test('pages: limit, truncated and next come from the data plane\'s page', async () => {
    const { fq, bal } = await queries();
    const asked: FlowFilter[] = [];
    bal.dp.flowPage = (f: FlowFilter) => {
      asked.push(f);
      return { flows: [flowEntry(0, 1), flowEntry(0, 2), flowEntry(0, 3)].slice(0, f.limit), next: 4096 };
    };
    const r = fq.listFlows({ limit: 2, cursor: 1024 });
    assert.deepEqual([r.flows.length, r.truncated, r.next], [2, true, 4096]);
    assert.deepEqual(asked, [{ limit: 3, cursor: 1024 }], 'one more than the limit, to know there is more');
  });

  test('unknown names are 404s naming them; a cursor past the table a 400 naming the range; no listing a 501', async () => {
    const { fq, bal } = await queries();
    assert.throws(() => fq.listFlows({ service: '10.9.9.9:1/tcp' }), is(404, /^no service 10\.9\.9\.9:1\/tcp$/));
    assert.throws(() => fq.listFlows({ backend: '10.9.9.9:1/tcp' }), is(404, /^no backend 10\.9\.9\.9:1\/tcp in any service$/));
    assert.throws(() => fq.listFlows({ service: WEB, backend: '10.0.1.13:8080/tcp' }), is(404, /^no backend 10\.0\.1\.13:8080\/tcp in service 10\.0\.0\.10:80\/tcp$/));
    bal.dp.flowCapacity = 64;
    assert.throws(() => fq.listFlows({ cursor: 65 }), is(400, /^cursor must be the next of a previous page, from 0 to the flow table's capacity 64, got 65$/));
    assert.doesNotThrow(() => fq.listFlows({ cursor: 64 }));
    const serviceSlot = bal.serviceSlot.bind(bal);
    bal.serviceSlot = (id) => (id === API ? undefined : serviceSlot(id));
    assert.throws(() => fq.listFlows({ service: API }), is(404, /^service 10\.0\.0\.11:80\/tcp is not in the data plane table$/));
    bal.dp.flows = undefined;
    assert.throws(() => fq.listFlows({}), is(501, /cannot list flows/));
  });

  test('a data plane that cannot page lists what matches in one go; one that cannot list is a 501', async () => {
    const { bal } = await queries([flowEntry(0, 1)]);
    assert.deepEqual(flowPage(bal.dp, { cursor: 0 }), { flows: [flowEntry(0, 1)], next: null });
    bal.dp.flows = undefined;
    assert.throws(() => flowPage(bal.dp, {}), is(501, /cannot list flows/));
  });
});

describe('deleting flows', () => {
  test('needs a filter; deletes per backend slot (every slot of a shared backend id), or by client alone; logged', async () => {
    const { fq, deleted, slot, of } = await queries([]);
    await assert.rejects(fq.deleteFlows({}), is(400, /^give service, backend and\/or client: deleting every flow is refused$/));
    await fq.deleteFlows({ backend: SHARED, client: '192.0.2.1' });
    assert.deepEqual(deleted, [{ backendSlot: slot(WEB, SHARED), client: '192.0.2.1' }, { backendSlot: slot(API, SHARED), client: '192.0.2.1' }]);
    deleted.length = 0;
    await fq.deleteFlows({ service: API });
    assert.deepEqual(deleted, [{ backendSlot: slot(API, SHARED) }, { backendSlot: slot(API, '10.0.1.13:8080/tcp') }]);
    deleted.length = 0;
    await fq.deleteFlows({ client: '192.0.2.7' });
    assert.deepEqual(deleted, [{ client: '192.0.2.7' }]);
    assert.equal(of('flows_deleted').length, 3);
    await assert.rejects(fq.deleteFlows({ backend: '10.9.9.9:1/tcp' }), is(404, /no backend 10\.9\.9\.9:1\/tcp in any service/));
  });

  test('a data plane that cannot delete is a 501', async () => {
    const { fq, bal } = await queries();
    bal.dp.deleteFlows = undefined;
    await assert.rejects(fq.deleteFlows({ client: '192.0.2.7' }), is(501, /cannot delete flows/));
  });

  test('on_down: reset deletes the backend\'s flows by its slot; keep does nothing; a failed delete is logged, not thrown', async () => {
    const { fq, deleted, state, slot, bal, of, events } = await queries([]);
    const [web, api] = state.services;
    await fq.resetIfWanted(web, webKey('10.0.1.12:8080'));
    assert.deepEqual(deleted, [{ backendSlot: slot(WEB, '10.0.1.12:8080/tcp') }]);
    assert.match(of('backend_flows_reset')[0].msg, /^backend 10\.0\.1\.12:8080\/tcp: 0 flow\(s\) removed \(on_down: reset\)/);
    await fq.resetIfWanted(api, `${API}|${SHARED}`);
    assert.equal(deleted.length, 1, 'on_down keep');
    await fq.resetIfWanted(web, webKey('10.0.1.99:8080'));
    assert.equal(deleted.length, 1, 'no slot: nothing to delete');
    bal.dp.deleteFlows = () => {
      throw new Error('closed');
    };
    await fq.resetIfWanted(web, webKey('10.0.1.12:8080'));
    assert.ok(events.some((e) => e.level === 50 && e.msg === 'removing the flows of a down backend failed'));
  });
});

describe('flow statistics', () => {
  test('without per-slot statistics the flow count is the data plane\'s own', async () => {
    const { state, bal } = await runningState(WEB_YAML);
    bal.dp.flowCount = () => 42;
    const fq = new FlowQueries(state);
    assert.equal(fq.flowStats(), undefined);
    assert.equal(fq.flowCount(), 42);
    assert.equal(await fq.countFlows(), 42);
  });

  test('a data plane with only whole statistics is read whole, at most once a second', async () => {
    const { state, bal } = await runningState(WEB_YAML);
    let walks = 0;
    bal.dp.flowStats = () => ({ total: ++walks, closed: 0, backends: new Uint32Array(4), services: new Uint32Array(2) });
    const fq = new FlowQueries(state);
    assert.deepEqual([fq.flowCount(), fq.flowCount(), walks], [1, 1, 1]);
  });
});

describe('the flow table is read in bounded pieces (controller)', () => {
  test('status, services and the flow count read per-slot statistics gathered a page at a time, at most once a second', async () => {
    const table = new PagedTable(60, 10); // more pages than a pass runs at once
    table.entries[7] = flowEntry(0, 1000);
    table.entries[8] = flowEntry(0, 1001, 'CLOSE');
    const { ctrl } = await controllerWith(dir, checkedConfig(0.1, ['10.0.1.11:8080']), ['10.0.1.11'], (bal) => table.attach(bal));
    try {
      assert.deepEqual(table.statsPages, [10, 10, 10, 10, 10, 10], 'the first count, at start, is whole');
      for (let i = 0; i < 5; i++) {
        assert.equal(ctrl.flowCount(), 2);
        assert.equal(ctrl.view().dataplane.flows, 2);
        assert.equal(ctrl.serviceView(ctrl.current[0], ctrl.counters()).backends[0].activeFlows, 1, 'the closed entry is not active');
        ctrl.summary();
      }
      assert.equal(table.statsPages.length, 6, 'read from the last count');
      table.entries[50] = flowEntry(0, 1002);
      await sleep(1100);
      assert.equal(ctrl.flowCount(), 2, 'a new count has started; until it is whole, the last one stands');
      assert.equal(table.statsPages.length, 7, 'one page now, the rest later');
      await until('the new count is whole', () => ctrl.flowCount() === 3);
      assert.equal(table.statsPages.length, 12);
      table.entries[50] = undefined;
      assert.equal(await ctrl.countFlows(), 2, 'a count asked for now (the shutdown grace) sees the entry gone');
      assert.equal(table.statsPages.length, 18);
      assert.ok(table.statsPages.every((n) => n <= table.perCall));
      assert.equal(table.wholeWalks, 0, 'no call walked the whole table');
    } finally {
      ctrl.stop();
    }
  });

  test('the API: a cursor past the end of the table is a 400 naming the range; a delete waits for the paged walk', async () => {
    const { bal, ctrl } = await controllerWith(dir, checkedConfig(0.1, ['10.0.1.11:8080']), ['10.0.1.11']);
    try {
      const table = new PagedTable(40, 10);
      table.attach(bal);
      const slot = bal.backendSlot(`${WEB}|10.0.1.11:8080/tcp`)!;
      table.entries[1] = flowEntry(slot, 1000);
      table.entries[30] = flowEntry(slot, 1001);
      // Loopback without a token, as explicitly opted into (admin.insecure_no_auth): only the cursor is under test.
      const app = await createAdminServer({ ctrl, admin: { ...ctrl.opts.admin, insecureNoAuth: true }, log: pino({ level: 'silent' }) });
      let r = await app.inject({ method: 'GET', url: '/v1/flows?cursor=99999999999' });
      assert.equal(r.statusCode, 400, r.body);
      assert.match(r.json().error, /cursor must be the next of a previous page, from 0 to the flow table's capacity 40, got 99999999999/);
      r = await app.inject({ method: 'GET', url: '/v1/flows?cursor=40' });
      assert.equal(r.statusCode, 200, r.body);
      assert.deepEqual([r.json().flows, r.json().next], [[], null]);
      r = await app.inject({ method: 'DELETE', url: `/v1/flows?backend=${encodeURIComponent('10.0.1.11:8080/tcp')}` });
      assert.equal(r.statusCode, 200, r.body);
      assert.deepEqual(r.json(), { deleted: 2 });
      await app.close();
    } finally {
      ctrl.stop();
    }
  });
});
