// Host set-up, layer 1b: HostObject (plan.ts) <-> rtnetlink messages (the `netlink` package's rt.Route /
// rt.RouteAttrs, rt.Rule / rt.RuleAttrs: struct rtmsg and struct fib_rule_hdr plus RTA_* / FRA_* attributes,
// include/uapi/linux/rtnetlink.h and fib_rules.h). Pure: formatting needs no socket.
import { rt } from 'netlink';
import { Family, afOf, anyAddr, bufferToIp, familyOfAf, ipToBuffer } from './addr';
import type { HostObject, RouteObject, RuleObject } from './plan';

/** The message an installed object was parsed from; deletes of rules send it back whole (see ruleToDelete). */
export interface RawRoute { data: rt.Route; attrs: rt.RouteAttrs }
export interface RawRule { data: rt.Rule; attrs: rt.RuleAttrs }
export type InstalledObject = (RouteObject & { raw?: RawRoute }) | (RuleObject & { raw?: RawRule });

const RTN_UNICAST = 1;
const RTN_BLACKHOLE = 6;
const RT_SCOPE_UNIVERSE = 0;
const RT_SCOPE_LINK = 253;
const RT_SCOPE_NOWHERE = 255;
const FR_ACT_TO_TBL = 1;
const RT_TABLE_UNSPEC = 0;
/** FRA_SUPPRESS_PREFIXLEN / FRA_SUPPRESS_IFGROUP as the kernel reports them when unset. */
const UNSET_U32 = 0xffffffff;

/** The package's parsers turn known enum values into names ('UNICAST', 'toTbl', 'BGP'); back to numbers. */
function num(mapping: object, v: unknown): number {
  if (typeof v === 'number') return v;
  const n = typeof v === 'string' ? (mapping as Record<string, unknown>)[v] : undefined;
  if (typeof n !== 'number') throw new TypeError(`unknown enum value ${JSON.stringify(v)}`);
  return n;
}

/** Table ids above 255 only fit the RTA_TABLE / FRA_TABLE attribute; the header field then says UNSPEC (as
 * iproute2 does). We always send the attribute. */
function headerTable(table: number): number {
  return table < 256 ? table : RT_TABLE_UNSPEC;
}

export function routeToMessage(o: RouteObject, forDelete = false): RawRoute {
  if (o.type === 'other') throw new TypeError('cannot format a route of type "other"');
  const unicast = o.type === 'unicast';
  const data: rt.Route = {
    family: afOf(o.family),
    dstLen: o.dstLen,
    table: headerTable(o.table),
    protocol: o.protocol,
    type: unicast ? RTN_UNICAST : RTN_BLACKHOLE,
    // A device route without gateway is scope link (as `ip route add ... dev X`); for deletes, NOWHERE means
    // "any scope" to fib_table_delete. IPv6 ignores the scope.
    scope: forDelete ? RT_SCOPE_NOWHERE : unicast && o.family === 4 ? RT_SCOPE_LINK : RT_SCOPE_UNIVERSE,
  };
  const attrs: rt.RouteAttrs = { table: o.table, priority: o.metric };
  if (o.dstLen > 0) attrs.dst = ipToBuffer(o.dst, o.family);
  if (unicast) attrs.oif = o.oif;
  return { data, attrs };
}

/** Delete request for an installed route: table, prefix, metric, type, protocol and device identify it. */
export function routeToDelete(o: RouteObject & { raw?: RawRoute }): RawRoute {
  if (o.type !== 'other' && !o.extra) return routeToMessage(o, true);
  const raw = o.raw;
  if (!raw) throw new TypeError('cannot delete an unusual route without its original message');
  const data: rt.Route = { ...raw.data, scope: RT_SCOPE_NOWHERE, flags: {} };
  const attrs: rt.RouteAttrs = { table: o.table, priority: o.metric };
  for (const k of ['dst', 'src', 'oif', 'gateway', 'prefsrc', 'multipath', 'via', 'nhId'] as const) {
    if (raw.attrs[k] !== undefined) (attrs as Record<string, unknown>)[k] = raw.attrs[k];
  }
  return { data, attrs };
}

export function ruleToMessage(o: RuleObject): RawRule {
  const data: rt.Rule = {
    family: afOf(o.family),
    srcLen: o.srcLen,
    table: headerTable(o.table),
    action: FR_ACT_TO_TBL,
  };
  const attrs: rt.RuleAttrs = { table: o.table, priority: o.pref, protocol: o.protocol };
  if (o.srcLen > 0) attrs.src = ipToBuffer(o.src, o.family);
  if (o.ipProto) attrs.ipProto = o.ipProto;
  if (o.sport) attrs.sportRange = { start: o.sport.start, end: o.sport.end };
  return { data, attrs };
}

/** Delete request for an installed rule. The kernel deletes the first rule that matches the attributes given
 * (unspecified ones match anything), so a rule with selectors l4nat never sets is deleted with its original
 * message, as `ip rule flush` does, never with a partial one that might hit another rule. */
