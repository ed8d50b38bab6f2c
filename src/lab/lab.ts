// The lab: an LVS-NAT topology of network namespaces for tests and the demo.
// Layers: netns.ts (one command per helper) → cleanup.ts (signal/exit hooks), lab-plan.ts (who gets which name and
// address), lab-wiring.ts (links, addresses, routes), role-lab.ts (commands and processes by role) → this file (a
// lab's life: namespaces created, wired, removed) → workload.ts (backend servers and client driver),
// l4nat-process.ts (l4nat inside the lb namespace).
//
//   client (10.201.0.2, fd4c::2) ──veth── lb ──veth── b1 (10.201.1.2, fd4c:0:1::2)
//                                           ├──veth── b2 (10.201.2.2, fd4c:0:2::2)
//                                           └──veth── bN ...
//
// With `middleHopMtu: M` two router namespaces sit between the client and the lb, joined by a link of MTU M, while
// every other link (the client's own included) keeps 1500 — a narrow hop in the middle of the path, for path-MTU
// discovery tests:
//
//   client (10.201.0.2) ──1500── r2 (10.201.0.1 | 10.202.0.2) ──M── r1 (10.202.0.1 | 10.202.1.2) ──1500── lb (10.202.1.1)
//          eth0                   c0             r1                 r2              lb                     c0
//
// The client's gateway is then r2 (client.lbIpv4/lbDev name r2's side of the client link); r1 and r2 forward; the lb
// routes the client's subnet (10.201.0.0/24, fd4c::/64) via r1.
//
// Point-to-point veths, no bridge. Client and backends route everything (v4 and v6) via the lb. The VIPs
// (10.200.0.10, fd4c:ffff::10) are on no connected subnet: l4nat routes them into its TUN. In the lb, IP
// forwarding is left off (l4nat turns it on itself); enableForwarding() turns it on for a plain-routing check.
// Every namespace: lo up, rp_filter strict (all and default = 1), as many distributions ship.
//
// Namespaces are named `l4-<id>-<role>` (id: 6 random hex digits unless given). Whatever createLab() created is
// removed by destroy(), by createLab() itself when a step fails, and by the cleanup registry on SIGINT/SIGTERM/
// SIGHUP or process exit. Nothing is ever created in, or changed in, the default namespace.
import { randomBytes } from 'node:crypto';
import { registerCleanup } from './cleanup';
import { LAB_NS_PREFIX, MAX_BACKENDS, planLab, VIP4, VIP6, type LabBackend, type LabEndpoint, type LabHost, type LabRouter } from './lab-plan';
import { wireLab } from './lab-wiring';
import { netnsAdd, netnsDelete, netnsDeleteSync, netnsList, netnsPids, NsProcess, RunOptions, RunResult, SpawnOptions, sysctlSet } from './netns';
import { RoleLab } from './role-lab';

export { LAB_NS_PREFIX, MAX_BACKENDS, normalizeAddress, ROUTED_LB_IPV4, ROUTED_LB_IPV6, VIP4, VIP6 } from './lab-plan';
export type { LabBackend, LabEndpoint, LabHost, LabRouter } from './lab-plan';
export { RoleLab } from './role-lab';

export interface LabOptions {
  /** Number of backend namespaces b1..bN (default 3). */
  backends?: number;
  /** Lab id used in namespace names (default: 6 random hex digits). Lowercase letters and digits, at most 12. */
  id?: string;
  /** Configure IPv6 addresses and routes (default true). */
  ipv6?: boolean;
  /**
   * Called before each set-up step (progress reporting). A throw aborts createLab() exactly like a failing
   * command would: what was created so far is removed and the error is rethrown.
   */
  onStep?: (step: string) => void | Promise<void>;
  /**
   * Put two routers (r1 next to the lb, r2 next to the client) between the lb and the client, joined by a link of
   * this MTU (576..1500; IPv6 needs at least 1280). Every other link stays at 1500. Default: no routers.
   */
  middleHopMtu?: number;
}

