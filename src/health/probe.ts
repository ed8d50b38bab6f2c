// One health probe against one backend: TCP connect, HTTP(S) GET with an expected status, a command, or an ICMP
// echo (src/health/icmp.ts).
// Each resolves (never rejects) with the verdict, how long it took and, on failure, why — the "why" is what
// the log line and the API's health history show, so it names the cause as an operator would
// ("connect ECONNREFUSED", "status 503, expected 200", "exit code 2", "timeout after 1000 ms").
import { spawn } from 'child_process';
import { readFileSync } from 'fs';
import { request as httpRequest } from 'http';
import { request as httpsRequest } from 'https';
import { connect } from 'net';
import type { HealthCheckSpec } from '../config/model';
import { probeIcmp } from './icmp';

export interface ProbeTarget {
  addr: string;
  family: 4 | 6;
  port: number;
}

export interface ProbeResult {
  ok: boolean;
  ms: number;
  detail: string; // "" when ok
}

const now = (): number => Number(process.hrtime.bigint() / 1000n) / 1000;

function elapsed(t0: number): number {
  return Math.round((now() - t0) * 10) / 10;
}

export function probeTcp(t: ProbeTarget, timeoutMs: number): Promise<ProbeResult> {
  const t0 = now();
  return new Promise((resolve) => {
    let done = false;
    const finish = (ok: boolean, detail: string): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      sock.destroy();
      resolve({ ok, ms: elapsed(t0), detail });
    };
    const sock = connect({ host: t.addr, port: t.port, family: t.family });
    const timer = setTimeout(() => finish(false, `timeout after ${timeoutMs} ms`), timeoutMs);
    sock.once('connect', () => finish(true, ''));
    sock.once('error', (e: NodeJS.ErrnoException) => finish(false, `connect ${e.code ?? e.message}`));
  });
}

function statusOk(status: number, expect: readonly number[]): boolean {
  return expect.length ? expect.includes(status) : status >= 200 && status < 400;
}

export function probeHttp(t: ProbeTarget, spec: HealthCheckSpec, timeoutMs: number): Promise<ProbeResult> {
  const t0 = now();
  const tls = spec.type === 'https';
  const hostHeader = spec.host ?? (t.family === 6 ? `[${t.addr}]:${t.port}` : `${t.addr}:${t.port}`);
  return new Promise((resolve) => {
    let done = false;
    const finish = (ok: boolean, detail: string): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      req.destroy();
      resolve({ ok, ms: elapsed(t0), detail });
    };
    const opts = {
      host: t.addr,
      family: t.family,
      port: t.port,
      path: spec.path,
      method: 'GET',
      headers: { host: hostHeader, 'user-agent': 'l4nat-health-check', connection: 'close' },
      agent: false as const,
      ...(tls ? { rejectUnauthorized: spec.tlsVerify, servername: spec.host } : {}),
    };
    const req = (tls ? httpsRequest : httpRequest)(opts, (res) => {
      const status = res.statusCode ?? 0;
      res.resume();
      const want = spec.expectStatus.length ? spec.expectStatus.join('|') : '2xx or 3xx';
      finish(statusOk(status, spec.expectStatus), statusOk(status, spec.expectStatus) ? '' : `status ${status}, expected ${want}`);
    });
    const timer = setTimeout(() => finish(false, `timeout after ${timeoutMs} ms`), timeoutMs);
    req.once('error', (e: NodeJS.ErrnoException) => finish(false, `${tls ? 'https' : 'http'} ${e.code ?? e.message}`));
    req.end();
  });
}

/** The process's ambient capability set (non-zero when started as a user with ambient capabilities, as the
 * systemd unit starts l4nat). */
function ambientCaps(): bigint {
  try {
    const m = /^CapAmb:\s*([0-9a-f]+)$/m.exec(readFileSync('/proc/self/status', 'utf8'));
    return m ? BigInt(`0x${m[1]}`) : 0n;
  } catch {
    return 0n;
  }
}

/** util-linux's setpriv: how a command check sheds l4nat's capabilities (see withoutCapabilities). */
export const SETPRIV = 'setpriv';

