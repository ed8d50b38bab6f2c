// The scale-out lab: several l4nat hosts behind one ECMP router that learns the VIP from each of them over BGP
// (BIRD 2 everywhere), backends on a shared LAN whose return route is an ECMP default route learned over BGP from the
// same hosts. Layers: src/lab (netns.ts commands, cleanup.ts signal/exit hooks) → this file (topology, BIRD configs,
// l4nat configs) → workload.ts (backend servers, client driver: this lab implements the Lab interface they use).
//
//   client 10.201.0.2 ── r (AS 65000; ECMP, fib_multipath_hash_policy=1) ─┬─ 10.203.1.0/24 ─ lb1 (AS 65001) ─┐
//                                                                          ├─ 10.203.2.0/24 ─ lb2 (AS 65001) ─┤ sw: bridge,
//                                                                          └─ 10.203.3.0/24 ─ lb3 (AS 65001) ─┤ 10.210.0.0/24
//                                            b1 10.210.0.11, b2 .12, b3 .13 (AS 65010; ECMP default via lb1..3) ─┘
//
// lbN: uplink "up" 10.203.N.2 (router: 10.203.N.1), LAN "lan" 10.210.0.N. Every BGP session has BFD (100 ms × 5)
// and short timers (hold 3 s, keepalive 1 s, reconnect after 1 s). Each lbN's BIRD includes the file its l4nat writes
// (cluster.bgp.include_file): it exports l4nat_vip4 to the router and l4nat_ret4 (0.0.0.0/0) to the backends. The
// router and the backends install the multipath routes with `merge paths on`.
//
// Namespaces are `l4-<id>-<role>` (roles client, r, sw, lb1.., b1..), files live in a temporary directory; destroy()
// (also on signals and exit, through the cleanup registry) stops every process and removes both. Nothing is created
// in or changed in the default namespace.
//
// `family: 6` builds the same lab over IPv6: every link gets a ULA address as well (the IPv4 ones stay, unused), and
// the VIP (fd00:200::10), the BGP sessions (IPv6 neighbours, one per link as above, each with BFD), the router's
// ECMP (net.ipv6.fib_multipath_hash_policy=1), the backends' return route (::/0, l4nat_ret6), the service's backends,
// the health checks and the hosts' cluster peers are all IPv6; no IPv4 route is announced. Addresses:
//   client fd00:201::2 (router fd00:201::1); lbN up fd00:203:N::2 (router fd00:203:N::1), lan fd00:210::N;
//   bN fd00:210::1N (fd00:210::11, ::12, ...).
// Tests reach the family-correct addresses through `lab.vip`, `lab.returnRoute`, `lab.backendAddr(id)` and each
// host's `upAddr`/`routerAddr`/`lanAddr`.
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { AUTH_HEADER_JS, DEFAULT_ADMIN_TOKEN_FILE } from '../../src/lab/admin-client';
import { issueCert, makeCa, type CertFiles } from './certs';
import { registerCleanup } from '../../src/lab/cleanup';
import { LAB_NS_PREFIX, listLabNamespaces, RoleLab, type Lab, type LabBackend, type LabEndpoint, type LabHost, type LabRouter } from '../../src/lab/lab';
import { L4natProcess, READY_MSG, repoRoot } from '../../src/lab/l4nat-process';
import {
  addrAdd,
  ipIn,
  linkUp,
  netnsAdd,
  netnsDelete,
  netnsDeleteSync,
  netnsList,
  netnsPids,
  NsProcess,
  routeAdd,
  sysctlSet,
  vethPair,
} from '../../src/lab/netns';
import { SERVICE_PORT, startBackendServers } from '../../src/lab/workload';
import { waitUntil } from './fixture';

export const SCALEOUT_VIP = '10.200.0.10';
export const SCALEOUT_VIP6 = 'fd00:200::10';
export const ROUTER_AS = 65001 - 1;
export const HOST_AS = 65001;
export const BACKEND_AS = 65010;
export const CLUSTER_PORT = 9181;
/** Flow-state sync's UDP port (cluster.sync.port). */
export const SYNC_PORT = 9182;

/** node -e: GET each URL over mutual TLS with the bearer token; prints the JSON bodies, fails on any non-200. */
const CLUSTER_STATE_SCRIPT = `
  const fs = require('fs');
  const [ca, cert, key, tokenFile, ...urls] = process.argv.slice(1);
  const tls = { ca: fs.readFileSync(ca), cert: fs.readFileSync(cert), key: fs.readFileSync(key) };
  const headers = { authorization: 'Bearer ' + fs.readFileSync(tokenFile, 'utf8').trim() };
  const get = (u) => new Promise((resolve, reject) => {
    const req = require('https').request(u, { ...tls, headers, agent: false, timeout: 5000 }, (res) => {
      let body = '';
      res.on('data', (c) => (body += c));
      res.on('end', () => (res.statusCode === 200 ? resolve(JSON.parse(body)) : reject(new Error(u + ': HTTP ' + res.statusCode + ' ' + body))));
    });
    req.on('timeout', () => req.destroy(new Error(u + ': timeout')));
    req.on('error', reject);
    req.end();
  });
  Promise.all(urls.map(get)).then((v) => process.stdout.write(JSON.stringify(v))).catch((e) => { process.stderr.write(String(e)); process.exit(1); });`;
