// The dashboard's server side without root or a browser (test/dashboard-netns.test.ts has the browser): the session
// store (expiry, revocation, the token it was opened with), the cookie's attributes, the access rules (only the login
// page without a session, CSRF on every write from a session, cross-site refused, read-only refusing the page's
// writes but not the bearer token's), the API's errors through a session, the live stream's frames and end at
// logout, and the rates computed from counter differences.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import type { FastifyInstance } from 'fastify';
import pino from 'pino';
import { createAdminServer } from '../src/admin/server';
import { DashboardFeed } from '../src/admin/dashboard-feed';
import { CSRF_HEADER, SessionStore, cookieValue, sessionCookie } from '../src/admin/session';
import { ConfigError, loadConfigFile, parseConfig } from '../src/config/load';
import { Controller } from '../src/control/controller';
import { FakeBalancer, configDir } from './rigs/control-fakes';
import { selfSignedCert } from './rigs/certs';

const log = pino({ level: 'silent' });
const dir = configDir('l4nat-dashboard-');
const TOKEN = 'dashboard-test-token-0123456789';
const TOKEN_FILE = join(dir, 'admin.token');
writeFileSync(TOKEN_FILE, `${TOKEN}\n`, { mode: 0o600 });
const WEB = '10.0.0.10:80/tcp';
const B1 = '10.0.1.11:8080/tcp';
const B1_PATH = `/v1/services/${encodeURIComponent(WEB)}/backends/${encodeURIComponent(B1)}`;
const ORIGIN = 'http://127.0.0.1:9180';
const HOST = '127.0.0.1:9180';

async function setup(adminExtra = ''): Promise<{ bal: FakeBalancer; ctrl: Controller; app: FastifyInstance; file: string }> {
  const file = join(dir, `c${Math.random().toString(16).slice(2)}.yaml`);
  writeFileSync(file, `admin: {token_file: ${TOKEN_FILE}${adminExtra}}\nservices:\n  - name: web\n    vips: [10.0.0.10]\n    ports: [80]\n    backends: ["10.0.1.11:8080", "10.0.1.12:8080"]\n`);
  const opts = loadConfigFile(file);
  const bal = new FakeBalancer();
  const ctrl = new Controller(bal, opts, log);
  await ctrl.start();
  const app = await createAdminServer({ ctrl, admin: opts.admin, log });
  return { bal, ctrl, app, file };
}

/** Logs in with the form as a browser does; returns the Cookie header value and the session's CSRF token. */
async function login(app: FastifyInstance): Promise<{ cookie: string; csrf: string }> {
  const r = await app.inject({ method: 'POST', url: '/login', headers: { host: HOST, origin: ORIGIN, 'content-type': 'application/x-www-form-urlencoded' }, payload: `token=${encodeURIComponent(TOKEN)}` });
  assert.equal(r.statusCode, 303, r.body);
  assert.equal(r.headers.location, '/');
  const set = String(r.headers['set-cookie']);
  const cookie = set.split(';')[0];
  const s = await app.inject({ method: 'GET', url: '/dashboard/session', headers: { host: HOST, cookie } });
  assert.equal(s.statusCode, 200, s.body);
  return { cookie, csrf: (s.json() as { csrf: string }).csrf };
}

