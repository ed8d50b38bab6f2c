// The admin API's read-only questions about decisions: GET /v1/flows/explain (what the data plane would do with
// one tuple's packet now) and POST /v1/plan (what a reload or an API write would do before it is applied; nothing
// is applied). Registered by server.ts behind the same authentication as every route.
import type { FastifyInstance } from 'fastify';
import { ControlError, type Controller, type PlanRequest } from '../control/controller';
import { Subject } from '../config/options';
import { parseBackend } from '../config/address-syntax';
import { errorResponse, maxFlows, obj, weight } from './schemas';
import { MAX_FLOWS_LIMIT } from '../dataplane/tables';


/** ADDR:PORT (IPv6 as [ADDR]:PORT), the port required. */
export function endpointArg(text: string, where: string): { addr: string; port: number } {
  const s = Subject.named(where);
  const b = parseBackend(text, s);
  if (b.port === undefined || text.includes('@')) throw new ControlError(400, `${where} must be ADDR:PORT (IPv6 as [ADDR]:PORT), got ${JSON.stringify(text)}`);
  return { addr: b.addr, port: b.port };
}

type PlanBody = { reload?: boolean; config?: string; op?: 'add' | 'remove' | 'weight' | 'max_flows' | 'drain' | 'undrain'; service?: string; backend?: string; weight?: number; max_flows?: number | null; name?: string };

/** The change a plan body asks about, or a 400 naming what is wrong. */
export function planRequest(ctrl: Controller, body: PlanBody): PlanRequest {
  const kinds = (['reload', 'config', 'op'] as const).filter((k) => body[k] !== undefined);
  if (kinds.length !== 1) throw new ControlError(400, `body must give exactly one of reload (true: the config file), config (a config's YAML text) or op (add, remove, weight, max_flows, drain, undrain), got ${kinds.length ? kinds.join(' and ') : 'none'}`);
  const extra = (Object.keys(body) as Array<keyof PlanBody>).filter((k) => k !== kinds[0] && body[k] !== undefined);
  if (body.reload !== undefined) {
    if (body.reload !== true) throw new ControlError(400, 'body/reload must be true (plan a reload of the config file)');
    if (extra.length) throw new ControlError(400, `body/reload takes nothing else, got ${extra.join(', ')}`);
    return { reload: true };
  }
  if (body.config !== undefined) {
    if (extra.length) throw new ControlError(400, `body/config takes nothing else, got ${extra.join(', ')}`);
    return { config: body.config };
  }
  const op = body.op!;
  const { service, backend } = body;
  if (service === undefined || backend === undefined) throw new ControlError(400, `body/op ${op} needs body/service (a service id) and body/backend`);
  const allowed: Record<string, readonly string[]> = { add: ['service', 'backend', 'weight', 'name'], weight: ['service', 'backend', 'weight'], max_flows: ['service', 'backend', 'max_flows'] };
  const stray = extra.filter((k) => !(allowed[op] ?? ['service', 'backend']).includes(k));
  if (stray.length) throw new ControlError(400, `body/op ${op} does not take ${stray.join(', ')}`);
  if (op === 'add') {
    const s = ctrl.serviceById(service);
    const b = parseBackend(backend, Subject.named('body/backend'));
    if (backend.includes('@')) throw new ControlError(400, 'body/backend: give the weight as body/weight, not "@W"');
    return { op, service, backend: { addr: b.addr, family: b.family, port: b.port ?? s.port, weight: body.weight ?? 1, ...(body.name !== undefined ? { name: body.name } : {}) } };
  }
  if (op === 'weight') {
    if (body.weight === undefined) throw new ControlError(400, 'body/op weight needs body/weight (0-65535)');
    return { op, service, backend, weight: body.weight };
  }
  if (op === 'max_flows') {
    if (body.max_flows === undefined) throw new ControlError(400, `body/op max_flows needs body/max_flows (1-${MAX_FLOWS_LIMIT}, or null for no limit)`);
    return { op, service, backend, maxFlows: body.max_flows };
  }
  return { op, service, backend };
}

export function registerPlanRoutes(app: FastifyInstance, ctrl: Controller): void {
  app.get<{ Querystring: { proto: 'tcp' | 'udp'; client: string; vip: string; packet?: 'next' | 'syn' } }>(
    '/v1/flows/explain',
    {
      schema: {
        summary:
          "What the data plane would do now with the client's next packet of one tuple (or with packet=syn, a client's SYN: a new connection on the tuple, which may leave a live entry): source list, rate limit, flow-table entry or ring slot (and the previous ring's choice), the backend and its state, both rewrites. Reads only",
        querystring: {
          type: 'object',
          additionalProperties: false,
          required: ['proto', 'client', 'vip'],
          properties: {
            proto: { type: 'string', enum: ['tcp', 'udp'] },
            client: { type: 'string', description: 'CLIENT:PORT (IPv6 as [ADDR]:PORT)' },
            vip: { type: 'string', description: 'VIP:PORT (IPv6 as [ADDR]:PORT)' },
            packet: { type: 'string', enum: ['next', 'syn'], description: "next (default): the tuple's next packet; syn: a client's SYN without ACK (TCP)" },
          },
        },
        response: { 200: obj('explanation'), 400: errorResponse },
      },
    },
    async (req) => {
      const c = endpointArg(req.query.client, 'querystring/client');
      const v = endpointArg(req.query.vip, 'querystring/vip');
      return ctrl.explain({ proto: req.query.proto, client: c.addr, clientPort: c.port, vip: v.addr, vipPort: v.port, syn: req.query.packet === 'syn' });
    },
  );

  app.post<{ Body: PlanBody }>(
    '/v1/plan',
    {
      schema: {
        summary:
          'What a change would do, applying nothing: per backend the ring slots before and after and the new share, and how many live flows the new ring would send elsewhere if they lost their entries. Body: {reload: true} (the config file), {config: YAML text}, or {op: add|remove|weight|max_flows|drain|undrain, service, backend, weight?, max_flows?, name?}',
        body: {
          type: 'object',
          additionalProperties: false,
          properties: {
            reload: { type: 'boolean' },
            config: { type: 'string', maxLength: 60000 },
            op: { type: 'string', enum: ['add', 'remove', 'weight', 'max_flows', 'drain', 'undrain'] },
            service: { type: 'string' },
            backend: { type: 'string' },
            weight,
            max_flows: maxFlows,
            name: { type: 'string', pattern: '^[A-Za-z0-9_.:-]{1,64}$' },
          },
        },
        response: { 200: obj('plan'), 400: errorResponse, 404: errorResponse, 409: errorResponse },
      },
    },
    async (req) => ctrl.plan(planRequest(ctrl, req.body ?? {})),
  );
}
