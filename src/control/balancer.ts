// The publish path: the Balancer owns the running service table and hands every new one to the data plane
// atomically, in the order that never leaks an untranslated reply: routes and rules for new VIPs and
// backends before the table that uses them, the steering program for the new VIP set before the table, stale routes
// after it; a table the data plane refuses changes nothing (routes and steering rolled back). Slots are planned
// for the new table and committed only once the data plane took it. The controller (controller.ts) decides what
// to publish; this module how.
import type { Dataplane } from '../dataplane/native';
import type { HostSetup } from '../host/setup';
import type { LocalAddresses } from '../host/local-addrs';
import type { Logger } from '../util/log';
import { checkServices, serviceId, type ServiceSpec } from '../config/model';
import { EnvironmentError } from '../host/environment-error';
import { encodeFlowSlots, type FlowSlotMap } from '../dataplane/flow-slots';
import {
  backendKeysBySlot, buildTables, keyedRing, legacyKeyedRing, localAddressInput, sameKeyedRing, SlotAllocator, withPreviousRings,
  type KeyedRing, type TableOptions, type TablesInput,
} from '../dataplane/tables';

/** Why the steering program could not be attached, what that means with `queues` queues, and the remedies. */
export function steeringError(err: NodeJS.ErrnoException, queues: number): EnvironmentError {
  const denied = err.code === 'EPERM' || err.code === 'EACCES';
  const grant = denied
    ? 'grant CAP_BPF and allow the bpf() system call (systemd unit: CAP_BPF in AmbientCapabilities= and CapabilityBoundingSet=, SystemCallFilter=@system-service bpf), or '
    : '';
  const e = new EnvironmentError(
    `queue steering: ${err.message}. With ${queues} queues l4nat needs its steering program, or the kernel spreads each flow's packets over the workers and they leave reordered: ${grant}run with one queue (--queues 1, global.queues: 1)`,
  );
  e.code = err.code;
  return e;
}

/**
 * The host objects the services need: VIP routes, and rules catching the backends' replies. The probe source
 * addresses (of the families in use) are routed to the TUN like VIPs: the probes enter the kernel from the TUN
 * with that source (reverse-path check), and answers to a health-check port no rule covers still reach it.
 */
export function hostStateFor(services: readonly ServiceSpec[], probeSource?: TableOptions['probeSource']): Parameters<HostSetup['apply']>[0] {
  const vips = new Map<string, { family: 4 | 6; addr: string }>();
  const backends = new Map<string, { family: 4 | 6; addr: string; proto: 'tcp' | 'udp'; port: number }>();
  for (const s of services) {
    vips.set(s.vip, { family: s.family, addr: s.vip });
    for (const b of s.backends) backends.set(`${b.addr}|${b.port}|${s.proto}`, { family: b.family, addr: b.addr, proto: s.proto, port: b.port });
  }
  const families = new Set(services.map((s) => s.family));
  for (const [fam, addr] of [[4, probeSource?.ipv4], [6, probeSource?.ipv6]] as const) {
    if (addr !== undefined && families.has(fam)) vips.set(addr, { family: fam, addr });
  }
  return { vips: [...vips.values()], backends: [...backends.values()] };
}

export interface PublishResult {
  changedSlots: Record<string, number>; // service id -> ring slots whose backend changed (new service: all)
}

/** The running l4nat: data plane, host set-up and the current service table. */
export class Balancer {
  private services: ServiceSpec[] = [];
  private readonly svcAlloc: SlotAllocator;
  private readonly bkAlloc: SlotAllocator;

  constructor(
    readonly dp: Dataplane,
    readonly host: HostSetup,
    private tableOpts: TableOptions,
    private readonly log: Logger,
    takenOver?: FlowSlotMap,
  ) {
    this.svcAlloc = new SlotAllocator(dp.opts.maxServices);
    this.bkAlloc = new SlotAllocator(dp.opts.maxBackends);
    // The flow table came from the previous l4nat: its entries name slots, so the same ids get the same ones.
    if (takenOver) {
      this.svcAlloc.seed(takenOver.services);
      this.bkAlloc.seed(takenOver.backends);
    }
  }

