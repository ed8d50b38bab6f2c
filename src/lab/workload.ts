// Lab workload: backend servers in the backend namespaces and the client driver in the client namespace.
// Layers: lab.ts (namespaces, processes) → this file → backend-server.ts / client-driver.ts (run as child processes
// with `ip netns exec`, so each really lives in its namespace).
import { existsSync } from 'node:fs';
import path from 'node:path';
import type { RequestReport, StreamConnReport, StreamReport } from './client-driver';
import type { Lab } from './lab';
import type { NsProcess } from './netns';

/** The port the lab's services listen on (TCP and UDP). */
export const SERVICE_PORT = 8080;

/** Absolute path of a compiled lab script (this directory, e.g. dist/src/lab/backend-server.js). */
export function labScript(name: 'backend-server' | 'client-driver'): string {
  const p = path.join(__dirname, `${name}.js`);
  if (!existsSync(p)) throw new Error(`${p} is missing: build with \`npx tsc -p tsconfig.json\``);
  return p;
}

/** The last JSON object line of a process's stdout that satisfies `pred`. */
function lastJsonLine<T>(proc: NsProcess, pred: (o: Record<string, unknown>) => boolean): T | null {
  for (let i = proc.stdoutLines.length - 1; i >= 0; i--) {
    const line = proc.stdoutLines[i]!;
    if (!line.startsWith('{')) continue;
    try {
      const o = JSON.parse(line) as Record<string, unknown>;
      if (pred(o)) return o as T;
    } catch {
      // Not JSON.
    }
  }
  return null;
}

function isJsonWith(key: string, value?: unknown): (line: string) => boolean {
  return (line) => {
    if (!line.startsWith('{')) return false;
    try {
      const o = JSON.parse(line) as Record<string, unknown>;
      return value === undefined ? key in o : o[key] === value;
    } catch {
      return false;
    }
  };
}

export interface BackendServersOptions {
  /** Backend ids to start (default: all of the lab's backends). */
  ids?: readonly string[];
  ports?: readonly number[];
  readyTimeoutMs?: number;
}

/** Starts backend-server in each backend namespace and waits until every one is listening. */
export async function startBackendServers(lab: Lab, opts: BackendServersOptions = {}): Promise<NsProcess[]> {
  const script = labScript('backend-server');
  const ids = opts.ids ?? lab.backends.map((b) => b.id);
  const ports = opts.ports ?? [SERVICE_PORT];
  const procs = ids.map((id) => {
    const b = lab.backend(id);
    return lab.spawn(b.role, process.execPath, [script, '--name', b.id, ...ports.flatMap((p) => ['--port', String(p)])]);
  });
  await Promise.all(
    procs.map((p) =>
      p.waitForLine(isJsonWith('ready', true), {
        timeoutMs: opts.readyTimeoutMs ?? 10_000,
        what: 'ready line',
        stream: 'stdout',
      }),
    ),
  );
  return procs;
}

export interface ClientRequestOptions {
  target: string;
  port?: number;
  proto?: 'tcp' | 'udp';
  count: number;
  concurrency?: number;
  /** Total deadline for the whole run. */
  timeoutMs?: number;
  connTimeoutMs?: number;
  udpRetries?: number;
  udpRtoMs?: number;
}

function driverArgs(o: Record<string, string | number | undefined>): string[] {
  const args: string[] = [];
  for (const [k, v] of Object.entries(o)) {
    if (v === undefined) continue;
    args.push(`--${k}`, String(v));
  }
  return args;
}

/** Runs the client driver (request mode) in the client namespace and returns its report. */
export async function runClient(lab: Lab, o: ClientRequestOptions): Promise<RequestReport> {
  const timeoutMs = o.timeoutMs ?? 60_000;
  const args = driverArgs({
    target: o.target,
    port: o.port ?? SERVICE_PORT,
    proto: o.proto ?? 'tcp',
    count: o.count,
    concurrency: o.concurrency ?? 32,
    'timeout-ms': timeoutMs,
    'conn-timeout-ms': o.connTimeoutMs,
    'udp-retries': o.udpRetries,
    'udp-rto-ms': o.udpRtoMs,
  });
  const proc = lab.spawn('client', process.execPath, [labScript('client-driver'), ...args]);
  // The driver bounds itself; this guard only catches a wedged process.
  const guard = setTimeout(() => proc.kill('SIGKILL'), timeoutMs + 20_000);
  const st = await proc.exited;
  clearTimeout(guard);
  const report = lastJsonLine<RequestReport>(proc, (x) => x.mode === 'requests');
  if (st.code !== 0 || report === null) {
    throw new Error(`client driver failed (code ${st.code}, signal ${st.signal}): ${proc.describe()}\n${proc.tail()}`);
  }
  return report;
}

