// The l4nat admin API from the test side: HTTP requests to 127.0.0.1:PORT *inside* the lb namespace (the API
// listens on loopback only), made by a short node process started there with `ip netns exec`, with the bearer
// token l4nat created (default /var/lib/l4nat/admin.token; the file is read by that process, the token never
// appears on a command line).
// Layers: lab.ts (exec in a namespace) → this file → tests, conformance checks.
import net from 'node:net';
import type { Lab } from './lab';
import { UP_DEFAULTS } from '../config/options';
import { SERVICE_PORT } from './workload';

export const DEFAULT_ADMIN_PORT = 9180;
/** The token file an l4nat started without --admin-token-file uses (and creates). */
export const DEFAULT_ADMIN_TOKEN_FILE = UP_DEFAULTS.adminTokenFile;

/** JavaScript for a `node -e` script: `authHeader(file)` gives the Authorization header from a token file. */
export const AUTH_HEADER_JS = `const authHeader = (f) => ({ authorization: 'Bearer ' + require('fs').readFileSync(f, 'utf8').trim() });`;

export interface AdminResponse {
  status: number;
  body: unknown;
}

const SCRIPT = `${AUTH_HEADER_JS}
  const [port, method, path, body, tokenFile] = process.argv.slice(1);
  fetch('http://127.0.0.1:' + port + path, {
    method,
    headers: { ...authHeader(tokenFile), ...(body ? { 'content-type': 'application/json' } : {}) },
    body: body || undefined,
  }).then(async (r) => {
    const text = await r.text();
    let parsed = text;
    try { parsed = JSON.parse(text); } catch {}
    process.stdout.write(JSON.stringify({ status: r.status, body: parsed }));
  }).catch((e) => { process.stderr.write(String(e && e.message || e)); process.exit(1); });`;

/** One admin API request (path like "/v1/services"); resolves with the status and the parsed JSON body. */
export async function adminRequest(lab: Lab, method: string, path: string, body?: unknown, port = DEFAULT_ADMIN_PORT, tokenFile = DEFAULT_ADMIN_TOKEN_FILE): Promise<AdminResponse> {
  if (!/^(GET|POST|PATCH|DELETE)$/.test(method)) throw new TypeError(`method must be GET, POST, PATCH or DELETE, got ${method}`);
  if (!path.startsWith('/')) throw new TypeError(`path must start with "/", got ${JSON.stringify(path)}`);
  const { stdout } = await lab.exec('lb', process.execPath, ['-e', SCRIPT, String(port), method, path, body === undefined ? '' : JSON.stringify(body), tokenFile]);
  return JSON.parse(stdout) as AdminResponse;
}

interface ServiceView {
  id: string;
  vip: string;
  proto: string;
  backends: Array<{ id: string; addr: string; port: number; weight: number }>;
}

/** The services l4nat serves (GET /v1/services). */
export async function listServices(lab: Lab, port = DEFAULT_ADMIN_PORT): Promise<ServiceView[]> {
  const r = await adminRequest(lab, 'GET', '/v1/services', undefined, port);
  if (r.status !== 200) throw new Error(`GET /v1/services: ${r.status} ${JSON.stringify(r.body)}`);
  return (r.body as { services: ServiceView[] }).services;
}

/** Adds a lab backend to every service of its address families (POST .../backends). */
export async function adminAddBackend(lab: Lab, backendId: string, opts: { port?: number; adminPort?: number; weight?: number } = {}): Promise<string[]> {
  const b = lab.backend(backendId);
  const bport = opts.port ?? SERVICE_PORT;
  const done: string[] = [];
  for (const s of await listServices(lab, opts.adminPort)) {
    const addr = net.isIPv6(s.vip) ? (b.ipv6 !== null ? `[${b.ipv6}]` : null) : b.ipv4;
    if (addr === null) continue;
    const r = await adminRequest(lab, 'POST', `/v1/services/${encodeURIComponent(s.id)}/backends`, { backend: `${addr}:${bport}`, weight: opts.weight ?? 1 }, opts.adminPort);
    if (r.status !== 201) throw new Error(`add ${addr}:${bport} to ${s.id}: ${r.status} ${JSON.stringify(r.body)}`);
    done.push(s.id);
  }
  return done;
}

/** Sets a lab backend's weight in every service that has it (PATCH .../backends/{id}); 0 drains it. */
export async function adminSetWeight(lab: Lab, backendId: string, weight: number, adminPort = DEFAULT_ADMIN_PORT): Promise<string[]> {
  const b = lab.backend(backendId);
  const done: string[] = [];
  for (const s of await listServices(lab, adminPort)) {
    for (const x of s.backends) {
      if (x.addr !== b.ipv4 && x.addr !== b.ipv6) continue;
      const r = await adminRequest(lab, 'PATCH', `/v1/services/${encodeURIComponent(s.id)}/backends/${encodeURIComponent(x.id)}`, { weight }, adminPort);
      if (r.status !== 200) throw new Error(`weight ${weight} for ${x.id} in ${s.id}: ${r.status} ${JSON.stringify(r.body)}`);
      done.push(`${s.id} ${x.id}`);
    }
  }
  return done;
}
