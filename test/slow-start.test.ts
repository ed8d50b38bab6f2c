// Slow start (src/control/slow-start.ts, issue 17 item 3): a backend coming up takes its weight in SLOW_START_STEPS
// ring rebuilds. What each rebuild moves in a Maglev ring (measured), the steps and their times, the weights the
// change queue publishes as a drained backend is undrained, and the config key.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { buildMaglev } from '../src/dataplane/maglev';
import { parseConfig } from '../src/config/load';
import { planDrain } from '../src/control/drain';
import { nextStepAt, rampStep, SLOW_START_STEPS, SlowStartTimer } from '../src/control/slow-start';
import { serviceView } from '../src/control/views';
import { runningState, webKey } from './rigs/control-fakes';

test('each step moves the slots the ramping backend gains and few others, never one of its own; its share is step/S of its weight', () => {
  const M = 65537;
  const key = Buffer.alloc(16, 7);
  const ids = Array.from({ length: 10 }, (_, i) => `10.0.1.${i + 1}:8080/tcp`);
  const ring = (wx: number, wo: number): Int32Array => buildMaglev(ids.map((id, i) => ({ id, weight: i === 0 ? wx : wo })), { size: M, key });
  let prev = ring(0, 1); // drained
  const moved: Array<{ gained: number; lost: number; others: number }> = [];
  for (let s = 1; s <= SLOW_START_STEPS; s++) { // 1/S .. (S-1)/S of its weight, then all of it
    const cur = s === SLOW_START_STEPS ? ring(1, 1) : ring(s, SLOW_START_STEPS);
    const m = { gained: 0, lost: 0, others: 0 };
    let own = 0;
    for (let j = 0; j < M; j++) {
      if (cur[j] === 0) own++;
      if (prev[j] === cur[j]) continue;
      if (cur[j] === 0) m.gained++;
      else if (prev[j] === 0) m.lost++;
      else m.others++;
    }
    const want = (M * s) / (s + SLOW_START_STEPS * 9);
    assert.ok(Math.abs(own - want) <= 1, `step ${s}: ${own} slots, want ${want.toFixed(1)}`);
    moved.push(m);
    prev = cur;
  }
  // Measured with this key: gained 1772, 1677, 1592, 1513; others moved 156, 143, 113, 116 (0.24 % of the ring at most).
  for (const [i, m] of moved.entries()) {
    assert.equal(m.lost, 0, `step ${i + 1}: the ramping backend lost no slot`);
    assert.ok(m.gained > 1400 && m.gained < 1900, `step ${i + 1}: gained ${m.gained}`);
    assert.ok(m.others <= 0.15 * m.gained && m.others <= 0.005 * M, `step ${i + 1}: ${m.others} slots moved between the other backends`);
  }
});

test('steps: 1..S-1, each for an equal part of the window, the whole weight at its end', () => {
  const t0 = 1_000_000;
  assert.equal(SLOW_START_STEPS, 4);
  assert.deepEqual([0, 3_333, 3_334, 6_667, 9_999].map((d) => rampStep(t0, 10, t0 + d)), [1, 1, 2, 3, 3]);
  assert.equal(rampStep(t0, 10, t0 + 10_000), undefined, 'over: the whole weight');
  assert.equal(rampStep(t0, 10, t0 - 5), 1, 'a clock a little behind: the first step');
  assert.deepEqual([0, 3_334, 9_000].map((d) => nextStepAt(t0, 10, t0 + d)), [t0 + 3_334, t0 + 6_667, t0 + 10_000]);
  assert.equal(nextStepAt(t0, 10, t0 + 10_000), undefined);
});

const YAML = `
services:
  - name: web
    vips: [10.0.0.10]
    ports: [80]
    slow_start: 20s
    backends: ["10.0.1.11:8080", "10.0.1.12:8080@2", "10.0.1.13:8080"]
`;

