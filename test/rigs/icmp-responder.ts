// Lab backend for icmp health-check tests: answers echo requests itself, on raw ICMP and ICMPv6 sockets, the way a
// broken or foreign responder might. Run inside a backend namespace whose kernel does not answer echo itself
// (net.ipv4.icmp_echo_ignore_all / net.ipv6.icmp.echo_ignore_all = 1; raw sockets still get the requests).
//   node dist/test/rigs/icmp-responder.js --mode echo|wrong-ident|wrong-seq
//   echo:        a correct reply (the positive control: the check must count it)
//   wrong-ident: the reply carries the request's identifier with its low bit flipped
//   wrong-seq:   the reply carries the request's sequence number plus one
// Replies are built with the reliability tests' packet builder (craft.ts), not with the checker's
// own code. Prints {"ready":true} once both sockets are open, then {"answered":FAMILY,"ident":N,"seq":N} per reply
// sent. SIGTERM/SIGINT close the sockets and exit 0.
import { icmp } from './craft';

type Mode = 'echo' | 'wrong-ident' | 'wrong-seq';

interface RawSocket {
  on(event: 'message', cb: (packet: Buffer, source: string) => void): void;
  on(event: 'error', cb: (err: Error) => void): void;
  send(buf: Buffer, offset: number, length: number, address: string, cb: (err: Error | null) => void): void;
  close(): void;
}

function parseMode(argv: readonly string[]): Mode {
  if (argv.length !== 2 || argv[0] !== '--mode' || !['echo', 'wrong-ident', 'wrong-seq'].includes(argv[1]!)) {
    throw new Error(`usage: icmp-responder --mode echo|wrong-ident|wrong-seq (got ${argv.join(' ')})`);
  }
  return argv[1] as Mode;
}

function main(): void {
  const mode = parseMode(process.argv.slice(2));
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const raw = require('raw-socket') as {
    createSocket(o: { protocol: number; addressFamily: number }): RawSocket;
    AddressFamily: { IPv4: number; IPv6: number };
    Protocol: { ICMP: number; ICMPv6: number };
  };
  const sockets: RawSocket[] = [];
  for (const family of [4, 6] as const) {
    const s = raw.createSocket({
      protocol: family === 4 ? raw.Protocol.ICMP : raw.Protocol.ICMPv6,
      addressFamily: family === 4 ? raw.AddressFamily.IPv4 : raw.AddressFamily.IPv6,
    });
    s.on('error', (err) => process.stderr.write(`icmp-responder: IPv${family} socket: ${err.message}\n`));
    s.on('message', (packet, source) => {
      const m = family === 4 ? packet.subarray((packet[0]! & 0x0f) * 4) : packet; // IPv4 arrives with its header
      if (m.length < 8 || m[0] !== (family === 4 ? 8 : 128)) return; // echo requests only
      const ident = m.readUInt16BE(4) ^ (mode === 'wrong-ident' ? 1 : 0);
      const seq = (m.readUInt16BE(6) + (mode === 'wrong-seq' ? 1 : 0)) & 0xffff;
      // IPv6: the kernel fills in the checksum (the pseudo-header's source is its choice), whatever is passed here.
      const reply = icmp(source, source, family === 4 ? 0 : 129, 0, ((ident << 16) | seq) >>> 0, m.subarray(8));
      s.send(reply, 0, reply.length, source, (err) => {
        if (err) process.stderr.write(`icmp-responder: reply to ${source}: ${err.message}\n`);
        else process.stdout.write(`${JSON.stringify({ answered: family, ident, seq })}\n`);
      });
    });
    sockets.push(s);
  }
  const stop = (): void => {
    for (const s of sockets) s.close();
    process.exit(0);
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  process.stdout.write(`${JSON.stringify({ ready: true, mode })}\n`);
}

if (require.main === module) main();
