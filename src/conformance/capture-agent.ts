// Capture agent: libpcap (the `cap` package) on one interface, run inside a lab namespace:
//   ip netns exec NS node dist/src/conformance/capture-agent.js --dev eth0 --filter 'tcp port 8080' [--max N]
// Prints {"ready":true,...} once the capture is open, then one JSON line per decoded packet (packet.ts), and on
// SIGTERM/SIGINT a last line {"done":true,"seen":N,"dropped":D} and exits 0. Frames that are not IP are skipped.
// Layers: `cap` (libpcap, immediate mode) → this process → capture.ts (started by the orchestrator, reads lines).
import { decodeFrame, LinkType } from './packet';

interface AgentOptions {
  dev: string;
  filter: string;
  max: number;
}

export function parseAgentArgs(argv: readonly string[]): AgentOptions {
  let dev: string | undefined;
  let filter = '';
  let max = 100_000;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const v = argv[++i];
    if (v === undefined) throw new Error(`${a} needs a value`);
    if (a === '--dev') dev = v;
    else if (a === '--filter') filter = v;
    else if (a === '--max') {
      max = Number(v);
      if (!Number.isInteger(max) || max < 1) throw new Error(`--max expects a positive integer, got ${v}`);
    } else throw new Error(`unknown argument ${a}`);
  }
  if (dev === undefined || !/^[\w.-]{1,15}$/.test(dev)) throw new Error('--dev NAME is required (an interface name)');
  return { dev, filter, max };
}

function main(argv: readonly string[]): void {
  let o: AgentOptions;
  try {
    o = parseAgentArgs(argv);
  } catch (err) {
    process.stderr.write(`capture-agent: ${(err as Error).message}\n`);
    process.exit(2);
  }
  // Loaded here, not at the top: the orchestrator imports this module's siblings without needing libpcap.
  // eslint-disable-next-line @typescript-eslint/no-var-requires
  const { Cap } = require('cap') as { Cap: new () => CapHandle };
  const cap = new Cap();
  const buffer = Buffer.alloc(65_535);
  const linkType = cap.open(o.dev, o.filter, 16 * 1024 * 1024, buffer) as LinkType;
  let seen = 0;
  const out = (obj: unknown): void => void process.stdout.write(`${JSON.stringify(obj)}\n`);
  cap.on('packet', (nbytes: number) => {
    if (seen >= o.max) return;
    const t = performance.timeOrigin + performance.now();
    const pkt = decodeFrame(buffer, nbytes, linkType, t);
    if (pkt === null) return;
    seen++;
    out(pkt);
  });
  const stop = (): void => {
    let dropped: number | null = null;
    try {
      const st = cap.stats?.();
      dropped = st ? st.ps_drop : null;
    } catch {
      // Not available.
    }
    cap.close();
    out({ done: true, seen, dropped });
    process.exit(0);
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  out({ ready: true, dev: o.dev, filter: o.filter, linkType, pid: process.pid });
}

interface CapHandle {
  open(dev: string, filter: string, bufSize: number, buffer: Buffer): string;
  on(ev: 'packet', cb: (nbytes: number, trunc: boolean) => void): void;
  close(): void;
  stats?(): { ps_recv: number; ps_drop: number; ps_ifdrop: number };
}

if (require.main === module) {
  try {
    main(process.argv.slice(2));
  } catch (err) {
    process.stderr.write(`capture-agent: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  }
}
