// Host set-up, layer 1: which routes and rules l4nat wants (docs/design.md "Where packets go", items 1, 2, 5, 6),
// and the difference to what is installed. Pure: no netlink, no root, unit-tested in test/host.test.ts.
//
//   table T (per family in use)   default dev TUN           metric TUN_METRIC[family]
//                                 blackhole default         metric BLACKHOLE_METRIC (behind it: drop, never leak)
//   rules at preference P         from PREFIX ipproto tcp|udp sport A-B lookup T   (one per contiguous port run
//                                 and prefix: backends with the same protocols and ports share rules, their
//                                 addresses merged into the fewest prefixes that hold exactly them)
//                                 from PREFIX ipproto icmp|ipv6-icmp lookup T      (all backend addresses merged)
//   The kernel walks rules one by one for every packet it routes (docs/design.md item 2), so the count should not
//   grow with the number of backends where their addresses are contiguous.
//   vipTable (main by default)    VIP/32|128 dev TUN
//
// Every object carries l4nat's rtnetlink protocol value: that is how l4nat finds exactly its own objects.
import { Family, anyAddr, canonicalIp, exactPrefixes, hostLen, type Prefix } from './addr';

/** rtnetlink protocol value on every route and rule l4nat installs (include/uapi/linux/rtnetlink.h RTPROT_*:
 * values >= RTPROT_STATIC are not interpreted by the kernel; 0xf4 is not assigned to a known daemon). */
export const RTPROT_L4NAT = 0xf4;
/** RT_TABLE_MAIN */
export const RT_TABLE_MAIN = 254;
/** Metric of the TUN default route in table T. IPv6 turns metric 0 into IP6_RT_PRIO_USER (1024), so we ask for
 * what the kernel will report and the diff stays exact. */
export const TUN_METRIC: Readonly<Record<Family, number>> = { 4: 0, 6: 1024 };
/** Metric of the blackhole default route behind the TUN route in table T. */
export const BLACKHOLE_METRIC = 0xffffffff;
/** Metric of VIP routes (IPv6 reports 1024 for 0, see TUN_METRIC). */
export const VIP_METRIC: Readonly<Record<Family, number>> = { 4: 0, 6: 1024 };
/** IPPROTO_* values used in rule selectors. */
export const IPPROTO = { icmp: 1, tcp: 6, udp: 17, icmpv6: 58 } as const;

export interface Vip {
  family: Family;
  addr: string;
}

export interface Backend {
  family: Family;
  addr: string;
  proto: 'tcp' | 'udp';
  /** The port the backend listens on: its replies come from it. */
  port: number;
}

/** What the services need from the host: which VIPs reach the TUN and which backends' replies come back to it. */
export interface DesiredHostState {
  vips: readonly Vip[];
  backends: readonly Backend[];
}

/** Where l4nat puts its objects. */
export interface PlanParams {
  tunIfindex: number;
  /** Table T: TUN default route plus blackhole, looked up by the backend rules. */
  table: number;
  /** Preference of the backend rules; must come before the rule that looks up main (32766). */
  rulePref: number;
  /** rtnetlink protocol value; default RTPROT_L4NAT. */
  protocol?: number;
  /** Table of the VIP routes; default main (254). */
  vipTable?: number;
}

export type PlanInput = DesiredHostState & PlanParams;

/** 'other' only on installed objects (unreachable, local, ...): l4nat never creates those. */
export type RouteType = 'unicast' | 'blackhole' | 'other';

export interface RouteObject {
  kind: 'route';
  family: Family;
  table: number;
  /** Canonical address text. */
  dst: string;
  dstLen: number;
  type: RouteType;
  /** Output interface; 0 for blackhole routes. */
  oif: number;
  metric: number;
  protocol: number;
  /** Only on installed objects: attributes l4nat never sets (a gateway, a type, ...); makes them stale. */
  extra?: string;
}

export interface PortRange {
  start: number;
  end: number;
}

export interface RuleObject {
  kind: 'rule';
  family: Family;
  pref: number;
  table: number;
  src: string;
  srcLen: number;
  ipProto: number;
  sport?: PortRange;
  protocol: number;
  /** Only on installed objects: selectors or actions l4nat never sets (makes them stale). */
  extra?: string;
}