export const BFD_INTERVAL_MS = 100;
export const BFD_MULTIPLIER = 5;

export type Family = 4 | 6;

/** `addr:port`, with IPv6 addresses in brackets (as in the config file and in URLs). */
export function addrPort(addr: string, port: number): string {
  return addr.includes(':') ? `[${addr}]:${port}` : `${addr}:${port}`;
}

/** Per family: the VIP, the client's and the LAN's prefixes, the return route, and the words BIRD and nft use. */
const FAMILY = {
  4: { vip: SCALEOUT_VIP, vipRange: '10.200.0.0/24{32,32}', returnRoute: '0.0.0.0/0', clientNet: '10.201.0.0/24', lanNet: '10.210.0.0/24', channel: 'ipv4', nft: 'ip' },
  6: { vip: SCALEOUT_VIP6, vipRange: 'fd00:200::/64{128,128}', returnRoute: '::/0', clientNet: 'fd00:201::/64', lanNet: 'fd00:210::/64', channel: 'ipv6', nft: 'ip6' },
} as const;

/**
 * Which IPv6 runs the scale-out tests make, from L4NAT_SCALEOUT_IPV6: `short` (default: the short IPv6 run beside the
 * full IPv4 one, as in npm test), `full` (both families in full), `only` (IPv6 in full, no IPv4 lab).
 */
export function scaleoutIpv6Run(env: NodeJS.ProcessEnv = process.env): 'short' | 'full' | 'only' {
  const v = env.L4NAT_SCALEOUT_IPV6 ?? 'short';
  if (v === 'short' || v === 'full' || v === 'only') return v;
  throw new Error(`L4NAT_SCALEOUT_IPV6 must be short, full or only, got ${JSON.stringify(v)}`);
}

export interface ScaleoutOptions {
  /** The address family of the VIP, the sessions, the return route and the backends (default 4). */
  family?: Family;
  /** l4nat hosts (2..3, default 3). */
  hosts?: number;
  /** Backends b1..bN on the LAN (1..8, default 3). */
  backends?: number;
  id?: string;
}

export interface ScaleoutHost extends LabHost {
  /** 1-based. */
  readonly index: number;
  readonly upIpv4: string;
  readonly routerIpv4: string;
  readonly lanIpv4: string;
  /** The IPv6 counterparts (null in an IPv4 lab). */
  readonly upIpv6: string | null;
  readonly routerIpv6: string | null;
  readonly lanIpv6: string | null;
  /** The lab family's addresses: its BGP sessions, its cluster listen address, its health checks' source. */
  readonly upAddr: string;
  readonly routerAddr: string;
  readonly lanAddr: string;
  readonly birdConf: string;
  readonly birdSocket: string;
  /** The file this host's l4nat writes and its BIRD includes. */
  readonly includeFile: string;
  readonly l4natConf: string;
}

function validate(o: ScaleoutOptions): { hosts: number; backends: number; id: string; family: Family } {
  const hosts = o.hosts ?? 3;
  if (!Number.isInteger(hosts) || hosts < 2 || hosts > 3) throw new TypeError(`hosts must be 2 or 3, got ${String(o.hosts)}`);
  const backends = o.backends ?? 3;
  if (!Number.isInteger(backends) || backends < 1 || backends > 8) throw new TypeError(`backends must be an integer in 1..8, got ${String(o.backends)}`);
  const id = o.id ?? randomBytes(3).toString('hex');
  if (!/^[0-9a-z]{1,12}$/.test(id)) throw new TypeError(`id must be 1-12 lowercase letters or digits, got ${JSON.stringify(o.id)}`);
  const family = o.family ?? 4;
  if (family !== 4 && family !== 6) throw new TypeError(`family must be 4 or 6, got ${String(o.family)}`);
  return { hosts, backends, id, family };
}

const bgpTimers = `  hold time 3; keepalive time 1; connect delay time 1; connect retry time 1; error wait time 1, 3;
  bfd on;`;
const bfd = (ifs: string): string => `protocol bfd {\n  interface ${ifs} { interval ${BFD_INTERVAL_MS} ms; multiplier ${BFD_MULTIPLIER}; };\n}\n`;

