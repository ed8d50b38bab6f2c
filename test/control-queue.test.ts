// The change queue and plan-then-commit (src/control/queue.ts, plan.ts): one change at a time; a plan is built
// beside the running state and made current only once the data plane took its table, so a refused change
// changes nothing (services, run-time state, health checkers, weights); concurrent changes (API writes, reloads,
// health verdicts) each land or fail with a reason, leaving what one-at-a-time would have left.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import { ControlError, type Controller } from '../src/control/controller';
import { applyPlan, planRuntime, planServices } from '../src/control/plan';
import { cloneServices, type BackendRuntime } from '../src/control/state';
import type { HealthChecker } from '../src/health/checker';
import { backend, checkedConfig, configDir, controllerWith, runningState, sleep, stateOf, until, WEB, webKey } from './rigs/control-fakes';

const dir = configDir('l4nat-control-queue-');

const PASSIVE = `
services:
  - name: web
    vips: [10.0.0.10]
    ports: [80]
    on_all_down: drop
    passive_check: {window: 5, max_unanswered: 3, max_resets: 0, hold: 20}
    backends: ["10.0.1.11:8080", "10.0.1.12:8080"]
`;
const B11 = webKey('10.0.1.11:8080');
const B12 = webKey('10.0.1.12:8080');

/** A stand-in for a running health checker: only whether it was stopped matters here. */
const fakeChecker = (): { checker: HealthChecker; stops: () => number } => {
  let stops = 0;
  return { checker: { state: 'up', stop: () => void stops++ } as unknown as HealthChecker, stops: () => stops };
};

describe('plan, then commit', () => {
  test('a plan leaves the running state alone; it shares the running drain and passive state objects', async () => {
    const { state } = await runningState(PASSIVE);
    const rt = state.runtime.get(B11)!;
    rt.drain = { since: 1, lastPackets: 0, lastPacketAt: 1 };
    const passive = rt.passive;
    const next = cloneServices(state.services);
    next[0].backends.pop();
    next[0].passive = null;
    const p = planRuntime(state, next, 'api');
    assert.deepEqual([...p.runtime.keys()], [B11]);
    assert.equal(p.runtime.get(B11)!.drain, rt.drain, 'the same drain object: the sampler goes on updating it');
    assert.equal(p.runtime.get(B11)!.passive, undefined, 'no passive check in the plan');
    assert.equal(rt.passive, passive, 'the running one keeps its own');
    assert.deepEqual([...state.runtime.keys()], [B11, B12], 'the running state is untouched');
    assert.equal(state.services[0].backends.length, 2);
  });

  test('a config plan makes every backend in the file a config backend again; new backends take the origin', async () => {
    const { state } = await runningState(PASSIVE);
    state.runtime.get(B11)!.source = 'api';
    const next = cloneServices(state.services);
    next[0].backends.push({ addr: '10.0.1.13', family: 4, port: 8080, weight: 1 });
    assert.deepEqual([...planRuntime(state, next, 'api').runtime.values()].map((r) => r.source), ['api', 'config', 'api']);
    assert.deepEqual([...planRuntime(state, next, 'config').runtime.values()].map((r) => r.source), ['config', 'config', 'config']);
  });

  test('a plan drops the checker of a backend whose service no longer has a check, and keeps it otherwise', async () => {
    const { state } = await runningState(PASSIVE);
    const { checker, stops } = fakeChecker();
    const rt: BackendRuntime = state.runtime.get(B11)!;
    rt.checker = checker;
    rt.checkerIdent = 'x';
    assert.equal(planRuntime(state, state.services, 'api').runtime.get(B11)!.checker, undefined, 'the service has no health_check');
    const next = cloneServices(state.services);
    next[0].health = { type: 'tcp', interval: 1, timeout: 0.5, fall: 3, rise: 2, jitter: 0 } as (typeof next)[0]['health'];
    assert.equal(planRuntime(state, next, 'api').runtime.get(B11)!.checker, checker, 'kept until the plan is current (the replacement inherits it)');
    assert.equal(stops(), 0);
  });

  test('applying a plan stops the checkers of backends gone, and asks for a checker for every backend left', async () => {
    const { state } = await runningState(PASSIVE);
    const gone = fakeChecker();
    state.runtime.get(B12)!.checker = gone.checker;
    const next = cloneServices(state.services);
    next[0].backends.pop();
    const synced: string[] = [];
    applyPlan(state, planRuntime(state, next, 'api'), (rt) => synced.push(rt.key));
    assert.equal(gone.stops(), 1);
    assert.deepEqual([...state.runtime.keys()], [B11]);
    assert.deepEqual(synced, [B11]);
    assert.equal(state.services, next);
  });

  test('an invalid service set is a 400 naming the problem, and no plan', async () => {
    const { state } = await runningState(PASSIVE);
    const next = cloneServices(state.services);
    next[0].backends.push({ addr: '10.0.0.10', family: 4, port: 8080, weight: 1 });
    assert.throws(
      () => planServices(state, next, 'api'),
      (e: unknown) => e instanceof ControlError && e.status === 400 && /backend 10\.0\.0\.10 of service 10\.0\.0\.10:80\/tcp is the VIP of service 10\.0\.0\.10:80\/tcp/.test(e.message),
    );
  });
});

