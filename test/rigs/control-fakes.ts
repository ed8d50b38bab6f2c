// Fakes for the control plane's unit tests (test/control*.test.ts; no root, no data plane): a Balancer that
// publishes like the real one (serialized, optionally slow, optionally refusing) with per-backend counters the
// test sets, health probes the test answers, a log whose events the test reads, and a running control state.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after } from 'node:test';
import pino from 'pino';
import type { Logger } from '../../src/util/log';
import { loadConfigFile, parseConfig } from '../../src/config/load';
import { DEFAULT_TIMEOUTS, type BackendConfig, type ServiceConfig, type ServiceSpec } from '../../src/config/model';
import { Controller } from '../../src/control/controller';
import type { BalancerLike } from '../../src/control/state';
import { planRuntime } from '../../src/control/plan';
import { ChangeQueue, type QueueHooks } from '../../src/control/queue';
import { ControlState } from '../../src/control/state';
import type { ProbeFn } from '../../src/health/checker';
import type { CounterMap, CounterSnapshot, FlowEntry, FlowFilter, FlowPage, FlowStats } from '../../src/dataplane/native';
import type { FlowStatsPage } from '../../src/dataplane/flow-stats';
import { backendKey, type TableOptions } from '../../src/dataplane/tables';
import type { PublishResult } from '../../src/control/balancer';

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export async function until(what: string, cond: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`not within ${ms} ms: ${what}`);
    await sleep(20);
  }
}

type Dataplane = { -readonly [K in keyof BalancerLike['dp']]: BalancerLike['dp'][K] };

/** The data plane's side of a publish: serialized like the real Balancer, optionally slow, optionally refusing. */
export class FakeBalancer implements BalancerLike {
  published: ServiceSpec[][] = [];
  tableOptions: TableOptions = { hashKey: Buffer.alloc(16), maglevSize: 7, timeouts: { ...DEFAULT_TIMEOUTS }, icmpEcho: true, icmpTranslate: true };
  /** Returns why a table is refused (like the slot allocator or the addon would), or undefined to take it. */
  refuse: ((services: ServiceSpec[]) => string | undefined) | undefined;
  delayMs = 0;
  /** Per backend slot, as the data plane counts. */
  readonly backendCounters = new Map<number, CounterMap>();
  private chain: Promise<unknown> = Promise.resolve();
  private slots = new Map<string, number>();
  private serviceSlots = new Map<string, number>();
  /** The data plane: counters and a flow count; a test adds flow listing, paging, deletes and probes as it needs. */
  readonly dp: Dataplane = {
    counters: (): CounterSnapshot => ({ total: {}, drops: {}, perQueue: [], heartbeatsMs: [], services: new Map(), backends: this.backendCounters }),
    flowCount: (): number => 0,
  };

  setServices(services: ServiceSpec[], t?: TableOptions): Promise<PublishResult> {
    const run = this.chain.then(async () => {
      if (this.delayMs) await sleep(this.delayMs);
      const why = this.refuse?.(services);
      if (why) throw new Error(why);
      this.published.push(services);
      if (t) this.tableOptions = t;
      for (const s of services) {
        const sid = `${s.vip}:${s.port}/${s.proto}`;
        if (!this.serviceSlots.has(sid)) this.serviceSlots.set(sid, this.serviceSlots.size);
        for (const b of s.backends) if (!this.slots.has(backendKey(s, b))) this.slots.set(backendKey(s, b), this.slots.size);
      }
      return { changedSlots: {} };
    });
    this.chain = run.catch(() => undefined);
    return run;
  }

  get last(): ServiceSpec[] {
    return this.published[this.published.length - 1];
  }

  /** The specs last published (the real Balancer's `current`). */
  get current(): readonly ServiceSpec[] {
    return this.published.length ? this.last : [];
  }

  /** The last published table: "addr:port" -> weight, per service in order. */
  table(): Array<Record<string, number>> {
    return this.last.map((s) => Object.fromEntries(s.backends.map((b) => [`${b.addr}:${b.port}`, b.weight])));
  }

  backendSlot(key: string): number | undefined {
    return this.slots.get(key);
  }

  serviceSlot(id: string): number | undefined {
    return this.serviceSlots.get(id);
  }

