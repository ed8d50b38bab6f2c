// The admin API (REST, JSON; fastify): read services, backends, health history and counters; add, remove,
// re-weight, drain and undrain backends; reload the config; Prometheus /metrics; its own OpenAPI
// description at /openapi.json. Request bodies and parameters are checked against JSON schemas (unknown
// keys rejected, no type coercion); every write goes through the Controller, so a rejected one changes
// nothing.
//
// Security: 127.0.0.1 by default, and always authenticated: a bearer token (by default one l4nat creates at first
// start in its state directory, owner-only, which the CLI run as root or as the l4nat user reads), client
// certificates (mTLS against a configured CA), or nothing only as an explicit loopback-only opt-in
// (insecure_no_auth, warned at start). The config refuses any other listen address without TLS. Every request
// passes the checks of access.ts (this host's name, no foreign web page, authentication) before routing, so a
// refused request learns nothing (not even which paths exist, nor whether its URL parses). Bodies are JSON only:
// a browser's cross-site form or text/plain POST gets 415. The dashboard (GET /, its login form, its event stream:
// dashboard.ts) is registered here and passes the same checks; a browser's session cookie authenticates like the token.
import fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import swagger from '@fastify/swagger';
import { readFileSync } from 'fs';
import type { AddressInfo } from 'net';
import { ControlError, DRAIN_DEADLINE_MAX_S, type Controller } from '../control/controller';
import type { Logger } from '../util/log';
import { monotonicMs } from '../util/clock';
import { isLoopback, type AdminConfig } from '../config/model';
import type { Registry } from 'prom-client';
import { isRefusal, requestAccess, type Refusal } from './access';
import { DASHBOARD_PUBLIC, registerDashboard, type DashboardDeps } from './dashboard';
import { SessionStore } from './session';
import { OptionError, Subject } from '../config/options';
import { parseBackend } from '../config/address-syntax';
import type { TraceHub } from '../trace/hub';
import { registerTraceRoute } from './trace-route';
import { registerPlanRoutes } from './plan-routes';
import { registerFlowRoutes } from './flow-routes';
import { errorResponse, maxFlows, obj, weight } from './schemas';
import { registerClusterRoute } from './cluster-route';
import type { ClusterView } from '../cluster/view';

export const API_VERSION = '1';

export interface AdminDeps {
  ctrl: Controller;
  admin: AdminConfig;
  log: Logger;
  metrics?: Registry;
  /** Extra facts for GET /v1/status (queues, TUN name, ...). */
  info?: () => Record<string, unknown>;
  /** Starts a handover restart (the running l4nat exits keeping TUN, routes and rules; see src/daemon/up.ts), or
   * with `live` a live handover (it starts its successor and leaves once that forwards: src/daemon/live-handover.ts). */
  restart?: (live: boolean) => void;
  /** The verdict trace behind GET /v1/trace (src/trace/hub.ts); without it the route does not exist. */
  trace?: TraceHub;
  /** What the dashboard (GET /) shows beyond the controller's views: the rings, the flow table's size. */
  dashboard?: DashboardDeps;
  /** Every cluster host's view (GET /v1/cluster, src/cluster/view.ts); without it the route says there is no cluster. */
  cluster?: () => ClusterView;
}

const sid = { type: 'string', description: 'service id, e.g. 10.0.0.10:80/tcp or [fd00::10]:80/tcp (URL-encoded)' };
const bid = { type: 'string', description: 'backend id, e.g. 10.0.1.11:8080/tcp (URL-encoded)' };
const serviceParams = { type: 'object', required: ['service'], properties: { service: sid } } as const;
const backendParams = { type: 'object', required: ['service', 'backend'], properties: { service: sid, backend: bid } } as const;

