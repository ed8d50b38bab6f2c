// POST /v1/plan's computation (src/control/plan-preview.ts) against the BalancerLike fake, no root: the slots each
// backend has before and after, the slots moved and the flows that would move, compared with the table the same
// change publishes once applied (laid out by buildTables, as the real Balancer does); a plan leaves the running
// state exactly as it was; bad requests are refused naming what is wrong; the admin routes check their input.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import pino from 'pino';
import { createAdminServer } from '../src/admin/server';
import { apiCommand } from '../src/cli/commands';
import { explainCommand, formatPlan } from '../src/cli/plan-commands';
import { OptionError } from '../src/config/options';
import { ControlError, type Controller, type PlanPreview } from '../src/control/controller';
import { serviceId, type ServiceSpec } from '../src/config/model';
import type { FlowMoveQuestion, FlowMovesPage } from '../src/dataplane/native';
import { MOVE_WORDS } from '../src/dataplane/explain';
import { backendKey, buildTables, NO_BACKEND, SlotAllocator, type TableOptions } from '../src/dataplane/tables';
import { backend, configDir, controllerWith, WEB, type FakeBalancer } from './rigs/control-fakes';

const dir = configDir('l4nat-plan-');
const CONFIG = `
admin: {port: 0}
services:
  - name: web
    vips: [10.0.0.10]
    ports: [80]
    backends: ["10.0.1.11:8080", "10.0.1.12:8080", "10.0.1.13:8080"]
`;

/** A flow table the fake data plane answers flow-move questions from, a page of `perCall` entries per call. The
 * ring index of an entry is its client port modulo the ring size (the real one hashes the tuple: native/core). */
class MoveTable {
  entries: Array<{ svc: number; backend: number; cport: number; closed: boolean }> = [];
  calls = 0;
  constructor(readonly perCall: number) {}

  attach(bal: FakeBalancer): void {
    Object.assign(bal.dp, { flowCapacity: 64, flowMovesPage: (q: FlowMoveQuestion, cursor: number) => this.page(q, cursor) });
  }

  page(q: FlowMoveQuestion, cursor: number): FlowMovesPage {
    this.calls++;
    const moved = new Uint32Array(16);
    const kept = new Uint32Array(16);
    const end = Math.min(64, cursor + this.perCall);
    for (const e of this.entries.slice(cursor, end)) {
      let row = -1;
      for (let i = 0; i < q.services.length; i += MOVE_WORDS) if (q.services[i] === e.svc) row = i;
      if (row < 0 || e.closed) continue;
      const [, , off, size] = q.services.slice(row, row + MOVE_WORDS);
      const pick = size ? q.rings[off + (e.cport % size)] : NO_BACKEND;
      if (pick === e.backend) kept[e.backend]++;
      else moved[e.backend]++;
    }
    return { moved, kept, next: end >= 64 ? null : end };
  }
}

/** A published table's ring per service, as backend keys, laid out by buildTables (the Balancer's path). */
function keyRings(specs: readonly ServiceSpec[], opts: TableOptions): Map<string, Array<string | undefined>> {
  const built = buildTables(specs, new SlotAllocator(16), new SlotAllocator(16), opts);
  const keyOf = new Map([...built.backendSlots].map(([k, slot]) => [slot, k]));
  const m = opts.maglevSize;
  return new Map(specs.map((s, si) => [serviceId(s), Array.from(built.input.rings.slice(si * m, (si + 1) * m), (slot) => (slot === NO_BACKEND ? undefined : keyOf.get(slot)))]));
}

/** The running state as far as a plan could touch it. */
function snapshot(ctrl: Controller, bal: FakeBalancer): string {
  return JSON.stringify({
    services: ctrl.current,
    weights: [...ctrl.publishedWeights].map(([k, v]) => [k, [...v]]),
    published: bal.published.length,
    slots: ctrl.current.flatMap((s) => s.backends.map((b) => bal.backendSlot(backendKey(s, b)))),
    view: ctrl.view().services.map((s) => s.backends.map((b) => [b.id, b.state, b.weight])),
  });
}

