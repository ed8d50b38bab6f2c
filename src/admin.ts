// The admin API (REST, JSON) — the part the data plane needs now: read services and counters, add,
// remove and re-weight backends. Listens on loopback only. Every write is validated first and applied
// atomically through Balancer.setServices: a rejected write changes nothing.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'http';
import type { AddressInfo } from 'net';
import { parseBackend, UsageError } from './up-args';
import type { Logger } from './log';
import { backendId, checkServices, serviceId, type ServiceSpec } from './model';
import type { Balancer } from './up';
import { backendKey } from './tables';

class HttpError extends Error {
  constructor(readonly status: number, message: string) {
    super(message);
  }
}

const MAX_BODY = 64 * 1024;

function readJson(req: IncomingMessage): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX_BODY) {
        reject(new HttpError(413, `body larger than ${MAX_BODY} bytes`));
        req.destroy();
      } else chunks.push(c);
    });
    req.on('end', () => {
      try {
        const v = JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}') as unknown;
        if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new Error('not an object');
        resolve(v as Record<string, unknown>);
      } catch {
        reject(new HttpError(400, 'body must be a JSON object'));
      }
    });
    req.on('error', reject);
  });
}

function findService(services: readonly ServiceSpec[], id: string): number {
  const i = services.findIndex((s) => serviceId(s) === id);
  if (i < 0) throw new HttpError(404, `no service ${id}; services are ${services.map(serviceId).join(', ')}`);
  return i;
}

function weightOf(v: unknown, dflt: number): number {
  if (v === undefined) return dflt;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > 65535) throw new HttpError(400, `weight must be an integer from 0 to 65535, got ${JSON.stringify(v)}`);
  return v;
}

export class AdminApi {
  private server?: Server;
  constructor(private readonly balancer: Balancer, private readonly log: Logger) {}

  /** Lists services with their backends and counters. */
  view(): unknown {
    const c = this.balancer.dp.counters();
    return {
      services: this.balancer.current.map((s) => {
        const slot = this.balancer.serviceSlot(serviceId(s));
        return {
          id: serviceId(s),
          vip: s.vip, port: s.port, proto: s.proto, hash: s.hash,
          counters: slot === undefined ? {} : c.services.get(slot) ?? {},
          backends: s.backends.map((b) => {
            const bslot = this.balancer.backendSlot(backendKey(s, b));
            return { id: backendId(b, s.proto), addr: b.addr, port: b.port, weight: b.weight, counters: bslot === undefined ? {} : c.backends.get(bslot) ?? {} };
          }),
        };
      }),
      dataplane: { counters: c.total, drops: c.drops, heartbeatsMs: c.heartbeatsMs, flows: this.balancer.dp.flowCount() },
    };
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<unknown> {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const parts = url.pathname.split('/').filter(Boolean).map(decodeURIComponent);
    if (req.method === 'GET' && url.pathname === '/v1/services') return this.view();
    // /v1/services/{serviceId}/backends[/{backendId}]
    if (parts[0] === 'v1' && parts[1] === 'services' && parts[3] === 'backends' && parts.length <= 5) {
      const services = this.balancer.current.map((s) => ({ ...s, backends: s.backends.map((b) => ({ ...b })) }));
      const si = findService(services, parts[2]);
      const s = services[si];
      if (req.method === 'POST' && parts.length === 4) {
        const body = await readJson(req);
        if (typeof body.backend !== 'string') throw new HttpError(400, 'body.backend must be a string ADDR[:PORT] (IPv6 as [ADDR]:PORT)');
        let b;
        try {
          b = parseBackend(body.backend);
        } catch (e) {
          throw new HttpError(400, (e as Error).message.replace(/^--backend/, 'body.backend'));
        }
        const spec = { addr: b.addr, family: b.family, port: b.port ?? s.port, weight: weightOf(body.weight, 1) };
        if (s.backends.some((x) => x.addr === spec.addr && x.port === spec.port)) throw new HttpError(409, `backend ${backendId(spec, s.proto)} already serves ${serviceId(s)}`);
        s.backends.push(spec);
      } else if ((req.method === 'DELETE' || req.method === 'PATCH') && parts.length === 5) {
        const bi = s.backends.findIndex((x) => backendId(x, s.proto) === parts[4]);
        if (bi < 0) throw new HttpError(404, `no backend ${parts[4]} in ${serviceId(s)}`);
        if (req.method === 'DELETE') s.backends.splice(bi, 1);
        else s.backends[bi].weight = weightOf((await readJson(req)).weight, s.backends[bi].weight);
      } else {
        throw new HttpError(405, `${req.method} not allowed on ${url.pathname}`);
      }
      try {
        checkServices(services);
      } catch (e) {
        throw new HttpError(400, (e as Error).message);
      }
      await this.balancer.setServices(services);
      this.log.info({ method: req.method, path: url.pathname }, 'admin: services updated');
      res.statusCode = req.method === 'POST' ? 201 : 200;
      return this.view();
    }
    throw new HttpError(404, `no route ${req.method} ${url.pathname}`);
  }

  listen(host: string, port: number): Promise<AddressInfo> {
    const server = createServer((req, res) => {
      this.handle(req, res)
        .then((body) => {
          res.setHeader('content-type', 'application/json');
          res.end(`${JSON.stringify(body)}\n`);
        })
        .catch((e: unknown) => {
          const status = e instanceof HttpError ? e.status : e instanceof UsageError ? 400 : 500;
          if (status === 500) this.log.error({ err: e }, 'admin request failed');
          res.statusCode = status;
          res.setHeader('content-type', 'application/json');
          res.end(`${JSON.stringify({ error: (e as Error).message })}\n`);
        });
    });
    this.server = server;
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => resolve(server.address() as AddressInfo));
    });
  }

  close(): void {
    this.server?.close();
  }
}
