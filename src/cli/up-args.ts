// Parsing and validating `l4nat up` flags into a service list and options (UpOptions, whose defaults and error
// class live in src/config/options.ts, shared with the config file). Pure: nothing is touched here, so a bad flag
// changes nothing. Every error names the flag and what it expects.
import { cpus } from 'os';
import type { Family } from '../host/addr';
import { DEFAULT_WORKER_NICE } from '../dataplane/worker-priority';
import { isPrime, nextPrime } from '../dataplane/maglev';
import { checkServices, DEFAULT_TIMEOUTS, withDefaultAuth, type BackendConfig, type HashMode, type Proto, type ServiceConfig, type Timeouts } from '../config/model';
import { DEFAULT_PROBE_SOURCE, OptionError, Subject, UP_DEFAULTS, type UpOptions } from '../config/options';
import { parseAddress, parseBackend as parseBackendText, type BackendText } from '../config/address-syntax';
import { balanceFactorProblem, DEFAULT_BALANCE_FACTOR, maxFlowsProblem } from '../dataplane/tables';

export interface FlagSpec {
  repeat?: boolean;
  value: boolean; // takes a value
}

const FLAGS: Record<string, FlagSpec> = {
  vip: { repeat: true, value: true },
  port: { repeat: true, value: true },
  backend: { repeat: true, value: true },
  hash: { value: true },
  balance: { value: true },
  'balance-factor': { value: true },
  'max-flows': { value: true },
  'when-full': { value: true },
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
  'flow-file': { value: true },
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
  const f = parseFlags(argv, CONFIG_FLAGS, `: with --config, l4nat ${command} takes only --log-level (the file says the rest)`);
  const file = f.get('config')?.[0];
  if (!file) throw new OptionError(`l4nat ${command} needs --config FILE`);
  const logLevel = f.get('log-level')?.[0];
  if (logLevel !== undefined) checkLogLevel(logLevel);
  return { configFile: file, logLevel };
}

function checkLogLevel(logLevel: string): void {
  if (!['trace', 'debug', 'info', 'warn', 'error', 'fatal'].includes(logLevel)) {
    throw Subject.flag('log-level').expected('trace, debug, info, warn, error or fatal', `"${logLevel}"`);
  }
}

/** Splits argv into flag values, accepting `--flag value` and `--flag=value`; `unknownHint` follows "unknown flag --x". */
export function parseFlags(argv: readonly string[], specs: Record<string, FlagSpec> = FLAGS, unknownHint = ''): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (!arg.startsWith('--')) throw new OptionError(`unexpected argument "${arg}": expected --flag`);
    const eq = arg.indexOf('=');
    const name = arg.slice(2, eq < 0 ? undefined : eq);
    const spec = specs[name];
    if (!spec) throw new OptionError(`unknown flag --${name}${unknownHint}`);
    let value = '';
    if (spec.value) {
      if (eq >= 0) value = arg.slice(eq + 1);
      else if (i + 1 < argv.length && !argv[i + 1].startsWith('--')) value = argv[++i];
      else throw new OptionError(`--${name} needs a value`);
    } else if (eq >= 0) {
      throw new OptionError(`--${name} takes no value`);
    }
    const list = out.get(name) ?? [];
    if (list.length && !spec.repeat) throw new OptionError(`--${name} given more than once`);
    list.push(value);
    out.set(name, list);
  }
  return out;
}

export function parseInteger(flag: string, text: string, min: number, max: number): number {
  const range = `a whole number from ${min} to ${max}`;
  if (!(min < 0 ? /^-?\d+$/ : /^\d+$/).test(text)) throw Subject.flag(flag).expected(range, `"${text}"`);
  const n = Number(text);
  if (n < min || n > max) throw Subject.flag(flag).expected(range, String(n));
  return n;
}

export function parseVip(text: string): { addr: string; family: Family } {
  return parseAddress(text, Subject.flag('vip'));
}