export class ScaleoutLab extends RoleLab implements Lab {
  readonly id: string;
  readonly family: Family;
  readonly ipv6: boolean;
  readonly vip4 = SCALEOUT_VIP;
  readonly vip6: string | null;
  /** The VIP the lab announces and serves (the family's). */
  readonly vip: string;
  /** What the hosts announce to the backends (`cluster.bgp.return_routes`). */
  readonly returnRoute: string;
  /** The backends' LAN in the lab's family (what nft matches the hosts' own traffic by). */
  readonly lanNet: string;
  readonly routers: readonly LabRouter[] = [];
  readonly middleHopMtu = null;
  readonly client: LabEndpoint;
  readonly router: LabHost;
  readonly sw: LabHost;
  readonly hosts: readonly ScaleoutHost[];
  readonly backends: readonly LabBackend[];
  readonly namespaces: readonly string[];
  readonly dir: string;
  /** The hash key every host gets (same config, same key: same tables). */
  readonly hashKey = randomBytes(16).toString('hex');
  /** The hosts' health views go over mutual TLS (the cluster's CA, a certificate per host) with a token, as in production. */
  readonly clusterCa: CertFiles;
  readonly clusterCerts = new Map<string, CertFiles>();
  readonly clusterTokenFile: string;
  readonly created: string[] = [];
  readonly l4nats = new Map<string, L4natProcess>();
  private readonly birds = new Map<string, NsProcess>();
  private readonly unregister: () => void;

  constructor(id: string, nHosts: number, nBackends: number, family: Family = 4) {
    super();
    this.id = id;
    this.family = family;
    this.ipv6 = family === 6;
    this.vip = FAMILY[family].vip;
    this.vip6 = this.ipv6 ? this.vip : null;
    this.returnRoute = FAMILY[family].returnRoute;
    this.lanNet = FAMILY[family].lanNet;
    const v6 = (a: string): string | null => (this.ipv6 ? a : null);
    this.dir = mkdtempSync(path.join(tmpdir(), `l4nat-scaleout-${id}-`));
    const ns = (role: string): string => `${LAB_NS_PREFIX}${id}-${role}`;
    this.client = { role: 'client', ns: ns('client'), ipv4: '10.201.0.2', ipv6: v6('fd00:201::2'), dev: 'eth0', lbIpv4: '10.201.0.1', lbIpv6: v6('fd00:201::1'), lbDev: 'c0' };
    this.router = { role: 'r', ns: ns('r') };
    this.sw = { role: 'sw', ns: ns('sw') };
    this.hosts = Array.from({ length: nHosts }, (_, k) => {
      const i = k + 1;
      const role = `lb${i}`;
      const [upIpv4, routerIpv4, lanIpv4] = [`10.203.${i}.2`, `10.203.${i}.1`, `10.210.0.${i}`];
      const [upIpv6, routerIpv6, lanIpv6] = [v6(`fd00:203:${i}::2`), v6(`fd00:203:${i}::1`), v6(`fd00:210::${i}`)];
      return {
        role,
        ns: ns(role),
        index: i,
        upIpv4,
        routerIpv4,
        lanIpv4,
        upIpv6,
        routerIpv6,
        lanIpv6,
        upAddr: upIpv6 ?? upIpv4,
        routerAddr: routerIpv6 ?? routerIpv4,
        lanAddr: lanIpv6 ?? lanIpv4,
        birdConf: path.join(this.dir, `${role}-bird.conf`),
        birdSocket: path.join(this.dir, `${role}.ctl`),
        includeFile: path.join(this.dir, `${role}-l4nat-bird.conf`),
        l4natConf: path.join(this.dir, `${role}-l4nat.yaml`),
      };
    });
    this.backends = Array.from({ length: nBackends }, (_, k) => {
      const i = k + 1;
      const role = `b${i}`;
      return { role, id: role, index: i, ns: ns(role), ipv4: `10.210.0.${10 + i}`, ipv6: v6(`fd00:210::${10 + i}`), dev: 'eth0', lbIpv4: '10.210.0.1', lbIpv6: v6('fd00:210::1'), lbDev: role };
    });
    for (const h of [this.client, this.router, this.sw, ...this.hosts, ...this.backends]) this.byRole.set(h.role, h);
    this.clusterCa = makeCa(this.dir, 'cluster-ca');
    for (const h of this.hosts) this.clusterCerts.set(h.role, issueCert(this.dir, this.clusterCa, `${h.role}-cluster`, [h.lanAddr]));
    this.clusterTokenFile = path.join(this.dir, 'cluster.token');
    writeFileSync(this.clusterTokenFile, `${randomBytes(24).toString('base64url')}\n`, { mode: 0o600 });
    this.namespaces = [...this.byRole.values()].map((h) => h.ns);
    this.unregister = registerCleanup({ name: `scale-out lab ${id}`, run: () => this.destroy(), sync: () => this.destroySync() });
  }

