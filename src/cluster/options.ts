// Scale-out settings (the config file's `cluster` section): the peers this host exchanges health views
// with, and how it talks to the BGP daemon (BIRD 2) that announces its VIPs. Layers: config/schema.ts (shape)
// → this file (meaning, defaults, the checks a schema cannot make) → cluster/index.ts (the running parts).
import { readFileSync } from 'fs';
import { canonicalIp, type Family } from '../host/addr';
import { isLoopback } from '../config/model';
import { readTokenFile, SecretFileError } from '../config/secret-file';
import type { Subject, UpOptions } from '../config/options';
import { familyOf } from '../config/address-syntax';
import { parsing, type Add } from '../config/issues';
import { syncOf, type RawSync, type SyncOptions } from './sync-options';

export type HealthMode = 'majority' | 'local';

export interface PeerAddress {
  addr: string;
  port: number;
}

export interface BgpOptions {
  /** The file l4nat writes (BIRD `protocol static` blocks); bird.conf includes it. */
  includeFile: string;
  /** birdc binary and BIRD's control socket. */
  birdc: string;
  socket: string;
  /** Prefixes announced to the backends (their return route) while this host can translate replies. */
  returnRoutes: Array<{ prefix: string; family: Family }>;
  /** BIRD protocols towards the upstream router(s): return routes are withdrawn when none of them is Established. */
  upstreamProtocols: string[];
  /** Seconds between the withdrawal at the start of a stop and the rest of the stop (routers move flows first). */
  withdrawDelay: number;
}

export interface ClusterOptions {
  /** Address and port this host serves its health view on, for its peers. */
  listen: string;
  port: number;
  peers: PeerAddress[];
  tokenFile?: string;
  /** Mutual TLS between the hosts: this host's certificate and key, and the cluster CA that signs every host's. */
  tls?: { cert: string; key: string; ca: string };
  health: HealthMode;
  /** Seconds between two polls of the peers (and between two reconciliations with BIRD). */
  pollInterval: number;
  /** A peer view older than this many seconds no longer votes. */
  peerTimeout: number;
  /**
   * Planned ring changes wait until the set of hosts announcing the VIPs has been stable for this many seconds
   * (0: no wait), so flows that moved between hosts are pinned on their new host first (index.ts).
   */
  settle: number;
  /**
   * Seconds a service's ring may differ from the majority of the fresh peers' before this host withdraws its VIP
   * (disagreement.ts); 0: never.
   */
  disagreementWithdrawAfter: number;
  bgp?: BgpOptions;
  /** Flow-state sync of the entries the ring cannot reconstruct (sync.ts); undefined: off. */
  sync?: SyncOptions;
}

export const CLUSTER_DEFAULTS = {
  port: 9181,
  pollInterval: 0.5,
  peerTimeout: 3,
  settle: 3,
  disagreementWithdrawAfter: 5,
  birdc: 'birdc',
  socket: '/run/bird/bird.ctl',
  withdrawDelay: 1,
};

/** BIRD protocol names l4nat generates: VIPs (towards the router) and return routes (towards the backends). */
export const BIRD_PROTOCOLS = { vip4: 'l4nat_vip4', vip6: 'l4nat_vip6', ret4: 'l4nat_ret4', ret6: 'l4nat_ret6' } as const;

/** The raw (schema-valid) `cluster` section. */
export interface RawCluster {
  listen?: string;
  port?: number;
  peers?: string[];
  token_file?: string;
  tls?: { cert: string; key: string; ca: string };
  health?: HealthMode;
  poll_interval?: number;
  peer_timeout?: number;
  settle?: number;
  disagreement_withdraw_after?: number;
  sync?: RawSync;
  bgp?: {
    include_file: string;
    birdc?: string;
    socket?: string;
    return_routes?: string[];
    upstream_protocols?: string[];
    withdraw_delay?: number;
  };
}

/** "ADDR", "ADDR:PORT", "[V6]:PORT" → address and port (default port: the cluster port). */
export function parsePeer(text: string, defaultPort: number, s: Subject): PeerAddress {
  const syntax = 'ADDR, ADDR:PORT or [IPV6]:PORT';
  let host = text;
  let port = defaultPort;
  const br = /^\[([^\]]+)\](?::(\d+))?$/.exec(text);
  if (br) {
    host = br[1];
    if (br[2] !== undefined) port = Number(br[2]);
  } else if (!familyOf(text)) {
    const m = /^([^:]+):(\d+)$/.exec(text);
    if (!m) throw s.expected(syntax, JSON.stringify(text));
    host = m[1];
    port = Number(m[2]);
  }
  const f = familyOf(host);
  if (!f) throw s.expected(`${syntax} with an IPv4 or IPv6 address`, JSON.stringify(text));
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw s.error(`got ${JSON.stringify(text)}, the port must be a whole number from 1 to 65535, got ${port}`);
  return { addr: canonicalIp(host, f), port };
}

