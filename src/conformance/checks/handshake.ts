// Conformance checks of the connection's opening as the backend sees it: the client's own address (row 1), TCP
// Fast Open data in the SYN under either hash (rows 3a, 3b), and the client's SYN field by field (row 6).
// Layers: ../scenario.ts, ../capture.ts, ../kernel.ts → this file → ../checks.ts (the registry).
import type { Check } from '../check';
import { captureBackends, startCapture } from '../capture';
import { counterDelta, readCounters, readCountersSum } from '../kernel';
import { CapturedPacket, flowPackets, TCP_FLAGS } from '../packet';
import { parseReply, PORT, serverEvents, startServers, startTfoServers, tcpkitClient, TcpkitResult, waitServerEvent, withLab, withTarget } from '../scenario';
import { normalizeAddress, type Lab } from '../../lab/lab';
import { sysctlSet } from '../../lab/netns';
import { runClient } from '../../lab/workload';

// ---------------------------------------------------------------------------------------------------------------
// 1. Client address

export const clientAddress: Check = {
  id: '1',
  title: "Client address: the backend's accepted peer is the client",
  proxyMustFail: true,
  run: (kind) =>
    withLab({ backends: 2 }, async (lab) => {
      await startServers(lab);
      return withTarget(lab, kind, {}, async () => {
        const r4 = await runClient(lab, { target: lab.vip4, count: 40, concurrency: 8, timeoutMs: 30_000 });
        const r6 = await runClient(lab, { target: lab.vip6!, count: 20, concurrency: 8, timeoutMs: 30_000 });
        const seen = [...new Set([...r4.peerAddrs, ...r6.peerAddrs].map(normalizeAddress))];
        const want = [lab.client.ipv4, lab.client.ipv6!];
        const ok = r4.failed === 0 && r6.failed === 0 && r4.peerAddrs.length === 1 && r6.peerAddrs.length === 1 &&
          normalizeAddress(r4.peerAddrs[0]!) === want[0] && normalizeAddress(r6.peerAddrs[0]!) === want[1];
        const ports = r4.peerPortMismatches + r6.peerPortMismatches;
        return {
          outcome: ok ? 'pass' : 'fail',
          evidence: `${r4.ok + r6.ok}/${r4.count + r6.count} conns (v4+v6); backends saw ${seen.join(', ')}${ok ? '' : ` (client is ${want.join(', ')})`}; ` +
            `source port ${ports === 0 ? 'kept' : `changed on ${ports}`}`,
          data: { v4: r4, v6: r6 },
        };
      });
    }),
};

// ---------------------------------------------------------------------------------------------------------------
// 3. TCP Fast Open

const TFO_KEY = '0badc0de-0badc0de-0badc0de-0badc0de';
const TFO_COUNTERS = ['TcpExt.TCPFastOpenPassive', 'TcpExt.TCPFastOpenPassiveFail', 'TcpExt.TCPFastOpenCookieReqd'];

/** Client: Fast Open as a client (1); backends and the lb: client and server (3), the same server key everywhere. */
async function enableTfo(lab: Lab): Promise<void> {
  await sysctlSet(lab.client.ns, { 'net.ipv4.tcp_fastopen': 1 });
  for (const b of lab.backends) await sysctlSet(b.ns, { 'net.ipv4.tcp_fastopen': 3, 'net.ipv4.tcp_fastopen_key': TFO_KEY });
  await sysctlSet(lab.lb.ns, { 'net.ipv4.tcp_fastopen': 3, 'net.ipv4.tcp_fastopen_key': TFO_KEY });
}

/** SYNs with payload that reached a backend from `src`. */
function synsWithData(pkts: readonly CapturedPacket[], src?: string): CapturedPacket[] {
  return pkts.filter((p) => p.tcp && (p.tcp.flags & TCP_FLAGS.SYN) !== 0 && (p.tcp.flags & TCP_FLAGS.ACK) === 0 && p.tcp.len > 0 && (src === undefined || p.src === src));
}

function fmtCounters(c: Record<string, number>): string {
  return Object.entries(c)
    .map(([k, v]) => `${k.replace(/^TcpExt\.TCPFastOpen/, '')} ${v >= 0 ? '+' : ''}${v}`)
    .join(', ');
}

const TFO_REPEATS = 3;

