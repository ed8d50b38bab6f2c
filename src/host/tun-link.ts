// Host set-up, layer 3: the TUN link over rtnetlink. Finds the TUN and checks that it is one and can take the MTU,
// then sets its MTU and transmit queue, turns on forwarding, sets its sysctls and brings it up without an IPv6
// link-local address. HostSetup (setup.ts) decides when, and remembers which link and MTU it configured.
// Layers: rtnl.ts, sysctl.ts → this file → setup.ts (and MIN_MTU for link-mtu.ts).
import { endianness } from 'os';
import type { rt } from 'netlink';
import type { Logger } from '../util/log';
import { bufferToIp, AF_INET6 } from './addr';
import { isErrCode, type Rtnl } from './rtnl';
import { configureTunSysctls, enableForwarding, SysctlChange } from './sysctl';

export const MIN_MTU = 1280; // IPv6 minimum link MTU (RFC 8200)
export const MAX_MTU = 65535;
export const TUN_TXQUEUELEN = 10000;

export interface LinkResult {
  ifindex: number;
  mtu: number;
  sysctls: SysctlChange[];
}

/** struct nlattr (include/uapi/linux/netlink.h): u16 nla_len, u16 nla_type, in host byte order. */
const NLA_HDRLEN = 4;
const NLA_TYPE_MASK = 0x3fff;
const IFLA_INFO_KIND = 1;
const readU16 = (b: Buffer, off: number): number => (endianness() === 'LE' ? b.readUInt16LE(off) : b.readUInt16BE(off));

function isTunLinkInfo(linkinfo: Buffer | undefined): boolean {
  // IFLA_LINKINFO is nested; IFLA_INFO_KIND holds the driver's name ("tun" for TUN and TAP).
  if (!linkinfo) return false;
  for (let off = 0; off + NLA_HDRLEN <= linkinfo.length; ) {
    const len = readU16(linkinfo, off);
    const type = readU16(linkinfo, off + 2) & NLA_TYPE_MASK;
    if (len < NLA_HDRLEN || off + len > linkinfo.length) return false;
    if (type === IFLA_INFO_KIND) return linkinfo.subarray(off + NLA_HDRLEN, off + len).toString('latin1').replace(/\0+$/, '') === 'tun';
    off += (len + 3) & ~3;
  }
  return false;
}

export function checkMtu(mtu: number): void {
  if (!Number.isInteger(mtu) || mtu < MIN_MTU || mtu > MAX_MTU) {
    throw new TypeError(`mtu must be an integer in ${MIN_MTU}..${MAX_MTU} (IPv6 needs at least ${MIN_MTU}), got ${JSON.stringify(mtu)}`);
  }
}

/** Throws when `mtu` is above what the link takes. */
export function checkMaxMtu(tunName: string, mtu: number, link: { attrs: { maxMtu?: number } }): void {
  if (link.attrs.maxMtu !== undefined && mtu > link.attrs.maxMtu) {
    throw new RangeError(`mtu ${mtu} is above ${tunName}'s maximum of ${link.attrs.maxMtu}`);
  }
}

/** The TUN's link message and index, once checked: it has an index, it is a TUN, it can take `mtu`. */
export interface FoundTun {
  link: rt.LinkMessage;
  index: number;
}

/** Looks the TUN up by name and checks it (see FoundTun). `nl`: the open rtnetlink socket (throws when its owner
 * is not open). */
export async function findTun(nl: () => Rtnl, tunName: string, mtu: number): Promise<FoundTun> {
  const link = await nl().getLinkByName(tunName);
  const index = link.data.index;
  if (!index) throw new Error(`link ${tunName} reported no index`);
  if (!isTunLinkInfo(link.attrs.linkinfo)) throw new Error(`${tunName} is not a TUN device`);
  checkMaxMtu(tunName, mtu, link);
  return { link, index };
}

/** Sets the found TUN's MTU, turns on forwarding, sets the TUN's sysctls (before the link goes up: addr_gen_mode)
 * and sets it up. Safe to repeat on a TUN that a previous run left configured. */
export async function setUpTun(
  nl: () => Rtnl,
  { link, index }: FoundTun,
  o: { tunName: string; mtu: number; log: Logger; ipv6Forwarding: boolean },
): Promise<LinkResult> {
  const { tunName, mtu, log } = o;
  if (link.attrs.mtu !== mtu) {
    await nl().setLink(`${tunName} mtu ${mtu}`, { index }, { mtu });
    log.info({ ifname: tunName, from: link.attrs.mtu, to: mtu }, 'set TUN MTU');
  }
  // The TUN's transmit queue is what the kernel hands the workers; the default (500) overflows under
  // bursts of new connections (seen as TX drops on the TUN and client retransmissions).
  if ((link.attrs.txqlen ?? 0) < TUN_TXQUEUELEN) {
    await nl().setLink(`${tunName} txqueuelen ${TUN_TXQUEUELEN}`, { index }, { txqlen: TUN_TXQUEUELEN });
    log.info({ ifname: tunName, from: link.attrs.txqlen, to: TUN_TXQUEUELEN }, 'set TUN txqueuelen');
  }
  const sysctls = enableForwarding(log, { ipv6: o.ipv6Forwarding });
  sysctls.push(...configureTunSysctls(tunName, { log }));
  const up = link.data.flags?.up === true;
  if (up) {
    // Up before addr_gen_mode was none (e.g. created by hand): drop the link-local address it got.
    await removeLinkLocal(nl, tunName, index, log);
  } else {
    await nl().setLink(`${tunName} up`, { index, flags: { up: true }, change: { up: true } });
    log.info({ ifname: tunName, ifindex: index }, 'set TUN up');
  }
  return { ifindex: index, mtu, sysctls };
}

async function removeLinkLocal(nl: () => Rtnl, tunName: string, index: number, log: Logger): Promise<void> {
  let addrs;
  try {
    addrs = await nl().getAddresses(6, index);
  } catch (err) {
    if (isErrCode(err, 'EAFNOSUPPORT')) return;
    throw err;
  }
  for (const a of addrs) {
    const addr = a.attrs.address ?? a.attrs.local;
    if (!addr || addr.length !== 16 || addr[0] !== 0xfe || (addr[1] & 0xc0) !== 0x80) continue;
    const text = `${bufferToIp(addr)}/${a.data.prefixlen} dev ${tunName}`;
    await nl().delAddress(text, { family: AF_INET6, prefixlen: a.data.prefixlen, index }, { address: addr });
    log.info({ address: text }, 'removed IPv6 link-local address from the TUN');
  }
}