describe('session store', () => {
  test('a session is found with its id and the token it was opened with, until it expires, is closed, or the token changes', () => {
    let now = 1_000;
    const st = new SessionStore(60_000, 3, () => now);
    const a = st.open('tok');
    assert.ok(a.id.length >= 40 && a.session.csrf.length >= 40 && a.id !== a.session.csrf);
    assert.equal(st.find(a.id, 'tok'), a.session);
    assert.equal(st.find(a.id, 'other-token'), undefined, 'a new token ends the session');
    assert.equal(st.find(a.id, 'tok'), undefined, 'and it stays ended');
    const b = st.open('tok');
    assert.equal(st.find(`${b.id}x`, 'tok'), undefined);
    assert.equal(st.find(undefined, 'tok'), undefined);
    now += 60_000;
    assert.equal(st.find(b.id, 'tok'), undefined, 'expired');
    const c = st.open('tok');
    st.close(c.id);
    assert.equal(st.find(c.id, 'tok'), undefined, 'closed');
    const ids = [1, 2, 3, 4].map(() => st.open('tok').id);
    assert.equal(st.size, 3, 'at most max sessions');
    assert.equal(st.find(ids[0], 'tok'), undefined, 'the oldest made room');
    assert.ok(st.find(ids[3], 'tok'));
  });

  test('the cookie is HttpOnly and SameSite=Strict; over TLS also Secure and __Host- named', () => {
    assert.equal(sessionCookie(false, 'v', 60), 'l4nat_session=v; Path=/; Max-Age=60; HttpOnly; SameSite=Strict');
    assert.equal(sessionCookie(true, 'v', 60), '__Host-l4nat_session=v; Path=/; Max-Age=60; HttpOnly; SameSite=Strict; Secure');
    assert.equal(cookieValue('a=1; l4nat_session=xyz; b=2', 'l4nat_session'), 'xyz');
    assert.equal(cookieValue('xl4nat_session=1', 'l4nat_session'), undefined);
  });
});

describe('dashboard config', () => {
  test('admin.dashboard.read_only is a boolean; anything else is refused, naming the key', () => {
    const svc = 'services:\n  - {name: a, vips: [10.0.0.1], ports: [80], backends: ["10.0.1.1"]}\n';
    assert.deepEqual(parseConfig(`admin: {port: 0, dashboard: {read_only: true}}\n${svc}`, 't.yaml').admin.dashboard, { readOnly: true });
    assert.equal(parseConfig(`admin: {port: 0}\n${svc}`, 't.yaml').admin.dashboard, undefined);
    for (const bad of ['{read_only: "yes"}', '{readonly: true}']) {
      assert.throws(() => parseConfig(`admin: {port: 0, dashboard: ${bad}}\n${svc}`, 't.yaml'), (e: Error) => e instanceof ConfigError && /admin\.dashboard/.test(e.message), bad);
    }
  });
});

