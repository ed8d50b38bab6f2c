// The C packet sender (c/pktgen.c, built on demand): raw frames from a namespace through AF_PACKET, either the
// packets of a file (crafted by craft.ts, garbage.ts) or a flood of generated SYNs or ACKs.
// Layers: src/lab (c-build, lab) → this file → test/reliability-*.test.ts, test/health-dataplane-netns.test.ts.
import type { Lab } from '../../src/lab/lab';
import { cTool } from '../../src/lab/c-build';

/** Builds test/rigs/c/pktgen.c once per content ($TMPDIR/l4nat-reliability-<sha>/pktgen); its path. */
export function pktgen(): Promise<string> {
  return cTool('test/rigs/c/pktgen.c', 'reliability', 'pktgen');
}

export interface PktgenReport {
  mode: 'send' | 'flood';
  sent: number;
  errors: number;
  firstError: string;
  elapsedMs: number;
  pps: number;
}

export function parsePktgen(stdout: string): PktgenReport {
  const line = stdout.trim().split('\n').reverse().find((l) => l.startsWith('{'));
  if (!line) throw new Error(`pktgen printed no report: ${stdout}`);
  return JSON.parse(line) as PktgenReport;
}

/** The MAC address of the lb's end of a link (default: the client's, where the client's frames must go). */
export async function lbMac(lab: Lab, lbDev = lab.client.lbDev): Promise<string> {
  const out = await lab.ip('lb', ['-j', 'link', 'show', 'dev', lbDev]);
  const mac = (JSON.parse(out) as Array<{ address: string }>)[0]?.address;
  if (!mac) throw new Error(`no MAC address for ${lbDev} in the lb`);
  return mac;
}

const ETH_P_IP = 0x0800;
const ETH_P_IPV6 = 0x86dd;

/**
 * Encodes packets for `pktgen send --file`: [u16 length][u16 EtherType][bytes]..., big-endian. The EtherType is
 * the given one, else IPv4 or IPv6 by the family (not by the version nibble, which may be wrong on purpose).
 */
export function packetFile(pkts: ReadonlyArray<{ pkt: Buffer; family: 4 | 6; ethertype?: number }>): Buffer {
  return Buffer.concat(
    pkts.flatMap((p) => {
      const h = Buffer.alloc(4);
      h.writeUInt16BE(p.pkt.length, 0);
      h.writeUInt16BE(p.ethertype ?? (p.family === 6 ? ETH_P_IPV6 : ETH_P_IP), 2);
      return [h, p.pkt];
    }),
  );
}
