// Client affinity across a VIP's services: what a backend is called in its service's Maglev ring, and what
// `l4nat check` warns about when source-hashed services of one VIP cannot agree.
//
// The data plane indexes a source-hashed service's ring by SipHash of the client address alone (not of the
// service: native/core/dataplane.c ring_hash), and every ring has the same size. So two services whose rings
// hold the same hosts in the same slots send a client to the same host. The ring is built from the backends'
// ids (src/dataplane/maglev.ts), so for source hashing the id is the host's address: port and protocol stay out of it,
// and iperf3's TCP control connection and its UDP data flow meet on one server. 5-tuple services keep their
// address:port/protocol ids: their rings must stay bit for bit what every l4nat version builds (cluster hosts
// of different versions compare ring digests, and flows moved between them are looked up by the ring).
import type { ServiceConfig, ServiceSpec } from '../config/model';
import { backendId, serviceId } from '../config/model';

/** The host part of an id: IPv6 in brackets, as in backend ids. */
function hostText(addr: string): string {
  return addr.includes(':') ? `[${addr}]` : addr;
}

/**
 * The Maglev ids of a service's backends, in its backends' order. Source hashing: the host address; a host
 * listed more than once (several ports) keeps the bare address for its lowest port and is ADDR:PORT for the
 * others (those slots cannot agree with another service; `affinityWarnings` says so). 5-tuple hashing: the
 * backend id (ADDR:PORT/PROTO), unchanged.
 */
export function ringIds(s: Pick<ServiceSpec, 'hash' | 'proto' | 'backends'>): string[] {
  if (s.hash !== 'src') return s.backends.map((b) => backendId(b, s.proto));
  const lowest = new Map<string, number>();
  for (const b of s.backends) lowest.set(b.addr, Math.min(b.port, lowest.get(b.addr) ?? b.port));
  return s.backends.map((b) => (lowest.get(b.addr) === b.port ? hostText(b.addr) : `${hostText(b.addr)}:${b.port}`));
}

/** The legacy ids (ADDR:PORT/PROTO for every hash mode): the rings source-hashed services had before ringIds. */
export function legacyRingIds(s: Pick<ServiceSpec, 'proto' | 'backends'>): string[] {
  return s.backends.map((b) => backendId(b, s.proto));
}

/**
 * host -> weight, for what a service's ring is built from: hosts of weight > 0 (lowest port of a host listed
 * twice), weights divided by their gcd (the ring depends on their ratios only, as src/dataplane/maglev.ts reduces them).
 */
function ringHosts(s: ServiceSpec): Map<string, number> {
  const ids = ringIds(s);
  const hosts = s.backends.filter((b, i) => b.weight > 0 && ids[i] === hostText(b.addr));
  const gcd = (x: number, y: number): number => (y === 0 ? x : gcd(y, x % y));
  const g = hosts.reduce((acc, b) => gcd(b.weight, acc), 0);
  return new Map(hosts.map((b) => [b.addr, b.weight / g]));
}

/**
 * Configurations under which a client of a VIP does not always meet one host on all of its source-hashed
 * services: a host listed twice in one service, services of one VIP whose hosts or weights differ (their rings
 * then differ the way one ring does before and after a backend is added or re-weighted), or admission (bounded
 * load, max_flows) that sends a client past its ring backend. One line each.
 */
export function affinityWarnings(services: ReadonlyArray<ServiceSpec & Pick<ServiceConfig, 'balance'>>): string[] {
  const out: string[] = [];
  const byVip = new Map<string, ServiceSpec[]>();
  for (const s of services) {
    if (s.hash !== 'src') continue;
    if (s.balance === 'bounded' || s.backends.some((b) => b.maxFlows !== undefined)) {
      out.push(`service ${serviceId(s)} (hash src) ${s.balance === 'bounded' ? 'is bounded' : 'has max_flows'}: a client's new flows go past its ring backend once that backend is over its bound or at its limit, so a client's flows may meet several backends (source affinity holds only while its backend has room)`);
    }
    const ports = new Map<string, number[]>();
    for (const b of s.backends) ports.set(b.addr, [...(ports.get(b.addr) ?? []), b.port]);
    for (const [addr, p] of ports) {
      if (p.length > 1) {
        out.push(`service ${serviceId(s)} (hash src) lists host ${addr} ${p.length} times (ports ${p.join(', ')}): only its lowest port shares a client's ring slot with the VIP's other services`);
      }
    }
    byVip.set(s.vip, [...(byVip.get(s.vip) ?? []), s]);
  }
  for (const [vip, group] of byVip) {
    if (group.length < 2) continue;
    const first = group[0];
    const a = ringHosts(first);
    for (const s of group.slice(1)) {
      const b = ringHosts(s);
      const onlyA = [...a.keys()].filter((h) => !b.has(h));
      const onlyB = [...b.keys()].filter((h) => !a.has(h));
      const weights = [...a.keys()].filter((h) => b.has(h) && a.get(h) !== b.get(h));
      const why = [
        onlyA.length ? `${onlyA.join(', ')} only in ${serviceId(first)}` : '',
        onlyB.length ? `${onlyB.join(', ')} only in ${serviceId(s)}` : '',
        weights.length ? `different weight ratios for ${weights.map((h) => `${h} (${a.get(h)} vs ${b.get(h)})`).join(', ')}` : '',
      ].filter(Boolean);
      if (why.length) {
        out.push(
          `VIP ${vip}: source-hashed services ${serviceId(first)} and ${serviceId(s)} have different backend hosts or weights (${why.join('; ')}): ` +
            'their rings differ, and some clients will meet different hosts on them (give them the same hosts and weights)',
        );
      }
    }
  }
  return out;
}
