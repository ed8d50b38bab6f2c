// Lab client driver: generates bounded load from inside the client namespace and reports one JSON line.
// Layers: run by workload.ts (`ip netns exec <client> node client-driver.js ...`); talks to backend-server.ts.
// Modes: client-driver-requests.ts (request mode), client-driver-streams.ts (stream mode); this file parses the
// arguments and runs one of them as a process.
//
// Request mode:
//   --target ADDR --port P --proto tcp|udp --count N --concurrency C --timeout-ms T
//   [--conn-timeout-ms t] [--udp-retries R] [--udp-rto-ms r]
//   TCP: N connections, each: connect, send "hello\n", read the reply line "<backend> <peer addr> <peer port>",
//   close. UDP: N request/response exchanges, each from its own socket (so its own source port), a lost datagram
//   is retried R times. Bounded by N and by the total deadline T (whatever is not done by then fails "EDEADLINE").
//   Prints {mode:"requests", ok, failed, perBackend, peerAddrs, peerAddrsByBackend, errors, elapsedMs, ...}.
//
// Stream mode:
//   --target ADDR --port P --streams N --duration-ms D [--chunk-bytes B] [--interval-ms I] [--window-bytes W]
//   [--drain-ms d] [--stall-ms s] [--conn-timeout-ms t]
//   Opens N connections, learns each one's backend ("hello"), sends "stream", then for D ms writes a chunk every
//   I ms (at most W bytes unacknowledged by the echo) and verifies every echoed byte. Then it stops writing,
//   waits up to d ms for the echo to catch up, closes and reports per connection bytes sent/verified and errors.
//   Prints {"event":"streaming",...} once all connections are set up (so a test knows when to act), a status
//   line on SIGUSR1, and the final {mode:"streams", ...} line; SIGTERM/SIGINT end the run early (with a report).
//
// Every loop is bounded in count and in time; the process exits once it has printed its report.
import net from 'node:net';
import { runRequests, type RequestOptions, type RequestReport } from './client-driver-requests';
import { runStreams, type StreamControl, type StreamOptions, type StreamReport } from './client-driver-streams';

export type { RequestOptions, RequestReport } from './client-driver-requests';
export { streamByte } from './client-driver-streams';
export type { StreamConnReport, StreamControl, StreamOptions, StreamReport } from './client-driver-streams';

const MAX_COUNT = 1_000_000;
const MAX_CONCURRENCY = 4_096;
const MAX_STREAMS = 10_000;
const MAX_DURATION_MS = 10 * 60_000;

export type DriverOptions = RequestOptions | StreamOptions;

export type DriverReport = RequestReport | StreamReport;

// ---------------------------------------------------------------------------------------------------------------
// Arguments

function intArg(name: string, v: string, min: number, max: number): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < min || n > max) throw new Error(`${name} must be an integer in ${min}..${max}, got ${v}`);
  return n;
}

