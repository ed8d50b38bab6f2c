// Conformance checks of connections and flows that go quiet: keepalive probes reach the backend (row 2), a TCP
// connection idle across a backend change stays where it was (row 9), a UDP flow idle past its timeout may move
// while a busy one stays (row 10).
// Layers: ../scenario.ts, ../capture.ts → this file → ../checks.ts (the registry).
import type { Check } from '../check';
import { captureBackends, startCapture } from '../capture';
import { CapturedPacket, flowPackets, keepaliveProbes } from '../packet';
import { parseReply, PORT, startClient, startServers, tcpkitClient, withLab, withTarget } from '../scenario';
import type { TargetOptions } from '../target';
import { normalizeAddress } from '../../lab/lab';
import { runClient } from '../../lab/workload';

// ---------------------------------------------------------------------------------------------------------------
// 2. Keepalive

const KEEPALIVE = { idle: 1, intvl: 1, cnt: 5, quietMs: 5_000 };

export const keepalive: Check = {
  id: '2',
  title: `Keepalive: client probes (idle ${KEEPALIVE.idle} s, interval ${KEEPALIVE.intvl} s) reach the backend; connection survives ${KEEPALIVE.quietMs / 1000} s idle`,
  proxyMustFail: true,
  run: (kind) =>
    withLab({ backends: 2, ipv6: false }, async (lab) => {
      await startServers(lab);
      return withTarget(lab, kind, {}, async () => {
        const filter = `tcp port ${PORT}`;
        const caps = await captureBackends(lab, filter);
        const clientCap = await startCapture(lab, 'client', lab.client.dev, filter);
        const r = await tcpkitClient(lab, [
          '--host', lab.vip4, '--port', String(PORT),
          '--keepalive', `${KEEPALIVE.idle},${KEEPALIVE.intvl},${KEEPALIVE.cnt}`,
          '--send', 'hello', '--idle-ms', String(KEEPALIVE.quietMs), '--send', 'hello', '--timeout-ms', '5000',
        ]);
        const sentPkts = await clientCap.stop();
        const first = parseReply(r.replies[0]);
        const clientProbes = keepaliveProbes(flowPackets(sentPkts, lab.client.ipv4, r.localPort));
        let backendProbes: CapturedPacket[] = [];
        if (first) {
          const pkts = await caps.get(first.backend)!.stop();
          backendProbes = keepaliveProbes(flowPackets(pkts, first.addr, first.port, lab.backend(first.backend).ipv4, PORT));
        }
        await Promise.all([...caps.values()].map((c) => c.stop(0)));
        const gaps = backendProbes.slice(1).map((p, i) => (p.t - backendProbes[i]!.t) / 1000);
        const alive = r.ok && r.replies.length === 2;
        const ok = alive && backendProbes.length >= 3;
        return {
          outcome: ok ? 'pass' : 'fail',
          evidence: `client sent ${clientProbes.length} probes; ${first?.backend ?? 'backend'} saw ${backendProbes.length} from ${first ? `${first.addr}:${first.port}` : '?'}` +
            (gaps.length > 0 ? ` (every ${(gaps.reduce((a, b) => a + b, 0) / gaps.length).toFixed(1)} s, seq = snd.nxt−1, 0 bytes)` : '') +
            `; after ${KEEPALIVE.quietMs / 1000} s idle: ${alive ? 'connection alive' : `failed (${r.error})`}`,
          data: { client: r, clientProbes: clientProbes.length, backendProbes: backendProbes.length, gaps },
        };
      });
    }),
};

// ---------------------------------------------------------------------------------------------------------------
// 9. Long idle across a backend change

const IDLE_MS = 5_000;
const HAPROXY_CLIENT_TIMEOUT_MS = 3_000;
const L4NAT_TCP_TIMEOUT_S = 60;

