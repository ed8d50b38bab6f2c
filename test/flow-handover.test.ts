// The flow table handed to the next l4nat (issue 18, item 4), its pure parts: the slot map kept in the file, the
// slot allocator starting from it, where the file lives and how it is configured. Native parts: native/test
// (core_test flow_segment_*, flow_file_test); the handover itself: test/reliability-restart.test.ts.
import assert from 'node:assert/strict';
import { readlinkSync } from 'node:fs';
import { test } from 'node:test';
import { parseUpArgs } from '../src/cli/up-args';
import { parseConfig, restartOnlyChanges } from '../src/config/load';
import { flowFileFsProblem, flowFileOf } from '../src/daemon/flow-handover';
import { decodeFlowSlots, encodeFlowSlots } from '../src/dataplane/flow-slots';
import { SlotAllocator } from '../src/dataplane/tables';

test('the slot map round-trips, and a damaged one is refused saying what is wrong', () => {
  const m = { services: new Map([['10.0.0.10:80/tcp', 0], ['10.0.0.10:53/udp', 3]]), backends: new Map([['10.0.0.10:80/tcp|10.1.0.1:80', 2]]) };
  assert.deepEqual(decodeFlowSlots(encodeFlowSlots(m)), m);
  const bad: Array<[string, RegExp]> = [
    ['{', /not JSON/],
    ['{"v":2,"services":[],"backends":[]}', /not version 1/],
    ['{"v":1,"services":{},"backends":[]}', /services is not a list/],
    ['{"v":1,"services":[["a",-1]],"backends":[]}', /not \[id, slot\]/],
    ['{"v":1,"services":[["a",1],["b",1]],"backends":[]}', /names slot 1 twice/],
    ['{"v":1,"services":[],"backends":[["a",1],["a",2]]}', /backends names id a twice/],
  ];
  for (const [text, re] of bad) assert.throws(() => decodeFlowSlots(Buffer.from(text)), re, text);
});

test('an allocator seeded from a taken-over map gives the same ids the same slots, and new ids free ones', () => {
  const a = new SlotAllocator(8);
  a.seed(new Map([['b3', 2], ['b1', 0], ['gone', 1], ['beyond', 9]]));
  const plan = a.plan(['b1', 'b2', 'b3']);
  assert.equal(plan.get('b1'), 0);
  assert.equal(plan.get('b3'), 2);
  // 'gone' is not in the new table: its slot is free again, as after a removal in the running l4nat.
  assert.equal(plan.get('b2'), 1);
  a.commit(plan);
  assert.deepEqual([...a.entries()].sort(), [['b1', 0], ['b2', 1], ['b3', 2]]);
  assert.equal(a.get('beyond'), undefined, 'a slot past this allocator\'s limit is not taken over');
});

test('the flow table file: default in /run/l4nat named after the TUN and the network namespace, --flow-file / flow_file, none', () => {
  const ns = /\[(\d+)\]/.exec(readlinkSync('/proc/self/ns/net'))![1];
  assert.equal(flowFileOf({ tun: 'l4nat0' }), `/run/l4nat/l4nat0-net${ns}.flows`);
  assert.equal(flowFileOf({ tun: 'l4nat0', flowFile: '/srv/f' }), '/srv/f');
  assert.equal(flowFileOf({ tun: 'l4nat0', flowFile: 'none' }), null);
  assert.equal(parseUpArgs(['--vip', '10.0.0.10', '--port', '80', '--backend', '10.1.0.1:80', '--flow-file', 'none']).flowFile, 'none');
  assert.equal(parseUpArgs(['--vip', '10.0.0.10', '--port', '80', '--backend', '10.1.0.1:80']).flowFile, undefined);
  const yaml = (g: string): string => `global:\n  hash_key: 00112233445566778899aabbccddeeff\n${g}services:\n  - name: web\n    vips: [10.0.0.10]\n    ports: [80]\n    backends: [{address: 10.1.0.1}]\n`;
  const withFile = parseConfig(yaml('  flow_file: /srv/l4nat.flows\n'), 'a.yaml');
  assert.equal(withFile.flowFile, '/srv/l4nat.flows');
  assert.equal(parseConfig(yaml(''), 'a.yaml').flowFile, undefined);
  assert.throws(() => parseConfig(yaml('  flow_file: ""\n'), 'a.yaml'), /flow_file/);
  assert.deepEqual(restartOnlyChanges(parseConfig(yaml(''), 'a.yaml'), withFile), ['global.flow_file'], 'a reload cannot move the flow table');
});

test('a flow table file on a disk file system is named as a problem (write-back and its page faults); tmpfs and ramfs are not', () => {
  const fs = (type: number) => () => ({ type });
  assert.equal(flowFileFsProblem('/run/l4nat/l4nat0.flows', fs(0x01021994)), null, 'tmpfs');
  assert.equal(flowFileFsProblem('/run/l4nat/l4nat0.flows', fs(0x858458f6)), null, 'ramfs');
  assert.match(flowFileFsProblem('/run/l4nat/l4nat0.flows', fs(0xef53))!, /^flow table file \/run\/l4nat\/l4nat0\.flows is on a disk file system \(statfs type 0xef53\), not tmpfs: .*--flow-file none$/);
  assert.equal(flowFileFsProblem('/nonexistent/x.flows'), null, 'a path that cannot be read: opening it says why');
  assert.equal(flowFileFsProblem('/dev/shm'), null, 'the real statfs: /dev/shm is a tmpfs');
});
