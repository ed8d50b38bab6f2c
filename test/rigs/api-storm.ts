// Admin API request storm, run inside the lb namespace (the API listens on loopback there):
//
//   node api-storm.js [--port 9180] [--requests N] [--concurrency C] [--timeout-ms 10000] [--token-file F]
//
// Requests carry the bearer token from F (default: the one l4nat creates, /var/lib/l4nat/admin.token), so they
// reach the routes.
// N requests, C at a time, cycling through a mix: the heavy reads (GET /v1/services, /metrics, /v1/flows),
// cheap ones (/v1/status), rejected writes (unknown service, malformed JSON, a body over 1 MiB) and unknown paths.
// Prints one JSON line: status counts, connection errors, latency percentiles, elapsed time. Bounded by N and by
// the per-request timeout; a fresh connection per request (no keep-alive), as a flood of clients would.
import { readFileSync } from 'node:fs';
import http from 'node:http';
import { UP_DEFAULTS } from '../../src/config/options';

export interface StormReport {
  requests: number;
  statuses: Record<string, number>;
  errors: Record<string, number>;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  elapsedMs: number;
  perSecond: number;
}

const BIG = 'x'.repeat(2 * 1024 * 1024);
const MIX: Array<{ method: string; path: string; body?: string; type?: string }> = [
  { method: 'GET', path: '/v1/services' },
  { method: 'GET', path: '/metrics' },
  { method: 'GET', path: '/v1/flows?limit=100' },
  { method: 'GET', path: '/v1/status' },
  { method: 'POST', path: '/v1/services/10.9.9.9%3A1%2Ftcp/backends', body: '{"backend":"10.9.9.10:1"}', type: 'application/json' },
  { method: 'POST', path: '/v1/reload', body: '{"not json', type: 'application/json' },
  { method: 'GET', path: '/v1/no/such/path' },
  { method: 'GET', path: '/v1/services' },
];

function one(port: number, r: (typeof MIX)[number], timeoutMs: number, big: boolean, token: string): Promise<{ status: string; ms: number }> {
  const t0 = Date.now();
  return new Promise((resolve) => {
    const body = big ? BIG : r.body;
    const req = http.request(
      {
        host: '127.0.0.1',
        port,
        method: big ? 'POST' : r.method,
        path: big ? '/v1/reload' : r.path,
        agent: false,
        timeout: timeoutMs,
        headers: { authorization: `Bearer ${token}`, ...(body !== undefined ? { 'content-type': r.type ?? 'application/json', 'content-length': Buffer.byteLength(body) } : {}) },
      },
      (res) => {
        res.resume();
        res.on('end', () => resolve({ status: String(res.statusCode), ms: Date.now() - t0 }));
        res.on('error', () => resolve({ status: 'ERES', ms: Date.now() - t0 }));
      },
    );
    req.on('timeout', () => req.destroy(Object.assign(new Error('timeout'), { code: 'ETIMEDOUT' })));
    req.on('error', (e: NodeJS.ErrnoException) => resolve({ status: e.code ?? 'EUNKNOWN', ms: Date.now() - t0 }));
    req.end(body);
  });
}

export async function storm(port: number, requests: number, concurrency: number, timeoutMs: number, token: string): Promise<StormReport> {
  const statuses: Record<string, number> = {};
  const errors: Record<string, number> = {};
  const ms: number[] = [];
  let next = 0;
  const t0 = Date.now();
  const worker = async (): Promise<void> => {
    for (let i = next++; i < requests; i = next++) {
      // Every 100th request carries a 2 MiB body.
      const r = await one(port, MIX[i % MIX.length]!, timeoutMs, i % 100 === 99, token);
      if (/^\d+$/.test(r.status)) statuses[r.status] = (statuses[r.status] ?? 0) + 1;
      else errors[r.status] = (errors[r.status] ?? 0) + 1;
      ms.push(r.ms);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  const elapsedMs = Date.now() - t0;
  ms.sort((a, b) => a - b);
  const pct = (p: number): number => ms[Math.min(ms.length - 1, Math.ceil((p / 100) * ms.length) - 1)] ?? NaN;
  return { requests, statuses, errors, p50Ms: pct(50), p99Ms: pct(99), maxMs: ms[ms.length - 1] ?? NaN, elapsedMs, perSecond: Math.round((requests * 1000) / elapsedMs) };
}

if (require.main === module) {
  const a = process.argv.slice(2);
  const get = (k: string, d: number): number => {
    const i = a.indexOf(k);
    const v = i >= 0 ? Number(a[i + 1]) : d;
    if (!Number.isInteger(v) || v < 1) {
      process.stderr.write(`api-storm: ${k} must be a positive integer\n`);
      process.exit(2);
    }
    return v;
  };
  const requests = Math.min(get('--requests', 2000), 1_000_000);
  const concurrency = Math.min(get('--concurrency', 50), 2000);
  const tf = a.indexOf('--token-file');
  const token = readFileSync(tf >= 0 ? a[tf + 1]! : UP_DEFAULTS.adminTokenFile, 'utf8').trim();
  storm(get('--port', 9180), requests, concurrency, get('--timeout-ms', 10_000), token).then(
    (r) => {
      process.stdout.write(`${JSON.stringify(r)}\n`, () => process.exit(0));
    },
    (e: Error) => {
      process.stderr.write(`api-storm: ${e.message}\n`);
      process.exit(1);
    },
  );
}