export const longIdle: Check = {
  id: '9',
  title: `Long idle across a change: ${IDLE_MS / 1000} s idle (HAProxy timeout client ${HAPROXY_CLIENT_TIMEOUT_MS / 1000} s, l4nat --tcp-timeout ${L4NAT_TCP_TIMEOUT_S}) while b3 is added and the connection's backend drained`,
  proxyMustFail: false,
  run: (kind) =>
    withLab({ backends: 3, ipv6: false }, async (lab) => {
      await startServers(lab);
      const opts: TargetOptions = {
        backendIds: ['b1', 'b2'],
        l4natArgs: ['--tcp-timeout', String(L4NAT_TCP_TIMEOUT_S)],
        haproxy: { timeoutClientMs: HAPROXY_CLIENT_TIMEOUT_MS },
      };
      return withTarget(lab, kind, opts, async (t) => {
        const run = startClient(lab, 'idle', { target: lab.vip4, 'idle-ms': IDLE_MS, 'timeout-ms': 10_000 });
        const line = await run.proc.waitForLine((l) => l.includes('"event":"connected"'), { timeoutMs: 10_000, what: 'connected line', stream: 'stdout' });
        const origin = parseReply((JSON.parse(line) as { reply: string }).reply);
        if (!origin) throw new Error(`bad first reply: ${line}`);
        await t.addBackend('b3');
        await t.drainBackend(origin.backend);
        const r = await run.result;
        const second = parseReply(r.second as string | null);
        // New connections: none to the drained backend.
        const fresh = await runClient(lab, { target: lab.vip4, count: 30, concurrency: 6, timeoutMs: 20_000 });
        const ok = second !== null && second.backend === origin.backend && r.error === null;
        const spread = Object.entries(fresh.perBackend).sort().map(([b, n]) => `${b} ${n}`).join(', ');
        return {
          outcome: ok ? 'pass' : 'fail',
          evidence: `connection on ${origin.backend}; b3 added, ${origin.backend} drained; after ${IDLE_MS / 1000} s idle: ` +
            (ok ? `answered by ${second.backend} on the same connection` : `${String(r.error ?? `answered by ${second?.backend}`)}`) +
            `; 30 new connections: ${spread || 'none'}`,
          data: { client: r, fresh: fresh.perBackend },
        };
      });
    }),
};

// ---------------------------------------------------------------------------------------------------------------
// 10. UDP

const UDP_TIMEOUT_S = 2;
const UDP_IDLE_MS = 4_000;

export const udpPinning: Check = {
  id: '10',
  title: `UDP: a busy flow stays on its backend, replies come from VIP:port; a flow idle longer than --udp-timeout ${UDP_TIMEOUT_S} may move (here: its backend is drained meanwhile, so it does)`,
  proxyMustFail: false,
  notApplicable: { haproxy: 'HAProxy does not balance UDP (TCP mode only)' },
  run: (kind) =>
    withLab({ backends: 2, ipv6: false }, async (lab) => {
      await startServers(lab);
      return withTarget(lab, kind, { hash: 'src', l4natArgs: ['--udp-timeout', String(UDP_TIMEOUT_S)] }, async (t) => {
        const run = startClient(lab, 'udp', { target: lab.vip4, 'interval-ms': 100, 'idle-ms': UDP_IDLE_MS, 'timeout-ms': 20_000 });
        const line = await run.proc.waitForLine((l) => l.includes('"event":"idle"'), { timeoutMs: 10_000, what: 'idle line', stream: 'stdout' });
        const at = JSON.parse(line) as { quietBackend: string | null; busyBackend: string | null };
        if (at.quietBackend === null || at.busyBackend === null) throw new Error(`no UDP reply before the idle phase: ${line}`);
        await t.drainBackend(at.quietBackend);
        const r = await run.result;
        type Rep = { backend: string; from: string; fromPort: number };
        const busy = (r.busy as { replies: Rep[]; sent: number }).replies;
        const quiet = r.quiet as { before: Rep[]; after: Rep[] };
        const all = [...busy, ...quiet.before, ...quiet.after];
        const wrongSource = all.filter((x) => normalizeAddress(x.from) !== lab.vip4 || x.fromPort !== PORT).length;
        const busyBackends = [...new Set(busy.map((x) => x.backend))];
        const moved = quiet.after[0]?.backend;
        const ok = busyBackends.length === 1 && busy.length >= 30 && wrongSource === 0 && moved !== undefined && moved !== at.quietBackend;
        return {
          outcome: ok ? 'pass' : 'fail',
          evidence: `busy flow: ${busy.length} replies, all from ${busyBackends.join('+')} (drained meanwhile); idle flow: ${at.quietBackend} → ${moved ?? 'no reply'} after ${UDP_IDLE_MS / 1000} s idle; ` +
            `${wrongSource === 0 ? `every reply from ${lab.vip4}:${PORT}` : `${wrongSource} replies from elsewhere`}`,
          data: { busyBackends, quiet, wrongSource },
        };
      });
    }),
};
