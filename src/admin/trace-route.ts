// GET /v1/trace: a live trace of the packets a match takes (src/trace/hub.ts), streamed as newline-delimited JSON
// (src/trace/events.ts): a `start` line, a `packet` line per traced packet (and `wire` lines with pcap=1), `lost`
// when the data plane's rings overflowed, and an `end` line. Authenticated like every route (the server's
// onRequest hook runs first). The match is installed while the client is connected and removed when it goes.
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { TraceEvent } from '../trace/events';
import { Subject } from '../config/options';
import type { TraceHub } from '../trace/hub';
import { parseTraceRequest, TRACE_MAX_COUNT, TRACE_MAX_SECONDS, TRACE_PARAMS, unknownTraceParams, type TraceParam } from '../trace/request';

/** Unsent bytes a slow client may leave queued; packets beyond are skipped and reported as `lost`. */
const MAX_QUEUED_BYTES = 4 * 1024 * 1024;

export function registerTraceRoute(app: FastifyInstance, hub: TraceHub): void {
  app.get<{ Querystring: Record<string, string> }>(
    '/v1/trace',
    {
      schema: {
        summary:
          `Trace packets live: newline-delimited JSON, one line per packet the match takes (as read and as written, the data plane's verdict), ending after count packets (default 1000, at most ${TRACE_MAX_COUNT}) or seconds (default 60, at most ${TRACE_MAX_SECONDS}) or when the client disconnects. pcap=1 adds the packets on the TUN (wire lines, base64)`,
        querystring: {
          type: 'object',
          properties: Object.fromEntries(TRACE_PARAMS.map((p) => [p, { type: 'string' }])),
        },
      },
    },
    async (req: FastifyRequest<{ Querystring: Record<string, string> }>, reply) => {
      const bad = unknownTraceParams(Object.keys(req.query));
      if (bad) throw bad;
      const r = parseTraceRequest((p: TraceParam) => req.query[p], (p) => Subject.named(`querystring/${p}`));
      let done = false;
      const raw = reply.raw;
      const pending: string[] = [];
      let started = false;
      let skipped = 0;
      const write = (e: TraceEvent): void => {
        if (!started) return void pending.push(`${JSON.stringify(e)}\n`);
        if (raw.destroyed) return;
        if ((e.type === 'packet' || e.type === 'wire') && raw.writableLength > MAX_QUEUED_BYTES) {
          skipped++;
          return;
        }
        if (skipped) raw.write(`${JSON.stringify({ type: 'lost', records: skipped, slowClient: true })}\n`);
        skipped = 0;
        raw.write(`${JSON.stringify(e)}\n`);
      };
      const session = hub.open(r, (e) => {
        write(e);
        if (e.type === 'end') {
          done = true;
          if (started) raw.end();
        }
      });
      reply.hijack();
      raw.writeHead(200, { 'content-type': 'application/x-ndjson', 'cache-control': 'no-store', 'x-content-type-options': 'nosniff' });
      started = true;
      for (const l of pending.splice(0)) raw.write(l);
      if (done) raw.end();
      raw.on('close', () => session.close()); // the answer ended, or the client went
    },
  );
}