  get current(): readonly ServiceSpec[] {
    return this.services;
  }

  get tableOptions(): Readonly<TableOptions> {
    return this.tableOpts;
  }

  private chain: Promise<unknown> = Promise.resolve();

  /**
   * Replaces the whole service set atomically: either the data plane takes the new table or nothing changes.
   * Updates are serialized, so concurrent admin requests cannot interleave. `tableOpts` (timeouts, ICMP
   * options) changes with the table when given. Resolves with how many ring slots changed per service.
   */
  setServices(services: ServiceSpec[], tableOpts?: TableOptions): Promise<PublishResult> {
    const run = this.chain.then(() => this.apply(services, tableOpts));
    this.chain = run.catch(() => undefined);
    return run;
  }

  /** This host's own addresses as every table carries them, and the table as last handed to the data plane. */
  private local: Pick<TablesInput, 'localAddrs4' | 'localAddrs6'> = {};
  private published?: TablesInput;

  /**
   * The host's addresses changed: the current table is published again with them (an ICMP error the host sends
   * itself comes out from the VIP, native/core/dataplane.c icmp_error). Queued behind pending updates.
   */
  setLocalAddresses(addrs: LocalAddresses): Promise<void> {
    const run = this.chain.then(() => {
      const local = localAddressInput(addrs);
      if (this.published) {
        const input = { ...this.published, ...local };
        this.dp.publish(input);
        this.published = input;
      }
      this.local = local;
    });
    this.chain = run.catch(() => undefined);
    return run;
  }

  /** Rings as backend keys, as last published, and each service's ring before its last change. */
  private keyedRings = new Map<string, KeyedRing>();
  private previousRings = new Map<string, KeyedRing>();

  /** Ring contents by service id as last published (backend slots), for counting changed slots. */
  private rings = new Map<string, Uint32Array>();

  private async apply(services: ServiceSpec[], opts: TableOptions | undefined): Promise<PublishResult> {
    const tableOpts = opts ?? this.tableOpts; // read when this update runs, after any queued before it
    checkServices(services, tableOpts);
    const built = buildTables(services, this.svcAlloc, this.bkAlloc, tableOpts);
    // Each service's ring as it will be published: as slots (the changed-slot count, the cluster's digests) and as
    // backend keys (the second chance, native/core/dataplane.c: each service also carries its ring from before
    // its last change). Kept only once the data plane has taken the table.
    const m = tableOpts.maglevSize;
    const rings = new Map<string, Uint32Array>();
    const nowRings = new Map<string, KeyedRing>();
    const previous = new Map<string, KeyedRing>();
    const changed: Record<string, number> = {};
    const keysBySlot = backendKeysBySlot(built);
    services.forEach((s, si) => {
      const id = serviceId(s);
      const ring = built.input.rings.slice(si * m, (si + 1) * m);
      rings.set(id, ring);
      const old = this.rings.get(id);
      let n = 0;
      if (!old) n = m;
      else for (let i = 0; i < m; i++) if (old[i] !== ring[i]) n++;
      if (n > 0) changed[id] = n;
      const cur = keyedRing(built, si, m, keysBySlot);
      nowRings.set(id, cur);
      const last = this.keyedRings.get(id);
      // A service new to this process starts with the ring older l4nat versions built for it, if that differs.
      const legacy = last ? undefined : legacyKeyedRing(s, tableOpts);
      const prev = last && !sameKeyedRing(last, cur) ? last : this.previousRings.get(id) ?? (legacy && !sameKeyedRing(legacy, cur) ? legacy : undefined);
      if (prev && prev.idx.length === m) previous.set(id, prev);
    });
    // Routes and rules for new VIPs/backends go in before the table that uses them, so the first reply of a
    // new backend is already steered into the TUN; stale ones are removed after the switch.
    await this.host.apply(hostStateFor([...services, ...this.services], tableOpts.probeSource));
    // The steering program for the new VIP set goes in before the table: the flows of VIPs kept hash as before,
    // new VIPs have no flows yet. If either step fails the update changes nothing.
    const steeredBefore = this.steered;
    const input = { ...withPreviousRings(built, previous), ...this.local };
    try {
      this.steer(services);
      this.dp.publish(input);
    } catch (e) {
      this.restoreSteering(steeredBefore);
      await this.host.apply(hostStateFor(this.services, this.tableOpts.probeSource));
      throw e;
    }
    this.published = input;
    this.svcAlloc.commit(built.serviceSlots);
    this.bkAlloc.commit(built.backendSlots);
    this.recordSlots();
    this.services = services;
    this.tableOpts = tableOpts;
    this.rings = rings;
    this.keyedRings = nowRings;
    this.previousRings = previous;
    await this.host.apply(hostStateFor(services, tableOpts.probeSource));
    this.log.debug({ services: services.length, changedSlots: changed }, 'service table published');
    return { changedSlots: changed };
  }

