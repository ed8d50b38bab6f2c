// Lab cleanup registry: the last line of defence that keeps lab namespaces and processes from outliving us.
// Layers: netns.ts (commands) → cleanup.ts (process-wide registry, signal and exit hooks) → lab.ts (topology).
//
// Every lab registers one entry with two forms of its teardown:
//   - `run`:  the normal, asynchronous teardown (graceful process stop, `ip netns del`, ...);
//   - `sync`: a synchronous fallback (SIGKILL children, `ip netns del` via execFileSync) for the process
//             'exit' event, where no asynchronous work can happen any more (uncaught exception, process.exit()).
// SIGINT / SIGTERM / SIGHUP: run all pending asynchronous teardowns (bounded in time, the synchronous form as
// fallback), then re-raise the signal so the process ends the way it would have without us — unless someone
// else also listens for that signal, in which case ending the process is their business.
// Handlers are installed only while at least one entry is pending, so a host process (the CLI) keeps its
// default signal behaviour when no lab exists.

export interface CleanupEntry {
  /** Shown in warnings. */
  readonly name: string;
  /** Normal teardown. Must be idempotent. */
  run(): Promise<void>;
  /** Synchronous best-effort fallback. Must be idempotent and must not throw. */
  sync(): void;
}

const SIGNALS: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];
/** Upper bound for all asynchronous teardowns after a signal; then the synchronous fallback runs. */
const SIGNAL_CLEANUP_TIMEOUT_MS = 15_000;

const pending = new Set<CleanupEntry>();
let installed = false;
let signalled: NodeJS.Signals | null = null;

function onExit(): void {
  for (const entry of [...pending]) {
    pending.delete(entry);
    try {
      entry.sync();
    } catch {
      // sync() must not throw; nothing more we can do while exiting.
    }
  }
}

function onSignal(sig: NodeJS.Signals): void {
  if (signalled !== null) {
    // Second signal while cleaning up: do the fast synchronous part and leave at once.
    onExit();
    uninstall();
    process.kill(process.pid, sig);
    return;
  }
  signalled = sig;
  process.stderr.write(`l4nat lab: ${sig} received, removing lab namespaces...\n`);
  const entries = [...pending];
  const all = Promise.allSettled(entries.map((e) => e.run()));
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<'timeout'>((resolve) => {
    timer = setTimeout(() => resolve('timeout'), SIGNAL_CLEANUP_TIMEOUT_MS);
  });
  void Promise.race([all, timeout]).then((outcome) => {
    if (timer) clearTimeout(timer);
    if (outcome === 'timeout') process.stderr.write('l4nat lab: cleanup timed out, forcing\n');
    // Whatever did not finish (or failed) gets the synchronous fallback.
    onExit();
    uninstall();
    signalled = null;
    if (process.listenerCount(sig) === 0) process.kill(process.pid, sig);
  });
}

const handlers = new Map<NodeJS.Signals, () => void>(SIGNALS.map((s) => [s, () => onSignal(s)]));

function install(): void {
  if (installed) return;
  installed = true;
  for (const [sig, h] of handlers) process.on(sig, h);
  process.on('exit', onExit);
}

function uninstall(): void {
  if (!installed) return;
  installed = false;
  for (const [sig, h] of handlers) process.removeListener(sig, h);
  process.removeListener('exit', onExit);
}

/** Registers a teardown; returns the function that unregisters it (call it once the teardown has run). */
export function registerCleanup(entry: CleanupEntry): () => void {
  pending.add(entry);
  install();
  return () => {
    pending.delete(entry);
    if (pending.size === 0 && signalled === null) uninstall();
  };
}

/** Number of pending entries (for tests). */
export function pendingCleanups(): number {
  return pending.size;
}
