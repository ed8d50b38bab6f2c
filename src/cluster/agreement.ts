// Health agreement between the l4nat hosts of a cluster. Each host serves its own view of every backend (from its
// own active and passive checks) on a small read-only HTTP listener, and polls its peers' views. The same answer
// carries the host's report (host-report.ts: ring digests, backends, announcements, disagreement), which the peers
// use to judge disagreement (disagreement.ts) and show every host side by side (view.ts). A backend leaves the
// ring only when a strict majority of the fresh views (this host's included) see it down; a peer whose last answer
// is older than peer_timeout (dead, cut off) does not vote. So one host whose path to a backend is broken does not
// change anyone's table — its own included — and every host computes the same verdict from the same views.
//
// What is not agreed instantly: each host polls on its own clock, so when the majority flips, hosts adopt the new
// verdict up to one poll interval (plus one HTTP round trip) apart. During that window their tables differ for the
// flipped backend's slots; flows that stay on one host are unaffected (flow-table hits), only flows moving between
// hosts in that window can be sent elsewhere.
//
// Trust: a host's view can take backends out of every ring, so peers must be the cluster's own hosts. Off loopback
// the channel is mutual TLS against the cluster's CA (cluster.tls: each side proves it holds a certificate from it;
// the config refuses anything else), and a bearer token (token_file) may be required on top. A reply is read up to
// MAX_PEER_REPLY_BYTES and no further. Plain HTTP is for a cluster on one host's loopback (tests) only.
// Layers: options.ts → this file → index.ts.
import { createHash, timingSafeEqual } from 'crypto';
import { createServer, request as httpRequest, type IncomingMessage, type Server, type ServerResponse } from 'http';
import { createServer as createTlsServer, request as httpsRequest } from 'https';
import { readFileSync } from 'fs';
import { readTokenFile } from '../config/secret-file';
import type { ClusterOptions, PeerAddress } from './options';
import { parseHostReport, type HostReport } from './host-report';
import type { PeerRings } from './disagreement';

/** A peer's view is a few dozen bytes per backend: 4 MiB holds tens of thousands; a larger reply is not read. */
export const MAX_PEER_REPLY_BYTES = 4 * 1024 * 1024;

export interface PeerView {
  peer: string;
  /** Date.now() when the view arrived; undefined: never answered. */
  at?: number;
  health?: Map<string, boolean>;
  /** VIPs the peer announced at its last answer. */
  announcing?: boolean;
  /** The rest of its last answer: ring digests, backends, announcements, disagreement (host-report.ts). */
  report?: HostReport;
  error?: string;
}

export interface LocalState {
  ready: boolean;
  health: Map<string, boolean>;
  agreed: Map<string, boolean>;
  /** Per service id: sha256 of the ring as published to the data plane. */
  rings: Record<string, string>;
  announced: { vips: string[]; returnRoutes: string[] };
  backends?: HostReport['backends'];
  disagreement?: HostReport['disagreement'];
}

/** The verdict for one backend: down only when a strict majority of the votes say down. */
export function majorityHealthy(votes: readonly boolean[]): boolean {
  const down = votes.filter((v) => !v).length;
  return !(down * 2 > votes.length);
}

/** sha256 of a ring's bytes (little-endian u32 backend slots, as handed to the data plane). */
export function ringDigest(ring: Uint32Array): string {
  return createHash('sha256').update(Buffer.from(ring.buffer, ring.byteOffset, ring.byteLength)).digest('hex');
}

/** `addr:port`, IPv6 in brackets: a peer's name in views and logs, and this host's in its own view. */
export function peerName(p: PeerAddress): string {
  return p.addr.includes(':') ? `[${p.addr}]:${p.port}` : `${p.addr}:${p.port}`;
}

export class HealthAgreement {
  readonly views = new Map<string, PeerView>();
  private server: Server | undefined;
  private token: string | undefined;
  private readonly tls: { cert: Buffer; key: Buffer; ca: Buffer } | undefined;
  private timer: NodeJS.Timeout | undefined;
  private polling = false;
  private closed = false;

  constructor(
    readonly opts: ClusterOptions,
    private readonly state: () => LocalState,
  ) {
    for (const p of opts.peers) this.views.set(peerName(p), { peer: peerName(p) });
    if (opts.tokenFile) this.token = readTokenFile(opts.tokenFile, 'cluster token file');
    if (opts.tls) this.tls = { cert: readFileSync(opts.tls.cert), key: readFileSync(opts.tls.key), ca: readFileSync(opts.tls.ca) };
  }

  /** The views that vote now (answered within peer_timeout). */
  freshViews(now = Date.now()): PeerView[] {
    return [...this.views.values()].filter((v) => v.at !== undefined && now - v.at <= this.opts.peerTimeout * 1000);
  }

  /** The fresh peers' ring digests and announced VIPs: the votes on disagreement (disagreement.ts). */
  freshRings(now = Date.now()): PeerRings[] {
    return this.freshViews(now).flatMap((v) => (v.report ? [{ peer: v.peer, rings: v.report.rings, vips: v.report.announced.vips }] : []));
  }

