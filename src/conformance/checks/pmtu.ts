// Conformance checks of path-MTU discovery through the target (rows 7a-7g): a narrow hop between two routers and
// its control with l4nat's ICMP translation off, and the lb's own link or route to the client narrowed after start.
// Layers: ../scenario.ts, ../kernel.ts → this file → ../checks.ts (the registry).
import type { Check, CheckContext } from '../check';
import { readCounters, readCountersSum } from '../kernel';
import { mib, runConformanceClient, ServerEvent, startServers, vipFor, waitServerEvent, withLab, withTarget } from '../scenario';
import type { Lab } from '../../lab/lab';
import { sysctlSet, type NsProcess } from '../../lab/netns';

// ---------------------------------------------------------------------------------------------------------------
// 7. Path MTU

const HOP_MTU = 1280;
const STALL_MS = 5_000;

interface PmtuFamily {
  fam: string;
  /** The backends' counter of errors received, and the sender's of errors sent. */
  icmpName: string;
  icmpOut: string;
  what: string;
}

function pmtuFamily(family: 4 | 6): PmtuFamily {
  return family === 4
    ? { fam: 'IPv4', icmpName: 'Icmp.InDestUnreachs', icmpOut: 'Icmp.OutDestUnreachs', what: '"fragmentation needed"' }
    : { fam: 'IPv6', icmpName: 'Icmp6.InPktTooBigs', icmpOut: 'Icmp6.OutPktTooBigs', what: '"packet too big"' };
}

interface PmtuTransfer {
  client: Record<string, unknown>;
  server: ServerEvent | null;
  /** Errors the backends received, and those `sender` sent, during the transfer. */
  icmpIn: number;
  icmpSent: number;
  /** The serving backend's route-cache MTU towards the client ('' when none). */
  cached: string;
  served?: string;
  intact: boolean;
  stalled: boolean;
  /** Bytes the client read. */
  rx: number;
  /** What happened to the bytes, for the evidence. */
  text: string;
}

/** One download of ctx.pmtuBytes with DF set from a backend to the client, and what the kernels counted meanwhile. */
async function pmtuTransfer(lab: Lab, family: 4 | 6, ctx: CheckContext, servers: Map<string, NsProcess>, sender: string, eventWaitMs: number): Promise<PmtuTransfer> {
  const f = pmtuFamily(family);
  const roles = lab.backends.map((b) => b.id);
  const before = await readCountersSum(lab, roles);
  const senderBefore = await readCounters(lab, sender);
  const r = await runConformanceClient(lab, 'integrity', {
    target: vipFor(lab, family), up: 0, down: ctx.pmtuBytes, conns: 1, 'stall-ms': STALL_MS, 'timeout-ms': 60_000,
  });
  const conn = (r.conns as Array<Record<string, unknown>> | undefined)?.[0] ?? {};
  const ev = await waitServerEvent(servers, (e) => e.event === 'integrity', eventWaitMs);
  const after = await readCountersSum(lab, roles);
  const senderAfter = await readCounters(lab, sender);
  let cached = '';
  const served = ev?.backend;
  if (served !== undefined && served !== '') {
    const route = await lab.ip(served, [family === 4 ? '-4' : '-6', 'route', 'get', family === 4 ? lab.client.ipv4 : lab.client.ipv6!]);
    cached = /mtu (\d+)/.exec(route)?.[1] ?? '';
  }
  const intact = conn.rxBytes === ctx.pmtuBytes && ev !== null && conn.rxSha === ev.txSha && conn.stalled !== true;
  const stalled = conn.stalled === true;
  const rx = Number(conn.rxBytes ?? 0);
  const text = intact
    ? `${mib(ctx.pmtuBytes)} intact (SHA-256 match) in ${((conn.ms as number) / 1000).toFixed(1)} s`
    : `transfer ${stalled ? 'stalled' : 'failed'} at ${mib(rx)}${conn.error ? ` (${conn.error})` : ''}`;
  return {
    client: r, server: ev, cached, served, intact, stalled, text, rx,
    icmpIn: (after[f.icmpName] ?? 0) - (before[f.icmpName] ?? 0),
    icmpSent: (senderAfter[f.icmpOut] ?? 0) - (senderBefore[f.icmpOut] ?? 0),
  };
}

async function setUpPmtuLab(lab: Lab): Promise<Map<string, NsProcess>> {
  // Path-MTU discovery only: TCP's probing around a black hole would hide one.
  for (const b of lab.backends) await sysctlSet(b.ns, { 'net.ipv4.tcp_mtu_probing': 0 });
  return startServers(lab);
}

