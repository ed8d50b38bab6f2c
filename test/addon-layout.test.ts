// The contract between src/ and the addon (no root): the built addon's layout is the one src/ expects; a layout
// that differs anywhere is refused at load with a message naming the difference; and every counter and drop
// reason the addon exports reaches /metrics with its value, and the controller's view of a service or backend
// that has not counted anything yet (its zero counters) has every object counter.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import pino from 'pino';
import { checkLayout, layoutMismatch, type AddonLayout } from '../src/dataplane/addon-layout';
import { parseConfig } from '../src/config/load';
import { Controller, type BalancerLike } from '../src/control/controller';
import { createMetrics } from '../src/admin/metrics';
import { SERVICE_ONLY_COUNTERS } from '../src/dataplane/counter-names';
import { DEFAULT_TIMEOUTS, type ServiceSpec } from '../src/config/model';
import { addonLayout, counterBlockWords, readCounters, type CounterSnapshot } from '../src/dataplane/native';
import { backendKey, type TableOptions } from '../src/dataplane/tables';
import { flowEntry, nativeQuery } from '../src/dataplane/flow-query';
import type { FlowState } from '../src/dataplane/flow-state';

const rawLayout = (): Record<string, unknown> => (require(join(__dirname, '..', '..', 'build', 'Release', 'l4nat.node')) as { layout(): Record<string, unknown> }).layout();

test('the built addon exports the layout src/ expects, and loading it checks it', () => {
  const raw = rawLayout();
  assert.equal(layoutMismatch(raw), null);
  const l = addonLayout();
  assert.ok(Object.isFrozen(l) && Object.isFrozen(l.queueCounters) && Object.isFrozen(l.flowStates));
  assert.deepEqual(l.queueCounters, raw.queueCounters); // in the addon's order: counters are read by position
  assert.equal(l.dropReasons[0], 'none');
  assert.ok(l.queueCounters.includes('probe_rst_sent') && l.objectCounters.includes('probe_resets'));
});

test('a layout that differs from what src/ expects is refused, naming the first difference and the fix', () => {
  const good = rawLayout();
  const cases: Array<[string, (l: Record<string, unknown>) => void, RegExp]> = [
    ['a word count', (l) => (l.svcWords = 9), /svcWords: src\/ expects 11, the addon has 9/],
    ['a flow-state bit', (l) => ((l.flowStates as Record<string, number>).RST = 64), /flowStates\.RST: src\/ expects 32, the addon has 64/],
    ['a flow-state bit src/ does not know', (l) => ((l.flowStates as Record<string, number>).SACK = 64), /flowStates\.SACK: the addon has 64, src\/ does not know it/],
    ['a missing option flag', (l) => delete (l.optFlags as Record<string, number>).ICMP_ECHO, /optFlags\.ICMP_ECHO: src\/ expects 1, the addon has nothing/],
    ['a backend flag', (l) => ((l.bkFlags as Record<string, number>).NO_SECOND_CHANCE = 4), /bkFlags\.NO_SECOND_CHANCE: src\/ expects 2, the addon has 4/],
    ['a hash mode', (l) => ((l.hashModes as Record<string, number>).src = 2), /hashModes\.src: src\/ expects 1, the addon has 2/],
    ['the flow entry size', (l) => (l.flowEntryBytes = 128), /flowEntryBytes: src\/ expects 64, the addon has 128/],
    ['a queue counter src/ reads, gone', (l) => (l.queueCounters = (l.queueCounters as string[]).filter((n) => n !== 'heartbeat_ms')), /queueCounters: src\/ expects "heartbeat_ms" .*the addon has no such counter/],
    ['a queue counter without a metric', (l) => (l.queueCounters as string[]).push('flow_teleported'), /queueCounters: the addon has "flow_teleported", which src\/dataplane\/counter-names\.ts QUEUE_COUNTER_METRICS does not name/],
    ['an object counter without a metric', (l) => (l.objectCounters as string[]).push('retransmits'), /objectCounters: the addon has "retransmits", which src\/dataplane\/counter-names\.ts OBJECT_COUNTER_METRICS does not name/],
    ['a counter twice', (l) => (l.objectCounters as string[]).push('resets'), /objectCounters: the addon has "resets" twice/],
    ['drop reason 0', (l) => (l.dropReasons as string[]).shift(), /dropReasons\[0\]: src\/ expects "none", the addon has "bad_vnet_hdr"/],
    ['no drop reasons', (l) => (l.dropReasons = []), /dropReasons: src\/ expects a list of names, the addon has \[\]/],
    ['an entry src/ does not know', (l) => (l.ringWords = 2), /ringWords: the addon has 2, src\/ does not know it/],
    // the layout the addon exported before it listed its flag bits and optional word counts
    ['an older addon', (l) => { for (const k of ['limitWords', 'aclWords', 'timeoutWords', 'prevRingWords', 'noBackend', 'flowStates', 'bkFlags', 'optFlags', 'hashModes']) delete l[k]; }, /limitWords: src\/ expects 3, the addon has nothing/],
  ];
  for (const [what, change, re] of cases) {
    const l = structuredClone(good);
    change(l);
    assert.throws(() => checkLayout(l), (e: Error) => {
      assert.match(e.message, re, what);
      assert.match(e.message, /^l4nat addon layout: .*rebuild it \(npx node-gyp rebuild\)/, what);
      return true;
    });
  }
  assert.throws(() => checkLayout(undefined), /src\/ expects an object from layout\(\), the addon has nothing/);
});

