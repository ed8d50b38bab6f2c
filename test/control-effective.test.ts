// The effective table (src/control/effective.ts): configured weights, 0 for a drained or down backend, the
// service's on_all_down when no eligible backend is healthy, and empty rings while stopping.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { effectiveTable, type EffectiveInputs } from '../src/control/effective';
import type { BackendRuntime, Plan } from '../src/control/state';
import type { ServiceSpec } from '../src/config/model';
import { servicesOf, webKey } from './rigs/control-fakes';

const web = (onAllDown: 'drop' | 'keep-last', extra = ''): string => `
services:
  - name: web
    vips: [10.0.0.10]
    ports: [80]
    on_all_down: ${onAllDown}
    backends: ["10.0.1.11:8080", {address: 10.0.1.12, port: 8080, weight: 3}, {address: 10.0.1.13, port: 8080, weight: 0}]
${extra}`;

/** A plan of `yaml`'s services where `drained` backends drain; `down` ones are unhealthy (by key). */
function planOf(yaml: string, drained: string[] = []): Plan {
  const services = servicesOf(yaml);
  const runtime = new Map<string, BackendRuntime>();
  for (const s of services) {
    for (const b of s.backends) {
      const key = `${s.vip}:${s.port}/${s.proto}|${b.addr}:${b.port}/${s.proto}`;
      runtime.set(key, { key, source: 'config', ...(drained.includes(key) ? { drain: { since: 0, lastPackets: 0, lastPacketAt: 0 } } : {}) });
    }
  }
  return { services, runtime };
}

const inputs = (down: string[] = [], over: Partial<EffectiveInputs> = {}): EffectiveInputs => ({
  healthy: (rt) => !rt || !down.includes(rt.key),
  lastWeights: new Map(),
  stopping: false,
  now: 0,
  ...over,
});

const weights = (specs: ServiceSpec[]): Array<[string, number, boolean]> => specs[0].backends.map((b) => [b.addr, b.weight, b.down ?? false]);

const B11 = webKey('10.0.1.11:8080');
const B12 = webKey('10.0.1.12:8080');
const B13 = webKey('10.0.1.13:8080');

test('healthy backends keep their configured weight; a drained one is 0 and not "down"; a down one is 0 and marked down', () => {
  let t = effectiveTable(planOf(web('drop')), inputs());
  assert.deepEqual(weights(t.specs), [['10.0.1.11', 1, false], ['10.0.1.12', 3, false], ['10.0.1.13', 0, false]]);
  assert.deepEqual([...t.weights.get('10.0.0.10:80/tcp')!], [['10.0.1.11:8080/tcp', 1], ['10.0.1.12:8080/tcp', 3], ['10.0.1.13:8080/tcp', 0]]);
  assert.deepEqual([...t.allDown], []);
  t = effectiveTable(planOf(web('drop'), [B11]), inputs([B12]));
  assert.deepEqual(weights(t.specs), [['10.0.1.11', 0, false], ['10.0.1.12', 0, true], ['10.0.1.13', 0, false]], 'drained: not a second-chance target question; down: marked');
  assert.deepEqual([...t.allDown], ['10.0.0.10:80/tcp'], 'no eligible backend healthy');
});

test('a weight-0 backend is not eligible: down, it is not marked, and it does not keep the service from being all down', () => {
  const t = effectiveTable(planOf(web('drop')), inputs([B11, B12, B13]));
  assert.deepEqual(weights(t.specs), [['10.0.1.11', 0, true], ['10.0.1.12', 0, true], ['10.0.1.13', 0, false]]);
  assert.deepEqual([...t.allDown], ['10.0.0.10:80/tcp']);
});

test('a service whose backends are all drained is not "all down" (nothing eligible to be down)', () => {
  const t = effectiveTable(planOf(web('drop'), [B11, B12]), inputs());
  assert.deepEqual(weights(t.specs).map((w) => w[1]), [0, 0, 0]);
  assert.deepEqual([...t.allDown], []);
});

test('all down, drop: an empty ring', () => {
  const last = new Map([['10.0.0.10:80/tcp', new Map([['10.0.1.11:8080/tcp', 1], ['10.0.1.12:8080/tcp', 3]])]]);
  const t = effectiveTable(planOf(web('drop')), inputs([B11, B12], { lastWeights: last }));
  assert.deepEqual(weights(t.specs).map((w) => w[1]), [0, 0, 0]);
  assert.ok(t.allDown.has('10.0.0.10:80/tcp'));
});

test('all down, keep-last: the weights last published, except a drained backend; no last ring: empty', () => {
  const last = new Map([['10.0.0.10:80/tcp', new Map([['10.0.1.11:8080/tcp', 1], ['10.0.1.12:8080/tcp', 3]])]]);
  let t = effectiveTable(planOf(web('keep-last')), inputs([B11, B12], { lastWeights: last }));
  assert.deepEqual(weights(t.specs), [['10.0.1.11', 1, true], ['10.0.1.12', 3, true], ['10.0.1.13', 0, false]], 'kept, still marked down');
  assert.deepEqual([...t.weights.get('10.0.0.10:80/tcp')!.values()], [1, 3, 0], 'what is published is what keep-last keeps next time');
  assert.ok(t.allDown.has('10.0.0.10:80/tcp'), 'still reported all down');
  t = effectiveTable(planOf(web('keep-last'), [B11]), inputs([B12], { lastWeights: last }));
  assert.deepEqual(weights(t.specs).map((w) => w[1]), [0, 3, 0], 'a drain still wins');
  t = effectiveTable(planOf(web('keep-last')), inputs([B11, B12]));
  assert.deepEqual(weights(t.specs).map((w) => w[1]), [0, 0, 0]);
});

test('stopping: every ring empty, healthy or not', () => {
  const t = effectiveTable(planOf(web('keep-last')), inputs([], { stopping: true }));
  assert.deepEqual(weights(t.specs).map((w) => w[1]), [0, 0, 0]);
  assert.deepEqual([...t.weights.get('10.0.0.10:80/tcp')!.values()], [0, 0, 0]);
  assert.deepEqual([...t.allDown], []);
});

test('services are independent, and protections and timeouts ride along with the spec', () => {
  const yaml = `${web('drop')}
  - name: dns
    vips: [10.0.0.53]
    ports: ["53/udp"]
    timeouts: {udp: 9}
    new_flow_rate: {rate: 5, burst: 10}
    allow_sources: [192.0.2.0/24]
    deny_sources: [192.0.2.1/32]
    backends: ["10.0.2.1:53"]
`;
  const t = effectiveTable(planOf(yaml), inputs([B11, B12]));
  assert.deepEqual([...t.allDown], ['10.0.0.10:80/tcp']);
  const dns = t.specs[1] as ServiceSpec & Record<string, unknown>;
  assert.deepEqual(dns.backends.map((b) => b.weight), [1]);
  assert.deepEqual([dns.timeouts, dns.newFlowRate, dns.allowSources, dns.denySources], [{ udp: 9 }, { rate: 5, burst: 10 }, ['192.0.2.0/24'], ['192.0.2.1/32']]);
  assert.ok(!('timeouts' in t.specs[0]) && !('newFlowRate' in t.specs[0]), 'none where the service has none');
});