export interface Lab {
  readonly id: string;
  readonly ipv6: boolean;
  readonly client: LabEndpoint;
  readonly lb: LabHost;
  readonly backends: readonly LabBackend[];
  /** [r1, r2] when built with `middleHopMtu`, else empty. */
  readonly routers: readonly LabRouter[];
  /** The narrow hop's MTU, or null when the lab has no routers. */
  readonly middleHopMtu: number | null;
  readonly vip4: string;
  /** null when the lab was built without IPv6. */
  readonly vip6: string | null;
  /** All namespaces of the lab, client first. */
  readonly namespaces: readonly string[];
  readonly destroyed: boolean;
  backend(id: string): LabBackend;
  /** Namespace of a role ('client', 'lb', 'b1', ...). Throws on an unknown role. */
  nsOf(role: string): string;
  /** Runs a command inside a role's namespace (`ip netns exec`). */
  exec(role: string, cmd: string, args: readonly string[], opts?: RunOptions): Promise<RunResult>;
  /** Runs `ip <args>` inside a role's namespace (`ip -n`). Returns stdout. */
  ip(role: string, args: readonly string[]): Promise<string>;
  /** Starts a long-running process inside a role's namespace; destroy() stops it. */
  spawn(role: string, cmd: string, args: readonly string[], opts?: SpawnOptions): NsProcess;
  /** Turns on IPv4 and IPv6 forwarding in the lb (plain kernel routing, for sanity checks without l4nat). */
  enableForwarding(): Promise<void>;
  /** Stops the lab's processes and removes its namespaces. Idempotent; concurrent calls share one teardown. */
  destroy(): Promise<void>;
}

/** Namespaces that belong to lab `id` (or to any lab when id is omitted). */
export async function listLabNamespaces(id?: string): Promise<string[]> {
  const prefix = id === undefined ? LAB_NS_PREFIX : `${LAB_NS_PREFIX}${id}-`;
  return (await netnsList()).filter((n) => n.startsWith(prefix));
}

function validateOptions(opts: LabOptions): { backends: number; id: string; ipv6: boolean; middleHopMtu: number | null } {
  if (opts === null || typeof opts !== 'object') throw new TypeError('createLab options must be an object');
  const backends = opts.backends ?? 3;
  if (!Number.isInteger(backends) || backends < 1 || backends > MAX_BACKENDS) {
    throw new TypeError(`backends must be an integer in 1..${MAX_BACKENDS}, got ${String(opts.backends)}`);
  }
  const id = opts.id ?? randomBytes(3).toString('hex');
  if (typeof id !== 'string' || !/^[0-9a-z]{1,12}$/.test(id)) {
    throw new TypeError(`id must be 1-12 lowercase letters or digits, got ${JSON.stringify(opts.id)}`);
  }
  const ipv6 = opts.ipv6 ?? true;
  if (typeof ipv6 !== 'boolean') throw new TypeError(`ipv6 must be a boolean, got ${typeof opts.ipv6}`);
  if (opts.onStep !== undefined && typeof opts.onStep !== 'function') {
    throw new TypeError(`onStep must be a function, got ${typeof opts.onStep}`);
  }
  const mtu = opts.middleHopMtu ?? null;
  const minMtu = ipv6 ? 1280 : 576;
  if (mtu !== null && (!Number.isInteger(mtu) || mtu < minMtu || mtu > 1500)) {
    throw new TypeError(`middleHopMtu must be an integer in ${minMtu}..1500${ipv6 ? ' (IPv6 needs 1280)' : ''}, got ${String(opts.middleHopMtu)}`);
  }
  return { backends, id, ipv6, middleHopMtu: mtu };
}

class LabImpl extends RoleLab implements Lab {
  readonly id: string;
  readonly ipv6: boolean;
  readonly client: LabEndpoint;
  readonly lb: LabHost;
  readonly backends: readonly LabBackend[];
  readonly routers: readonly LabRouter[];
  readonly middleHopMtu: number | null;
  readonly vip4 = VIP4;
  readonly vip6: string | null;
  readonly namespaces: readonly string[];
  /** Namespaces this lab actually created (and so may delete). */
  readonly created: string[] = [];
  /** The namespace being created right now, if any. */
  private inflight: { ns: string; done: Promise<void> } | null = null;
  private readonly unregister: () => void;

  constructor(id: string, backends: number, ipv6: boolean, middleHopMtu: number | null = null) {
    super();
    this.id = id;
    this.ipv6 = ipv6;
    this.middleHopMtu = middleHopMtu;
    this.vip6 = ipv6 ? VIP6 : null;
    const plan = planLab(id, backends, ipv6, middleHopMtu);
    this.lb = plan.lb;
    this.client = plan.client;
    this.backends = plan.backends;
    this.routers = plan.routers;
    for (const h of [this.client, this.lb, ...this.backends, ...this.routers]) this.byRole.set(h.role, h);
    this.namespaces = [this.client.ns, this.lb.ns, ...this.backends.map((b) => b.ns), ...this.routers.map((r) => r.ns)];
    this.unregister = registerCleanup({
      name: `lab ${id}`,
      run: () => this.destroy(),
      sync: () => this.destroySync(),
    });
  }

