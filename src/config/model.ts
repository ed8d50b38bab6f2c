// The service model shared by the CLI, the config file, the table builder and the admin API.
// ServiceSpec is what the data plane sees; ServiceConfig adds what only the control plane needs
// (names, health checks, what to do when no backend is healthy).
import { ipToBuffer, type Family } from '../host/addr';

export type Proto = 'tcp' | 'udp';
export type HashMode = '5tuple' | 'src';
/** How a service admits a new flow (native/core/admission.h): the ring's choice, or the ring's choice under a load bound. */
export type Balance = 'maglev' | 'bounded';
/** What a new flow gets when every candidate backend is at its max_flows: dropped, or refused (TCP RST, ICMP port unreachable). */
export type WhenFull = 'drop' | 'reject';

export interface BackendSpec {
  addr: string; // canonical text
  family: Family;
  port: number;
  weight: number;
  /** Down by its health checks: the data plane's second chance never sends a flow to it. */
  down?: boolean;
  /** At most this many active flows: a new flow goes to the next candidate when it has them (unset: no limit). */
  maxFlows?: number;
}

export interface BackendConfig extends BackendSpec {
  name?: string; // operator's label, shown in the API, status and metrics
}

export type HealthCheckType = 'tcp' | 'http' | 'https' | 'command' | 'dataplane' | 'icmp';

/** An active health check (as keepalived's TCP_CHECK/HTTP_GET/MISC_CHECK/PING_CHECK, HAProxy's `check`). Seconds. */
export interface HealthCheckSpec {
  type: HealthCheckType;
  interval: number;
  timeout: number;
  rise: number; // consecutive successes that bring a down backend up
  fall: number; // consecutive failures that take an up backend down
  jitter: number; // 0..0.5: each wait is interval × (1 − jitter × random), never longer than interval
  port?: number; // check this port instead of the backend's
  path: string; // http(s)
  host?: string; // http(s) Host header
  expectStatus: number[]; // http(s): accepted status codes (empty = any 2xx or 3xx)
  tlsVerify: boolean; // https: verify the backend's certificate
  command?: string[]; // command: argv, run without a shell; exit 0 = healthy
}

/**
 * A passive check from the data plane's per-backend counters: a backend with at least maxUnanswered new flows
 * it never answered (no packet back through l4nat), or maxResets resets sent, within `window` seconds is taken
 * out for `hold` seconds. Unanswered flows are the classic LVS-NAT mistake (replies bypass the LB host: wrong
 * default gateway) or a backend that swallows SYNs; an active check from the LB host passes in the first case,
 * so the hold is not cut short by active checks. Unanswered counting suits request/response protocols only
 * (a one-way UDP service never answers).
 */
export interface PassiveCheckSpec {
  window: number;
  maxUnanswered: number; // 0 = off
  maxResets: number; // 0 = off
  hold: number;
}

/** What happens to a backend's established flows when it goes down: kept (default), or reset. */
export type OnDown = 'keep' | 'reset';

/** What a service does when none of its backends is healthy. */
export type OnAllDown = 'drop' | 'keep-last';

export interface ServiceConfig extends ServiceSpec {
  name: string; // the config file's service name ("default" from flags)
  // Data-plane protections (src/dataplane/tables.ts ServiceProtections), already filtered to this service's family.
  newFlowRate?: { rate: number; burst: number }; // per client address: new flows per second, burst
  allowSources?: string[]; // CIDRs; when any is given, a source must match one
  denySources?: string[]; // CIDRs; deny wins
  timeouts?: Partial<Timeouts>; // the service's own idle timeouts; unset fields keep the global ones
  backends: BackendConfig[];
  health: HealthCheckSpec | null;
  passive: PassiveCheckSpec | null;
  onAllDown: OnAllDown;
  onDown: OnDown;
  /** A backend that comes up takes a growing share of new flows over this many seconds (src/control/slow-start.ts). */
  slowStartSeconds?: number;
  /** New flows by the ring (maglev, the default) or by the ring under a load bound (bounded, with balanceFactor). */
  balance?: Balance;
  balanceFactor?: number;
  /** What a new flow gets when every candidate backend is at its max_flows (default drop). */
  whenFull?: WhenFull;
}

export interface ServiceSpec {
  vip: string; // canonical text
  family: Family;
  port: number;
  proto: Proto;
  hash: HashMode;
  backends: BackendSpec[];
}

/** Idle timeouts in seconds, per protocol and TCP state (LVS-like defaults). */
export interface Timeouts {
  tcpSyn: number;
  tcpEstablished: number;
  tcpFin: number;
  tcpClose: number;
  udp: number;
}

export const DEFAULT_TIMEOUTS: Readonly<Timeouts> = {
  tcpSyn: 30,
  tcpEstablished: 900,
  tcpFin: 120,
  tcpClose: 10,
  udp: 300,
};

export function serviceId(s: Pick<ServiceSpec, 'vip' | 'port' | 'proto'>): string {
  return s.vip.includes(':') ? `[${s.vip}]:${s.port}/${s.proto}` : `${s.vip}:${s.port}/${s.proto}`;
}

export function backendId(b: Pick<BackendSpec, 'addr' | 'port'>, proto: Proto): string {
  return b.addr.includes(':') ? `[${b.addr}]:${b.port}/${proto}` : `${b.addr}:${b.port}/${proto}`;
}