async function setup(): Promise<{ ctrl: Controller; bal: FakeBalancer; table: MoveTable; file: string }> {
  const { ctrl, bal, file } = await controllerWith(dir, CONFIG);
  const table = new MoveTable(10);
  table.attach(bal);
  const keys = bal.last[0].backends.map((b) => backendKey(bal.last[0], b));
  for (let i = 0; i < 40; i++) table.entries.push({ svc: bal.serviceSlot(WEB)!, backend: bal.backendSlot(keys[i % 3])!, cport: 1000 + i * 7, closed: i === 39 });
  return { ctrl, bal, table, file };
}

/** The plan's predictions against the table the change publishes: slots per backend, slots moved, flows that move. */
function checkAgainstApplied(p: PlanPreview, before: readonly ServiceSpec[], after: readonly ServiceSpec[], bal: FakeBalancer, table: MoveTable): void {
  const m = bal.tableOptions.maglevSize;
  const ra = keyRings(before, bal.tableOptions).get(WEB)!;
  const rb = keyRings(after, bal.tableOptions).get(WEB)!;
  const svc = p.services.find((s) => s.service === WEB)!;
  const moved = ra.filter((k, i) => k !== rb[i]).length;
  assert.equal(svc.slotsMoved, moved, 'slots moved = the applied table\'s');
  assert.deepEqual(p.changedSlots, moved ? { [WEB]: moved } : {});
  const keyBySlot = new Map(before[0].backends.map((b) => [bal.backendSlot(backendKey(before[0], b)), backendKey(before[0], b)]));
  for (const b of svc.backends) {
    const key = `${WEB}|${b.backend}`;
    assert.equal(b.slots.before, ra.filter((k) => k === key).length, `${b.backend}: slots before`);
    assert.equal(b.slots.after, rb.filter((k) => k === key).length, `${b.backend}: slots after`);
    assert.equal(b.share.after, b.slots.after / m);
    const mine = table.entries.filter((e) => !e.closed && keyBySlot.get(e.backend) === key);
    const wouldMove = mine.filter((e) => rb[e.cport % m] !== key).length;
    assert.deepEqual(b.flows, { live: mine.length, wouldMove }, `${b.backend}: flows`);
  }
  assert.equal(p.flows?.live, 39, 'the closed entry is not counted');
  assert.equal(p.flows?.pages, 7, '64 entries in pages of 10');
}

test('plan an added backend: the predictions equal the table the addition publishes; nothing is applied', async () => {
  const { ctrl, bal, table } = await setup();
  const before = bal.last;
  const snap = snapshot(ctrl, bal);
  const p = await ctrl.plan({ op: 'add', service: WEB, backend: backend('10.0.1.14') });
  assert.equal(snapshot(ctrl, bal), snap, 'the running state is unchanged');
  assert.equal(p.applied, false);
  assert.equal(p.changes, true);
  const added = p.services[0].backends.find((b) => b.backend === '10.0.1.14:8080/tcp')!;
  assert.equal(added.change, 'added');
  assert.equal(added.flows?.live, 0);
  assert.ok(added.slots.after > 0 && added.slots.gained === added.slots.after);
  assert.ok(p.flows!.wouldMove > 0, 'flows move to the new backend');
  await ctrl.addBackend(WEB, backend('10.0.1.14'));
  checkAgainstApplied(p, before, bal.last, bal, table);
});

test('plan a removal, a weight, a max_flows, a drain: the predictions equal what each publishes', async () => {
  for (const req of [
    { op: 'remove', service: WEB, backend: '10.0.1.12:8080/tcp' },
    { op: 'weight', service: WEB, backend: '10.0.1.11:8080/tcp', weight: 3 },
    { op: 'max_flows', service: WEB, backend: '10.0.1.11:8080/tcp', maxFlows: 5 },
    { op: 'drain', service: WEB, backend: '10.0.1.13:8080/tcp' },
  ] as const) {
    const { ctrl, bal, table } = await setup();
    const before = bal.last;
    const snap = snapshot(ctrl, bal);
    const p = await ctrl.plan(req);
    assert.equal(snapshot(ctrl, bal), snap, `${req.op}: the running state is unchanged`);
    if (req.op === 'remove') await ctrl.removeBackend(req.service, req.backend);
    else if (req.op === 'weight') await ctrl.updateBackend(req.service, req.backend, { weight: req.weight });
    else if (req.op === 'max_flows') await ctrl.updateBackend(req.service, req.backend, { maxFlows: req.maxFlows });
    else await ctrl.drain(req.service, req.backend);
    checkAgainstApplied(p, before, bal.last, bal, table);
    const b = p.services[0].backends.find((x) => x.backend === req.backend)!;
    if (req.op === 'max_flows') {
      assert.equal(p.services[0].slotsMoved, 0, 'a limit moves no ring slot');
      assert.equal(bal.last[0].backends.find((x) => x.addr === '10.0.1.11')?.maxFlows, 5, 'published with the limit');
    } else if (req.op !== 'weight') {
      assert.equal(b.slots.after, 0, `${req.op}: out of the ring`);
      assert.equal(b.flows?.wouldMove, b.flows?.live, `${req.op}: every flow of it would move`);
    }
    if (req.op === 'remove') assert.equal(b.change, 'removed');
  }
});