describe('the queue', () => {
  test('a table the data plane refuses changes nothing: services, run-time state, weights, all-down; no hook runs', async () => {
    let hooks = 0;
    const { bal, state, queue } = await runningState(PASSIVE, { applied: () => void hooks++, published: () => void hooks++, syncChecker: () => void hooks++ });
    assert.equal(hooks, 4, 'the start: a checker asked for per backend, applied, published');
    hooks = 0;
    const services = state.services;
    const weights = state.lastWeights;
    const next = cloneServices(services);
    next[0].backends = [];
    bal.refuse = () => 'table refused (test)';
    await assert.rejects(queue.serialized(() => queue.publish(planRuntime(state, next, 'api'), 'test')), /table refused/);
    assert.equal(state.services, services);
    assert.deepEqual([...state.runtime.keys()], [B11, B12]);
    assert.equal(state.lastWeights, weights);
    assert.equal(hooks, 0);
  });

  test('changes run one at a time in order; a failed one does not stop the next', async () => {
    const { queue } = await runningState(PASSIVE);
    const ran: string[] = [];
    const slow = queue.serialized(async () => {
      await sleep(30);
      ran.push('slow');
    });
    const failing = queue.serialized(async () => {
      ran.push('failing');
      throw new Error('no');
    });
    const after = queue.serialized(async () => void ran.push('after'));
    await Promise.allSettled([slow, failing, after]);
    assert.deepEqual(ran, ['slow', 'failing', 'after']);
    await assert.rejects(failing, /no/);
  });

  test('a planned change is checked before the hold and built again after it, on what landed meanwhile; "applied" runs before the next is built', async () => {
    const { bal, state, queue } = await runningState(PASSIVE);
    const builds: string[] = [];
    const order: string[] = [];
    queue.beforePlannedChange = async (reason) => {
      order.push(`hold ${reason}`);
      await sleep(20);
    };
    const add = (addr: string) =>
      queue.planned(`add ${addr}`, () => {
        builds.push(`${addr} on ${state.services[0].backends.length}`);
        const next = cloneServices(state.services);
        next[0].backends.push({ addr, family: 4, port: 8080, weight: 1 });
        return { plan: planServices(state, next, 'api'), applied: () => void order.push(`applied ${addr}`) };
      });
    await Promise.all([add('10.0.1.13'), add('10.0.1.14')]);
    assert.deepEqual(builds, ['10.0.1.13 on 2', '10.0.1.14 on 2', '10.0.1.13 on 2', '10.0.1.14 on 3'], 'each built once at once, then in the queue on the state before it');
    assert.deepEqual(order, ['hold add 10.0.1.13', 'hold add 10.0.1.14', 'applied 10.0.1.13', 'applied 10.0.1.14']);
    assert.deepEqual(bal.table(), [{ '10.0.1.11:8080': 1, '10.0.1.12:8080': 1, '10.0.1.13:8080': 1, '10.0.1.14:8080': 1 }]);
  });

  test('a change with nothing to do is neither held nor published', async () => {
    const { bal, queue } = await runningState(PASSIVE);
    let held = 0;
    queue.beforePlannedChange = async () => void held++;
    const n = bal.published.length;
    assert.equal(await queue.planned('nothing', () => ({ plan: undefined })), undefined);
    assert.deepEqual([held, bal.published.length], [0, n]);
  });

  test('a bad request fails before the hold and publishes nothing', async () => {
    const { bal, queue } = await runningState(PASSIVE);
    let held = 0;
    queue.beforePlannedChange = async () => void held++;
    const n = bal.published.length;
    await assert.rejects(queue.planned('bad', () => { throw new ControlError(404, 'no such thing'); }), /no such thing/);
    assert.deepEqual([held, bal.published.length], [0, n]);
  });

  test('republishes asked for while one waits in the queue ride along with it: one table, every reason', async () => {
    const { bal, queue, of } = await runningState(PASSIVE);
    bal.delayMs = 30;
    const n = bal.published.length;
    const blocker = queue.serialized(() => sleep(30));
    const a = queue.republish('health: a down');
    const b = queue.republish('health: b down');
    assert.equal(a, b, 'the same publish');
    await Promise.all([blocker, a]);
    assert.equal(bal.published.length, n + 1);
    assert.deepEqual(of('table_published').map((e) => e.reason), ['start', 'health: a down; health: b down']);
    await queue.republish('health: c up');
    assert.equal(bal.published.length, n + 2, 'once it ran, the next request is a publish of its own');
  });

  test('the weights published are kept; a service losing its last healthy backend is logged once, and again when it recovers', async () => {
    const { bal, state, queue, of } = await runningState(PASSIVE);
    assert.deepEqual([...state.lastWeights.get(WEB)!], [['10.0.1.11:8080/tcp', 1], ['10.0.1.12:8080/tcp', 1]]);
    state.runtime.get(B11)!.passive!.heldUntil = Date.now() + 60_000;
    await queue.republish('b11 held');
    assert.deepEqual(bal.table(), [{ '10.0.1.11:8080': 0, '10.0.1.12:8080': 1 }]);
    assert.deepEqual([...state.allDown], []);
    state.runtime.get(B12)!.passive!.heldUntil = Date.now() + 60_000;
    await queue.republish('b12 held');
    await queue.republish('again');
    assert.deepEqual([...state.allDown], [WEB]);
    assert.equal(of('service_all_down').length, 1, 'logged when it happens, not with every table');
    assert.match(of('service_all_down')[0].msg, /NO HEALTHY BACKEND — new connections are dropped \(on_all_down: drop\)/);
    assert.equal(of('service_all_down')[0].level, 50);
    state.runtime.get(B12)!.passive!.heldUntil = undefined;
    await queue.republish('b12 back');
    assert.deepEqual([...state.allDown], []);
    assert.deepEqual(of('service_recovered').map((e) => e.service), [WEB]);
  });
});