describe('dashboard access', () => {
  test('without a session only the login page answers: assets, session, events and the API are refused', async () => {
    const { app } = await setup();
    const page = await app.inject({ method: 'GET', url: '/', headers: { host: HOST } });
    assert.equal(page.statusCode, 200);
    assert.match(page.body, /<form method="post" action="\/login">/);
    assert.doesNotMatch(page.body, /app\.js/);
    assert.match(String(page.headers['content-security-policy']), /frame-ancestors 'none'/);
    for (const url of ['/dashboard/assets/app.js', '/dashboard/assets/htm-preact.js', '/dashboard/assets/style.css', '/dashboard/session', '/dashboard/events', '/v1/services', '/metrics', '/nope']) {
      const r = await app.inject({ method: 'GET', url, headers: { host: HOST } });
      assert.equal(r.statusCode, 401, `${url}: ${r.statusCode}`);
      const bad = await app.inject({ method: 'GET', url, headers: { host: HOST, cookie: 'l4nat_session=forged' } });
      assert.equal(bad.statusCode, 401, `${url} with a forged cookie: ${bad.statusCode}`);
    }
    const logout = await app.inject({ method: 'POST', url: '/logout', headers: { host: HOST, origin: ORIGIN } });
    assert.equal(logout.statusCode, 401);
    await app.close();
  });

  test('login: a wrong token gets the form again with an error and no cookie; a cross-site form is refused; the right one a session cookie', async () => {
    const { app } = await setup();
    const form = { host: HOST, 'content-type': 'application/x-www-form-urlencoded' };
    const wrong = await app.inject({ method: 'POST', url: '/login', headers: { ...form, origin: ORIGIN }, payload: 'token=not-the-token' });
    assert.equal(wrong.statusCode, 401);
    assert.match(wrong.body, /Wrong token/);
    assert.equal(wrong.headers['set-cookie'], undefined);
    const cross = await app.inject({ method: 'POST', url: '/login', headers: { ...form, origin: 'http://evil.example' }, payload: `token=${TOKEN}` });
    assert.equal(cross.statusCode, 403);
    assert.equal(cross.headers['set-cookie'], undefined);
    const crossSite = await app.inject({ method: 'POST', url: '/login', headers: { ...form, 'sec-fetch-site': 'cross-site' }, payload: `token=${TOKEN}` });
    assert.equal(crossSite.statusCode, 403);
    // The form's type is parsed for /login only: the API still answers 415 to it.
    const api = await app.inject({ method: 'POST', url: `${B1_PATH}/drain`, headers: { ...form, authorization: `Bearer ${TOKEN}` }, payload: 'a=b' });
    assert.equal(api.statusCode, 415);
    const { cookie } = await login(app);
    assert.match(cookie, /^l4nat_session=[A-Za-z0-9_-]{40,}$/);
    const page = await app.inject({ method: 'GET', url: '/', headers: { host: HOST, cookie } });
    assert.match(page.body, /\/dashboard\/assets\/app\.js/);
    const asset = await app.inject({ method: 'GET', url: '/dashboard/assets/htm-preact.js', headers: { host: HOST, cookie } });
    assert.equal(asset.statusCode, 200);
    assert.match(String(asset.headers['content-type']), /javascript/);
    assert.match(asset.body, /export\{/);
    await app.close();
  });

  test('writes from a session need its CSRF header; a cross-site origin is refused even with it; errors are the API\'s', async () => {
    const { app, bal, ctrl } = await setup();
    const { cookie, csrf } = await login(app);
    const published = bal.published.length;
    const base = { host: HOST, cookie, origin: ORIGIN };
    const none = await app.inject({ method: 'POST', url: `${B1_PATH}/drain`, headers: base });
    assert.equal(none.statusCode, 403);
    assert.match(none.json().error, new RegExp(CSRF_HEADER));
    const wrong = await app.inject({ method: 'POST', url: `${B1_PATH}/drain`, headers: { ...base, [CSRF_HEADER]: `${csrf}x` } });
    assert.equal(wrong.statusCode, 403);
    const cross = await app.inject({ method: 'POST', url: `${B1_PATH}/drain`, headers: { ...base, origin: 'http://evil.example', [CSRF_HEADER]: csrf } });
    assert.equal(cross.statusCode, 403);
    assert.equal(bal.published.length, published, 'nothing refused was published');
    assert.equal(ctrl.serviceView(ctrl.serviceById(WEB), ctrl.counters()).backends[0].state, 'up');
    // The same bad weight through the session and the bearer token: the same 400 and message, nothing changed.
    const badS = await app.inject({ method: 'PATCH', url: B1_PATH, headers: { ...base, [CSRF_HEADER]: csrf, 'content-type': 'application/json' }, payload: { weight: 70000 } });
    const badT = await app.inject({ method: 'PATCH', url: B1_PATH, headers: { host: HOST, authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' }, payload: { weight: 70000 } });
    assert.equal(badS.statusCode, 400);
    assert.deepEqual(badS.json(), badT.json());
    assert.match(badS.json().error, /weight/);
    assert.equal(bal.published.length, published);
    const ok = await app.inject({ method: 'POST', url: `${B1_PATH}/drain`, headers: { ...base, [CSRF_HEADER]: csrf } });
    assert.equal(ok.statusCode, 202, ok.body);
    assert.equal(ctrl.serviceView(ctrl.serviceById(WEB), ctrl.counters()).backends[0].state, 'draining');
    await app.close();
  });

  test('read-only: the page says so and its writes are refused; the bearer token still writes; logout works', async () => {
    const { app } = await setup(', dashboard: {read_only: true}');
    const { cookie, csrf } = await login(app);
    const s = await app.inject({ method: 'GET', url: '/dashboard/session', headers: { host: HOST, cookie } });
    assert.equal(s.json().readOnly, true);
    const w = await app.inject({ method: 'POST', url: `${B1_PATH}/drain`, headers: { host: HOST, cookie, origin: ORIGIN, [CSRF_HEADER]: csrf } });
    assert.equal(w.statusCode, 403);
    assert.match(w.json().error, /read-only/);
    const t = await app.inject({ method: 'POST', url: `${B1_PATH}/drain`, headers: { host: HOST, authorization: `Bearer ${TOKEN}` } });
    assert.equal(t.statusCode, 202);
    const out = await app.inject({ method: 'POST', url: '/logout', headers: { host: HOST, cookie, origin: ORIGIN, [CSRF_HEADER]: csrf } });
    assert.equal(out.statusCode, 200);
    assert.match(String(out.headers['set-cookie']), /Max-Age=0/);
    const after = await app.inject({ method: 'GET', url: '/dashboard/session', headers: { host: HOST, cookie } });
    assert.equal(after.statusCode, 401);
    await app.close();
  });

  test('over TLS the cookie is Secure and __Host- named, and only that name opens the session', async () => {
    const c = selfSignedCert(dir, 'srv', ['127.0.0.1']);
    const { app } = await setup(`, listen: 127.0.0.1, port: 0, tls: {cert: ${c.cert}, key: ${c.key}}`);
    const r = await app.inject({ method: 'POST', url: '/login', headers: { host: HOST, origin: `https://${HOST}`, 'content-type': 'application/x-www-form-urlencoded' }, payload: `token=${TOKEN}` });
    assert.equal(r.statusCode, 303, r.body);
    const set = String(r.headers['set-cookie']);
    assert.match(set, /^__Host-l4nat_session=[A-Za-z0-9_-]{40,}; Path=\/; Max-Age=43200; HttpOnly; SameSite=Strict; Secure$/);
    const id = set.split(';')[0].split('=')[1];
    assert.equal((await app.inject({ method: 'GET', url: '/dashboard/session', headers: { host: HOST, cookie: `__Host-l4nat_session=${id}` } })).statusCode, 200);
    assert.equal((await app.inject({ method: 'GET', url: '/dashboard/session', headers: { host: HOST, cookie: `l4nat_session=${id}` } })).statusCode, 401);
    await app.close();
  });

  test('a new token ends the sessions opened with the old one', async () => {
    const { app, ctrl } = await setup();
    const { cookie } = await login(app);
    ctrl.token = 'another-token-0123456789abcdef';
    const r = await app.inject({ method: 'GET', url: '/dashboard/session', headers: { host: HOST, cookie } });
    assert.equal(r.statusCode, 401);
    await app.close();
  });
});

describe('live stream', () => {
  test('the event stream sends the history, then frames with the services; it ends at logout', async () => {
    const { app } = await setup();
    const { cookie, csrf } = await login(app);
    await app.listen({ host: '127.0.0.1', port: 0 });
    const port = (app.server.address() as { port: number }).port;
    const host = `127.0.0.1:${port}`;
    const refused = await fetch(`http://${host}/dashboard/events`);
    assert.equal(refused.status, 401);
    await refused.body?.cancel();
    const r = await fetch(`http://${host}/dashboard/events`, { headers: { cookie } });
    assert.equal(r.status, 200);
    assert.match(String(r.headers.get('content-type')), /text\/event-stream/);
    const reader = r.body!.pipeThrough(new TextDecoderStream()).getReader();
    let text = '';
    while (!/\n\ndata: .*\n\n/s.test(text)) text += (await reader.read()).value ?? '';
    assert.match(text, /^retry: \d+\nevent: history\ndata: \[/);
    const frame = JSON.parse(/\n\ndata: (.*)\n\n/.exec(text)![1]) as { services: Array<{ id: string; backends: Array<{ id: string; state: string; why: string }> }>; readOnly: boolean };
    assert.deepEqual(frame.services.map((s) => s.id), [WEB]);
    assert.deepEqual(frame.services[0].backends.map((b) => b.state), ['up', 'up']);
    const out = await fetch(`http://${host}/logout`, { method: 'POST', headers: { cookie, origin: `http://${host}`, [CSRF_HEADER]: csrf } });
    assert.equal(out.status, 200);
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      text += value;
    }
    assert.match(text, /event: logout\n/, 'the stream ends at the next frame after logout');
    await app.close();
  });

  test('closing the server ends an open event stream and a connection that never sent a request (a browser\'s spare one)', { timeout: 20_000 }, async () => {
    const { app } = await setup();
    const { cookie } = await login(app);
    await app.listen({ host: '127.0.0.1', port: 0 });
    const port = (app.server.address() as { port: number }).port;
    const spare = connect(port, '127.0.0.1');
    await new Promise((r) => spare.once('connect', r));
    const spareClosed = new Promise((r) => spare.once('close', r));
    const r = await fetch(`http://127.0.0.1:${port}/dashboard/events`, { headers: { cookie } });
    const reader = r.body!.getReader();
    await reader.read();
    await app.close(); // without closing every connection this waits for the spare one's headers timeout (a minute)
    await spareClosed;
    for (;;) if ((await reader.read()).done) break;
  });

  test('rates are counter differences over the time between samples, per backend and service', async () => {
    const { bal, ctrl, app } = await setup();
    let mono = 10_000;
    const feed = new DashboardFeed(ctrl, undefined, 1024, 1_000, () => mono);
    const key = `${WEB}|${B1}`;
    bal.count(key, { packets_in: 100, bytes_in: 10_000, new_flows: 5, resets: 0 });
    const first = feed.frame();
    assert.deepEqual(first.point.backends[key], [0, 0, 0, 0], 'no previous sample: no rate');
    mono += 2_000;
    bal.count(key, { packets_in: 300, bytes_in: 30_000, packets_out: 100, bytes_out: 2_000, new_flows: 9, resets: 2 });
    const second = feed.frame();
    assert.deepEqual(second.point.backends[key], [(200 + 100) / 2, (8 * (20_000 + 2_000)) / 2, 2, 1]);
    assert.equal(second.services[0].backends[0].why, 'no active health check');
    assert.equal(second.dataplane.flowCapacity, 1024);
    mono += 10_000; // a gap (nobody listened): no average over it
    bal.count(key, { packets_in: 900, bytes_in: 90_000, new_flows: 20, resets: 2 });
    assert.deepEqual(feed.frame().point.backends[key], [0, 0, 0, 0]);
    assert.equal(feed.points().length, 3);
    feed.close();
    // The ring share: each backend's slots in the ring as last published.
    const [k1, k2] = ['10.0.0.10:80/tcp|10.0.1.11:8080/tcp', '10.0.0.10:80/tcp|10.0.1.12:8080/tcp'].map((k) => bal.backendSlot(k)!);
    const rings = { publishedRings: new Map([[WEB, Uint32Array.of(k1, k2, k2, k2, k1, k2, k2)]]), backendSlot: (k: string) => bal.backendSlot(k) };
    const shares = new DashboardFeed(ctrl, rings, 1024, 1_000, () => mono).frame().services[0].backends.map((b) => b.ringShare);
    assert.deepEqual(shares, [2 / 7, 5 / 7]);
    await app.close();
  });

  test('the reload history records each reload: applied with the slots it moved, or refused with why', async () => {
    const { ctrl, app, file } = await setup();
    const feed = new DashboardFeed(ctrl, undefined, undefined);
    await ctrl.reload();
    writeFileSync(file, 'services: [');
    await assert.rejects(ctrl.reload());
    const [ok, bad] = feed.frame().reloads;
    assert.equal(ok.ok, true);
    assert.deepEqual(ok.changedSlots, {});
    assert.deepEqual([ok.added, ok.removed, ok.changed], [[], [], []]);
    assert.equal(bad.ok, false);
    assert.match(String(bad.error), new RegExp(file.replace(/[.]/g, '\\.')));
    feed.close();
    await app.close();
  });
});
