// Reading the config file (YAML) into the same options `l4nat up` flags give. Pure apart from reading the
// file itself and the files it names (TLS material, token): nothing on the host is touched, so
// `l4nat check` and a reload can run it freely. Every problem is reported, each naming the path in the
// file, the bad value and what is expected, with its line and column:
//   services[0].backends[1].port: got 70000, expected a whole number from 1 to 65535 (line 14, column 15)
import Ajv, { type ErrorObject } from 'ajv';
import { readFileSync } from 'fs';
import { cpus } from 'os';
import { isIP } from 'net';
import { resolve } from 'path';
import { LineCounter, parseDocument, type Document } from 'yaml';
import { canonicalIp, type Family } from '../host/addr';
import {
  backendAddressProblem,
  checkServices,
  DEFAULT_TIMEOUTS,
  isLoopback,
  withDefaultAuth,
  type AdminConfig,
  type BackendConfig,
  type HashMode,
  type HealthCheckSpec,
  type OnAllDown,
  type OnDown,
  type PassiveCheckSpec,
  type Proto,
  type ServiceConfig,
  type Timeouts,
} from './model';
import { parseCidr } from '../dataplane/tables';
import { DEFAULT_PROBE_SOURCE, parseBackend, UP_DEFAULTS, type UpOptions } from '../cli/up-args';
import { configSchema } from './schema';
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

type PathSeg = string | number;

export const HEALTH_DEFAULTS: Readonly<Omit<HealthCheckSpec, 'type'>> = {
  interval: 2,
  timeout: 1,
  rise: 2,
  fall: 3,
  jitter: 0.1,
  path: '/',
  expectStatus: [],
  tlsVerify: false,
};

function formatPath(path: readonly PathSeg[]): string {
  let out = '';
  for (const p of path) out += typeof p === 'number' ? `[${p}]` : out === '' ? p : `.${p}`;
  return out || '(top level)';
}

function show(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'a mapping';
  const s = JSON.stringify(v);
  return s.length > 60 ? `${s.slice(0, 57)}...` : s;
}

type Schema = Record<string, unknown>;

function expectOf(s: Schema): string {
  if (typeof s['x-expect'] === 'string') return s['x-expect'];
  if (Array.isArray(s.enum)) return `one of ${s.enum.map((x) => JSON.stringify(x)).join(', ')}`;
  const t = s.type;
  if (t === 'integer') return `a whole number from ${String(s.minimum)} to ${String(s.maximum)}`;
  if (t === 'number') return `a number from ${String(s.minimum)} to ${String(s.maximum)}`;
  if (t === 'boolean') return 'true or false';
  if (t === 'string') return s.minLength ? 'a non-empty string' : 'a string';
  if (t === 'array') return s.minItems ? `a list of at least ${String(s.minItems)} item(s)` : 'a list';
  if (t === 'object') return 'a mapping';
  return JSON.stringify(t);
}

let validator: ReturnType<Ajv['compile']> | undefined;
function validate(data: unknown): ErrorObject[] {
  if (!validator) {
    const ajv = new Ajv({ allErrors: true, verbose: true, strict: false, allowUnionTypes: true });
    ajv.addKeyword({ keyword: 'x-expect', schemaType: 'string' });
    validator = ajv.compile(configSchema);
  }
  return validator(data) ? [] : [...(validator.errors ?? [])];
}

function pathOf(instancePath: string): PathSeg[] {
  return instancePath
    .split('/')
    .slice(1)
    .map((p) => p.replace(/~1/g, '/').replace(/~0/g, '~'))
    .map((p) => (/^\d+$/.test(p) ? Number(p) : p));
}

