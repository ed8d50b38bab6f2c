// A small client for the admin API, used by `l4nat status|reload|backend`. Where to connect and how to
// authenticate: --admin URL, --token-file, --ca, --cert/--key, or --config FILE (its admin section: address,
// port, TLS, token file), or $L4NAT_ADMIN_URL / $L4NAT_ADMIN_TOKEN; default http://127.0.0.1:9180 with the
// token l4nat created in its state directory (readable by root and the l4nat user), for a loopback URL only:
// that token is never sent to another host.
import { readFileSync } from 'fs';
import { request as httpRequest } from 'http';
import { request as httpsRequest } from 'https';
import { loadConfigFile, readToken } from '../config/load';
import { isLoopback } from '../config/model';
import { SecretFileError } from '../config/secret-file';
import { OptionError, UP_DEFAULTS } from '../config/options';

export interface ClientOptions {
  url: string;
  token?: string;
  ca?: Buffer;
  cert?: Buffer;
  key?: Buffer;
  timeoutMs?: number;
  /** Why no token is sent although one may be needed (the default token file could not be read): said on a 401. */
  tokenHint?: string;
}

export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

export const CLIENT_FLAGS = {
  admin: { value: true },
  'token-file': { value: true },
  ca: { value: true },
  cert: { value: true },
  key: { value: true },
  config: { value: true },
} as const;

/** The token l4nat created, or why it cannot be read (said with a 401). */
function defaultToken(file: string): { token?: string; hint?: string } {
  try {
    return { token: readToken(file) };
  } catch (e) {
    const code = e instanceof SecretFileError ? e.code : undefined;
    if (code === 'ENOENT') return { hint: `no token in ${file}: give --token-file (or $L4NAT_ADMIN_TOKEN) if l4nat uses another one` };
    if (code === 'EACCES' || code === 'EPERM') return { hint: `the token in ${file} is readable by root and the l4nat user only: run this as one of them (sudo), or give --token-file` };
    return { hint: (e as Error).message };
  }
}

export function clientOptions(f: Map<string, string[]>, env: NodeJS.ProcessEnv = process.env, l4natTokenFile = UP_DEFAULTS.adminTokenFile): ClientOptions {
  const one = (k: string): string | undefined => f.get(k)?.[0];
  let url = one('admin') ?? env.L4NAT_ADMIN_URL;
  let token: string | undefined;
  let ca: Buffer | undefined;
  let defaultTokenFile: string | undefined;
  const cfgFile = one('config');
  if (cfgFile) {
    const cfg = loadConfigFile(cfgFile);
    const a = cfg.admin;
    const host = a.listen === '0.0.0.0' ? '127.0.0.1' : a.listen === '::' ? '::1' : a.listen;
    url ??= `${a.tls ? 'https' : 'http'}://${host.includes(':') ? `[${host}]` : host}:${a.port}`;
    if (a.createToken) defaultTokenFile = a.tokenFile; // l4nat's own: perhaps not readable by this user
    else if (a.tokenFile) token = readToken(a.tokenFile);
    if (a.tls) ca = readFileSync(a.tls.cert); // a self-signed server certificate is its own CA
  }
  const tf = one('token-file');
  if (tf) token = readToken(tf);
  token ??= env.L4NAT_ADMIN_TOKEN || undefined;
  if (one('ca')) ca = readFileSync(one('ca') as string);
  const cert = one('cert') ? readFileSync(one('cert') as string) : undefined;
  const key = one('key') ? readFileSync(one('key') as string) : undefined;
  if ((cert === undefined) !== (key === undefined)) throw new OptionError('--cert and --key go together (client certificate for mTLS)');
  url ??= 'http://127.0.0.1:9180';
  const m = /^https?:\/\/(\[[^\]]+\]|[^/:]+)(?::\d+)?\/?$/.exec(url);
  if (!m) throw new OptionError(`--admin expects http(s)://HOST:PORT, got "${url}"`);
  if (token === undefined && defaultTokenFile === undefined && !cfgFile && cert === undefined && isLoopback(m[1].replace(/^\[|\]$/g, ''))) {
    defaultTokenFile = l4natTokenFile;
  }
  let tokenHint: string | undefined;
  if (token === undefined && defaultTokenFile !== undefined) ({ token, hint: tokenHint } = defaultToken(defaultTokenFile));
  return { url: url.replace(/\/$/, ''), token, ca, cert, key, ...(tokenHint ? { tokenHint } : {}) };
}