/**
 * Why an address cannot be a backend, or undefined. l4nat sends the client's packet on with only its destination
 * rewritten, and the kernel routes it: to these it would go nowhere useful, or come back into the TUN.
 */
export function backendAddressProblem(addr: string, family: Family): string | undefined {
  const b = ipToBuffer(addr, family);
  if (family === 4) {
    if (b[0] === 0) return 'an unspecified ("this network", 0.0.0.0/8) address';
    if (b[0] === 127) return 'a loopback address (127.0.0.0/8): the packet would be delivered to this host, not forwarded';
    if (b[0] >= 224 && b[0] <= 239) return 'a multicast address (224.0.0.0/4)';
    if (b.every((x) => x === 255)) return 'the broadcast address';
    return undefined;
  }
  const zeroUpTo = (n: number): boolean => b.subarray(0, n).every((x) => x === 0);
  if (zeroUpTo(16)) return 'the unspecified address (::)';
  if (zeroUpTo(15) && b[15] === 1) return 'the loopback address (::1): the packet would be delivered to this host, not forwarded';
  if (b[0] === 0xff) return 'a multicast address (ff00::/8)';
  if (b[0] === 0xfe && (b[1] & 0xc0) === 0x80) return 'a link-local address (fe80::/10): it has no route without an interface, and is never forwarded';
  if (zeroUpTo(10) && b[10] === 0xff && b[11] === 0xff) return 'an IPv4-mapped address (::ffff:0:0/96): give the IPv4 address to an IPv4 service';
  return undefined;
}

/** Addresses that are l4nat's own besides the VIPs: the dataplane health probes' sources. */
export interface ReservedAddresses {
  probeSource?: { ipv4?: string; ipv6?: string };
}

/**
 * Checks a whole service set (the config, the flags and every API change go through it): each service once, each
 * backend of its service's family and an address packets can be forwarded to, neither a VIP (the packet would
 * leave unchanged and the kernel route it back into the TUN until its TTL ran out) nor a probe source address.
 * Reverse translation is stateless: a reply from (backend address, port, proto) is translated back to the one
 * service that owns that triple, so two services sharing one would make replies ambiguous: rejected too.
 */
export function checkServices(services: readonly ServiceSpec[], reserved: ReservedAddresses = {}): void {
  const seen = new Map<string, string>();
  const svcSeen = new Set<string>();
  const vips = new Map(services.map((s) => [s.vip, serviceId(s)]));
  const probe = new Set([reserved.probeSource?.ipv4, reserved.probeSource?.ipv6].filter((x): x is string => x !== undefined));
  for (const s of services) {
    const sid = serviceId(s);
    if (svcSeen.has(sid)) throw new Error(`service ${sid} is defined twice`);
    svcSeen.add(sid);
    for (const b of s.backends) {
      if (b.family !== s.family) throw new Error(`backend ${b.addr} is IPv${b.family} but service ${sid} is IPv${s.family}`);
      const problem = backendAddressProblem(b.addr, b.family);
      if (problem) throw new Error(`backend ${b.addr} of service ${sid} is ${problem}: it cannot be a backend`);
      const vipOf = vips.get(b.addr);
      if (vipOf !== undefined) {
        throw new Error(`backend ${b.addr} of service ${sid} is the VIP of service ${vipOf}: packets to it would come back into l4nat's TUN until their TTL ran out`);
      }
      if (probe.has(b.addr)) throw new Error(`backend ${b.addr} of service ${sid} is the source address of l4nat's dataplane health probes (global.probe_source): choose another probe source or backend`);
      const id = backendId(b, s.proto);
      const other = seen.get(id);
      if (other !== undefined) {
        throw new Error(
          `backend ${id} is used by services ${other} and ${sid}: replies from it would be ambiguous ` +
            `(give each service its own backend port)`,
        );
      }
      seen.set(id, sid);
    }
  }
}

/**
 * The admin API's listener and how it authenticates. Something always does: a bearer token (by default one
 * l4nat creates at first start in its state directory, owner-only, read by the CLI run as root or as the l4nat
 * user), client certificates (mTLS against a configured CA), or, as an explicit opt-in on loopback only,
 * nothing (insecureNoAuth). Any address other than loopback needs TLS as well (checked by the config
 * validation, so it cannot be started open).
 */
export interface AdminConfig {
  listen: string; // address
  port: number; // 0 = no admin API
  tls?: { cert: string; key: string; clientCa?: string }; // file paths
  tokenFile?: string;
  /** tokenFile is the default one: `l4nat up` creates it (random, mode 0600) when it does not exist. */
  createToken?: boolean;
  /** No authentication at all (loopback only; warned at start). */
  insecureNoAuth?: boolean;
  /** The dashboard at GET / (src/admin/dashboard.ts); read-only: no actions, and no write from a browser. */
  dashboard?: { readOnly: boolean };
}

/**
 * Fills in the default authentication: with no token file, no client CA and no explicit opt-out, the token in
 * `defaultTokenFile` (created at start). Nothing when the API is off (port 0).
 */
export function withDefaultAuth(a: AdminConfig, defaultTokenFile: string): AdminConfig {
  if (a.port === 0 || a.tokenFile !== undefined || a.tls?.clientCa || a.insecureNoAuth) return a;
  return { ...a, tokenFile: defaultTokenFile, createToken: true };
}

export function isLoopback(addr: string): boolean {
  return /^127\./.test(addr) || addr === '::1' || addr === 'localhost' || /^::ffff:127\./i.test(addr);
}