export async function createAdminServer(deps: AdminDeps): Promise<FastifyInstance> {
  const { ctrl, admin } = deps;
  const tls = admin.tls;
  if (!admin.tokenFile && !tls?.clientCa && !admin.insecureNoAuth) {
    throw new Error('the admin API needs authentication: a token file, a client CA, or insecure_no_auth (loopback only)');
  }
  if (admin.insecureNoAuth && !isLoopback(admin.listen)) throw new Error(`insecure_no_auth is for a loopback listen address only, got ${admin.listen}`);
  const sessions = new SessionStore();
  const access = requestAccess(admin, {
    currentToken: () => ctrl.token,
    sessions,
    readOnly: () => ctrl.opts.admin.dashboard?.readOnly ?? false,
    isPublic: DASHBOARD_PUBLIC,
  });
  const refuse = (reply: FastifyReply, r: Refusal): FastifyReply => {
    if (r.bearer) reply.header('www-authenticate', 'Bearer');
    return reply.code(r.status).send({ error: r.error });
  };

  const app = fastify({
    loggerInstance: deps.log.child({ component: 'admin' }),
    disableRequestLogging: true,
    bodyLimit: 64 * 1024,
    // At close (l4nat stopping) every connection goes, not only idle keep-alive ones: a browser's spare connection
    // that never sent a request, or a dashboard's event stream, would otherwise hold the stop for a minute.
    forceCloseConnections: true,
    // A URL that does not parse is answered here, before the hooks: the same refusal first, so it learns nothing.
    frameworkErrors: (err: Error, req: FastifyRequest, reply: FastifyReply) => {
      const r = access(req);
      if (isRefusal(r)) return refuse(reply, r);
      return reply.code(400).send({ error: `bad request: ${err.message}` });
    },
    ajv: { customOptions: { removeAdditional: false, coerceTypes: false, useDefaults: true, allErrors: false } },
    ...(tls
      ? {
          https: {
            cert: readFileSync(tls.cert),
            key: readFileSync(tls.key),
            ...(tls.clientCa ? { ca: readFileSync(tls.clientCa), requestCert: true, rejectUnauthorized: false } : {}),
          },
        }
      : {}),
  }) as unknown as FastifyInstance;

  await app.register(swagger, {
    openapi: {
      openapi: '3.0.3',
      info: {
        title: 'l4nat admin API',
        version: API_VERSION,
        description: 'Services, backends, health, drain, reload and counters of a running l4nat. Ids are URL-encoded in paths.',
      },
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
      security: [{ bearer: [] }],
    },
  });

  // JSON bodies only: fastify would also parse text/plain, which a web page may POST cross-site without asking.
  app.removeContentTypeParser(['text/plain']);

  // Host, origin and authentication first, before routing: a refusal says nothing about what exists.
  app.decorateRequest('caller', null);
  app.addHook('onRequest', async (req: FastifyRequest, reply: FastifyReply) => {
    const r = access(req);
    if (isRefusal(r)) return refuse(reply, r);
    req.caller = r;
    return undefined;
  });

  app.setErrorHandler((err: Error & { statusCode?: number; validation?: unknown; validationContext?: string; code?: string }, req, reply) => {
    if (err instanceof ControlError) return reply.code(err.status).send({ error: err.message });
    if (err.validation) return reply.code(400).send({ error: `${err.message}` });
    if (err instanceof OptionError) return reply.code(400).send({ error: err.message });
    if (err.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') return reply.code(415).send({ error: `request bodies must be application/json, got ${JSON.stringify(req.headers['content-type'] ?? 'none')}` });
    if (err.statusCode && err.statusCode < 500) return reply.code(err.statusCode).send({ error: err.message });
    // The detail (paths, internals) goes to the log only.
    deps.log.error({ err, method: req.method, url: req.url, reqId: req.id }, 'admin request failed');
    return reply.code(500).send({ error: `internal error (request ${req.id}; the l4nat log has the details)` });
  });
  app.setNotFoundHandler((req, reply) => reply.code(404).send({ error: `no route ${req.method} ${req.url.split('?')[0]}` }));

  const writeLog = (req: FastifyRequest, status: number): void => {
    deps.log.info({ event: 'admin_write', method: req.method, path: req.url, status, remote: req.ip }, 'admin: write');
  };

  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());

  app.get('/v1/services', { schema: { summary: 'Services, backends (state, health, weights, counters) and data-plane counters', response: { 200: obj('services view') } } }, async () => ctrl.view());

  app.get<{ Params: { service: string } }>(
    '/v1/services/:service',
    { schema: { summary: 'One service, with each backend\'s health history', params: serviceParams, response: { 200: obj('service view'), 404: errorResponse } } },
    async (req) => ctrl.serviceView(ctrl.serviceById(req.params.service), ctrl.counters(), Date.now(), true),
  );

  app.get<{ Params: { service: string; backend: string } }>(
    '/v1/services/:service/backends/:backend',
    { schema: { summary: 'One backend: state, health history (last checks, transitions), drain progress, counters', params: backendParams, response: { 200: obj('backend view'), 404: errorResponse } } },
    async (req) => {
      const s = ctrl.serviceView(ctrl.serviceById(req.params.service), ctrl.counters(), Date.now(), true);
      const b = s.backends.find((x) => x.id === req.params.backend);
      if (!b) throw new ControlError(404, `no backend ${req.params.backend} in service ${req.params.service}`);
      return b;
    },
  );

  app.post<{ Params: { service: string }; Body: { backend: string; weight?: number; name?: string; max_flows?: number } }>(
    '/v1/services/:service/backends',
    {
      schema: {
        summary: 'Add a backend to a service (not written to the config file: a reload drops it)',
        params: serviceParams,
        body: {
          type: 'object',
          additionalProperties: false,
          required: ['backend'],
          properties: {
            backend: { type: 'string', description: 'ADDR[:PORT] (IPv6 as [ADDR]:PORT); the port defaults to the service port' },
            weight,
            name: { type: 'string', pattern: '^[A-Za-z0-9_.:-]{1,64}$' },
            max_flows: { ...maxFlows, type: 'integer' },
          },
        },
        response: { 201: obj('services view'), 400: errorResponse, 404: errorResponse, 409: errorResponse },
      },
    },
    async (req, reply) => {
      if (ctrl.backendWritesRefused) throw new ControlError(409, ctrl.backendWritesRefused); // before any lookup
      const s = ctrl.serviceById(req.params.service);
      const b = parseBackend(req.body.backend, Subject.named('body/backend'));
      if (req.body.backend.includes('@')) throw new ControlError(400, 'body/backend: give the weight as body/weight, not "@W"');
      await ctrl.addBackend(req.params.service, {
        addr: b.addr,
        family: b.family,
        port: b.port ?? s.port,
        weight: req.body.weight ?? 1,
        ...(req.body.name !== undefined ? { name: req.body.name } : {}),
        ...(req.body.max_flows !== undefined ? { maxFlows: req.body.max_flows } : {}),
      });
      writeLog(req, 201);
      return reply.code(201).send(ctrl.view());
    },
  );

  app.patch<{ Params: { service: string; backend: string }; Body: { weight?: number; max_flows?: number | null } }>(
    '/v1/services/:service/backends/:backend',
    {
      schema: {
        summary: "Set a backend's weight and/or its max_flows (null: no limit), as one change",
        params: backendParams,
        body: { type: 'object', additionalProperties: false, minProperties: 1, properties: { weight, max_flows: maxFlows } },
        response: { 200: obj('services view'), 400: errorResponse, 404: errorResponse },
      },
    },
    async (req) => {
      const { weight: w, max_flows: mf } = req.body;
      await ctrl.updateBackend(req.params.service, req.params.backend, { ...(w !== undefined ? { weight: w } : {}), ...(mf !== undefined ? { maxFlows: mf } : {}) });
      writeLog(req, 200);
      return ctrl.view();
    },
  );

  app.delete<{ Params: { service: string; backend: string } }>(
    '/v1/services/:service/backends/:backend',
    { schema: { summary: 'Remove a backend (its flows lose their translation: drain first)', params: backendParams, response: { 200: obj('services view'), 404: errorResponse } } },
    async (req) => {
      await ctrl.removeBackend(req.params.service, req.params.backend);
      writeLog(req, 200);
      return ctrl.view();
    },
  );

  const backendOf = (service: string, backend: string): unknown => {
    const s = ctrl.serviceView(ctrl.serviceById(service), ctrl.counters());
    return s.backends.find((x) => x.id === backend);
  };

  app.post<{ Params: { service: string; backend: string }; Body: { deadline?: number } | undefined }>(
    '/v1/services/:service/backends/:backend/drain',
    {
      schema: {
        summary:
          'Drain: out of the ring, established flows go on. Poll the backend: drain.done turns true once it has no live flow left (drain.liveFlows, ' +
          'drain.oldestFlowSeconds, drain.estimatedDoneAt). With {"deadline": S} the flows left after S seconds are removed (again for a drain under way: moves its deadline)',
        params: backendParams,
        body: {
          type: ['object', 'null'],
          additionalProperties: false,
          properties: { deadline: { type: 'integer', minimum: 1, maximum: DRAIN_DEADLINE_MAX_S, description: 'seconds until the flows left are removed' } },
        },
        response: { 202: obj('backend view'), 400: errorResponse, 404: errorResponse },
      },
    },
    async (req, reply) => {
      await ctrl.drain(req.params.service, req.params.backend, req.body?.deadline);
      writeLog(req, 202);
      return reply.code(202).send(backendOf(req.params.service, req.params.backend));
    },
  );

  app.post<{ Params: { service: string; backend: string } }>(
    '/v1/services/:service/backends/:backend/undrain',
    { schema: { summary: 'Undrain: back into the ring (if healthy)', params: backendParams, response: { 200: obj('backend view'), 404: errorResponse } } },
    async (req) => {
      await ctrl.undrain(req.params.service, req.params.backend);
      writeLog(req, 200);
      return backendOf(req.params.service, req.params.backend);
    },
  );

  app.post<{ Querystring: { live?: 'true' | 'false' } }>(
    '/v1/restart',
    {
      schema: {
        summary:
          'Handover restart (as SIGUSR2): l4nat exits with status 75 keeping its TUN, routes, rules and flow table file; the next l4nat with the same configuration (systemd restarts it) takes over every flow. live=true: l4nat starts its successor itself, which forwards through the same flow table before this one exits 0 (no moment without a reader on the TUN); if the successor fails, this one goes on',
        querystring: { type: 'object', additionalProperties: false, properties: { live: { type: 'string', enum: ['true', 'false'] } } },
        response: { 202: obj('{restarting, live, exitCode}'), 400: errorResponse, 501: errorResponse },
      },
    },
    async (req, reply) => {
      if (!deps.restart) throw new ControlError(501, 'this l4nat cannot restart itself');
      writeLog(req, 202);
      const go = deps.restart;
      const live = req.query.live === 'true';
      setImmediate(() => go(live));
      return reply.code(202).send({ restarting: true, live, exitCode: live ? 0 : 75 });
    },
  );

  app.post('/v1/reload', { schema: { summary: 'Re-read the config file and apply all of it or nothing (as SIGHUP)', response: { 200: obj('what changed'), 400: errorResponse, 409: errorResponse } } }, async (req) => {
    const r = await ctrl.reload();
    writeLog(req, 200);
    return r;
  });

  registerFlowRoutes(app, ctrl, writeLog);
  registerPlanRoutes(app, ctrl);
  registerClusterRoute(app, deps.cluster);

  app.get('/v1/status', { schema: { summary: 'Summary: uptime, config file, last reload, backend states, worker liveness', response: { 200: obj('status') } } }, async () => {
    const c = ctrl.counters();
    const now = monotonicMs();
    return {
      version: API_VERSION,
      startedAt: ctrl.startedAt.toISOString(),
      uptimeSeconds: Math.round((Date.now() - ctrl.startedAt.getTime()) / 1000),
      configFile: ctrl.opts.configFile ?? null,
      lastReload: ctrl.lastReload ?? null,
      summary: ctrl.summary(),
      workers: c.heartbeatsMs.map((hb, i) => ({ queue: i, heartbeatAgeMs: Math.max(0, now - hb) })),
      flows: ctrl.flowCount(),
      sync: ctrl.syncStatus?.() ?? null,
      ...(deps.info?.() ?? {}),
    };
  });

  app.get('/v1/counters', { schema: { summary: 'Data-plane counters: totals, per queue, drops by reason', response: { 200: obj('counters') } } }, async () => {
    const c = ctrl.counters();
    return { total: c.total, perQueue: c.perQueue, drops: c.drops, heartbeatsMs: c.heartbeatsMs };
  });

  await registerDashboard(app, { ctrl, admin, sessions, log: deps.log, ...deps.dashboard });
  if (deps.trace) registerTraceRoute(app, deps.trace);

  if (deps.metrics) {
    const reg = deps.metrics;
    app.get('/metrics', { schema: { summary: 'Prometheus metrics (text exposition format)' } }, async (_req, reply) => {
      const body = await reg.metrics();
      return reply.type(reg.contentType).send(body);
    });
  }
  return app;
}

/** Starts the admin API; resolves with the bound address. */
export async function listenAdmin(app: FastifyInstance, admin: AdminConfig): Promise<AddressInfo> {
  await app.listen({ host: admin.listen, port: admin.port });
  return app.server.address() as AddressInfo;
}
