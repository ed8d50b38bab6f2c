// Lab plumbing: commands, network namespaces, veths, addresses, routes, sysctls and processes inside namespaces.
// Layers: child_process → this file (one `ip`/`sysctl` command per helper) → lab.ts (the topology).
//
// This is lab and test code: it shells out to iproute2 (`ip -n NS ...`, `ip netns exec NS ...`), which keeps it
// readable and close to what an operator would type. Nothing here touches the default namespace: veth pairs are
// created directly inside their two namespaces, and sysctls are always written through `ip netns exec`.
import { ChildProcess, execFile, execFileSync, spawn } from 'node:child_process';

/** Default timeout for one command; lab commands are quick, a hang means something is badly wrong. */
const DEFAULT_COMMAND_TIMEOUT_MS = 30_000;
const MAX_OUTPUT_BYTES = 16 * 1024 * 1024;

/** A failed command, with everything needed to understand why (like Node's own errors: code, cmd, stderr). */
export class CommandError extends Error {
  readonly cmd: string;
  readonly args: readonly string[];
  /** Exit status, or null when killed by a signal or never started. */
  readonly exitCode: number | null;
  readonly signal: NodeJS.Signals | null;
  /** errno-style code when the command could not run at all (ENOENT ...), 'ETIMEDOUT' on timeout, else 'EEXIT'. */
  readonly code: string;
  readonly stdout: string;
  readonly stderr: string;

  constructor(init: {
    cmd: string;
    args: readonly string[];
    exitCode: number | null;
    signal: NodeJS.Signals | null;
    code: string;
    stdout: string;
    stderr: string;
  }) {
    const status =
      init.code === 'ETIMEDOUT'
        ? 'timed out'
        : init.exitCode !== null
          ? `exit ${init.exitCode}`
          : init.signal !== null
            ? `killed by ${init.signal}`
            : init.code;
    const detail = init.stderr.trim() || init.stdout.trim();
    super(`\`${[init.cmd, ...init.args].join(' ')}\` failed (${status})${detail ? `: ${detail}` : ''}`);
    this.name = 'CommandError';
    this.cmd = init.cmd;
    this.args = init.args;
    this.exitCode = init.exitCode;
    this.signal = init.signal;
    this.code = init.code;
    this.stdout = init.stdout;
    this.stderr = init.stderr;
  }
}

export interface RunOptions {
  timeoutMs?: number;
}

export interface RunResult {
  stdout: string;
  stderr: string;
}

/** Runs a command (no shell). Rejects with a CommandError that quotes stderr. */
export function run(cmd: string, args: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  const timeout = opts.timeoutMs ?? DEFAULT_COMMAND_TIMEOUT_MS;
  return new Promise((resolve, reject) => {
    execFile(
      cmd,
      args as string[],
      { timeout, maxBuffer: MAX_OUTPUT_BYTES, encoding: 'utf8', killSignal: 'SIGKILL' },
      (err, stdout, stderr) => {
        if (!err) {
          resolve({ stdout, stderr });
          return;
        }
        const e = err as NodeJS.ErrnoException & { code?: string | number; killed?: boolean; signal?: NodeJS.Signals };
        const numeric = typeof e.code === 'number' ? e.code : null;
        const timedOut = e.killed === true && e.signal === 'SIGKILL';
        reject(
          new CommandError({
            cmd,
            args,
            exitCode: numeric,
            signal: e.signal ?? null,
            code: timedOut ? 'ETIMEDOUT' : typeof e.code === 'string' ? e.code : 'EEXIT',
            stdout: stdout ?? '',
            stderr: (stderr ?? '') || (typeof e.code === 'string' ? e.message : ''),
          }),
        );
      },
    );
  });
}

// ---------------------------------------------------------------------------------------------------------------
// Names

const NS_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;
// IFNAMSIZ is 16 including the terminating NUL.
const IF_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,14}$/;

export function assertNsName(name: string): void {
  if (typeof name !== 'string' || !NS_NAME.test(name)) {
    throw new TypeError(`namespace name must match ${NS_NAME}, got ${JSON.stringify(name)}`);
  }
}

