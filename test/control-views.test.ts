// The views (src/control/views.ts): the shape the API, `l4nat status`, the metrics and systemd read, each
// backend's state (a drain wins over health), and the summary.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { backendState, serviceView, servicesView, summary } from '../src/control/views';
import { zeroObjectCounters, type CounterSnapshot, type FlowStats } from '../src/dataplane/native';
import type { HealthChecker } from '../src/health/checker';
import { runningState, webKey } from './rigs/control-fakes';

const YAML = `
services:
  - name: web
    vips: [10.0.0.10]
    ports: [80]
    on_all_down: keep-last
    on_down: reset
    deny_sources: [192.0.2.0/24]
    new_flow_rate: {rate: 5, burst: 10}
    backends: ["10.0.1.11:8080", {address: 10.0.1.12, port: 8080, name: two, weight: 3}, "10.0.1.13:8080"]
  - name: dns
    vips: [10.0.0.53]
    ports: ["53/udp"]
    backends: ["10.0.2.1:53"]
`;
const T0 = Date.parse('2030-01-01T00:00:00.000Z');
const B11 = webKey('10.0.1.11:8080');
const B12 = webKey('10.0.1.12:8080');
const B13 = webKey('10.0.1.13:8080');

const snapshot = (over: Partial<CounterSnapshot> = {}): CounterSnapshot => ({ total: { rx_packets: 3 }, drops: { no_backend: 1 }, perQueue: [], heartbeatsMs: [4], services: new Map(), backends: new Map(), ...over });

/** A checker as the view reads it. */
const checker = (state: 'up' | 'down'): HealthChecker =>
  ({
    state,
    successes: 0,
    failures: 2,
    checks: { ok: 5, failed: 2 },
    history: [{ at: 'a', ok: false, ms: 1, detail: 'refused' }],
    transitions: [{ at: 'b', from: 'up', to: 'down', reason: 'refused' }],
    stop: () => undefined,
  }) as unknown as HealthChecker;

describe('backend state', () => {
  test('up or down by health; a drain wins over health: draining, then drained; the cluster\'s vote decides over this host\'s view', async () => {
    const { state } = await runningState(YAML);
    const s = state.services[0];
    const of = (i: number): string => backendState(state, s, s.backends[i]).state;
    assert.deepEqual([of(0), of(1), of(2)], ['up', 'up', 'up']);
    state.runtime.get(B11)!.checker = checker('down');
    state.runtime.get(B12)!.passive = { samples: [], heldUntil: T0 };
    assert.deepEqual([of(0), of(1)], ['down', 'down'], 'an active check down, a passive hold');
    state.runtime.get(B11)!.drain = { since: T0, lastPackets: 0, lastPacketAt: T0 };
    assert.equal(of(0), 'draining');
    state.runtime.get(B11)!.drain!.doneAt = T0;
    assert.equal(of(0), 'drained');
    state.healthVote = (key) => key !== B13;
    assert.deepEqual([of(1), of(2)], ['up', 'down']);
  });
});

