// Running one command (no shell) with a timeout and bounded output; a failure is a CommandError that says what
// ran and quotes its stderr, like Node's own errors (code, cmd).
// Layers: child_process → this file → netns.ts (iproute2 and sysctl helpers).
import { execFile } from 'node:child_process';

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