  /** For the Lab interface: the first l4nat host. */
  get lb(): LabHost {
    return this.hosts[0]!;
  }

  get destroyed(): boolean {
    return this.teardown !== null;
  }

  host(role: string): ScaleoutHost {
    const h = this.hosts.find((x) => x.role === role);
    if (!h) throw new RangeError(`lab ${this.id} has no l4nat host ${JSON.stringify(role)} (has ${this.hosts.map((x) => x.role).join(', ')})`);
    return h;
  }

  backend(id: string): LabBackend {
    const b = this.backends.find((x) => x.id === id);
    if (!b) throw new RangeError(`lab ${this.id} has no backend ${JSON.stringify(id)}`);
    return b;
  }

  /** A backend's address in the lab's family (what the service lists and the health keys name). */
  backendAddr(id: string): string {
    const b = this.backend(id);
    return this.ipv6 ? b.ipv6! : b.ipv4;
  }

  async enableForwarding(): Promise<void> {
    await Promise.all(this.hosts.map((h) => sysctlSet(h.ns, { 'net.ipv4.ip_forward': 1, ...(this.ipv6 ? { 'net.ipv6.conf.all.forwarding': 1 } : {}) })));
  }

  // -------------------------------------------------------------------------------------------------------------
  // Building

  async build(): Promise<void> {
    for (const ns of this.namespaces) {
      if (this.teardown !== null) throw new Error(`lab ${this.id}: destroyed during set-up`);
      await netnsAdd(ns);
      this.created.push(ns);
    }
    await Promise.all(this.namespaces.map((ns) => linkUp(ns, 'lo')));
    await Promise.all(
      this.namespaces.map((ns) => sysctlSet(ns, { 'net.ipv4.conf.all.rp_filter': 1, 'net.ipv4.conf.default.rp_filter': 1 })),
    );
    // The router: forwards, hashes ports too, and checks sources loosely (a host that is not — or no longer — a
    // next hop of the VIP may still send the VIP's replies for a moment).
    await sysctlSet(this.router.ns, { 'net.ipv4.ip_forward': 1, 'net.ipv4.fib_multipath_hash_policy': 1, 'net.ipv4.conf.all.rp_filter': 2 });
    for (const b of this.backends) await sysctlSet(b.ns, { 'net.ipv4.fib_multipath_hash_policy': 1 });

    await vethPair({ ns: this.router.ns, name: 'c0' }, { ns: this.client.ns, name: 'eth0' });
    await addrAdd(this.router.ns, 'c0', '10.201.0.1/24');
    await addrAdd(this.client.ns, 'eth0', `${this.client.ipv4}/24`);
    await routeAdd(this.client.ns, 'default', '10.201.0.1', { dev: 'eth0' });

    await ipIn(this.sw.ns, ['link', 'add', 'br0', 'type', 'bridge']);
    await linkUp(this.sw.ns, 'br0');
    for (const h of this.hosts) {
      await vethPair({ ns: this.router.ns, name: h.role }, { ns: h.ns, name: 'up' });
      await addrAdd(this.router.ns, h.role, `${h.routerIpv4}/24`);
      await addrAdd(h.ns, 'up', `${h.upIpv4}/24`);
      await vethPair({ ns: this.sw.ns, name: h.role }, { ns: h.ns, name: 'lan' });
      await ipIn(this.sw.ns, ['link', 'set', h.role, 'master', 'br0']);
      await addrAdd(h.ns, 'lan', `${h.lanIpv4}/24`);
      await routeAdd(h.ns, FAMILY[4].clientNet, h.routerIpv4, { dev: 'up' });
    }
    for (const b of this.backends) {
      await vethPair({ ns: this.sw.ns, name: b.role }, { ns: b.ns, name: 'eth0' });
      await ipIn(this.sw.ns, ['link', 'set', b.role, 'master', 'br0']);
      await addrAdd(b.ns, 'eth0', `${b.ipv4}/24`);
    }
    if (this.ipv6) await this.addIpv6();
    this.writeBirdConfigs();
    for (const h of this.hosts) this.writeL4natConfig(h);
  }

