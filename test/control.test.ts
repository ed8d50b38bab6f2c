// The controller on its own (no root): a fake Balancer that can refuse a table or take its time, and a fake
// health probe. A refused change must change nothing — services, health checkers (they keep probing, and a
// backend that dies afterwards still goes down and out of the ring) — and concurrent changes (API writes,
// reloads, health verdicts) must each land or fail with a reason, leaving what one-at-a-time would have left.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import pino from 'pino';
import { loadConfigFile } from '../src/config/load';
import { createAdminServer } from '../src/admin/server';
import { ControlError, Controller, type BackendView, type BalancerLike } from '../src/control/controller';
import type { ProbeFn } from '../src/health/checker';
import { DEFAULT_TIMEOUTS, type BackendConfig, type ServiceSpec } from '../src/config/model';
import type { FlowStatsPage } from '../src/dataplane/flow-stats';
import type { CounterSnapshot, FlowEntry, FlowFilter, FlowPage, FlowStats } from '../src/dataplane/native';
import { backendKey, type TableOptions } from '../src/dataplane/tables';
import type { PublishResult } from '../src/control/balancer';

const dir = mkdtempSync(join(tmpdir(), 'l4nat-control-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function until(what: string, cond: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`not within ${ms} ms: ${what}`);
    await sleep(20);
  }
}

/** The data plane's side of a publish: serialized like the real Balancer, optionally slow, optionally refusing. */
class FakeBalancer implements BalancerLike {
  published: ServiceSpec[][] = [];
  tableOptions: TableOptions = { hashKey: Buffer.alloc(16), maglevSize: 7, timeouts: { ...DEFAULT_TIMEOUTS }, icmpEcho: true, icmpTranslate: true };
  /** Returns why a table is refused (like the slot allocator or the addon would), or undefined to take it. */
  refuse: ((services: ServiceSpec[]) => string | undefined) | undefined;
  delayMs = 0;
  private chain: Promise<unknown> = Promise.resolve();
  private slots = new Map<string, number>();
  readonly dp = {
    counters: (): CounterSnapshot => ({ total: {}, drops: {}, perQueue: [], heartbeatsMs: [], services: new Map(), backends: new Map() }),
    flowCount: (): number => 0,
  };

  setServices(services: ServiceSpec[], t?: TableOptions): Promise<PublishResult> {
    const run = this.chain.then(async () => {
      if (this.delayMs) await sleep(this.delayMs);
      const why = this.refuse?.(services);
      if (why) throw new Error(why);
      this.published.push(services);
      if (t) this.tableOptions = t;
      for (const s of services) for (const b of s.backends) if (!this.slots.has(backendKey(s, b))) this.slots.set(backendKey(s, b), this.slots.size);
      return { changedSlots: {} };
    });
    this.chain = run.catch(() => undefined);
    return run;
  }

  get last(): ServiceSpec[] {
    return this.published[this.published.length - 1];
  }

  /** The last published table: "addr:port" -> weight, per service in order. */
  table(): Array<Record<string, number>> {
    return this.last.map((s) => Object.fromEntries(s.backends.map((b) => [`${b.addr}:${b.port}`, b.weight])));
  }

  backendSlot(key: string): number | undefined {
    return this.slots.get(key);
  }

  serviceSlot(): number | undefined {
    return 0;
  }
}

/** Backends answer their health probe while alive; every probe is counted by address. */
class FakeBackends {
  readonly alive = new Set<string>();
  readonly probes = new Map<string, number>();
  readonly probe: ProbeFn = async (_spec, t) => {
    this.probes.set(t.addr, (this.probes.get(t.addr) ?? 0) + 1);
    return this.alive.has(t.addr) ? { ok: true, ms: 1, detail: '' } : { ok: false, ms: 1, detail: 'connect ECONNREFUSED' };
  };

  count(addr: string): number {
    return this.probes.get(addr) ?? 0;
  }
}

