// The dashboard in a real browser (Debian's chromium driven by playwright-core) against l4nat in the lab: chromium
// runs inside the lb namespace (`ip netns exec`), where the admin API listens on loopback. After a login with the
// admin token the page shows the services; a backend killed in the lab turns red (down) within the detection time;
// a drain clicked on the page counts its live flows down to "last flow gone"; a reload from the page lands in the
// reload history; a bad weight shows the API's own error and changes nothing; a max_flows set at run time shows beside
// the active flows; a reload to read-only hides the actions and refuses the page's writes; nothing but the login
// page answers without a session, nothing at all to a cross-site origin (raw requests, and a real cross-site page in
// the same browser); and l4nat stops cleanly with the page open. With L4NAT_SCREENSHOTS=1 the test copies its
// screenshots of the real page into docs/img/ (the README shows them).
import assert from 'node:assert/strict';
import { chmodSync, copyFileSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { chromium, type Browser, type Page } from 'playwright-core';
import { adminRequest, DEFAULT_ADMIN_PORT, DEFAULT_ADMIN_TOKEN_FILE, listServices } from '../src/lab/admin-client';
import type { Lab } from '../src/lab/lab';
import { repoRoot } from '../src/lab/l4nat-process';
import { startStreams } from '../src/lab/workload';
import { configText, labBackends, waitUntil, withLab } from './rigs/fixture';
import { skipUnless } from './rigs/requirements';

const INTERVAL = 1;
const TIMEOUT = 0.5;
const FALL = 2;
/** The health checks' detection time (interval × fall + timeout), plus the dashboard's one-second sample and a render. */
const DETECT_MS = (INTERVAL * FALL + TIMEOUT) * 1000 + 1_500;
const BASE = `http://127.0.0.1:${DEFAULT_ADMIN_PORT}`;

/** A request made with node's fetch inside the lb namespace, with only the headers given (no token). */
async function raw(lab: Lab, method: string, url: string, headers: Record<string, string> = {}): Promise<{ status: number; body: string }> {
  const script = `fetch(process.argv[1], { method: process.argv[2], headers: JSON.parse(process.argv[3]) })
    .then(async (r) => process.stdout.write(JSON.stringify({ status: r.status, body: (await r.text()).slice(0, 300) })))
    .catch((e) => { process.stderr.write(String(e)); process.exit(1); });`;
  const { stdout } = await lab.exec('lb', process.execPath, ['-e', script, `${BASE}${url}`, method, JSON.stringify(headers)]);
  return JSON.parse(stdout) as { status: number; body: string };
}

/** Chromium inside the lb namespace: a wrapper that `ip netns exec`s it (the pid stays chromium's). */
async function browserIn(lab: Lab, dir: string): Promise<Browser> {
  const wrapper = path.join(dir, 'chromium-in-lb');
  writeFileSync(wrapper, `#!/bin/sh\nexec ip netns exec ${lab.lb.ns} /usr/bin/chromium "$@"\n`);
  chmodSync(wrapper, 0o755);
  return chromium.launch({ executablePath: wrapper, headless: true, args: ['--no-sandbox', '--disable-gpu'] });
}

const rowOf = (page: Page, backend: string): ReturnType<Page['locator']> => page.locator(`tr[data-backend="${backend}"]`);

test('dashboard in chromium: login, services live, a killed backend turns red, a drain counts down, reload, a bad weight shows the API error, read-only, no access without auth or cross-site', { skip: skipUnless({ commands: ['chromium'] }), timeout: 240_000 }, async (t) => {
  const config = (lab: Lab): string => configText({
    global: { queues: 2, stats_interval: 0 },
    services: [{ name: 'web', vips: [lab.vip4], ports: [8080], health_check: { type: 'tcp', interval: INTERVAL, timeout: TIMEOUT, fall: FALL, rise: 2, jitter: 0.2 }, backends: labBackends(lab, { port: 8080 }) }],
  });
  await withLab({ backends: 3, ipv6: false, config }, async ({ lab, l4, servers, dir, configFile, defer }) => {
    const svc = (await listServices(lab))[0];
    const [b1, b2, b3] = svc.backends.map((b) => b.id);
    const token = readFileSync(DEFAULT_ADMIN_TOKEN_FILE, 'utf8').trim();
    const browser = await browserIn(lab, dir);
    defer(() => browser.close());
    const context = await browser.newContext({ viewport: { width: 1400, height: 1100 } });
    const page = await context.newPage();
    const pageErrors: string[] = [];
    page.on('pageerror', (e) => pageErrors.push(e.message));
    page.on('console', (m) => {
      // Answers the test asks for (the wrong token's 401, the bad weight's 400) are logged as failed loads: not errors of the page.
      if (m.type() === 'error' && !m.text().startsWith('Failed to load resource')) pageErrors.push(m.text());
    });
    const shots: string[] = [];
    const shot = async (name: string): Promise<void> => {
      const file = path.join(dir, name);
      await page.screenshot({ path: file, fullPage: true });
      shots.push(file);
    };

    // Login with the token: then the services and their backends, live.
    await page.goto(`${BASE}/`);
    assert.equal(await page.locator('form[action="/login"]').count(), 1, 'the login page first');
    await page.fill('#token', 'not-the-token-0123456789');
    await page.click('button[type=submit]');
    assert.match(await page.locator('.error').innerText(), /Wrong token/);
    await page.fill('#token', token);
    await page.click('button[type=submit]');
    await page.locator(`section[data-service="${svc.id}"]`).waitFor({ timeout: 15_000 });
    for (const b of [b1, b2, b3]) await rowOf(page, b).locator('.badge.up').waitFor({ timeout: 10_000 });
    const cookies = await context.cookies();
    const session = cookies.find((c) => c.name === 'l4nat_session');
    assert.ok(session, `a session cookie: ${JSON.stringify(cookies.map((c) => c.name))}`);
    assert.equal(session.httpOnly, true);
    assert.equal(session.sameSite, 'Strict');
    assert.equal(await page.evaluate(() => document.cookie), '', 'the page\'s scripts cannot read the session');

    // Nothing but the login page without a session; nothing cross-site, even with the session.
    assert.equal((await raw(lab, 'GET', '/')).status, 200);
    for (const url of ['/dashboard/assets/app.js', '/dashboard/assets/uplot.js', '/dashboard/session', '/dashboard/events', '/v1/services', '/metrics']) {
      assert.equal((await raw(lab, 'GET', url)).status, 401, `${url} without a session`);
    }
    const cookie = `l4nat_session=${session.value}`;
    assert.equal((await raw(lab, 'GET', '/dashboard/events', { cookie, origin: 'http://evil.example' })).status, 403);
    assert.equal((await raw(lab, 'GET', '/v1/services', { cookie, 'sec-fetch-site': 'cross-site' })).status, 403);
    const csrf = await page.evaluate(async () => ((await (await fetch('/dashboard/session')).json()) as { csrf: string }).csrf);
    const drainPath = `/v1/services/${encodeURIComponent(svc.id)}/backends/${encodeURIComponent(b3)}/drain`;
    assert.equal((await raw(lab, 'POST', drainPath, { cookie, origin: 'http://evil.example', 'x-l4nat-csrf': csrf })).status, 403);
    assert.equal((await raw(lab, 'POST', drainPath, { cookie, origin: BASE })).status, 403, 'no CSRF header');
    // A real cross-site page in the same browser (the session cookie is there): its form POST and fetches fail.
    const evil = await context.newPage();
    const outcomes: string[] = []; // the browser may refuse some before they leave (private network access): also no success
    evil.on('response', (r) => {
      if (r.url().startsWith(BASE)) outcomes.push(String(r.status()));
    });
    evil.on('requestfailed', (r) => {
      if (r.url().startsWith(BASE)) outcomes.push(`failed: ${r.failure()?.errorText}`);
    });
    await evil.route('http://evil.example/**', (r) => r.fulfill({ contentType: 'text/html', body: `<form method="post" action="${BASE}${drainPath}"><input name="a" value="b"></form>` }));
    await evil.goto('http://evil.example/');
    await evil.evaluate(async ([base, p]) => {
      await fetch(`${base}${p}`, { method: 'POST', mode: 'no-cors', credentials: 'include' }).catch(() => undefined);
      await fetch(`${base}/v1/services`, { mode: 'no-cors', credentials: 'include' }).catch(() => undefined);
    }, [BASE, drainPath] as const);
    await Promise.all([evil.waitForNavigation().catch(() => undefined), evil.evaluate(() => document.forms[0].submit())]);
    await evil.close();
    t.diagnostic(`a cross-site page's requests: ${outcomes.join(', ')}`);
    assert.ok(outcomes.length >= 3 && outcomes.every((o) => o === '403' || o.startsWith('failed')), `cross-site answers: ${JSON.stringify(outcomes)}`);
    assert.equal((await listServices(lab))[0].backends.length, 3);
    const b3Path = `/v1/services/${encodeURIComponent(svc.id)}/backends/${encodeURIComponent(b3)}`;
    assert.equal(((await adminRequest(lab, 'GET', b3Path)).body as { state: string }).state, 'up', 'the cross-site drain did nothing');

    // A backend killed in the lab turns red within the detection time.
    const killedAt = Date.now();
    servers[1]!.kill('SIGKILL');
    await servers[1]!.exited;
    await rowOf(page, b2).locator('.badge.down').waitFor({ timeout: DETECT_MS });
    const redMs = Date.now() - killedAt;
    t.diagnostic(`b2 red on the page ${redMs} ms after the kill (bound ${DETECT_MS} ms)`);
    const colour = await rowOf(page, b2).locator('.badge').evaluate((e) => getComputedStyle(e).backgroundColor);
    assert.equal(colour, 'rgb(251, 213, 210)');
    assert.match(await rowOf(page, b2).locator('.why').innerText(), /ECONNREFUSED|refused|timeout/i);

    // A drain from the page, with two sets of streams on the backends: live flows counted down to "last flow gone"
    // as one set ends, then the other.
    const sets = [0, 1].map(() => startStreams(lab, { target: lab.vip4, port: 8080, streams: 10, durationMs: 60_000, intervalMs: 20, stallMs: 30_000 }));
    for (const st of sets) {
      defer(() => st.proc.kill('SIGKILL'));
      assert.equal((await st.streaming).failed, 0);
    }
    await new Promise((r) => setTimeout(r, 4_000)); // rates on the charts
    await rowOf(page, b1).locator('[data-action=drain]').click();
    await page.locator('.modal').waitFor();
    await page.locator('.modal button[type=submit]').click();
    await rowOf(page, b1).locator('[data-drain=running][data-live]:not([data-live=""]):not([data-live="0"])').waitFor({ timeout: 10_000 });
    const seen: number[] = [];
    const startLive = Number(await rowOf(page, b1).locator('[data-drain=running]').getAttribute('data-live'));
    seen.push(startLive);
    await new Promise((r) => setTimeout(r, 1_500));
    await shot('dashboard.png');
    const liveNow = async (): Promise<void> => {
      const live = await rowOf(page, b1).locator('[data-drain=running]').getAttribute('data-live', { timeout: 100 }).catch(() => null);
      if (live !== null && live !== '' && Number(live) !== seen[seen.length - 1]) seen.push(Number(live));
    };
    sets[0].stop();
    await waitUntil('fewer live flows on the page', async () => {
      await liveNow();
      return seen[seen.length - 1] < startLive;
    }, 20_000, 200);
    sets[1].stop();
    await waitUntil('the drain done on the page', async () => {
      await liveNow();
      return (await rowOf(page, b1).locator('[data-drain=done]').count()) === 1;
    }, 30_000, 200);
    t.diagnostic(`live flows on the drained backend as the page showed them: ${seen.join(' → ')} → done`);
    assert.ok(seen.every((v, i) => i === 0 || v < seen[i - 1]), `counted down: ${seen.join(', ')}`);
    assert.ok(seen.some((v) => v > 0 && v < startLive), `a count between the start and 0: ${seen.join(', ')}`);
    assert.match(await rowOf(page, b1).locator('[data-drain=done]').innerText(), /last flow gone/);
    assert.equal(await rowOf(page, b1).getAttribute('data-state'), 'drained');
    for (const st of sets) assert.equal((await st.result).failed, 0);

    // A reload from the page: its outcome, and a line in the reload history.
    await page.locator('button[data-action=reload]').click();
    await page.locator('.modal button[type=submit]').click();
    await page.locator('#notice.ok').filter({ hasText: /^reloaded: 0 added, 0 removed, 0 changed/ }).waitFor({ timeout: 10_000 });
    await page.locator('.dp-reloads tbody tr').first().waitFor({ timeout: 5_000 });

    // A bad weight: the API's error on the page, verbatim; nothing changed.
    const api = await adminRequest(lab, 'PATCH', b3Path, { weight: 70000 });
    assert.equal(api.status, 400);
    await rowOf(page, b3).locator('[data-action=weight]').click();
    await page.locator('.modal input').fill('70000');
    await page.locator('.modal button[type=submit]').click();
    await page.locator('#notice.error').waitFor({ timeout: 10_000 });
    assert.equal(await page.locator('#notice span').first().innerText(), (api.body as { error: string }).error);
    await shot('dashboard-error.png');
    const after = (await listServices(lab))[0].backends.find((b) => b.id === b3)!;
    assert.equal(after.weight, 1, 'the bad weight changed nothing');

    // A max_flows set at run time shows beside the backend's active flows; lifted, it goes.
    assert.equal((await adminRequest(lab, 'PATCH', b3Path, { max_flows: 40 })).status, 200);
    const limitCell = rowOf(page, b3).locator('td[data-max-flows="40"]');
    await limitCell.waitFor({ timeout: 10_000 });
    assert.match(await limitCell.innerText(), /^\d+ \/ 40 max$/);
    assert.equal((await adminRequest(lab, 'PATCH', b3Path, { max_flows: null })).status, 200);
    await rowOf(page, b3).locator('td[data-max-flows=""]').waitFor({ timeout: 10_000 });

    // Read-only by a reload: the page hides its actions, and a write from it is refused even with its CSRF token.
    writeFileSync(configFile, config(lab).replace(/^services:/m, 'admin: {dashboard: {read_only: true}}\nservices:'));
    const ro = await adminRequest(lab, 'POST', '/v1/reload');
    assert.equal(ro.status, 200, JSON.stringify(ro.body));
    await page.locator('.badge.ro').waitFor({ timeout: 5_000 });
    assert.equal(await page.locator('[data-action]').count(), 0, 'no action left on a read-only page');
    const refused = await page.evaluate(async ([p, token]) => (await fetch(p, { method: 'POST', headers: { 'x-l4nat-csrf': token } })).status, [drainPath, csrf] as const);
    assert.equal(refused, 403);
    assert.equal(((await adminRequest(lab, 'GET', b3Path)).body as { state: string }).state, 'up');

    assert.deepEqual(pageErrors, [], 'no script or CSP errors on the page');
    // l4nat stops cleanly with the page's event stream still open (the stream does not hold the listener open).
    const stoppedAt = Date.now();
    const st = await l4.stop();
    assert.equal(st.code, 0, `l4nat's stop: ${JSON.stringify(st)}\n${l4.proc.tail()}`);
    t.diagnostic(`l4nat stopped in ${Date.now() - stoppedAt} ms with the dashboard open`);
    if (process.env.L4NAT_SCREENSHOTS === '1') {
      for (const f of shots) copyFileSync(f, path.join(repoRoot(), 'docs', 'img', path.basename(f)));
      t.diagnostic(`screenshots copied to docs/img: ${shots.map((f) => path.basename(f)).join(', ')}`);
    }
  });
});
