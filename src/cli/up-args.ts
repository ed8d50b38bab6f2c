// Parsing and validating `l4nat up` flags into a service list and options. Pure: nothing is touched here,
// so a bad flag changes nothing. Every error names the flag and what it expects.
import { cpus } from 'os';
import { isIPv4, isIPv6 } from 'net';
import { canonicalIp, type Family } from '../host/addr';
import { DEFAULT_WORKER_NICE } from '../dataplane/worker-priority';
import { isPrime, nextPrime } from '../dataplane/maglev';
import { checkServices, DEFAULT_TIMEOUTS, withDefaultAuth, type AdminConfig, type BackendConfig, type HashMode, type Proto, type ServiceConfig, type Timeouts } from '../config/model';

export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

export interface UpOptions {
  services: ServiceConfig[];
  queues: number;
  tun: string;
  flowCapacity: number;
  table: number;
  rulePref: number;
  mtu: number | undefined; // undefined: derive from the links
  timeouts: Timeouts;
  icmpEcho: boolean;
  icmpTranslate: boolean;
  hashKey: Buffer | undefined;
  hashKeyFile: string;
  statsInterval: number;
  /** Nice value of the data-plane worker threads (src/dataplane/worker-priority.ts); 0 leaves them at the process's. */
  workerNice: number;
  maglevSize: number;
  logLevel: string;
  admin: AdminConfig;
  shutdownGrace: number; // seconds of forwarding existing flows (and admitting none) after SIGTERM
  proxyNeighbors: string[]; // interfaces on which to answer ARP/NDP for the VIPs
  /** Source addresses of dataplane health probes (src/health/dataplane-probe.ts), routed to the TUN. */
  probeSource: { ipv4: string; ipv6: string };
  configFile?: string; // set when the options came from a config file (reload re-reads it)
}

export const UP_DEFAULTS = {
  tun: 'l4nat0',
  flowCapacity: 1 << 20,
  table: 4400,
  rulePref: 4400,
  hashKeyFile: '/var/lib/l4nat/hash.key',
  /** The admin API's bearer token, created at first start (owner-only) when no other authentication is set. */
  adminTokenFile: '/var/lib/l4nat/admin.token',
  statsInterval: 10,
  maglevSize: 65537,
  adminPort: 9180,
  shutdownGrace: 0,
};

/**
 * Default probe sources: from the documentation ranges (RFC 5737 TEST-NET-1, RFC 3849), which no real client
 * uses. The backends send their answers to them along their route to the clients (their default route), as
 * they would to any client; the l4nat host routes these two addresses into its TUN.
 */
export const DEFAULT_PROBE_SOURCE: Readonly<{ ipv4: string; ipv6: string }> = { ipv4: '192.0.2.254', ipv6: '2001:db8:ffff::fe' };

export interface FlagSpec {
  repeat?: boolean;
  value: boolean; // takes a value
}

const FLAGS: Record<string, FlagSpec> = {
  vip: { repeat: true, value: true },
  port: { repeat: true, value: true },
  backend: { repeat: true, value: true },
  hash: { value: true },
  queues: { value: true },
  tun: { value: true },
  'flow-capacity': { value: true },
  table: { value: true },
  'rule-pref': { value: true },
  mtu: { value: true },
  'tcp-syn-timeout': { value: true },
  'tcp-timeout': { value: true },
  'tcp-fin-timeout': { value: true },
  'tcp-close-timeout': { value: true },
  'udp-timeout': { value: true },
  'no-icmp-echo': { value: false },
  'debug-no-icmp-translate': { value: false },
  'hash-key': { value: true },
  'hash-key-file': { value: true },
  'stats-interval': { value: true },
  'worker-nice': { value: true },
  'maglev-size': { value: true },
  'log-level': { value: true },
  'admin-port': { value: true },
  'admin-token-file': { value: true },
  'admin-insecure-no-auth': { value: false },
  'shutdown-grace': { value: true },
  'proxy-neighbor': { repeat: true, value: true },
  config: { value: true },
};

/** `l4nat up --config FILE`: the file says everything; only the log level may be given beside it. */
export const CONFIG_FLAGS: Record<string, FlagSpec> = {
  config: { value: true },
  'log-level': { value: true },
};

