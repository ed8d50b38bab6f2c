// The config file's `services` (and `defaults`) sections as the ServiceConfig list `l4nat up` runs: each entry
// expanded to one service per VIP and port, health and passive checks with their defaults, and every check the
// schema cannot make (addresses, families, duplicates, CIDRs, options that do not apply to a check type), each
// reported at its path. Pure: no file is read here.
import { balanceFactorProblem, DEFAULT_BALANCE_FACTOR, parseCidr } from '../dataplane/tables';
import {
  backendAddressProblem,
  type BackendConfig,
  type Balance,
  type WhenFull,
  type HashMode,
  type HealthCheckSpec,
  type OnAllDown,
  type OnDown,
  type PassiveCheckSpec,
  type Proto,
  type ServiceConfig,
  type Timeouts,
} from './model';
import { familyOf, parseAddress, parseBackend } from './address-syntax';
import { parsing, show, type Add, type PathSeg } from './issues';
import type { Family } from '../host/addr';

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

/** The raw (schema-valid) shapes of the `services` and `defaults` sections. */
export interface RawHealth {
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
export interface RawPassive {
  window?: number;
  max_unanswered?: number;
  max_resets?: number;
  hold?: number;
}
export interface RawBackend {
  address: string;
  port?: number;
  weight?: number;
  max_flows?: number;
  name?: string;
}
/** New-flow admission, in a service or the defaults (issue 17). */
export interface RawAdmission {
  balance?: Balance;
  balance_factor?: number;
  when_full?: WhenFull;
}
export interface RawService extends RawAdmission {
  name: string;
  vips: string[];
  ports: Array<number | string>;
  hash?: HashMode;
  on_all_down?: OnAllDown;
  on_down?: OnDown;
  slow_start?: number | string;
  health_check?: RawHealth;
  passive_check?: RawPassive;
  new_flow_rate?: { rate: number; burst?: number };
  timeouts?: RawTimeouts;
  allow_sources?: string[];
  deny_sources?: string[];
  backends?: Array<string | RawBackend>;
}
export interface RawTimeouts {
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

export interface RawDefaults extends RawAdmission {
  health_check?: RawHealth;
  passive_check?: RawPassive;
  on_all_down?: OnAllDown;
  on_down?: OnDown;
  hash?: HashMode;
  slow_start?: number | string;
}

/** A slow-start window in seconds from the file's number or "30s" (the schema checked its form). */
function slowStartOf(raw: number | string | undefined, path: PathSeg[], add: Add): number | undefined {
  if (raw === undefined) return undefined;
  const s = typeof raw === 'number' ? raw : Number(raw.slice(0, -1));
  if (!Number.isInteger(s) || s < 1 || s > 3600) {
    add(path, `got ${show(raw)}, expected seconds from 1 to 3600, such as 30 or "30s"`);
    return undefined;
  }
  return s;
}

/** A service's admission from its own keys, else the defaults'; a factor given without `bounded` is refused (it
 * would do nothing), and a bad one names the range. */
function admissionOf(rs: RawAdmission, d: RawAdmission, sp: PathSeg[], add: Add): Pick<ServiceConfig, 'balance' | 'balanceFactor' | 'whenFull'> {
  const balance = rs.balance ?? d.balance ?? 'maglev';
  const at = rs.balance_factor !== undefined ? [...sp, 'balance_factor'] : ['defaults', 'balance_factor'];
  const factor = rs.balance_factor ?? d.balance_factor;
  const out: Pick<ServiceConfig, 'balance' | 'balanceFactor' | 'whenFull'> = {};
  if (balance === 'bounded') {
    const problem = balanceFactorProblem(factor ?? DEFAULT_BALANCE_FACTOR);
    if (problem) add(at, problem);
    out.balance = balance;
    out.balanceFactor = factor ?? DEFAULT_BALANCE_FACTOR;
  } else if (rs.balance_factor !== undefined) {
    add(at, 'applies to balance: bounded only; this service balances by maglev (add balance: bounded, or remove balance_factor)');
  }
  const whenFull = rs.when_full ?? d.when_full;
  if (whenFull) out.whenFull = whenFull;
  return out;
}

function healthOf(raw: RawHealth | undefined, path: PathSeg[], add: Add): HealthCheckSpec | null {
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

/** The services of the file, each entry expanded per VIP and port; problems are reported through `add`. */
export function servicesOf(raw: readonly RawService[], d: RawDefaults, add: Add): ServiceConfig[] {
  const defaultHealth = healthOf(d.health_check, ['defaults', 'health_check'], add);
  const services: ServiceConfig[] = [];
  const names = new Set<string>();
  raw.forEach((rs, si) => {
    const sp: PathSeg[] = ['services', si];
    if (names.has(rs.name)) add([...sp, 'name'], `got ${show(rs.name)}, expected a name no other service uses`);
    names.add(rs.name);
    const vips: Array<{ addr: string; family: Family }> = [];
    rs.vips.forEach((v, vi) => {
      const vip = parsing(add, [...sp, 'vips', vi], (s) => parseAddress(v, s));
      if (vip) vips.push(vip);
    });
    const ports: Array<{ port: number; proto: Proto }> = [];
    rs.ports.forEach((p, pi) => {
      const m = /^(\d+)(?:\/(tcp|udp))?$/.exec(String(p));
      const n = m ? Number(m[1]) : NaN;
      if (!m || n < 1 || n > 65535) add([...sp, 'ports', pi], `got ${show(p)}, expected PORT or "PORT/tcp" or "PORT/udp" (1-65535)`);
      else ports.push({ port: n, proto: (m[2] as Proto | undefined) ?? 'tcp' });
    });
    const backends: Array<{ addr: string; family: Family; port: number | undefined; weight: number; name?: string; maxFlows?: number }> = [];
    const seen = new Set<string>();
    (rs.backends ?? []).forEach((rb, bi) => {
      const bp: PathSeg[] = [...sp, 'backends', bi];
      const b: (typeof backends)[number] | undefined =
        typeof rb === 'string'
          ? parsing(add, bp, (s) => parseBackend(rb, s))
          : parsing(add, [...bp, 'address'], (s) => ({ ...parseAddress(rb.address, s), port: rb.port, weight: rb.weight ?? 1, ...(rb.name !== undefined ? { name: rb.name } : {}), ...(rb.max_flows !== undefined ? { maxFlows: rb.max_flows } : {}) }));
      if (!b) return;
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
    const slowStart = rs.slow_start !== undefined ? slowStartOf(rs.slow_start, [...sp, 'slow_start'], add) : slowStartOf(d.slow_start, ['defaults', 'slow_start'], add);
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
    const admission = admissionOf(rs, d, sp, add);
    const rate = rs.new_flow_rate ? { rate: rs.new_flow_rate.rate, burst: rs.new_flow_rate.burst ?? rs.new_flow_rate.rate } : undefined;
    for (const v of vips) {
      for (const p of ports) {
        const bs: BackendConfig[] = backends
          .filter((b) => b.family === v.family)
          .map((b) => ({ addr: b.addr, family: b.family, port: b.port ?? p.port, weight: b.weight, ...(b.name !== undefined ? { name: b.name } : {}), ...(b.maxFlows !== undefined ? { maxFlows: b.maxFlows } : {}) }));
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
          ...(slowStart !== undefined ? { slowStartSeconds: slowStart } : {}),
          ...admission,
          ...(rate ? { newFlowRate: rate } : {}),
          ...(rs.timeouts ? { timeouts: serviceTimeouts(rs.timeouts) } : {}),
          ...(allow.length ? { allowSources: allow.filter((c) => c.family === v.family).map((c) => c.text) } : {}),
          ...(deny.some((c) => c.family === v.family) ? { denySources: deny.filter((c) => c.family === v.family).map((c) => c.text) } : {}),
        });
      }
    }
  });
  return services;
}
