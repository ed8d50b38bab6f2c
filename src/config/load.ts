// Reading the config file (YAML) into the same options `l4nat up` flags give. Pure apart from reading the
// file itself and the files it names (TLS material, token): nothing on the host is touched, so
// `l4nat check` and a reload can run it freely. Every problem is reported, each naming the path in the
// file, the bad value and what is expected, with its line and column:
//   services[0].backends[1].port: got 70000, expected a whole number from 1 to 65535 (line 14, column 15)
// Layers: schema.ts (shape) and issues.ts (wording) → services.ts (the services) and cluster/options.ts (the
// cluster section) → this file (the rest: global, admin and the files they name; the settings a reload cannot change).
import { readFileSync } from 'fs';
import { cpus } from 'os';
import { isIP } from 'net';
import { resolve } from 'path';
import { LineCounter, parseDocument, type Document } from 'yaml';
import { canonicalIp } from '../host/addr';
import { checkServices, DEFAULT_TIMEOUTS, isLoopback, withDefaultAuth, type AdminConfig } from './model';
import { DEFAULT_PROBE_SOURCE, UP_DEFAULTS, type UpOptions } from './options';
import { familyOf } from './address-syntax';
import { formatPath, schemaIssues, show, type Add, type PathSeg } from './issues';
import { servicesOf, type RawDefaults, type RawService, type RawTimeouts } from './services';
import { DEFAULT_WORKER_NICE } from '../dataplane/worker-priority';
import { clusterOf, type RawCluster, type UpOptionsWithCluster } from '../cluster/options';
import { readHashKeyFile } from './hash-key';
import { isPrime, nextPrime } from '../dataplane/maglev';
import { readTokenFile, SecretFileError } from './secret-file';

export class ConfigError extends Error {
  constructor(
    readonly file: string,
    readonly issues: string[],
  ) {
    super(`${file}: ${issues.length === 1 ? issues[0] : `${issues.length} problems:\n  ${issues.join('\n  ')}`}`);
    this.name = 'ConfigError';
  }
}

function where(doc: Document, lc: LineCounter, path: PathSeg[]): string {
  for (let p = path; p.length >= 0; p = p.slice(0, -1)) {
    const node = (p.length ? doc.getIn(p, true) : doc.contents) as { range?: [number, number, number] } | undefined;
    if (node?.range) {
      const pos = lc.linePos(node.range[0]);
      return ` (line ${pos.line}, column ${pos.col})`;
    }
    if (p.length === 0) break;
  }
  return '';
}

interface RawConfig {
  global?: {
    queues?: number;
    tun?: string;
    flow_capacity?: number;
    table?: number;
    rule_pref?: number;
    mtu?: number;
    maglev_size?: number;
    hash_key?: string;
    hash_key_file?: string;
    flow_file?: string;
    icmp_echo?: boolean;
    stats_interval?: number;
    worker_nice?: number;
    log_level?: string;
    shutdown_grace?: number;
    proxy_neighbors?: string[];
    timeouts?: RawTimeouts;
    probe_source?: { ipv4?: string; ipv6?: string };
  };
  admin?: { listen?: string; port?: number; token_file?: string; insecure_no_auth?: boolean; dashboard?: { read_only?: boolean }; tls?: { cert: string; key: string; client_ca?: string } };
  defaults?: RawDefaults;
  services: RawService[];
  cluster?: RawCluster;
}

/** Parses and validates config text. Throws ConfigError listing every problem found. */
export function parseConfig(text: string, file: string): UpOptions {
  const lc = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lc, prettyErrors: true, uniqueKeys: true });
  if (doc.errors.length) {
    throw new ConfigError(file, doc.errors.map((e) => `YAML syntax: ${e.message.split('\n')[0]}`));
  }
  const data = doc.toJS() as unknown;
  if (data === null || data === undefined) throw new ConfigError(file, ['the file is empty: expected a mapping with at least "services"']);
  const issues: string[] = [];
  const add: Add = (path, problem) => {
    issues.push(`${typeof problem === 'string' ? `${formatPath(path)}: ${problem}` : problem.message}${where(doc, lc, path)}`);
  };
  for (const i of schemaIssues(data)) add(i.path, i.msg);
  if (issues.length) throw new ConfigError(file, issues);
  const raw = data as RawConfig;
  const out = semantic(raw, add);
  if (issues.length) throw new ConfigError(file, issues);
  out.configFile = file;
  return out;
}