  /** Sets a backend's counters (by its key, "service id|backend id"); the rest are 0. */
  count(key: string, c: Partial<CounterMap>): void {
    const slot = this.backendSlot(key);
    if (slot === undefined) throw new Error(`no slot for ${key}`);
    this.backendCounters.set(slot, { packets_in: 0, bytes_in: 0, packets_out: 0, bytes_out: 0, new_flows: 0, ...c } as CounterMap);
  }
}

/** Backends answer their health probe while alive; every probe is counted by address. */
export class FakeBackends {
  readonly alive = new Set<string>();
  readonly probes = new Map<string, number>();
  readonly probe: ProbeFn = async (_spec, t) => {
    this.probes.set(t.addr, (this.probes.get(t.addr) ?? 0) + 1);
    return this.alive.has(t.addr) ? { ok: true, ms: 1, detail: '' } : { ok: false, ms: 1, detail: 'connect ECONNREFUSED' };
  };

  count(addr: string): number {
    return this.probes.get(addr) ?? 0;
  }
}

export interface LogEvent {
  level: number;
  event?: string;
  msg: string;
  [k: string]: unknown;
}

/** A logger whose lines the test reads back as objects. */
export function capturedLog(level = 'info', onEvent?: (e: LogEvent) => void): { log: Logger; events: LogEvent[]; of: (event: string) => LogEvent[] } {
  const events: LogEvent[] = [];
  const log = pino({ level }, {
    write: (line: string): void => {
      const e = JSON.parse(line) as LogEvent;
      events.push(e);
      onEvent?.(e);
    },
  });
  return { log, events, of: (event) => events.filter((e) => e.event === event) };
}

/** The services a config file's text makes (the admin listener off: nothing reads a token file). */
export function servicesOf(yaml: string): ServiceConfig[] {
  return parseConfig(`admin: {port: 0}\n${yaml}`, 'test.yaml').services;
}

/** A flow-table entry of the service 10.0.0.10:80/tcp. */
export function flowEntry(backendSlot: number, clientPort: number, state: FlowEntry['state'] = 'ESTABLISHED', idleSeconds = 0, ageSeconds = idleSeconds): FlowEntry {
  return { client: '192.0.2.1', clientPort, vip: '10.0.0.10', vipPort: 80, proto: 'tcp', backendSlot, serviceSlot: 0, state, idleSeconds, ageSeconds };
}

/**
 * A control state running `yaml`'s services (or these, unchecked), published once through a change queue (checkers are not made:
 * the hooks are the test's, no-ops by default), so that the fake Balancer has slots for every backend.
 */
export async function runningState(
  yaml: string | ServiceConfig[],
  hooks: Partial<QueueHooks> = {},
): Promise<{ bal: FakeBalancer; state: ControlState; queue: ChangeQueue; events: LogEvent[]; of: (event: string) => LogEvent[] }> {
  const bal = new FakeBalancer();
  const { log, events, of } = capturedLog();
  const state = new ControlState(bal, log);
  const queue = new ChangeQueue(state, { syncChecker: () => undefined, applied: () => undefined, published: () => undefined, ...hooks });
  await queue.serialized(() => queue.publish(planRuntime(state, typeof yaml === 'string' ? servicesOf(yaml) : yaml, 'config'), 'start'));
  state.running = true;
  return { bal, state, queue, events, of };
}

/** The service 10.0.0.10:80/tcp with two backends, 10.0.1.11:8080 and 10.0.1.12:8080, nothing else set. */
export const TWO_BACKENDS = `
services:
  - name: web
    vips: [10.0.0.10]
    ports: [80]
    backends: ["10.0.1.11:8080", "10.0.1.12:8080"]
`;

/** The key of backend `addr:port` of the service 10.0.0.10:80/tcp. */
export const webKey = (backend: string): string => `10.0.0.10:80/tcp|${backend}/tcp`;

/** A directory for config files, removed after the test file. */
export function configDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** One service, 10.0.0.10:80/tcp, with a tcp check every `interval` s (fall 3, rise 1); the admin listener is off. */
export const checkedConfig = (interval: number, backends: Array<string | { address: string; port: number; weight: number }>, extra = ''): string => `
admin: {port: 0}
services:
  - name: web
    vips: [10.0.0.10]
    ports: [80]
    health_check: {type: tcp, interval: ${interval}, timeout: 0.05, fall: 3, rise: 1, jitter: 0}
    backends: [${backends.map((b) => JSON.stringify(b)).join(', ')}]
${extra}`;

