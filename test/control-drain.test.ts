// Drains (src/control/drain.ts): when a draining backend is done, from paged counts of its live flows (a
// bounded part of the table per sample; done only when a whole pass found none live) or, without flow listing,
// from its packet counters staying still; and the plan a drain or undrain makes.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ControlError, type BackendView } from '../src/control/controller';
import { DRAIN_DEADLINE_MAX_S, DRAIN_FLOWS_MS, DRAIN_QUIET_MS, DrainSampler, drainEstimate, drainStep, planDrain } from '../src/control/drain';
import type { DrainState } from '../src/control/state';
import type { FlowEntry, FlowFilter, FlowPage } from '../src/dataplane/native';
import { checkedConfig, configDir, controllerWith, flowEntry, PagedTable, runningState, TWO_BACKENDS, until, WEB, webKey } from './rigs/control-fakes';

const dir = configDir('l4nat-control-drain-');
const T0 = 1_000_000;

/** A table of pages: page(cursor) returns the entries of pages[cursor] and the next cursor. */
const paged = (pages: FlowEntry[][]): ((cursor: number) => FlowPage) => (cursor) => ({ flows: pages[cursor], next: cursor + 1 < pages.length ? cursor + 1 : null });

const fresh = (): DrainState => ({ since: T0, lastPackets: 0, lastPacketAt: T0 });

describe('when a drain is done', () => {
  test('without flow listing: once the packet counters have been still for DRAIN_QUIET_MS', () => {
    const d = fresh();
    assert.equal(drainStep(d, 5, undefined, T0 + 1000), undefined, 'packets moved');
    assert.equal(d.lastPacketAt, T0 + 1000);
    assert.equal(drainStep(d, 5, undefined, T0 + 1000 + DRAIN_QUIET_MS - 1), undefined);
    assert.equal(drainStep(d, 5, undefined, T0 + 1000 + DRAIN_QUIET_MS), 'no packets for 5 s');
    assert.deepEqual([d.doneAt, d.doneBy], [T0 + 1000 + DRAIN_QUIET_MS, 'no packets for 5 s']);
    assert.equal(drainStep(d, 9, undefined, T0 + 99_000), undefined, 'done once');
  });

  test('with flow listing: done only when a whole pass over the pages found none live, however quiet the packets', () => {
    const d = fresh();
    const pages = [[], [flowEntry(0, 1)], []];
    const page = paged(pages);
    assert.deepEqual([drainStep(d, 0, page, T0 + 60_000), drainStep(d, 0, page, T0 + 60_500), drainStep(d, 0, page, T0 + 61_000)], [undefined, undefined, undefined]);
    assert.equal(d.liveFlows, 1, 'the pass counted the open connection');
    pages[1] = [flowEntry(0, 1, 'CLOSE')];
    assert.equal(drainStep(d, 0, page, T0 + 61_500), undefined, 'no new pass before DRAIN_FLOWS_MS after the last one started');
    assert.equal(drainStep(d, 0, page, T0 + 60_000 + DRAIN_FLOWS_MS), undefined, 'a new pass, first page');
    assert.equal(d.liveFlows, 1, 'the last whole count stands until this one is whole');
    assert.equal(drainStep(d, 0, page, T0 + 62_500), undefined);
    assert.equal(drainStep(d, 0, page, T0 + 63_000), 'no live flows left');
    assert.equal(d.liveFlows, 0);
  });

  test('live: TCP not in CLOSE and UDP heard from within the quiet period; not live: CLOSE, and UDP idle for it', () => {
    const count = (e: FlowEntry): number | undefined => {
      const d = fresh();
      drainStep(d, 0, () => ({ flows: [e], next: null }), T0);
      return d.liveFlows;
    };
    assert.equal(count(flowEntry(0, 1, 'ESTABLISHED', 3600)), 1, 'an idle open TCP connection is live');
    assert.equal(count(flowEntry(0, 1, 'FIN_WAIT')), 1);
    assert.equal(count(flowEntry(0, 1, 'CLOSE')), 0);
    assert.equal(count(flowEntry(0, 1, 'UDP', DRAIN_QUIET_MS / 1000 - 1)), 1);
    assert.equal(count(flowEntry(0, 1, 'UDP', DRAIN_QUIET_MS / 1000)), 0);
  });

  test('a count that fails falls back to the packet counters, and counting starts over next time', () => {
    const d = fresh();
    let fail = true;
    const page = (): FlowPage => {
      if (fail) throw new Error('closed');
      return { flows: [flowEntry(0, 1)], next: null };
    };
    assert.equal(drainStep(d, 0, page, T0 + DRAIN_QUIET_MS), 'no packets for 5 s');
    const e = fresh();
    e.liveFlows = 3;
    fail = true;
    assert.equal(drainStep(e, 7, page, T0 + 10), undefined);
    assert.deepEqual([e.liveFlows, e.count], [undefined, undefined], 'the half count is dropped');
    fail = false;
    drainStep(e, 7, page, T0 + 10 + DRAIN_FLOWS_MS);
    assert.equal(e.liveFlows, 1);
  });

  test('a clock that went back starts a new count at once', () => {
    const d = fresh();
    const page = paged([[flowEntry(0, 1)]]);
    drainStep(d, 0, page, T0 + 10_000);
    drainStep(d, 0, () => ({ flows: [], next: null }), T0 + 5_000);
    assert.equal(d.liveFlows, 0);
  });
});

