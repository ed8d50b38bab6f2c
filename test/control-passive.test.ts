// The passive check (src/control/passive.ts): verdicts from per-backend counter samples over a window — new
// flows without an answer, or resets — hold a backend out for `hold` seconds; every change of one sample goes
// out in one published table, and on_down: reset follows a down verdict.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { PassiveCheckSpec, ServiceConfig } from '../src/config/model';
import { PassiveCheck, passiveStep } from '../src/control/passive';
import type { PassiveState } from '../src/control/state';
import { runningState, sleep, webKey } from './rigs/control-fakes';

const SPEC: PassiveCheckSpec = { window: 5, maxUnanswered: 3, maxResets: 4, hold: 20 };
const T0 = 1_000_000;

/** Counters as the data plane keeps them for a backend: totals since start. */
const ctr = (newFlows: number, answered: number | undefined, out = 0, resets = 0): Record<string, number> => ({
  packets_in: 0,
  packets_out: out,
  new_flows: newFlows,
  resets,
  ...(answered !== undefined ? { flows_answered: answered } : {}),
});

/** Feeds one sample a second from T0 and returns the verdicts. */
function feed(st: PassiveState, spec: PassiveCheckSpec, samples: Array<Record<string, number> | undefined>, start = T0): Array<string | undefined> {
  return samples.map((o, i) => {
    const v = passiveStep(st, spec, o, start + i * 1000);
    return v && (v.to === 'up' ? 'up' : `down: ${v.why}`);
  });
}

describe('passive verdicts from counter samples', () => {
  test('unanswered new flows: down once a third sample shows them still unanswered; the flows are counted up to the previous sample', () => {
    const st: PassiveState = { samples: [] };
    const v = feed(st, SPEC, [ctr(0, 0), ctr(10, 0), ctr(10, 0)]);
    assert.deepEqual(v.slice(0, 2), [undefined, undefined], 'two samples: too early to say');
    assert.match(v[2] ?? '', /^down: passive: 10 of 10 new flows in 2 s got no answer through l4nat: its replies bypass this host \(is l4nat its default gateway\?\) or it does not answer$/);
    assert.equal(st.heldUntil, T0 + 2000 + 20_000, 'held for hold seconds');
    assert.deepEqual(st.samples, [], 'a new window after the hold');
    assert.match(st.reason ?? '', /10 of 10 new flows/);
  });

  test('flows that arrived only in the latest sample have not had a period to be answered: not counted yet', () => {
    const st: PassiveState = { samples: [] };
    assert.deepEqual(feed(st, SPEC, [ctr(0, 0), ctr(0, 0), ctr(10, 0)]), [undefined, undefined, undefined]);
    assert.match(feed(st, SPEC, [ctr(10, 0)], T0 + 3000)[0] ?? '', /^down: passive: 10 of 10/);
  });

  test('answered flows keep it in; below max_unanswered keeps it in', () => {
    const st: PassiveState = { samples: [] };
    assert.deepEqual(feed(st, SPEC, [ctr(0, 0), ctr(10, 8), ctr(10, 8), ctr(10, 10)]), [undefined, undefined, undefined, undefined], '2 unanswered < 3');
    assert.equal(st.heldUntil, undefined);
  });

  test('without a flows_answered counter a flow counts as unanswered only if not one packet came back', () => {
    let st: PassiveState = { samples: [] };
    assert.deepEqual(feed(st, SPEC, [ctr(0, undefined, 0), ctr(10, undefined, 0), ctr(10, undefined, 1)]), [undefined, undefined, undefined], 'a packet back: answered');
    st = { samples: [] };
    assert.match(feed(st, SPEC, [ctr(0, undefined, 5), ctr(10, undefined, 5), ctr(10, undefined, 5)])[2] ?? '', /^down: passive: 10 of 10/);
  });

  test('resets: down at max_resets within the window, from the second sample', () => {
    const st: PassiveState = { samples: [] };
    const v = feed(st, SPEC, [ctr(0, 0, 0, 0), ctr(0, 0, 0, 4)]);
    assert.deepEqual(v, [undefined, 'down: passive: it sent 4 resets in 1 s (max_resets 4)']);
  });

  test('0 turns a criterion off', () => {
    const st: PassiveState = { samples: [] };
    const off = { ...SPEC, maxUnanswered: 0, maxResets: 0 };
    assert.deepEqual(feed(st, off, [ctr(0, 0, 0, 0), ctr(100, 0, 0, 100), ctr(100, 0, 0, 100)]), [undefined, undefined, undefined]);
  });

  test('the window slides: what happened before it no longer counts', () => {
    const st: PassiveState = { samples: [] };
    const spec = { ...SPEC, window: 2, maxUnanswered: 0 };
    // 3 resets, then 2 more 3 s later: never 4 within 2 s.
    assert.deepEqual(feed(st, spec, [ctr(0, 0, 0, 0), ctr(0, 0, 0, 3), ctr(0, 0, 0, 3), ctr(0, 0, 0, 3), ctr(0, 0, 0, 5)]), [undefined, undefined, undefined, undefined, undefined]);
    assert.deepEqual(st.samples.map((s) => s.t - T0), [2000, 3000, 4000], 'the oldest sample kept is the window\'s base');
  });

  test('a hold ends at its time, not before; then the backend is up with a new window', () => {
    const st: PassiveState = { samples: [{ t: 1, newFlows: 1, answered: 0, out: 0, resets: 0 }], heldUntil: T0 + 5000, reason: 'x' };
    assert.equal(passiveStep(st, SPEC, ctr(99, 0), T0 + 4999), undefined);
    assert.equal(st.samples.length, 1, 'no sample taken while held');
    assert.deepEqual(passiveStep(st, SPEC, ctr(99, 0), T0 + 5000), { to: 'up' });
    assert.deepEqual([st.heldUntil, st.reason, st.samples], [undefined, undefined, []]);
  });
});