export type HostObject = RouteObject | RuleObject;

/** Role of an object for ordering: see ADD_ORDER and TEARDOWN_ORDER. */
export type Role = 'blackhole' | 'tun' | 'rule' | 'vip';

/** Adds: table T first (blackhole, then the TUN route in front of it), then rules, then VIP routes last: a rule
 * never points at an empty table T (the lookup would fall through to main and leak), and no VIP is routed into
 * the TUN before replies are steered back to it. */
export const ADD_ORDER: readonly Role[] = ['blackhole', 'tun', 'rule', 'vip'];
/** Teardown: VIP routes first (no new flows), then the TUN route (replies now hit the blackhole), then rules,
 * then the blackhole routes last. At no step does a backend reply leave untranslated while a VIP is routed. */
export const TEARDOWN_ORDER: readonly Role[] = ['vip', 'tun', 'rule', 'blackhole'];

export function roleOf(o: HostObject): Role {
  if (o.kind === 'rule') return 'rule';
  if (o.type === 'blackhole') return 'blackhole';
  return o.dstLen === 0 ? 'tun' : 'vip';
}

function checkInt(name: string, v: unknown, min: number, max: number): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
    throw new TypeError(`${name} must be an integer in ${min}..${max}, got ${JSON.stringify(v)}`);
  }
  return v;
}

function checkFamily(name: string, v: unknown): Family {
  if (v !== 4 && v !== 6) throw new TypeError(`${name}.family must be 4 or 6, got ${JSON.stringify(v)}`);
  return v;
}

/** Validates and fills in defaults; throws TypeError naming the offending field. */
export function checkParams(p: PlanParams): Required<PlanParams> {
  const table = checkInt('table', p.table, 1, 0xffffffff);
  if (table === 253 || table === 254 || table === 255) {
    throw new TypeError(`table must be a table of l4nat's own, not ${table} (default/main/local)`);
  }
  const vipTable = checkInt('vipTable', p.vipTable ?? RT_TABLE_MAIN, 1, 0xffffffff);
  if (vipTable === 255) throw new TypeError('vipTable must not be the local table (255)');
  if (vipTable === table) throw new TypeError(`vipTable must differ from table (${table}): table T is only for backend replies`);
  return {
    tunIfindex: checkInt('tunIfindex', p.tunIfindex, 1, 0x7fffffff),
    table,
    // 0 is the local-table rule; 32766 looks up main: ours must come before it.
    rulePref: checkInt('rulePref', p.rulePref, 1, 32765),
    // Below RTPROT_STATIC (4) the kernel interprets the value; 4 is what `ip` uses by default.
    protocol: checkInt('protocol', p.protocol ?? RTPROT_L4NAT, 5, 255),
    vipTable,
  };
}

/** Contiguous runs of ports: [80, 81, 82, 443] -> 80-82, 443-443. Input need not be sorted or unique. */
export function portRuns(ports: readonly number[]): PortRange[] {
  const sorted = [...new Set(ports)].sort((a, b) => a - b);
  const out: PortRange[] = [];
  for (const p of sorted) {
    const last = out[out.length - 1];
    if (last && p === last.end + 1) last.end = p;
    else out.push({ start: p, end: p });
  }
  return out;
}

