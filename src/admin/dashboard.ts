// The live dashboard on the admin listener (GET /): same TLS, same checks of access.ts. A browser cannot send the
// API's bearer header, so the page at / is a login form until the token has been traded once (POST /login) for a
// session cookie (session.ts); then / is the dashboard: static files served from the package (src/admin/dashboard/,
// htm's standalone preact and uPlot from node_modules; no CDN, no bundler), its live numbers from a server-sent
// event stream (GET /dashboard/events, dashboard-feed.ts), and its actions are the REST API's own routes called with
// the session cookie and its CSRF header, so they are the same validated operations with the same error messages.
import { existsSync, readFileSync } from 'fs';
import path from 'path';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Controller } from '../control/controller';
import type { AdminConfig } from '../config/model';
import type { Logger } from '../util/log';
import type { Caller } from './access';
import { DashboardFeed, type RingSource } from './dashboard-feed';
import { CSRF_HEADER, SESSION_TTL_MS, cookieValue, sameSecret, sessionCookie, sessionCookieName, type SessionStore } from './session';

/** What up.ts gives the dashboard beyond the controller. */
export interface DashboardDeps {
  rings?: RingSource;
  flowCapacity?: number;
}

interface Deps extends DashboardDeps {
  ctrl: Controller;
  admin: AdminConfig;
  sessions: SessionStore;
  log: Logger;
}

/** Requests anyone who passed the Host and origin checks may make without a session: the login page and its form. */
export const DASHBOARD_PUBLIC = (method: string, url: string): boolean => ((method === 'GET' || method === 'HEAD') && url === '/') || (method === 'POST' && url === '/login');

/** The browser files, by the name the page asks for: from src/admin/dashboard/, or a package's build. */
function assetFiles(): Map<string, { file: string; type: string }> {
  const dir = [path.join(__dirname, 'dashboard'), path.resolve(__dirname, '../../../src/admin/dashboard')].find((d) => existsSync(path.join(d, 'app.js')));
  if (!dir) throw new Error(`the dashboard's files (src/admin/dashboard/) are missing next to ${__dirname}`);
  // Found from the files `require` resolves the packages to: htm/dist/htm.js and uplot/dist/uPlot.cjs.js.
  const htmDir = path.join(path.dirname(require.resolve('htm')), '..', 'preact');
  const uplotDir = path.dirname(require.resolve('uplot'));
  const js = 'text/javascript; charset=utf-8';
  const m = new Map<string, { file: string; type: string }>([
    ['index.html', { file: path.join(dir, 'index.html'), type: 'text/html; charset=utf-8' }],
    ['login.html', { file: path.join(dir, 'login.html'), type: 'text/html; charset=utf-8' }],
    ['style.css', { file: path.join(dir, 'style.css'), type: 'text/css; charset=utf-8' }],
    ['htm-preact.js', { file: path.join(htmDir, 'standalone.module.js'), type: js }],
    ['uplot.js', { file: path.join(uplotDir, 'uPlot.iife.min.js'), type: js }],
    ['uplot.css', { file: path.join(uplotDir, 'uPlot.min.css'), type: 'text/css; charset=utf-8' }],
  ]);
  for (const f of ['app.js', 'api.js', 'format.js', 'charts.js', 'services.js', 'backend.js', 'dataplane.js', 'actions.js']) m.set(f, { file: path.join(dir, f), type: js });
  return m;
}

const escapeHtml = (s: string): string => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

/** Headers of every dashboard answer: nothing from elsewhere, no framing, nothing cached, no referrer. */
function pageHeaders(reply: FastifyReply, csp: string): FastifyReply {
  return reply
    .header('content-security-policy', `${csp}; frame-ancestors 'none'; base-uri 'none'; form-action 'self'`)
    .header('x-frame-options', 'DENY')
    .header('x-content-type-options', 'nosniff')
    .header('referrer-policy', 'same-origin') // not no-referrer: a browser then sends "Origin: null" on the form's POST
    .header('cache-control', 'no-store');
}
const APP_CSP = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:";
const LOGIN_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:";