/**
 * A streaming GET: calls onLine with each line of the answer as it comes, resolves when the answer ends. An error
 * status rejects with the API's error message, as apiRequest does. `abort` ends it early (the server sees the
 * client go).
 */
export function apiStream(o: ClientOptions, path: string, onLine: (line: string) => void): { done: Promise<void>; abort: () => void } {
  const u = new URL(o.url + path);
  const tls = u.protocol === 'https:';
  let abort = (): void => undefined;
  const done = new Promise<void>((resolve, reject) => {
    const req = (tls ? httpsRequest : httpRequest)(
      {
        method: 'GET',
        hostname: u.hostname.replace(/^\[|\]$/g, ''),
        port: u.port,
        path: u.pathname + u.search,
        headers: { accept: 'application/x-ndjson', ...(o.token ? { authorization: `Bearer ${o.token}` } : {}) },
        agent: false,
        ...(tls ? { ca: o.ca, cert: o.cert, key: o.key } : {}),
      },
      (res) => {
        const status = res.statusCode ?? 0;
        let buf = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => {
          buf += c;
          if (status >= 400) return;
          let nl: number;
          while ((nl = buf.indexOf('\n')) >= 0) {
            const line = buf.slice(0, nl);
            buf = buf.slice(nl + 1);
            if (line.trim()) onLine(line);
          }
        });
        res.on('end', () => {
          if (status < 400) return resolve();
          let msg = buf.trim() || `HTTP ${status}`;
          try {
            msg = (JSON.parse(buf) as { error?: string }).error ?? msg;
          } catch {
            // not JSON: the text as it is
          }
          reject(new ApiError(status, status === 401 && o.tokenHint ? `${msg} (${o.tokenHint})` : msg));
        });
        res.on('error', reject);
      },
    );
    abort = () => {
      req.destroy();
      resolve();
    };
    req.on('error', (e: NodeJS.ErrnoException) => {
      reject(e.code === 'ECONNREFUSED' ? new Error(`cannot reach the admin API at ${o.url} (ECONNREFUSED): is l4nat running with the admin API on?`) : e);
    });
    req.end();
  });
  return { done, abort };
}

export function apiRequest<T = unknown>(o: ClientOptions, method: string, path: string, body?: unknown): Promise<T> {
  const u = new URL(o.url + path);
  const tls = u.protocol === 'https:';
  const data = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
  return new Promise((resolve, reject) => {
    const req = (tls ? httpsRequest : httpRequest)(
      {
        method,
        hostname: u.hostname.replace(/^\[|\]$/g, ''),
        port: u.port,
        path: u.pathname + u.search,
        headers: {
          accept: 'application/json',
          ...(data ? { 'content-type': 'application/json', 'content-length': data.length } : {}),
          ...(o.token ? { authorization: `Bearer ${o.token}` } : {}),
        },
        agent: false,
        ...(tls ? { ca: o.ca, cert: o.cert, key: o.key } : {}),
        timeout: o.timeoutMs ?? 30_000,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let json: unknown;
          try {
            json = JSON.parse(text);
          } catch {
            json = undefined;
          }
          const status = res.statusCode ?? 0;
          if (status >= 400) {
            const msg = (json as { error?: string } | undefined)?.error ?? (text.trim() || `HTTP ${status}`);
            reject(new ApiError(status, status === 401 && o.tokenHint ? `${msg} (${o.tokenHint})` : msg));
          } else resolve((json ?? text) as T);
        });
      },
    );
    req.on('timeout', () => req.destroy(new Error(`no answer from ${o.url} within ${o.timeoutMs ?? 30_000} ms`)));
    req.on('error', (e: NodeJS.ErrnoException) => {
      reject(e.code === 'ECONNREFUSED' ? new Error(`cannot reach the admin API at ${o.url} (ECONNREFUSED): is l4nat running with the admin API on?`) : e);
    });
    req.end(data);
  });
}