export function parseConfigArgs(argv: readonly string[], command: string): { configFile: string; logLevel: string | undefined } {
  let f: Map<string, string[]>;
  try {
    f = parseFlags(argv, CONFIG_FLAGS);
  } catch (e) {
    if (e instanceof UsageError && /^unknown flag/.test(e.message)) {
      throw new UsageError(`${e.message}: with --config, l4nat ${command} takes only --log-level (the file says the rest)`);
    }
    throw e;
  }
  const file = f.get('config')?.[0];
  if (!file) throw new UsageError(`l4nat ${command} needs --config FILE`);
  const logLevel = f.get('log-level')?.[0];
  if (logLevel !== undefined) checkLogLevel(logLevel);
  return { configFile: file, logLevel };
}

function checkLogLevel(logLevel: string): void {
  if (!['trace', 'debug', 'info', 'warn', 'error', 'fatal'].includes(logLevel)) {
    throw new UsageError(`--log-level expects trace, debug, info, warn, error or fatal, got "${logLevel}"`);
  }
}

/** Splits argv into flag values, accepting `--flag value` and `--flag=value`. */
export function parseFlags(argv: readonly string[], specs: Record<string, FlagSpec> = FLAGS): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (!arg.startsWith('--')) throw new UsageError(`unexpected argument "${arg}": expected --flag`);
    const eq = arg.indexOf('=');
    const name = arg.slice(2, eq < 0 ? undefined : eq);
    const spec = specs[name];
    if (!spec) throw new UsageError(`unknown flag --${name}`);
    let value = '';
    if (spec.value) {
      if (eq >= 0) value = arg.slice(eq + 1);
      else if (i + 1 < argv.length && !argv[i + 1].startsWith('--')) value = argv[++i];
      else throw new UsageError(`--${name} needs a value`);
    } else if (eq >= 0) {
      throw new UsageError(`--${name} takes no value`);
    }
    const list = out.get(name) ?? [];
    if (list.length && !spec.repeat) throw new UsageError(`--${name} given more than once`);
    list.push(value);
    out.set(name, list);
  }
  return out;
}

export function parseInteger(flag: string, text: string, min: number, max: number): number {
  if (!(min < 0 ? /^-?\d+$/ : /^\d+$/).test(text)) throw new UsageError(`--${flag} expects a whole number from ${min} to ${max}, got "${text}"`);
  const n = Number(text);
  if (n < min || n > max) throw new UsageError(`--${flag} expects a whole number from ${min} to ${max}, got ${n}`);
  return n;
}

function familyOf(addr: string): Family | undefined {
  return isIPv4(addr) ? 4 : isIPv6(addr) && !addr.includes('%') ? 6 : undefined;
}

export function parseVip(text: string): { addr: string; family: Family } {
  const family = familyOf(text);
  if (!family) throw new UsageError(`--vip expects an IPv4 or IPv6 address (no brackets, no prefix), got "${text}"`);
  return { addr: canonicalIp(text, family), family };
}

export function parsePort(text: string): { port: number; proto: Proto } {
  const m = /^(\d+)(?:\/(tcp|udp))?$/.exec(text);
  if (!m) throw new UsageError(`--port expects PORT[/tcp|udp] (e.g. 80 or 53/udp), got "${text}"`);
  return { port: parseInteger('port', m[1], 1, 65535), proto: (m[2] as Proto | undefined) ?? 'tcp' };
}