/** Reads and validates a config file; the path is made absolute, so a reload finds it whatever the cwd. */
export function loadConfigFile(file: string): UpOptions {
  file = resolve(file);
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    throw new ConfigError(file, [`cannot read the config file: ${err.code ?? err.message}`]);
  }
  return parseConfig(text, file);
}

function readable(path: PathSeg[], file: string, add: Add): string | undefined {
  try {
    const t = readFileSync(file, 'utf8');
    if (t.trim() === '') add(path, `${JSON.stringify(file)} is empty`);
    return t;
  } catch (e) {
    add(path, `cannot read ${JSON.stringify(file)}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
    return undefined;
  }
}

/** Reads the admin bearer token from its file (owner-only, trimmed, at least 16 characters). */
export function readToken(file: string): string {
  return readTokenFile(file, 'admin token file');
}

/**
 * A secret file's problem for the config report: its own message (mode, contents), or "cannot read" with the
 * errno code, unless that code is in `fine`: a file l4nat up creates may not exist yet, and a default one (not
 * named in the config) may be unreadable to this user, since `check` may run as another user than l4nat.
 */
function secretFileIssue(e: unknown, file: string, fine: readonly string[]): string | undefined {
  const code = e instanceof SecretFileError ? e.code : undefined;
  if (code !== undefined && fine.includes(code)) return undefined;
  return code !== undefined ? `cannot read ${JSON.stringify(file)}: ${code}` : (e as Error).message;
}

const UNREADABLE = ['EACCES', 'EPERM'];

function probeSourceOf(raw: { ipv4?: string; ipv6?: string } | undefined, add: Add): { ipv4: string; ipv6: string } {
  const out = { ...DEFAULT_PROBE_SOURCE };
  for (const fam of [4, 6] as const) {
    const k = fam === 4 ? 'ipv4' : 'ipv6';
    const v = raw?.[k];
    if (v === undefined) continue;
    if (isIP(v) !== fam) add(['global', 'probe_source', k], `got ${JSON.stringify(v)}, expected an IPv${fam} address`);
    else out[k] = canonicalIp(v, fam);
  }
  return out;
}

function semantic(raw: RawConfig, add: Add): UpOptions {
  const g = raw.global ?? {};
  const a = raw.admin ?? {};
  const admin: AdminConfig = { listen: a.listen ?? '127.0.0.1', port: a.port ?? UP_DEFAULTS.adminPort };
  const listenFamily = familyOf(admin.listen);
  if (!listenFamily) add(['admin', 'listen'], `got ${show(admin.listen)}, expected an IPv4 or IPv6 address`);
  if (a.tls) {
    admin.tls = { cert: a.tls.cert, key: a.tls.key, clientCa: a.tls.client_ca };
    readable(['admin', 'tls', 'cert'], a.tls.cert, add);
    readable(['admin', 'tls', 'key'], a.tls.key, add);
    if (a.tls.client_ca) readable(['admin', 'tls', 'client_ca'], a.tls.client_ca, add);
  }
  if (a.token_file) admin.tokenFile = a.token_file;
  if (a.dashboard) admin.dashboard = { readOnly: a.dashboard.read_only ?? false };
  if (a.insecure_no_auth) {
    if (a.token_file || a.tls?.client_ca) add(['admin', 'insecure_no_auth'], 'contradicts token_file and tls.client_ca: remove it, or them');
    else if (listenFamily && !isLoopback(admin.listen)) add(['admin', 'insecure_no_auth'], `is allowed on a loopback listen address only, got ${admin.listen}`);
    else admin.insecureNoAuth = true;
  }
  if (listenFamily && !isLoopback(admin.listen) && admin.port > 0 && !a.tls) {
    add(['admin'], `listen ${admin.listen} is not a loopback address: it requires tls {cert, key} (authentication: the bearer token, token_file, and/or tls.client_ca)`);
  }
  const adminAuth = withDefaultAuth(admin, UP_DEFAULTS.adminTokenFile);
  if (adminAuth.tokenFile !== undefined) {
    try {
      readToken(adminAuth.tokenFile);
    } catch (e) {
      const issue = secretFileIssue(e, adminAuth.tokenFile, adminAuth.createToken ? ['ENOENT', ...UNREADABLE] : []);
      if (issue) add(['admin', 'token_file'], issue);
    }
  }
  if (g.hash_key === undefined) {
    const file = g.hash_key_file ?? UP_DEFAULTS.hashKeyFile;
    try {
      readHashKeyFile(file);
    } catch (e) {
      const issue = secretFileIssue(e, file, g.hash_key_file === undefined ? ['ENOENT', ...UNREADABLE] : ['ENOENT']);
      if (issue) add(['global', 'hash_key_file'], issue);
    }
  }

  const services = servicesOf(raw.services, raw.defaults ?? {}, add);
  const probeSource = probeSourceOf(g.probe_source, add);
  const maglevSize = g.maglev_size ?? UP_DEFAULTS.maglevSize;
  if (!isPrime(maglevSize)) add(['global', 'maglev_size'], `got ${maglevSize}, expected a prime number (Maglev's table size; the next prime is ${nextPrime(maglevSize)})`);
  try {
    checkServices(services, { probeSource });
  } catch (e) {
    add(['services'], (e as Error).message);
  }
  const t = g.timeouts ?? {};
  const cluster = clusterOf(raw.cluster, add);
  const out: UpOptionsWithCluster = {
    services,
    queues: g.queues ?? Math.max(1, cpus().length),
    tun: g.tun ?? UP_DEFAULTS.tun,
    flowCapacity: g.flow_capacity ?? UP_DEFAULTS.flowCapacity,
    table: g.table ?? UP_DEFAULTS.table,
    rulePref: g.rule_pref ?? UP_DEFAULTS.rulePref,
    mtu: g.mtu,
    timeouts: {
      tcpSyn: t.tcp_syn ?? DEFAULT_TIMEOUTS.tcpSyn,
      tcpEstablished: t.tcp ?? DEFAULT_TIMEOUTS.tcpEstablished,
      tcpFin: t.tcp_fin ?? DEFAULT_TIMEOUTS.tcpFin,
      tcpClose: t.tcp_close ?? DEFAULT_TIMEOUTS.tcpClose,
      udp: t.udp ?? DEFAULT_TIMEOUTS.udp,
    },
    icmpEcho: g.icmp_echo ?? true,
    icmpTranslate: true,
    hashKey: g.hash_key === undefined ? undefined : Buffer.from(g.hash_key, 'hex'),
    hashKeyFile: g.hash_key_file ?? UP_DEFAULTS.hashKeyFile,
    ...(g.flow_file !== undefined ? { flowFile: g.flow_file } : {}),
    statsInterval: g.stats_interval ?? UP_DEFAULTS.statsInterval,
    workerNice: g.worker_nice ?? DEFAULT_WORKER_NICE,
    maglevSize,
    logLevel: g.log_level ?? 'info',
    admin: adminAuth,
    shutdownGrace: g.shutdown_grace ?? UP_DEFAULTS.shutdownGrace,
    proxyNeighbors: g.proxy_neighbors ?? [],
    probeSource,
  };
  if (cluster) out.cluster = cluster;
  return out;
}

/**
 * Settings that only take effect at start (the TUN, its queues and their workers' nice value, the flow
 * table, routing table and rule preference, the admin listener): a reload that changes one of them is
 * refused, naming them, so the running config never silently differs from the file.
 */
export function restartOnlyChanges(cur: UpOptions, next: UpOptions): string[] {
  const out: string[] = [];
  const cmp = (name: string, x: unknown, y: unknown): void => {
    if (JSON.stringify(x) !== JSON.stringify(y)) out.push(name);
  };
  cmp('global.queues', cur.queues, next.queues);
  cmp('global.worker_nice', cur.workerNice, next.workerNice);
  cmp('global.tun', cur.tun, next.tun);
  cmp('global.flow_capacity', cur.flowCapacity, next.flowCapacity);
  cmp('global.flow_file', cur.flowFile, next.flowFile);
  cmp('global.table', cur.table, next.table);
  cmp('global.rule_pref', cur.rulePref, next.rulePref);
  cmp('global.mtu', cur.mtu, next.mtu);
  cmp('global.maglev_size', cur.maglevSize, next.maglevSize);
  cmp('global.hash_key / hash_key_file', [cur.hashKey?.toString('hex'), cur.hashKeyFile], [next.hashKey?.toString('hex'), next.hashKeyFile]);
  cmp('admin (listen, port, tls)', [cur.admin.listen, cur.admin.port, cur.admin.tls], [next.admin.listen, next.admin.port, next.admin.tls]);
  cmp('admin.token_file', cur.admin.tokenFile, next.admin.tokenFile);
  cmp('global.proxy_neighbors', cur.proxyNeighbors, next.proxyNeighbors);
  cmp('cluster', (cur as UpOptionsWithCluster).cluster, (next as UpOptionsWithCluster).cluster);
  return out;
}