export function parsePort(text: string): { port: number; proto: Proto } {
  const m = /^(\d+)(?:\/(tcp|udp))?$/.exec(text);
  if (!m) throw Subject.flag('port').expected('PORT[/tcp|udp] (e.g. 80 or 53/udp)', `"${text}"`);
  return { port: parseInteger('port', m[1], 1, 65535), proto: (m[2] as Proto | undefined) ?? 'tcp' };
}

/** --backend ADDR[:PORT][@WEIGHT] (src/config/address-syntax.ts). */
export function parseBackend(text: string): BackendText {
  return parseBackendText(text, Subject.flag('backend'));
}

/** The warning for a hash key given on the command line (every local user can read it in /proc), or undefined. */
export function hashKeyFlagWarning(argv: readonly string[]): string | undefined {
  if (!argv.some((a) => a === '--hash-key' || a.startsWith('--hash-key='))) return undefined;
  return '--hash-key puts the key on the command line, which every local user can read in /proc/PID/cmdline: use a key file (--hash-key-file, mode 0600)';
}

/** Maglev's table size must be prime (src/dataplane/maglev.ts); checked here so a bad one never reaches the first publish. */
function primeSize(n: number): number {
  if (!isPrime(n)) throw Subject.flag('maglev-size').expected('a prime number', `${n} (the next prime is ${nextPrime(n)})`);
  return n;
}

function parseHashKey(text: string): Buffer {
  if (!/^[0-9a-fA-F]{32}$/.test(text)) throw Subject.flag('hash-key').expected('32 hex digits (16 bytes)', `"${text}"`);
  return Buffer.from(text, 'hex');
}

/** --balance, --balance-factor, --when-full (the service's) and --max-flows (every backend's): issue 17. */
function admissionFlags(one: (name: string) => string | undefined): { service: Pick<ServiceConfig, 'balance' | 'balanceFactor' | 'whenFull'>; backend: Pick<BackendConfig, 'maxFlows'> } {
  const service: Pick<ServiceConfig, 'balance' | 'balanceFactor' | 'whenFull'> = {};
  const balance = one('balance');
  if (balance !== undefined && balance !== 'maglev' && balance !== 'bounded') throw Subject.flag('balance').expected('maglev or bounded', `"${balance}"`);
  const factorText = one('balance-factor');
  if (factorText !== undefined && balance !== 'bounded') throw new OptionError('--balance-factor applies to --balance bounded only: add --balance bounded, or remove --balance-factor');
  if (balance === 'bounded') {
    const factor = factorText === undefined ? DEFAULT_BALANCE_FACTOR : /^\d+(\.\d+)?$/.test(factorText) ? Number(factorText) : NaN;
    const problem = balanceFactorProblem(factor);
    if (problem) throw new OptionError(`--balance-factor: ${factorText === undefined ? problem : problem.replace(/^got [^,]*/, `got "${factorText}"`)}`);
    Object.assign(service, { balance, balanceFactor: factor });
  }
  const whenFull = one('when-full');
  if (whenFull !== undefined && whenFull !== 'drop' && whenFull !== 'reject') throw Subject.flag('when-full').expected('drop or reject', `"${whenFull}"`);
  if (whenFull !== undefined) service.whenFull = whenFull;
  const mf = one('max-flows');
  if (mf === undefined) return { service, backend: {} };
  const maxFlows = /^\d+$/.test(mf) ? Number(mf) : NaN;
  const problem = maxFlowsProblem(maxFlows);
  if (problem) throw new OptionError(`--max-flows: ${problem.replace(/^got [^,]*/, `got "${mf}"`)}`);
  return { service, backend: { maxFlows } };
}

