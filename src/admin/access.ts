// Who may use the admin API, checked on every request before routing (src/admin/server.ts), so a refused request
// learns nothing, not even which paths exist: the request must name this host (an IP address, localhost, this
// host's name or a name in the TLS certificate: no DNS rebinding), come from no foreign web page (Origin,
// Sec-Fetch-Site), then authenticate (a client certificate signed by the configured CA, and/or the bearer token).
// Also the token file's creation at first start and the start-up log's description of the authentication.
import { createHash, timingSafeEqual, X509Certificate } from 'crypto';
import { readFileSync } from 'fs';
import { isIP } from 'net';
import { hostname } from 'os';
import type { TLSSocket } from 'tls';
import type { FastifyRequest } from 'fastify';
import type { Logger } from '../util/log';
import type { AdminConfig } from '../config/model';
import { loadOrCreateSecret, newToken, parseToken } from '../config/secret-file';

function tokenDigest(t: string): Buffer {
  return createHash('sha256').update(t).digest();
}

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

/**
 * The check of every request: why it is refused, or undefined. Host and origin first, then authentication.
 * `currentToken` is the bearer token as last read (a reload may read a new one); undefined when none is loaded.
 */
export function requestRefusal(admin: AdminConfig, currentToken: () => string | undefined): (req: FastifyRequest) => Refusal | undefined {
  const tls = admin.tls;
  const names = ownNames(tls?.cert);
  const scheme = tls ? 'https' : 'http';
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
    const token = currentToken();
    if (token !== undefined) {
      const m = /^Bearer\s+(\S+)$/i.exec(req.headers.authorization ?? '');
      if (!m || !timingSafeEqual(tokenDigest(m[1]), tokenDigest(token))) return { status: 401, bearer: true, error: 'unauthorized: missing or wrong bearer token' };
    } else if (admin.tokenFile) {
      return { status: 401, bearer: true, error: 'unauthorized: no token loaded' }; // configured but not read: refuse rather than open
    }
    return undefined;
  };
}