export function ruleToDelete(o: RuleObject & { raw?: RawRule }): RawRule {
  if (!o.extra) return ruleToMessage(o);
  if (!o.raw) throw new TypeError('cannot delete an unusual rule without its original message');
  return { data: o.raw.data, attrs: o.raw.attrs };
}

export function toDelete(o: InstalledObject): RawRoute | RawRule {
  return o.kind === 'route' ? routeToDelete(o) : ruleToDelete(o);
}

/** Normalizes a route from a dump or notification; undefined for other families. */
export function routeFromMessage(m: { data: rt.Route; attrs: rt.RouteAttrs }): (RouteObject & { raw: RawRoute }) | undefined {
  const family = familyOfAf(m.data.family ?? 0);
  if (!family) return undefined;
  const typeNum = num(rt.RouteType, m.data.type ?? 0);
  const type = typeNum === RTN_UNICAST ? 'unicast' : typeNum === RTN_BLACKHOLE ? 'blackhole' : 'other';
  const extra: string[] = [];
  if (type === 'other') extra.push(`type ${typeNum}`);
  if (m.attrs.gateway) extra.push(`via ${bufferToIp(m.attrs.gateway)}`);
  if (m.attrs.via) extra.push('via (other family)');
  if (m.attrs.multipath) extra.push('multipath');
  if (m.attrs.nhId) extra.push('nhid');
  if (m.data.srcLen) extra.push(`from ${m.attrs.src ? bufferToIp(m.attrs.src) : '?'}/${m.data.srcLen}`);
  if (m.data.tos) extra.push(`tos ${m.data.tos}`);
  if (m.attrs.prefsrc) extra.push(`src ${bufferToIp(m.attrs.prefsrc)}`);
  const obj: RouteObject = {
    kind: 'route',
    family,
    table: m.attrs.table ?? m.data.table ?? 0,
    dst: m.attrs.dst ? bufferToIp(m.attrs.dst) : anyAddr(family),
    dstLen: m.data.dstLen ?? 0,
    type,
    // IPv6 blackhole routes report the loopback device; l4nat's have none.
    oif: type === 'blackhole' ? 0 : m.attrs.oif ?? 0,
    metric: m.attrs.priority ?? 0,
    protocol: num(rt.RouteProtocol, m.data.protocol ?? 0),
  };
  if (extra.length) obj.extra = extra.join(' ');
  return { ...obj, raw: { data: m.data, attrs: m.attrs } };
}

/** Normalizes a rule from a dump or notification; undefined for other families. */
export function ruleFromMessage(m: { data: rt.Rule; attrs: rt.RuleAttrs }): (RuleObject & { raw: RawRule }) | undefined {
  const family = familyOfAf(m.data.family ?? 0);
  if (!family) return undefined;
  const a = m.attrs;
  const extra: string[] = [];
  const action = num(rt.RuleAction, m.data.action ?? 0);
  if (action !== FR_ACT_TO_TBL) extra.push(`action ${action}`);
  const flags = m.data.flags ?? {};
  if (flags.invert) extra.push('not');
  if (m.data.dstLen) extra.push(`to ${a.dst ? bufferToIp(a.dst) : '?'}/${m.data.dstLen}`);
  if (m.data.tos) extra.push(`tos ${m.data.tos}`);
  if (a.iifname !== undefined) extra.push(`iif ${a.iifname}`);
  if (a.oifname !== undefined) extra.push(`oif ${a.oifname}`);
  if (a.fwmark) extra.push(`fwmark ${a.fwmark}`);
  if (a.dportRange) extra.push(`dport ${a.dportRange.start}-${a.dportRange.end}`);
  if (a.uidRange) extra.push('uidrange');
  if (a.goto !== undefined) extra.push(`goto ${a.goto}`);
  if (a.l3Mdev) extra.push('l3mdev');
  if (a.tunId) extra.push('tun_id');
  if (a.flow) extra.push(`realms ${a.flow}`);
  for (const [k, v] of [['suppress_prefixlength', a.suppressPrefixlen], ['suppress_ifgroup', a.suppressIfgroup]] as const) {
    if (v && v.length === 4 && v.readUInt32LE(0) !== UNSET_U32) extra.push(k);
  }
  const obj: RuleObject = {
    kind: 'rule',
    family,
    pref: a.priority ?? 0,
    table: a.table ?? m.data.table ?? 0,
    src: a.src ? bufferToIp(a.src) : anyAddr(family as Family),
    srcLen: m.data.srcLen ?? 0,
    ipProto: a.ipProto ?? 0,
    protocol: a.protocol ?? 0,
  };
  if (a.sportRange) obj.sport = { start: a.sportRange.start ?? 0, end: a.sportRange.end ?? 0 };
  if (extra.length) obj.extra = extra.join(' ');
  return { ...obj, raw: { data: m.data, attrs: m.attrs } };
}

export function hostObjectToMessage(o: HostObject): RawRoute | RawRule {
  return o.kind === 'route' ? routeToMessage(o) : ruleToMessage(o);
}