/** One readable issue per path (ajv may report several keywords for one bad value). */
function schemaIssues(errors: ErrorObject[]): Array<{ path: PathSeg[]; msg: string }> {
  const out = new Map<string, { path: PathSeg[]; msg: string }>();
  for (const e of errors) {
    let path = pathOf(e.instancePath);
    let msg: string;
    const ps = (e.parentSchema ?? {}) as Schema;
    if (e.keyword === 'required') {
      msg = `missing required key "${String((e.params as { missingProperty: string }).missingProperty)}"`;
    } else if (e.keyword === 'additionalProperties') {
      const key = String((e.params as { additionalProperty: string }).additionalProperty);
      path = [...path, key];
      msg = `unknown key; expected one of: ${Object.keys((ps.properties ?? {}) as object).join(', ')}`;
    } else {
      msg = `got ${show(e.data)}, expected ${expectOf(ps)}`;
    }
    const k = `${formatPath(path)}|${e.keyword === 'required' ? msg : ''}`;
    if (!out.has(k)) out.set(k, { path, msg });
  }
  return [...out.values()];
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

function familyOf(addr: string): Family | undefined {
  const v = isIP(addr);
  return v === 4 ? 4 : v === 6 && !addr.includes('%') ? 6 : undefined;
}

/** The raw (schema-valid) shapes. */
interface RawHealth {
  type: HealthCheckSpec['type'] | 'none';
  interval?: number;
  timeout?: number;
  rise?: number;
  fall?: number;
  jitter?: number;
  port?: number;
  path?: string;
  host?: string;
  expect_status?: number[];
  tls_verify?: boolean;
  command?: string[];
}
interface RawPassive {
  window?: number;
  max_unanswered?: number;
  max_resets?: number;
  hold?: number;
}
interface RawBackend {
  address: string;
  port?: number;
  weight?: number;
  name?: string;
}
interface RawService {
  name: string;
  vips: string[];
  ports: Array<number | string>;
  hash?: HashMode;
  on_all_down?: OnAllDown;
  on_down?: OnDown;
  health_check?: RawHealth;
  passive_check?: RawPassive;
  new_flow_rate?: { rate: number; burst?: number };
  timeouts?: RawTimeouts;
  allow_sources?: string[];
  deny_sources?: string[];
  backends?: Array<string | RawBackend>;
}
interface RawTimeouts {
  tcp?: number;
  tcp_syn?: number;
  tcp_fin?: number;
  tcp_close?: number;
  udp?: number;
}

/** A service's own timeouts: only the keys it sets (the data plane keeps the global value for the rest). */
function serviceTimeouts(t: RawTimeouts): Partial<Timeouts> {
  const out: Partial<Timeouts> = {};
  if (t.tcp_syn !== undefined) out.tcpSyn = t.tcp_syn;
  if (t.tcp !== undefined) out.tcpEstablished = t.tcp;
  if (t.tcp_fin !== undefined) out.tcpFin = t.tcp_fin;
  if (t.tcp_close !== undefined) out.tcpClose = t.tcp_close;
  if (t.udp !== undefined) out.udp = t.udp;
  return out;
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
    icmp_echo?: boolean;
    stats_interval?: number;
    worker_nice?: number;
    log_level?: string;
    shutdown_grace?: number;
    proxy_neighbors?: string[];
    timeouts?: RawTimeouts;
    probe_source?: { ipv4?: string; ipv6?: string };
  };
  admin?: { listen?: string; port?: number; token_file?: string; insecure_no_auth?: boolean; tls?: { cert: string; key: string; client_ca?: string } };
  defaults?: { health_check?: RawHealth; passive_check?: RawPassive; on_all_down?: OnAllDown; on_down?: OnDown; hash?: HashMode };
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
  const add = (path: PathSeg[], msg: string): void => {
    issues.push(`${formatPath(path)}: ${msg}${where(doc, lc, path)}`);
  };
  for (const i of schemaIssues(validate(data))) add(i.path, i.msg);
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

function readable(path: PathSeg[], file: string, add: (p: PathSeg[], m: string) => void): string | undefined {
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

function healthOf(raw: RawHealth | undefined, path: PathSeg[], add: (p: PathSeg[], m: string) => void): HealthCheckSpec | null {
  if (!raw || raw.type === 'none') return null;
  const interval = raw.interval ?? HEALTH_DEFAULTS.interval;
  const h: HealthCheckSpec = {
    type: raw.type,
    interval,
    timeout: raw.timeout ?? Math.min(HEALTH_DEFAULTS.timeout, interval),
    rise: raw.rise ?? HEALTH_DEFAULTS.rise,
    fall: raw.fall ?? HEALTH_DEFAULTS.fall,
    jitter: raw.jitter ?? HEALTH_DEFAULTS.jitter,
    port: raw.port,
    path: raw.path ?? HEALTH_DEFAULTS.path,
    host: raw.host,
    expectStatus: raw.expect_status ?? [],
    tlsVerify: raw.tls_verify ?? HEALTH_DEFAULTS.tlsVerify,
    command: raw.command,
  };
  if (h.timeout > h.interval) add([...path, 'timeout'], `got ${h.timeout}, expected at most the interval (${h.interval} s): checks must not overlap`);
  if (h.type === 'command' && !h.command) add(path, 'missing required key "command" for a check of type command');
  if (h.type !== 'command' && raw.command) add([...path, 'command'], `applies to type command only, this check is ${h.type}`);
  if (h.type === 'tcp' || h.type === 'command' || h.type === 'dataplane' || h.type === 'icmp') {
    for (const k of ['path', 'host', 'expect_status', 'tls_verify'] as const) {
      if (raw[k] !== undefined) add([...path, k], `applies to http/https checks only, this check is ${h.type}`);
    }
  }
  if (h.type === 'http' && raw.tls_verify !== undefined) add([...path, 'tls_verify'], 'applies to https checks only');
  // The data plane knows a backend's answers by (address, port): a probe to another port would be dropped there.
  if (h.type === 'dataplane' && raw.port !== undefined) add([...path, 'port'], 'a dataplane check probes the service port itself; remove port (or use a tcp check for another port)');
  if (h.type === 'icmp' && raw.port !== undefined) add([...path, 'port'], 'an icmp check pings the backend\'s address and has no port; remove port');
  return h;
}

export const PASSIVE_DEFAULTS: Readonly<PassiveCheckSpec> = { window: 10, maxUnanswered: 5, maxResets: 0, hold: 30 };

function passiveOf(raw: RawPassive | undefined): PassiveCheckSpec | null {
  if (!raw) return null;
  return {
    window: raw.window ?? PASSIVE_DEFAULTS.window,
    maxUnanswered: raw.max_unanswered ?? PASSIVE_DEFAULTS.maxUnanswered,
    maxResets: raw.max_resets ?? PASSIVE_DEFAULTS.maxResets,
    hold: raw.hold ?? PASSIVE_DEFAULTS.hold,
  };
}

function probeSourceOf(raw: { ipv4?: string; ipv6?: string } | undefined, add: (p: PathSeg[], m: string) => void): { ipv4: string; ipv6: string } {
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

function semantic(raw: RawConfig, add: (p: PathSeg[], m: string) => void): UpOptions {
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

  const d = raw.defaults ?? {};
  const defaultHealth = healthOf(d.health_check, ['defaults', 'health_check'], add);
  const services: ServiceConfig[] = [];
  const names = new Set<string>();
  raw.services.forEach((rs, si) => {
    const sp: PathSeg[] = ['services', si];
    if (names.has(rs.name)) add([...sp, 'name'], `got ${show(rs.name)}, expected a name no other service uses`);
    names.add(rs.name);
    const vips: Array<{ addr: string; family: Family }> = [];
    rs.vips.forEach((v, vi) => {
      const f = familyOf(v);
      if (!f) add([...sp, 'vips', vi], `got ${show(v)}, expected an IPv4 or IPv6 address (no brackets, no prefix)`);
      else vips.push({ addr: canonicalIp(v, f), family: f });
    });
    const ports: Array<{ port: number; proto: Proto }> = [];
    rs.ports.forEach((p, pi) => {
      const m = /^(\d+)(?:\/(tcp|udp))?$/.exec(String(p));
      const n = m ? Number(m[1]) : NaN;
      if (!m || n < 1 || n > 65535) add([...sp, 'ports', pi], `got ${show(p)}, expected PORT or "PORT/tcp" or "PORT/udp" (1-65535)`);
      else ports.push({ port: n, proto: (m[2] as Proto | undefined) ?? 'tcp' });
    });
    const backends: Array<{ addr: string; family: Family; port: number | undefined; weight: number; name?: string }> = [];
    const seen = new Set<string>();
    (rs.backends ?? []).forEach((rb, bi) => {
      const bp: PathSeg[] = [...sp, 'backends', bi];
      let b: (typeof backends)[number];
      if (typeof rb === 'string') {
        try {
          b = parseBackend(rb);
        } catch (e) {
          add(bp, (e as Error).message.replace(/^--backend expects/, 'expected'));
          return;
        }
      } else {
        const f = familyOf(rb.address);
        if (!f) {
          add([...bp, 'address'], `got ${show(rb.address)}, expected an IPv4 or IPv6 address (no brackets, no prefix)`);
          return;
        }
        b = { addr: canonicalIp(rb.address, f), family: f, port: rb.port, weight: rb.weight ?? 1 };
        if (rb.name !== undefined) b.name = rb.name;
      }
      const unusable = backendAddressProblem(b.addr, b.family);
      if (unusable) {
        add(bp, `backend ${b.addr} is ${unusable}: it cannot be a backend`);
        return;
      }
      const k = `${b.addr}|${b.port ?? ''}`;
      if (seen.has(k)) add(bp, `backend ${b.addr}${b.port ? ` port ${b.port}` : ''} is listed twice in this service`);
      seen.add(k);
      if (!vips.some((v) => v.family === b.family)) add(bp, `backend ${b.addr} is IPv${b.family} but no VIP of this service is IPv${b.family}`);
      backends.push(b);
    });
    if (backends.length) {
      for (const v of vips) {
        if (!backends.some((b) => b.family === v.family)) add([...sp, 'vips'], `VIP ${v.addr} is IPv${v.family} but no backend of this service is IPv${v.family}`);
      }
    }
    const health = rs.health_check ? healthOf(rs.health_check, [...sp, 'health_check'], add) : defaultHealth;
    const passive = passiveOf(rs.passive_check ?? d.passive_check);
    // Source lists: each CIDR is checked, then each expanded service takes those of its family. An allow list
    // without a prefix of some VIP's family would let that family through unfiltered: refused.
    const cidrs = (key: 'allow_sources' | 'deny_sources'): Array<{ text: string; family: Family }> =>
      (rs[key] ?? []).flatMap((text, ci) => {
        const addr = text.split('/')[0];
        const fam = familyOf(addr);
        try {
          if (!fam || !text.includes('/')) throw new Error('x');
          parseCidr(text, fam, 'x');
          return [{ text, family: fam }];
        } catch {
          add([...sp, key, ci], `got ${show(text)}, expected an IPv4 or IPv6 CIDR (ADDR/LEN)`);
          return [];
        }
      });
    const allow = cidrs('allow_sources');
    const deny = cidrs('deny_sources');
    if (rs.allow_sources?.length) {
      for (const f of new Set(vips.map((v) => v.family))) {
        if (!allow.some((c) => c.family === f)) add([...sp, 'allow_sources'], `has no IPv${f} prefix but the service has an IPv${f} VIP: add one (${f === 4 ? '0.0.0.0/0' : '::/0'} to allow every IPv${f} source)`);
      }
    }
    const rate = rs.new_flow_rate ? { rate: rs.new_flow_rate.rate, burst: rs.new_flow_rate.burst ?? rs.new_flow_rate.rate } : undefined;
    for (const v of vips) {
      for (const p of ports) {
        const bs: BackendConfig[] = backends
          .filter((b) => b.family === v.family)
          .map((b) => ({ addr: b.addr, family: b.family, port: b.port ?? p.port, weight: b.weight, ...(b.name !== undefined ? { name: b.name } : {}) }));
        services.push({
          name: rs.name,
          vip: v.addr,
          family: v.family,
          port: p.port,
          proto: p.proto,
          hash: rs.hash ?? d.hash ?? '5tuple',
          backends: bs,
          health,
          passive,
          onAllDown: rs.on_all_down ?? d.on_all_down ?? 'drop',
          onDown: rs.on_down ?? d.on_down ?? 'keep',
          ...(rate ? { newFlowRate: rate } : {}),
          ...(rs.timeouts ? { timeouts: serviceTimeouts(rs.timeouts) } : {}),
          ...(allow.length ? { allowSources: allow.filter((c) => c.family === v.family).map((c) => c.text) } : {}),
          ...(deny.some((c) => c.family === v.family) ? { denySources: deny.filter((c) => c.family === v.family).map((c) => c.text) } : {}),
        });
      }
    }
  });
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
