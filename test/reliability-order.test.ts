// Packet order within a flow (found while testing backend faults, issue 7): with more than one TUN queue, packets of
// one TCP flow can leave l4nat in another order than they came in. Measured by the sender's own clock: the TCP
// timestamp option (TSval) never decreases along one connection as the client sends it, so a segment whose TSval
// is below one already seen on that connection was overtaken. Captured at three points: the lb's link from the
// client (before the lb's kernel routes to the TUN), the TUN itself (packets the kernel hands to l4nat, and packets
// l4nat writes back), and the backends. 60 short connections a second for 6 s, --queues 2. Checked: the
// client's packets reach the lb and the TUN in order (so anything out of order later is l4nat's); packets
// written by l4nat in order, thanks to the queue-steering program (before it, 8 of 2,076 segments were
// overtaken: a late ACK or FIN reaching a backend after the connection closed is answered with a reset); both
// queues carry traffic. Root-only; about 12 s.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { adminRequest } from '../src/lab/admin-client';
import { SERVICE_PORT } from '../src/lab/workload';
import { parseIp, PROTO } from './rigs/craft';
import { withLab } from './rigs/fixture';
import { startPcap, type RawPacket } from './rigs/pcap';
import { startProbe } from './rigs/probe-run';
import { skipUnless } from './rigs/requirements';

/** The TCP timestamp option's TSval of a segment, or null. */
function tsval(p: Buffer, l4off: number): number | null {
  const doff = (p[l4off + 12]! >> 4) * 4;
  for (let o = l4off + 20; o < l4off + doff && o < p.length; ) {
    const kind = p[o]!;
    if (kind === 0) break;
    if (kind === 1) {
      o++;
      continue;
    }
    const len = p[o + 1] ?? 0;
    if (kind === 8 && len === 10) return p.readUInt32BE(o + 2);
    o += Math.max(2, len);
  }
  return null;
}

interface OrderStats {
  segments: number;
  overtaken: number;
  flows: number;
  flowsHit: number;
}

/** Segments whose TSval is below the highest one already seen on their connection (by client port). */
function orderStats(pkts: readonly RawPacket[], pick: (src: string, dst: string) => boolean): OrderStats {
  const last = new Map<number, number>();
  const hit = new Set<number>();
  let segments = 0;
  let overtaken = 0;
  for (const p of pkts) {
    const i = parseIp(p.ip);
    if (!i || i.proto !== PROTO.TCP || !pick(i.src, i.dst)) continue;
    const ts = tsval(p.ip, i.l4off);
    if (ts === null) continue;
    const port = p.ip.readUInt16BE(i.l4off);
    segments++;
    const prev = last.get(port);
    if (prev !== undefined && ((ts - prev) | 0) < 0) {
      overtaken++;
      hit.add(port);
    } else {
      last.set(port, ts);
    }
  }
  return { segments, overtaken, flows: last.size, flowsHit: hit.size };
}

test('packet order within a flow: in order into l4nat; out of l4nat with --queues 2', { skip: skipUnless({ commands: ['tcpdump'] }), timeout: 90_000 }, async (t) => {
  await withLab({ backends: 3, ipv6: false, l4nat: { ports: [`${SERVICE_PORT}/tcp`], extraArgs: ['--hash-key', '5f3c2a1b0e9d8c7b6a5f4e3d2c1b0a99', '--queues', '2'] } }, async ({ lab, l4, dir }) => {
    const ingress = await startPcap(lab, 'lb', lab.client.lbDev, `tcp port ${SERVICE_PORT}`, dir);
    const tun = await startPcap(lab, 'lb', 'l4nat0', 'tcp', dir);
    const backs = await Promise.all(lab.backends.map((b) => startPcap(lab, b.role, b.dev, `tcp port ${SERVICE_PORT}`, dir)));
    const probe = startProbe(lab, { target: lab.vip4, connRate: 60, connTimeoutMs: 2_000, durationMs: 6_000 });
    await probe.report;
    const atIngress = await ingress.stop(500);
    const atTun = await tun.stop(0);
    const atBackends = (await Promise.all(backs.map((c) => c.stop(0)))).flat().sort((a, b) => a.t - b.t);
    const client = lab.client.ipv4;
    const a = orderStats(atIngress, (s) => s === client);
    const b = orderStats(atTun, (s, d) => s === client && d === lab.vip4);
    const c = orderStats(atTun, (s, d) => s === client && d !== lab.vip4);
    const d = orderStats(atBackends, (s) => s === client);
    const line = (x: OrderStats): string => `${x.overtaken} of ${x.segments} segments overtaken, in ${x.flowsHit} of ${x.flows} connections`;
    t.diagnostic(`client→VIP at the lb's link: ${line(a)}; handed to l4nat (TUN, to the VIP): ${line(b)}; written by l4nat (TUN, to a backend): ${line(c)}; at the backends: ${line(d)}`);
    assert.ok(a.segments > 1000 && d.segments > 1000, 'enough traffic was captured');
    // What arrives out of order already (a client retransmission, seen once in a run) is not l4nat's doing.
    assert.ok(a.overtaken <= 2 && b.overtaken <= a.overtaken, 'the client\'s packets reach the lb and the TUN (nearly) in order');
    // The steering program (native/steering.h) keeps both directions of a flow on one queue, so one worker.
    assert.ok(l4.logs().some((r) => String(r.msg).startsWith('queue steering program attached')), `the steering program was attached: ${l4.logs().map((r) => String(r.msg)).join(' | ').slice(0, 1500)}`);
    assert.ok(c.overtaken <= b.overtaken, `l4nat writes the packets of a flow in the order it read them: read ${line(b)}, wrote ${line(c)}`);
    assert.ok(d.overtaken <= b.overtaken, `and they reach the backends in that order: ${line(d)}`);
    // Both queues carried traffic: steering spreads flows, it does not funnel them into one queue.
    const perQueue = ((await adminRequest(lab, 'GET', '/v1/counters')).body as { perQueue: Array<Record<string, number>> }).perQueue;
    assert.ok(perQueue.length === 2 && perQueue.every((q) => q.forward > 100), `per-queue forwards: ${perQueue.map((q) => q.forward).join(', ')}`);
  });
});