/** ADDR[:PORT][@WEIGHT], IPv6 in brackets when a port follows: [2001:db8::1]:8080@2 */
export function parseBackend(text: string): { addr: string; family: Family; port: number | undefined; weight: number } {
  const bad = (why: string): never => {
    throw new UsageError(`--backend expects ADDR[:PORT][@WEIGHT] (IPv6 as [ADDR]:PORT), ${why}: "${text}"`);
  };
  let rest = text;
  let weight = 1;
  const at = rest.lastIndexOf('@');
  if (at >= 0) {
    const w = rest.slice(at + 1);
    if (!/^\d+$/.test(w) || Number(w) > 65535) bad('weight must be a whole number from 0 to 65535');
    weight = Number(w);
    rest = rest.slice(0, at);
  }
  let addr: string;
  let portText: string | undefined;
  if (rest.startsWith('[')) {
    const close = rest.indexOf(']');
    if (close < 0) bad('missing "]"');
    addr = rest.slice(1, close);
    const after = rest.slice(close + 1);
    if (after !== '') {
      if (!after.startsWith(':')) bad('expected ":PORT" after "]"');
      portText = after.slice(1);
    }
  } else if (familyOf(rest) === 6) {
    addr = rest; // bare IPv6 without a port
  } else {
    const colon = rest.lastIndexOf(':');
    addr = colon >= 0 ? rest.slice(0, colon) : rest;
    portText = colon >= 0 ? rest.slice(colon + 1) : undefined;
  }
  const family = familyOf(addr);
  if (!family) bad('not an IP address');
  let port: number | undefined;
  if (portText !== undefined) {
    if (!/^\d+$/.test(portText) || Number(portText) < 1 || Number(portText) > 65535) bad('port must be 1-65535');
    port = Number(portText);
  }
  return { addr: canonicalIp(addr, family as Family), family: family as Family, port, weight };
}

/** The warning for a hash key given on the command line (every local user can read it in /proc), or undefined. */
export function hashKeyFlagWarning(argv: readonly string[]): string | undefined {
  if (!argv.some((a) => a === '--hash-key' || a.startsWith('--hash-key='))) return undefined;
  return '--hash-key puts the key on the command line, which every local user can read in /proc/PID/cmdline: use a key file (--hash-key-file, mode 0600)';
}

/** Maglev's table size must be prime (src/dataplane/maglev.ts); checked here so a bad one never reaches the first publish. */
function primeSize(n: number): number {
  if (!isPrime(n)) throw new UsageError(`--maglev-size expects a prime number, got ${n} (the next prime is ${nextPrime(n)})`);
  return n;
}

function parseHashKey(text: string): Buffer {
  if (!/^[0-9a-fA-F]{32}$/.test(text)) throw new UsageError(`--hash-key expects 32 hex digits (16 bytes), got "${text}"`);
  return Buffer.from(text, 'hex');
}