/**
 * Health-check commands must not inherit l4nat's capabilities: started as an unprivileged user with ambient
 * capabilities (the systemd unit), every child would get them too. setpriv clears the inheritable and ambient
 * sets before it execs the command, which then runs with none (NoNewPrivileges keeps file capabilities from
 * granting any). Without ambient capabilities (root, or a plain user) the command runs as it is.
 */
export function withoutCapabilities(argv: readonly string[], ambient = ambientCaps()): string[] {
  if (ambient === 0n) return [...argv];
  return [SETPRIV, '--inh-caps=-all', '--ambient-caps=-all', '--', ...argv];
}

/** Kills what is left of a check's process group (its background children); nothing left is not an error. */
function killGroup(pid: number | undefined): void {
  if (!pid) return;
  try {
    process.kill(-pid, 'SIGKILL');
  } catch {
    // the group is empty
  }
}

/**
 * Runs the command without a shell, with the backend in its environment (L4NAT_BACKEND_ADDR,
 * L4NAT_BACKEND_PORT, L4NAT_BACKEND_FAMILY). Exit 0 is healthy. The command runs in a process group of its own,
 * which is killed when the command exits (whatever it left running in the background) or times out.
 * `ambient` is l4nat's ambient capability set (read from /proc unless given).
 */
export function probeCommand(t: ProbeTarget, argv: readonly string[], timeoutMs: number, ambient = ambientCaps()): Promise<ProbeResult> {
  const t0 = now();
  return new Promise((resolve) => {
    let done = false;
    let stderr = '';
    const finish = (ok: boolean, detail: string): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      resolve({ ok, ms: elapsed(t0), detail });
    };
    const cmd = withoutCapabilities(argv, ambient);
    const viaSetpriv = cmd.length !== argv.length;
    const child = spawn(cmd[0], cmd.slice(1), {
      stdio: ['ignore', 'ignore', 'pipe'],
      detached: true, // its own process group, so that its children can be killed with it
      env: { ...process.env, L4NAT_BACKEND_ADDR: t.addr, L4NAT_BACKEND_PORT: String(t.port), L4NAT_BACKEND_FAMILY: String(t.family) },
    });
    child.stderr?.on('data', (c: Buffer) => {
      if (stderr.length < 200) stderr += c.toString('utf8');
    });
    const timer = setTimeout(() => {
      killGroup(child.pid);
      finish(false, `timeout after ${timeoutMs} ms`);
    }, timeoutMs);
    // spawn() fails only on cmd[0]: with setpriv in front that is setpriv, not the check (setpriv reports a
    // check it cannot exec itself, "failed to execute", exit 126/127).
    child.once('error', (e: NodeJS.ErrnoException) => {
      const code = e.code ?? e.message;
      finish(false, viaSetpriv ? `cannot run ${SETPRIV} (util-linux), which runs command checks without l4nat's capabilities: ${code}` : `cannot run ${argv[0]}: ${code}`);
    });
    child.once('exit', (code, signal) => {
      killGroup(child.pid);
      const why = signal ? `killed by ${signal}` : `exit code ${String(code)}`;
      const tail = stderr.trim().split('\n').pop()?.slice(0, 120);
      finish(code === 0, code === 0 ? '' : tail ? `${why}: ${tail}` : why);
    });
  });
}

export function probe(spec: HealthCheckSpec, backend: ProbeTarget): Promise<ProbeResult> {
  const t: ProbeTarget = { ...backend, port: spec.port ?? backend.port };
  const timeoutMs = Math.round(spec.timeout * 1000);
  switch (spec.type) {
    case 'tcp':
      return probeTcp(t, timeoutMs);
    case 'http':
    case 'https':
      return probeHttp(t, spec, timeoutMs);
    case 'command':
      return probeCommand(t, spec.command ?? [], timeoutMs);
    case 'icmp':
      return probeIcmp(t, timeoutMs);
    case 'dataplane': // needs the data plane: the controller runs it (src/health/dataplane-probe.ts)
      return Promise.resolve({ ok: false, ms: 0, detail: 'a dataplane check needs the running data plane' });
  }
}
