// Host set-up, layer 3: HostSetup puts the host in the shape docs/design.md "Where packets go" describes (items
// 1-6) over rtnetlink: the TUN link and its sysctls, table T, the backend rules and the VIP routes, all carrying
// l4nat's protocol value. It keeps them there while l4nat runs (watch) and removes exactly them, in an order
// that never leaks, on a full stop (teardown). Plans and diffs come from plan.ts; messages from messages.ts; the TUN
// link is configured by tun-link.ts and routes and rules are written by route-rule-writer.ts.
import type { Logger } from '../util/log';
import { DesiredHostState, HostObject, PlanParams, checkParams, describe, diff, objectKey, planHost, teardownOrder } from './plan';
import { InstalledObject, routeFromMessage, ruleFromMessage } from './messages';
import { RouteRuleWriter, type ApplyResult } from './route-rule-writer';
import { Rtnl, RtnlError, RtnlEvent, RtnlMonitor, isErrCode } from './rtnl';
import { checkMaxMtu, checkMtu, findTun, setUpTun, type LinkResult } from './tun-link';

export const DEFAULT_DEBOUNCE_MS = 200;

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

type Installed = InstalledObject;

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
  /** Adds and removes our routes and rules, one role at a time. */
  private readonly writer: RouteRuleWriter;

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
    this.writer = new RouteRuleWriter({ nl: () => this.nl, protocol: this.protocol, describe: (o) => this.describe(o), log: this.log });
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
    const tun = await findTun(() => this.nl, this.tunName, mtu);
    this.ifindex = tun.index;
    this.mtu = mtu;
    return setUpTun(() => this.nl, tun, { tunName: this.tunName, mtu, log: this.log, ipv6Forwarding: this.ipv6Forwarding });
  }

  /** Changes the TUN's MTU while l4nat runs (src/host/link-mtu.ts: the links' smallest MTU changed); a TUN re-created
   * later gets it too. Resolves with the MTU the TUN had. */
  setMtu(mtu: number): Promise<number | undefined> {
    checkMtu(mtu);
    return this.serialize(async () => {
      const link = await this.nl.getLinkByName(this.tunName);
      checkMaxMtu(this.tunName, mtu, link);
      this.mtu = mtu;
      if (link.attrs.mtu !== mtu) await this.nl.setLink(`${this.tunName} mtu ${mtu}`, { index: link.data.index }, { mtu });
      return link.attrs.mtu;
    });
  }

  /** Every route and rule carrying our protocol value, in teardown order. */
  findLeftovers(): Promise<Installed[]> {
    return this.writer.findLeftovers();
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
      await this.writer.addAll(d.add, remove, result);
      await this.writer.removeAll(remove, result);
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
      await this.writer.removeAll(teardownOrder(await this.findLeftovers(), this.protocol), result);
      this.log.info({ removed: result.removed.length }, 'host routes and rules removed');
      return { removed: result.removed };
    });
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
      await this.writer.addAll(d.add, [...d.remove], result, (o) => {
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