/** The routes and rules l4nat wants, in ADD_ORDER. */
export function planHost(input: PlanInput): HostObject[] {
  const p = checkParams(input);
  if (!input || !Array.isArray(input.vips)) throw new TypeError('vips must be an array');
  if (!Array.isArray(input.backends)) throw new TypeError('backends must be an array');
  const families = new Set<Family>();
  const vips = new Map<string, Vip>();
  input.vips.forEach((v, i) => {
    const family = checkFamily(`vips[${i}]`, v?.family);
    const addr = canonicalIp(v.addr, family);
    families.add(family);
    vips.set(`${family}|${addr}`, { family, addr });
  });
  // (family, addr, proto) -> ports
  const ports = new Map<string, { family: Family; addr: string; proto: 'tcp' | 'udp'; ports: number[] }>();
  const backendAddrs = new Map<string, { family: Family; addr: string }>();
  input.backends.forEach((b, i) => {
    const family = checkFamily(`backends[${i}]`, b?.family);
    const addr = canonicalIp(b.addr, family);
    if (b.proto !== 'tcp' && b.proto !== 'udp') {
      throw new TypeError(`backends[${i}].proto must be "tcp" or "udp", got ${JSON.stringify(b.proto)}`);
    }
    const port = checkInt(`backends[${i}].port`, b.port, 1, 65535);
    families.add(family);
    backendAddrs.set(`${family}|${addr}`, { family, addr });
    const key = `${family}|${addr}|${b.proto}`;
    const entry = ports.get(key) ?? { family, addr, proto: b.proto, ports: [] as number[] };
    entry.ports.push(port);
    ports.set(key, entry);
  });

  const out: HostObject[] = [];
  const base = { protocol: p.protocol };
  for (const family of [4, 6] as const) {
    if (!families.has(family)) continue;
    out.push({ kind: 'route', family, table: p.table, dst: anyAddr(family), dstLen: 0, type: 'blackhole', oif: 0, metric: BLACKHOLE_METRIC, ...base });
    out.push({ kind: 'route', family, table: p.table, dst: anyAddr(family), dstLen: 0, type: 'unicast', oif: p.tunIfindex, metric: TUN_METRIC[family], ...base });
  }
  const rule = (family: Family, prefix: Prefix, ipProto: number, sport?: PortRange): RuleObject => ({
    kind: 'rule', family, pref: p.rulePref, table: p.table, src: prefix.addr, srcLen: prefix.len, ipProto,
    ...(sport ? { sport } : {}), ...base,
  });
  // Backends whose replies need the same rules (family, protocols, port runs) share them.
  const groups = new Map<string, { family: Family; runs: { ipProto: number; run: PortRange }[]; addrs: string[] }>();
  for (const b of backendAddrs.values()) {
    const runs = (['tcp', 'udp'] as const).flatMap((proto) =>
      portRuns(ports.get(`${b.family}|${b.addr}|${proto}`)?.ports ?? []).map((run) => ({ ipProto: IPPROTO[proto], run })));
    const key = `${b.family}|${runs.map((r) => `${r.ipProto}:${r.run.start}-${r.run.end}`).join(',')}`;
    const g = groups.get(key) ?? { family: b.family, runs, addrs: [] };
    g.addrs.push(b.addr);
    groups.set(key, g);
  }
  const ruled = [...groups.values()].map((g) => ({ ...g, prefixes: exactPrefixes(g.family, g.addrs) }));
  ruled.sort(byKey((g) => `${g.family}|${g.prefixes[0]!.addr}`));
  for (const g of ruled) {
    for (const prefix of g.prefixes) for (const r of g.runs) out.push(rule(g.family, prefix, r.ipProto, r.run));
  }
  for (const family of [4, 6] as const) {
    // ICMP errors from a backend about a translated flow (e.g. port unreachable, packet too big).
    const addrs = [...backendAddrs.values()].filter((b) => b.family === family).map((b) => b.addr);
    for (const prefix of exactPrefixes(family, addrs)) out.push(rule(family, prefix, family === 4 ? IPPROTO.icmp : IPPROTO.icmpv6));
  }
  for (const v of [...vips.values()].sort(byKey((x) => `${x.family}|${x.addr}`))) {
    out.push({ kind: 'route', family: v.family, table: p.vipTable, dst: v.addr, dstLen: hostLen(v.family), type: 'unicast', oif: p.tunIfindex, metric: VIP_METRIC[v.family], ...base });
  }
  return sortByRole(out, ADD_ORDER);
}

function byKey<T>(key: (x: T) => string): (a: T, b: T) => number {
  return (a, b) => (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0);
}

/** Identity of an object: two objects with the same key are the same route or rule. */
export function objectKey(o: HostObject): string {
  if (o.kind === 'route') {
    return `route|${o.family}|t${o.table}|${o.dst}/${o.dstLen}|${o.type}|oif${o.type === 'blackhole' ? 0 : o.oif}|m${o.metric}|p${o.protocol}|x${o.extra ?? ''}`;
  }
  const sport = o.sport ? `${o.sport.start}-${o.sport.end}` : '';
  return `rule|${o.family}|pref${o.pref}|t${o.table}|${o.src}/${o.srcLen}|ip${o.ipProto}|sp${sport}|p${o.protocol}|x${o.extra ?? ''}`;
}