/** The narrow hop in the middle of the path (two routers between lb and client), and its control. */
export function pmtuCheck(id: string, family: 4 | 6, control: boolean): Check {
  const { fam, icmpName, what } = pmtuFamily(family);
  return {
    id,
    title: control
      ? `Path MTU control (${fam}): with l4nat's ICMP translation off (--debug-no-icmp-translate) the same transfer stalls`
      : `Path MTU (${fam}): ${HOP_MTU}-byte hop between lb and client; the router's ${what} reaches the backend, the transfer completes`,
    proxyMustFail: false,
    notApplicable: control ? { haproxy: 'a control of l4nat itself' } : undefined,
    run: (kind, ctx) =>
      withLab({ backends: 2, middleHopMtu: HOP_MTU }, async (lab) => {
        const servers = await setUpPmtuLab(lab);
        return withTarget(lab, kind, { l4natArgs: control ? ['--debug-no-icmp-translate'] : [] }, async () => {
          const t = await pmtuTransfer(lab, family, ctx, servers, 'r1', control ? 1_000 : 5_000);
          const common = `r1 sent ${t.icmpSent} ${what} (mtu ${HOP_MTU}); backends received ${t.icmpIn} (${icmpName})`;
          const data = { client: t.client, server: t.server, icmpIn: t.icmpIn, icmpSent: t.icmpSent };
          if (control) {
            const ok = t.stalled && t.icmpIn === 0 && t.icmpSent > 0;
            return {
              outcome: ok ? 'pass' : 'fail',
              evidence: `${common}; transfer ${t.stalled ? `stalled at ${mib(t.rx)} of ${mib(ctx.pmtuBytes)} (no progress for ${STALL_MS / 1000} s)` : `did not stall (${mib(t.rx)})`}` +
                ` — expected: the ICMP is dropped, so the backend never learns the path MTU`,
              data,
            };
          }
          const ok = t.intact && (kind === 'haproxy' || (t.icmpIn > 0 && t.cached === String(HOP_MTU)));
          return {
            outcome: ok ? 'pass' : 'fail',
            evidence: `${common}${t.cached ? `; ${t.served}'s route cache to the client: mtu ${t.cached}` : ''}; ${t.text}` +
              (kind === 'haproxy' ? ' (the proxy\'s own socket on the lb takes the ICMP)' : ''),
            data: { ...data, cachedMtu: t.cached },
          };
        });
      }),
  };
}

async function tunMtu(lab: Lab): Promise<string> {
  return /mtu (\d+)/.exec(await lab.ip('lb', ['link', 'show', 'l4nat0']))?.[1] ?? '';
}

/**
 * The narrow hop is the lb's own (issue 14): its link to the client, or a route to the client, narrowed to
 * HOP_MTU after the target started; every other link 1500 and no routers. The lb's kernel itself sends the
 * error: for a link, l4nat's TUN follows the link's MTU, so the backend's segments are too big for the TUN and
 * the error goes to the backend straight away; a route's MTU is no link MTU, so the TUN stays at 1500 and the
 * error is about the translated reply, from one of the lb's own addresses, which l4nat sends on from the VIP.
 */
export function ownHopPmtuCheck(id: string, family: 4 | 6, narrow: 'link' | 'route'): Check {
  const { fam, icmpName, what } = pmtuFamily(family);
  return {
    id,
    title: narrow === 'link'
      ? `Path MTU (${fam}): the lb's own link to the client narrowed to ${HOP_MTU} after start; the backend learns it, the transfer completes`
      : `Path MTU (${fam}): a route on the lb to the client with mtu ${HOP_MTU}, added after start (links stay 1500); the lb's ${what} reaches the backend, the transfer completes`,
    proxyMustFail: false,
    run: (kind, ctx) =>
      withLab({ backends: 2 }, async (lab) => {
        const servers = await setUpPmtuLab(lab);
        return withTarget(lab, kind, {}, async () => {
          const client = family === 4 ? lab.client.ipv4 : lab.client.ipv6!;
          if (narrow === 'link') await lab.ip('lb', ['link', 'set', lab.client.lbDev, 'mtu', String(HOP_MTU)]);
          else await lab.ip('lb', [`-${family}`, 'route', 'add', client, 'dev', lab.client.lbDev, 'mtu', String(HOP_MTU)]);
          let tun = '';
          if (kind === 'l4nat') {
            // l4nat follows a link change within a fraction of a second; the route leaves the TUN as it is.
            const deadline = Date.now() + 5_000;
            for (;;) {
              tun = await tunMtu(lab);
              if (narrow === 'route' || tun === String(HOP_MTU) || Date.now() > deadline) break;
              await new Promise((r) => setTimeout(r, 50));
            }
          }
          const t = await pmtuTransfer(lab, family, ctx, servers, 'lb', 5_000);
          const followed = tun === String(HOP_MTU) ? 'followed the link' : 'did not follow the link';
          const tunText = kind === 'haproxy' ? '' : `; l4nat0 mtu ${tun} (${narrow === 'link' ? followed : 'a route MTU is no link MTU'})`;
          const ok = t.intact && (kind === 'haproxy' || (t.icmpIn > 0 && t.cached === String(HOP_MTU) && (narrow === 'route' || tun === String(HOP_MTU))));
          return {
            outcome: ok ? 'pass' : 'fail',
            evidence: `lb sent ${t.icmpSent} ${what} (mtu ${HOP_MTU}); backends received ${t.icmpIn} (${icmpName})${tunText}` +
              `${t.cached ? `; ${t.served}'s route cache to the client: mtu ${t.cached}` : ''}; ${t.text}` +
              (kind === 'haproxy' ? ' (the proxy\'s own socket on the lb sends at its route\'s MTU)' : ''),
            data: { client: t.client, server: t.server, icmpIn: t.icmpIn, icmpSent: t.icmpSent, cachedMtu: t.cached, tunMtu: tun },
          };
        });
      }),
  };
}