  /** The IPv6 layer on the same links: addresses (no DAD: usable at once), forwarding and ECMP hashing on the router. */
  private async addIpv6(): Promise<void> {
    await Promise.all(this.namespaces.map((ns) => sysctlSet(ns, { 'net.ipv6.conf.all.accept_dad': 0, 'net.ipv6.conf.default.accept_dad': 0 })));
    await sysctlSet(this.router.ns, { 'net.ipv6.conf.all.forwarding': 1, 'net.ipv6.fib_multipath_hash_policy': 1 });
    for (const b of this.backends) await sysctlSet(b.ns, { 'net.ipv6.fib_multipath_hash_policy': 1 });
    await addrAdd(this.router.ns, 'c0', `${this.client.lbIpv6}/64`);
    await addrAdd(this.client.ns, 'eth0', `${this.client.ipv6}/64`);
    await routeAdd(this.client.ns, 'default', this.client.lbIpv6!, { dev: 'eth0' });
    for (const h of this.hosts) {
      await addrAdd(this.router.ns, h.role, `${h.routerIpv6}/64`);
      await addrAdd(h.ns, 'up', `${h.upIpv6}/64`);
      await addrAdd(h.ns, 'lan', `${h.lanIpv6}/64`);
      await routeAdd(h.ns, FAMILY[6].clientNet, h.routerIpv6!, { dev: 'up' });
    }
    for (const b of this.backends) await addrAdd(b.ns, 'eth0', `${b.ipv6}/64`);
  }

  private writeBirdConfigs(): void {
    const f = FAMILY[this.family];
    const ch = f.channel;
    const r = [
      `router id 10.201.0.1;`,
      `log stderr all;`,
      `protocol device { scan time 10; }`,
      `protocol kernel { ${ch} { import none; export where source = RTS_BGP; }; merge paths on; }`,
      bfd('"lb*"'),
      `template bgp l4nat_host {\n  local as ${ROUTER_AS};\n${bgpTimers}\n  ${ch} { import where net ~ [ ${f.vipRange} ]; export none; };\n}`,
      ...this.hosts.map((h) => `protocol bgp ${h.role} from l4nat_host { neighbor ${h.upAddr} as ${HOST_AS}; }`),
    ];
    writeFileSync(this.birdConfOf('r'), `${r.join('\n')}\n`);
    for (const h of this.hosts) {
      const c = [
        `router id ${h.upIpv4};`,
        `log stderr all;`,
        `protocol device { scan time 10; }`,
        `# Written by l4nat (cluster.bgp.include_file): protocols l4nat_vip4/6 (VIPs) and l4nat_ret4/6 (return routes).`,
        `include "${h.includeFile}";`,
        bfd('"up", "lan"'),
        `protocol bgp upstream {\n  local as ${HOST_AS};\n  neighbor ${h.routerAddr} as ${ROUTER_AS};\n${bgpTimers}\n  ${ch} { import none; export where proto = "l4nat_vip${this.family}"; };\n}`,
        `template bgp backend {\n  local as ${HOST_AS};\n${bgpTimers}\n  ${ch} { import none; export where proto = "l4nat_ret${this.family}"; };\n}`,
        ...this.backends.map((b) => `protocol bgp ${b.role} from backend { neighbor ${this.backendAddr(b.id)} as ${BACKEND_AS}; }`),
      ];
      writeFileSync(h.birdConf, `${c.join('\n')}\n`);
      // BIRD refuses to start on a missing include; l4nat rewrites it at its start.
      writeFileSync(h.includeFile, '# l4nat has not run yet\n');
    }
    // Backends: the hosts' return routes are merged into an ECMP default in the main table; kernel table 100+N gets
    // host N's path alone (merge paths, filtered by the announcing neighbour), which enableForwarderReturn() uses for
    // replies via the host that forwarded the request (empty, so skipped, once host N withdraws its return route).
    for (const b of this.backends) {
      const c = [
        `router id ${b.ipv4};`,
        `log stderr all;`,
        `protocol device { scan time 10; }`,
        `protocol kernel { ${ch} { import none; export all; }; merge paths on; }`,
        ...this.hosts.flatMap((h) => [
          `${ch} table t_${h.role};`,
          `protocol pipe p_${h.role} { table master${this.family}; peer table t_${h.role}; import none; export where from = ${h.lanAddr}; }`,
          `protocol kernel k_${h.role} { kernel table ${100 + h.index}; ${ch} { table t_${h.role}; import none; export all; }; }`,
        ]),
        bfd('"eth0"'),
        `template bgp lbhost {\n  local as ${BACKEND_AS};\n${bgpTimers}\n  ${ch} { import all; export none; };\n}`,
        ...this.hosts.map((h) => `protocol bgp ${h.role} from lbhost { neighbor ${h.lanAddr} as ${HOST_AS}; }`),
      ];
      writeFileSync(this.birdConfOf(b.role), `${c.join('\n')}\n`);
    }
  }

  birdConfOf(role: string): string {
    return path.join(this.dir, `${role}-bird.conf`);
  }

  birdSocketOf(role: string): string {
    return path.join(this.dir, `${role}.ctl`);
  }