export function parseUpArgs(argv: readonly string[]): UpOptions {
  const f = parseFlags(argv);
  if (f.has('config')) throw new OptionError('--config FILE cannot be combined with --vip/--port/--backend and the other flags (only --log-level)');
  const one = (name: string): string | undefined => f.get(name)?.[0];
  const vips = (f.get('vip') ?? []).map(parseVip);
  if (!vips.length) throw new OptionError('--vip is required: the address clients connect to (repeat it for IPv4 and IPv6)');
  const ports = (f.get('port') ?? []).map(parsePort);
  if (!ports.length) throw new OptionError('--port is required: PORT[/tcp|udp], repeatable');
  const backends = (f.get('backend') ?? []).map(parseBackend);
  if (!backends.length) throw new OptionError('--backend is required: ADDR[:PORT][@WEIGHT], repeatable');
  const hashText = one('hash') ?? '5tuple';
  if (hashText !== '5tuple' && hashText !== 'src') throw Subject.flag('hash').expected('5tuple or src', `"${hashText}"`);
  const hash = hashText as HashMode;
  const admission = admissionFlags(one);

  const services: ServiceConfig[] = [];
  for (const v of vips) {
    const mine = backends.filter((b) => b.family === v.family);
    if (!mine.length) throw new OptionError(`--vip ${v.addr} is IPv${v.family} but no --backend is IPv${v.family}`);
    for (const p of ports) {
      const bs: BackendConfig[] = mine.map((b) => ({ addr: b.addr, family: b.family, port: b.port ?? p.port, weight: b.weight, ...admission.backend }));
      services.push({ name: 'default', vip: v.addr, family: v.family, port: p.port, proto: p.proto, hash, backends: bs, health: null, passive: null, onAllDown: 'drop', onDown: 'keep', ...admission.service });
    }
  }
  for (const b of backends) {
    if (!vips.some((v) => v.family === b.family)) throw new OptionError(`--backend ${b.addr} is IPv${b.family} but no --vip is IPv${b.family}`);
  }
  const dupBackends = new Set<string>();
  for (const b of backends) {
    const k = `${b.addr}|${b.port ?? ''}`;
    if (dupBackends.has(k)) throw new OptionError(`--backend ${b.addr}${b.port ? `:${b.port}` : ''} is given twice`);
    dupBackends.add(k);
  }
  try {
    checkServices(services, { probeSource: DEFAULT_PROBE_SOURCE });
  } catch (e) {
    throw new OptionError(`--vip/--port/--backend: ${(e as Error).message}`);
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
  if (!/^[A-Za-z0-9_.-]{1,15}$/.test(tun)) throw Subject.flag('tun').expected('an interface name of 1-15 letters, digits, "_", "." or "-"', `"${tun}"`);
  const hk = one('hash-key');
  const logLevel = one('log-level') ?? 'info';
  checkLogLevel(logLevel);
  const adminTokenFile = one('admin-token-file');
  const insecureNoAuth = f.has('admin-insecure-no-auth');
  if (insecureNoAuth && adminTokenFile !== undefined) throw new OptionError('--admin-insecure-no-auth contradicts --admin-token-file: give one of them');
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
    ...(one('flow-file') !== undefined ? { flowFile: one('flow-file') } : {}),
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
      if (!/^[A-Za-z0-9_.@-]{1,15}$/.test(n)) throw Subject.flag('proxy-neighbor').expected('an interface name', `"${n}"`);
      return n;
    }),
  };
}

/** Splits positionals from --flags (flags per spec, in any position). */
export function splitArgs(argv: readonly string[], spec: Record<string, FlagSpec>): { pos: string[]; flags: Map<string, string[]> } {
  const pos: string[] = [];
  const flagArgs: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (!a.startsWith('--')) {
      pos.push(a);
      continue;
    }
    flagArgs.push(a);
    const name = a.slice(2).split('=')[0];
    if (spec[name]?.value && !a.includes('=') && i + 1 < argv.length) flagArgs.push(argv[++i]);
  }
  return { pos, flags: parseFlags(flagArgs, spec) };
}