export function assertIfName(name: string): void {
  if (typeof name !== 'string' || !IF_NAME.test(name)) {
    throw new TypeError(`interface name must match ${IF_NAME} (at most 15 characters), got ${JSON.stringify(name)}`);
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Namespaces

/** `ip -n NS <args>` — an iproute2 command inside a namespace (no process is started inside it). */
export async function ipIn(ns: string, args: readonly string[], opts?: RunOptions): Promise<string> {
  assertNsName(ns);
  return (await run('ip', ['-n', ns, ...args], opts)).stdout;
}

/** Runs a command inside a namespace: `ip netns exec NS cmd args...`. */
export function nsExec(ns: string, cmd: string, args: readonly string[], opts?: RunOptions): Promise<RunResult> {
  assertNsName(ns);
  return run('ip', ['netns', 'exec', ns, cmd, ...args], opts);
}

export async function netnsAdd(name: string): Promise<void> {
  assertNsName(name);
  await run('ip', ['netns', 'add', name]);
}

/** Deletes a namespace. With `ifExists`, a namespace that is already gone is not an error. */
export async function netnsDelete(name: string, opts: { ifExists?: boolean } = {}): Promise<void> {
  assertNsName(name);
  try {
    await run('ip', ['netns', 'del', name]);
  } catch (err) {
    if (opts.ifExists && !(await netnsExists(name))) return;
    throw err;
  }
}

/** Synchronous delete for exit handlers. Never throws. */
export function netnsDeleteSync(name: string): void {
  try {
    assertNsName(name);
    execFileSync('ip', ['netns', 'del', name], { stdio: 'ignore', timeout: 10_000 });
  } catch {
    // Already gone, or nothing we can do while exiting.
  }
}

/** Names of all named namespaces (`ip netns list`). */
export async function netnsList(): Promise<string[]> {
  const { stdout } = await run('ip', ['netns', 'list']);
  // Lines look like "name" or "name (id: 3)".
  return stdout
    .split('\n')
    .map((l) => l.trim().split(/\s+/)[0] ?? '')
    .filter((n) => n.length > 0);
}

export async function netnsExists(name: string): Promise<boolean> {
  return (await netnsList()).includes(name);
}

/** PIDs of all processes whose network namespace is `ns` (`ip netns pids`). */
export async function netnsPids(ns: string): Promise<number[]> {
  assertNsName(ns);
  const { stdout } = await run('ip', ['netns', 'pids', ns]);
  return stdout
    .split(/\s+/)
    .filter((s) => /^\d+$/.test(s))
    .map(Number);
}

// ---------------------------------------------------------------------------------------------------------------
// Links, addresses, routes, sysctls

export interface VethEnd {
  ns: string;
  name: string;
}

/**
 * Creates a veth pair whose two ends are born inside their namespaces
 * (`ip link add A netns NS_A type veth peer name B netns NS_B`), so nothing ever appears in the default
 * namespace, even for a moment. Both ends are set up.
 */
export async function vethPair(a: VethEnd, b: VethEnd, opts: { mtu?: number } = {}): Promise<void> {
  assertNsName(a.ns);
  assertNsName(b.ns);
  assertIfName(a.name);
  assertIfName(b.name);
  const mtu = opts.mtu !== undefined ? ['mtu', String(opts.mtu)] : [];
  // `ip -n A` runs the command inside A; `netns` on both ends makes the placement explicit either way.
  await ipIn(a.ns, ['link', 'add', a.name, 'netns', a.ns, ...mtu, 'type', 'veth', 'peer', 'name', b.name, 'netns', b.ns, ...mtu]);
  await linkUp(a.ns, a.name);
  await linkUp(b.ns, b.name);
}

export async function linkUp(ns: string, dev: string): Promise<void> {
  assertIfName(dev);
  await ipIn(ns, ['link', 'set', 'dev', dev, 'up']);
}

/** Adds an address (CIDR). IPv6 addresses get `nodad` unless told otherwise, so they are usable at once. */
export async function addrAdd(ns: string, dev: string, cidr: string, opts: { nodad?: boolean } = {}): Promise<void> {
  assertIfName(dev);
  const v6 = cidr.includes(':');
  const nodad = v6 && opts.nodad !== false ? ['nodad'] : [];
  await ipIn(ns, [v6 ? '-6' : '-4', 'addr', 'add', cidr, 'dev', dev, ...nodad]);
}

/** Adds a route: `ip route add DEST via GW [dev DEV]`; DEST may be "default". */
export async function routeAdd(ns: string, dest: string, via: string, opts: { dev?: string } = {}): Promise<void> {
  const v6 = via.includes(':');
  const dev = opts.dev !== undefined ? ['dev', opts.dev] : [];
  await ipIn(ns, [v6 ? '-6' : '-4', 'route', 'add', dest, 'via', via, ...dev]);
}

/** Writes sysctls inside a namespace (one `sysctl -w` for all of them). */
export async function sysctlSet(ns: string, values: Record<string, string | number>): Promise<void> {
  const args = Object.entries(values).map(([k, v]) => {
    if (!/^[a-z0-9_.\/-]+$/i.test(k)) throw new TypeError(`sysctl key must be a plain dotted name, got ${JSON.stringify(k)}`);
    return `${k}=${v}`;
  });
  if (args.length === 0) return;
  await nsExec(ns, 'sysctl', ['-q', '-w', ...args]);
}

/** Reads one sysctl inside a namespace. */
export async function sysctlGet(ns: string, key: string): Promise<string> {
  const { stdout } = await nsExec(ns, 'sysctl', ['-n', key]);
  return stdout.trim();
}

// ---------------------------------------------------------------------------------------------------------------
// Long-running processes inside a namespace

/** How many output lines an NsProcess keeps per stream (the oldest are dropped first). */
const DEFAULT_MAX_LINES = 20_000;

export interface ExitStatus {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface SpawnOptions {
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** Give the process a writable stdin (default: ignored). */
  stdin?: boolean;
  maxLines?: number;
}

type LineListener = (line: string, stream: 'stdout' | 'stderr') => void;

/**
 * A process started with `ip netns exec NS cmd args...`. `ip netns exec` execs the command in place, so the child
 * pid is the command's own pid and signals reach it directly. Output is split into lines and kept (bounded).
 */
export class NsProcess {
  readonly ns: string;
  readonly cmd: string;
  readonly args: readonly string[];
  readonly child: ChildProcess;
  readonly stdoutLines: string[] = [];
  readonly stderrLines: string[] = [];
  /** Lines dropped because of maxLines. */
  droppedLines = 0;
  exitStatus: ExitStatus | null = null;
  readonly exited: Promise<ExitStatus>;
  private readonly maxLines: number;
  private readonly listeners = new Set<LineListener>();
  private spawnError: Error | null = null;

  constructor(ns: string, cmd: string, args: readonly string[], opts: SpawnOptions = {}) {
    assertNsName(ns);
    this.ns = ns;
    this.cmd = cmd;
    this.args = args;
    this.maxLines = opts.maxLines ?? DEFAULT_MAX_LINES;
    this.child = spawn('ip', ['netns', 'exec', ns, cmd, ...args], {
      env: opts.env ?? process.env,
      cwd: opts.cwd,
      stdio: [opts.stdin ? 'pipe' : 'ignore', 'pipe', 'pipe'],
    });
    this.exited = new Promise((resolve) => {
      this.child.once('error', (err) => {
        this.spawnError = err;
        if (this.child.pid === undefined) {
          this.exitStatus = { code: null, signal: null };
          resolve(this.exitStatus);
        }
      });
      this.child.once('close', (code, signal) => {
        this.exitStatus = { code, signal };
        resolve(this.exitStatus);
      });
    });
    this.splitLines(this.child.stdout!, 'stdout', this.stdoutLines);
    this.splitLines(this.child.stderr!, 'stderr', this.stderrLines);
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  get running(): boolean {
    return this.exitStatus === null;
  }

  private splitLines(stream: NodeJS.ReadableStream, which: 'stdout' | 'stderr', into: string[]): void {
    let partial = '';
    stream.setEncoding('utf8');
    const emit = (line: string): void => {
      into.push(line);
      if (into.length > this.maxLines) {
        into.shift();
        this.droppedLines++;
      }
      for (const l of this.listeners) l(line, which);
    };
    stream.on('data', (chunk: string) => {
      partial += chunk;
      let nl: number;
      while ((nl = partial.indexOf('\n')) >= 0) {
        emit(partial.slice(0, nl));
        partial = partial.slice(nl + 1);
      }
    });
    stream.on('end', () => {
      if (partial.length > 0) emit(partial);
      partial = '';
    });
  }

  onLine(listener: LineListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** The last lines of both streams, for error messages. */
  tail(n = 20): string {
    const out = this.stdoutLines.slice(-n).join('\n');
    const err = this.stderrLines.slice(-n).join('\n');
    return `--- stdout (last ${n} lines) ---\n${out}\n--- stderr (last ${n} lines) ---\n${err}`;
  }

  describe(): string {
    return `\`ip netns exec ${this.ns} ${[this.cmd, ...this.args].join(' ')}\``;
  }

  /**
   * Resolves with the first line (already seen or future) for which `pred` is true. Rejects when the process exits
   * first or after `timeoutMs`; the error quotes the tail of stdout and stderr.
   */
  waitForLine(
    pred: (line: string, stream: 'stdout' | 'stderr') => boolean,
    opts: { timeoutMs: number; what?: string; stream?: 'stdout' | 'stderr' },
  ): Promise<string> {
    const what = opts.what ?? 'the expected output line';
    const wanted = (line: string, stream: 'stdout' | 'stderr'): boolean =>
      (opts.stream === undefined || opts.stream === stream) && pred(line, stream);
    for (const l of this.stdoutLines) if (wanted(l, 'stdout')) return Promise.resolve(l);
    for (const l of this.stderrLines) if (wanted(l, 'stderr')) return Promise.resolve(l);
    return new Promise((resolve, reject) => {
      let done = false;
      const finish = (err: Error | null, line?: string): void => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        off();
        if (err) reject(err);
        else resolve(line!);
      };
      const off = this.onLine((line, stream) => {
        if (wanted(line, stream)) finish(null, line);
      });
      const timer = setTimeout(
        () => finish(new Error(`${this.describe()}: no ${what} within ${opts.timeoutMs} ms\n${this.tail()}`)),
        opts.timeoutMs,
      );
      void this.exited.then((st) => {
        // Let already buffered output be delivered first.
        setImmediate(() => {
          const why = this.spawnError ? this.spawnError.message : `exited (code ${st.code}, signal ${st.signal})`;
          finish(new Error(`${this.describe()} ${why} before ${what}\n${this.tail()}`));
        });
      });
    });
  }

  /** Sends a signal if the process still runs. */
  kill(signal: NodeJS.Signals = 'SIGTERM'): void {
    if (this.exitStatus === null && this.child.pid !== undefined) {
      try {
        this.child.kill(signal);
      } catch {
        // Already gone.
      }
    }
  }

  /** SIGTERM (or `signal`), then SIGKILL after `timeoutMs`. Resolves with the exit status and whether it was forced. */
  async stop(opts: { signal?: NodeJS.Signals; timeoutMs?: number } = {}): Promise<ExitStatus & { forced: boolean }> {
    if (this.exitStatus !== null) return { ...this.exitStatus, forced: false };
    this.kill(opts.signal ?? 'SIGTERM');
    let timer: NodeJS.Timeout | undefined;
    const timedOut = await Promise.race([
      this.exited.then(() => false),
      new Promise<boolean>((resolve) => {
        timer = setTimeout(() => resolve(true), opts.timeoutMs ?? 5_000);
      }),
    ]);
    if (timer) clearTimeout(timer);
    if (timedOut) {
      this.kill('SIGKILL');
      const st = await this.exited;
      return { ...st, forced: true };
    }
    return { ...(await this.exited), forced: false };
  }
}

/** Starts a long-running process inside a namespace. Prefer a ProcessGroup, which stops it on destroy. */
export function spawnInNetns(ns: string, cmd: string, args: readonly string[], opts?: SpawnOptions): NsProcess {
  return new NsProcess(ns, cmd, args, opts);
}

/** Tracks the processes a lab started, so that all of them are stopped when the lab goes away. */
export class ProcessGroup {
  private readonly procs = new Set<NsProcess>();

  spawn(ns: string, cmd: string, args: readonly string[], opts?: SpawnOptions): NsProcess {
    const p = new NsProcess(ns, cmd, args, opts);
    this.procs.add(p);
    void p.exited.then(() => this.procs.delete(p));
    return p;
  }

  get size(): number {
    return this.procs.size;
  }

  /** Stops all tracked processes (SIGTERM, SIGKILL after timeoutMs). */
  async stopAll(timeoutMs = 3_000): Promise<void> {
    await Promise.all([...this.procs].map((p) => p.stop({ timeoutMs })));
  }

  /** Synchronous SIGKILL of everything still running (exit handlers). */
  killAllSync(): void {
    for (const p of this.procs) p.kill('SIGKILL');
  }
}
