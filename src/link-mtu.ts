// The TUN's MTU must not exceed the smallest egress MTU towards backends and clients (DESIGN.md item 4),
// else the kernel fragments or bounces what we write; and IPv6 needs at least 1280.
import { createRtNetlink } from 'netlink';

/** The smallest MTU among the up, non-loopback links other than `exclude`, at least 1280. */
export async function smallestLinkMtu(exclude: string): Promise<number> {
  const rt = createRtNetlink();
  try {
    const links = await rt.getLinks();
    let min = 65535;
    for (const l of links) {
      const name = l.attrs.ifname;
      if (name === exclude || name === 'lo' || !l.data.flags?.up || l.data.flags?.loopback) continue;
      if (typeof l.attrs.mtu === 'number' && l.attrs.mtu < min) min = l.attrs.mtu;
    }
    return Math.max(1280, min === 65535 ? 1500 : min);
  } finally {
    rt.socket.close();
  }
}