describe('what a drain shows: the oldest flow and when it will be done', () => {
  test('the oldest live flow of the last whole count, and the rate the flows fell at carried on to zero', () => {
    const d = fresh();
    const live = (n: number, oldest: number): FlowEntry[] => Array.from({ length: n }, (_, i) => flowEntry(0, i, 'ESTABLISHED', 0, i === 0 ? oldest : 1));
    drainStep(d, 0, paged([[...live(10, 300), flowEntry(0, 99, 'CLOSE', 0, 5000)]]), T0);
    assert.deepEqual(d.lastCount, { at: T0, live: 10, oldestSeconds: 300 }, 'a closed entry is neither live nor the oldest');
    assert.equal(drainEstimate(d), undefined, 'one count: no rate yet');
    drainStep(d, 0, paged([live(6, 310)]), T0 + 4_000);
    assert.equal(d.liveFlows, 6);
    assert.equal(drainEstimate(d), T0 + 4_000 + 6_000, '4 flows ended in 4 s: 6 more take 6 s');
    d.deadlineAt = T0 + 7_000;
    assert.equal(drainEstimate(d), T0 + 7_000, 'never after the deadline');
    drainStep(d, 0, paged([live(6, 320)]), T0 + 8_000);
    assert.equal(drainEstimate(d), T0 + 7_000, 'no decline since: the deadline');
    delete d.deadlineAt;
    assert.equal(drainEstimate(d), T0 + 8_000 + 12_000, 'the slower rate over the whole drain');
  });
});

describe('a drain with a deadline', () => {
  test('at the deadline the flows left are removed from the flow table, counted, logged, and the drain is done', async () => {
    const { state, queue, bal, of } = await runningState(TWO_BACKENDS);
    const slot = bal.backendSlot(webKey('10.0.1.11:8080'))!;
    const deleted: FlowFilter[] = [];
    bal.dp.flowPage = () => ({ flows: [flowEntry(slot, 1), flowEntry(slot, 2)], next: null });
    bal.dp.flows = () => [];
    bal.dp.deleteFlows = async (f) => {
      deleted.push(f);
      return 2;
    };
    let changes = 0;
    const drains = new DrainSampler(state, () => void changes++);
    await queue.planned('drain', () => planDrain(state, WEB, '10.0.1.11:8080/tcp', true, T0, 30));
    const d = state.runtime.get(webKey('10.0.1.11:8080'))!.drain!;
    assert.equal(d.deadlineAt, T0 + 30_000);
    drains.sample(T0 + 29_999);
    assert.deepEqual([d.liveFlows, d.doneAt, deleted.length], [2, undefined, 0], 'before the deadline: counted, nothing removed');
    drains.sample(T0 + 30_000);
    assert.equal(d.doneAt, T0 + 30_000, 'done at the deadline');
    await until('the removal', () => d.removedAtDeadline !== undefined);
    assert.deepEqual(deleted, [{ backendSlot: slot }], 'only its flows');
    assert.deepEqual([d.removedAtDeadline, d.doneBy, drains.removedAtDeadlines, changes], [2, 'deadline reached: 2 flow(s) removed', 2, 1]);
    assert.deepEqual(of('drain_deadline').map((e) => [e.backend, e.flowsRemoved]), [['10.0.1.11:8080/tcp', 2]]);
    drains.sample(T0 + 40_000);
    assert.equal(deleted.length, 1, 'removed once');
  });

  test('a deadline given for a drain under way moves its deadline; a bad one is refused and changes nothing', async () => {
    const { state } = await runningState(TWO_BACKENDS);
    const bid = '10.0.1.11:8080/tcp';
    for (const bad of [0, -1, 1.5, DRAIN_DEADLINE_MAX_S + 1]) {
      assert.throws(() => planDrain(state, WEB, bid, true, T0, bad), (e: unknown) => e instanceof ControlError && e.status === 400 && e.message === `deadline: expected whole seconds from 1 to ${DRAIN_DEADLINE_MAX_S} with a drain, got ${bad}`);
    }
    assert.throws(() => planDrain(state, WEB, bid, false, T0, 5), /deadline: expected whole seconds/, 'no deadline with an undrain');
    assert.equal(state.runtime.get(webKey('10.0.1.11:8080'))!.drain, undefined, 'nothing changed');
    state.runtime.get(webKey('10.0.1.11:8080'))!.drain = fresh();
    assert.equal(planDrain(state, WEB, bid, true, T0 + 1_000, 60).plan, undefined, 'no new plan');
    assert.equal(state.runtime.get(webKey('10.0.1.11:8080'))!.drain!.deadlineAt, T0 + 61_000, 'the deadline set on the running drain');
    assert.throws(() => planDrain(state, WEB, bid, true, T0, 0));
    assert.equal(state.runtime.get(webKey('10.0.1.11:8080'))!.drain!.deadlineAt, T0 + 61_000, 'a refused one leaves it');
  });
});

