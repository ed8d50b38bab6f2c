// `l4nat up`: open the data plane, set up the host, publish the tables, forward until a signal, then
// remove everything in an order that never leaks an untranslated reply.
import { AdminApi } from './admin';
import { Dataplane } from './native';
import { loadOrCreateHashKey } from './hash-key';
import { HostSetup } from './host/setup';
import { smallestLinkMtu } from './link-mtu';
import type { Logger } from './log';
import { checkServices, type ServiceSpec } from './model';
import { hasNetAdmin } from './privileges';
import { buildTables, SlotAllocator, type TableOptions } from './tables';
import type { UpOptions } from './up-args';

export class EnvironmentError extends Error {}

const MIN_MAX_SERVICES = 256;
const MIN_MAX_BACKENDS = 4096;

/** The host objects the services need: VIP routes, and rules catching the backends' replies. */
export function hostStateFor(services: readonly ServiceSpec[]): Parameters<HostSetup['apply']>[0] {
  const vips = new Map<string, { family: 4 | 6; addr: string }>();
  const backends = new Map<string, { family: 4 | 6; addr: string; proto: 'tcp' | 'udp'; port: number }>();
  for (const s of services) {
    vips.set(s.vip, { family: s.family, addr: s.vip });
    for (const b of s.backends) backends.set(`${b.addr}|${b.port}|${s.proto}`, { family: b.family, addr: b.addr, proto: s.proto, port: b.port });
  }
  return { vips: [...vips.values()], backends: [...backends.values()] };
}

/** The running l4nat: data plane, host set-up and the current service table. */
export class Balancer {
  private services: ServiceSpec[] = [];
  private readonly svcAlloc: SlotAllocator;
  private readonly bkAlloc: SlotAllocator;

  constructor(
    readonly dp: Dataplane,
    readonly host: HostSetup,
    private readonly tableOpts: TableOptions,
    private readonly log: Logger,
  ) {
    this.svcAlloc = new SlotAllocator(dp.opts.maxServices);
    this.bkAlloc = new SlotAllocator(dp.opts.maxBackends);
  }

  get current(): readonly ServiceSpec[] {
    return this.services;
  }

  private chain: Promise<unknown> = Promise.resolve();

  /**
   * Replaces the whole service set atomically: either the data plane takes the new table or nothing changes.
   * Updates are serialized, so concurrent admin requests cannot interleave.
   */
  setServices(services: ServiceSpec[]): Promise<void> {
    const run = this.chain.then(() => this.apply(services));
    this.chain = run.catch(() => undefined);
    return run;
  }

  private async apply(services: ServiceSpec[]): Promise<void> {
    checkServices(services);
    const built = buildTables(services, this.svcAlloc, this.bkAlloc, this.tableOpts);
    // Routes and rules for new VIPs/backends go in before the table that uses them, so the first reply of a
    // new backend is already steered into the TUN; stale ones are removed after the switch.
    await this.host.apply(hostStateFor([...services, ...this.services]));
    try {
      this.dp.publish(built.input);
    } catch (e) {
      await this.host.apply(hostStateFor(this.services));
      throw e;
    }
    this.svcAlloc.commit(built.serviceSlots);
    this.bkAlloc.commit(built.backendSlots);
    this.services = services;
    await this.host.apply(hostStateFor(services));
    this.log.debug({ services: services.length }, 'service table published');
  }

  backendSlot(key: string): number | undefined {
    return this.bkAlloc.get(key);
  }

  serviceSlot(id: string): number | undefined {
    return this.svcAlloc.get(id);
  }
}

