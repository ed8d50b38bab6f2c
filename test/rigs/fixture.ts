// The namespace fixture of the integration tests: a lab built for one test, its backend servers, l4nat started from
// flags or from a config file, and, whatever the test did, everything taken down after it: every l4nat it knows of
// stopped with SIGTERM (so each removes its TUN, routes and rules), then the lab (its other processes and
// namespaces), then the test's own clean-ups, then the scratch directory. Also what those tests poll and write:
// waitUntil, config files for a lab, the rig scripts run as child processes by path.
// Layers: src/lab (lab, l4nat-process, workload) → this file → test/*.test.ts.
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { stringify } from 'yaml';
import { createLab, VIP4, VIP6, type Lab, type LabBackend, type LabOptions } from '../../src/lab/lab';
import { L4natProcess, startL4nat, type L4natOptions } from '../../src/lab/l4nat-process';
import type { NsProcess } from '../../src/lab/netns';
import { startBackendServers, type BackendServersOptions } from '../../src/lab/workload';

export interface WithLabOptions extends LabOptions {
  /** Backend servers: in every backend (default), as these options say, or none (false). */
  servers?: boolean | BackendServersOptions;
  /** Start l4nat before the test body, with these options (or with `config`). */
  l4nat?: L4natOptions;
  /** Start l4nat before the test body from this config file (written to `configFile`), `l4nat`'s options added. */
  config?: (lab: Lab) => string;
}

/** Something the fixture stops at the end (an l4nat, however it was started). */
export interface Stoppable {
  stop(timeoutMs?: number): Promise<unknown>;
}

export interface LabFixture {
  readonly lab: Lab;
  /** A scratch directory, removed at the end. */
  readonly dir: string;
  /** dir/l4nat.yaml: where `config` is written (a test rewrites it to reload). */
  readonly configFile: string;
  /** The backend servers started, in the order of their backends. */
  readonly servers: NsProcess[];
  /** The l4nat started before the body (by `l4nat` or `config`); throws when none was. */
  readonly l4: L4natProcess;
  /** Starts an l4nat in the lab (stopped at the end). */
  start(opts?: L4natOptions): Promise<L4natProcess>;
  /** Writes `text` to `configFile` and starts l4nat from it (stopped at the end). */
  startFromConfig(text: string, opts?: L4natOptions): Promise<L4natProcess>;
  /** A process started otherwise (another user, a sandbox): stopped at the end like the others. */
  track<P extends Stoppable>(p: P): P;
  /** Runs after the lab is gone, before the scratch directory is removed (sockets, listeners). */
  defer(fn: () => void | Promise<void>): void;
}

/** The arguments that start l4nat from a config file and nothing else. */
function fromConfig(file: string, opts: L4natOptions = {}): L4natOptions {
  return { vips: [], ports: [], backends: [], ...opts, extraArgs: ['--config', file, ...(opts.extraArgs ?? [])] };
}

/**
 * Builds a lab, starts what `opts` asks for, runs `body`, and takes everything down again, also when set-up or the
 * body fails.
 */
