// Host set-up, layer 3: HostSetup puts the host in the shape docs/design.md "Where packets go" describes (items
// 1-6) over rtnetlink: the TUN link and its sysctls, table T, the backend rules and the VIP routes, all carrying
// l4nat's protocol value. It keeps them there while l4nat runs (watch) and removes exactly them, in an order
// that never leaks, on a full stop (teardown). Plans and diffs come from plan.ts; messages from messages.ts.
import { endianness } from 'os';
import type { Logger } from '../util/log';
import { bufferToIp, AF_INET6 } from './addr';
import {
  ADD_ORDER, TEARDOWN_ORDER, DesiredHostState, HostObject, PlanParams, RouteObject, checkParams, describe, diff,
  objectKey, planHost, roleOf, routeSlot, teardownOrder,
} from './plan';
import { InstalledObject, hostObjectToMessage, routeFromMessage, ruleFromMessage, toDelete, RawRoute, RawRule } from './messages';
import { Rtnl, RtnlError, RtnlEvent, RtnlMonitor, isErrCode } from './rtnl';
import { configureTunSysctls, enableForwarding, SysctlChange } from './sysctl';

export const DEFAULT_DEBOUNCE_MS = 200;
export const MIN_MTU = 1280; // IPv6 minimum link MTU (RFC 8200)
export const MAX_MTU = 65535;
export const TUN_TXQUEUELEN = 10000;

export interface HostSetupOptions {
  log: Logger;
  /** Name of the (persistent, multiqueue) TUN device; l4nat's native side creates and owns it. */
  tunName: string;
  /** Table T. */
  table: number;
  /** Preference of the backend rules. */
  rulePref: number;
  /** Table of the VIP routes; default main (254). */
  vipTable?: number;
  /** rtnetlink protocol value; default RTPROT_L4NAT (0xf4). */
  protocol?: number;
  /** watch(): delay between the first notification and the repair, coalescing bursts. Default 200 ms. */
  debounceMs?: number;
  /** Per-request rtnetlink timeout. */
  requestTimeoutMs?: number;
  /** configureLink(): also turn on IPv6 forwarding. Default true. */
  ipv6Forwarding?: boolean;
}

export interface LinkResult {
  ifindex: number;
  mtu: number;
  sysctls: SysctlChange[];
}

export interface ApplyResult {
  /** Descriptions of objects added. */
  added: string[];
  /** Objects we wanted that already existed without our protocol value (left alone). */
  existed: string[];
  /** Objects of ours removed (stale, leftovers of an earlier run, duplicates). */
  removed: string[];
}

type Installed = InstalledObject;

/** struct nlattr (include/uapi/linux/netlink.h): u16 nla_len, u16 nla_type, in host byte order. */
const NLA_HDRLEN = 4;
const NLA_TYPE_MASK = 0x3fff;
const IFLA_INFO_KIND = 1;
const readU16 = (b: Buffer, off: number): number => (endianness() === 'LE' ? b.readUInt16LE(off) : b.readUInt16BE(off));

function isTunLinkInfo(linkinfo: Buffer | undefined): boolean {
  // IFLA_LINKINFO is nested; IFLA_INFO_KIND holds the driver's name ("tun" for TUN and TAP).
  if (!linkinfo) return false;
  for (let off = 0; off + NLA_HDRLEN <= linkinfo.length; ) {
    const len = readU16(linkinfo, off);
    const type = readU16(linkinfo, off + 2) & NLA_TYPE_MASK;
    if (len < NLA_HDRLEN || off + len > linkinfo.length) return false;
    if (type === IFLA_INFO_KIND) return linkinfo.subarray(off + NLA_HDRLEN, off + len).toString('latin1').replace(/\0+$/, '') === 'tun';
    off += (len + 3) & ~3;
  }
  return false;
}