/** The kernel's identity of a route (fib alias / fib6 node: table, prefix, metric): adding a second route with
 * the same slot and NLM_F_EXCL fails with EEXIST even if the device differs. */
export function routeSlot(o: RouteObject): string {
  return `${o.family}|t${o.table}|${o.dst}/${o.dstLen}|m${o.metric}`;
}

/** Stable sort by role in the given order, then by key. */
export function sortByRole<T extends HostObject>(objs: readonly T[], order: readonly Role[]): T[] {
  return objs
    .map((o, i) => ({ o, i, r: order.indexOf(roleOf(o)) }))
    .sort((a, b) => a.r - b.r || a.i - b.i)
    .map((x) => x.o);
}

export interface HostDiff<E extends HostObject> {
  /** Missing objects, in ADD_ORDER. */
  add: HostObject[];
  /** Installed objects that are not wanted (or duplicates), in TEARDOWN_ORDER. */
  remove: E[];
}

/** What to add and remove so that `existing` becomes `desired`. Installed objects that do not carry the
 * desired objects' protocol value are not ours and are ignored. */
export function diff<E extends HostObject>(desired: readonly HostObject[], existing: readonly E[], protocol = desired[0]?.protocol ?? RTPROT_L4NAT): HostDiff<E> {
  const want = new Map<string, HostObject>();
  for (const o of desired) want.set(objectKey(o), o);
  const seen = new Set<string>();
  const remove: E[] = [];
  for (const o of existing) {
    if (o.protocol !== protocol) continue;
    const k = objectKey(o);
    if (want.has(k) && !seen.has(k)) seen.add(k);
    else remove.push(o); // stale, or a duplicate of one we keep
  }
  const add = [...want.entries()].filter(([k]) => !seen.has(k)).map(([, o]) => o);
  return { add: sortByRole(add, ADD_ORDER), remove: sortByRole(remove, TEARDOWN_ORDER) };
}

/** Full teardown: every installed object of ours, in TEARDOWN_ORDER. */
export function teardownOrder<E extends HostObject>(existing: readonly E[], protocol = RTPROT_L4NAT): E[] {
  return sortByRole(existing.filter((o) => o.protocol === protocol), TEARDOWN_ORDER);
}

const IPPROTO_NAMES: Record<number, string> = { 1: 'icmp', 6: 'tcp', 17: 'udp', 58: 'ipv6-icmp' };

function tableName(t: number): string {
  return t === RT_TABLE_MAIN ? 'main' : String(t);
}

/** Human description, close to `ip` syntax, for logs and errors. `ifname` maps an ifindex to a name. */
export function describe(o: HostObject, ifname: (ifindex: number) => string | undefined = () => undefined): string {
  const fam = o.family === 4 ? 'ipv4' : 'ipv6';
  if (o.kind === 'route') {
    const dst = o.dstLen === 0 ? 'default' : `${o.dst}/${o.dstLen}`;
    const how = o.type === 'blackhole' ? `blackhole ${dst}` : `${dst}${o.oif ? ` dev ${ifname(o.oif) ?? `#${o.oif}`}` : ''}`;
    const extra = o.extra ? ` ${o.extra}` : '';
    return `${fam} route ${how}${extra} table ${tableName(o.table)} metric ${o.metric} proto ${o.protocol}`;
  }
  const sport = o.sport ? (o.sport.start === o.sport.end ? ` sport ${o.sport.start}` : ` sport ${o.sport.start}-${o.sport.end}`) : '';
  const extra = o.extra ? ` ${o.extra}` : '';
  return `${fam} rule pref ${o.pref} from ${o.src}/${o.srcLen} ipproto ${IPPROTO_NAMES[o.ipProto] ?? o.ipProto}${sport}${extra} lookup ${tableName(o.table)} proto ${o.protocol}`;
}