// The admin listener is off (port 0): the controller reads no token file of the host's.
const config = (interval: number, backends: Array<string | { address: string; port: number; weight: number }>, extra = ''): string => `
admin: {port: 0}
services:
  - name: web
    vips: [10.0.0.10]
    ports: [80]
    health_check: {type: tcp, interval: ${interval}, timeout: 0.05, fall: 3, rise: 1, jitter: 0}
    backends: [${backends.map((b) => JSON.stringify(b)).join(', ')}]
${extra}`;

const WEB = '10.0.0.10:80/tcp';

interface Setup {
  bal: FakeBalancer;
  ctrl: Controller;
  hosts: FakeBackends;
  file: string;
  /** The reasons of the tables published, in order (the controller's table_published log events). */
  publishedReasons: string[];
}

async function setup(text: string, hostsUp: string[] = [], prepare?: (bal: FakeBalancer) => void): Promise<Setup> {
  const file = join(dir, `c${Math.random().toString(16).slice(2)}.yaml`);
  writeFileSync(file, text);
  const publishedReasons: string[] = [];
  const log = pino({ level: 'info' }, {
    write: (line: string): void => {
      const o = JSON.parse(line) as { event?: string; reason?: string };
      if (o.event === 'table_published') publishedReasons.push(o.reason ?? '');
    },
  });
  const bal = new FakeBalancer();
  const hosts = new FakeBackends();
  for (const h of hostsUp) hosts.alive.add(h);
  prepare?.(bal);
  const ctrl = new Controller(bal, loadConfigFile(file), log, hosts.probe);
  await ctrl.start();
  return { bal, ctrl, hosts, file, publishedReasons };
}

function stateOf(ctrl: Controller, addr: string): string {
  const s = ctrl.current[0];
  const b = s.backends.find((x) => x.addr === addr);
  assert.ok(b, `backend ${addr} is configured`);
  return ctrl.backendState(s, b).state;
}

const backend = (addr: string, weight = 1): BackendConfig => ({ addr, family: 4, port: 8080, weight });