export class HostSetup {
  readonly tunName: string;
  readonly table: number;
  readonly rulePref: number;
  readonly vipTable: number;
  readonly protocol: number;
  private readonly log: Logger;
  private readonly debounceMs: number;
  private readonly requestTimeoutMs?: number;
  private readonly ipv6Forwarding: boolean;
  private rtnl?: Rtnl;
  private ifindex?: number;
  /** Last applied state: what watch() repairs towards. */
  private desired?: DesiredHostState;
  private desiredKeys = new Set<string>();
  /** Objects whose deletion was already reported by a notification, so a repair does not warn twice. */
  private reported = new Set<string>();
  private monitor?: RtnlMonitor;
  private timer?: NodeJS.Timeout;
  private linkDownWarned = false;
  /** MTU given to configureLink(), so a re-created TUN can be configured again by watch(). */
  private mtu?: number;
  /** The TUN went away or was re-created: the next repair configures the link again. */
  private relink = false;
  /** Serializes apply, teardown and repairs. */
  private chain: Promise<unknown> = Promise.resolve();

  constructor(opts: HostSetupOptions) {
    if (!opts || typeof opts !== 'object') throw new TypeError('HostSetup options must be an object');
    if (!opts.log || typeof opts.log.warn !== 'function') throw new TypeError('options.log must be a pino logger');
    if (typeof opts.tunName !== 'string' || !/^[^\s/]{1,15}$/.test(opts.tunName) || opts.tunName === '.' || opts.tunName === '..') {
      throw new TypeError(`options.tunName must be an interface name (1-15 characters), got ${JSON.stringify(opts.tunName)}`);
    }
    // tunIfindex is not known yet; 1 only satisfies the check.
    const p = checkParams({ tunIfindex: 1, table: opts.table, rulePref: opts.rulePref, vipTable: opts.vipTable, protocol: opts.protocol });
    const debounceMs = opts.debounceMs ?? DEFAULT_DEBOUNCE_MS;
    if (!Number.isFinite(debounceMs) || debounceMs < 0) throw new TypeError(`options.debounceMs must be a number >= 0, got ${JSON.stringify(opts.debounceMs)}`);
    this.log = opts.log;
    this.tunName = opts.tunName;
    this.table = p.table;
    this.rulePref = p.rulePref;
    this.vipTable = p.vipTable;
    this.protocol = p.protocol;
    this.debounceMs = debounceMs;
    this.requestTimeoutMs = opts.requestTimeoutMs;
    this.ipv6Forwarding = opts.ipv6Forwarding ?? true;
  }

  /** The TUN's own counters: packets the kernel could not queue to the workers show up as txDropped. */
  async tunStats(): Promise<{ txDropped: number; txPackets: number; rxDropped: number }> {
    const s = (await this.nl.getLinkByName(this.tunName)).attrs.stats64;
    return { txDropped: Number(s?.txDropped ?? 0), txPackets: Number(s?.txPackets ?? 0), rxDropped: Number(s?.rxDropped ?? 0) };
  }

  /** Index of the TUN, once configureLink() or apply() looked it up. */
  get tunIfindex(): number | undefined {
    return this.ifindex;
  }

  async open(): Promise<void> {
    if (this.rtnl && !this.rtnl.isClosed) return;
    this.rtnl = Rtnl.open({
      timeoutMs: this.requestTimeoutMs,
      onError: (err) => this.log.error({ err }, 'rtnetlink socket error'),
    });
  }

  close(): void {
    this.unwatch();
    this.rtnl?.close();
    this.rtnl = undefined;
  }

  private get nl(): Rtnl {
    if (!this.rtnl || this.rtnl.isClosed) throw new Error('HostSetup is not open: call open() first');
    return this.rtnl;
  }