  /** The YAML every host runs (only `cluster.listen`, the peers and the BIRD files differ). */
  l4natConfigText(h: ScaleoutHost, opts: L4natConfigOptions = {}): string {
    const ids = opts.backends ?? this.backends.map((b) => b.id);
    const peers = this.hosts.filter((x) => x !== h).map((x) => `"${x.lanAddr}"`);
    return [
      `global:`,
      `  queues: 1`,
      `  flow_capacity: 65536`,
      `  hash_key: "${this.hashKey}"`,
      `  stats_interval: 0`,
      `  shutdown_grace: 2`,
      `defaults:`,
      `  health_check: { type: tcp, interval: 0.5, timeout: 0.4, rise: 2, fall: 2, jitter: 0.1 }`,
      `services:`,
      `  - name: web`,
      `    vips: ["${this.vip}"]`,
      `    ports: ["${SERVICE_PORT}/tcp"]`,
      // "b2@0": b2 with weight 0 (drained, the config-file way)
      `    backends: [${ids.map((id) => { const [b, w] = id.split('@'); return `"${addrPort(this.backendAddr(b), SERVICE_PORT)}${w === undefined ? '' : `@${w}`}"`; }).join(', ')}]`,
      `cluster:`,
      `  listen: "${h.lanAddr}"`,
      `  port: ${CLUSTER_PORT}`,
      `  tls: { cert: "${this.clusterCerts.get(h.role)!.cert}", key: "${this.clusterCerts.get(h.role)!.key}", ca: "${this.clusterCa.cert}" }`,
      `  token_file: "${this.clusterTokenFile}"`,
      `  peers: [${peers.join(', ')}]`,
      `  health: ${opts.healthMode ?? 'majority'}`,
      `  poll_interval: 0.5`,
      `  peer_timeout: 2`,
      `  settle: ${opts.settle ?? 3}`,
      ...(opts.sync ? [`  sync: { port: ${SYNC_PORT}, key_file: "${this.syncKeyFile()}" }`] : []),
      `  bgp:`,
      `    include_file: "${h.includeFile}"`,
      `    socket: "${h.birdSocket}"`,
      `    return_routes: ["${this.returnRoute}"]`,
      `    upstream_protocols: [upstream]`,
      `    withdraw_delay: 1`,
      ``,
    ].join('\n');
  }

  /** The cluster's flow-state sync key (owner-only, the same on every host), made at first use. */
  syncKeyFile(): string {
    const f = path.join(this.dir, 'sync.key');
    if (!existsSync(f)) writeFileSync(f, `${randomBytes(32).toString('hex')}\n`, { mode: 0o600 });
    return f;
  }

  writeL4natConfig(h: ScaleoutHost, opts: L4natConfigOptions = {}): void {
    writeFileSync(h.l4natConf, this.l4natConfigText(h, opts));
  }

  // -------------------------------------------------------------------------------------------------------------
  // Processes

  /** Starts BIRD in a namespace (foreground, logging to stderr) and waits until birdc answers. */
  async startBird(role: string): Promise<NsProcess> {
    const conf = this.hosts.find((h) => h.role === role)?.birdConf ?? this.birdConfOf(role);
    const sock = this.birdSocketOf(role);
    const p = this.spawn(role, 'bird', ['-f', '-c', conf, '-s', sock, '-P', path.join(this.dir, `${role}.pid`)]);
    this.birds.set(role, p);
    const deadline = Date.now() + 10_000;
    for (;;) {
      if (!p.running) throw new Error(`bird in ${role} exited: ${p.tail()}`);
      const r = await this.birdc(role, ['show', 'status']).catch(() => null);
      if (r && /Daemon is up and running/.test(r)) return p;
      if (Date.now() > deadline) throw new Error(`bird in ${role} does not answer: ${p.tail()}`);
      await new Promise((res) => setTimeout(res, 100));
    }
  }

  bird(role: string): NsProcess | undefined {
    return this.birds.get(role);
  }

  async birdc(role: string, args: readonly string[]): Promise<string> {
    return (await this.exec(role, 'birdc', ['-s', this.birdSocketOf(role), ...args], { timeoutMs: 5_000 })).stdout;
  }

  /** Starts `l4nat up --config` on a host and waits for "l4nat ready". */
  async startL4nat(role: string, timeoutMs = 30_000): Promise<L4natProcess> {
    const h = this.host(role);
    const args = ['up', '--config', h.l4natConf];
    const root = repoRoot();
    const proc = this.spawn(role, process.execPath, [path.join(root, 'bin', 'l4nat.js'), ...args], {
      env: { ...process.env, L4NAT_LOG_LEVEL: process.env.L4NAT_LOG_LEVEL ?? 'info' },
      cwd: root,
    });
    const l4 = new L4natProcess(this, proc, args);
    try {
      await l4.waitForLog((r) => r.msg === READY_MSG, timeoutMs, `"${READY_MSG}" on ${role}`);
    } catch (e) {
      await l4.stop(3_000);
      throw e;
    }
    this.l4nats.set(role, l4);
    return l4;
  }