describe('a change the data plane refuses changes nothing (controller)', () => {
  test('API write: after a refused removeBackend the backend is still probed, and when it dies it goes down and out of the ring', async () => {
    const { bal, ctrl, hosts } = await controllerWith(dir, checkedConfig(0.1, ['10.0.1.11:8080', '10.0.1.12:8080']), ['10.0.1.11', '10.0.1.12']);
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
});

describe('concurrent changes (controller)', () => {
  test('concurrent adds, weights and a reload each land or fail with a reason; the table is what one at a time gives', async () => {
    const initial = checkedConfig(0.1, ['10.0.1.11:8080', '10.0.1.12:8080']);
    const reloaded = checkedConfig(0.1, ['10.0.1.11:8080', { address: '10.0.1.12', port: 8080, weight: 2 }, '10.0.1.16:8080']);
    const everyone = ['10.0.1.11', '10.0.1.12', '10.0.1.13', '10.0.1.14', '10.0.1.15', '10.0.1.16'];
    type Op = { name: string; run: (c: Controller) => Promise<unknown> };
    const ops: Op[] = [
      { name: 'add 13', run: (c) => c.addBackend(WEB, backend('10.0.1.13')) },
      { name: 'add 14', run: (c) => c.addBackend(WEB, backend('10.0.1.14')) },
      { name: 'weight 11', run: (c) => c.updateBackend(WEB, '10.0.1.11:8080/tcp', { weight: 3 }) },
      { name: 'add 13 again', run: (c) => c.addBackend(WEB, backend('10.0.1.13', 5)) },
      { name: 'reload', run: (c) => c.reload() },
      { name: 'add 15', run: (c) => c.addBackend(WEB, backend('10.0.1.15')) },
      { name: 'weight 12', run: (c) => c.updateBackend(WEB, '10.0.1.12:8080/tcp', { weight: 4 }) },
    ];
    const reasonOf = (reason: string): string => {
      if (reason === 'reload') return 'reload';
      const m = /^api: (add|weight) 10\.0\.1\.(\d+):8080\/tcp/.exec(reason);
      assert.ok(m, `a table published for ${reason}`);
      return `${m[1]} ${m[2]}`;
    };

    const a = await controllerWith(dir, initial, everyone);
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
    const b = await controllerWith(dir, initial, everyone);
    writeFileSync(b.file, reloaded);
    for (const name of landed) await ops.find((op) => op.name === name)!.run(b.ctrl);
    b.ctrl.stop();
    assert.deepEqual(a.bal.table(), b.bal.table(), 'the published table');
    assert.deepEqual(JSON.parse(JSON.stringify(a.ctrl.current)), JSON.parse(JSON.stringify(b.ctrl.current)), 'the services');
  });

  test('a change the data plane refuses does not take a concurrent change with it', async () => {
    const { bal, ctrl } = await controllerWith(dir, checkedConfig(0.1, ['10.0.1.11:8080']), ['10.0.1.11', '10.0.1.14', '10.0.1.15']);
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
    const { bal, ctrl, hosts } = await controllerWith(dir, checkedConfig(0.1, ['10.0.1.11:8080', '10.0.1.12:8080']), ['10.0.1.11', '10.0.1.12', '10.0.1.13']);
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