export const tfoSourceHash: Check = {
  id: '3a',
  title: 'TCP Fast Open, source-address hashing: the request rides in the SYN to the backend every time',
  proxyMustFail: true,
  run: (kind) =>
    withLab({ backends: 2, ipv6: false }, async (lab) => {
      await enableTfo(lab);
      const servers = await startTfoServers(lab);
      return withTarget(lab, kind, { hash: 'src', haproxy: { tfo: true } }, async () => {
        const roles = lab.backends.map((b) => b.id);
        const caps = await captureBackends(lab, `tcp port ${PORT}`);
        const before = await readCountersSum(lab, roles);
        const lbBefore = await readCounters(lab, 'lb');
        const base = ['--host', lab.vip4, '--port', String(PORT), '--tfo'];
        const first = await tcpkitClient(lab, [...base, '--send', 'tfo-0']);
        const later: TcpkitResult[] = [];
        for (let i = 1; i <= TFO_REPEATS; i++) later.push(await tcpkitClient(lab, [...base, '--send', `tfo-${i}`]));
        const after = await readCountersSum(lab, roles);
        const lbAfter = await readCounters(lab, 'lb');
        const pkts = (await Promise.all([...caps.values()].map((c) => c.stop()))).flat();
        const d = counterDelta(before, after, TFO_COUNTERS);
        const dLb = counterDelta(lbBefore, lbAfter, TFO_COUNTERS);
        const synData = synsWithData(pkts, lab.client.ipv4).filter((p) => /^tfo-[1-9]/.test(p.tcp!.data));
        const events = serverEvents(servers).filter((e) => e.event === 'conn');
        const inSyn = events.filter((e) => e.synData === true).length;
        const backendsUsed = [...new Set(later.map((r) => parseReply(r.replies[0])?.backend))];
        const allOk = first.ok && later.every((r) => r.ok && r.replies.length === 1);
        const ok = allOk && synData.length === TFO_REPEATS && d['TcpExt.TCPFastOpenPassive'] === TFO_REPEATS &&
          d['TcpExt.TCPFastOpenPassiveFail'] === 0 && inSyn === TFO_REPEATS;
        return {
          outcome: ok ? 'pass' : 'fail',
          evidence: `after a cookie request, ${synData.length}/${TFO_REPEATS} SYNs at ${backendsUsed.join('+')} carried the client's request` +
            ` (server: ${inSyn} accepted from the SYN); backends ${fmtCounters(d)}` +
            (kind === 'haproxy' ? `; lb (haproxy's own listener) ${fmtCounters(dLb)}` : '') +
            (allOk ? '; all replies ok' : '; some connections failed'),
          data: { first, later, delta: d, lbDelta: dLb, events },
        };
      });
    }),
};

export const tfoFiveTuple: Check = {
  id: '3b',
  title: "TCP Fast Open, 5-tuple hashing: a cookie from one backend fails at another, the handshake falls back, data arrives",
  proxyMustFail: false,
  run: (kind) =>
    withLab({ backends: 2, ipv6: false }, async (lab) => {
      await enableTfo(lab);
      const servers = await startTfoServers(lab);
      return withTarget(lab, kind, { hash: '5tuple', haproxy: { tfo: true } }, async () => {
        const base = ['--host', lab.vip4, '--port', String(PORT)];
        const first = await tcpkitClient(lab, [...base, '--tfo', '--send', 'cookie']);
        const cookieFrom = parseReply(first.replies[0])?.backend;
        // Find a source port whose 5-tuple lands on the other backend (plain connections, closed with a reset so
        // that no TIME_WAIT keeps the port).
        let port = 0;
        let other: string | undefined;
        for (let p = 41_000; p < 41_200 && port === 0; p++) {
          const probe = await tcpkitClient(lab, [...base, '--bind-port', String(p), '--send', 'probe', '--close', 'rst']);
          const b = parseReply(probe.replies[0])?.backend;
          if (probe.ok && b !== undefined && b !== cookieFrom) {
            port = p;
            other = b;
          }
        }
        if (port === 0 || cookieFrom === undefined) {
          return { outcome: 'fail', evidence: `no source port led to a backend other than ${cookieFrom} (first: ${JSON.stringify(first)})` };
        }
        const roles = lab.backends.map((b) => b.id);
        const caps = await captureBackends(lab, `tcp port ${PORT}`);
        const before = await readCountersSum(lab, roles);
        const lbBefore = await readCounters(lab, 'lb');
        const second = await tcpkitClient(lab, [...base, '--tfo', '--bind-port', String(port), '--send', 'tfo-other']);
        const after = await readCountersSum(lab, roles);
        const lbAfter = await readCounters(lab, 'lb');
        const pkts = (await Promise.all([...caps.values()].map((c) => c.stop()))).flat();
        const d = counterDelta(before, after, TFO_COUNTERS);
        const dLb = counterDelta(lbBefore, lbAfter, TFO_COUNTERS);
        const landed = parseReply(second.replies[0]);
        const ev = await waitServerEvent(servers, (e) => e.event === 'conn' && e.req === 'tfo-other', 2_000);
        const synData = synsWithData(pkts, lab.client.ipv4);
        const delivered = second.ok && landed !== null;
        const ok = delivered && landed.backend === other && d['TcpExt.TCPFastOpenPassiveFail']! >= 1 &&
          d['TcpExt.TCPFastOpenPassive'] === 0 && ev?.synData === false && synData.length === 1;
        return {
          outcome: ok ? 'pass' : 'fail',
          evidence: `cookie from ${cookieFrom}; source port ${port} → ${landed?.backend ?? '?'}: SYN+data seen there ${synData.length}×, ` +
            `backends ${fmtCounters(d)}` + (kind === 'haproxy' ? `; lb (haproxy) ${fmtCounters(dLb)}` : '') +
            `; ${delivered ? 'request delivered after the handshake, reply ok' : `not delivered (${second.error})`}`,
          data: { first, second, cookieFrom, port, other, delta: d, lbDelta: dLb, event: ev },
        };
      });
    }),
};