test('plan a reload (the file, or a config text): slots and flows as the reload then publishes; nothing applied', async () => {
  const { ctrl, bal, table, file } = await setup();
  const before = bal.last;
  const next = CONFIG.replace('"10.0.1.13:8080"', '"10.0.1.13:8080", "10.0.1.15:8080@2"');
  const snap = snapshot(ctrl, bal);
  const fromText = await ctrl.plan({ config: next });
  assert.equal(snapshot(ctrl, bal), snap, 'a config text plan applies nothing');
  assert.deepEqual(fromText.reload, { file: 'request body', added: [], removed: [], changed: [WEB] });
  writeFileSync(file, next);
  const fromFile = await ctrl.plan({ reload: true });
  assert.equal(snapshot(ctrl, bal), snap, 'a reload plan applies nothing');
  const same = (x: PlanPreview): object => ({ ...x, change: undefined, reload: undefined, flows: { ...x.flows, ms: 0 } });
  assert.deepEqual(same(fromFile), same(fromText), 'the same config, the same plan');
  await ctrl.reload();
  checkAgainstApplied(fromFile, before, bal.last, bal, table);
  const nothing = await ctrl.plan({ reload: true });
  assert.deepEqual(nothing.changedSlots, {}, 'the file as it runs: no slot moves');
  assert.equal(nothing.flows?.wouldMove, fromFile.flows?.wouldMove, 'the entries the reload left against the ring would still move');
});

test('plan: bad requests are refused naming what is wrong, and change nothing', async () => {
  const { ctrl, bal } = await setup();
  const snap = snapshot(ctrl, bal);
  const refused = async (req: Parameters<Controller['plan']>[0], status: number, msg: RegExp): Promise<void> => {
    await assert.rejects(ctrl.plan(req), (e: unknown) => e instanceof ControlError && e.status === status && msg.test(e.message));
  };
  await refused({ op: 'remove', service: WEB, backend: '10.0.1.99:8080/tcp' }, 404, /no backend 10\.0\.1\.99:8080\/tcp in service/);
  await refused({ op: 'add', service: WEB, backend: backend('10.0.1.11') }, 409, /already serves/);
  await refused({ op: 'drain', service: '10.9.9.9:80/tcp', backend: '10.0.1.11:8080/tcp' }, 404, /no service 10\.9\.9\.9:80\/tcp/);
  await refused({ config: 'services: [' }, 400, /YAML syntax/);
  await refused({ config: CONFIG.replace('global:', '').replace('admin: {port: 0}', 'admin: {port: 0}\nglobal: {queues: 3}') }, 400, /global\.queues.*restart/);
  assert.equal(snapshot(ctrl, bal), snap);
});