  /** Verdict per backend key from this host's view and the fresh peer views (peers that do not know a key abstain). */
  agree(local: ReadonlyMap<string, boolean>, now = Date.now()): Map<string, boolean> {
    const fresh = this.opts.health === 'local' ? [] : this.freshViews(now);
    const out = new Map<string, boolean>();
    for (const [key, mine] of local) {
      const votes = [mine];
      for (const v of fresh) {
        const h = v.health?.get(key);
        if (h !== undefined) votes.push(h);
      }
      out.set(key, majorityHealthy(votes));
    }
    return out;
  }

  async listen(): Promise<void> {
    if (!this.opts.listen) return;
    const handler = (req: IncomingMessage, res: ServerResponse): void => this.handle(req, res);
    // With TLS, a client without a certificate from the cluster CA does not get past the handshake.
    const server = this.tls ? createTlsServer({ ...this.tls, requestCert: true, rejectUnauthorized: true }, handler) : createServer(handler);
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen({ host: this.opts.listen, port: this.opts.port }, () => {
        server.removeListener('error', reject);
        resolve();
      });
    });
    this.server = server;
  }

  private authorized(req: IncomingMessage): boolean {
    if (!this.token) return true;
    const m = /^Bearer (.+)$/.exec(req.headers.authorization ?? '');
    const h = (s: string): Buffer => createHash('sha256').update(s).digest();
    return m !== null && timingSafeEqual(h(m[1]), h(this.token));
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const send = (status: number, body: unknown): void => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
    };
    if (!this.authorized(req)) return send(401, { error: 'unauthorized' });
    if (req.method !== 'GET' || req.url !== '/cluster/v1/state') return send(404, { error: 'not found: GET /cluster/v1/state' });
    const s = this.state();
    if (!s.ready) return send(503, { error: 'not ready' });
    const now = Date.now();
    send(200, {
      host: peerName({ addr: this.opts.listen, port: this.opts.port }),
      health: Object.fromEntries(s.health),
      agreed: Object.fromEntries(s.agreed),
      rings: s.rings,
      announced: s.announced,
      backends: s.backends ?? {},
      disagreement: s.disagreement ?? [],
      peers: [...this.views.values()].map((v) => ({ peer: v.peer, ageMs: v.at === undefined ? null : now - v.at, error: v.error ?? null })),
    });
  }

  /**
   * Polls every peer every poll_interval; `onRound` runs after each round. Resolves once the first round is over:
   * every peer answered or failed (each poll ends within the peer timeout's half, 2 s at most).
   */
  startPolling(onRound: () => void): Promise<void> {
    const round = async (): Promise<void> => {
      if (this.polling || this.closed) return;
      this.polling = true;
      try {
        await Promise.all(this.opts.peers.map((p) => this.pollOne(p)));
      } finally {
        this.polling = false;
      }
      if (!this.closed) onRound();
    };
    const first = round();
    this.timer = setInterval(() => void round(), this.opts.pollInterval * 1000);
    this.timer.unref();
    return first;
  }

  private async pollOne(p: PeerAddress): Promise<void> {
    const name = peerName(p);
    const v = this.views.get(name)!;
    try {
      const body = JSON.parse(await this.fetchState(p)) as { health?: Record<string, unknown>; announced?: { vips?: unknown[] } };
      const health = new Map<string, boolean>();
      for (const [k, h] of Object.entries(body.health ?? {})) if (typeof h === 'boolean') health.set(k, h);
      v.health = health;
      v.announcing = Array.isArray(body.announced?.vips) && body.announced.vips.length > 0;
      v.report = parseHostReport(body);
      v.at = Date.now();
      v.error = undefined;
    } catch (e) {
      v.error = (e as Error).message;
    }
  }

  /** GET /cluster/v1/state of a peer: its body (at most MAX_PEER_REPLY_BYTES), or an error. */
  private fetchState(p: PeerAddress): Promise<string> {
    const timeoutMs = Math.max(200, Math.min(2_000, this.opts.peerTimeout * 500));
    return new Promise((resolve, reject) => {
      const req = (this.tls ? httpsRequest : httpRequest)(
        {
          host: p.addr,
          port: p.port,
          path: '/cluster/v1/state',
          headers: this.token ? { authorization: `Bearer ${this.token}` } : {},
          agent: false,
          // The peer must show a certificate from the cluster CA for its address; this host shows its own.
          ...(this.tls ?? {}),
        },
        (res) => {
          if (res.statusCode !== 200) {
            res.resume();
            reject(new Error(`HTTP ${res.statusCode}`));
            return;
          }
          const chunks: Buffer[] = [];
          let size = 0;
          res.on('data', (c: Buffer) => {
            size += c.length;
            if (size > MAX_PEER_REPLY_BYTES) {
              req.destroy(new Error(`reply larger than ${MAX_PEER_REPLY_BYTES} bytes: not read`));
              return;
            }
            chunks.push(c);
          });
          res.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
          res.on('error', reject);
        },
      );
      const timer = setTimeout(() => req.destroy(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
      req.on('close', () => clearTimeout(timer));
      req.on('error', reject);
      req.end();
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    const s = this.server;
    this.server = undefined;
    if (s) {
      s.closeAllConnections();
      await new Promise<void>((r) => s.close(() => r()));
    }
  }
}
