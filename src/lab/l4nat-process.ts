// l4nat as a child process inside the lab's lb namespace.
// Layers: lab.ts (namespaces, tracked processes) → this file → bin/l4nat.js (the real CLI, unmodified).
//
// Contract with the CLI:
//   ip netns exec <lb> node <repo>/bin/l4nat.js up --vip V [--vip V6] --port 8080/tcp --port 8080/udp
//       --backend 10.201.1.2:8080 --backend [fd4c:0:1::2]:8080 ... [extra args such as --hash src, --queues N]
//   Backends are matched to VIPs by address family. l4nat logs pino JSON lines on stdout and is ready when it logs
//   {"msg":"l4nat ready"}. SIGTERM stops it; its exit code is reported.
import { existsSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import type { Lab } from './lab';
import { AUTH_HEADER_JS, DEFAULT_ADMIN_TOKEN_FILE } from './admin-client';
import type { ExitStatus, NsProcess } from './netns';
import { SERVICE_PORT } from './workload';

export const READY_MSG = 'l4nat ready';

/**
 * The l4nat checkout to run: $L4NAT_LAB_ROOT when set (e.g. another build), else this repository (seen from
 * dist/src/lab or src/lab).
 */
export function repoRoot(): string {
  const env = process.env.L4NAT_LAB_ROOT;
  if (env !== undefined && env !== '') return path.resolve(env);
  return path.resolve(__dirname, '..', '..', __dirname.includes(`${path.sep}dist${path.sep}`) ? '..' : '');
}

/** Why l4nat cannot be started from this checkout, or null when it can (bin entry and compiled CLI exist). */
export function l4natUnavailable(root = repoRoot()): string | null {
  const bin = path.join(root, 'bin', 'l4nat.js');
  if (!existsSync(bin)) return `${bin} is missing`;
  // The compiled CLI that bin/l4nat.js loads: dist/src/cli/main.js, or dist/src/cli.js in a checkout from before the
  // src/ folders (the benchmark's --baseline may run one).
  const cli = path.join(root, 'dist', 'src', 'cli', 'main.js');
  if (!existsSync(cli) && !existsSync(path.join(root, 'dist', 'src', 'cli.js'))) return `${cli} is missing (l4nat CLI not built)`;
  return null;
}

/** `ADDR:PORT[@WEIGHT]`, with IPv6 addresses in brackets. */
export function formatBackend(addr: string, port?: number, weight?: number): string {
  const host = net.isIPv6(addr) ? `[${addr}]` : addr;
  return `${host}${port !== undefined ? `:${port}` : ''}${weight !== undefined ? `@${weight}` : ''}`;
}

export interface L4natOptions {
  /** Default: the lab's VIPs (v4, and v6 when the lab has IPv6). */
  vips?: readonly string[];
  /** Default: ['8080/tcp', '8080/udp']. */
  ports?: readonly string[];
  /** Which lab backends to configure (default: all). Ignored when `backends` is given. */
  backendIds?: readonly string[];
  /** Explicit --backend values (ADDR[:PORT][@WEIGHT]). */
  backends?: readonly string[];
  /** Port the lab backends listen on (default 8080). */
  backendPort?: number;
  /** Appended after the generated arguments (e.g. ['--hash', 'src', '--queues', '2']). */
  extraArgs?: readonly string[];
  readyTimeoutMs?: number;
  /** Extra environment; L4NAT_LOG_LEVEL defaults to "info". */
  env?: NodeJS.ProcessEnv;
  /** Checkout to run (default: this one). */
  root?: string;
}

/** The `l4nat up ...` arguments for a lab (everything after `bin/l4nat.js`). */
export function l4natArgs(lab: Lab, opts: L4natOptions = {}): string[] {
  const vips = opts.vips ?? (lab.vip6 !== null ? [lab.vip4, lab.vip6] : [lab.vip4]);
  const ports = opts.ports ?? [`${SERVICE_PORT}/tcp`, `${SERVICE_PORT}/udp`];
  let backends: readonly string[];
  if (opts.backends !== undefined) backends = opts.backends;
  else {
    const ids = opts.backendIds ?? lab.backends.map((b) => b.id);
    const port = opts.backendPort ?? SERVICE_PORT;
    backends = ids.flatMap((id) => {
      const b = lab.backend(id);
      const out = [formatBackend(b.ipv4, port)];
      if (b.ipv6 !== null && vips.some((v) => net.isIPv6(v))) out.push(formatBackend(b.ipv6, port));
      return out;
    });
  }
  return [
    'up',
    ...vips.flatMap((v) => ['--vip', v]),
    ...ports.flatMap((p) => ['--port', p]),
    ...backends.flatMap((b) => ['--backend', b]),
    ...(opts.extraArgs ?? []),
  ];
}

/** One line of l4nat's stdout: the parsed pino object, or null for a non-JSON line. */
export interface L4natLogLine {
  raw: string;
  json: Record<string, unknown> | null;
}

function parseLine(raw: string): L4natLogLine {
  if (raw.startsWith('{')) {
    try {
      return { raw, json: JSON.parse(raw) as Record<string, unknown> };
    } catch {
      // Fall through.
    }
  }
  return { raw, json: null };
}

/** A running l4nat (see startL4nat). */
export class L4natProcess {
  readonly args: readonly string[];
  private stopped: Promise<ExitStatus & { forced: boolean }> | null = null;

  constructor(
    readonly lab: Lab,
    readonly proc: NsProcess,
    args: readonly string[],
  ) {
    this.args = args;
  }

  get pid(): number | undefined {
    return this.proc.pid;
  }

  get running(): boolean {
    return this.proc.running;
  }

  /** Every stdout line so far (bounded by NsProcess), parsed. */
  get lines(): L4natLogLine[] {
    return this.proc.stdoutLines.map(parseLine);
  }

  /** The parsed JSON log records so far. */
  logs(): Record<string, unknown>[] {
    return this.lines.flatMap((l) => (l.json ? [l.json] : []));
  }

  get stderr(): readonly string[] {
    return this.proc.stderrLines;
  }

  /** Waits for a log record (past or future) matching `pred`. */
  async waitForLog(pred: (rec: Record<string, unknown>) => boolean, timeoutMs: number, what = 'log line'): Promise<Record<string, unknown>> {
    const line = await this.proc.waitForLine(
      (l) => {
        const p = parseLine(l);
        return p.json !== null && pred(p.json);
      },
      { timeoutMs, what, stream: 'stdout' },
    );
    return parseLine(line).json!;
  }

  /** SIGTERM, then SIGKILL after timeoutMs. Idempotent; resolves with the exit status. */
  stop(timeoutMs = 10_000): Promise<ExitStatus & { forced: boolean }> {
    this.stopped ??= this.proc.stop({ signal: 'SIGTERM', timeoutMs });
    return this.stopped;
  }
}

/**
 * Starts l4nat in the lab's lb namespace and waits for "l4nat ready". On failure (exit, timeout) the process is
 * stopped and the error quotes its stdout and stderr.
 */
export async function startL4nat(lab: Lab, opts: L4natOptions = {}): Promise<L4natProcess> {
  const root = opts.root ?? repoRoot();
  const missing = l4natUnavailable(root);
  if (missing !== null) throw new Error(`cannot start l4nat: ${missing}`);
  const args = l4natArgs(lab, opts);
  const proc = lab.spawn('lb', process.execPath, [path.join(root, 'bin', 'l4nat.js'), ...args], {
    env: { ...process.env, L4NAT_LOG_LEVEL: process.env.L4NAT_LOG_LEVEL ?? 'info', ...opts.env },
    cwd: root,
  });
  const l4 = new L4natProcess(lab, proc, args);
  try {
    await l4.waitForLog((r) => r.msg === READY_MSG, opts.readyTimeoutMs ?? 20_000, `"${READY_MSG}" log line`);
  } catch (err) {
    await l4.stop(3_000);
    throw err;
  }
  return l4;
}

/**
 * Adds a lab backend to a running l4nat without restarting it, through its admin API (loopback inside the
 * lb namespace, with the token l4nat created): the backend joins every service of its address families.
 */
export async function addBackend(lab: Lab, l4nat: L4natProcess, backendId: string, port = SERVICE_PORT): Promise<void> {
  const b = lab.backend(backendId);
  void l4nat;
  const script = `${AUTH_HEADER_JS}
    const [b4, b6, port, tokenFile] = process.argv.slice(1);
    (async () => {
      const base = 'http://127.0.0.1:9180/v1/services';
      const auth = authHeader(tokenFile);
      const view = await (await fetch(base, { headers: auth })).json();
      for (const s of view.services) {
        const addr = s.vip.includes(':') ? (b6 ? '[' + b6 + ']' : '') : b4;
        if (!addr) continue;
        const r = await fetch(base + '/' + encodeURIComponent(s.id) + '/backends', {
          method: 'POST', headers: { ...auth, 'content-type': 'application/json' },
          body: JSON.stringify({ backend: addr + ':' + port }),
        });
        if (r.status !== 201) throw new Error(s.id + ': ' + r.status + ' ' + (await r.text()));
      }
    })().catch((e) => { console.error(e.message); process.exit(1); });`;
  await lab.exec('lb', process.execPath, ['-e', script, b.ipv4, b.ipv6 ?? '', String(port), DEFAULT_ADMIN_TOKEN_FILE]);
}
