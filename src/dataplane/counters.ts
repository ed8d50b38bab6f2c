// Reading the data plane's counters: the memory the workers count into (one block per queue, laid out as in
// native/core/counters.h, names from the addon's checked layout), named and summed over queues, without
// stopping the workers.
import { addonLayout } from './addon';
import type { AddonLayout } from './addon-layout';
import { HEARTBEAT_COUNTER, NO_DROP_REASON } from './counter-names';

export type CounterMap = Record<string, number>;

export interface CounterSnapshot {
  total: CounterMap; // queue counters summed over queues (heartbeat_ms omitted)
  drops: CounterMap; // by reason, summed
  perQueue: CounterMap[];
  heartbeatsMs: number[]; // CLOCK_MONOTONIC ms of each worker's last wake-up
  services: Map<number, CounterMap>; // by service slot, non-zero only
  backends: Map<number, CounterMap>; // by backend slot, non-zero only
}

/** How the counter memory is cut up: one block of counterWords per queue, each laid out as in native/core/counters.h. */
export interface CounterBlocks {
  queues: number;
  counterWords: number;
  maxServices: number;
  maxBackends: number;
}

function zeros(names: readonly string[]): CounterMap {
  return Object.fromEntries(names.map((n) => [n, 0]));
}

/** A service's or backend's counters before it counted anything: every counter the addon has, at 0. */
export function zeroObjectCounters(): CounterMap {
  return zeros(addonLayout().objectCounters);
}

/** Words a queue's block needs: [queue counters][drop reasons][services x object counters][backends x object counters]. */
export function counterBlockWords(layout: AddonLayout, b: Omit<CounterBlocks, 'queues' | 'counterWords'>): number {
  return layout.queueCounters.length + layout.dropReasons.length + (b.maxServices + b.maxBackends) * layout.objectCounters.length;
}

/** Names the words of the counter memory and sums them over queues. */
export function readCounters(words: BigUint64Array, layout: AddonLayout, b: CounterBlocks): CounterSnapshot {
  const { queueCounters, dropReasons, objectCounters } = layout;
  const nq = queueCounters.length;
  const nd = dropReasons.length;
  const no = objectCounters.length;
  const total: CounterMap = {};
  const drops: CounterMap = {};
  const perQueue: CounterMap[] = [];
  const heartbeatsMs: number[] = [];
  const services = new Map<number, CounterMap>();
  const backends = new Map<number, CounterMap>();
  const addObj = (m: Map<number, CounterMap>, slot: number, base: number): void => {
    let nonzero = false;
    for (let k = 0; k < no; k++) if (words[base + k] !== 0n) nonzero = true;
    if (!nonzero) return;
    const o = m.get(slot) ?? zeros(objectCounters);
    for (let k = 0; k < no; k++) o[objectCounters[k]] += Number(words[base + k]);
    m.set(slot, o);
  };
  for (let q = 0; q < b.queues; q++) {
    const base = q * b.counterWords;
    const mine: CounterMap = {};
    queueCounters.forEach((name, i) => {
      const v = Number(words[base + i]);
      if (name === HEARTBEAT_COUNTER) {
        heartbeatsMs.push(v);
        return;
      }
      mine[name] = v;
      total[name] = (total[name] ?? 0) + v;
    });
    perQueue.push(mine);
    dropReasons.forEach((name, i) => {
      if (name === NO_DROP_REASON) return;
      drops[name] = (drops[name] ?? 0) + Number(words[base + nq + i]);
    });
    const objBase = base + nq + nd;
    for (let s = 0; s < b.maxServices; s++) addObj(services, s, objBase + s * no);
    const bkBase = objBase + b.maxServices * no;
    for (let k = 0; k < b.maxBackends; k++) addObj(backends, k, bkBase + k * no);
  }
  return { total, drops, perQueue, heartbeatsMs, services, backends };
}