export function parseDriverArgs(argv: readonly string[]): DriverOptions {
  const raw = new Map<string, string>();
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (!a.startsWith('--')) throw new Error(`unexpected argument ${a}`);
    const v = argv[++i];
    if (v === undefined) throw new Error(`${a} needs a value`);
    raw.set(a.slice(2), v);
  }
  const take = (k: string): string | undefined => {
    const v = raw.get(k);
    raw.delete(k);
    return v;
  };
  const target = take('target');
  if (!target || net.isIP(target) === 0) throw new Error(`--target must be an IP address, got ${String(target)}`);
  const portS = take('port');
  if (portS === undefined) throw new Error('--port is required');
  const port = intArg('--port', portS, 1, 65535);
  const connTimeoutS = take('conn-timeout-ms');
  const streamsS = take('streams');
  let opts: DriverOptions;
  if (streamsS !== undefined) {
    const durationS = take('duration-ms');
    if (durationS === undefined) throw new Error('--streams needs --duration-ms');
    const proto = take('proto');
    if (proto !== undefined && proto !== 'tcp') throw new Error('--streams works over tcp only');
    opts = {
      mode: 'streams',
      target,
      port,
      streams: intArg('--streams', streamsS, 1, MAX_STREAMS),
      durationMs: intArg('--duration-ms', durationS, 0, MAX_DURATION_MS),
      chunkBytes: intArg('--chunk-bytes', take('chunk-bytes') ?? '1024', 1, 1 << 20),
      intervalMs: intArg('--interval-ms', take('interval-ms') ?? '20', 1, 60_000),
      windowBytes: intArg('--window-bytes', take('window-bytes') ?? '65536', 1, 64 << 20),
      drainMs: intArg('--drain-ms', take('drain-ms') ?? '5000', 0, 600_000),
      stallMs: intArg('--stall-ms', take('stall-ms') ?? '10000', 100, 600_000),
      connTimeoutMs: intArg('--conn-timeout-ms', connTimeoutS ?? '5000', 1, 600_000),
    };
  } else {
    const proto = take('proto') ?? 'tcp';
    if (proto !== 'tcp' && proto !== 'udp') throw new Error(`--proto must be tcp or udp, got ${proto}`);
    const timeoutMs = intArg('--timeout-ms', take('timeout-ms') ?? '30000', 1, MAX_DURATION_MS);
    opts = {
      mode: 'requests',
      target,
      port,
      proto,
      count: intArg('--count', take('count') ?? '100', 0, MAX_COUNT),
      concurrency: intArg('--concurrency', take('concurrency') ?? '20', 1, MAX_CONCURRENCY),
      timeoutMs,
      connTimeoutMs: intArg('--conn-timeout-ms', connTimeoutS ?? String(Math.min(timeoutMs, 5_000)), 1, MAX_DURATION_MS),
      udpRetries: intArg('--udp-retries', take('udp-retries') ?? '3', 0, 100),
      udpRtoMs: intArg('--udp-rto-ms', take('udp-rto-ms') ?? '300', 1, 60_000),
    };
  }
  if (raw.size > 0) throw new Error(`unknown argument(s): ${[...raw.keys()].map((k) => `--${k}`).join(', ')}`);
  return opts;
}

// ---------------------------------------------------------------------------------------------------------------
// Entry point

function printLine(obj: unknown): void {
  process.stdout.write(`${JSON.stringify(obj)}\n`);
}

async function main(argv: readonly string[]): Promise<void> {
  let o: DriverOptions;
  try {
    o = parseDriverArgs(argv);
  } catch (err) {
    process.stderr.write(`client-driver: ${(err as Error).message}\n`);
    process.exit(2);
  }
  if (o.mode === 'requests') {
    const hard = setTimeout(() => {
      process.stderr.write('client-driver: hard deadline passed\n');
      process.exit(3);
    }, o.timeoutMs + 10_000);
    hard.unref();
    const report = await runRequests(o);
    printLine(report);
    process.exit(0);
  }
  const so = o;
  const hard = setTimeout(
    () => {
      process.stderr.write('client-driver: hard deadline passed\n');
      process.exit(3);
    },
    so.connTimeoutMs + so.durationMs + so.drainMs + 10_000,
  );
  hard.unref();
  let control: StreamControl | null = null;
  process.on('SIGTERM', () => control?.stop());
  process.on('SIGINT', () => control?.stop());
  process.on('SIGUSR1', () => {
    if (control) printLine(control.status());
  });
  const report = await runStreams(so, {
    control: (c) => (control = c),
    onStreaming: (info) => printLine({ event: 'streaming', ...info }),
  });
  printLine(report);
  process.exit(0);
}

if (require.main === module) {
  main(process.argv.slice(2)).catch((err: unknown) => {
    process.stderr.write(`client-driver: ${err instanceof Error ? err.stack ?? err.message : String(err)}\n`);
    process.exit(1);
  });
}
