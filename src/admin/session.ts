// The dashboard's browser sessions. A browser cannot send the API's bearer header, so the dashboard's login trades
// the token once for a session: a random id in an HttpOnly, SameSite=Strict cookie (Secure, and __Host- named,
// over TLS), kept here in memory (l4nat's restart logs everyone out), with a per-session CSRF token the page sends
// in a header on every write (access.ts). A session ends at its expiry, at logout, and when the token it was
// opened with is no longer the API's (a reload that reads a new token file ends every session).
import { createHash, randomBytes, timingSafeEqual } from 'crypto';

/** A session lives this long after its login, used or not. */
export const SESSION_TTL_MS = 12 * 3600_000;
/** At most this many sessions at once: a new login beyond it ends the oldest. */
export const MAX_SESSIONS = 256;
/** The header the page sends its CSRF token in on writes. */
export const CSRF_HEADER = 'x-l4nat-csrf';

export interface DashboardSession {
  /** The CSRF token the page echoes on writes. */
  readonly csrf: string;
  readonly expiresAt: number;
}

interface Stored extends DashboardSession {
  /** Digest of the token this session was opened with. */
  readonly credential: Buffer;
}

const digest = (s: string): Buffer => createHash('sha256').update(s).digest();

/** Whether two secrets are equal, in time independent of where they differ. */
export function sameSecret(a: string, b: string): boolean {
  return timingSafeEqual(digest(a), digest(b));
}

export class SessionStore {
  /** By the digest of the session id: a lookup's timing says nothing about the ids that exist. */
  private readonly byId = new Map<string, Stored>();

  constructor(
    private readonly ttlMs = SESSION_TTL_MS,
    private readonly max = MAX_SESSIONS,
    private readonly now: () => number = Date.now,
  ) {}

  /** Opens a session for a caller who showed `credential` (the token); returns its id (the cookie) and CSRF token. */
  open(credential: string): { id: string; session: DashboardSession } {
    this.sweep();
    while (this.byId.size >= this.max) this.byId.delete(this.byId.keys().next().value!); // oldest first: Map keeps insertion order
    const id = randomBytes(32).toString('base64url');
    const session: Stored = { csrf: randomBytes(32).toString('base64url'), expiresAt: this.now() + this.ttlMs, credential: digest(credential) };
    this.byId.set(digest(id).toString('hex'), session);
    return { id, session };
  }

  /** The live session with this id, opened with `credential` (the current token); undefined otherwise. */
  find(id: string | undefined, credential: string | undefined): DashboardSession | undefined {
    if (id === undefined || credential === undefined) return undefined;
    const key = digest(id).toString('hex');
    const s = this.byId.get(key);
    if (!s) return undefined;
    if (s.expiresAt <= this.now() || !timingSafeEqual(s.credential, digest(credential))) {
      this.byId.delete(key);
      return undefined;
    }
    return s;
  }

  close(id: string | undefined): void {
    if (id !== undefined) this.byId.delete(digest(id).toString('hex'));
  }

  get size(): number {
    return this.byId.size;
  }

  private sweep(): void {
    const t = this.now();
    for (const [k, s] of this.byId) if (s.expiresAt <= t) this.byId.delete(k);
  }
}

/** The session cookie's name: with TLS the __Host- prefix (the browser keeps it to this host, Secure, Path=/). */
export function sessionCookieName(tls: boolean): string {
  return tls ? '__Host-l4nat_session' : 'l4nat_session';
}

/** The value of cookie `name` in a Cookie header, if any. */
export function cookieValue(header: string | undefined, name: string): string | undefined {
  for (const part of (header ?? '').split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}

/** A Set-Cookie header for the session (an empty value and Max-Age 0 remove it). */
export function sessionCookie(tls: boolean, value: string, maxAgeS: number): string {
  return `${sessionCookieName(tls)}=${value}; Path=/; Max-Age=${maxAgeS}; HttpOnly; SameSite=Strict${tls ? '; Secure' : ''}`;
}