export function parseUpArgs(argv: readonly string[]): UpOptions {
  const f = parseFlags(argv);
  if (f.has('config')) throw new UsageError('--config FILE cannot be combined with --vip/--port/--backend and the other flags (only --log-level)');
  const one = (name: string): string | undefined => f.get(name)?.[0];
  const vips = (f.get('vip') ?? []).map(parseVip);
  if (!vips.length) throw new UsageError('--vip is required: the address clients connect to (repeat it for IPv4 and IPv6)');
  const ports = (f.get('port') ?? []).map(parsePort);
  if (!ports.length) throw new UsageError('--port is required: PORT[/tcp|udp], repeatable');
  const backends = (f.get('backend') ?? []).map(parseBackend);
  if (!backends.length) throw new UsageError('--backend is required: ADDR[:PORT][@WEIGHT], repeatable');
  const hashText = one('hash') ?? '5tuple';
  if (hashText !== '5tuple' && hashText !== 'src') throw new UsageError(`--hash expects 5tuple or src, got "${hashText}"`);
  const hash = hashText as HashMode;

  const services: ServiceConfig[] = [];
  for (const v of vips) {
    const mine = backends.filter((b) => b.family === v.family);
    if (!mine.length) throw new UsageError(`--vip ${v.addr} is IPv${v.family} but no --backend is IPv${v.family}`);
    for (const p of ports) {
      const bs: BackendConfig[] = mine.map((b) => ({ addr: b.addr, family: b.family, port: b.port ?? p.port, weight: b.weight }));
      services.push({ name: 'default', vip: v.addr, family: v.family, port: p.port, proto: p.proto, hash, backends: bs, health: null, passive: null, onAllDown: 'drop', onDown: 'keep' });
    }
  }
  for (const b of backends) {
    if (!vips.some((v) => v.family === b.family)) throw new UsageError(`--backend ${b.addr} is IPv${b.family} but no --vip is IPv${b.family}`);
  }
  const dupBackends = new Set<string>();
  for (const b of backends) {
    const k = `${b.addr}|${b.port ?? ''}`;
    if (dupBackends.has(k)) throw new UsageError(`--backend ${b.addr}${b.port ? `:${b.port}` : ''} is given twice`);
    dupBackends.add(k);
  }
  try {
    checkServices(services, { probeSource: DEFAULT_PROBE_SOURCE });
  } catch (e) {
    throw new UsageError(`--vip/--port/--backend: ${(e as Error).message}`);
  }
  const int = (name: string, dflt: number, min: number, max: number): number => {
    const t = one(name);
    return t === undefined ? dflt : parseInteger(name, t, min, max);
  };
  const mtuText = one('mtu');
  const timeouts: Timeouts = {
    tcpSyn: int('tcp-syn-timeout', DEFAULT_TIMEOUTS.tcpSyn, 1, 86400),
    tcpEstablished: int('tcp-timeout', DEFAULT_TIMEOUTS.tcpEstablished, 1, 7 * 86400),
    tcpFin: int('tcp-fin-timeout', DEFAULT_TIMEOUTS.tcpFin, 1, 86400),
    tcpClose: int('tcp-close-timeout', DEFAULT_TIMEOUTS.tcpClose, 1, 86400),
    udp: int('udp-timeout', DEFAULT_TIMEOUTS.udp, 1, 86400),
  };
  const tun = one('tun') ?? UP_DEFAULTS.tun;
  if (!/^[A-Za-z0-9_.-]{1,15}$/.test(tun)) throw new UsageError(`--tun expects an interface name of 1-15 letters, digits, "_", "." or "-", got "${tun}"`);
  const hk = one('hash-key');
  const logLevel = one('log-level') ?? 'info';
  checkLogLevel(logLevel);
  const adminTokenFile = one('admin-token-file');
  const insecureNoAuth = f.has('admin-insecure-no-auth');
  if (insecureNoAuth && adminTokenFile !== undefined) throw new UsageError('--admin-insecure-no-auth contradicts --admin-token-file: give one of them');
  return {
    services,
    queues: int('queues', Math.max(1, cpus().length), 1, 256),
    tun,
    flowCapacity: int('flow-capacity', UP_DEFAULTS.flowCapacity, 1024, 1 << 28),
    table: int('table', UP_DEFAULTS.table, 1, 0xfffffffe),
    rulePref: int('rule-pref', UP_DEFAULTS.rulePref, 1, 32765),
    mtu: mtuText === undefined ? undefined : parseInteger('mtu', mtuText, 1280, 65535),
    timeouts,
    icmpEcho: !f.has('no-icmp-echo'),
    icmpTranslate: !f.has('debug-no-icmp-translate'),
    probeSource: { ...DEFAULT_PROBE_SOURCE },
    hashKey: hk === undefined ? undefined : parseHashKey(hk),
    hashKeyFile: one('hash-key-file') ?? UP_DEFAULTS.hashKeyFile,
    statsInterval: int('stats-interval', UP_DEFAULTS.statsInterval, 0, 86400),
    workerNice: int('worker-nice', DEFAULT_WORKER_NICE, -20, 19),
    maglevSize: primeSize(int('maglev-size', UP_DEFAULTS.maglevSize, 3, 16777213)),
    logLevel,
    admin: withDefaultAuth(
      {
        listen: '127.0.0.1',
        port: int('admin-port', UP_DEFAULTS.adminPort, 0, 65535),
        ...(adminTokenFile !== undefined ? { tokenFile: adminTokenFile } : {}),
        ...(insecureNoAuth ? { insecureNoAuth } : {}),
      },
      UP_DEFAULTS.adminTokenFile,
    ),
    shutdownGrace: int('shutdown-grace', UP_DEFAULTS.shutdownGrace, 0, 86400),
    proxyNeighbors: (f.get('proxy-neighbor') ?? []).map((n) => {
      if (!/^[A-Za-z0-9_.@-]{1,15}$/.test(n)) throw new UsageError(`--proxy-neighbor expects an interface name, got "${n}"`);
      return n;
    }),
  };
}
