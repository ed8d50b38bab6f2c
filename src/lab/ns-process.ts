// Long-running processes inside a namespace (`ip netns exec NS cmd ...`): NsProcess keeps their output as lines and
// waits for a line or the exit; ProcessGroup tracks what a lab started, so that all of it stops with the lab.
// Layers: child_process, netns-names.ts → this file → role-lab.ts (processes by role), tests.
import { ChildProcess, spawn } from 'node:child_process';
import { assertNsName } from './netns-names';

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