export async function runUp(opts: UpOptions, log: Logger): Promise<number> {
  if (!hasNetAdmin()) {
    throw new EnvironmentError('l4nat up needs CAP_NET_ADMIN to create the TUN device, routes and rules: run it as root (sudo) or grant the capability');
  }
  const hashKey = opts.hashKey ?? loadOrCreateHashKey(opts.hashKeyFile, log);
  const nBackends = opts.services.reduce((n, s) => n + s.backends.length, 0);
  const dp = new Dataplane({
    ifname: opts.tun,
    queues: opts.queues,
    flowCapacity: opts.flowCapacity,
    maxServices: Math.max(MIN_MAX_SERVICES, opts.services.length * 2),
    maxBackends: Math.max(MIN_MAX_BACKENDS, nBackends * 2),
  });
  // Persistent: if this process dies, the device and its routes stay, so backend replies are dropped
  // (no reader) rather than leaked, and the next run re-attaches (DESIGN.md item 6).
  dp.setPersist(true);
  const host = new HostSetup({ log, tunName: dp.ifname, table: opts.table, rulePref: opts.rulePref });
  const balancer = new Balancer(dp, host, {
    hashKey,
    maglevSize: opts.maglevSize,
    timeouts: opts.timeouts,
    icmpEcho: opts.icmpEcho,
    icmpTranslate: opts.icmpTranslate,
  }, log);
  let statsTimer: NodeJS.Timeout | undefined;
  const admin = new AdminApi(balancer, log);
  const shutdown = async (): Promise<void> => {
    if (statsTimer) clearInterval(statsTimer);
    admin.close();
    try {
      await host.teardown(); // VIP routes first, rules, blackholes last; workers still translate meanwhile
    } finally {
      host.close();
      dp.close(false); // not persistent any more: the device goes with the last queue
    }
  };
  try {
    await host.open();
    const mtu = opts.mtu ?? (await smallestLinkMtu(dp.ifname));
    await host.configureLink(mtu);
    dp.start();
    await balancer.setServices(opts.services);
    host.watch();
    if (opts.adminPort > 0) {
      const a = await admin.listen('127.0.0.1', opts.adminPort);
      log.info({ admin: `http://${a.address}:${a.port}/v1/services` }, 'admin API listening (loopback only)');
    }
  } catch (e) {
    await shutdown().catch((err) => log.error({ err }, 'clean-up after a failed start failed'));
    throw e;
  }
  log.info(
    {
      tun: dp.ifname,
      queues: dp.queues,
      offloads: dp.offloads,
      flowCapacity: dp.flowCapacity,
      flowTableMiB: Math.round((dp.flowCapacity * dp.flowEntryBytes) / 2 ** 20),
      services: opts.services.map((s) => ({ vip: s.vip, port: s.port, proto: s.proto, hash: s.hash, backends: s.backends.map((b) => `${b.addr}:${b.port}@${b.weight}`) })),
    },
    'l4nat ready',
  );
  if (opts.statsInterval > 0) {
    statsTimer = setInterval(() => logStats(dp, log), opts.statsInterval * 1000);
    statsTimer.unref();
  }
  const signal = await new Promise<NodeJS.Signals>((resolve) => {
    const on = (s: NodeJS.Signals): void => resolve(s);
    process.once('SIGINT', on);
    process.once('SIGTERM', on);
    process.on('SIGHUP', () => log.warn('SIGHUP: l4nat up was started from flags; there is no config file to reload'));
  });
  log.info({ signal }, 'stopping: removing VIP routes, rules and the TUN');
  await shutdown();
  logStats(dp, log, true);
  log.info('l4nat stopped');
  return 0;
}

let lastTotals: Record<string, number> | undefined;
function logStats(dp: Dataplane, log: Logger, final = false): void {
  if (dp.closed && !final) return;
  const c = dp.counters();
  const drops = Object.fromEntries(Object.entries(c.drops).filter(([, v]) => v > 0));
  const t = c.total;
  const delta = (k: string): number => t[k] - (lastTotals?.[k] ?? 0);
  log.info(
    {
      rx: t.rx_packets, tx: t.tx_packets, forward: t.forward, reply: t.reply, newFlows: t.flow_new,
      rxRate: delta('rx_packets'), evicted: t.flow_evicted, icmp: t.icmp_translated, drops,
    },
    final ? 'final counters' : 'counters',
  );
  lastTotals = { ...t };
}
