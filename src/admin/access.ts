// Who may use the admin API, checked on every request before routing (src/admin/server.ts), so a refused request
// learns nothing, not even which paths exist: the request must name this host (an IP address, localhost, this
// host's name or a name in the TLS certificate: no DNS rebinding), come from no foreign web page (Origin,
// Sec-Fetch-Site), then authenticate (a client certificate signed by the configured CA, and/or the bearer token or
// the dashboard's session cookie with its CSRF header).
// Also the token file's creation at first start and the start-up log's description of the authentication.
import { X509Certificate } from 'crypto';
import { readFileSync } from 'fs';
import { isIP } from 'net';
import { hostname } from 'os';
import type { TLSSocket } from 'tls';
import type { FastifyRequest } from 'fastify';
import type { Logger } from '../util/log';
import type { AdminConfig } from '../config/model';
import { loadOrCreateSecret, newToken, parseToken } from '../config/secret-file';
import { CSRF_HEADER, cookieValue, sameSecret, sessionCookieName, type DashboardSession, type SessionStore } from './session';

/**
 * Before the admin API starts: creates the default token file when it does not exist yet (random, mode 0600),
 * and warns about an API without authentication.
 */
export function prepareAdminAuth(admin: AdminConfig, log: Logger): void {
  if (admin.port === 0) return;
  if (admin.insecureNoAuth) {
    log.warn({ admin: `${admin.listen}:${admin.port}` }, 'admin API WITHOUT AUTHENTICATION (insecure_no_auth): every local user can change backends, delete flows and restart l4nat');
  }
  if (admin.createToken && admin.tokenFile) {
    const file = admin.tokenFile;
    const remedy = 'point admin.token_file (--admin-token-file) at a file this user may read, or let systemd\'s StateDirectory=l4nat make its directory l4nat\'s own';
    if (loadOrCreateSecret(file, 'admin token file', newToken, (t) => parseToken(t, file, 'admin token file'), remedy).created) {
      log.info({ file }, 'created the admin API token (the CLI run as root or as the l4nat user reads it)');
    }
  }
}

/** How the admin API authenticates, for the start-up log. */
export function authDescription(admin: AdminConfig): string[] {
  if (admin.insecureNoAuth) return ['none (insecure_no_auth)'];
  return [admin.tokenFile ? `bearer token (${admin.tokenFile})` : '', admin.tls?.clientCa ? 'client certificate' : ''].filter(Boolean);
}

/** The host part of a Host header ("a:80", "[::1]:80", "a"), lower case, or undefined when it is malformed. */
function hostPart(header: string): string | undefined {
  const m = /^\[([0-9a-fA-F:.]+)\](?::\d{1,5})?$/.exec(header) ?? /^([^:[\]]+)(?::\d{1,5})?$/.exec(header);
  return m ? m[1].toLowerCase().replace(/\.$/, '') : undefined;
}

/** Names a request may address this API by, besides IP addresses: localhost, this host's name, the TLS certificate's DNS names. */
function ownNames(certFile: string | undefined): string[] {
  const names = ['localhost', hostname().toLowerCase()];
  if (certFile) {
    const san = new X509Certificate(readFileSync(certFile)).subjectAltName ?? '';
    for (const m of san.matchAll(/DNS:([^,\s]+)/g)) names.push(m[1].toLowerCase());
  }
  return names;
}

function nameMatches(host: string, names: readonly string[]): boolean {
  return names.some((n) => n === host || (n.startsWith('*.') && host.endsWith(n.slice(1)) && !host.slice(0, -n.length + 1).includes('.')));
}

export interface Refusal {
  status: number;
  error: string;
  bearer?: boolean; // answer with WWW-Authenticate: Bearer
}

/** Who a request that passed the checks comes from, and by which means it authenticated. */
export type Caller =
  | { via: 'token' }
  | { via: 'session'; id: string; session: DashboardSession }
  | { via: 'certificate' } // a client certificate, and no token configured
  | { via: 'none' } // insecure_no_auth
  | { via: 'public' }; // not authenticated, but a request anyone may make who passed the Host and origin checks (the login page)

export interface AccessOptions {
  /** The bearer token as last read (a reload may read a new one); undefined when none is loaded. */
  currentToken: () => string | undefined;
  sessions: SessionStore;
  /** admin.dashboard.read_only as it is now (a reload may change it). */
  readOnly: () => boolean;
  /** Requests open to anyone who passed the Host and origin checks, when they carry no valid session: the login page and form. */
  isPublic: (method: string, path: string) => boolean;
}

