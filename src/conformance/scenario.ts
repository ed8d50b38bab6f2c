// The pieces every check's scenario is built from: a lab that is always removed, a target that is always stopped,
// the conformance servers (server.ts, tcpkit tfo-server) in the backends, the clients (client.ts, tcpkit client)
// in the client namespace, and the events and replies they print.
// Layers: lab/ (namespaces, processes), target.ts → this file → checks/*.ts.
import path from 'node:path';
import { createLab, Lab, LabOptions, normalizeAddress } from '../lab/lab';
import type { NsProcess } from '../lab/netns';
import { tcpkit } from './kernel';
import { startTarget, Target, TargetKind, TargetOptions } from './target';

/** The port the conformance servers listen on, and the port of the lab's VIP service. */
export const PORT = 8080;
export const MiB = 1024 * 1024;

/** Builds a lab, runs fn, always removes the lab. */
export async function withLab<T>(opts: LabOptions, fn: (lab: Lab) => Promise<T>): Promise<T> {
  const lab = await createLab(opts);
  try {
    return await fn(lab);
  } finally {
    await lab.destroy();
  }
}

/** Starts the target, runs fn, always stops the target. */
export async function withTarget<T>(lab: Lab, kind: TargetKind, o: TargetOptions, fn: (t: Target) => Promise<T>): Promise<T> {
  const t = await startTarget(lab, kind, o);
  try {
    return await fn(t);
  } finally {
    await t.stop();
  }
}

function script(name: 'server' | 'client'): string {
  return path.join(__dirname, `${name}.js`);
}

function jsonLines(proc: NsProcess): Record<string, unknown>[] {
  return proc.stdoutLines.flatMap((l) => {
    if (!l.startsWith('{')) return [];
    try {
      return [JSON.parse(l) as Record<string, unknown>];
    } catch {
      return [];
    }
  });
}

const isReady = (l: string): boolean => l.startsWith('{"ready":true');

/** Starts server.ts in each backend namespace. */
export async function startServers(lab: Lab, ids = lab.backends.map((b) => b.id)): Promise<Map<string, NsProcess>> {
  const procs = new Map(ids.map((id) => [id, lab.spawn(id, process.execPath, [script('server'), '--name', id, '--port', String(PORT)])] as const));
  await Promise.all([...procs.values()].map((p) => p.waitForLine(isReady, { timeoutMs: 10_000, what: 'server ready line', stream: 'stdout' })));
  return procs;
}

/** Starts `tcpkit tfo-server` in each backend namespace. */
export async function startTfoServers(lab: Lab, ids = lab.backends.map((b) => b.id)): Promise<Map<string, NsProcess>> {
  const bin = await tcpkit();
  const procs = new Map(ids.map((id) => [id, lab.spawn(id, bin, ['tfo-server', '--name', id, '--port', String(PORT)])] as const));
  await Promise.all([...procs.values()].map((p) => p.waitForLine(isReady, { timeoutMs: 10_000, what: 'tfo-server ready line', stream: 'stdout' })));
  return procs;
}

export interface ServerEvent extends Record<string, unknown> {
  backend: string;
  event?: string;
  peer?: string;
  peerPort?: number;
}

/** Every JSON event the servers printed, tagged with the backend that printed it. */
export function serverEvents(procs: Map<string, NsProcess>): ServerEvent[] {
  return [...procs].flatMap(([backend, p]) => jsonLines(p).filter((o) => o.ready !== true).map((o) => ({ backend, ...o })));
}

/** Waits until some server printed an event matching pred (or the timeout passes: null). */
export async function waitServerEvent(procs: Map<string, NsProcess>, pred: (e: ServerEvent) => boolean, timeoutMs = 10_000): Promise<ServerEvent | null> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const e = serverEvents(procs).find(pred);
    if (e) return e;
    if (Date.now() > deadline) return null;
    await new Promise((r) => setTimeout(r, 50));
  }
}

export interface ClientRun {
  proc: NsProcess;
  result: Promise<Record<string, unknown>>;
}

/** Runs client.ts in the client namespace; `result` is its result line. */
export function startClient(lab: Lab, mode: string, flags: Record<string, string | number>): ClientRun {
  const args = [script('client'), mode, ...Object.entries(flags).flatMap(([k, v]) => [`--${k}`, String(v)])];
  const proc = lab.spawn('client', process.execPath, args, { maxLines: 50_000 });
  const result = (async () => {
    const st = await proc.exited;
    const r = jsonLines(proc).find((o) => o.result === true);
    if (!r) throw new Error(`client ${mode} gave no result (code ${st.code}, signal ${st.signal})\n${proc.tail()}`);
    return r;
  })();
  result.catch(() => undefined);
  return { proc, result };
}

export function runConformanceClient(lab: Lab, mode: string, flags: Record<string, string | number>): Promise<Record<string, unknown>> {
  return startClient(lab, mode, flags).result;
}

export interface TcpkitResult {
  ok: boolean;
  localAddr: string;
  localPort: number;
  replies: string[];
  synDataAcked: boolean;
  error: string | null;
}

/** `tcpkit client ...` in the client namespace. */
export async function tcpkitClient(lab: Lab, args: readonly string[]): Promise<TcpkitResult> {
  const bin = await tcpkit();
  let stdout: string;
  try {
    ({ stdout } = await lab.exec('client', bin, ['client', ...args], { timeoutMs: 60_000 }));
  } catch (err) {
    // Exit status 1 still prints the JSON line (ok: false).
    stdout = (err as { stdout?: string }).stdout ?? '';
    if (!stdout.startsWith('{')) throw err;
  }
  return JSON.parse(stdout.trim().split('\n').pop()!) as TcpkitResult;
}

/** "b1 10.201.0.2 40000" → parts. */
export function parseReply(line: string | null | undefined): { backend: string; addr: string; port: number } | null {
  const m = /^(\S+) (\S+) (\d+)$/.exec(line ?? '');
  return m ? { backend: m[1]!, addr: normalizeAddress(m[2]!), port: Number(m[3]) } : null;
}

export function mib(n: number): string {
  return n >= MiB ? `${+(n / MiB).toFixed(1)} MiB` : `${+(n / 1024).toFixed(1)} KiB`;
}

export function shortSha(s: unknown): string {
  return typeof s === 'string' ? `${s.slice(0, 12)}…` : String(s);
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

export function vipFor(lab: Lab, family: 4 | 6): string {
  return family === 4 ? lab.vip4 : lab.vip6!;
}

