// What the integration tests read from l4nat's admin API (through src/lab/admin-client.ts, inside the lb namespace):
// the data plane's counters and the services view, and the clock the workers' heartbeats are stamped with.
// Layers: src/lab/admin-client.ts → this file → test/*.test.ts.
import { adminRequest } from '../../src/lab/admin-client';
import type { Lab } from '../../src/lab/lab';
import type { ServicesView } from '../../src/control/controller';

export interface DataplaneCounters {
  total: Record<string, number>;
  drops: Record<string, number>;
  heartbeatsMs: number[];
}

/** GET /v1/counters: queue counters summed over queues, drops by reason, worker heartbeats (CLOCK_MONOTONIC ms). */
export async function counters(lab: Lab): Promise<DataplaneCounters> {
  const r = await adminRequest(lab, 'GET', '/v1/counters');
  if (r.status !== 200) throw new Error(`GET /v1/counters: ${r.status} ${JSON.stringify(r.body)}`);
  const b = r.body as { total: Record<string, number | string>; drops: Record<string, number | string>; heartbeatsMs: Array<number | string> };
  const num = (o: Record<string, number | string>): Record<string, number> => Object.fromEntries(Object.entries(o).map(([k, v]) => [k, Number(v)]));
  return { total: num(b.total), drops: num(b.drops), heartbeatsMs: b.heartbeatsMs.map(Number) };
}

/** GET /v1/services: every service with its backends, and the data plane's counters. */
export async function servicesView(lab: Lab): Promise<ServicesView> {
  const r = await adminRequest(lab, 'GET', '/v1/services');
  if (r.status !== 200) throw new Error(`GET /v1/services: ${r.status} ${JSON.stringify(r.body)}`);
  return r.body as ServicesView;
}

/** after − before for every key of `after`. */
export function delta(before: Record<string, number>, after: Record<string, number>): Record<string, number> {
  const d: Record<string, number> = {};
  for (const [k, v] of Object.entries(after)) d[k] = v - (before[k] ?? 0);
  return d;
}

/** Only the non-zero entries (for messages). */
export function nonZero(o: Record<string, number>): Record<string, number> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== 0));
}