/** The `cluster` section's meaning; problems are reported through `add` with their path. */
export function clusterOf(raw: RawCluster | undefined, add: Add): ClusterOptions | undefined {
  if (!raw) return undefined;
  const port = raw.port ?? CLUSTER_DEFAULTS.port;
  const peers: PeerAddress[] = [];
  const peerIndex: number[] = []; // position in the file of each parsed peer
  (raw.peers ?? []).forEach((p, i) => {
    const peer = parsing(add, ['cluster', 'peers', i], (s) => parsePeer(p, port, s));
    if (peer) {
      peers.push(peer);
      peerIndex.push(i);
    }
  });
  let listen = raw.listen ?? '';
  if (raw.listen === undefined) {
    if (peers.length) add(['cluster'], 'missing required key "listen" (the address peers fetch this host\'s health view from) when peers are given');
  } else {
    const f = familyOf(raw.listen);
    if (!f) add(['cluster', 'listen'], `got ${JSON.stringify(raw.listen)}, expected an IPv4 or IPv6 address (no brackets, no port)`);
    else listen = canonicalIp(raw.listen, f);
  }
  const seen = new Set<string>();
  peers.forEach((p, i) => {
    const k = `${p.addr}|${p.port}`;
    if (seen.has(k)) add(['cluster', 'peers', peerIndex[i]], `got ${p.addr}:${p.port} twice, expected each peer once`);
    if (p.addr === listen && p.port === port) add(['cluster', 'peers', peerIndex[i]], `got ${p.addr}:${p.port}, which is this host's own listen address: list the other hosts only`);
    seen.add(k);
  });
  const pollInterval = raw.poll_interval ?? CLUSTER_DEFAULTS.pollInterval;
  const peerTimeout = raw.peer_timeout ?? CLUSTER_DEFAULTS.peerTimeout;
  if (peerTimeout < 2 * pollInterval) {
    add(['cluster', 'peer_timeout'], `got ${peerTimeout}, expected at least twice poll_interval (${2 * pollInterval} s): a peer would drop out between two polls`);
  }
  const out: ClusterOptions = {
    listen,
    port,
    peers,
    health: raw.health ?? 'majority',
    pollInterval,
    peerTimeout,
    settle: raw.settle ?? CLUSTER_DEFAULTS.settle,
    disagreementWithdrawAfter: raw.disagreement_withdraw_after ?? CLUSTER_DEFAULTS.disagreementWithdrawAfter,
  };
  const wa = out.disagreementWithdrawAfter;
  if (wa > 0 && wa < 2 * pollInterval) {
    // Hosts adopt a new agreed verdict up to one poll apart: a shorter bound would withdraw on that alone.
    add(['cluster', 'disagreement_withdraw_after'], `got ${wa}, expected 0 (off) or at least twice poll_interval (${2 * pollInterval} s): hosts adopt a health verdict up to one poll apart`);
  }
  if (raw.token_file !== undefined) {
    out.tokenFile = raw.token_file;
    try {
      readTokenFile(raw.token_file, 'cluster token file');
    } catch (e) {
      const code = e instanceof SecretFileError ? e.code : undefined;
      add(['cluster', 'token_file'], code ? `cannot read ${JSON.stringify(raw.token_file)}: ${code}` : (e as Error).message);
    }
  }
  if (raw.tls) {
    out.tls = { ...raw.tls };
    for (const k of ['cert', 'key', 'ca'] as const) {
      try {
        readFileSync(raw.tls[k]);
      } catch (e) {
        add(['cluster', 'tls', k], `cannot read ${JSON.stringify(raw.tls[k])}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
      }
    }
  } else {
    // A peer's view can take backends out of every ring: off loopback, only over mutual TLS (as the admin API).
    const remote = [...(raw.listen !== undefined && listen && !isLoopback(listen) ? [`listen ${listen}`] : []), ...peers.filter((p) => !isLoopback(p.addr)).map((p) => `peer ${p.addr}`)];
    if (remote.length) {
      add(['cluster'], `${remote.join(', ')} is not a loopback address: the health views need tls {cert, key, ca} (mutual TLS with the cluster's CA; token_file may be added)`);
    }
  }
  const sync = syncOf(raw.sync, { listen, httpPort: port, peers: peers.length }, add);
  if (sync) out.sync = sync;
  const b = raw.bgp;
  if (b) {
    const returnRoutes: BgpOptions['returnRoutes'] = [];
    (b.return_routes ?? []).forEach((r, i) => {
      const m = /^([^/]+)\/(\d{1,3})$/.exec(r);
      const f = m ? familyOf(m[1]) : undefined;
      const len = m ? Number(m[2]) : NaN;
      if (!m || !f || len > (f === 4 ? 32 : 128)) {
        add(['cluster', 'bgp', 'return_routes', i], `got ${JSON.stringify(r)}, expected an IPv4 or IPv6 prefix such as "0.0.0.0/0" or "10.1.0.0/16"`);
        return;
      }
      returnRoutes.push({ prefix: `${canonicalIp(m[1], f)}/${len}`, family: f });
    });
    out.bgp = {
      includeFile: b.include_file,
      birdc: b.birdc ?? CLUSTER_DEFAULTS.birdc,
      socket: b.socket ?? CLUSTER_DEFAULTS.socket,
      returnRoutes,
      upstreamProtocols: b.upstream_protocols ?? [],
      withdrawDelay: b.withdraw_delay ?? CLUSTER_DEFAULTS.withdrawDelay,
    };
  }
  return out;
}

/** UpOptions as the config loader returns them: with the cluster section when the file has one. */
export type UpOptionsWithCluster = UpOptions & { cluster?: ClusterOptions };

export function clusterOptionsOf(o: UpOptions): ClusterOptions | undefined {
  return (o as UpOptionsWithCluster).cluster;
}