describe('a change the data plane refuses changes nothing', () => {
  test('API write: after a refused removeBackend the backend is still probed, and when it dies it goes down and out of the ring', async () => {
    const { bal, ctrl, hosts } = await setup(config(0.1, ['10.0.1.11:8080', '10.0.1.12:8080']), ['10.0.1.11', '10.0.1.12']);
    try {
      await until('both backends probed', () => hosts.count('10.0.1.11') > 0 && hosts.count('10.0.1.12') > 0);
      const before = JSON.stringify(ctrl.current);
      const tables = bal.published.length;
      bal.refuse = () => 'table refused by the data plane (test)';
      await assert.rejects(ctrl.removeBackend(WEB, '10.0.1.12:8080/tcp'), /table refused by the data plane/);
      bal.refuse = undefined;
      assert.equal(JSON.stringify(ctrl.current), before, 'the services are as they were');
      assert.equal(bal.published.length, tables, 'no table published');

      const n = hosts.count('10.0.1.12');
      await sleep(500); // 5 intervals
      assert.ok(hosts.count('10.0.1.12') >= n + 2, `the backend's health check goes on probing (${hosts.count('10.0.1.12') - n} probes in 0.5 s at a 0.1 s interval)`);

      hosts.alive.delete('10.0.1.12');
      await until('the dead backend is down and out of the published ring', () => stateOf(ctrl, '10.0.1.12') === 'down' && bal.table()[0]['10.0.1.12:8080'] === 0);
      assert.equal(bal.table()[0]['10.0.1.11:8080'], 1);
    } finally {
      ctrl.stop();
    }
  });

  test('reload: after a reload refused for want of backend slots, the old checks run on, and a backend that then dies goes down and out of the ring', async () => {
    const { bal, ctrl, hosts, file } = await setup(config(0.1, ['10.0.1.11:8080', '10.0.1.12:8080']), ['10.0.1.11', '10.0.1.12']);
    try {
      await until('both backends probed', () => hosts.count('10.0.1.11') > 0 && hosts.count('10.0.1.12') > 0);
      // A new check interval (every checker is replaced) and a third backend the data plane has no slot for.
      writeFileSync(file, config(0.2, ['10.0.1.11:8080', '10.0.1.12:8080', '10.0.1.13:8080']));
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

  test('a reload that changes the check and is taken replaces the checkers, keeping their state', async () => {
    const { bal, ctrl, hosts, file } = await setup(config(0.1, ['10.0.1.11:8080', '10.0.1.12:8080']), ['10.0.1.12']);
    try {
      await until('the dead backend is down', () => stateOf(ctrl, '10.0.1.11') === 'down' && bal.table()[0]['10.0.1.11:8080'] === 0);
      writeFileSync(file, config(0.2, ['10.0.1.11:8080', '10.0.1.12:8080']));
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

describe('concurrent changes', () => {
  test('concurrent adds, weights and a reload each land or fail with a reason; the table is what one at a time gives', async () => {
    const initial = config(0.1, ['10.0.1.11:8080', '10.0.1.12:8080']);
    const reloaded = config(0.1, ['10.0.1.11:8080', { address: '10.0.1.12', port: 8080, weight: 2 }, '10.0.1.16:8080']);
    const everyone = ['10.0.1.11', '10.0.1.12', '10.0.1.13', '10.0.1.14', '10.0.1.15', '10.0.1.16'];
    type Op = { name: string; run: (c: Controller) => Promise<unknown> };
    const ops: Op[] = [
      { name: 'add 13', run: (c) => c.addBackend(WEB, backend('10.0.1.13')) },
      { name: 'add 14', run: (c) => c.addBackend(WEB, backend('10.0.1.14')) },
      { name: 'weight 11', run: (c) => c.setWeight(WEB, '10.0.1.11:8080/tcp', 3) },
      { name: 'add 13 again', run: (c) => c.addBackend(WEB, backend('10.0.1.13', 5)) },
      { name: 'reload', run: (c) => c.reload() },
      { name: 'add 15', run: (c) => c.addBackend(WEB, backend('10.0.1.15')) },
      { name: 'weight 12', run: (c) => c.setWeight(WEB, '10.0.1.12:8080/tcp', 4) },
    ];
    const reasonOf = (reason: string): string => {
      if (reason === 'reload') return 'reload';
      const m = /^api: (add|weight) 10\.0\.1\.(\d+):8080\/tcp/.exec(reason);
      assert.ok(m, `a table published for ${reason}`);
      return `${m[1]} ${m[2]}`;
    };

    const a = await setup(initial, everyone);
    writeFileSync(a.file, reloaded);
    // The cluster's hold and a data plane that takes its time: every change waits while the others are planned.
    a.ctrl.beforePlannedChange = () => sleep(30);
    a.bal.delayMs = 15;
    const settled = await Promise.allSettled(ops.map((op) => op.run(a.ctrl)));
    a.ctrl.stop();
    for (const [i, r] of settled.entries()) {
      if (r.status === 'rejected') assert.ok(r.reason instanceof ControlError && r.reason.message.length > 0, `${ops[i].name}: rejected with a reason (${String(r.reason)})`);
    }
    const landed = a.publishedReasons.slice(1).map(reasonOf); // [0] is the start
    const fulfilled = ops.filter((_, i) => settled[i].status === 'fulfilled').map((op) => op.name.replace(' again', ''));
    assert.deepEqual([...landed].sort(), [...fulfilled].sort(), 'every change that returned success was published, and only those');
    assert.equal(settled.filter((r) => r.status === 'rejected').length, 1, 'only the second add of one backend is refused');

    // The same changes, one at a time, in the order they landed.
    const b = await setup(initial, everyone);
    writeFileSync(b.file, reloaded);
    for (const name of landed) await ops.find((op) => op.name === name)!.run(b.ctrl);
    b.ctrl.stop();
    assert.deepEqual(a.bal.table(), b.bal.table(), 'the published table');
    assert.deepEqual(JSON.parse(JSON.stringify(a.ctrl.current)), JSON.parse(JSON.stringify(b.ctrl.current)), 'the services');
  });

  test('a change the data plane refuses does not take a concurrent change with it', async () => {
    const { bal, ctrl } = await setup(config(0.1, ['10.0.1.11:8080']), ['10.0.1.11', '10.0.1.14', '10.0.1.15']);
    try {
      ctrl.beforePlannedChange = () => sleep(20);
      bal.delayMs = 30;
      bal.refuse = (services) => (services.some((s) => s.backends.some((x) => x.addr === '10.0.1.14')) ? 'backend 10.0.1.14 refused (test)' : undefined);
      const [bad, good] = await Promise.allSettled([ctrl.addBackend(WEB, backend('10.0.1.14')), ctrl.addBackend(WEB, backend('10.0.1.15'))]);
      assert.equal(bad.status, 'rejected');
      assert.match(String((bad as PromiseRejectedResult).reason), /10\.0\.1\.14 refused/);
      assert.equal(good.status, 'fulfilled', String((good as PromiseRejectedResult).reason));
      assert.deepEqual(bal.table(), [{ '10.0.1.11:8080': 1, '10.0.1.15:8080': 1 }]);
      assert.deepEqual(ctrl.current[0].backends.map((x) => x.addr), ['10.0.1.11', '10.0.1.15']);
    } finally {
      ctrl.stop();
    }
  });

  test('a health verdict that comes during a slow write is published after it, with it', async () => {
    const { bal, ctrl, hosts } = await setup(config(0.1, ['10.0.1.11:8080', '10.0.1.12:8080']), ['10.0.1.11', '10.0.1.12', '10.0.1.13']);
    try {
      bal.delayMs = 400;
      const add = ctrl.addBackend(WEB, backend('10.0.1.13'));
      hosts.alive.delete('10.0.1.12');
      await add;
      await until('the dead backend is out of the ring, the added one in', () => bal.table()[0]['10.0.1.12:8080'] === 0 && bal.table()[0]['10.0.1.13:8080'] === 1);
      assert.equal(stateOf(ctrl, '10.0.1.12'), 'down');
    } finally {
      ctrl.stop();
    }
  });
});

describe('the flow table is read in bounded pieces', () => {
  /** A flow table of `entries` slots, paged like the addon: each call looks at no more than `perCall` of them. */
  class PagedTable {
    entries: Array<FlowEntry | undefined>;
    scans: number[] = []; // entries each listing looked at
    wholeWalks = 0;
    statsPages: number[] = []; // entries each statistics call looked at
    constructor(
      size: number,
      readonly perCall: number,
    ) {
      this.entries = new Array<FlowEntry | undefined>(size).fill(undefined);
    }

    attach(bal: FakeBalancer): void {
      const dp = bal.dp as BalancerLike['dp'];
      Object.assign(dp, {
        flowCapacity: this.entries.length,
        flowCount: (): number => {
          this.wholeWalks++;
          return this.entries.filter(Boolean).length;
        },
        flows: (f: FlowFilter): FlowEntry[] => {
          this.wholeWalks++;
          return this.entries.filter((e): e is FlowEntry => !!e && (f.backendSlot === undefined || e.backendSlot === f.backendSlot)).slice(0, f.limit ?? 1000);
        },
        flowPage: (f: FlowFilter, maxCalls = 1): FlowPage => {
          const start = f.cursor ?? 0;
          const end = Math.min(this.entries.length, start + this.perCall * maxCalls);
          this.scans.push(end - start);
          const flows = this.entries.slice(start, end).filter((e): e is FlowEntry => !!e && (f.backendSlot === undefined || e.backendSlot === f.backendSlot));
          return { flows, next: end >= this.entries.length ? null : end };
        },
        flowStats: (): FlowStats => {
          this.wholeWalks++;
          return this.statsOf(0, this.entries.length);
        },
        flowStatsPage: (cursor: number): FlowStatsPage => {
          const end = Math.min(this.entries.length, cursor + this.perCall);
          this.statsPages.push(end - cursor);
          return { ...this.statsOf(cursor, end), next: end >= this.entries.length ? null : end };
        },
        deleteFlows: async (f: FlowFilter): Promise<number> => {
          await sleep(5);
          const before = this.entries.filter(Boolean).length;
          this.entries = this.entries.map((e) => (e && e.backendSlot === f.backendSlot ? undefined : e));
          return before - this.entries.filter(Boolean).length;
        },
      });
    }

    private statsOf(start: number, end: number): FlowStats {
      const live = this.entries.slice(start, end).filter((e): e is FlowEntry => !!e);
      const backends = new Uint32Array(8);
      for (const e of live) if (e.state !== 'CLOSE') backends[e.backendSlot]++;
      return { total: live.length, closed: live.filter((e) => e.state === 'CLOSE').length, backends, services: new Uint32Array(4) };
    }
  }

  const flow = (backendSlot: number, clientPort: number, state: FlowEntry['state'] = 'ESTABLISHED'): FlowEntry => ({
    client: '192.0.2.1', clientPort, vip: '10.0.0.10', vipPort: 80, proto: 'tcp', backendSlot, serviceSlot: 0, state, idleSeconds: 0,
  });

  test('a drain counts its backend\'s flows a bounded part of the table per sample, and is done only when a whole pass found none live', async () => {
    const { bal, ctrl } = await setup(config(0.1, ['10.0.1.11:8080', '10.0.1.12:8080']), ['10.0.1.11', '10.0.1.12']);
    try {
      const table = new PagedTable(100, 10);
      table.attach(bal);
      const slot = bal.backendSlot(`${WEB}|10.0.1.11:8080/tcp`)!;
      table.entries[95] = flow(slot, 1000); // in the last page
      await ctrl.drain(WEB, '10.0.1.11:8080/tcp');
      const t0 = Date.now() + 60_000;
      for (let i = 0; i < 3; i++) ctrl.sampleDrains(t0 + i * 500);
      const view = (): NonNullable<BackendView['drain']> => ctrl.serviceView(ctrl.current[0], bal.dp.counters()).backends[0].drain!;
      assert.deepEqual(table.scans, [40, 40, 20], 'four pages per sample at most');
      assert.deepEqual([view().liveFlows, view().done], [1, false], 'the open connection in the last page keeps it draining');
      table.entries[95] = flow(slot, 1000, 'CLOSE');
      for (let i = 0; i < 2; i++) ctrl.sampleDrains(t0 + 2000 + i * 500);
      assert.equal(view().done, false, 'not done before the pass reached the end of the table');
      ctrl.sampleDrains(t0 + 3000);
      assert.deepEqual([view().liveFlows, view().done, view().doneBy], [0, true, 'no live flows left']);
      assert.ok(table.scans.every((n) => n <= 4 * table.perCall));
      assert.equal(table.wholeWalks, 0, 'no call walked the whole table');
    } finally {
      ctrl.stop();
    }
  });

  test('status, services and the flow count read per-slot statistics gathered a page at a time, at most once a second', async () => {
    const table = new PagedTable(60, 10); // more pages than a pass runs at once
    table.entries[7] = flow(0, 1000);
    table.entries[8] = flow(0, 1001, 'CLOSE');
    const { ctrl } = await setup(config(0.1, ['10.0.1.11:8080']), ['10.0.1.11'], (bal) => table.attach(bal));
    try {
      assert.deepEqual(table.statsPages, [10, 10, 10, 10, 10, 10], 'the first count, at start, is whole');
      for (let i = 0; i < 5; i++) {
        assert.equal(ctrl.flowCount(), 2);
        assert.equal(ctrl.view().dataplane.flows, 2);
        assert.equal(ctrl.serviceView(ctrl.current[0], ctrl.counters()).backends[0].activeFlows, 1, 'the closed entry is not active');
        ctrl.summary();
      }
      assert.equal(table.statsPages.length, 6, 'read from the last count');
      table.entries[50] = flow(0, 1002);
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
    const { bal, ctrl } = await setup(config(0.1, ['10.0.1.11:8080']), ['10.0.1.11']);
    try {
      const table = new PagedTable(40, 10);
      table.attach(bal);
      const slot = bal.backendSlot(`${WEB}|10.0.1.11:8080/tcp`)!;
      table.entries[1] = flow(slot, 1000);
      table.entries[30] = flow(slot, 1001);
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
