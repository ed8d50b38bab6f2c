// The workers' nice value (src/dataplane/worker-priority.ts): finding the worker threads by name, the range check,
// and setting a thread's nice value (a real thread of this process: raising nice needs no privilege).
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { niceOf, setWorkerNice, workerThreadIds } from '../src/dataplane/worker-priority';

test('workerThreadIds: the threads named l4nat-qN, and only those', () => {
  const dir = mkdtempSync(join(tmpdir(), 'l4nat-tasks-'));
  try {
    const task = (tid: number, comm: string): void => {
      mkdirSync(join(dir, String(tid)));
      writeFileSync(join(dir, String(tid), 'comm'), `${comm}\n`);
    };
    task(100, 'node');
    task(105, 'l4nat-q1');
    task(103, 'l4nat-q0');
    task(107, 'l4nat-q');
    task(108, 'l4nat-watchdog');
    mkdirSync(join(dir, '109')); // ended while being read: no comm
    assert.deepEqual(workerThreadIds(dir), [103, 105]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('setWorkerNice: the range is checked by name, 0 leaves the threads alone', () => {
  for (const bad of [-21, 20, 1.5, Number.NaN]) {
    assert.throws(() => setWorkerNice(bad, []), /^RangeError: worker nice must be an integer from -20 to 19, got/);
  }
  assert.deepEqual(setWorkerNice(0, [1]), []); // tid 1 is not ours: untouched since nothing is set
});

test('setWorkerNice sets each given thread, not the process', async () => {
  // A worker_threads thread is an OS thread of this process; a thread id is what the workers are found by.
  const w = new Worker('const { parentPort } = require("node:worker_threads"); const fs = require("node:fs"); parentPort.postMessage(Number(fs.readlinkSync("/proc/thread-self").split("/").pop())); setInterval(() => {}, 1000);', { eval: true });
  try {
    const tid = await new Promise<number>((resolve) => w.once('message', resolve));
    assert.notEqual(tid, process.pid);
    const before = niceOf(process.pid, process.pid);
    assert.deepEqual(setWorkerNice(Math.min(19, before + 3), [tid]), [tid]);
    assert.equal(niceOf(process.pid, tid), Math.min(19, before + 3));
    assert.equal(niceOf(process.pid, process.pid), before, 'the main thread keeps its nice value');
  } finally {
    await w.terminate();
  }
});
