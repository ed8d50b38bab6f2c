// Captures with raw bytes kept: tcpdump -w in a lab namespace, then the classic pcap file read back here, so a
// test can check checksums byte for byte (the conformance capture decodes fields and drops the bytes).
// Layers: src/lab/lab.ts (processes in namespaces) → this file → tests.
import { readFileSync, rmSync } from 'node:fs';
import type { Lab } from '../../src/lab/lab';
import type { NsProcess } from '../../src/lab/netns';

export interface RawPacket {
  /** Capture time, ms since the epoch. */
  t: number;
  /** The IP packet (link header removed). */
  ip: Buffer;
}

const LINKTYPE_ETHERNET = 1;
const LINKTYPE_RAW = 101;
const LINKTYPE_LINUX_SLL = 113;

/** Parses a classic pcap file (either byte order, µs or ns timestamps); keeps IPv4/IPv6 packets only. */
export function parsePcap(buf: Buffer): RawPacket[] {
  if (buf.length < 24) return [];
  const magic = buf.readUInt32LE(0);
  let le: boolean;
  let nano = false;
  if (magic === 0xa1b2c3d4) le = true;
  else if (magic === 0xa1b23c4d) (le = true), (nano = true);
  else if (magic === 0xd4c3b2a1) le = false;
  else if (magic === 0x4d3cb2a1) (le = false), (nano = true);
  else throw new Error(`not a pcap file (magic ${magic.toString(16)})`);
  const u32 = (o: number): number => (le ? buf.readUInt32LE(o) : buf.readUInt32BE(o));
  const link = u32(20) & 0xffff;
  const out: RawPacket[] = [];
  let off = 24;
  while (off + 16 <= buf.length) {
    const sec = u32(off);
    const frac = u32(off + 4);
    const incl = u32(off + 8);
    off += 16;
    if (off + incl > buf.length) break; // cut short by a stop mid-write
    const frame = buf.subarray(off, off + incl);
    off += incl;
    let ethertype: number;
    let l3: Buffer;
    if (link === LINKTYPE_ETHERNET) {
      if (frame.length < 14) continue;
      ethertype = frame.readUInt16BE(12);
      l3 = frame.subarray(14);
      if (ethertype === 0x8100 && frame.length >= 18) {
        ethertype = frame.readUInt16BE(16);
        l3 = frame.subarray(18);
      }
    } else if (link === LINKTYPE_LINUX_SLL) {
      if (frame.length < 16) continue;
      ethertype = frame.readUInt16BE(14);
      l3 = frame.subarray(16);
    } else if (link === LINKTYPE_RAW) {
      ethertype = frame.length > 0 && frame[0]! >> 4 === 6 ? 0x86dd : 0x0800;
      l3 = frame;
    } else {
      throw new Error(`pcap link type ${link} not supported`);
    }
    if (ethertype !== 0x0800 && ethertype !== 0x86dd) continue;
    out.push({ t: sec * 1000 + (nano ? frac / 1e6 : frac / 1e3), ip: Buffer.from(l3) });
  }
  return out;
}

export interface PcapCapture {
  readonly role: string;
  readonly file: string;
  readonly proc: NsProcess;
  /** Waits `settleMs`, stops tcpdump (SIGINT flushes), reads and removes the file. */
  stop(settleMs?: number): Promise<RawPacket[]>;
}

/**
 * Starts `tcpdump -w FILE` on `dev` in `role`'s namespace (whole packets, written per packet, `filter` as BPF) and
 * resolves once it listens. The file lives under `dir`; stop() removes it.
 */
export async function startPcap(lab: Lab, role: string, dev: string, filter: string, dir: string): Promise<PcapCapture> {
  const file = `${dir}/${lab.id}-${role}-${dev}-${Date.now()}.pcap`;
  // -Z root: do not drop to the tcpdump user (it could not write into a root-owned temporary directory).
  const proc = lab.spawn(role, 'tcpdump', ['-i', dev, '-n', '-s', '0', '-U', '-B', '16384', '-Z', 'root', '-w', file, filter]);
  await proc.waitForLine((l) => /listening on/.test(l), { timeoutMs: 10_000, what: 'tcpdump "listening on" line', stream: 'stderr' });
  let stopped: Promise<RawPacket[]> | null = null;
  return {
    role,
    file,
    proc,
    stop(settleMs = 300) {
      stopped ??= (async () => {
        await new Promise((r) => setTimeout(r, settleMs));
        await proc.stop({ signal: 'SIGINT', timeoutMs: 5_000 });
        const tail = proc.stderrLines.join('\n');
        const dropped = /(\d+) packets dropped by kernel/.exec(tail);
        if (dropped && Number(dropped[1]) > 0) throw new Error(`tcpdump in ${role} dropped ${dropped[1]} packets: the capture is incomplete`);
        try {
          return parsePcap(readFileSync(file));
        } finally {
          rmSync(file, { force: true });
        }
      })();
      return stopped;
    },
  };
}
