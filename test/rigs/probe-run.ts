// The reliability probe (probe.ts) from the orchestrator's side: started in the lab's client namespace as a lab
// process (lab.destroy() stops it), with its ready line, SIGUSR1 status and final report parsed.
// Layers: src/lab/lab.ts (processes in namespaces) → this file → tests.
import type { Lab } from '../../src/lab/lab';
import type { NsProcess } from '../../src/lab/netns';
import { rigScript } from './fixture';
import type { ProbeReport } from './probe';

export interface ProbeRunOptions {
  target: string;
  port?: number;
  streams?: number;
  idle?: number;
  intervalMs?: number;
  chunkBytes?: number;
  udpRate?: number;
  connRate?: number;
  durationMs: number;
  binMs?: number;
  connTimeoutMs?: number;
}

export interface ProbeRun {
  readonly proc: NsProcess;
  /** Every connection set up (or failed to): how many failed. */
  readonly ready: Promise<{ failed: number; at: number }>;
  status(timeoutMs?: number): Promise<ProbeReport>;
  /** Ends the run early (SIGTERM): the probe drains, pings and reports. */
  stop(): void;
  readonly report: Promise<ProbeReport>;
}

export interface AttemptSummary {
  attempts: number;
  ok: number;
  failed: number;
  /** ok / attempts, 1 when there were none. */
  rate: number;
  errors: Record<string, number>;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
}

/** New-connection attempts that *started* in [from, to) (epoch ms; default: all), summed up. */
export function summarizeAttempts(r: ProbeReport, from = -Infinity, to = Infinity): AttemptSummary {
  const xs = r.attempts.filter((a) => a[0] >= from && a[0] < to);
  const ok = xs.filter((a) => a[3] === 1);
  const errors: Record<string, number> = {};
  for (const a of xs) if (a[3] === 0) errors[a[2]] = (errors[a[2]] ?? 0) + 1;
  const ms = ok.map((a) => a[1]).sort((a, b) => a - b);
  const pct = (p: number): number => (ms.length ? ms[Math.min(ms.length - 1, Math.ceil((p / 100) * ms.length) - 1)]! : NaN);
  return { attempts: xs.length, ok: ok.length, failed: xs.length - ok.length, rate: xs.length ? ok.length / xs.length : 1, errors, p50Ms: pct(50), p99Ms: pct(99), maxMs: ms.length ? ms[ms.length - 1]! : NaN };
}

function lastJson(proc: NsProcess, event: string): Record<string, unknown> | null {
  for (let i = proc.stdoutLines.length - 1; i >= 0; i--) {
    const l = proc.stdoutLines[i]!;
    if (!l.startsWith('{')) continue;
    try {
      const o = JSON.parse(l) as Record<string, unknown>;
      if (o.event === event) return o;
    } catch {
      // not JSON
    }
  }
  return null;
}

export function startProbe(lab: Lab, o: ProbeRunOptions, role = 'client'): ProbeRun {
  const args: string[] = ['--target', o.target, '--duration-ms', String(o.durationMs)];
  const opt = (k: string, v: number | undefined): void => {
    if (v !== undefined) args.push(`--${k}`, String(v));
  };
  opt('port', o.port);
  opt('streams', o.streams);
  opt('idle', o.idle);
  opt('interval-ms', o.intervalMs);
  opt('chunk-bytes', o.chunkBytes);
  opt('udp-rate', o.udpRate);
  opt('conn-rate', o.connRate);
  opt('bin-ms', o.binMs);
  opt('conn-timeout-ms', o.connTimeoutMs);
  const proc = lab.spawn(role, process.execPath, [rigScript('probe'), ...args], { maxLines: 100 });
  const isEvent = (ev: string) => (l: string): boolean => l.startsWith(`{"event":"${ev}"`);
  const ready = proc
    .waitForLine(isEvent('ready'), { timeoutMs: (o.connTimeoutMs ?? 5_000) * 2 + 20_000, what: 'probe ready line', stream: 'stdout' })
    .then((l) => JSON.parse(l) as { failed: number; at: number });
  const report = (async (): Promise<ProbeReport> => {
    const guard = setTimeout(() => proc.kill('SIGKILL'), o.durationMs + 60_000);
    const st = await proc.exited;
    clearTimeout(guard);
    const r = lastJson(proc, 'report');
    if (st.code !== 0 || r === null) throw new Error(`probe failed (code ${st.code}, signal ${st.signal}): ${proc.describe()}\n${proc.tail()}`);
    return r as unknown as ProbeReport;
  })();
  ready.catch(() => undefined);
  report.catch(() => undefined);
  return {
    proc,
    ready,
    report,
    stop: () => {
      const term = (): void => proc.kill('SIGTERM');
      void ready.then(term, term);
    },
    async status(timeoutMs = 5_000): Promise<ProbeReport> {
      await ready;
      return new Promise((resolve, reject) => {
        const off = proc.onLine((line, stream) => {
          if (stream !== 'stdout' || !isEvent('status')(line)) return;
          clearTimeout(timer);
          off();
          resolve(JSON.parse(line) as ProbeReport);
        });
        const timer = setTimeout(() => {
          off();
          reject(new Error(`no probe status within ${timeoutMs} ms\n${proc.tail()}`));
        }, timeoutMs);
        proc.kill('SIGUSR1');
      });
    },
  };
}