  /** One request to a host's admin API (loopback inside the host, with the token l4nat created): status and JSON body. */
  async admin(role: string, method: string, path: string): Promise<{ status: number; body: any }> {
    const script = `${AUTH_HEADER_JS} fetch('http://127.0.0.1:9180' + process.argv[2], { method: process.argv[1], headers: authHeader(process.argv[3]) }).then(async (r) => process.stdout.write(JSON.stringify({ status: r.status, body: await r.json() }))).catch((e) => { process.stderr.write(String(e)); process.exit(1); });`;
    const { stdout } = await this.exec(role, process.execPath, ['-e', script, method, path, DEFAULT_ADMIN_TOKEN_FILE], { timeoutMs: 30_000 });
    return JSON.parse(stdout) as { status: number; body: any };
  }

  /** A host's cluster view (GET /cluster/v1/state on its LAN address, asked from inside the host). */
  async clusterState(role: string): Promise<ClusterStateView> {
    return (await this.clusterStatesFrom(role, [role]))[role]!;
  }

  /** Several hosts' cluster views at once (one process in the first host's namespace asks them all). */
  async clusterStates(roles: readonly string[]): Promise<Record<string, ClusterStateView>> {
    return this.clusterStatesFrom(this.hosts[0]!.role, roles);
  }

  /** Asks `roles`' views from inside host `from`, with its cluster certificate and the token, as a peer would. */
  private async clusterStatesFrom(from: string, roles: readonly string[]): Promise<Record<string, ClusterStateView>> {
    const urls = roles.map((r) => `https://${addrPort(this.host(r).lanAddr, CLUSTER_PORT)}/cluster/v1/state`);
    const cert = this.clusterCerts.get(from)!;
    const { stdout } = await this.exec(from, process.execPath, ['-e', CLUSTER_STATE_SCRIPT, this.clusterCa.cert, cert.cert, cert.key, this.clusterTokenFile, ...urls], { timeoutMs: 10_000 });
    const views = JSON.parse(stdout) as ClusterStateView[];
    return Object.fromEntries(roles.map((r, i) => [r, views[i]!]));
  }

  /** Next hops of `prefix` (or "default") in a namespace's main table of the lab's family (their gateways, sorted). */
  async nexthops(role: string, prefix: string): Promise<string[]> {
    const out = await this.ip(role, [`-${this.family}`, 'route', 'show', prefix]);
    return [...out.matchAll(/via (?:inet6 )?([0-9a-f.:]+)/g)].map((m) => m[1]!).sort();
  }

  /** A silent cut of a host's uplink: every packet in or out of "up" is dropped; the links stay up (BFD must notice). */
  async cutUplink(role: string): Promise<void> {
    const h = this.host(role);
    const rules = [
      'table inet l4lab_cut {',
      '  chain pre { type filter hook prerouting priority -400; policy accept; iifname "up" drop; }',
      '  chain out { type filter hook output priority -400; policy accept; oifname "up" drop; }',
      '  chain post { type filter hook postrouting priority -400; policy accept; oifname "up" drop; }',
      '}',
    ].join('\n');
    const f = path.join(this.dir, `${role}-cut.nft`);
    writeFileSync(f, `${rules}\n`);
    await this.exec(h.role, 'nft', ['-f', f]);
  }

  async restoreUplink(role: string): Promise<void> {
    await this.exec(role, 'nft', ['delete', 'table', 'inet', 'l4lab_cut']);
  }

  /**
   * Backend routing option "reply via the host that forwarded": each backend marks a connection with the LAN MAC
   * address its last forwarded packet came from (conntrack mark, nft) and routes the replies by that mark through
   * kernel table 100+N, which BIRD fills with host N's return route while host N announces it; a withdrawn host's
   * table is empty and the rule falls through to the ECMP default. A flow that moves to another host is re-marked
   * by its next packet, so its replies follow it and the new host pins it at the first one.
   */
  async enableForwarderReturn(): Promise<void> {
    const macs = await Promise.all(
      this.hosts.map(async (h) => {
        const m = /link\/ether ([0-9a-f:]{17})/.exec(await this.ip(h.role, ['link', 'show', 'lan']));
        if (!m) throw new Error(`no MAC address on ${h.role}'s lan`);
        return { h, mac: m[1]! };
      }),
    );
    const rules = [
      'table inet l4lab_ret {',
      `  map hostmac { type ether_addr : mark; elements = { ${macs.map((x) => `${x.mac} : ${x.h.index}`).join(', ')} } }`,
      `  chain pre { type filter hook prerouting priority mangle; policy accept; iifname "eth0" ${FAMILY[this.family].nft} saddr != ${this.lanNet} ct mark set ether saddr map @hostmac; }`,
      '  chain out { type route hook output priority mangle; policy accept; ct mark != 0 meta mark set ct mark; }',
      '}',
    ].join('\n');
    const f = path.join(this.dir, 'backend-return.nft');
    writeFileSync(f, `${rules}\n`);
    for (const b of this.backends) {
      await this.exec(b.role, 'nft', ['-f', f]);
      for (const h of this.hosts) await this.ip(b.role, [`-${this.family}`, 'rule', 'add', 'fwmark', String(h.index), 'lookup', String(100 + h.index), 'pref', String(100 + h.index)]);
    }
  }