  get destroyed(): boolean {
    return this.teardown !== null;
  }

  backend(id: string): LabBackend {
    const b = this.backends.find((x) => x.id === id);
    if (!b) throw new RangeError(`lab ${this.id} has no backend ${JSON.stringify(id)} (has ${this.backends.map((x) => x.id).join(', ')})`);
    return b;
  }

  async enableForwarding(): Promise<void> {
    this.assertAlive();
    const values: Record<string, number> = { 'net.ipv4.ip_forward': 1 };
    if (this.ipv6) values['net.ipv6.conf.all.forwarding'] = 1;
    await sysctlSet(this.lb.ns, values);
  }

  /** Creates the namespaces, then wires them (lab-wiring.ts); any failure propagates (createLab() then destroys). */
  async build(onStep: (step: string) => Promise<void>): Promise<void> {
    const hosts: LabHost[] = [this.client, this.lb, ...this.backends, ...this.routers];

    await onStep('namespaces');
    for (const h of hosts) {
      if (this.teardown !== null) throw new Error(`lab ${this.id}: destroyed during set-up`);
      // destroy() waits for an add in flight, so a namespace born during teardown is still removed.
      this.inflight = { ns: h.ns, done: netnsAdd(h.ns).then(() => void this.created.push(h.ns)) };
      try {
        await this.inflight.done;
      } finally {
        this.inflight = null;
      }
    }
    await wireLab(this, onStep);
  }

  destroy(): Promise<void> {
    if (this.teardown === null) this.teardown = this.doDestroy();
    return this.teardown;
  }

  private async doDestroy(): Promise<void> {
    const errors: unknown[] = [];
    if (this.inflight !== null) await this.inflight.done.catch(() => undefined);
    try {
      await this.procs.stopAll(3_000);
    } catch (err) {
      errors.push(err);
    }
    // Anything else still running inside our namespaces (grandchildren) would keep them alive: end it.
    for (const ns of this.created) {
      try {
        for (const pid of await netnsPids(ns)) {
          if (pid === process.pid) continue;
          try {
            process.kill(pid, 'SIGKILL');
          } catch {
            // Gone meanwhile.
          }
        }
      } catch {
        // Namespace already gone.
      }
    }
    for (const ns of [...this.created].reverse()) {
      try {
        await netnsDelete(ns, { ifExists: true });
      } catch (err) {
        errors.push(err);
      }
    }
    // Verify, and retry synchronously once for anything left.
    let left = (await netnsList()).filter((n) => this.created.includes(n));
    if (left.length > 0) {
      for (const ns of left) netnsDeleteSync(ns);
      left = (await netnsList()).filter((n) => this.created.includes(n));
    }
    this.unregister();
    if (left.length > 0) {
      throw new AggregateError(errors, `lab ${this.id}: could not remove namespaces ${left.join(', ')}`);
    }
  }

  private destroySync(): void {
    this.teardown ??= Promise.resolve();
    this.procs.killAllSync();
    const names = [...this.created].reverse();
    // An `ip netns add` in flight may or may not have completed; the name was checked to be free before.
    if (this.inflight !== null && !names.includes(this.inflight.ns)) names.unshift(this.inflight.ns);
    for (const ns of names) netnsDeleteSync(ns);
  }
}

/**
 * Builds a lab. On any failure (including an `onStep` throw or a signal) everything created so far is removed
 * before the error propagates.
 */
export async function createLab(opts: LabOptions = {}): Promise<Lab> {
  const { backends, id, ipv6, middleHopMtu } = validateOptions(opts);
  const existing = await listLabNamespaces(id);
  if (existing.length > 0) {
    throw new Error(`lab id ${id} is in use: namespaces ${existing.join(', ')} exist`);
  }
  const lab = new LabImpl(id, backends, ipv6, middleHopMtu);
  try {
    await lab.build(async (step) => {
      if (lab.destroyed) throw new Error(`lab ${id}: destroyed during set-up`);
      await opts.onStep?.(step);
    });
    if (lab.destroyed) throw new Error(`lab ${id}: destroyed during set-up`);
  } catch (err) {
    try {
      await lab.destroy();
    } catch (cleanupErr) {
      throw new AggregateError([err, cleanupErr], `lab ${id}: set-up failed and so did cleanup: ${String(err)}`);
    }
    throw err;
  }
  return lab;
}