  private serialize<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.chain.then(fn, fn);
    this.chain = run.catch(() => undefined);
    return run;
  }

  /** Description of an object for logs, naming the TUN. */
  describe(o: HostObject): string {
    return describe(o, (i) => (i === this.ifindex ? this.tunName : undefined));
  }

  private params(ifindex: number): Required<PlanParams> {
    return { tunIfindex: ifindex, table: this.table, rulePref: this.rulePref, vipTable: this.vipTable, protocol: this.protocol };
  }

  private async resolveIfindex(): Promise<number> {
    if (this.ifindex !== undefined) return this.ifindex;
    const link = await this.nl.getLinkByName(this.tunName);
    this.ifindex = link.data.index;
    if (!this.ifindex) throw new Error(`link ${this.tunName} reported no index`);
    return this.ifindex;
  }

  /** Looks the TUN up by name, sets its MTU, turns on forwarding, sets the TUN's sysctls (before the link goes
   * up: addr_gen_mode) and sets it up. Safe to repeat on a TUN that a previous run left configured. */
  async configureLink(mtu: number): Promise<LinkResult> {
    checkMtu(mtu);
    const link = await this.nl.getLinkByName(this.tunName);
    const index = link.data.index;
    if (!index) throw new Error(`link ${this.tunName} reported no index`);
    if (!isTunLinkInfo(link.attrs.linkinfo)) throw new Error(`${this.tunName} is not a TUN device`);
    this.checkMaxMtu(mtu, link);
    this.ifindex = index;
    this.mtu = mtu;
    if (link.attrs.mtu !== mtu) {
      await this.nl.setLink(`${this.tunName} mtu ${mtu}`, { index }, { mtu });
      this.log.info({ ifname: this.tunName, from: link.attrs.mtu, to: mtu }, 'set TUN MTU');
    }
    // The TUN's transmit queue is what the kernel hands the workers; the default (500) overflows under
    // bursts of new connections (seen as TX drops on the TUN and client retransmissions).
    if ((link.attrs.txqlen ?? 0) < TUN_TXQUEUELEN) {
      await this.nl.setLink(`${this.tunName} txqueuelen ${TUN_TXQUEUELEN}`, { index }, { txqlen: TUN_TXQUEUELEN });
      this.log.info({ ifname: this.tunName, from: link.attrs.txqlen, to: TUN_TXQUEUELEN }, 'set TUN txqueuelen');
    }
    const sysctls = enableForwarding(this.log, { ipv6: this.ipv6Forwarding });
    sysctls.push(...configureTunSysctls(this.tunName, { log: this.log }));
    const up = link.data.flags?.up === true;
    if (up) {
      // Up before addr_gen_mode was none (e.g. created by hand): drop the link-local address it got.
      await this.removeLinkLocal(index);
    } else {
      await this.nl.setLink(`${this.tunName} up`, { index, flags: { up: true }, change: { up: true } });
      this.log.info({ ifname: this.tunName, ifindex: index }, 'set TUN up');
    }
    return { ifindex: index, mtu, sysctls };
  }

  private checkMaxMtu(mtu: number, link: { attrs: { maxMtu?: number } }): void {
    if (link.attrs.maxMtu !== undefined && mtu > link.attrs.maxMtu) {
      throw new RangeError(`mtu ${mtu} is above ${this.tunName}'s maximum of ${link.attrs.maxMtu}`);
    }
  }

  /** Changes the TUN's MTU while l4nat runs (src/host/link-mtu.ts: the links' smallest MTU changed); a TUN re-created
   * later gets it too. Resolves with the MTU the TUN had. */
  setMtu(mtu: number): Promise<number | undefined> {
    checkMtu(mtu);
    return this.serialize(async () => {
      const link = await this.nl.getLinkByName(this.tunName);
      this.checkMaxMtu(mtu, link);
      this.mtu = mtu;
      if (link.attrs.mtu !== mtu) await this.nl.setLink(`${this.tunName} mtu ${mtu}`, { index: link.data.index }, { mtu });
      return link.attrs.mtu;
    });
  }

  private async removeLinkLocal(index: number): Promise<void> {
    let addrs;
    try {
      addrs = await this.nl.getAddresses(6, index);
    } catch (err) {
      if (isErrCode(err, 'EAFNOSUPPORT')) return;
      throw err;
    }
    for (const a of addrs) {
      const addr = a.attrs.address ?? a.attrs.local;
      if (!addr || addr.length !== 16 || addr[0] !== 0xfe || (addr[1] & 0xc0) !== 0x80) continue;
      const text = `${bufferToIp(addr)}/${a.data.prefixlen} dev ${this.tunName}`;
      await this.nl.delAddress(text, { family: AF_INET6, prefixlen: a.data.prefixlen, index }, { address: addr });
      this.log.info({ address: text }, 'removed IPv6 link-local address from the TUN');
    }
  }

  /** Every route and rule carrying our protocol value, in teardown order. */
  async findLeftovers(): Promise<Installed[]> {
    const nl = this.nl;
    // One after the other: see Rtnl (the package cannot reassemble interleaved dumps).
    const r4 = await nl.dumpRoutes(4);
    const r6 = await nl.dumpRoutes(6);
    const u4 = await nl.dumpRules(4);
    const u6 = await nl.dumpRules(6);
    const out: Installed[] = [];
    for (const m of [...r4, ...r6]) {
      const o = routeFromMessage(m);
      if (o && o.protocol === this.protocol) out.push(o);
    }
    for (const m of [...u4, ...u6]) {
      const o = ruleFromMessage(m);
      if (o && o.protocol === this.protocol) out.push(o);
    }
    return teardownOrder(out, this.protocol);
  }

  /** Makes the installed objects with our protocol value exactly the plan for `desired`: adds what is missing
   * (table T, then rules, then VIP routes), then removes what is stale (VIP routes first, blackholes last).
   * Leftovers of a crashed run are adopted if wanted and removed if not. */
  apply(desired: DesiredHostState): Promise<ApplyResult> {
    return this.serialize(async () => {
      const ifindex = await this.resolveIfindex();
      const plan = planHost({ ...desired, ...this.params(ifindex) });
      this.desired = { vips: [...desired.vips], backends: [...desired.backends] };
      this.desiredKeys = new Set(plan.map(objectKey));
      this.reported.clear();
      const d = diff(plan, await this.findLeftovers(), this.protocol);
      const result: ApplyResult = { added: [], existed: [], removed: [] };
      const remove = [...d.remove];
      await this.addAll(d.add, remove, result);
      await this.removeAll(remove, result);
      this.log.info(
        { added: result.added.length, removed: result.removed.length, existed: result.existed.length, objects: plan.length },
        'host routes and rules applied',
      );
      return result;
    });
  }

  /** Removes every route and rule carrying our protocol value, VIP routes first, then the TUN routes of table
   * T, then the rules, then the blackhole routes. Stops watching first. Stops at the first step that fails, so
   * the host is never left in a state that leaks. The TUN itself stays (the native side owns it). */
  teardown(): Promise<{ removed: string[] }> {
    this.unwatch();
    return this.serialize(async () => {
      this.desired = undefined;
      this.desiredKeys.clear();
      const result: ApplyResult = { added: [], existed: [], removed: [] };
      await this.removeAll(teardownOrder(await this.findLeftovers(), this.protocol), result);
      this.log.info({ removed: result.removed.length }, 'host routes and rules removed');
      return { removed: result.removed };
    });
  }

  private async send(o: HostObject, op: 'add' | 'delete', msg: RawRoute | RawRule): Promise<void> {
    const what = this.describe(o);
    if (o.kind === 'route') {
      const m = msg as RawRoute;
      if (op === 'add') await this.nl.newRoute(what, m.data, m.attrs);
      else await this.nl.delRoute(what, m.data, m.attrs);
    } else {
      const m = msg as RawRule;
      if (op === 'add') await this.nl.newRule(what, m.data, m.attrs);
      else await this.nl.delRule(what, m.data, m.attrs);
    }
  }

  /** Adds in ADD_ORDER, one role at a time; a failure stops before the next role (a rule must never point at
   * a table T without routes, a VIP must never reach the TUN before replies come back to it). `stale` may lose
   * members: a stale route of ours holding the slot of a wanted one is removed first. */
  private async addAll(objs: readonly HostObject[], stale: Installed[], result: ApplyResult, onAdded?: (o: HostObject) => void): Promise<void> {
    for (const role of ADD_ORDER) {
      const errors: Error[] = [];
      for (const o of objs.filter((x) => roleOf(x) === role)) {
        try {
          await this.addOne(o, stale, result);
          onAdded?.(o);
        } catch (err) {
          errors.push(err as Error);
          this.log.error({ err, object: this.describe(o) }, 'cannot add host object');
        }
      }
      if (errors.length) throw failure(errors, `stopped after failing to add ${role} objects`);
    }
  }

  private async addOne(o: HostObject, stale: Installed[], result: ApplyResult): Promise<void> {
    const msg = hostObjectToMessage(o);
    try {
      await this.send(o, 'add', msg);
      result.added.push(this.describe(o));
      return;
    } catch (err) {
      if (!isErrCode(err, 'EEXIST')) throw err;
    }
    // EEXIST: the slot is taken. By a stale object of ours (e.g. the same prefix and metric on another device)?
    const i = o.kind === 'route' ? stale.findIndex((s) => s.kind === 'route' && routeSlot(s) === routeSlot(o as RouteObject)) : -1;
    if (i >= 0) {
      const [old] = stale.splice(i, 1);
      await this.removeOne(old, result);
      await this.send(o, 'add', msg);
      result.added.push(this.describe(o));
      return;
    }
    // By someone else's object (or our own, added since the dump): leave it alone.
    result.existed.push(this.describe(o));
    this.log.warn({ object: this.describe(o) }, 'already exists (not with our protocol value); leaving it as it is');
  }

  private async removeOne(o: Installed, result: ApplyResult): Promise<void> {
    try {
      await this.send(o, 'delete', toDelete(o));
      result.removed.push(this.describe(o));
    } catch (err) {
      // Gone already: ESRCH (IPv4 routes), ENOENT (rules, IPv6 routes).
      if (!isErrCode(err, 'ESRCH', 'ENOENT')) throw err;
    }
  }

  /** Removes in TEARDOWN_ORDER; a failure stops before the next role. */
  private async removeAll(objs: readonly Installed[], result: ApplyResult): Promise<void> {
    for (const role of TEARDOWN_ORDER) {
      const errors: Error[] = [];
      for (const o of objs.filter((x) => roleOf(x) === role)) {
        try {
          await this.removeOne(o, result);
        } catch (err) {
          errors.push(err as Error);
          this.log.error({ err, object: this.describe(o) }, 'cannot remove host object');
        }
      }
      if (errors.length) throw failure(errors, `stopped after failing to remove ${role} objects`);
    }
  }

  /** Subscribes to IPv4/IPv6 route and rule notifications and to link changes. When something else deletes
   * one of our objects, logs a warning naming it and (after debounceMs) puts back whatever is missing. Link
   * changes of the TUN trigger the same check: the kernel flushes routes through a device that goes down or
   * away without a route notification. Does not keep the event loop alive. */
  watch(): void {
    if (this.monitor) return;
    if (!this.rtnl || this.rtnl.isClosed) throw new Error('HostSetup is not open: call open() first');
    this.monitor = new RtnlMonitor(
      ['IPV4_ROUTE', 'IPV6_ROUTE', 'IPV4_RULE', 'IPV6_RULE', 'LINK'],
      (ev) => this.onEvent(ev),
      (err) => this.onMonitorError(err),
    );
    this.log.debug('watching routes and rules');
  }

  /** Stops watching; a pending repair is cancelled. */
  unwatch(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.monitor?.close();
    this.monitor = undefined;
  }

  get watching(): boolean {
    return this.monitor !== undefined;
  }

  private onEvent(ev: RtnlEvent): void {
    if (ev.type === 'delroute' || ev.type === 'delrule') {
      const o = ev.type === 'delroute' ? routeFromMessage(ev.msg) : ruleFromMessage(ev.msg);
      if (!o || o.protocol !== this.protocol) return;
      const key = objectKey(o);
      if (!this.desiredKeys.has(key)) return; // ours but not wanted: our own clean-up of stale objects
      if (!this.reported.has(key)) {
        this.reported.add(key);
        this.log.warn({ object: this.describe(o) }, 'l4nat object deleted by someone else; putting it back');
      }
      this.scheduleRepair();
    } else if (ev.type === 'newlink' || ev.type === 'dellink') {
      const index = ev.msg.data.index;
      const name = ev.msg.attrs.ifname;
      if (index !== this.ifindex && name !== this.tunName) return;
      if (ev.type === 'dellink' && index === this.ifindex) {
        this.log.warn({ ifname: this.tunName }, 'TUN device deleted: its routes are gone, backend replies hit the blackhole until it is back');
        this.ifindex = undefined;
        this.relink = true;
      } else if (ev.type === 'newlink' && name === this.tunName && index !== this.ifindex) {
        if (this.ifindex !== undefined) this.log.warn({ ifname: this.tunName, from: this.ifindex, to: index }, 'TUN device re-created');
        this.ifindex = undefined;
        this.relink = true;
      }
      this.scheduleRepair();
    }
  }

  private onMonitorError(err: RtnlError): void {
    if (err.code === 'ENOBUFS') {
      this.log.warn('rtnetlink notifications were lost (ENOBUFS); re-checking routes and rules');
      this.scheduleRepair();
    } else {
      this.log.error({ err }, 'rtnetlink notification error');
    }
  }

  private scheduleRepair(): void {
    if (!this.monitor || this.timer || !this.desired) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.serialize(() => this.repair()).catch((err) => this.log.error({ err }, 'cannot put back l4nat routes and rules'));
    }, this.debounceMs);
  }

  /** Puts back missing objects of the last applied state. Removes nothing (only apply and teardown do). */
  private async repair(): Promise<void> {
    const desired = this.desired;
    if (!this.monitor || !desired) return;
    let ifindex: number;
    try {
      if (this.relink && this.mtu !== undefined) {
        ifindex = (await this.configureLink(this.mtu)).ifindex;
        this.log.info({ ifname: this.tunName, ifindex }, 're-configured the re-created TUN');
      } else {
        ifindex = await this.resolveIfindex();
      }
      this.relink = false;
    } catch (err) {
      if (!isErrCode(err, 'ENODEV')) throw err;
      this.log.warn({ ifname: this.tunName }, 'TUN device missing; will put routes back when it returns');
      return;
    }
    const plan = planHost({ ...desired, ...this.params(ifindex) });
    this.desiredKeys = new Set(plan.map(objectKey));
    const d = diff(plan, await this.findLeftovers(), this.protocol);
    if (!d.add.length) return;
    const result: ApplyResult = { added: [], existed: [], removed: [] };
    for (const o of d.add) {
      const key = objectKey(o);
      if (!this.reported.has(key)) this.log.warn({ object: this.describe(o) }, 'l4nat object missing; putting it back');
    }
    try {
      await this.addAll(d.add, [...d.remove], result, (o) => {
        this.reported.delete(objectKey(o));
        this.log.info({ object: this.describe(o) }, 'put back');
      });
      this.linkDownWarned = false;
    } catch (err) {
      const errs = (err as AggregateError).errors ?? [err];
      if (errs.some((e: unknown) => isErrCode(e, 'ENETDOWN'))) {
        if (!this.linkDownWarned) this.log.warn({ ifname: this.tunName }, 'TUN is down; will put routes back when it comes up');
        this.linkDownWarned = true;
        return;
      }
      throw err;
    }
  }
}

function checkMtu(mtu: number): void {
  if (!Number.isInteger(mtu) || mtu < MIN_MTU || mtu > MAX_MTU) {
    throw new TypeError(`mtu must be an integer in ${MIN_MTU}..${MAX_MTU} (IPv6 needs at least ${MIN_MTU}), got ${JSON.stringify(mtu)}`);
  }
}

function failure(errors: Error[], message: string): Error {
  if (errors.length === 1) return errors[0];
  return new AggregateError(errors, `${message}: ${errors.map((e) => e.message).join('; ')}`);
}