export interface StreamRunOptions {
  target: string;
  port?: number;
  streams: number;
  durationMs: number;
  chunkBytes?: number;
  intervalMs?: number;
  windowBytes?: number;
  drainMs?: number;
  stallMs?: number;
  connTimeoutMs?: number;
}

export interface StreamStatus {
  event: 'status';
  conns: StreamConnReport[];
  bytesVerified: number;
  failed: number;
}

/** A running stream-mode client driver. */
export interface StreamRun {
  readonly proc: NsProcess;
  /** Resolves once every connection is set up and streaming (or has failed to). */
  readonly streaming: Promise<{ established: number; failed: number }>;
  /** Asks the driver for its current per-connection state (SIGUSR1). */
  status(timeoutMs?: number): Promise<StreamStatus>;
  /** Ends the writing phase early (SIGTERM); the driver still drains and reports. */
  stop(): void;
  /** The final report. */
  readonly result: Promise<StreamReport>;
}

/** Starts the client driver in stream mode in the client namespace. */
export function startStreams(lab: Lab, o: StreamRunOptions): StreamRun {
  const args = driverArgs({
    target: o.target,
    port: o.port ?? SERVICE_PORT,
    streams: o.streams,
    'duration-ms': o.durationMs,
    'chunk-bytes': o.chunkBytes,
    'interval-ms': o.intervalMs,
    'window-bytes': o.windowBytes,
    'drain-ms': o.drainMs,
    'stall-ms': o.stallMs,
    'conn-timeout-ms': o.connTimeoutMs,
  });
  const proc = lab.spawn('client', process.execPath, [labScript('client-driver'), ...args]);
  const bound = (o.connTimeoutMs ?? 5_000) + o.durationMs + (o.drainMs ?? 5_000) + 30_000;
  const streaming = proc
    .waitForLine(isJsonWith('event', 'streaming'), { timeoutMs: (o.connTimeoutMs ?? 5_000) + 10_000, what: 'streaming line', stream: 'stdout' })
    .then((l) => {
      const o = JSON.parse(l) as { established: number; failed: number };
      return { established: o.established, failed: o.failed };
    });
  const result = (async (): Promise<StreamReport> => {
    const guard = setTimeout(() => proc.kill('SIGKILL'), bound);
    const st = await proc.exited;
    clearTimeout(guard);
    const report = lastJsonLine<StreamReport>(proc, (x) => x.mode === 'streams');
    if (st.code !== 0 || report === null) {
      throw new Error(`stream driver failed (code ${st.code}, signal ${st.signal}): ${proc.describe()}\n${proc.tail()}`);
    }
    return report;
  })();
  // Callers may only await one of them; never leave an unhandled rejection behind.
  streaming.catch(() => undefined);
  result.catch(() => undefined);
  return {
    proc,
    streaming,
    result,
    stop: () => {
      // Like SIGUSR1, SIGTERM is handled (drain and report) only once the driver is streaming.
      const term = (): void => proc.kill('SIGTERM');
      void streaming.then(term, term);
    },
    async status(timeoutMs = 5_000): Promise<StreamStatus> {
      // The driver installs its SIGUSR1 handler before it reports "streaming"; before that SIGUSR1 would kill it.
      await streaming;
      return new Promise((resolve, reject) => {
        const off = proc.onLine((line, stream) => {
          if (stream !== 'stdout' || !isJsonWith('event', 'status')(line)) return;
          clearTimeout(timer);
          off();
          resolve(JSON.parse(line) as StreamStatus);
        });
        const timer = setTimeout(() => {
          off();
          reject(new Error(`no status line from ${proc.describe()} within ${timeoutMs} ms\n${proc.tail()}`));
        }, timeoutMs);
        proc.kill('SIGUSR1');
      });
    },
  };
}
