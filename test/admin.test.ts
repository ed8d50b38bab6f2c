// The admin API and the controller behind it, against a fake data plane (no root): reads, writes with
// schema validation (a rejected write publishes nothing), drain and its end, reload (good, bad,
// restart-only), on_all_down, OpenAPI, /metrics, and authentication (bearer token, TLS, mTLS).
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import pino from 'pino';
import { createAdminServer, listenAdmin } from '../src/admin/server';
import { prepareAdminAuth } from '../src/admin/access';
import { loadConfigFile, parseConfig } from '../src/config/load';
import { Controller, DRAIN_QUIET_MS, type BalancerLike } from '../src/control/controller';
import type { ProbeFn } from '../src/health/checker';
import { createMetrics } from '../src/admin/metrics';
import type { SyncStats } from '../src/cluster/sync-stats';
import { formatSync } from '../src/cli/status';
import { DEFAULT_TIMEOUTS, type ServiceSpec } from '../src/config/model';
import type { CounterMap, CounterSnapshot, FlowEntry, FlowFilter } from '../src/dataplane/native';
import { backendKey, type ServiceProtections, type TableOptions } from '../src/dataplane/tables';
import type { PublishResult } from '../src/control/balancer';

const log = pino({ level: 'silent' });
const dir = mkdtempSync(join(tmpdir(), 'l4nat-admin-'));
after(() => rmSync(dir, { recursive: true, force: true }));

class FakeBalancer implements BalancerLike {
  published: ServiceSpec[][] = [];
  tableOptions: TableOptions = { hashKey: Buffer.alloc(16), maglevSize: 7, timeouts: { ...DEFAULT_TIMEOUTS }, icmpEcho: true, icmpTranslate: true };
  fail = false;
  private slots = new Map<string, number>();
  backendCounters = new Map<number, CounterMap>();
  flowEntries: FlowEntry[] = [];
  deleted: FlowFilter[] = [];
  readonly dp = {
    counters: (): CounterSnapshot => ({ total: { rx_packets: 1 }, drops: { no_backend: 0 }, perQueue: [{ rx_packets: 1 }], heartbeatsMs: [0], services: new Map(), backends: this.backendCounters }),
    flowCount: (): number => 0,
    flows: (f: FlowFilter): FlowEntry[] =>
      this.flowEntries
        .filter((e) => (f.backendSlot === undefined || e.backendSlot === f.backendSlot) && (f.client === undefined || e.client === f.client))
        .filter((e) => (f.serviceSlot === undefined || e.serviceSlot === f.serviceSlot) && (!f.states?.length || f.states.includes(e.state)))
        .slice(0, f.limit ?? 1000),
    deleteFlows: (f: FlowFilter): number => {
      this.deleted.push(f);
      return this.dp.flows(f).length;
    },
  };

  async setServices(services: ServiceSpec[], t?: TableOptions): Promise<PublishResult> {
    if (this.fail) throw new Error('publish refused');
    this.published.push(services);
    if (t) this.tableOptions = t;
    for (const s of services) for (const b of s.backends) if (!this.slots.has(backendKey(s, b))) this.slots.set(backendKey(s, b), this.slots.size);
    return { changedSlots: {} };
  }

  get last(): ServiceSpec[] {
    return this.published[this.published.length - 1];
  }

  weights(): Record<string, number> {
    return Object.fromEntries(this.last.flatMap((s) => s.backends.map((b) => [`${b.addr}:${b.port}`, b.weight])));
  }

  backendSlot(key: string): number | undefined {
    return this.slots.get(key);
  }

  serviceSlot(): number | undefined {
    return 0;
  }
}

// Every API has authentication (the default is a token l4nat creates; here one in the test's directory).
const TOKEN = 'admin-test-token-0123456789';
const TOKEN_FILE = join(dir, 'admin.token');
writeFileSync(TOKEN_FILE, `${TOKEN}\n`, { mode: 0o600 });
const AUTH = { authorization: `Bearer ${TOKEN}` };

const SERVICES = `
services:
  - name: web
    vips: [10.0.0.10]
    ports: [80]
    backends: ["10.0.1.11:8080", {address: 10.0.1.12, port: 8080, name: two}]
  - name: dns
    vips: [10.0.0.53]
    ports: ["53/udp"]
    backends: ["10.0.2.1:53"]
`;
const CONFIG = `admin: {token_file: ${TOKEN_FILE}}\n${SERVICES}`;
const WEB = encodeURIComponent('10.0.0.10:80/tcp');
const B1 = encodeURIComponent('10.0.1.11:8080/tcp');

async function setup(text = CONFIG, probeFn?: ProbeFn): Promise<{ bal: FakeBalancer; ctrl: Controller; app: Awaited<ReturnType<typeof createAdminServer>>; file: string }> {
  const file = join(dir, `c${Math.random().toString(16).slice(2)}.yaml`);
  writeFileSync(file, /^admin:/m.test(text) ? text : `admin: {token_file: ${TOKEN_FILE}}\n${text}`);
  const opts = loadConfigFile(file);
  const bal = new FakeBalancer();
  const ctrl = new Controller(bal, opts, log, probeFn);
  await ctrl.start();
  const metrics = createMetrics({ ctrl, counters: () => bal.dp.counters(), flowCount: () => 0, flowCapacity: 1024 });
  const app = await createAdminServer({ ctrl, admin: opts.admin, log, metrics });
  return { bal, ctrl, app, file };
}

