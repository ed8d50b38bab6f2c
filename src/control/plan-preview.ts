// What a change would do before it is applied (POST /v1/plan, `l4nat reload --dry-run`): the change is built by
// the same code that applies it (operations.ts, drain.ts, reload.ts: a Change holding a Plan), its table by the
// same effective-table code the queue publishes (effective.ts), its rings by the same Maglev layout buildTables
// publishes (tables.ts specKeyedRing). Then, per backend: ring slots before and after, gained and lost, shares;
// and how many live flows the new rings would send elsewhere were their entries gone, counted by the data plane
// against its own flow table (native/core/flow_query.c l4_flow_moves_page, the packet path's ring lookup).
// Nothing is published and nothing in the running state is touched: a Change's plan is a copy (plan.ts).
//
// Bound: the flow count walks the table one native call of FLOW_SCAN_PER_CALL entries (262,144: 16 MiB of the
// table, a SipHash per live entry: measured 17 ms for a page 7/8 full) at a time with the event loop free between
// calls, so a plan of a table of capacity C costs C / 262,144 calls (4 with the default table) and never holds the
// thread for more than one page; plans run one at a time, so an API storm queues them instead of walking the table
// in parallel.
import { serviceId, type ServiceSpec } from '../config/model';
import type { FlowMoveQuestion } from '../dataplane/native';
import { MOVE_WORDS } from '../dataplane/explain';
import { backendKey, HASH_MODES, NO_BACKEND, specKeyedRing, type KeyedRing, type TableOptions } from '../dataplane/tables';
import type { EffectiveTable } from './effective';
import { monotonicMs } from '../util/clock';
import type { Change } from './plan';
import { ControlError, type ControlState, type Plan } from './state';

export interface BackendPlan {
  backend: string;
  name?: string;
  /** kept: in the table before and after; added, removed: by this change. */
  change: 'kept' | 'added' | 'removed';
  /** Effective weight (0: out of the ring) before and after; null where the backend is not in the table. */
  weight: { before: number | null; after: number | null };
  slots: { before: number; after: number; gained: number; lost: number };
  /** Fraction of the service's ring. */
  share: { before: number; after: number };
  /** Live entries on this backend (closed TCP ones not counted), and how many of them the new ring sends elsewhere. */
  flows: { live: number; wouldMove: number } | null;
}

export interface ServicePlan {
  service: string;
  change: 'kept' | 'added' | 'removed';
  /** Ring slots whose backend changes (a new or removed service: all). */
  slotsMoved: number;
  backends: BackendPlan[];
}

export interface PlanPreview {
  /** What the change is (the log line a publish would carry). */
  change: string;
  /** false: there is nothing to do (the running state already is what was asked). */
  changes: boolean;
  services: ServicePlan[];
  /** Service id -> slots moved, as the applied change reports it (services kept or added whose ring changes). */
  changedSlots: Record<string, number>;
  /** Totals over every service, or null when the data plane cannot count flows (no flow-move query); `pages`: native
   * calls made, `ms`: the time spent in them (the event loop is free between them). */
  flows: { live: number; wouldMove: number; pages: number; ms: number } | null;
  /** A reload's services added, removed and changed (the file's, as the reload would log them). */
  reload?: Record<string, unknown>;
  applied: false;
}

interface RingCount {
  slots: Map<string, number>; // backend key -> slots
  size: number;
}

function countSlots(r: KeyedRing | undefined): RingCount {
  const slots = new Map<string, number>();
  if (!r) return { slots, size: 0 };
  for (const i of r.idx) if (i !== NO_BACKEND) slots.set(r.keys[i], (slots.get(r.keys[i]) ?? 0) + 1);
  return { slots, size: r.idx.length };
}

/** Slots of `a` whose backend differs in `b` (a missing ring: every slot of the other). */
function movedSlots(a: KeyedRing | undefined, b: KeyedRing | undefined): { n: number; gained: Map<string, number>; lost: Map<string, number> } {
  const gained = new Map<string, number>();
  const lost = new Map<string, number>();
  const size = Math.max(a?.idx.length ?? 0, b?.idx.length ?? 0);
  let n = 0;
  const at = (r: KeyedRing | undefined, i: number): string | undefined => (r && r.idx[i] !== NO_BACKEND ? r.keys[r.idx[i]] : undefined);
  for (let i = 0; i < size; i++) {
    const x = at(a, i);
    const y = at(b, i);
    if (x === y) continue;
    n++;
    if (x !== undefined) lost.set(x, (lost.get(x) ?? 0) + 1);
    if (y !== undefined) gained.set(y, (gained.get(y) ?? 0) + 1);
  }
  return { n, gained, lost };
}

/**
 * The data plane's question: each service that runs now, with its ring after the change (in the running table's
 * backend slots; a backend the change adds gets a number of its own, counted as "elsewhere"). A service the change
 * removes asks with an empty ring: its flows have nowhere to go.
 */
export function moveQuestion(state: ControlState, before: readonly ServiceSpec[], after: ReadonlyMap<string, { spec: ServiceSpec; ring: KeyedRing }>): FlowMoveQuestion {
  const rows: number[] = [];
  const rings: number[] = [];
  const fresh = new Map<string, number>();
  for (const s of before) {
    const sid = serviceId(s);
    const slot = state.balancer.serviceSlot(sid);
    if (slot === undefined) continue;
    const next = after.get(sid);
    if (!next) {
      rows.push(slot, HASH_MODES[s.hash], rings.length, 0);
      continue;
    }
    const slotOf = next.ring.keys.map((k) => {
      const cur = state.balancer.backendSlot(k);
      if (cur !== undefined) return cur;
      if (!fresh.has(k)) fresh.set(k, NO_BACKEND - 1 - fresh.size);
      return fresh.get(k)!;
    });
    rows.push(slot, HASH_MODES[next.spec.hash], rings.length, next.ring.idx.length);
    for (const i of next.ring.idx) rings.push(i === NO_BACKEND ? NO_BACKEND : slotOf[i]);
  }
  if (rows.length % MOVE_WORDS) throw new Error('plan: a flow-move row is not MOVE_WORDS long');
  return { services: Uint32Array.from(rows), rings: Uint32Array.from(rings) };
}