const READS = new Set(['GET', 'HEAD', 'OPTIONS']);
/** Writes a read-only dashboard still allows: they change only the caller's own session. */
const SESSION_WRITES = new Set(['/login', '/logout']);

export function isRefusal(r: Refusal | Caller): r is Refusal {
  return 'status' in r;
}

declare module 'fastify' {
  interface FastifyRequest {
    /** Who the request comes from, set by the access check (server.ts) before routing. */
    caller: Caller | null;
  }
}

/**
 * The check of every request: why it is refused, or who it comes from. Host and origin first, then
 * authentication: a client certificate when a CA is configured, then the bearer token or, from the dashboard, a
 * session cookie, whose writes must carry the session's CSRF header (a cross-site page cannot read it). Read-only
 * (admin.dashboard.read_only) refuses writes made through the dashboard: by session cookie, or, without a token
 * (client certificates, insecure_no_auth), by any browser (it sends Origin or Sec-Fetch-Site).
 */
export function requestAccess(admin: AdminConfig, o: AccessOptions): (req: FastifyRequest) => Refusal | Caller {
  const tls = admin.tls;
  const names = ownNames(tls?.cert);
  const scheme = tls ? 'https' : 'http';
  const cookieName = sessionCookieName(Boolean(tls));
  return (req) => {
    const hostHeader = req.headers.host;
    if (hostHeader !== undefined) {
      const host = hostPart(hostHeader);
      if (host === undefined || (!isIP(host) && !nameMatches(host, names))) {
        return { status: 403, error: `forbidden: Host ${JSON.stringify(hostHeader.slice(0, 100))} is not an address or name of this l4nat` };
      }
    }
    const origin = req.headers.origin;
    if (origin !== undefined && (hostHeader === undefined || origin.toLowerCase() !== `${scheme}://${hostHeader.toLowerCase()}`)) {
      return { status: 403, error: 'forbidden: requests from web pages of another origin are refused' };
    }
    const site = req.headers['sec-fetch-site'];
    if (site === 'cross-site' || site === 'same-site') return { status: 403, error: 'forbidden: requests from web pages of another origin are refused' };
    if (tls?.clientCa && !(req.raw.socket as TLSSocket).authorized) {
      return { status: 401, bearer: true, error: 'unauthorized: a client certificate signed by the configured CA is required' };
    }
    const path = req.url.split('?')[0];
    const write = !READS.has(req.method);
    const readOnly = write && !SESSION_WRITES.has(path) && o.readOnly();
    const readOnlyRefusal = { status: 403, error: 'forbidden: the dashboard is read-only (admin.dashboard.read_only): make changes with the bearer token (l4nat CLI or API)' };
    const token = o.currentToken();
    if (token === undefined) {
      if (admin.tokenFile) return { status: 401, bearer: true, error: 'unauthorized: no token loaded' }; // configured but not read: refuse rather than open
      if (readOnly && (origin !== undefined || site !== undefined)) return readOnlyRefusal;
      return { via: tls?.clientCa ? 'certificate' : 'none' };
    }
    const auth = req.headers.authorization;
    if (auth !== undefined) {
      const m = /^Bearer\s+(\S+)$/i.exec(auth);
      if (!m || !sameSecret(m[1], token)) return { status: 401, bearer: true, error: 'unauthorized: missing or wrong bearer token' };
      return { via: 'token' };
    }
    if (write && o.isPublic(req.method, path)) return { via: 'public' }; // the login form: its body carries the token
    const id = cookieValue(req.headers.cookie, cookieName);
    const session = o.sessions.find(id, token);
    if (!session || id === undefined) {
      if (o.isPublic(req.method, path)) return { via: 'public' };
      return { status: 401, bearer: true, error: 'unauthorized: missing or wrong bearer token' };
    }
    if (readOnly) return readOnlyRefusal;
    const csrf = req.headers[CSRF_HEADER];
    if (write && (typeof csrf !== 'string' || !sameSecret(csrf, session.csrf))) {
      return { status: 403, error: `forbidden: a write from the dashboard needs its session's ${CSRF_HEADER} header` };
    }
    return { via: 'session', id, session };
  };
}
