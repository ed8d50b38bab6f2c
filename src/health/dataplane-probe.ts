// A health check through the data plane (issue 5): the probe travels the path client traffic takes, so a
// backend whose replies bypass the l4nat host — the classic LVS-NAT mistake of a default gateway that is not
// the LB — fails it, while a TCP connect from the LB host itself (answered on the directly connected
// segment) would pass.
//
// How: the addon writes a TCP SYN into the TUN from the probe source address (never a real client) to the
// backend's address and port (native/core/probe.h). The kernel routes it to the backend like a translated
// client packet; the backend's SYN-ACK comes back through this host only if the backend routes replies here,
// and then the data plane records it as the answer to this probe (and counts it in the backend's probe_synacks)
// and answers it with a RST. A direct TCP connect runs alongside, so a failure can say which of the two cases it
// is. Only the answer to this very probe counts (its source port, its sequence number + 1, native/core/probe.h):
// a SYN-ACK forged from the backend's address, or one answering an earlier probe late, leaves it pending.
import { randomInt } from 'crypto';
import { probeTcp, type ProbeResult, type ProbeTarget } from './probe';
import type { ProbeId, ProbeSpec, ProbeState } from '../dataplane/native';

/** What the probe needs of the data plane (src/dataplane/native.ts Dataplane; a fake in unit tests). */
export interface ProbingDataplane {
  probe(p: ProbeSpec): void;
  probeState(p: ProbeId): ProbeState;
}

export interface DataplaneProbeContext {
  dp: ProbingDataplane;
  /** The backend's slot in the published table, or undefined when it is not in it (yet). */
  slot: number | undefined;
  /** The probe source address of the backend's family. */
  source: string | undefined;
  /** Polling interval for the answer counter (ms). */
  pollMs?: number;
  /** The direct connect, replaceable in tests. */
  direct?: (t: ProbeTarget, timeoutMs: number) => Promise<ProbeResult>;
}

const now = (): number => Number(process.hrtime.bigint() / 1000n) / 1000;

export const BYPASS_DETAIL =
  'no SYN-ACK came back through this host, but the backend answers a direct connection: its replies bypass the l4nat host (check its default gateway or its route to the clients)';

export async function probeDataplane(ctx: DataplaneProbeContext, t: ProbeTarget, timeoutMs: number): Promise<ProbeResult> {
  const t0 = now();
  const ms = (): number => Math.round((now() - t0) * 10) / 10;
  if (ctx.slot === undefined) return { ok: false, ms: 0, detail: 'the backend is not in the data plane table yet' };
  if (ctx.source === undefined) return { ok: false, ms: 0, detail: `no IPv${t.family} probe source address configured (global.probe_source)` };
  const id: ProbeId = { slot: ctx.slot, sport: randomInt(32768, 61000), seq: randomInt(0, 2 ** 32 - 1) };
  const direct = (ctx.direct ?? probeTcp)(t, timeoutMs);
  try {
    ctx.dp.probe({ ...id, src: ctx.source, dst: t.addr, dport: t.port });
  } catch (e) {
    await direct;
    return { ok: false, ms: ms(), detail: `cannot send the probe: ${(e as Error).message}` };
  }
  const deadline = t0 + timeoutMs;
  for (;;) {
    const st = ctx.dp.probeState(id);
    if (st === 'synack') return { ok: true, ms: ms(), detail: '' };
    if (st === 'rst') return { ok: false, ms: ms(), detail: 'connection refused (RST through the data plane)' };
    if (st === 'none') break; // another probe for this backend replaced ours (a check restarted): no verdict from it
    const left = deadline - now();
    if (left <= 0) break;
    await new Promise((r) => setTimeout(r, Math.min(ctx.pollMs ?? 20, left)));
  }
  const d = await direct;
  return { ok: false, ms: ms(), detail: d.ok ? BYPASS_DETAIL : `no answer through the data plane, nor directly (${d.detail})` };
}