test('undrained under slow start: the change queue publishes its weight in steps, the others whole; the view shows the ramp', async (t) => {
  let clock = 5_000_000;
  t.mock.method(Date, 'now', () => clock);
  const { state, queue, bal, of } = await runningState(YAML);
  assert.deepEqual(bal.table(), [{ '10.0.1.11:8080': 1, '10.0.1.12:8080': 2, '10.0.1.13:8080': 1 }], 'the first table: every backend whole, nothing ramps');
  const timer = new SlowStartTimer(state, (reason) => queue.republish(reason));
  const b1 = '10.0.1.11:8080/tcp';
  await queue.planned('drain', () => planDrain(state, '10.0.0.10:80/tcp', b1, true, clock));
  assert.equal(bal.table()[0]['10.0.1.11:8080'], 0);
  clock += 1_000;
  await queue.planned('undrain', () => planDrain(state, '10.0.0.10:80/tcp', b1, false, clock));
  const t0 = clock;
  assert.equal(state.runtime.get(webKey('10.0.1.11:8080'))!.slowStartSince, t0);
  assert.deepEqual(of('slow_start').map((e) => e.backends), [[webKey('10.0.1.11:8080')]]);
  assert.equal(timer.nextStep(clock), t0 + 6_667);
  const steps = [bal.table()[0]];
  const view = (): unknown => serviceView(state, state.services[0], bal.dp.counters(), undefined, clock).backends.map((b) => [b.effectiveWeight, b.slowStart?.step ?? null]);
  assert.deepEqual(view(), [[0.25, 1], [2, null], [1, null]], 'shown as fractions of the configured weights');
  for (const d of [6_667, 13_334, 20_000]) {
    clock = t0 + d;
    await queue.republish('slow start: next step');
    steps.push(bal.table()[0]);
  }
  assert.deepEqual(steps, [
    { '10.0.1.11:8080': 1, '10.0.1.12:8080': 8, '10.0.1.13:8080': 4 },
    { '10.0.1.11:8080': 2, '10.0.1.12:8080': 8, '10.0.1.13:8080': 4 },
    { '10.0.1.11:8080': 3, '10.0.1.12:8080': 8, '10.0.1.13:8080': 4 },
    { '10.0.1.11:8080': 1, '10.0.1.12:8080': 2, '10.0.1.13:8080': 1 },
  ]);
  assert.equal(timer.nextStep(clock), undefined, 'nothing left to step');
  assert.deepEqual(view(), [[1, null], [2, null], [1, null]]);
  timer.stop();
});

test('config: slow_start per service or in defaults, as seconds or "Ns"; out of range refused with the path', () => {
  const svc = (extra: string, defaults = ''): string => `${defaults}services:\n  - name: web\n    vips: [10.0.0.10]\n    ports: [80]\n    backends: ["10.0.1.11:8080"]\n${extra}`;
  assert.equal(parseConfig(svc('    slow_start: 30s\n'), 'a.yaml').services[0].slowStartSeconds, 30);
  assert.equal(parseConfig(svc('    slow_start: 45\n'), 'a.yaml').services[0].slowStartSeconds, 45);
  assert.equal(parseConfig(svc('', 'defaults: {slow_start: 10s}\n'), 'a.yaml').services[0].slowStartSeconds, 10);
  assert.equal(parseConfig(svc(''), 'a.yaml').services[0].slowStartSeconds, undefined, 'off unless given');
  assert.throws(() => parseConfig(svc('    slow_start: 0\n'), 'a.yaml'), /services\[0\]\.slow_start: got 0, expected seconds from 1 to 3600, such as 30 or "30s"/);
  assert.throws(() => parseConfig(svc('    slow_start: 5m\n'), 'a.yaml'), /services\[0\]\.slow_start: got "5m", expected seconds from 1 to 3600/);
  assert.throws(() => parseConfig(svc('    slow_start: 4000s\n'), 'a.yaml'), /services\[0\]\.slow_start: got "4000s", expected seconds from 1 to 3600/);
});