export async function withLab<T>(opts: WithLabOptions, body: (fx: LabFixture) => Promise<T>): Promise<T> {
  const { servers, l4nat, config, ...labOpts } = opts;
  const dir = mkdtempSync(path.join(tmpdir(), 'l4nat-lab-'));
  const configFile = path.join(dir, 'l4nat.yaml');
  const stoppable: Stoppable[] = [];
  const deferred: Array<() => void | Promise<void>> = [];
  let created: Lab | null = null;
  try {
    const lab = await createLab(labOpts);
    created = lab;
    const started = servers === false ? [] : await startBackendServers(lab, servers === true || servers === undefined ? {} : servers);
    const track = <P extends Stoppable>(p: P): P => {
      stoppable.push(p);
      return p;
    };
    const start = async (o: L4natOptions = {}): Promise<L4natProcess> => track(await startL4nat(lab, o));
    const startFromConfig = (text: string, o: L4natOptions = {}): Promise<L4natProcess> => {
      writeFileSync(configFile, text);
      return start(fromConfig(configFile, o));
    };
    const first = config !== undefined ? await startFromConfig(config(lab), l4nat) : l4nat !== undefined ? await start(l4nat) : null;
    const fx: LabFixture = {
      lab,
      dir,
      configFile,
      servers: started,
      get l4() {
        if (first === null) throw new Error('withLab: no l4nat was started before the test (give `l4nat` or `config`)');
        return first;
      },
      start,
      startFromConfig,
      track,
      defer: (fn) => void deferred.push(fn),
    };
    return await body(fx);
  } catch (err) {
    // A failed test says how each l4nat it started ended (or that it still runs) and the last of its log, so a
    // failure seen only in CI (a refused request, a reset connection) can be told from a crash of l4nat itself.
    for (const p of stoppable) if (p instanceof L4natProcess) console.error(postMortem(p));
    throw err;
  } finally {
    for (const p of stoppable.reverse()) await p.stop();
    await created?.destroy();
    for (const fn of deferred) await fn();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** How an l4nat stands after a failed test: running or its exit status, then its last log lines and stderr. */
function postMortem(p: L4natProcess, lines = 25): string {
  const st = p.proc.exitStatus;
  const state = st === null ? 'still running' : `exited (code ${st.code}, signal ${st.signal})`;
  const tail = (xs: readonly string[]): string => xs.slice(-lines).map((l) => `  ${l}`).join('\n');
  return `l4nat pid ${p.pid} ${state}\n last log lines:\n${tail(p.proc.stdoutLines)}\n stderr:\n${tail(p.stderr)}`;
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Polls `fn` every `everyMs` until it returns true; resolves with the milliseconds that took, throws after `timeoutMs`. */
export async function waitUntil(what: string, fn: () => boolean | Promise<boolean>, timeoutMs: number, everyMs = 50): Promise<number> {
  const t0 = Date.now();
  for (;;) {
    if (await fn()) return Date.now() - t0;
    if (Date.now() - t0 > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(everyMs);
  }
}

/** A config file's text (YAML) from its parts, as the config reference names them. */
export function configText(doc: { global?: Record<string, unknown>; admin?: Record<string, unknown>; services: ReadonlyArray<Record<string, unknown>> }): string {
  return stringify(doc);
}

/** A service's `backends:` entries for lab backends: each one's IPv4 address (and IPv6 too with `v6`), port and name. */
export function labBackends(lab: Lab, opts: { ids?: readonly string[]; port?: number; v6?: boolean } = {}): Array<Record<string, unknown>> {
  const ids = opts.ids ?? lab.backends.map((b) => b.id);
  return ids.flatMap((id) => {
    const b = lab.backend(id);
    const addrs = opts.v6 ? [b.ipv4, b.ipv6!] : [b.ipv4];
    return addrs.map((address) => ({ address, ...(opts.port !== undefined ? { port: opts.port } : {}), name: id }));
  });
}

/** A Lab with only its VIPs and these backends, for unit tests of functions that read nothing else (no namespaces). */
export function paperLab(backends: ReadonlyArray<Partial<LabBackend> & { id: string }>): Lab {
  return { vip4: VIP4, vip6: VIP6, backends, backend: (id: string) => backends.find((b) => b.id === id)! } as unknown as Lab;
}

/** Absolute path of a compiled rig script that tests run as a child process (e.g. dist/test/rigs/api-storm.js). */
export function rigScript(name: 'probe' | 'icmp-responder' | 'api-storm' | 'inspector' | 'port-reuse'): string {
  const p = path.join(__dirname, `${name}.js`);
  if (!existsSync(p)) throw new Error(`${p} is missing: build with \`npx tsc -p tsconfig.json\``);
  return p;
}
