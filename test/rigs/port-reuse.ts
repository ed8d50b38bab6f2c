// A client that reuses its source ports, run in the lab's client namespace (test/drain-reuse-netns.test.ts):
//
//   node port-reuse.js --target ADDR --port P (--from N --count K | --ports P1,P2,...) [--rounds R]
//                      [--concurrency C] [--timeout-ms T]
//
// Each round connects from every local port N .. N+K-1 (or each of --ports; C at a time) to ADDR:P, sends "hello\n", reads the
// backend server's reply line (src/lab/backend-server.ts: "<backend> <peer> <port>") and closes with a reset
// (SO_LINGER 0), which frees the port at once (no TIME_WAIT), so the next round's SYN carries the same tuple.
// A connection that fails or takes longer than T ms counts as a failure with its error. Prints one JSON report:
// {attempts, failures, errors (first 10), perBackend: {name: n}, byPort: {port: name of the last round}}.
// Bounded: at most 20,000 connections and 5 minutes.
import net from 'node:net';

const MAX_CONNS = 20_000;
const MAX_MS = 5 * 60_000;

interface Options {
  target: string;
  port: number;
  ports: number[];
  rounds: number;
  concurrency: number;
  timeoutMs: number;
}

function parse(argv: readonly string[]): Options {
  const o: Record<string, string> = {};
  for (let i = 0; i < argv.length; i += 2) {
    const k = argv[i];
    if (!k.startsWith('--') || argv[i + 1] === undefined) throw new Error(`expected --name value pairs, got ${k}`);
    o[k.slice(2)] = argv[i + 1];
  }
  const num = (k: string, dflt?: number): number => {
    const v = o[k] === undefined ? dflt : Number(o[k]);
    if (v === undefined || !Number.isInteger(v) || v < 0) throw new Error(`--${k} expects a whole number, got ${o[k]}`);
    return v;
  };
  if (!o.target) throw new Error('--target ADDR is required');
  const ports = o.ports !== undefined ? o.ports.split(',').map(Number) : Array.from({ length: num('count') }, (_, i) => num('from') + i);
  if (!ports.length || ports.some((p) => !Number.isInteger(p) || p < 1024 || p > 65535)) throw new Error('--from/--count or --ports: local ports from 1024 to 65535');
  const opts = { target: o.target, port: num('port'), ports, rounds: num('rounds', 1), concurrency: num('concurrency', 20), timeoutMs: num('timeout-ms', 5_000) };
  if (ports.length * opts.rounds > MAX_CONNS) throw new Error(`at most ${MAX_CONNS} connections`);
  return opts;
}

/** One connection from localPort: the backend's name, or throws. */
function once(o: Options, localPort: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host: o.target, port: o.port, localPort });
    let buf = '';
    const fail = (e: Error): void => {
      clearTimeout(timer);
      s.destroy();
      reject(e);
    };
    const timer = setTimeout(() => fail(new Error(`port ${localPort}: no answer within ${o.timeoutMs} ms`)), o.timeoutMs);
    s.on('error', (e) => fail(new Error(`port ${localPort}: ${e.message}`)));
    s.on('connect', () => s.write('hello\n'));
    s.on('data', (d) => {
      buf += d.toString();
      const nl = buf.indexOf('\n');
      if (nl < 0) return;
      clearTimeout(timer);
      s.resetAndDestroy();
      resolve(buf.slice(0, nl).split(' ')[0]);
    });
  });
}

async function main(): Promise<void> {
  const o = parse(process.argv.slice(2));
  const guard = setTimeout(() => {
    process.stderr.write(`port-reuse: still running after ${MAX_MS} ms\n`);
    process.exit(3);
  }, MAX_MS);
  const report = { attempts: 0, failures: 0, errors: [] as string[], perBackend: {} as Record<string, number>, byPort: {} as Record<string, string> };
  for (let r = 0; r < o.rounds; r++) {
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < o.ports.length) {
        const p = o.ports[next++];
        report.attempts++;
        try {
          const name = await once(o, p);
          report.perBackend[name] = (report.perBackend[name] ?? 0) + 1;
          report.byPort[p] = name;
        } catch (e) {
          report.failures++;
          if (report.errors.length < 10) report.errors.push((e as Error).message);
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(o.concurrency, o.ports.length) }, worker));
  }
  clearTimeout(guard);
  process.stdout.write(`${JSON.stringify(report)}\n`);
}

main().catch((e: unknown) => {
  process.stderr.write(`port-reuse: ${(e as Error).message}\n`);
  process.exit(2);
});