describe('planning a drain', () => {
  test('a drain starts from the backend\'s packet count now; planning changes nothing running', async () => {
    const { state, bal } = await runningState(TWO_BACKENDS);
    bal.count(webKey('10.0.1.11:8080'), { packets_in: 7, packets_out: 5 });
    const c = planDrain(state, WEB, '10.0.1.11:8080/tcp', true, T0);
    assert.deepEqual(c.plan!.runtime.get(webKey('10.0.1.11:8080'))!.drain, { since: T0, lastPackets: 12, lastPacketAt: T0 });
    assert.equal(state.runtime.get(webKey('10.0.1.11:8080'))!.drain, undefined);
  });

  test('already in the state asked for: no plan; unknown: a 404 naming it', async () => {
    const { state } = await runningState(TWO_BACKENDS);
    assert.equal(planDrain(state, WEB, '10.0.1.11:8080/tcp', false).plan, undefined);
    state.runtime.get(webKey('10.0.1.11:8080'))!.drain = fresh();
    assert.equal(planDrain(state, WEB, '10.0.1.11:8080/tcp', true).plan, undefined);
    assert.equal(planDrain(state, WEB, '10.0.1.11:8080/tcp', false).plan!.runtime.get(webKey('10.0.1.11:8080'))!.drain, undefined);
    assert.throws(() => planDrain(state, WEB, '10.0.1.99:8080/tcp', true), (e: unknown) => e instanceof ControlError && e.status === 404 && e.message === `no backend 10.0.1.99:8080/tcp in service ${WEB}`);
  });

  test('the sampler runs while a drain is under way, reports it done once, and stops', async () => {
    const { state, queue, bal, of } = await runningState(TWO_BACKENDS);
    let changes = 0;
    const drains = new DrainSampler(state, () => void changes++);
    const counters = bal.dp.counters;
    await queue.planned('drain', () => planDrain(state, WEB, '10.0.1.11:8080/tcp', true, T0));
    drains.updateTimer();
    assert.equal(drains.sampling, true);
    bal.dp.counters = () => {
      throw new Error('closed');
    };
    drains.sample(T0 + DRAIN_QUIET_MS);
    assert.equal(changes, 0, 'a closed data plane: no sample');
    bal.dp.counters = counters;
    drains.sample(T0 + DRAIN_QUIET_MS);
    assert.equal(changes, 1);
    assert.equal(drains.sampling, false, 'nothing left to sample');
    assert.deepEqual(of('backend_drained').map((e) => [e.backend, e.by, e.drainSeconds]), [['10.0.1.11:8080/tcp', 'no packets for 5 s', 5]]);
    drains.sample(T0 + 2 * DRAIN_QUIET_MS);
    assert.equal(changes, 1, 'done once');
  });
});

describe('the flow table is read in bounded pieces (controller)', () => {
  test('a drain counts its backend\'s flows a bounded part of the table per sample, and is done only when a whole pass found none live', async () => {
    const { bal, ctrl } = await controllerWith(dir, checkedConfig(0.1, ['10.0.1.11:8080', '10.0.1.12:8080']), ['10.0.1.11', '10.0.1.12']);
    try {
      const table = new PagedTable(100, 10);
      table.attach(bal);
      const slot = bal.backendSlot(`${WEB}|10.0.1.11:8080/tcp`)!;
      table.entries[95] = flowEntry(slot, 1000); // in the last page
      await ctrl.drain(WEB, '10.0.1.11:8080/tcp');
      const t0 = Date.now() + 60_000;
      for (let i = 0; i < 3; i++) ctrl.sampleDrains(t0 + i * 500);
      const view = (): NonNullable<BackendView['drain']> => ctrl.serviceView(ctrl.current[0], bal.dp.counters()).backends[0].drain!;
      assert.deepEqual(table.scans, [40, 40, 20], 'four pages per sample at most');
      assert.deepEqual([view().liveFlows, view().done], [1, false], 'the open connection in the last page keeps it draining');
      table.entries[95] = flowEntry(slot, 1000, 'CLOSE');
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

  test('the drain timer samples on its own: a quiet backend without flow listing is reported drained, with a change event', async () => {
    const { bal, ctrl } = await controllerWith(dir, checkedConfig(0.1, ['10.0.1.11:8080', '10.0.1.12:8080']), ['10.0.1.11', '10.0.1.12']);
    try {
      let changes = 0;
      ctrl.on('change', () => void changes++);
      await ctrl.drain(WEB, '10.0.1.11:8080/tcp');
      assert.equal(changes, 1, 'the drain\'s table');
      assert.equal(bal.table()[0]['10.0.1.11:8080'], 0);
      await until('drained by the timer', () => ctrl.view().services[0].backends[0].state === 'drained', DRAIN_QUIET_MS + 3000);
      assert.equal(changes, 2, 'and the drain\'s end');
    } finally {
      ctrl.stop();
    }
  });
});
