// `l4nat trace [--client IP[:PORT]] [--service S] [--backend ADDR:PORT] [--drops] [-c N] [--seconds S] [--pcap FILE]`:
// the packets a match takes, live, one line each with the data plane's verdict, over GET /v1/trace
// (src/admin/trace-route.ts). --pcap writes the wire view (both sides of the TUN) as pcapng. Exit codes: 0 done,
// 1 the API said no, 2 usage error.
import { closeSync, openSync, writeSync } from 'fs';
import { OptionError, Subject } from '../config/options';
import type { TraceEvent } from '../trace/events';
import { formatPacketLine } from '../trace/events';
import { enhancedPacket, tracePcapHeader, WIRE_SIDES } from '../trace/pcapng';
import { parseTraceRequest, traceQuery, type TraceParam, type TraceRequest } from '../trace/request';
import { apiStream, CLIENT_FLAGS, clientOptions } from './client';
import { parseFlags, type FlagSpec } from './up-args';

const TRACE_FLAGS: Record<string, FlagSpec> = {
  ...CLIENT_FLAGS,
  client: { value: true },
  service: { value: true },
  backend: { value: true },
  drops: { value: false },
  count: { value: true },
  seconds: { value: true },
  pcap: { value: true },
  json: { value: false },
};

export interface TraceArgs {
  req: TraceRequest;
  pcap?: string;
  json: boolean;
  flags: Map<string, string[]>;
}

/** Parses trace's arguments; -c N is --count N. Throws OptionError naming the flag and what it expects. */
export function parseTraceArgs(argv: readonly string[]): TraceArgs {
  const args: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '-c') {
      if (i + 1 >= argv.length) throw new OptionError('-c needs a value: the number of packets to trace');
      args.push(`--count=${argv[++i]}`);
    } else if (!a.startsWith('--')) {
      throw new OptionError(`trace takes flags only (--client, --service, --backend, --drops, -c, --seconds, --pcap), got "${a}"`);
    } else {
      args.push(a);
      const name = a.slice(2).split('=')[0];
      if (TRACE_FLAGS[name]?.value && !a.includes('=') && i + 1 < argv.length) args.push(argv[++i]);
    }
  }
  const flags = parseFlags(args, TRACE_FLAGS, ' (trace takes --client, --service, --backend, --drops, -c/--count, --seconds, --pcap, --json and the API flags)');
  const pcap = flags.get('pcap')?.[0];
  const get = (p: TraceParam): string | undefined => (p === 'pcap' ? (pcap !== undefined ? '1' : undefined) : flags.get(p)?.[0]);
  const req = parseTraceRequest(get, (p) => Subject.flag(p === 'count' ? 'count (-c)' : p));
  if (pcap === '') throw Subject.flag('pcap').expected('a file name', '""');
  return { req, ...(pcap !== undefined ? { pcap } : {}), json: flags.has('json'), flags };
}

export async function traceCommand(argv: readonly string[]): Promise<number> {
  const a = parseTraceArgs(argv);
  const o = clientOptions(a.flags);
  const fd = a.pcap !== undefined ? openSync(a.pcap, 'w', 0o600) : undefined;
  let packets = 0;
  let wire = 0;
  try {
    const s = apiStream(o, `/v1/trace?${traceQuery(a.req)}`, (line) => {
      const e = JSON.parse(line) as TraceEvent;
      switch (e.type) {
        case 'start':
          process.stderr.write(`tracing ${JSON.stringify(e.match)} for ${e.count} packets or ${e.seconds} s${e.wire ? `, wire view into ${a.pcap}` : ''} (Ctrl-C ends it)\n`);
          if (fd !== undefined) writeSync(fd, tracePcapHeader(e.tun));
          break;
        case 'packet':
          packets++;
          process.stdout.write(a.json ? `${line}\n` : `${formatPacketLine(e)}\n`);
          break;
        case 'wire':
          if (fd !== undefined) {
            wire++;
            writeSync(fd, enhancedPacket(WIRE_SIDES.indexOf(e.side), e.timeUs, Buffer.from(e.data, 'base64'), e.origLen));
          }
          break;
        case 'lost':
          process.stderr.write(`l4nat: ${e.records} packets not traced: ${e.slowClient ? 'this client read too slowly' : "the data plane's trace rings were full"}\n`);
          break;
        case 'end':
          process.stderr.write(`${e.packets} packets traced (ended: ${e.reason})${fd !== undefined ? `, ${wire} packets in ${a.pcap}` : ''}\n`);
          break;
      }
    });
    const stop = (): void => s.abort();
    process.once('SIGINT', stop);
    try {
      await s.done;
    } finally {
      process.off('SIGINT', stop);
    }
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
  return 0;
}
