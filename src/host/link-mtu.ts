// The TUN's MTU must not exceed the smallest egress MTU towards backends and clients (docs/design.md item 4): a packet
// too big for the TUN is bounced by the kernel before translation, with an error that reaches its sender directly,
// while one too big for a link after translation needs l4nat to translate the host's own error. IPv6 needs at
// least 1280. Links change while l4nat runs (a VPN or PPPoE uplink comes up, someone lowers an MTU), so the rule
// is followed through rtnetlink link notifications, not computed once; --mtu (global.mtu) pins the TUN's MTU.
import type { rt } from 'netlink';
import type { HostSetup } from './setup';
import { MIN_MTU } from './tun-link';
import { StateWatch } from './state-watch';
import type { Logger } from '../util/log';

const NO_LINK_MTU = 1500; // no other link is up: the usual Ethernet MTU

export interface SmallestMtu {
  /** What the TUN's MTU should be: the smallest MTU of the other links that are up, at least 1280. */
  mtu: number;
  /** The link that has it (null: no other link is up). */
  link: string | null;
}

/** The smallest MTU among the up, non-loopback links other than `exclude`, at least 1280. */
export function smallestMtu(links: readonly rt.LinkMessage[], exclude: string): SmallestMtu {
  let min: SmallestMtu = { mtu: Infinity, link: null };
  for (const l of links) {
    const name = l.attrs.ifname;
    if (name === exclude || name === 'lo' || !l.data.flags?.up || l.data.flags?.loopback) continue;
    if (typeof l.attrs.mtu === 'number' && l.attrs.mtu < min.mtu) min = { mtu: l.attrs.mtu, link: name ?? null };
  }
  if (min.link === null) return { mtu: NO_LINK_MTU, link: null };
  return { mtu: Math.max(MIN_MTU, min.mtu), link: min.link };
}

export interface LinkMtuWatchOptions {
  log: Logger;
  host: Pick<HostSetup, 'tunName' | 'setMtu'>;
  /** The TUN MTU given by --mtu: not followed, but a link narrower than it is logged. */
  pinned?: number;
  debounceMs: number;
}

/**
 * Starts watching the links. Its current value is the TUN MTU to configure at start (unless pinned); afterwards,
 * each change of the links' smallest MTU sets the TUN's MTU to it and is logged.
 */
export async function watchLinkMtu(o: LinkMtuWatchOptions): Promise<StateWatch<SmallestMtu>> {
  const tun = o.host.tunName;
  const watch = new StateWatch<SmallestMtu>({
    log: o.log,
    what: 'link MTUs',
    groups: ['LINK'],
    debounceMs: o.debounceMs,
    read: async (nl) => smallestMtu(await nl.dumpLinks(), tun),
    equal: (a, b) => a.mtu === b.mtu,
    onChange: async (next, prev) => {
      const fields = { ifname: tun, smallest: next.mtu, link: next.link, was: prev.mtu };
      if (o.pinned === undefined) {
        const from = await o.host.setMtu(next.mtu);
        o.log.info({ ...fields, from, to: next.mtu }, "TUN MTU follows the links' smallest MTU");
      } else if (next.mtu < o.pinned) {
        o.log.warn(
          { ...fields, pinned: o.pinned },
          "a link is now narrower than the TUN MTU pinned by --mtu: path-MTU discovery across it relies on the host's own ICMP errors, which l4nat translates",
        );
      } else {
        o.log.info({ ...fields, pinned: o.pinned }, "the links' smallest MTU changed; the TUN MTU stays as pinned by --mtu");
      }
    },
  });
  await watch.start();
  return watch;
}
