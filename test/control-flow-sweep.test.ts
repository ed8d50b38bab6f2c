// The active-flow counts' sweep (src/control/flow-sweep.ts): the slice each second takes, and the table paged
// through from where the last slice stopped, around to the start, without a timer (tick by hand).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FlowSweeper, SWEEP_MAX_SLICE, SWEEP_PASS_SECONDS, sweepSlice } from '../src/control/flow-sweep';
import type { ControlState } from '../src/control/state';

test('a slice is a quarter of the table, at most SWEEP_MAX_SLICE entries', () => {
  assert.equal(SWEEP_PASS_SECONDS, 4);
  assert.equal(sweepSlice(1 << 20), 1 << 18, 'the default table: whole every 4 s');
  assert.equal(sweepSlice(10), 3);
  assert.equal(sweepSlice(1 << 28), SWEEP_MAX_SLICE, 'a huge table: capped, swept in capacity / 2^20 s');
});

test('ticks page through the table from where the last one stopped, and start over at the end', () => {
  const calls: Array<[number, number]> = [];
  const capacity = 16;
  const dp = {
    flowCapacity: capacity,
    sweepFlows(cursor: number, maxScan: number): { freed: number; next: number | null } {
      calls.push([cursor, maxScan]);
      const next = cursor + maxScan;
      return { freed: 1, next: next >= capacity ? null : next };
    },
  };
  const sweeper = new FlowSweeper({ balancer: { dp } } as unknown as ControlState);
  for (let i = 0; i < 5; i++) sweeper.tick();
  assert.deepEqual(calls, [[0, 4], [4, 4], [8, 4], [12, 4], [0, 4]]);
  assert.equal(sweeper.freed, 5);
});

test('a closed data plane stops the sweep instead of throwing from the timer', () => {
  let n = 0;
  const dp = {
    flowCapacity: 8,
    sweepFlows(): never {
      n++;
      throw new Error('closed');
    },
  };
  const sweeper = new FlowSweeper({ balancer: { dp } } as unknown as ControlState);
  sweeper.start();
  assert.doesNotThrow(() => sweeper.tick());
  sweeper.stop();
  assert.equal(n, 1);
});