// ---------------------------------------------------------------------------------------------------------------
// 6. The client's own SYN

const CLIENT_MSS = 1000;

interface SynFields {
  isn: number;
  tsval: number | undefined;
  mss: number | undefined;
  wscale: number | undefined;
  sackOk: boolean;
  ece: boolean;
  cwr: boolean;
  ipEcn: number;
  window: number;
}

function synFields(p: CapturedPacket): SynFields {
  const t = p.tcp!;
  return {
    isn: t.seq,
    tsval: t.opts.tsval,
    mss: t.opts.mss,
    wscale: t.opts.wscale,
    sackOk: t.opts.sackOk === true,
    ece: (t.flags & TCP_FLAGS.ECE) !== 0,
    cwr: (t.flags & TCP_FLAGS.CWR) !== 0,
    ipEcn: p.ecn,
    window: t.win,
  };
}

const isPureSyn = (p: CapturedPacket): boolean => p.tcp !== undefined && (p.tcp.flags & (TCP_FLAGS.SYN | TCP_FLAGS.ACK)) === TCP_FLAGS.SYN;

export const ownSyn: Check = {
  id: '6',
  title: `The client's own SYN at the backend, field by field (client MSS ${CLIENT_MSS} via TCP_MAXSEG, ECN on)`,
  proxyMustFail: true,
  run: (kind) =>
    withLab({ backends: 2, ipv6: false }, async (lab) => {
      await sysctlSet(lab.client.ns, { 'net.ipv4.tcp_ecn': 1 });
      await startServers(lab);
      return withTarget(lab, kind, {}, async () => {
        const filter = `tcp port ${PORT}`;
        const caps = await captureBackends(lab, filter);
        const clientCap = await startCapture(lab, 'client', lab.client.dev, filter);
        const r = await tcpkitClient(lab, ['--host', lab.vip4, '--port', String(PORT), '--mss', String(CLIENT_MSS), '--send', 'hello']);
        const reply = parseReply(r.replies[0]);
        const cPkts = await clientCap.stop();
        const bPkts = reply ? await caps.get(reply.backend)!.stop() : [];
        await Promise.all([...caps.values()].map((c) => c.stop(0)));
        const cSyn = flowPackets(cPkts, lab.client.ipv4, r.localPort).find(isPureSyn);
        const bSyn = reply ? flowPackets(bPkts, reply.addr, reply.port).find(isPureSyn) : undefined;
        if (!cSyn || !bSyn || !reply) {
          return { outcome: 'fail', evidence: `SYN not captured (client ${cSyn ? 'yes' : 'no'}, backend ${bSyn ? 'yes' : 'no'}); client: ${JSON.stringify(r)}` };
        }
        const a = synFields(cSyn);
        const b = synFields(bSyn);
        const keys: Array<[keyof SynFields, string]> = [
          ['isn', 'ISN'],
          ['tsval', 'TSval'],
          ['mss', 'MSS'],
          ['wscale', 'wscale'],
          ['sackOk', 'SACK-perm'],
          ['ece', 'ECE'],
          ['cwr', 'CWR'],
        ];
        const diffs = keys.filter(([k]) => a[k] !== b[k]);
        const show = (v: unknown): string => (v === true ? 'yes' : v === false ? 'no' : String(v));
        const evidence = keys.map(([k, n]) => (a[k] === b[k] ? `${n} ${show(a[k])} =` : `${n} ${show(a[k])} ≠ ${show(b[k])}`)).join(', ');
        return {
          outcome: diffs.length === 0 ? 'pass' : 'fail',
          evidence: `client SYN vs SYN at ${reply.backend} (from ${reply.addr}:${reply.port}): ${evidence}`,
          data: { client: a, backend: b, reply },
        };
      });
    }),
};