describe('admin API (loopback, bearer token)', () => {
  test('GET /v1/services lists services, backends with state, weights and counters', async () => {
    const { app, ctrl } = await setup();
    const r = await app.inject({ headers: AUTH, method: 'GET', url: '/v1/services' });
    assert.equal(r.statusCode, 200);
    const v = r.json();
    assert.deepEqual(v.services.map((s: { id: string }) => s.id), ['10.0.0.10:80/tcp', '10.0.0.53:53/udp']);
    const b = v.services[0].backends[1];
    assert.deepEqual([b.id, b.name, b.state, b.weight, b.effectiveWeight, b.source], ['10.0.1.12:8080/tcp', 'two', 'up', 1, 1, 'config']);
    assert.ok('packets_in' in b.counters);
    assert.ok('drops' in v.dataplane);
    const one = await app.inject({ headers: AUTH, method: 'GET', url: `/v1/services/${WEB}/backends/${B1}` });
    assert.equal(one.statusCode, 200);
    assert.equal(one.json().id, '10.0.1.11:8080/tcp');
    assert.equal((await app.inject({ headers: AUTH, method: 'GET', url: `/v1/services/${encodeURIComponent('10.9.9.9:1/tcp')}` })).statusCode, 404);
    ctrl.stop();
  });

  test('POST adds a backend (201, published); invalid bodies get 400 and publish nothing', async () => {
    const { app, bal, ctrl } = await setup();
    const n = bal.published.length;
    for (const [body, re] of [
      [{ backend: '10.0.1.13:8080', weight: 70000 }, /weight must be <= 65535/],
      [{ backend: '10.0.1.13:8080', max_flows: -1 }, /max_flows must be >= 1/],
      [{ backend: '10.0.1.13:8080', max_flows: 2.5 }, /max_flows must be integer/],
      [{ backend: '10.0.1.13:8080', colour: 'red' }, /must NOT have additional properties/],
      [{ weight: 1 }, /must have required property 'backend'/],
      [{ backend: 13 }, /backend must be string/],
      [{ backend: 'example.com:80' }, /not an IP address/],
      [{ backend: '[fd00::1]:8080' }, /is IPv6 but service 10\.0\.0\.10:80\/tcp is IPv4/],
      [{ backend: '10.0.2.1:53' }, null],
    ] as Array<[object, RegExp | null]>) {
      const r = await app.inject({ headers: AUTH, method: 'POST', url: `/v1/services/${WEB}/backends`, payload: body });
      if (re === null) continue;
      assert.equal(r.statusCode, 400, `${JSON.stringify(body)} -> ${r.statusCode} ${r.body}`);
      assert.match(r.json().error, re);
    }
    // 10.0.2.1:53 is tcp here and udp in dns: allowed (different protocol), so one publish happened.
    assert.equal(bal.published.length, n + 1);
    const dup = await app.inject({ headers: AUTH, method: 'POST', url: `/v1/services/${WEB}/backends`, payload: { backend: '10.0.1.11:8080' } });
    assert.equal(dup.statusCode, 409);
    const ok = await app.inject({ headers: AUTH, method: 'POST', url: `/v1/services/${WEB}/backends`, payload: { backend: '10.0.1.13', weight: 3, name: 'three' } });
    assert.equal(ok.statusCode, 201, ok.body);
    assert.equal(bal.weights()['10.0.1.13:80'], 3, 'port defaults to the service port');
    const added = ok.json().services[0].backends.find((b: { id: string }) => b.id === '10.0.1.13:80/tcp');
    assert.deepEqual([added.name, added.source], ['three', 'api']);
    const limited = await app.inject({ headers: AUTH, method: 'POST', url: `/v1/services/${WEB}/backends`, payload: { backend: '10.0.1.14', max_flows: 50 } });
    assert.equal(limited.statusCode, 201, limited.body);
    const spec = bal.published[bal.published.length - 1].find((s) => s.port === 80 && s.proto === 'tcp');
    assert.equal(spec?.backends.find((b) => b.addr === '10.0.1.14')?.maxFlows, 50, 'max_flows reaches the data plane');
    ctrl.stop();
  });

  test('POST refuses, naming it, a backend that is a VIP, an address packets cannot be forwarded to, or the probe source; nothing is published', async () => {
    const { app, bal, ctrl } = await setup();
    bal.tableOptions = { ...bal.tableOptions, probeSource: { ipv4: '192.0.2.254', ipv6: '2001:db8:ffff::fe' } };
    const n = bal.published.length;
    for (const [backend, re] of [
      ['10.0.0.53:8080', /backend 10\.0\.0\.53 of service 10\.0\.0\.10:80\/tcp is the VIP of service 10\.0\.0\.53:53\/udp: packets to it would come back into l4nat's TUN/],
      ['10.0.0.10:8080', /is the VIP of service 10\.0\.0\.10:80\/tcp/],
      ['127.0.0.1:8080', /backend 127\.0\.0\.1 of service 10\.0\.0\.10:80\/tcp is a loopback address/],
      ['0.0.0.0:8080', /is an unspecified/],
      ['255.255.255.255:8080', /is the broadcast address/],
      ['224.0.0.1:8080', /is a multicast address/],
      ['192.0.2.254:8080', /is the source address of l4nat's dataplane health probes/],
    ] as Array<[string, RegExp]>) {
      const r = await app.inject({ headers: AUTH, method: 'POST', url: `/v1/services/${WEB}/backends`, payload: { backend } });
      assert.equal(r.statusCode, 400, `${backend} -> ${r.statusCode} ${r.body}`);
      assert.match(r.json().error, re);
    }
    assert.equal(bal.published.length, n, 'nothing published');
    assert.equal(ctrl.current[0].backends.length, 2);
    ctrl.stop();
  });

  test('PATCH weight and max_flows, DELETE, and a publish failure that changes nothing', async () => {
    const { app, bal, ctrl } = await setup();
    let r = await app.inject({ headers: AUTH, method: 'PATCH', url: `/v1/services/${WEB}/backends/${B1}`, payload: { weight: 5 } });
    assert.equal(r.statusCode, 200);
    assert.equal(bal.weights()['10.0.1.11:8080'], 5);
    r = await app.inject({ headers: AUTH, method: 'PATCH', url: `/v1/services/${WEB}/backends/${B1}`, payload: { weight: '5' } });
    assert.equal(r.statusCode, 400, 'no type coercion');
    // max_flows at run time: set (with the weight, one change), lifted with null; bad bodies refused, nothing changed
    const limitOf = (v: { services: Array<{ id: string; backends: Array<{ id: string; maxFlows: number | null }> }> }): number | null | undefined =>
      v.services.find((s) => s.id === decodeURIComponent(WEB))?.backends.find((b) => b.id === decodeURIComponent(B1))?.maxFlows;
    r = await app.inject({ headers: AUTH, method: 'PATCH', url: `/v1/services/${WEB}/backends/${B1}`, payload: { weight: 6, max_flows: 100 } });
    assert.equal(r.statusCode, 200, r.body);
    assert.deepEqual([limitOf(r.json()), bal.weights()['10.0.1.11:8080']], [100, 6]);
    for (const payload of [{}, { max_flows: 0 }, { max_flows: '5' }, { max_flows: 2 ** 28 + 1 }, { maxFlows: 5 }]) {
      r = await app.inject({ headers: AUTH, method: 'PATCH', url: `/v1/services/${WEB}/backends/${B1}`, payload });
      assert.equal(r.statusCode, 400, JSON.stringify(payload));
      assert.match(r.json().error, /body/, JSON.stringify(payload));
    }
    assert.equal(limitOf(ctrl.view()), 100, 'the refused bodies changed nothing');
    r = await app.inject({ headers: AUTH, method: 'PATCH', url: `/v1/services/${WEB}/backends/${B1}`, payload: { max_flows: null } });
    assert.deepEqual([r.statusCode, limitOf(r.json())], [200, null]);
    bal.fail = true;
    r = await app.inject({ headers: AUTH, method: 'DELETE', url: `/v1/services/${WEB}/backends/${B1}` });
    assert.equal(r.statusCode, 500);
    bal.fail = false;
    assert.equal(ctrl.current[0].backends.length, 2, 'the failed delete changed nothing');
    r = await app.inject({ headers: AUTH, method: 'DELETE', url: `/v1/services/${WEB}/backends/${B1}` });
    assert.equal(r.statusCode, 200);
    assert.deepEqual(Object.keys(bal.weights()).sort(), ['10.0.1.12:8080', '10.0.2.1:53']);
    ctrl.stop();
  });

  test('drain takes the backend out of the ring, reports done once it has no live flow, undrain puts it back', async () => {
    const { app, bal, ctrl } = await setup();
    const slot = bal.backendSlot(`10.0.0.10:80/tcp|10.0.1.11:8080/tcp`)!;
    const flow: FlowEntry = { client: '192.0.2.1', clientPort: 1000, vip: '10.0.0.10', vipPort: 80, proto: 'tcp', backendSlot: slot, serviceSlot: 0, state: 'ESTABLISHED', idleSeconds: 0, ageSeconds: 0 };
    bal.flowEntries = [flow];
    const r = await app.inject({ headers: AUTH, method: 'POST', url: `/v1/services/${WEB}/backends/${B1}/drain` });
    assert.equal(r.statusCode, 202);
    assert.equal(r.json().state, 'draining');
    assert.equal(bal.weights()['10.0.1.11:8080'], 0);
    assert.equal(bal.weights()['10.0.1.12:8080'], 1);
    ctrl.sampleDrains(Date.now() + 60_000); // an open connection keeps it draining, however quiet
    let v = (await app.inject({ headers: AUTH, method: 'GET', url: `/v1/services/${WEB}/backends/${B1}` })).json();
    assert.deepEqual([v.state, v.drain.liveFlows, v.drain.done], ['draining', 1, false]);
    bal.flowEntries = [{ ...flow, state: 'CLOSE' }]; // both FINs seen: ended, the entry lingers
    ctrl.sampleDrains();
    v = (await app.inject({ headers: AUTH, method: 'GET', url: `/v1/services/${WEB}/backends/${B1}` })).json();
    assert.deepEqual([v.state, v.drain.done, v.drain.doneBy], ['drained', true, 'no live flows left']);
    const u = await app.inject({ headers: AUTH, method: 'POST', url: `/v1/services/${WEB}/backends/${B1}/undrain` });
    assert.equal(u.json().state, 'up');
    assert.equal(bal.weights()['10.0.1.11:8080'], 1);
    ctrl.stop();
  });

  test('drain with a deadline: validated (400, nothing changed), shown in the drain view; again for a drain under way, it moves the deadline', async () => {
    const { app, bal, ctrl } = await setup();
    const url = `/v1/services/${WEB}/backends/${B1}/drain`;
    const post = (body: unknown) => app.inject({ headers: { ...AUTH, 'content-type': 'application/json' }, method: 'POST', url, payload: JSON.stringify(body) });
    for (const [body, why] of [
      [{ deadline: 0 }, /body\/deadline must be >= 1/],
      [{ deadline: 'soon' }, /body\/deadline must be integer/],
      [{ deadline: 1.5 }, /body\/deadline must be integer/],
      [{ wait: 3 }, /must NOT have additional properties/],
    ] as const) {
      const r = await post(body);
      assert.equal(r.statusCode, 400, JSON.stringify(body));
      assert.match(r.json().error, why);
      assert.equal(bal.weights()['10.0.1.11:8080'], 1, 'still in the ring');
    }
    const before = Date.now();
    let r = await post({ deadline: 30 });
    assert.equal(r.statusCode, 202);
    const d = r.json().drain;
    assert.equal(r.json().state, 'draining');
    const at = Date.parse(d.deadline);
    assert.ok(at >= before + 30_000 && at <= Date.now() + 30_000, d.deadline);
    assert.deepEqual([d.removedAtDeadline, d.estimatedDoneAt, d.oldestFlowSeconds], [null, d.deadline, null], 'no count yet: the deadline is the estimate');
    r = await post({ deadline: 600 });
    assert.ok(Date.parse(r.json().drain.deadline) >= before + 600_000, 'moved');
    ctrl.stop();
  });

  test('without flow listing in the data plane, a drain is done once the backend\'s packet counters are still for 5 s', async () => {
    const { app, bal, ctrl } = await setup();
    (bal.dp as { flows?: unknown }).flows = undefined;
    const slot = bal.backendSlot(`10.0.0.10:80/tcp|10.0.1.11:8080/tcp`)!;
    bal.backendCounters.set(slot, { packets_in: 10, bytes_in: 0, packets_out: 10, bytes_out: 0, new_flows: 1 });
    await app.inject({ headers: AUTH, method: 'POST', url: `/v1/services/${WEB}/backends/${B1}/drain` });
    const t0 = Date.now();
    bal.backendCounters.set(slot, { packets_in: 12, bytes_in: 0, packets_out: 11, bytes_out: 0, new_flows: 1 });
    ctrl.sampleDrains(t0 + 1000); // traffic still moving
    ctrl.sampleDrains(t0 + 1000 + DRAIN_QUIET_MS - 1);
    assert.equal((await app.inject({ headers: AUTH, method: 'GET', url: `/v1/services/${WEB}/backends/${B1}` })).json().drain.done, false);
    ctrl.sampleDrains(t0 + 1000 + DRAIN_QUIET_MS);
    const v = (await app.inject({ headers: AUTH, method: 'GET', url: `/v1/services/${WEB}/backends/${B1}` })).json();
    assert.deepEqual([v.state, v.drain.done, v.drain.doneBy], ['drained', true, 'no packets for 5 s']);
    ctrl.stop();
  });

  test('reload: a good file applies (only the changed service), a bad one is rejected and changes nothing, restart-only settings are refused', async () => {
    const { app, bal, ctrl, file } = await setup();
    await app.inject({ headers: AUTH, method: 'POST', url: `/v1/services/${WEB}/backends/${B1}/drain` });
    writeFileSync(file, CONFIG.replace('"10.0.2.1:53"', '"10.0.2.1:53", "10.0.2.2:53"'));
    let r = await app.inject({ headers: AUTH, method: 'POST', url: '/v1/reload' });
    assert.equal(r.statusCode, 200, r.body);
    assert.deepEqual([r.json().added, r.json().removed, r.json().changed], [[], [], ['10.0.0.53:53/udp']]);
    assert.equal(bal.weights()['10.0.2.2:53'], 1);
    assert.equal(bal.weights()['10.0.1.11:8080'], 0, 'a drain survives a reload');
    const before = bal.published.length;
    writeFileSync(file, CONFIG.replace('ports: [80]', 'ports: [99999]'));
    r = await app.inject({ headers: AUTH, method: 'POST', url: '/v1/reload' });
    assert.equal(r.statusCode, 400);
    assert.match(r.json().error, /services\[0\]\.ports\[0\]: got 99999/);
    assert.equal(bal.published.length, before, 'nothing published');
    assert.equal(ctrl.current[1].backends.length, 2);
    writeFileSync(file, `global: {queues: 3}\n${CONFIG}`);
    r = await app.inject({ headers: AUTH, method: 'POST', url: '/v1/reload' });
    assert.equal(r.statusCode, 400);
    assert.match(r.json().error, /take effect only at start: global\.queues/);
    assert.deepEqual(ctrl.reloads, { ok: 1, failed: 2 });
    ctrl.stop();
  });

  test('OpenAPI description is served and names the write routes', async () => {
    const { app, ctrl } = await setup();
    const r = await app.inject({ headers: AUTH, method: 'GET', url: '/openapi.json' });
    assert.equal(r.statusCode, 200);
    const doc = r.json();
    assert.equal(doc.openapi, '3.0.3');
    for (const p of ['/v1/services', '/v1/services/{service}/backends', '/v1/services/{service}/backends/{backend}', '/v1/services/{service}/backends/{backend}/drain', '/v1/reload', '/metrics']) {
      assert.ok(p in doc.paths, `${p} missing from ${Object.keys(doc.paths).join(', ')}`);
    }
    assert.ok(doc.paths['/v1/services/{service}/backends'].post.requestBody);
    ctrl.stop();
  });

  test('/metrics: Prometheus text with backend state, weights and data-plane counters', async () => {
    const { app, ctrl } = await setup();
    const r = await app.inject({ headers: AUTH, method: 'GET', url: '/metrics' });
    assert.equal(r.statusCode, 200);
    assert.match(r.headers['content-type'] as string, /text\/plain/);
    assert.match(r.body, /^l4nat_up 1$/m);
    assert.match(r.body, /^l4nat_backend_up\{service="10\.0\.0\.10:80\/tcp",backend="10\.0\.1\.12:8080\/tcp",backend_name="two"\} 1$/m);
    assert.match(r.body, /^l4nat_backend_effective_weight\{.*backend="10\.0\.1\.11:8080\/tcp".*\} 1$/m);
    assert.match(r.body, /^l4nat_rx_packets_total\{queue="0"\} 1$/m);
    assert.match(r.body, /^l4nat_dropped_packets_total\{reason="no_backend"\} 0$/m);
    assert.match(r.body, /^# TYPE l4nat_backend_packets_in_total counter$/m);
    ctrl.stop();
  });
});

describe('cluster mode: backend changes come from the config file on every host', () => {
  // One host of a cluster (peers on loopback: no TLS needed); the same services as above.
  const CLUSTER = `${CONFIG}cluster:\n  listen: 127.0.0.1\n  port: 19181\n  peers: ["127.0.0.2:19181", "127.0.0.3:19181"]\n`;

  test('every backend write is refused (409) naming the config file and reload, and changes nothing; reads, reload and flow deletes still work', async () => {
    const { app, bal, ctrl, file } = await setup(CLUSTER);
    const before = bal.published.length;
    const view = JSON.stringify(ctrl.view());
    const writes: Array<[string, string, object | undefined]> = [
      ['POST', `/v1/services/${WEB}/backends`, { backend: '10.0.1.13:8080' }],
      ['POST', `/v1/services/${encodeURIComponent('10.9.9.9:1/tcp')}/backends`, { backend: '10.0.1.13:8080' }], // refused before the lookup
      ['PATCH', `/v1/services/${WEB}/backends/${B1}`, { weight: 5 }],
      ['DELETE', `/v1/services/${WEB}/backends/${B1}`, undefined],
      ['POST', `/v1/services/${WEB}/backends/${B1}/drain`, undefined],
      ['POST', `/v1/services/${WEB}/backends/${B1}/drain`, { deadline: 30 }],
      ['POST', `/v1/services/${WEB}/backends/${B1}/undrain`, undefined],
      ['POST', '/v1/plan', { op: 'weight', service: '10.0.0.10:80/tcp', backend: '10.0.1.11:8080/tcp', weight: 5 }],
    ];
    for (const [method, url, payload] of writes) {
      const r = await app.inject({ headers: AUTH, method: method as 'POST', url, ...(payload ? { payload } : {}) });
      assert.equal(r.statusCode, 409, `${method} ${url}: ${r.body}`);
      const e = r.json().error as string;
      assert.match(e, /one host of a cluster \(cluster\.peers names 2 other hosts\): backend changes through one host's admin API are refused/, e);
      assert.ok(e.includes(`in the config file (${file}) on every host, then run \`l4nat reload\` (or send SIGHUP) on each`), e);
    }
    assert.equal(bal.published.length, before, 'nothing published');
    assert.equal(JSON.stringify(ctrl.view()), view, 'nothing changed');
    assert.equal(ctrl.backendWritesRefused, (await app.inject({ headers: AUTH, method: 'PATCH', url: `/v1/services/${WEB}/backends/${B1}`, payload: { weight: 1 } })).json().error);
    assert.equal((await app.inject({ headers: AUTH, method: 'GET', url: '/v1/services' })).statusCode, 200);
    assert.equal((await app.inject({ headers: AUTH, method: 'GET', url: `/v1/services/${WEB}/backends/${B1}` })).statusCode, 200);
    assert.equal((await app.inject({ headers: AUTH, method: 'DELETE', url: `/v1/flows?service=${WEB}` })).statusCode, 200, 'flow entries are per host, not the ring');
    writeFileSync(file, CLUSTER.replace('"10.0.2.1:53"', '"10.0.2.1:53", "10.0.2.2:53"'));
    const r = await app.inject({ headers: AUTH, method: 'POST', url: '/v1/reload' });
    assert.equal(r.statusCode, 200, r.body);
    assert.equal(bal.weights()['10.0.2.2:53'], 1, 'the config-file way works');
    ctrl.stop();
  });

  test('the dashboard session carries the reason (its backend buttons go); without peers, or without a cluster section, writes are taken', async () => {
    const { ctrl, app } = await setup(CLUSTER);
    assert.match(ctrl.backendWritesRefused ?? '', /^this l4nat is one host of a cluster/);
    const sess = await app.inject({ headers: AUTH, method: 'GET', url: '/dashboard/session' });
    assert.equal(sess.json().backendWritesRefused, ctrl.backendWritesRefused);
    ctrl.stop();
    const alone = await setup(`${CONFIG}cluster:\n  listen: 127.0.0.1\n  port: 19181\n`);
    assert.equal(alone.ctrl.backendWritesRefused, null, 'a cluster section without peers: nobody to disagree with');
    assert.equal((await alone.app.inject({ headers: AUTH, method: 'PATCH', url: `/v1/services/${WEB}/backends/${B1}`, payload: { weight: 5 } })).statusCode, 200);
    alone.ctrl.stop();
    const plain = await setup();
    assert.equal(plain.ctrl.backendWritesRefused, null);
    assert.equal((await plain.app.inject({ headers: AUTH, method: 'GET', url: '/dashboard/session' })).json().backendWritesRefused, null);
    const c = await plain.app.inject({ headers: AUTH, method: 'GET', url: '/v1/cluster' });
    assert.equal(c.statusCode, 404);
    assert.match(c.json().error, /runs without a cluster section in its config file/);
    plain.ctrl.stop();
  });
});

describe('health and on_all_down (controller)', () => {
  const HEALTH = (onAllDown: string): string => `
services:
  - name: web
    vips: [10.0.0.10]
    ports: [80]
    on_all_down: ${onAllDown}
    health_check: {type: tcp, interval: 0.1, timeout: 0.05, fall: 1, rise: 1, jitter: 0}
    backends: ["10.0.1.11:8080", "10.0.1.12:8080"]
`;
  const until = async (cond: () => boolean, ms = 3000): Promise<void> => {
    const end = Date.now() + ms;
    while (!cond()) {
      if (Date.now() > end) throw new Error('condition not met in time');
      await new Promise((r) => setTimeout(r, 20));
    }
  };

  for (const mode of ['drop', 'keep-last'] as const) {
    test(`a down backend leaves the ring; with all down the service does "${mode}"`, async () => {
      const healthy = new Map([['10.0.1.11', true], ['10.0.1.12', true]]);
      const probe: ProbeFn = async (_s, t) => ({ ok: healthy.get(t.addr)!, ms: 1, detail: healthy.get(t.addr) ? '' : 'connect ECONNREFUSED' });
      const { bal, ctrl, app } = await setup(HEALTH(mode), probe);
      healthy.set('10.0.1.11', false);
      await until(() => bal.weights()['10.0.1.11:8080'] === 0);
      assert.equal(bal.weights()['10.0.1.12:8080'], 1);
      const v = (await app.inject({ headers: AUTH, method: 'GET', url: `/v1/services/${WEB}/backends/${B1}` })).json();
      assert.equal(v.state, 'down');
      assert.equal(v.history.transitions.at(-1).to, 'down');
      assert.match(v.history.transitions.at(-1).reason, /ECONNREFUSED/);
      healthy.set('10.0.1.12', false);
      await until(() => ctrl.summary().allDown.length === 1);
      await new Promise((r) => setTimeout(r, 50));
      if (mode === 'drop') assert.deepEqual(bal.weights(), { '10.0.1.11:8080': 0, '10.0.1.12:8080': 0 });
      else assert.deepEqual(bal.weights(), { '10.0.1.11:8080': 0, '10.0.1.12:8080': 1 }, 'the last ring is kept');
      healthy.set('10.0.1.11', true);
      await until(() => bal.weights()['10.0.1.11:8080'] === 1);
      assert.equal(bal.weights()['10.0.1.12:8080'], 0);
      assert.deepEqual(ctrl.summary().allDown, []);
      ctrl.stop();
    });
  }
});

describe('authentication', () => {
  test('with a bearer token: 401 without it or with a wrong one, and nothing about backends leaks', async () => {
    const tokenFile = join(dir, 'token');
    writeFileSync(tokenFile, 'correct-horse-battery-staple\n', { mode: 0o600 });
    const { app, ctrl } = await setup(`admin: {token_file: ${tokenFile}}\n${SERVICES}`);
    for (const headers of [{}, { authorization: 'Bearer wrong-token-wrong-token' }, { authorization: 'Basic Y29ycmVjdA==' }]) {
      for (const url of ['/v1/services', '/metrics', '/openapi.json', '/v1/nonexistent']) {
        const r = await app.inject({ method: 'GET', url, headers });
        assert.equal(r.statusCode, 401, `${url} ${JSON.stringify(headers)}`);
        assert.equal(r.headers['www-authenticate'], 'Bearer');
        assert.doesNotMatch(r.body, /10\.0\.|backend/);
      }
      const w = await app.inject({ method: 'POST', url: `/v1/services/${WEB}/backends`, payload: { backend: '10.0.1.99:8080' }, headers });
      assert.equal(w.statusCode, 401);
    }
    assert.equal(ctrl.current[0].backends.length, 2, 'no write got through');
    const ok = await app.inject({ method: 'GET', url: '/v1/services', headers: { authorization: 'Bearer correct-horse-battery-staple' } });
    assert.equal(ok.statusCode, 200);
    ctrl.stop();
  });

  test('TLS with a client CA (mTLS) on a real socket: a certificate from the CA gets in, none or a foreign one gets 401', { skip: process.platform !== 'linux' }, async () => {
    const ssl = (args: string[]): void => {
      execFileSync('openssl', args, { cwd: dir, stdio: 'ignore' });
    };
    ssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '1', '-subj', '/CN=l4nat test CA']);
    ssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', 'srv.key', '-out', 'srv.pem', '-days', '1', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1']);
    ssl(['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', 'cli.key', '-out', 'cli.csr', '-subj', '/CN=operator']);
    ssl(['x509', '-req', '-in', 'cli.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'cli.pem', '-days', '1']);
    ssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', 'rogue.key', '-out', 'rogue.pem', '-days', '1', '-subj', '/CN=rogue']);
    const f = (n: string): string => join(dir, n);
    const text = `admin: {listen: 127.0.0.1, port: 0, tls: {cert: ${f('srv.pem')}, key: ${f('srv.key')}, client_ca: ${f('ca.pem')}}}\n${SERVICES}`;
    const opts = parseConfig(text, 'x.yaml');
    const { app, ctrl } = await (async () => {
      const bal = new FakeBalancer();
      const c = new Controller(bal, opts, log);
      await c.start();
      return { ctrl: c, app: await createAdminServer({ ctrl: c, admin: opts.admin, log }) };
    })();
    const addr = await listenAdmin(app, opts.admin);
    const get = (cert?: string, key?: string): Promise<{ status: number; body: string }> =>
      new Promise((resolve, reject) => {
        const req = request(
          { host: '127.0.0.1', port: addr.port, path: '/v1/services', ca: require('node:fs').readFileSync(f('srv.pem')), ...(cert ? { cert: require('node:fs').readFileSync(f(cert)), key: require('node:fs').readFileSync(f(key!)) } : {}), agent: false },
          (res) => {
            let body = '';
            res.on('data', (c) => (body += c));
            res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
          },
        );
        req.on('error', reject);
        req.end();
      });
    try {
      const none = await get();
      assert.equal(none.status, 401);
      assert.doesNotMatch(none.body, /10\.0\./);
      assert.equal((await get('rogue.pem', 'rogue.key')).status, 401);
      const ok = await get('cli.pem', 'cli.key');
      assert.equal(ok.status, 200);
      assert.match(ok.body, /10\.0\.1\.11/);
    } finally {
      await app.close();
      ctrl.stop();
    }
  });

  test('by default a token is created at first start (0600, random) and then required; an existing one is kept', async () => {
    const file = join(dir, 'state', 'admin.token');
    const opts = parseConfig(SERVICES, 'd.yaml');
    assert.deepEqual(opts.admin, { listen: '127.0.0.1', port: 9180, tokenFile: '/var/lib/l4nat/admin.token', createToken: true }, 'the default');
    const admin = { ...opts.admin, tokenFile: file };
    prepareAdminAuth(admin, log);
    const st = statSync(file);
    assert.equal(st.mode & 0o777, 0o600);
    const token = readFileSync(file, 'utf8').trim();
    assert.match(token, /^[A-Za-z0-9_-]{43}$/, '32 random bytes, base64url');
    prepareAdminAuth(admin, log);
    assert.equal(readFileSync(file, 'utf8').trim(), token, 'created once, then kept');
    const ctrl = new Controller(new FakeBalancer(), { ...opts, admin }, log);
    await ctrl.start();
    const app = await createAdminServer({ ctrl, admin, log });
    assert.equal((await app.inject({ method: 'GET', url: '/v1/services' })).statusCode, 401);
    assert.equal((await app.inject({ method: 'POST', url: '/v1/restart' })).statusCode, 401);
    assert.equal((await app.inject({ method: 'GET', url: '/v1/services', headers: { authorization: `Bearer ${token}` } })).statusCode, 200);
    ctrl.stop();
    await assert.rejects(createAdminServer({ ctrl, admin: { listen: '127.0.0.1', port: 9180 }, log }), /needs authentication/);
  });

  test('insecure_no_auth (explicit, loopback only): open, and warned at start', async () => {
    const lines: string[] = [];
    const warnLog = pino({ level: 'info' }, { write: (l: string) => void lines.push(l) });
    const { app, ctrl } = await setup(`admin: {insecure_no_auth: true}\n${SERVICES}`);
    assert.equal((await app.inject({ method: 'GET', url: '/v1/services' })).statusCode, 200);
    prepareAdminAuth({ listen: '127.0.0.1', port: 9180, insecureNoAuth: true }, warnLog);
    assert.ok(lines.some((l) => /"level":40/.test(l) && /WITHOUT AUTHENTICATION/.test(l)), lines.join(''));
    ctrl.stop();
  });

  test('browsers: a foreign Host (DNS rebinding), Origin or Sec-Fetch-Site gets 403, a non-JSON body 415; nothing happens', async () => {
    for (const auth of [AUTH, {}]) {
      // With the token (a page cannot have it) and without authentication at all (the opt-in): the same refusals.
      let restarts = 0;
      const text = auth === AUTH ? CONFIG : `admin: {insecure_no_auth: true}\n${SERVICES}`;
      const file = join(dir, `b${Math.random().toString(16).slice(2)}.yaml`);
      writeFileSync(file, text);
      const opts = loadConfigFile(file);
      const ctrl = new Controller(new FakeBalancer(), opts, log);
      await ctrl.start();
      const app = await createAdminServer({ ctrl, admin: opts.admin, log, restart: () => void restarts++ });
      const req = (method: 'GET' | 'POST', url: string, headers: Record<string, string>, payload?: string) => app.inject({ method, url, headers: { ...auth, ...headers }, ...(payload !== undefined ? { payload } : {}) });
      const rebind = await req('GET', '/v1/services', { host: 'attacker.example:9180' });
      assert.equal(rebind.statusCode, 403, rebind.body);
      assert.doesNotMatch(rebind.body, /10\.0\./);
      assert.equal((await req('GET', '/v1/services', { host: 'localhost.attacker.example' })).statusCode, 403);
      for (const host of ['127.0.0.1:9180', 'localhost:9180', '[::1]:9180', `${hostname()}:9180`, '10.1.2.3']) {
        assert.equal((await req('GET', '/v1/services', { host })).statusCode, 200, host);
      }
      const plain = await req('POST', '/v1/restart', { 'content-type': 'text/plain' }, 'x');
      assert.equal(plain.statusCode, 415, plain.body);
      assert.match(plain.json().error, /request bodies must be application\/json, got "text\/plain"/);
      assert.equal((await req('POST', '/v1/restart', { 'content-type': 'text/plain' }, '')).statusCode, 415);
      assert.equal((await req('POST', `/v1/services/${WEB}/backends/${B1}/drain`, { 'content-type': 'application/x-www-form-urlencoded' }, 'a=b')).statusCode, 415);
      assert.equal((await req('POST', '/v1/restart', { host: '127.0.0.1:9180', origin: 'https://attacker.example' })).statusCode, 403);
      assert.equal((await req('POST', '/v1/restart', { host: '127.0.0.1:9180', origin: 'null' })).statusCode, 403);
      assert.equal((await req('POST', `/v1/services/${WEB}/backends/${B1}/drain`, { 'sec-fetch-site': 'cross-site' })).statusCode, 403);
      assert.equal((await req('POST', `/v1/services/${WEB}/backends/${B1}/drain`, { 'sec-fetch-site': 'same-site' })).statusCode, 403);
      await new Promise((r) => setImmediate(r));
      assert.equal(restarts, 0, 'no restart');
      assert.equal(ctrl.view().services[0].backends[0].state, 'up', 'not drained');
      // The API's own origin, and the CLI (no Origin at all), are fine.
      assert.equal((await req('GET', '/v1/services', { host: '127.0.0.1:9180', origin: 'http://127.0.0.1:9180', 'sec-fetch-site': 'same-origin' })).statusCode, 200);
      assert.equal((await req('POST', '/v1/restart', {})).statusCode, 202);
      ctrl.stop();
    }
  });

  test('authentication runs before URL parsing: a malformed URL gets 401 without the token, 400 with it', async () => {
    const { app, ctrl } = await setup();
    for (const url of ['/v1/services/%', '/v1/services/%E0%A4%A/backends', '/%%']) {
      const no = await app.inject({ method: 'GET', url });
      assert.equal(no.statusCode, 401, `${url}: ${no.body}`);
      assert.doesNotMatch(no.body, /url|FST_/i);
      const yes = await app.inject({ method: 'GET', url, headers: AUTH });
      assert.equal(yes.statusCode, 400, `${url}: ${yes.body}`);
      assert.match(yes.json().error, /^bad request: /);
    }
    ctrl.stop();
  });

  test('a 500 says "internal error" with a request id; the detail goes to the log only', async () => {
    const lines: string[] = [];
    const errLog = pino({ level: 'error' }, { write: (l: string) => void lines.push(l) });
    const file = join(dir, `e${Math.random().toString(16).slice(2)}.yaml`);
    writeFileSync(file, CONFIG);
    const opts = loadConfigFile(file);
    const bal = new FakeBalancer();
    const ctrl = new Controller(bal, opts, log);
    await ctrl.start();
    const app = await createAdminServer({ ctrl, admin: opts.admin, log: errLog });
    bal.dp.counters = () => {
      throw new Error('EIO: reading /opt/l4nat/secret/internal-path failed');
    };
    const r = await app.inject({ method: 'GET', url: '/v1/counters', headers: AUTH });
    assert.equal(r.statusCode, 500);
    assert.match(r.json().error, /^internal error \(request \S+; the l4nat log has the details\)$/);
    assert.doesNotMatch(r.body, /opt|secret|EIO/);
    assert.ok(lines.some((l) => /internal-path/.test(l) && /admin request failed/.test(l)), lines.join(''));
    ctrl.stop();
  });
});

describe('passive check (controller)', () => {
  test('new flows without a packet back take a backend out for the hold time; replies keep it in', async () => {
    const text = `
services:
  - name: web
    vips: [10.0.0.10]
    ports: [80]
    passive_check: {window: 5, max_unanswered: 3, max_resets: 4, hold: 20}
    backends: ["10.0.1.11:8080", "10.0.1.12:8080"]
`;
    const { bal, ctrl, app } = await setup(text);
    const s1 = bal.backendSlot('10.0.0.10:80/tcp|10.0.1.11:8080/tcp')!;
    const s2 = bal.backendSlot('10.0.0.10:80/tcp|10.0.1.12:8080/tcp')!;
    const set = (slot: number, flows: number, answered: number, resets = 0): void => {
      bal.backendCounters.set(slot, { packets_in: flows * 3, bytes_in: 0, packets_out: answered * 2, bytes_out: 0, new_flows: flows, flows_answered: answered, resets });
    };
    const t0 = 1_000_000;
    set(s1, 0, 0);
    set(s2, 0, 0);
    ctrl.samplePassive(t0);
    set(s1, 10, 0); // 10 new flows, none answered
    set(s2, 10, 9); // one unanswered: under max_unanswered 3
    ctrl.samplePassive(t0 + 1000);
    ctrl.samplePassive(t0 + 2000);
    await new Promise((r) => setTimeout(r, 20));
    assert.equal(bal.weights()['10.0.1.11:8080'], 0);
    assert.equal(bal.weights()['10.0.1.12:8080'], 1);
    const v = (await app.inject({ headers: AUTH, method: 'GET', url: `/v1/services/${WEB}/backends/${B1}` })).json();
    assert.equal(v.state, 'down');
    assert.match(v.passive.reason, /passive: 10 of 10 new flows in 2 s got no answer through l4nat: its replies bypass this host/);
    set(s2, 20, 19, 5); // 5 resets >= max_resets 4
    ctrl.samplePassive(t0 + 3000);
    await new Promise((r) => setTimeout(r, 20));
    assert.equal(bal.weights()['10.0.1.12:8080'], 0, 'resets take it out too');
    assert.match(ctrl.serviceView(ctrl.current[0], bal.dp.counters()).backends[1].passive?.reason ?? '', /it sent 5 resets in 3 s \(max_resets 4\)/);
    ctrl.samplePassive(t0 + 21_000);
    ctrl.samplePassive(t0 + 24_000);
    await new Promise((r) => setTimeout(r, 20));
    assert.equal(bal.weights()['10.0.1.11:8080'], 1, 'back after the hold');
    assert.equal(bal.weights()['10.0.1.12:8080'], 1, 'back after the hold');
    ctrl.stop();
  });
});

describe('flows and on_down (controller, API)', () => {
  test('GET /v1/flows names service and backend and filters; DELETE needs a filter and removes by backend slot', async () => {
    const { app, bal, ctrl } = await setup();
    const s1 = bal.backendSlot('10.0.0.10:80/tcp|10.0.1.11:8080/tcp')!;
    const s2 = bal.backendSlot('10.0.0.10:80/tcp|10.0.1.12:8080/tcp')!;
    const e = (client: string, port: number, slot: number): FlowEntry => ({ client, clientPort: port, vip: '10.0.0.10', vipPort: 80, proto: 'tcp', backendSlot: slot, serviceSlot: 0, state: slot === s1 ? 'ESTABLISHED' : 'FIN_WAIT', idleSeconds: 1, ageSeconds: 1 });
    bal.flowEntries = [e('192.0.2.1', 1000, s1), e('192.0.2.2', 1001, s2), e('192.0.2.1', 1002, s2)];
    let r = await app.inject({ headers: AUTH, method: 'GET', url: '/v1/flows' });
    assert.equal(r.statusCode, 200);
    assert.equal(r.json().flows.length, 3);
    assert.deepEqual([r.json().flows[1].service, r.json().flows[1].backend, r.json().flows[1].backendName], ['10.0.0.10:80/tcp', '10.0.1.12:8080/tcp', 'two']);
    r = await app.inject({ headers: AUTH, method: 'GET', url: `/v1/flows?backend=${encodeURIComponent('10.0.1.12:8080/tcp')}&client=192.0.2.1` });
    assert.deepEqual(r.json().flows.map((f: FlowEntry) => f.clientPort), [1002]);
    r = await app.inject({ headers: AUTH, method: 'GET', url: '/v1/flows?limit=2' });
    assert.deepEqual([r.json().flows.length, r.json().truncated], [2, true]);
    r = await app.inject({ headers: AUTH, method: 'GET', url: `/v1/flows?service=${WEB}&state=FIN_WAIT` });
    assert.deepEqual(r.json().flows.map((f: FlowEntry) => f.clientPort), [1001, 1002]);
    r = await app.inject({ headers: AUTH, method: 'GET', url: '/v1/flows?state=ESTABLISHED,CLOSE' });
    assert.deepEqual(r.json().flows.map((f: FlowEntry) => f.clientPort), [1000]);
    r = await app.inject({ headers: AUTH, method: 'GET', url: '/v1/flows?state=OPEN' });
    assert.equal(r.statusCode, 400);
    assert.match(r.json().error, /state must be a comma-separated list of SYN_SENT, .*got "OPEN"/);
    assert.equal((await app.inject({ headers: AUTH, method: 'GET', url: '/v1/flows?cursor=x' })).statusCode, 400);
    assert.equal((await app.inject({ headers: AUTH, method: 'GET', url: '/v1/flows?client=nope' })).statusCode, 400);
    assert.equal((await app.inject({ headers: AUTH, method: 'GET', url: `/v1/flows?backend=${encodeURIComponent('10.9.9.9:1/tcp')}` })).statusCode, 404);
    assert.equal((await app.inject({ headers: AUTH, method: 'DELETE', url: '/v1/flows' })).statusCode, 400);
    r = await app.inject({ headers: AUTH, method: 'DELETE', url: `/v1/flows?service=${WEB}` });
    assert.equal(r.statusCode, 200);
    assert.deepEqual(r.json(), { deleted: 3 });
    assert.deepEqual(bal.deleted, [{ backendSlot: s1 }, { backendSlot: s2 }]);
    ctrl.stop();
  });

  test('on_down: reset removes the flows of a backend when its check fails; keep (default) leaves them', async () => {
    for (const mode of ['keep', 'reset']) {
      let ok = true;
      const probe: ProbeFn = async (_s, t) => ({ ok: t.addr !== '10.0.1.11' || ok, ms: 1, detail: 'connect ECONNREFUSED' });
      const { bal, ctrl } = await setup(`
services:
  - name: web
    vips: [10.0.0.10]
    ports: [80]
    on_down: ${mode}
    health_check: {type: tcp, interval: 0.1, timeout: 0.05, fall: 1, rise: 1, jitter: 0}
    backends: ["10.0.1.11:8080", "10.0.1.12:8080"]
`, probe);
      ok = false;
      const end = Date.now() + 3000;
      while (bal.weights()['10.0.1.11:8080'] !== 0 && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
      await new Promise((r) => setTimeout(r, 50));
      assert.deepEqual(bal.deleted, mode === 'reset' ? [{ backendSlot: bal.backendSlot('10.0.0.10:80/tcp|10.0.1.11:8080/tcp') }] : []);
      ctrl.stop();
    }
  });
});

test('protections from the config reach the published table and the view', async () => {
  const { bal, ctrl, app } = await setup('services:\n  - {name: a, vips: [10.0.0.10], ports: [80], new_flow_rate: {rate: 5, burst: 10}, deny_sources: [192.0.2.0/24], backends: ["10.0.1.11:8080"]}\n');
  const s = bal.last[0] as ServiceSpec & { newFlowRate?: unknown; denySources?: unknown };
  assert.deepEqual([s.newFlowRate, s.denySources], [{ rate: 5, burst: 10 }, ['192.0.2.0/24']]);
  const v = (await app.inject({ headers: AUTH, method: 'GET', url: '/v1/services' })).json();
  assert.deepEqual(v.services[0].protections, { newFlowRate: { rate: 5, burst: 10 }, allowSources: [], denySources: ['192.0.2.0/24'] });
  ctrl.stop();
});

test('the published table carries per-service timeouts, and marks a backend that is down (never a second-chance target) but not a drained one', async () => {
  let ok = true;
  const probe: ProbeFn = async (_s, t) => ({ ok: t.addr !== '10.0.1.11' || ok, ms: 1, detail: 'connect ECONNREFUSED' });
  const { bal, ctrl, app } = await setup(`
services:
  - name: web
    vips: [10.0.0.10]
    ports: [80]
    timeouts: {tcp: 120, udp: 9}
    health_check: {type: tcp, interval: 0.1, timeout: 0.05, fall: 1, rise: 1, jitter: 0}
    backends: ["10.0.1.11:8080", "10.0.1.12:8080", "10.0.1.13:8080"]
`, probe);
  assert.deepEqual((bal.last[0] as ServiceSpec & ServiceProtections).timeouts, { tcpEstablished: 120, udp: 9 });
  ok = false;
  const end = Date.now() + 3000;
  while (!bal.last[0].backends[0].down && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
  assert.deepEqual(bal.last[0].backends.map((b) => [b.weight, b.down ?? false]), [[0, true], [1, false], [1, false]]);
  const r = await app.inject({ headers: AUTH, method: 'POST', url: `/v1/services/${WEB}/backends/${encodeURIComponent('10.0.1.12:8080/tcp')}/drain` });
  assert.equal(r.statusCode, 202);
  assert.deepEqual(bal.last[0].backends.map((b) => [b.weight, b.down ?? false]), [[0, true], [0, false], [1, false]]);
  ctrl.stop();
  await app.close();
});

test('flow-state sync: GET /v1/status carries its report, /metrics its counters, l4nat status its line', async () => {
  const { app, ctrl } = await setup();
  const plain = await app.inject({ headers: AUTH, method: 'GET', url: '/v1/status' });
  assert.equal(plain.json().sync, null, 'sync off: null');
  const st: SyncStats = {
    peers: [{ peer: '10.210.0.2:9182', lastMessageAgeMs: 400, received: 12 }, { peer: '10.210.0.3:9182', lastMessageAgeMs: null, received: 0 }],
    sent: { messages: 30, entries: 200 },
    received: { messages: 12, entries: 40 },
    rejected: { malformed: 0, bad_mac: 2, replayed: 1, stale: 0, unknown_peer: 0, unknown_backend: 0 },
    learned: 38, kept: 2, forgotten: 5, own: 17, known: 33, overflow: 0, logFull: 0, queued: 0,
  };
  ctrl.syncStatus = () => st;
  const r = await app.inject({ headers: AUTH, method: 'GET', url: '/v1/status' });
  assert.deepEqual(r.json().sync, st);
  const m = (await app.inject({ headers: AUTH, method: 'GET', url: '/metrics' })).body;
  for (const line of ['l4nat_sync_rejected_total{reason="bad_mac"} 2', 'l4nat_sync_applied_total{result="learned"} 38', 'l4nat_sync_divergent_entries{origin="own"} 17', 'l4nat_sync_peer_last_message_age_seconds{peer="10.210.0.2:9182"} 0.4', 'l4nat_sync_messages_total{direction="sent"} 30']) {
    assert.ok(m.includes(line), `metrics lack ${line}`);
  }
  assert.equal(formatSync(st), 'sync: peers 10.210.0.2:9182 0.4 s ago, 10.210.0.3:9182 never heard; divergent here 17, learned 33; sent 30 msgs/200 entries, received 12/40; flow table: 38 learned, 2 kept local, 5 forgotten; REJECTED bad_mac 2, replayed 1');
  ctrl.stop();
  await app.close();
});