  /** Back to the ECMP default for replies (undoes enableForwarderReturn). */
  async disableForwarderReturn(): Promise<void> {
    for (const b of this.backends) {
      await this.exec(b.role, 'nft', ['delete', 'table', 'inet', 'l4lab_ret']);
      for (const h of this.hosts) await this.ip(b.role, [`-${this.family}`, 'rule', 'del', 'pref', String(100 + h.index)]);
    }
  }

  // -------------------------------------------------------------------------------------------------------------
  // Teardown

  destroy(): Promise<void> {
    if (this.teardown === null) this.teardown = this.doDestroy();
    return this.teardown;
  }

  private async doDestroy(): Promise<void> {
    try {
      await this.procs.stopAll(3_000);
    } catch {
      // Forced below.
    }
    for (const ns of this.created) {
      try {
        for (const pid of await netnsPids(ns)) if (pid !== process.pid) process.kill(pid, 'SIGKILL');
      } catch {
        // Gone meanwhile.
      }
    }
    for (const ns of [...this.created].reverse()) await netnsDelete(ns, { ifExists: true }).catch(() => undefined);
    let left = (await netnsList()).filter((n) => this.created.includes(n));
    for (const ns of left) netnsDeleteSync(ns);
    left = (await netnsList()).filter((n) => this.created.includes(n));
    rmSync(this.dir, { recursive: true, force: true });
    this.unregister();
    if (left.length) throw new Error(`scale-out lab ${this.id}: could not remove namespaces ${left.join(', ')}`);
  }

  private destroySync(): void {
    this.teardown ??= Promise.resolve();
    this.procs.killAllSync();
    for (const ns of [...this.created].reverse()) netnsDeleteSync(ns);
    rmSync(this.dir, { recursive: true, force: true });
  }
}

export interface L4natConfigOptions {
  /** Lab backends in the service (default: all). */
  backends?: readonly string[];
  healthMode?: 'majority' | 'local';
  /** cluster.settle (default 3). */
  settle?: number;
  /** cluster.sync on (flow-state sync, UDP port SYNC_PORT, a key shared by the hosts). */
  sync?: boolean;
}

export interface ClusterStateView {
  host: string;
  health: Record<string, boolean>;
  agreed: Record<string, boolean>;
  rings: Record<string, string>;
  announced: { vips: string[]; returnRoutes: string[] };
  peers: Array<{ peer: string; ageMs: number | null; error: string | null }>;
}

/** Builds the topology and writes the configs (no process started). On failure everything is removed. */
export async function createScaleoutLab(opts: ScaleoutOptions = {}): Promise<ScaleoutLab> {
  const { hosts, backends, id, family } = validate(opts);
  const existing = await listLabNamespaces(id);
  if (existing.length) throw new Error(`lab id ${id} is in use: namespaces ${existing.join(', ')} exist`);
  const lab = new ScaleoutLab(id, hosts, backends, family);
  try {
    await lab.build();
  } catch (e) {
    await lab.destroy().catch(() => undefined);
    throw e;
  }
  return lab;
}

/** Starts every BIRD (router, hosts, backends); l4nat is started separately. */
export async function startRouting(lab: ScaleoutLab): Promise<void> {
  await lab.startBird('r');
  for (const h of lab.hosts) await lab.startBird(h.role);
  for (const b of lab.backends) await lab.startBird(b.role);
}

/**
 * A running scale-out lab: topology, BIRD everywhere, backend servers, an l4nat on every host (`configure` may
 * rewrite the hosts' configs first), and the router and the backends routing over every host. On failure
 * everything is removed.
 */
export async function startScaleout(opts: ScaleoutOptions, configure: (lab: ScaleoutLab) => void = () => undefined): Promise<ScaleoutLab> {
  const lab = await createScaleoutLab(opts);
  try {
    await startRouting(lab);
    await startBackendServers(lab);
    configure(lab);
    for (const h of lab.hosts) await lab.startL4nat(h.role);
    const n = lab.hosts.length;
    await waitUntil(`${n} ECMP next hops on the router and on the backends`, async () => (await lab.nexthops('r', lab.vip)).length === n && (await lab.nexthops('b1', 'default')).length === n, 30_000, 100);
  } catch (e) {
    await lab.destroy();
    throw e;
  }
  return lab;
}