  /** The slots just committed, into the flow table's file for the next l4nat (src/dataplane/flow-slots.ts). */
  private recordSlots(): void {
    if (!this.dp.flowFile) return;
    if (!this.dp.setFlowSlots(encodeFlowSlots({ services: this.svcAlloc.entries(), backends: this.bkAlloc.entries() }))) {
      this.log.warn({ flowFile: this.dp.flowFile.path }, 'the slot map does not fit in the flow table file: the next l4nat will start with an empty flow table');
    }
  }

  /** The VIPs of the attached steering program (sorted); null while none is attached. */
  private steered: readonly string[] | null = null;

  /**
   * With several queues, a steering program keeps both directions of a flow on one queue, so one worker handles
   * the flow in order (native/steering.h). It holds the VIP addresses, so it is rebuilt when they change. Without
   * it the kernel spreads a flow's packets over the workers and they leave reordered (and a passive max_resets then
   * takes healthy backends out), so l4nat does not run that way: the error says what the kernel refused and the
   * remedies, l4nat up refuses to start, and a later change that needs a new program is rejected (the next one
   * tries again).
   */
  private steer(services: readonly ServiceSpec[]): void {
    if (this.dp.queues < 2) return;
    const vips = [...new Set(services.map((s) => s.vip))].sort();
    if (this.steered !== null && vips.join(',') === this.steered.join(',')) return;
    try {
      this.dp.setSteering(vips);
    } catch (err) {
      throw steeringError(err as NodeJS.ErrnoException, this.dp.queues);
    }
    this.steered = vips;
    this.log.info({ vips: vips.length, queues: this.dp.queues }, 'queue steering program attached: both directions of a flow on one queue');
  }

  /** After a rejected update: the program for the VIPs of the table that stays. */
  private restoreSteering(vips: readonly string[] | null): void {
    if (this.steered === vips) return;
    try {
      this.dp.setSteering(vips === null ? null : [...vips]);
      this.steered = vips;
    } catch (err) {
      this.log.error({ err: (err as Error).message }, 'restoring the previous queue steering program failed: flows of VIPs it no longer lists may be reordered');
    }
  }

  backendSlot(key: string): number | undefined {
    return this.bkAlloc.get(key);
  }

  /** The rings as last handed to the data plane, by service id (cluster hosts compare their digests). */
  get publishedRings(): ReadonlyMap<string, Uint32Array> {
    return this.rings;
  }

  serviceSlot(id: string): number | undefined {
    return this.svcAlloc.get(id);
  }

  /** The backend key (tables.ts backendKey) a slot holds now, for naming it to other hosts. */
  backendKeyOfSlot(slot: number): string | undefined {
    return this.bkAlloc.idOf(slot);
  }
}
