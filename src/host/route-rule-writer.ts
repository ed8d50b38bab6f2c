// Host set-up, layer 3: adds and removes l4nat's routes and rules over rtnetlink one role at a time (ADD_ORDER,
// TEARDOWN_ORDER from plan.ts; a failure stops before the next role, so the host never leaks), and finds every one
// installed with our protocol value. HostSetup (setup.ts) decides what to add and remove, and when.
// Layers: plan.ts (objects, orders), messages.ts (objects ↔ messages), rtnl.ts → this file → setup.ts.
import type { Logger } from '../util/log';
import { ADD_ORDER, TEARDOWN_ORDER, HostObject, RouteObject, roleOf, routeSlot, teardownOrder } from './plan';
import { InstalledObject, hostObjectToMessage, routeFromMessage, ruleFromMessage, toDelete, RawRoute, RawRule } from './messages';
import { isErrCode, type Rtnl } from './rtnl';

export interface ApplyResult {
  /** Descriptions of objects added. */
  added: string[];
  /** Objects we wanted that already existed without our protocol value (left alone). */
  existed: string[];
  /** Objects of ours removed (stale, leftovers of an earlier run, duplicates). */
  removed: string[];
}

type Installed = InstalledObject;

export interface RouteRuleWriterOptions {
  /** The open rtnetlink socket (throws when its owner is not open). */
  nl: () => Rtnl;
  /** rtnetlink protocol value that marks our routes and rules. */
  protocol: number;
  /** Description of an object for logs. */
  describe: (o: HostObject) => string;
  log: Logger;
}

export class RouteRuleWriter {
  private readonly protocol: number;
  private readonly log: Logger;

  constructor(private readonly o: RouteRuleWriterOptions) {
    this.protocol = o.protocol;
    this.log = o.log;
  }

  private get nl(): Rtnl {
    return this.o.nl();
  }

  private describe(o: HostObject): string {
    return this.o.describe(o);
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
  async addAll(objs: readonly HostObject[], stale: Installed[], result: ApplyResult, onAdded?: (o: HostObject) => void): Promise<void> {
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
  async removeAll(objs: readonly Installed[], result: ApplyResult): Promise<void> {
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
}

function failure(errors: Error[], message: string): Error {
  if (errors.length === 1) return errors[0];
  return new AggregateError(errors, `${message}: ${errors.map((e) => e.message).join('; ')}`);
}