export const WEB = '10.0.0.10:80/tcp';

export const backend = (addr: string, weight = 1): BackendConfig => ({ addr, family: 4, port: 8080, weight });

export interface ControllerSetup {
  bal: FakeBalancer;
  ctrl: Controller;
  hosts: FakeBackends;
  file: string;
  /** The reasons of the tables published, in order (the controller's table_published log events). */
  publishedReasons: string[];
  /** The controller's log events of one kind. */
  of: (event: string) => LogEvent[];
}

/** A started Controller on the config file `text` (written in `dir`), its backends in `hostsUp` answering probes. */
export async function controllerWith(dir: string, text: string, hostsUp: string[] = [], prepare?: (bal: FakeBalancer) => void): Promise<ControllerSetup> {
  const file = join(dir, `c${Math.random().toString(16).slice(2)}.yaml`);
  writeFileSync(file, text);
  const publishedReasons: string[] = [];
  const { log, of } = capturedLog('info', (e) => {
    if (e.event === 'table_published') publishedReasons.push(String(e.reason ?? ''));
  });
  const bal = new FakeBalancer();
  const hosts = new FakeBackends();
  for (const h of hostsUp) hosts.alive.add(h);
  prepare?.(bal);
  const ctrl = new Controller(bal, loadConfigFile(file), log, hosts.probe);
  await ctrl.start();
  return { bal, ctrl, hosts, file, publishedReasons, of };
}

/** The state of the first service's backend at `addr`, as the API shows it. */
export function stateOf(ctrl: Controller, addr: string): string {
  const s = ctrl.current[0];
  const b = s.backends.find((x) => x.addr === addr);
  assert.ok(b, `backend ${addr} is configured`);
  return ctrl.backendState(s, b).state;
}

/** A flow table of `entries` slots, paged like the addon: each call looks at no more than `perCall` of them. */
export class PagedTable {
  entries: Array<FlowEntry | undefined>;
  scans: number[] = []; // entries each listing looked at
  wholeWalks = 0;
  statsPages: number[] = []; // entries each statistics call looked at
  constructor(
    size: number,
    readonly perCall: number,
  ) {
    this.entries = new Array<FlowEntry | undefined>(size).fill(undefined);
  }

  attach(bal: FakeBalancer): void {
    Object.assign(bal.dp, {
      flowCapacity: this.entries.length,
      flowCount: (): number => {
        this.wholeWalks++;
        return this.entries.filter(Boolean).length;
      },
      flows: (f: FlowFilter): FlowEntry[] => {
        this.wholeWalks++;
        return this.entries.filter((e): e is FlowEntry => !!e && (f.backendSlot === undefined || e.backendSlot === f.backendSlot)).slice(0, f.limit ?? 1000);
      },
      flowPage: (f: FlowFilter, maxCalls = 1): FlowPage => {
        const start = f.cursor ?? 0;
        const end = Math.min(this.entries.length, start + this.perCall * maxCalls);
        this.scans.push(end - start);
        const flows = this.entries.slice(start, end).filter((e): e is FlowEntry => !!e && (f.backendSlot === undefined || e.backendSlot === f.backendSlot));
        return { flows, next: end >= this.entries.length ? null : end };
      },
      flowStats: (): FlowStats => {
        this.wholeWalks++;
        return this.statsOf(0, this.entries.length);
      },
      flowStatsPage: (cursor: number): FlowStatsPage => {
        const end = Math.min(this.entries.length, cursor + this.perCall);
        this.statsPages.push(end - cursor);
        return { ...this.statsOf(cursor, end), next: end >= this.entries.length ? null : end };
      },
      deleteFlows: async (f: FlowFilter): Promise<number> => {
        await sleep(5);
        const before = this.entries.filter(Boolean).length;
        this.entries = this.entries.map((e) => (e && e.backendSlot === f.backendSlot ? undefined : e));
        return before - this.entries.filter(Boolean).length;
      },
    });
  }

  private statsOf(start: number, end: number): FlowStats {
    const live = this.entries.slice(start, end).filter((e): e is FlowEntry => !!e);
    const backends = new Uint32Array(8);
    for (const e of live) if (e.state !== 'CLOSE') backends[e.backendSlot]++;
    return { total: live.length, closed: live.filter((e) => e.state === 'CLOSE').length, backends, services: new Uint32Array(4) };
  }
}
