// Proxy ARP/NDP for the VIPs (config: global.proxy_neighbors: [IFNAME, ...]): when clients share a segment
// with the LB host and there is no upstream route for the VIPs, the LB host must answer ARP (IPv4) and
// neighbour solicitations (IPv6) for them on that segment. l4nat adds a proxy neighbour entry
// (`ip neigh add proxy VIP dev IF`, NTF_PROXY over rtnetlink) per VIP and interface, keeps the set in step
// with the services on reloads, and removes its entries at stop. The kernel answers for proxy entries when
// forwarding is on and the VIP is routed out of another device — both true under l4nat. IPv6 also needs
// net.ipv6.conf.IF.proxy_ndp=1, which l4nat sets (and, like forwarding, leaves set; it logs it).
import { createRtNetlink, FlagsNew } from 'netlink';
import type { RtNetlinkSocket } from 'netlink';
import { afOf, ipToBuffer, type Family } from './addr';
import { ensureSysctl } from './sysctl';
import type { Logger } from '../util/log';

export interface Vip {
  addr: string;
  family: Family;
}

export class ProxyNeighbors {
  private rt: RtNetlinkSocket | undefined;
  private readonly index = new Map<string, number>();
  private readonly added = new Map<string, { ifname: string; vip: Vip }>(); // `${ifname}|${addr}`
  private ndpSet = new Set<string>();

  constructor(
    readonly ifnames: readonly string[],
    private readonly log: Logger,
  ) {}

  async open(): Promise<void> {
    this.rt = createRtNetlink();
    const links = await this.rt.getLinks();
    for (const name of this.ifnames) {
      const l = links.find((x) => x.attrs.ifname === name);
      if (!l || l.data.index === undefined) throw new Error(`global.proxy_neighbors: no interface "${name}" on this host`);
      this.index.set(name, l.data.index);
    }
  }

  private async op(kind: 'add' | 'del', ifname: string, vip: Vip): Promise<void> {
    const rt = this.rt;
    if (!rt) throw new Error('proxy neighbours: not open');
    const data = { family: afOf(vip.family), ifindex: this.index.get(ifname), flags: { proxy: true as const } };
    const attrs = { dst: ipToBuffer(vip.addr, vip.family) };
    if (kind === 'add') await rt.newNeighbor(data, attrs, { flags: FlagsNew.CREATE | FlagsNew.REPLACE });
    else await rt.delNeighbor(data, attrs);
  }

  /** Makes the proxy entries exactly one per (interface, VIP) of `vips`. */
  async sync(vips: readonly Vip[]): Promise<void> {
    const want = new Map<string, { ifname: string; vip: Vip }>();
    for (const ifname of this.ifnames) for (const vip of vips) want.set(`${ifname}|${vip.addr}`, { ifname, vip });
    for (const [k, e] of want) {
      if (this.added.has(k)) continue;
      if (e.vip.family === 6 && !this.ndpSet.has(e.ifname)) {
        const ch = ensureSysctl(['net', 'ipv6', 'conf', e.ifname, 'proxy_ndp'], 1);
        if (ch) this.log.info({ sysctl: ch.key, from: ch.from, to: ch.to }, 'turned on proxy_ndp for the VIPs (left on at stop, like forwarding)');
        this.ndpSet.add(e.ifname);
      }
      await this.op('add', e.ifname, e.vip);
      this.added.set(k, e);
      this.log.info({ event: 'proxy_neighbor_added', vip: e.vip.addr, dev: e.ifname }, `answering ${e.vip.family === 4 ? 'ARP' : 'NDP'} for ${e.vip.addr} on ${e.ifname}`);
    }
    for (const [k, e] of [...this.added]) {
      if (want.has(k)) continue;
      await this.op('del', e.ifname, e.vip).catch((err: unknown) => this.log.warn({ err, vip: e.vip.addr, dev: e.ifname }, 'removing a proxy neighbour entry failed'));
      this.added.delete(k);
      this.log.info({ event: 'proxy_neighbor_removed', vip: e.vip.addr, dev: e.ifname }, `no longer answering for ${e.vip.addr} on ${e.ifname}`);
    }
  }

  async clear(): Promise<void> {
    if (this.rt) await this.sync([]);
  }

  close(): void {
    this.rt?.socket.close();
    this.rt = undefined;
  }
}

export function vipsOf(services: ReadonlyArray<{ vip: string; family: Family }>): Vip[] {
  const m = new Map<string, Vip>();
  for (const s of services) m.set(s.vip, { addr: s.vip, family: s.family });
  return [...m.values()];
}