/** Per backend slot: live entries, and those the question's rings send elsewhere; null without a flow-move query. */
async function countMoves(state: ControlState, q: FlowMoveQuestion): Promise<{ moved: Map<number, number>; live: Map<number, number>; pages: number; ms: number } | null> {
  const dp = state.balancer.dp;
  if (!dp.flowMovesPage) return null;
  const moved = new Map<number, number>();
  const live = new Map<number, number>();
  let busy = 0; // time in the native calls, not the event-loop turns between them
  let pages = 0;
  for (let cursor: number | null = 0; cursor !== null; pages++) {
    if (pages > 0) await new Promise((r) => setImmediate(r));
    const t = monotonicMs();
    const p = dp.flowMovesPage(q, cursor);
    busy += monotonicMs() - t;
    p.moved.forEach((n, slot) => {
      if (!n && !p.kept[slot]) return;
      moved.set(slot, (moved.get(slot) ?? 0) + n);
      live.set(slot, (live.get(slot) ?? 0) + n + p.kept[slot]);
    });
    cursor = p.next;
  }
  return { moved, live, pages, ms: Math.round(busy * 10) / 10 };
}

export class PlanPreviewer {
  private tail: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly state: ControlState,
    private readonly effective: (p: Plan) => EffectiveTable,
  ) {}

  /** The preview of a change built against the running state; one at a time. */
  preview(change: Change, what: string): Promise<PlanPreview> {
    const run = this.tail.then(() => this.compute(change, what));
    this.tail = run.catch(() => undefined);
    return run;
  }

  private async compute(change: Change, what: string): Promise<PlanPreview> {
    const state = this.state;
    const before = state.balancer.current;
    if (!before) throw new ControlError(501, 'this data plane cannot show a plan: it does not say which table it runs');
    const opts: TableOptions = change.tableOpts ?? state.balancer.tableOptions;
    const running = state.balancer.tableOptions;
    const plan = change.plan ?? state.currentPlan;
    const eff = this.effective(plan);
    const beforeRings = new Map(before.map((s) => [serviceId(s), specKeyedRing(s, running)]));
    const after = new Map(eff.specs.map((s) => [serviceId(s), { spec: s, ring: specKeyedRing(s, opts) }]));
    const counted = await countMoves(state, moveQuestion(state, before, after));
    const names = new Map(plan.services.concat(state.services).flatMap((s) => s.backends.map((b) => [backendKey(s, b), b.name] as const)));
    const ids = [...new Set([...before.map((s) => serviceId(s)), ...after.keys()])];
    const changedSlots: Record<string, number> = {};
    let live = 0;
    let wouldMove = 0;
    const services = ids.map((sid): ServicePlan => {
      const old = before.find((s) => serviceId(s) === sid);
      const next = after.get(sid)?.spec;
      const oldRing = beforeRings.get(sid);
      const newRing = after.get(sid)?.ring;
      const m = movedSlots(old ? oldRing : undefined, next ? newRing : undefined);
      // As the Balancer reports a publish: a new service moves its whole ring, a removed one is not listed.
      if (!old && newRing) m.n = newRing.idx.length;
      if (m.n > 0 && next) changedSlots[sid] = m.n;
      const a = countSlots(oldRing);
      const b = countSlots(newRing);
      const weights = (s: ServiceSpec | undefined): Map<string, number> => new Map((s?.backends ?? []).map((x) => [backendKey(s!, x), x.weight]));
      const wa = weights(old);
      const wb = weights(next);
      const keys = [...new Set([...wa.keys(), ...wb.keys()])];
      const backends = keys.map((key): BackendPlan => {
        const slot = wa.has(key) ? state.balancer.backendSlot(key) : undefined;
        const l = slot === undefined ? 0 : counted?.live.get(slot) ?? 0;
        const mv = slot === undefined ? 0 : counted?.moved.get(slot) ?? 0;
        live += l;
        wouldMove += mv;
        const name = names.get(key);
        return {
          backend: key.slice(sid.length + 1),
          ...(name !== undefined ? { name } : {}),
          change: wa.has(key) && wb.has(key) ? 'kept' : wb.has(key) ? 'added' : 'removed',
          weight: { before: wa.get(key) ?? null, after: wb.get(key) ?? null },
          slots: { before: a.slots.get(key) ?? 0, after: b.slots.get(key) ?? 0, gained: m.gained.get(key) ?? 0, lost: m.lost.get(key) ?? 0 },
          share: { before: a.size ? (a.slots.get(key) ?? 0) / a.size : 0, after: b.size ? (b.slots.get(key) ?? 0) / b.size : 0 },
          flows: counted ? { live: l, wouldMove: mv } : null,
        };
      });
      return { service: sid, change: old && next ? 'kept' : next ? 'added' : 'removed', slotsMoved: m.n, backends };
    });
    return {
      change: change.reason ?? what,
      changes: change.plan !== undefined,
      services,
      changedSlots,
      flows: counted ? { live, wouldMove, pages: counted.pages, ms: counted.ms } : null,
      ...(change.extra ? { reload: change.extra } : {}),
      applied: false,
    };
  }
}
