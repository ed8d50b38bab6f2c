// The host's own addresses, for the data plane: an ICMP error this host sends itself about a reply l4nat wrote
// (its own link or route to the client is narrower than the packet) carries one of them as its source, and
// must come out of the TUN from the VIP instead (native/core/dataplane.c icmp_error, docs/dataplane.md "Path MTU").
import type { rt } from 'netlink';
import type { Logger } from '../util/log';
import { AF_INET, AF_INET6, bufferToIp } from './addr';
import { isErrCode, type Rtnl } from './rtnl';
import { StateWatch } from './state-watch';

export interface LocalAddresses {
  /** Sorted, without duplicates (an address on two links counts once). */
  v4: string[];
  v6: string[];
}

/**
 * The local address of each RTM_NEWADDR message: IFA_LOCAL where present, else IFA_ADDRESS. On a point-to-point
 * link (PPPoE, a VPN: `inet 100.64.0.5 peer 100.64.0.1/32`) IFA_ADDRESS is the peer's, IFA_LOCAL ours.
 */
export function localAddressesOf(msgs: readonly rt.AddressMessage[]): LocalAddresses {
  const v4 = new Set<string>();
  const v6 = new Set<string>();
  for (const m of msgs) {
    const a = m.attrs.local ?? m.attrs.address;
    if (m.data.family === AF_INET && a?.length === 4) v4.add(bufferToIp(a));
    else if (m.data.family === AF_INET6 && a?.length === 16) v6.add(bufferToIp(a));
  }
  return { v4: [...v4].sort(), v6: [...v6].sort() };
}

export async function readLocalAddresses(nl: Rtnl): Promise<LocalAddresses> {
  // One dump after the other (see Rtnl).
  const v4 = await nl.dumpAddresses(4);
  const v6 = await nl.dumpAddresses(6).catch((err: unknown) => {
    if (isErrCode(err, 'EAFNOSUPPORT')) return []; // a kernel without IPv6
    throw err;
  });
  return localAddressesOf([...v4, ...v6]);
}

export function sameLocalAddresses(a: LocalAddresses, b: LocalAddresses): boolean {
  return a.v4.join() === b.v4.join() && a.v6.join() === b.v6.join();
}

/** What changed between two address sets, for the log. */
export function addressChanges(prev: LocalAddresses, next: LocalAddresses): { added: string[]; removed: string[] } {
  const before = new Set([...prev.v4, ...prev.v6]);
  const after = new Set([...next.v4, ...next.v6]);
  return { added: [...after].filter((a) => !before.has(a)), removed: [...before].filter((a) => !after.has(a)) };
}

/** Starts watching the host's addresses; `onChange` gets every new set after the first (the watch's current). */
export async function watchLocalAddresses(
  log: Logger,
  debounceMs: number,
  onChange: (next: LocalAddresses) => Promise<void>,
): Promise<StateWatch<LocalAddresses>> {
  const watch = new StateWatch<LocalAddresses>({
    log,
    what: 'local addresses',
    groups: ['IPV4_IFADDR', 'IPV6_IFADDR'],
    debounceMs,
    read: readLocalAddresses,
    equal: sameLocalAddresses,
    onChange: async (next, prev) => {
      await onChange(next);
      log.info(addressChanges(prev, next), "the host's addresses changed; the data plane has the new set");
    },
  });
  await watch.start();
  return watch;
}