export async function registerDashboard(app: FastifyInstance, d: Deps): Promise<void> {
  const files = assetFiles();
  const assets = new Map([...files].map(([name, f]) => [name, { body: readFileSync(f.file), type: f.type }]));
  const tls = Boolean(d.admin.tls);
  const feed = new DashboardFeed(d.ctrl, d.rings, d.flowCapacity);
  const streams = new Set<() => void>();
  const readOnly = (): boolean => d.ctrl.opts.admin.dashboard?.readOnly ?? false;
  // The event streams end (their last write done) and the feed's timer stops before the server closes.
  app.addHook('preClose', async () => {
    for (const end of [...streams]) end();
    feed.close();
  });

  const loginPage = (reply: FastifyReply, status: number, error = ''): FastifyReply =>
    pageHeaders(reply, LOGIN_CSP)
      .code(status)
      .type('text/html; charset=utf-8')
      .send(assets.get('login.html')!.body.toString('utf8').replace('<!--ERROR-->', error ? `<p class="error" role="alert">${escapeHtml(error)}</p>` : ''));

  app.get('/', { schema: { hide: true } }, async (req, reply) => {
    if (req.caller?.via === 'public') return loginPage(reply, 200);
    return pageHeaders(reply, APP_CSP).type('text/html; charset=utf-8').send(assets.get('index.html')!.body);
  });

  app.get<{ Params: { name: string } }>('/dashboard/assets/:name', { schema: { hide: true } }, async (req, reply) => {
    const a = assets.get(req.params.name);
    if (!a || req.params.name === 'login.html') return reply.code(404).send({ error: `no dashboard file ${req.params.name}` });
    return pageHeaders(reply, APP_CSP).type(a.type).send(a.body);
  });

  await app.register(async (scope) => {
    // The login form's body, in this scope only: the API's routes still take JSON alone.
    scope.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string', bodyLimit: 4096 }, (_req, body, done) => done(null, new URLSearchParams(body as string)));
    scope.post('/login', { schema: { hide: true } }, async (req: FastifyRequest, reply) => {
      const token = d.ctrl.token;
      if (token === undefined) return reply.code(303).header('location', '/').send(); // no token to show: the page is open
      const given = req.body instanceof URLSearchParams ? req.body.get('token')?.trim() : undefined;
      if (!given || !sameSecret(given, token)) {
        d.log.warn({ event: 'dashboard_login_failed', remote: req.ip }, 'dashboard: login with a wrong token');
        return loginPage(reply, 401, 'Wrong token: give the admin API token (the contents of the admin token file).');
      }
      const { id } = d.sessions.open(token);
      d.log.info({ event: 'dashboard_login', remote: req.ip }, 'dashboard: login');
      return reply.code(303).header('location', '/').header('set-cookie', sessionCookie(tls, id, Math.floor(SESSION_TTL_MS / 1000))).send();
    });
  });

  app.post('/logout', { schema: { hide: true } }, async (req, reply) => {
    d.sessions.close(cookieValue(req.headers.cookie, sessionCookieName(tls)));
    return reply.header('set-cookie', sessionCookie(tls, '', 0)).send({ loggedOut: true });
  });

  app.get('/dashboard/session', { schema: { hide: true } }, async (req) => {
    const c = req.caller as Caller;
    // backendWritesRefused: a cluster host takes backend changes from its config file only (the reason, shown).
    return { csrfHeader: CSRF_HEADER, csrf: c.via === 'session' ? c.session.csrf : null, readOnly: readOnly(), backendWritesRefused: d.ctrl.backendWritesRefused, via: c.via, canLogout: c.via === 'session' };
  });

  app.get('/dashboard/events', { schema: { hide: true } }, (req, reply) => {
    const c = req.caller as Caller;
    const token = d.ctrl.token;
    // A stream outlives its request's check: it ends when the session does, or when a reload changes the token.
    const valid = (): boolean => (c.via === 'session' ? d.sessions.find(c.id, d.ctrl.token) !== undefined : d.ctrl.token === token);
    reply.hijack();
    const res = reply.raw;
    // Connection: close: an ended stream closes its socket, so a closing server does not wait for it to idle out.
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-store', 'x-content-type-options': 'nosniff', 'x-accel-buffering': 'no', connection: 'close' });
    res.write(`retry: 2000\nevent: history\ndata: ${JSON.stringify(feed.points())}\n\n`);
    let unsubscribe: (() => void) | undefined;
    let ended = false;
    const end = (): void => {
      if (ended) return;
      ended = true;
      streams.delete(end);
      unsubscribe?.();
      res.end();
    };
    streams.add(end);
    req.raw.on('close', end);
    unsubscribe = feed.subscribe((f) => {
      if (ended) return;
      if (!valid()) {
        res.write('event: logout\ndata: {}\n\n');
        end();
        return;
      }
      res.write(`data: ${JSON.stringify({ ...f, readOnly: readOnly() })}\n\n`);
    });
    if (ended) unsubscribe();
  });
}