test('POST /v1/plan and GET /v1/flows/explain check their input; explain names the data plane\'s slots', async () => {
  const { ctrl, bal } = await setup();
  const token = 'plan-test-token-0123456789abcdef';
  const tokenFile = join(dir, 'admin.token');
  writeFileSync(tokenFile, `${token}\n`, { mode: 0o600 });
  ctrl.token = token;
  const app = await createAdminServer({ ctrl, admin: { ...ctrl.opts.admin, tokenFile }, log: pino({ level: 'silent' }) });
  const headers = { authorization: `Bearer ${token}` };
  const post = async (payload: object): Promise<{ status: number; body: Record<string, unknown> }> => {
    const r = await app.inject({ method: 'POST', url: '/v1/plan', headers, payload });
    return { status: r.statusCode, body: r.json() };
  };
  const snap = snapshot(ctrl, bal);
  assert.deepEqual(await post({}), { status: 400, body: { error: 'body must give exactly one of reload (true: the config file), config (a config\'s YAML text) or op (add, remove, weight, max_flows, drain, undrain), got none' } });
  assert.match(String((await post({ reload: true, op: 'add' })).body.error), /exactly one of .* got reload and op/);
  assert.match(String((await post({ op: 'weight', service: WEB, backend: '10.0.1.11:8080/tcp' })).body.error), /needs body\/weight/);
  assert.match(String((await post({ op: 'remove', service: WEB, backend: '10.0.1.11:8080/tcp', weight: 2 })).body.error), /does not take weight/);
  assert.match(String((await post({ op: 'add', service: WEB, backend: 'nonsense' })).body.error), /body\/backend/);
  assert.equal((await post({ op: 'fly' })).status, 400);
  const ok = await post({ op: 'add', service: WEB, backend: '10.0.1.14:8080', weight: 2 });
  assert.equal(ok.status, 200);
  assert.equal(ok.body.applied, false);
  assert.equal(snapshot(ctrl, bal), snap, 'no request changed anything');
  // explain: this fake data plane says where the tuple goes by slot numbers; the API names them
  const slot11 = bal.backendSlot(`${WEB}|10.0.1.11:8080/tcp`)!;
  Object.assign(bal.dp, {
    explain: () => ({
      verdict: 'entry', dropReason: null, serviceSlot: bal.serviceSlot(WEB), acl: { entries: 0, index: null, allowed: true }, rateLimit: null,
      entry: { backendSlot: slot11, serviceSlot: 0, state: 'ESTABLISHED', idleSeconds: 3, backendValid: true, offRing: false, left: null },
      ring: { size: 7, slot: 2, backendSlot: slot11 }, previousRing: null,
      backend: { slot: slot11, addr: '10.0.1.11', port: 8080, inRing: true, down: false }, vip: { addr: '10.0.0.10', port: 80 }, generation: 4,
    }),
  });
  const ex = await app.inject({ method: 'GET', url: '/v1/flows/explain?proto=tcp&client=192.0.2.7:40000&vip=10.0.0.10:80', headers });
  assert.equal(ex.statusCode, 200);
  const x = ex.json();
  assert.equal(x.backend.id, '10.0.1.11:8080/tcp');
  assert.equal(x.backend.state, 'up');
  assert.equal(x.flowEntry.backend, '10.0.1.11:8080/tcp');
  assert.deepEqual(x.rewrite, { forward: { before: '192.0.2.7:40000 -> 10.0.0.10:80', after: '192.0.2.7:40000 -> 10.0.1.11:8080' }, reply: { before: '10.0.1.11:8080 -> 192.0.2.7:40000', after: '10.0.0.10:80 -> 192.0.2.7:40000' } });
  // packet=syn reaches the data plane's question; anything else is refused by name
  let asked: unknown;
  const answer = (bal.dp as unknown as { explain: (q: unknown) => unknown }).explain;
  Object.assign(bal.dp, { explain: (q: unknown) => ((asked = q), answer(q)) });
  const syn = await app.inject({ method: 'GET', url: '/v1/flows/explain?proto=tcp&client=192.0.2.7:40000&vip=10.0.0.10:80&packet=syn', headers });
  assert.equal(syn.statusCode, 200);
  assert.equal((asked as { syn: boolean }).syn, true);
  assert.equal(syn.json().tuple.packet, 'syn');
  await app.inject({ method: 'GET', url: '/v1/flows/explain?proto=tcp&client=192.0.2.7:40000&vip=10.0.0.10:80', headers });
  assert.equal((asked as { syn: boolean }).syn, false, 'without packet: the next packet');
  for (const [qs, msg] of [
    ['proto=tcp&client=192.0.2.7:1&vip=10.0.0.10:80&packet=fin', /packet/],
    ['proto=tcp&client=192.0.2.7&vip=10.0.0.10:80', /querystring\/client must be ADDR:PORT/],
    ['proto=sctp&client=192.0.2.7:1&vip=10.0.0.10:80', /proto/],
    ['proto=tcp&client=192.0.2.7:1', /vip/],
  ] as const) {
    const r = await app.inject({ method: 'GET', url: `/v1/flows/explain?${qs}`, headers });
    assert.equal(r.statusCode, 400, qs);
    assert.match(r.json().error, msg);
  }
  const unauth = await app.inject({ method: 'POST', url: '/v1/plan', payload: { reload: true } });
  assert.equal(unauth.statusCode, 401);
  await app.close();
});

