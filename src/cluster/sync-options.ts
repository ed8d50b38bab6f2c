// The `cluster.sync` section (flow-state sync, docs/scale-out.md): its meaning, defaults and the checks a schema
// cannot make. Off unless the section is given. Layers: cluster/schema.ts (shape) → this file → cluster/sync.ts.
import { readSecretFile, SecretFileError } from '../config/secret-file';
import type { Add } from '../config/issues';

export interface SyncOptions {
  /** UDP port, the same on every host; bound on cluster.listen, sent to every peer's address. */
  port: number;
  keyFile: string;
  /** The key as read at start (restart-only, as the whole cluster section). */
  key: Buffer;
  /** Entries sent per second at most (each datagram carries up to 19), bootstrap answers and refreshes included. */
  maxRate: number;
  /** Divergent entries kept for the peers (this host's own and those learned), and entries waiting to be sent. */
  maxEntries: number;
  /** Seconds between two re-sends of this host's live divergent entries (keeps the peers' learned copies alive). */
  refresh: number;
  /** Seconds a datagram's time may differ from this host's clock before it is stale. */
  maxSkew: number;
}

export interface RawSync {
  port?: number;
  key_file: string;
  max_rate?: number;
  max_entries?: number;
  refresh?: number;
  max_skew?: number;
}

export const SYNC_DEFAULTS = { port: 9182, maxRate: 20_000, maxEntries: 262_144, refresh: 10, maxSkew: 30 };

/** The shared key: one line of at least 32 printable characters (e.g. `openssl rand -hex 32`), owner-only. */
export function readSyncKey(file: string): Buffer {
  const t = readSecretFile(file, 'cluster sync key file').trim();
  if (t.length < 32) throw new SecretFileError(`cluster sync key file ${file}: the key is shorter than 32 characters (it has ${t.length}); make one with: openssl rand -hex 32`);
  if (!/^[\x21-\x7e]+$/.test(t)) throw new SecretFileError(`cluster sync key file ${file}: the key must be one line of printable ASCII characters without spaces`);
  return Buffer.from(t);
}

export function syncOf(raw: RawSync | undefined, ctx: { listen: string; httpPort: number; peers: number }, add: Add): SyncOptions | undefined {
  if (!raw) return undefined;
  const port = raw.port ?? SYNC_DEFAULTS.port;
  if (!ctx.listen) add(['cluster', 'sync'], 'flow-state sync needs cluster.listen (the address it binds its UDP port on)');
  if (port === ctx.httpPort) add(['cluster', 'sync', 'port'], `got ${port}, the same as cluster.port: give the UDP sync port a number of its own`);
  if (ctx.peers === 0) add(['cluster', 'sync'], 'flow-state sync needs cluster.peers (the hosts it sends divergent flow entries to)');
  let key: Buffer = Buffer.alloc(0);
  try {
    key = readSyncKey(raw.key_file);
  } catch (e) {
    add(['cluster', 'sync', 'key_file'], e instanceof SecretFileError ? e.message : (e as Error).message);
  }
  const refresh = raw.refresh ?? SYNC_DEFAULTS.refresh;
  const maxSkew = raw.max_skew ?? SYNC_DEFAULTS.maxSkew;
  return {
    port,
    keyFile: raw.key_file,
    key,
    maxRate: raw.max_rate ?? SYNC_DEFAULTS.maxRate,
    maxEntries: raw.max_entries ?? SYNC_DEFAULTS.maxEntries,
    refresh,
    maxSkew,
  };
}