const PASSIVE = (onDown = 'keep'): string => `
services:
  - name: web
    vips: [10.0.0.10]
    ports: [80]
    on_down: ${onDown}
    passive_check: {window: 5, max_unanswered: 3, max_resets: 4, hold: 20}
    backends: ["10.0.1.11:8080", "10.0.1.12:8080"]
  - name: plain
    vips: [10.0.0.11]
    ports: [80]
    backends: ["10.0.1.13:8080"]
`;
const B11 = webKey('10.0.1.11:8080');
const B12 = webKey('10.0.1.12:8080');

async function sampler(onDown = 'keep') {
  const r = await runningState(PASSIVE(onDown));
  const republished: string[] = [];
  const resets: string[] = [];
  const passive = new PassiveCheck(
    r.state,
    (reason) => {
      republished.push(reason);
      return r.queue.republish(reason);
    },
    async (s: ServiceConfig, key: string) => void resets.push(`${s.onDown} ${key}`),
  );
  return { ...r, passive, republished, resets };
}

describe('the passive sampler', () => {
  test('the changes of one sample go out in one table; the backend is out of the ring and then back', async () => {
    const { bal, state, passive, republished, resets, of } = await sampler('reset');
    bal.count(B11, ctr(0, 0));
    bal.count(B12, ctr(0, 0));
    passive.sample(T0);
    bal.count(B11, ctr(10, 0, 0, 0));
    bal.count(B12, ctr(0, 0, 0, 5));
    passive.sample(T0 + 1000);
    passive.sample(T0 + 2000);
    await sleep(20);
    assert.deepEqual(republished, ['passive: 10.0.1.12:8080/tcp passive down', 'passive: 10.0.1.11:8080/tcp passive down']);
    assert.deepEqual(bal.table()[0], { '10.0.1.11:8080': 0, '10.0.1.12:8080': 0 });
    assert.deepEqual(resets, [`reset ${B12}`, `reset ${B11}`], 'on_down is asked about after the publish');
    assert.deepEqual(of('backend_down').map((e) => [e.backend, e.holdSeconds, e.level]), [['10.0.1.12:8080/tcp', 20, 50], ['10.0.1.11:8080/tcp', 20, 50]]);
    passive.sample(T0 + 22_000);
    await sleep(20);
    assert.equal(republished.at(-1), 'passive: 10.0.1.11:8080/tcp passive hold over, 10.0.1.12:8080/tcp passive hold over', 'both holds over: one table');
    assert.deepEqual(bal.table()[0], { '10.0.1.11:8080': 1, '10.0.1.12:8080': 1 });
    assert.equal(of('backend_up').length, 2);
    assert.equal(state.runtime.get('10.0.0.11:80/tcp|10.0.1.13:8080/tcp')!.passive, undefined, 'a service without a passive check is not sampled');
  });

  test('nothing to say, nothing published; counters that cannot be read skip the sample', async () => {
    const { bal, passive, republished } = await sampler();
    passive.sample(T0);
    passive.sample(T0 + 1000);
    passive.sample(T0 + 2000);
    bal.dp.counters = () => {
      throw new Error('closed');
    };
    passive.sample(T0 + 3000);
    await sleep(20);
    assert.deepEqual(republished, []);
  });

  test('the timer runs only while running and a service has a passive check', async () => {
    const { state, passive } = await sampler();
    state.running = false;
    passive.updateTimer();
    assert.equal(passive.sampling, false, 'not before start');
    state.running = true;
    passive.updateTimer();
    assert.equal(passive.sampling, true);
    state.services = state.services.map((s) => ({ ...s, passive: null }));
    passive.updateTimer();
    assert.equal(passive.sampling, false, 'no passive check left');
    state.services = state.services.map((s) => ({ ...s, passive: SPEC }));
    passive.updateTimer();
    passive.stop();
    assert.equal(passive.sampling, false);
  });
});