test('the CLI: explain and the dry runs refuse bad arguments by name; a plan prints per backend', async () => {
  await assert.rejects(explainCommand(['sctp', '192.0.2.7:1', '10.0.0.10:80']), (e: unknown) => e instanceof OptionError && /PROTO must be tcp or udp, got "sctp"/.test(e.message));
  await assert.rejects(explainCommand(['tcp', '192.0.2.7:1']), (e: unknown) => e instanceof OptionError && /explain expects PROTO CLIENT:PORT VIP:PORT/.test(e.message));
  await assert.rejects(explainCommand(['udp', '192.0.2.7:1', '10.0.0.10:53', '--syn']), (e: unknown) => e instanceof OptionError && /--syn is for tcp/.test(e.message));
  await assert.rejects(apiCommand('reload', ['--from', 'x.yaml', '--admin', 'http://127.0.0.1:1']), (e: unknown) => e instanceof OptionError && /--from FILE is for --dry-run/.test(e.message));
  await assert.rejects(apiCommand('backend', ['weight', WEB, '10.0.1.11:8080', 'x', '--dry-run', '--admin', 'http://127.0.0.1:1']), (e: unknown) => e instanceof OptionError && /WEIGHT/.test(e.message));
  for (const n of ['0', 'x', '1.5', String(2 ** 28 + 1)]) {
    for (const dry of [[], ['--dry-run']]) {
      await assert.rejects(apiCommand('backend', ['max-flows', WEB, '10.0.1.11:8080', n, ...dry, '--admin', 'http://127.0.0.1:1']), (e: unknown) => e instanceof OptionError && new RegExp(`MAX_FLOWS expects a whole number of flows from 1 to 268435456, or none \\(no limit\\), got "${n.replace('.', '\\.')}"`).test(e.message), n);
    }
  }
  const { ctrl } = await setup();
  const text = formatPlan(await ctrl.plan({ op: 'add', service: WEB, backend: backend('10.0.1.14') }));
  assert.match(text, /^plan \(api: add 10\.0\.1\.14:8080 of 10\.0\.0\.10:80\/tcp\): nothing applied$/m);
  assert.match(text, /^ {2}10\.0\.1\.14:8080\/tcp \[added\]: weight - -> 1, slots 0 -> \d+ \(\+\d+ -0\), share 0\.0% -> \d+\.\d%, flows 0 live, 0 would move$/m);
  assert.match(text, /^live flows 39: \d+ would be sent elsewhere by the new ring if they lost their entries$/m);
});

test('plan a reload that adds a service and removes one: slots moved as a publish reports them, the removed service\'s flows have nowhere to go', async () => {
  const { ctrl, bal, table } = await setup();
  const other = CONFIG.replace('ports: [80]', 'ports: [81]');
  const p = await ctrl.plan({ config: other });
  const added = p.services.find((s) => s.service === '10.0.0.10:81/tcp')!;
  const removed = p.services.find((s) => s.service === WEB)!;
  assert.equal(added.change, 'added');
  assert.equal(removed.change, 'removed');
  assert.deepEqual(p.changedSlots, { '10.0.0.10:81/tcp': bal.tableOptions.maglevSize }, 'a new service moves its whole ring; a removed one is not listed');
  assert.equal(removed.slotsMoved, bal.tableOptions.maglevSize);
  assert.equal(p.flows?.wouldMove, 39, 'every live flow of the removed service');
  assert.equal(table.entries.filter((e) => !e.closed).length, 39);
  assert.deepEqual(p.reload, { file: 'request body', added: ['10.0.0.10:81/tcp'], removed: [WEB], changed: [] });
});