describe('service view', () => {
  test('the whole shape of a service and its backends', async () => {
    const { state, bal } = await runningState(YAML);
    const s = state.services[0];
    const slot11 = bal.backendSlot(B11)!;
    const c = snapshot({ services: new Map([[0, { packets_in: 9 }]]), backends: new Map([[slot11, { packets_in: 7 }]]) });
    const backends = new Uint32Array(8);
    backends[slot11] = 4;
    const fs: FlowStats = { total: 5, closed: 1, backends, services: Uint32Array.of(6, 0) };
    const v = serviceView(state, s, c, fs, T0);
    const { backends: bv, ...service } = v;
    assert.deepEqual(service, {
      id: '10.0.0.10:80/tcp',
      name: 'web',
      vip: '10.0.0.10',
      port: 80,
      proto: 'tcp',
      hash: '5tuple',
      onAllDown: 'keep-last',
      onDown: 'reset',
      protections: { newFlowRate: { rate: 5, burst: 10 }, allowSources: [], denySources: ['192.0.2.0/24'] },
      admission: { balance: 'maglev', balanceFactor: null, whenFull: 'drop' },
      allDown: false,
      healthCheck: null,
      counters: { packets_in: 9 },
      activeFlows: 6,
    });
    assert.deepEqual(bv[0], {
      id: '10.0.1.11:8080/tcp',
      name: null,
      addr: '10.0.1.11',
      port: 8080,
      weight: 1,
      effectiveWeight: 1,
      state: 'up',
      source: 'config',
      health: null,
      passive: null,
      slowStart: null,
      drain: null,
      counters: { packets_in: 7 },
      activeFlows: 4,
      maxFlows: null,
    });
    assert.deepEqual([bv[1].name, bv[1].weight, bv[1].effectiveWeight], ['two', 3, 3]);
    assert.deepEqual(bv[1].counters, zeroObjectCounters(), 'nothing counted yet: every counter at 0');
    assert.ok(Object.keys(bv[1].counters).length > 0);
  });

  test('active flows come from the data plane\'s counts when it keeps them; admission and max_flows as configured', async () => {
    const yaml = YAML.replace('    on_all_down: keep-last', '    on_all_down: keep-last\n    balance: bounded\n    balance_factor: 1.5\n    when_full: reject').replace('{address: 10.0.1.12, port: 8080, name: two, weight: 3}', '{address: 10.0.1.12, port: 8080, name: two, weight: 3, max_flows: 50}');
    const { state, bal } = await runningState(yaml);
    const s = state.services[0];
    const slot = (k: string): number => bal.backendSlot(k)!;
    const backends = new Float64Array(16);
    backends[slot(B12)] = 50;
    const services = new Float64Array(4);
    services[bal.serviceSlot('10.0.0.10:80/tcp')!] = 51;
    (bal.dp as { activeFlows?: () => { backends: Float64Array; services: Float64Array } }).activeFlows = () => ({ backends, services });
    const fs: FlowStats = { total: 9, closed: 0, backends: new Uint32Array(16).fill(9), services: new Uint32Array(4).fill(9) };
    const v = serviceView(state, s, snapshot(), fs, T0);
    assert.deepEqual(v.admission, { balance: 'bounded', balanceFactor: 1.5, whenFull: 'reject' });
    assert.equal(v.activeFlows, 51, 'the count, not the paged statistics');
    assert.deepEqual(v.backends.map((b) => [b.activeFlows, b.maxFlows]), [[0, null], [50, 50], [0, null]]);
  });

  test('unknown flow statistics are null; a slot past the statistics too', async () => {
    const { state } = await runningState(YAML);
    const s = state.services[0];
    let v = serviceView(state, s, snapshot(), undefined, T0);
    assert.deepEqual([v.activeFlows, v.backends[0].activeFlows], [null, null]);
    v = serviceView(state, s, snapshot(), { total: 0, closed: 0, backends: new Uint32Array(1), services: new Uint32Array(1) }, T0);
    assert.deepEqual([v.activeFlows, v.backends[0].activeFlows, v.backends[2].activeFlows], [0, 0, null]);
  });

  test('health, passive hold and drain as shown; the history only when asked for', async () => {
    const { state } = await runningState(YAML);
    const s = state.services[0];
    state.runtime.get(B11)!.checker = checker('down');
    state.runtime.get(B12)!.passive = { samples: [], heldUntil: T0 + 20_000, reason: 'passive: it sent 5 resets' };
    state.runtime.get(B13)!.drain = {
      since: T0 - 10_000, lastPackets: 3, lastPacketAt: T0 - 1_234, liveFlows: 2,
      firstCount: { at: T0 - 10_000, live: 6 }, lastCount: { at: T0 - 2_000, live: 2, oldestSeconds: 400 }, deadlineAt: T0 + 60_000,
    };
    let v = serviceView(state, s, snapshot(), undefined, T0);
    assert.deepEqual(v.backends[0].health, { state: 'down', consecutiveSuccesses: 0, consecutiveFailures: 2, checks: { ok: 5, failed: 2 }, lastCheck: { at: 'a', ok: false, ms: 1, detail: 'refused' } });
    assert.equal(v.backends[0].history, undefined);
    assert.deepEqual(v.backends[1].passive, { heldUntil: '2030-01-01T00:00:20.000Z', reason: 'passive: it sent 5 resets' });
    assert.deepEqual(v.backends[2].drain, {
      since: '2029-12-31T23:59:50.000Z', lastPacketAt: '2029-12-31T23:59:58.766Z', quietSeconds: 1.2, liveFlows: 2, done: false, doneBy: null,
      oldestFlowSeconds: 400, estimatedDoneAt: '2030-01-01T00:00:02.000Z', deadline: '2030-01-01T00:01:00.000Z', removedAtDeadline: null,
    }, '4 flows ended in 8 s: the 2 left take 4 s more');
    assert.deepEqual(v.backends.map((b) => b.state), ['down', 'down', 'draining']);
    v = serviceView(state, s, snapshot(), undefined, T0, true);
    assert.deepEqual(v.backends[0].history, { checks: [{ at: 'a', ok: false, ms: 1, detail: 'refused' }], transitions: [{ at: 'b', from: 'up', to: 'down', reason: 'refused' }] });
    assert.equal(v.backends[1].history, undefined, 'no checker, no history');
  });

  test('effective weights are those last published, 0 for one never published; source and all-down as the state says', async () => {
    const { state } = await runningState(YAML);
    const s = state.services[0];
    state.lastWeights.set('10.0.0.10:80/tcp', new Map([['10.0.1.11:8080/tcp', 0]]));
    state.allDown.add('10.0.0.10:80/tcp');
    state.runtime.get(B12)!.source = 'api';
    const v = serviceView(state, s, snapshot(), undefined, T0);
    assert.deepEqual(v.backends.map((b) => b.effectiveWeight), [0, 0, 0]);
    assert.deepEqual(v.backends.map((b) => b.source), ['config', 'api', 'config']);
    assert.equal(v.allDown, true);
  });
});

describe('services view and summary', () => {
  test('every service, and the data plane\'s totals', async () => {
    const { state } = await runningState(YAML);
    const v = servicesView(state, snapshot(), undefined, 17, T0);
    assert.deepEqual(v.services.map((s) => s.id), ['10.0.0.10:80/tcp', '10.0.0.53:53/udp']);
    assert.deepEqual(v.dataplane, { counters: { rx_packets: 3 }, drops: { no_backend: 1 }, heartbeatsMs: [4], flows: 17 });
  });

  test('backends counted by state (drained ones as draining), and the services without a healthy backend', async () => {
    const { state } = await runningState(YAML);
    state.runtime.get(B11)!.checker = checker('down');
    state.runtime.get(B12)!.drain = { since: T0, lastPackets: 0, lastPacketAt: T0 };
    state.runtime.get(B13)!.drain = { since: T0, lastPackets: 0, lastPacketAt: T0, doneAt: T0 };
    state.allDown.add('10.0.0.10:80/tcp');
    assert.deepEqual(summary(state), { services: 2, backends: 4, up: 1, down: 1, draining: 2, allDown: ['10.0.0.10:80/tcp'] });
  });
});