test('every counter and drop reason the addon exports reaches /metrics with its value, and zero counters have them all', async () => {
  const layout: AddonLayout = addonLayout();
  const shape = { queues: 1, maxServices: 1, maxBackends: 2 };
  const counterWords = counterBlockWords(layout, shape) + 3; // a block may be padded: the stride is counterWords
  const words = new BigUint64Array(counterWords);
  // every word its own value, so that each metric sample can be traced back to the counter it was read from
  for (let i = 0; i < counterWords; i++) words[i] = BigInt(1000 + 7 * i);
  const nq = layout.queueCounters.length;
  const nd = layout.dropReasons.length;
  const no = layout.objectCounters.length;
  const backend1 = nq + nd + (shape.maxServices + 1) * no;
  words.fill(0n, backend1, backend1 + no); // backend slot 1 has not counted anything
  const snap: CounterSnapshot = readCounters(words, layout, { ...shape, counterWords });
  assert.equal(snap.backends.has(1), false);

  const slots = new Map<string, number>();
  const bal: BalancerLike = {
    tableOptions: { hashKey: Buffer.alloc(16), maglevSize: 7, timeouts: { ...DEFAULT_TIMEOUTS }, icmpEcho: true, icmpTranslate: true } as TableOptions,
    dp: { counters: () => snap, flowCount: () => 0 },
    async setServices(services: ServiceSpec[]) {
      for (const s of services) for (const b of s.backends) if (!slots.has(backendKey(s, b))) slots.set(backendKey(s, b), slots.size);
      return { changedSlots: {} };
    },
    backendSlot: (k) => slots.get(k),
    serviceSlot: () => 0,
  };
  const opts = parseConfig('admin: {port: 0}\nservices:\n  - name: web\n    vips: [10.0.0.10]\n    ports: [80]\n    backends: ["10.0.1.11:8080", "10.0.1.12:8080"]\n', 'x.yaml');
  const ctrl = new Controller(bal, opts, pino({ level: 'silent' }));
  await ctrl.start();
  try {
    const view = ctrl.view();
    assert.deepEqual(Object.keys(view.services[0].backends[1].counters).sort(), [...layout.objectCounters].sort(), 'zero counters of a backend that counted nothing');

    const text = await createMetrics({ ctrl, counters: () => snap, flowCount: () => 0, flowCapacity: 1024 }).metrics();
    const samples = text.split('\n').filter((l) => l.startsWith('l4nat_'));
    const sample = (labels: RegExp, v: number): string | undefined => samples.find((l) => labels.test(l) && l.endsWith(` ${v}`));
    const missing: string[] = [];
    layout.queueCounters.forEach((name, i) => {
      if (name === 'heartbeat_ms') {
        if (!samples.some((l) => l.startsWith('l4nat_worker_heartbeat_age_seconds{queue="0"}'))) missing.push(name);
      } else if (!sample(/\{queue="0"\}/, 1000 + 7 * i)) missing.push(`queue counter ${name}`);
    });
    layout.dropReasons.forEach((name, i) => {
      if (name !== 'none' && !sample(new RegExp(`^l4nat_dropped_packets_total\\{reason="${name}"\\}`), 1000 + 7 * (nq + i))) missing.push(`drop reason ${name}`);
    });
    layout.objectCounters.forEach((name, k) => {
      if (!sample(/^l4nat_service_\w+\{service="10\.0\.0\.10:80\/tcp",name="web"\}/, 1000 + 7 * (nq + nd + k))) missing.push(`service counter ${name}`);
      if (!SERVICE_ONLY_COUNTERS.has(name) && !sample(/^l4nat_backend_\w+\{service="10\.0\.0\.10:80\/tcp",backend="10\.0\.1\.11:8080\/tcp",/, 1000 + 7 * (nq + nd + no + k))) missing.push(`backend counter ${name}`);
    });
    assert.deepEqual(missing, [], 'exported by the addon but not published with its value');
    // the backend that counted nothing is published at 0 under every object counter's metric
    const zeroBk = samples.filter((l) => /^l4nat_backend_\w+_total\{service="10\.0\.0\.10:80\/tcp",backend="10\.0\.1\.12:8080\/tcp",/.test(l));
    assert.equal(zeroBk.length, no - SERVICE_ONLY_COUNTERS.size, 'every object counter a backend counts');
    assert.ok(!samples.some((l) => /^l4nat_backend_full_refusals_total/.test(l)), 'a counter only services count is not published per backend');
    assert.ok(zeroBk.every((l) => l.endsWith(' 0')), zeroBk.join('\n'));
  } finally {
    ctrl.stop();
  }
});

test('flow states travel by the addon\'s numbers: a filter\'s state bits and a listed entry\'s state name', () => {
  const layout = addonLayout();
  assert.deepEqual(layout.flowClasses, { SYN_SENT: 0, SYN_RECV: 1, ESTABLISHED: 2, FIN_WAIT: 3, CLOSE: 4, UDP: 5 });
  // another order in the addon (a class added in the middle) is refused at load, not misread
  const l = structuredClone(rawLayout());
  (l.flowClasses as Record<string, number>).CLOSE = 5;
  (l.flowClasses as Record<string, number>).UDP = 4;
  assert.throws(() => checkLayout(l), /flowClasses\.CLOSE: src\/ expects 4, the addon has 5/);
  assert.deepEqual(nativeQuery({ states: ['ESTABLISHED', 'UDP'], backendSlot: 3 }, 1024, layout), { backend: 3, states: (1 << 2) | (1 << 5) });
  assert.deepEqual(nativeQuery({}, 1024, layout), {}, 'no states: no condition on them');
  assert.throws(() => nativeQuery({ states: ['LISTEN' as FlowState] }, 1024, layout), /flows: state must be one of SYN_SENT, SYN_RECV, ESTABLISHED, FIN_WAIT, CLOSE, UDP, got "LISTEN"/);
  const entry = flowEntry({ client: new Uint8Array([10, 0, 0, 1]), vip: new Uint8Array([10, 0, 0, 2]), cport: 40000, vport: 80, proto: 6, backend: 1, service: 0, state: 0x24, stateClass: 4, idle: 3, age: 8, learned: 0 });
  assert.equal(entry.ageSeconds, 8, 'the age');
  assert.equal(entry.sync, undefined, 'neither logged nor learned: no sync marker');
  const raw = { client: new Uint8Array([10, 0, 0, 1]), vip: new Uint8Array([10, 0, 0, 2]), cport: 40000, vport: 80, proto: 6, backend: 1, service: 0, stateClass: 2, idle: 3, age: 8 };
  assert.equal(flowEntry({ ...raw, state: 0x47, learned: 1 }).sync, 'learned', 'learned from a peer');
  assert.equal(flowEntry({ ...raw, state: 0x47, learned: 0 }).sync, 'logged', 'SYNCED without learned: logged for the peers');
  assert.equal(entry.state, 'CLOSE', 'the name of the class the addon gave, whatever the bits');
});
