// The lab's address plan (the picture at the top of lab.ts): the namespace, addresses, devices and gateway of every
// host a lab has, computed from the lab's id, backend count and options without running anything.
// Layers: this file → lab-wiring.ts (puts the plan into the kernel), lab.ts (the Lab).

export const LAB_NS_PREFIX = 'l4-';
export const VIP4 = '10.200.0.10';
export const VIP6 = 'fd4c:ffff::10';
/** Largest backend count the 10.201.<i>.0/24 plan allows (0 is the client's subnet). */
export const MAX_BACKENDS = 254;
/** In a lab with routers: the lb's address on its link to r1. */
export const ROUTED_LB_IPV4 = '10.202.1.1';
export const ROUTED_LB_IPV6 = 'fd4c:0:ff01::1';

export interface LabHost {
  /** 'client', 'lb', 'b1', ... */
  readonly role: string;
  readonly ns: string;
}

export interface LabEndpoint extends LabHost {
  /** The host's own address on its link to the lb. */
  readonly ipv4: string;
  readonly ipv6: string | null;
  /** Its device towards the lb (inside its namespace). */
  readonly dev: string;
  /** The lb's address on that link (the host's gateway; for the client of a routed lab: r2's). */
  readonly lbIpv4: string;
  readonly lbIpv6: string | null;
  /** The lb's device on that link (inside the lb namespace; for the client of a routed lab: inside r2). */
  readonly lbDev: string;
}

/** A router of a lab built with `middleHopMtu` (r1 next to the lb, r2 next to the client). */
export interface LabRouter extends LabHost {
  /** Its addresses towards the lb side (r1: on the link to the lb; r2: on the narrow link to r1). */
  readonly upIpv4: string;
  readonly upIpv6: string | null;
  /** Its addresses towards the client side (r1: on the narrow link; r2: the client's gateway). */
  readonly downIpv4: string;
  readonly downIpv6: string | null;
}

export interface LabBackend extends LabEndpoint {
  /** 'b1', 'b2', ... — what backend servers report as their name. */
  readonly id: string;
  /** 1-based index: backend i lives on 10.201.i.0/24 and fd4c:0:i::/64. */
  readonly index: number;
}

/** What the wiring needs to know of a lab: its options and its hosts. */
export interface LabPlan {
  readonly ipv6: boolean;
  /** The narrow hop's MTU, or null when the lab has no routers. */
  readonly middleHopMtu: number | null;
  readonly client: LabEndpoint;
  readonly lb: LabHost;
  readonly backends: readonly LabBackend[];
  /** [r1, r2] when the lab has routers, else empty. */
  readonly routers: readonly LabRouter[];
}

/** Canonical (RFC 5952) text form of an IPv6 address; IPv4 and v4-mapped addresses come back as dotted quads. */
export function normalizeAddress(addr: string): string {
  let a = addr.trim();
  if (a.startsWith('[') && a.endsWith(']')) a = a.slice(1, -1);
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(a);
  if (mapped) return mapped[1]!;
  if (!a.includes(':')) return a;
  try {
    return new URL(`http://[${a}]/`).hostname.slice(1, -1);
  } catch {
    return a.toLowerCase();
  }
}

/** The hosts of lab `id`: client, lb, b1..bN and, with a middle hop, the routers r1 (next to the lb) and r2. */
export function planLab(id: string, backends: number, ipv6: boolean, middleHopMtu: number | null): LabPlan {
  const nsName = (role: string): string => `${LAB_NS_PREFIX}${id}-${role}`;
  const lb: LabHost = { role: 'lb', ns: nsName('lb') };
  const client: LabEndpoint = {
    role: 'client',
    ns: nsName('client'),
    ipv4: '10.201.0.2',
    ipv6: ipv6 ? normalizeAddress('fd4c:0:0::2') : null,
    dev: 'eth0',
    lbIpv4: '10.201.0.1',
    lbIpv6: ipv6 ? normalizeAddress('fd4c:0:0::1') : null,
    lbDev: 'c0',
  };
  const list: LabBackend[] = [];
  for (let i = 1; i <= backends; i++) {
    const role = `b${i}`;
    list.push({
      role,
      id: role,
      index: i,
      ns: nsName(role),
      ipv4: `10.201.${i}.2`,
      ipv6: ipv6 ? normalizeAddress(`fd4c:0:${i}::2`) : null,
      dev: 'eth0',
      lbIpv4: `10.201.${i}.1`,
      lbIpv6: ipv6 ? normalizeAddress(`fd4c:0:${i}::1`) : null,
      lbDev: role,
    });
  }
  const v6 = (a: string): string | null => (ipv6 ? normalizeAddress(a) : null);
  const routers: LabRouter[] =
    middleHopMtu === null
      ? []
      : [
          { role: 'r1', ns: nsName('r1'), upIpv4: '10.202.1.2', upIpv6: v6('fd4c:0:ff01::2'), downIpv4: '10.202.0.1', downIpv6: v6('fd4c:0:ff00::1') },
          { role: 'r2', ns: nsName('r2'), upIpv4: '10.202.0.2', upIpv6: v6('fd4c:0:ff00::2'), downIpv4: '10.201.0.1', downIpv6: v6('fd4c::1') },
        ];
  return { ipv6, middleHopMtu, client, lb, backends: list, routers };
}
