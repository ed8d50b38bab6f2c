// The admin API's flow-table routes: GET /v1/flows (entries, like ipvsadm -Lnc, filtered and paged) and DELETE
// /v1/flows (remove matching entries). Registered by server.ts behind the same authentication as every route.
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { isIP } from 'net';
import { ControlError, type Controller, type FlowQuery } from '../control/controller';
import { FLOW_STATES, type FlowState } from '../dataplane/native';
import { errorResponse, obj } from './schemas';

/** `writeLog(req, status)`: the server's log line of an admin write. */
export function registerFlowRoutes(app: FastifyInstance, ctrl: Controller, writeLog: (req: FastifyRequest, status: number) => void): void {
  const flowQuery = {
    type: 'object',
    additionalProperties: false,
    properties: {
      service: { type: 'string', description: 'service id' },
      backend: { type: 'string', description: 'backend id' },
      client: { type: 'string', description: 'client IP address' },
    },
  } as const;
  type FlowQs = { service?: string; backend?: string; client?: string; limit?: string; state?: string; cursor?: string };
  const toQuery = (q: FlowQs): FlowQuery => {
    const out: FlowQuery = {};
    if (q.service !== undefined) out.service = q.service;
    if (q.backend !== undefined) out.backend = q.backend;
    if (q.client !== undefined) {
      if (!isIP(q.client)) throw new ControlError(400, `querystring/client must be an IP address, got ${JSON.stringify(q.client)}`);
      out.client = q.client;
    }
    if (q.limit !== undefined) {
      if (!/^\d+$/.test(q.limit) || Number(q.limit) < 1 || Number(q.limit) > 100000) throw new ControlError(400, `querystring/limit must be a whole number from 1 to 100000, got ${JSON.stringify(q.limit)}`);
      out.limit = Number(q.limit);
    }
    if (q.state !== undefined) {
      const states = q.state.split(',');
      const bad = states.find((st) => !(FLOW_STATES as readonly string[]).includes(st));
      if (bad !== undefined) throw new ControlError(400, `querystring/state must be a comma-separated list of ${FLOW_STATES.join(', ')}, got ${JSON.stringify(bad)}`);
      out.state = states as FlowState[];
    }
    if (q.cursor !== undefined) {
      if (!/^\d{1,15}$/.test(q.cursor)) throw new ControlError(400, `querystring/cursor must be the "next" of a previous page (a whole number), got ${JSON.stringify(q.cursor)}`);
      out.cursor = Number(q.cursor);
    }
    return out;
  };

  app.get<{ Querystring: FlowQs }>(
    '/v1/flows',
    {
      schema: {
        summary:
          'Flow-table entries (like ipvsadm -Lnc), filtered by service, backend, client and/or state; at most limit (default 1000). A page walks a bounded part of the table: when next is not null, ask again with cursor=next for more',
        querystring: {
          ...flowQuery,
          properties: {
            ...flowQuery.properties,
            limit: { type: 'string', pattern: '^[0-9]+$' },
            state: { type: 'string', description: `comma-separated: ${FLOW_STATES.join(', ')}` },
            cursor: { type: 'string', pattern: '^[0-9]+$', description: 'the next of the previous page' },
          },
        },
        response: { 200: obj('flows'), 400: errorResponse, 404: errorResponse },
      },
    },
    async (req) => ctrl.listFlows(toQuery(req.query)),
  );

  app.delete<{ Querystring: FlowQs }>(
    '/v1/flows',
    {
      schema: {
        summary: 'Remove flow-table entries matching service, backend and/or client (at least one). Their next packets are forwarded by the current ring; TCP flows landing on another backend are reset by it',
        querystring: flowQuery,
        response: { 200: obj('{deleted}'), 400: errorResponse, 404: errorResponse },
      },
    },
    async (req) => {
      const deleted = await ctrl.deleteFlows(toQuery(req.query));
      writeLog(req, 200);
      return { deleted };
    },
  );
}
