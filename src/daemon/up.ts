// `l4nat up`: open the data plane, set up the host, publish the tables, forward until a signal, then
// remove everything in an order that never leaks an untranslated reply.
import type { FastifyInstance } from 'fastify';
import { createAdminServer, listenAdmin } from '../admin/server';
import { TraceHub } from '../trace/hub';
import { authDescription, prepareAdminAuth } from '../admin/access';
import { Controller } from '../control/controller';
import { Balancer } from '../control/balancer';
import { createMetrics } from '../admin/metrics';
import { monotonicMs } from '../util/clock';
import { ProxyNeighbors, vipsOf } from '../host/proxy-neigh';
import { SystemdNotifier, workersAlive } from '../host/systemd';
import type { Dataplane, QueueFailure } from '../dataplane/native';
import { flowFileOf, openDataplane, removeFlowFile } from './flow-handover';
import { drained, predecessorOf, startSuccessor, systemdEnv, takeOverFrom } from './live-handover';
import { SignalWatch } from './signals';
import { affinityWarnings } from '../dataplane/affinity';
import { loadOrCreateHashKey } from '../config/hash-key';
import { HostSetup } from '../host/setup';
import { watchLinkMtu } from '../host/link-mtu';
import { watchLocalAddresses } from '../host/local-addrs';
import type { StateWatch } from '../host/state-watch';
import type { Logger } from '../util/log';
import { isLoopback } from '../config/model';
import { hasNetAdmin } from '../host/privileges';
import { EnvironmentError } from '../host/environment-error';
import { icmpChecksUnavailable } from '../health/icmp';
import type { UpOptions } from '../config/options';
import { setWorkerNice, WORKER_NICE_REMEDY } from '../dataplane/worker-priority';
import { Cluster } from '../cluster';
import { clusterOptionsOf } from '../cluster/options';
import { syncNames } from '../cluster/sync-names';

const MIN_MAX_SERVICES = 256;
const MIN_MAX_BACKENDS = 4096;
/** Link and address changes come in bursts (a link going up brings its addresses): one read after a short wait. */
const HOST_FOLLOW_DEBOUNCE_MS = 50;
/** A live handover's successor must forward within this, and its predecessor be gone within it after. */
const LIVE_HANDOVER_TIMEOUT_MS = 60_000;

export async function runUp(opts: UpOptions, log: Logger): Promise<number> {
  if (!hasNetAdmin()) {
    throw new EnvironmentError('l4nat up needs CAP_NET_ADMIN to create the TUN device, routes and rules: run it as root (sudo) or grant the capability');
  }
  const noIcmp = icmpChecksUnavailable(opts.services);
  if (noIcmp) throw new EnvironmentError(noIcmp);
  const hashKey = opts.hashKey ?? loadOrCreateHashKey(opts.hashKeyFile, log);
  const sdEnv = systemdEnv(); // before the notifier takes it out of the environment: a live successor needs it
  const predecessor = predecessorOf();
  prepareAdminAuth(opts.admin, log); // before anything is set up; the default token exists before the controller reads it
  for (const w of affinityWarnings(opts.services)) log.warn({ event: 'affinity_warning' }, w);
  const nBackends = opts.services.reduce((n, s) => n + s.backends.length, 0);
  // Scale-out: announce nothing before the TUN has a reader (which gives it carrier, see cluster/bird.ts).
  const clusterOpts = clusterOptionsOf(opts);
  const cluster = clusterOpts ? new Cluster(clusterOpts, log) : undefined;
  if (predecessor === undefined) await cluster?.prepare(opts.tun); // a live predecessor still reads the TUN
  const flowFile = flowFileOf(opts);
  const { dp, slots } = openDataplane({
    ifname: opts.tun,
    queues: opts.queues,
    flowCapacity: opts.flowCapacity,
    maxServices: Math.max(MIN_MAX_SERVICES, opts.services.length * 2),
    maxBackends: Math.max(MIN_MAX_BACKENDS, nBackends * 2),
  }, flowFile, hashKey, log, predecessor !== undefined);
  // Persistent: if this process dies, the device and its routes stay, so backend replies are dropped
  // (no reader) rather than leaked, and the next run re-attaches (docs/design.md item 6).
  dp.setPersist(true);
  if (predecessor !== undefined) dp.detachQueues(); // the predecessor's queues take every packet until our workers poll
  const host = new HostSetup({ log, tunName: dp.ifname, table: opts.table, rulePref: opts.rulePref });
  const balancer = new Balancer(dp, host, {
    hashKey,
    maglevSize: opts.maglevSize,
    timeouts: opts.timeouts,
    icmpEcho: opts.icmpEcho,
    icmpTranslate: opts.icmpTranslate,
    probeSource: opts.probeSource,
  }, log, slots);
  let statsTimer: NodeJS.Timeout | undefined;
  let ctrl: Controller | undefined;
  let admin: FastifyInstance | undefined;
  let proxy: ProxyNeighbors | undefined;
  let trace: TraceHub | undefined;
  const watches: Pick<StateWatch<unknown>, 'close'>[] = []; // the links' MTUs, the host's addresses
  const notifier = SystemdNotifier.fromEnv(log);
  const shutdown = async (): Promise<void> => {
    await cluster?.close().catch((err: unknown) => log.warn({ err }, 'stopping the cluster agent failed'));
    if (statsTimer) clearInterval(statsTimer);
    ctrl?.stop();
    notifier?.stopWatchdog();
    // Stop answering ARP/NDP for the VIPs first: clients on the segment stop sending here.
    await proxy?.clear().catch((err: unknown) => log.warn({ err }, 'removing proxy neighbour entries failed'));
    proxy?.close();
    for (const w of watches) w.close();
    trace?.close(); // ends the streams of GET /v1/trace, which would hold the admin API open
    await admin?.close().catch((err: unknown) => log.warn({ err }, 'closing the admin API failed'));
    try {
      await host.teardown(); // VIP routes first, rules, blackholes last; workers still translate meanwhile
    } finally {
      host.close();
      dp.close(false); // not persistent any more: the device goes with the last queue
      removeFlowFile(flowFile, log);
    }
  };
  // Handover (SIGUSR2, POST /v1/restart), and a data plane whose TUN cannot be read any more: stop like a crash
  // would, but in order — the TUN (persistent), its routes, rules and blackholes and the proxy neighbour entries
  // stay, so the next l4nat re-attaches to them (or creates the TUN again) and no reply leaks meanwhile (docs/design.md
  // item 6); same hash key and tables, so it forwards every flow on.
  const closeKeepingHost = async (): Promise<void> => {
    await cluster?.close().catch((err: unknown) => log.warn({ err }, 'stopping the cluster agent failed'));
    if (statsTimer) clearInterval(statsTimer);
    ctrl?.stop();
    notifier?.stopWatchdog();
    proxy?.close();
    for (const w of watches) w.close();
    trace?.close(); // ends the streams of GET /v1/trace, which would hold the admin API open
    await admin?.close().catch((err: unknown) => log.warn({ err }, 'closing the admin API failed'));
    host.close();
    dp.close(true);
  };
  // Signals are taken from the start, so a stop during start-up still cleans up.
  const signals = new SignalWatch();
  try {
    await host.open();
    const linkMtu = await watchLinkMtu({ log, host, pinned: opts.mtu, debounceMs: HOST_FOLLOW_DEBOUNCE_MS });
    watches.push(linkMtu);
    await host.configureLink(opts.mtu ?? linkMtu.current!.mtu);
    const local = await watchLocalAddresses(log, HOST_FOLLOW_DEBOUNCE_MS, (next) => balancer.setLocalAddresses(next));
    watches.push(local);
    await balancer.setLocalAddresses(local.current!);
    ctrl = new Controller(balancer, opts, log);
    await ctrl.start();
    // Workers only once the first table is in: what arrived before (a handover's routes feed the TUN already)
    // waited in the TUN queues instead of being read and dropped uncounted.
    dp.start();
    if (predecessor !== undefined) await takeOverFrom(predecessor, log, LIVE_HANDOVER_TIMEOUT_MS); // both forward meanwhile
    applyWorkerNice(opts.workerNice, dp.queues, log);
    host.watch();
    if (opts.proxyNeighbors.length) {
      const pn = new ProxyNeighbors(opts.proxyNeighbors, log);
      proxy = pn;
      await pn.open();
      await pn.sync(vipsOf(ctrl.current));
      const cur = ctrl;
      cur.on('reload', () => {
        pn.sync(vipsOf(cur.current)).catch((err: unknown) => log.error({ err }, 'updating proxy neighbour entries failed'));
      });
    }
    if (opts.admin.port > 0) {
      const cur = ctrl;
      trace = new TraceHub({ dp, services: () => cur.current, serviceSlot: (id) => balancer.serviceSlot(id), backendSlot: (k) => balancer.backendSlot(k), log });
      const metrics = createMetrics({ ctrl, counters: () => dp.counters(), flowCount: () => cur.flowCount(), flowCapacity: dp.flowCapacity, ...(cluster ? { cluster: () => cluster.status() } : {}) });
      admin = await createAdminServer({
        ctrl,
        admin: opts.admin,
        log,
        metrics,
        info: () => ({ tun: dp.ifname, queues: dp.queues, flowCapacity: dp.flowCapacity, ...(cluster ? { cluster: cluster.status() } : {}) }),
        restart: (live) => (live ? signals.requestLiveHandover() : process.kill(process.pid, 'SIGUSR2')),
        trace,
        dashboard: { rings: balancer, flowCapacity: dp.flowCapacity },
        ...(cluster ? { cluster: () => cluster.view() } : {}),
      });
      const a = await listenAdmin(admin, opts.admin);
      const scheme = opts.admin.tls ? 'https' : 'http';
      const host6 = a.family === 'IPv6' ? `[${a.address}]` : a.address;
      log.info(
        { admin: `${scheme}://${host6}:${a.port}/v1/services`, auth: authDescription(opts.admin) },
        `admin API listening${isLoopback(opts.admin.listen) ? ' (loopback)' : ''}`,
      );
    }
    if (cluster) await cluster.start({ ctrl, tun: dp.ifname, rings: () => balancer.publishedRings, dataplaneProblem: () => dataplaneProblem(dp), sync: { dp, names: syncNames(balancer) } });
    if (signals.count > 0) throw new Error(`stopped by ${signals.first} during start-up`);
  } catch (e) {
    // A live handover's successor leaves the TUN, routes, rules and flow table to the l4nat still forwarding.
    await (predecessor === undefined ? shutdown() : closeKeepingHost()).catch((err) => log.error({ err }, 'clean-up after a failed start failed'));
    signals.close();
    throw e;
  }
  const c = ctrl;
  log.info(
    {
      tun: dp.ifname,
      queues: dp.queues,
      offloads: dp.offloads,
      flowCapacity: dp.flowCapacity,
      flowTableMiB: Math.round((dp.flowCapacity * dp.flowEntryBytes) / 2 ** 20),
      configFile: opts.configFile,
      services: c.current.map((s) => ({ vip: s.vip, port: s.port, proto: s.proto, hash: s.hash, backends: s.backends.map((b) => `${b.addr}:${b.port}@${b.weight}`), healthCheck: s.health?.type ?? 'none' })),
    },
    'l4nat ready',
  );
  const statusLine = (): string => {
    const m = c.summary();
    const down = m.allDown.length ? `; NO HEALTHY BACKEND: ${m.allDown.join(', ')}` : '';
    return `${m.services} services; backends ${m.up} up, ${m.down} down, ${m.draining} draining; ${dp.closed ? 0 : c.flowCount()} flows${down}`;
  };
  notifier?.ready(statusLine());
  notifier?.startWatchdog(
    () => dataplaneProblem(dp),
    (path, everyMs, staleMs) => dp.startWatchdog(path, everyMs, staleMs),
  );
  c.on('change', () => notifier?.status(statusLine()));
  const startStats = (interval: number): void => {
    if (statsTimer) clearInterval(statsTimer);
    statsTimer = undefined;
    if (interval > 0) {
      statsTimer = setInterval(() => {
        logStats(dp, log);
        notifier?.status(statusLine());
      }, interval * 1000);
      statsTimer.unref();
    }
  };
  startStats(opts.statsInterval);
  c.on('reload', (next: UpOptions) => startStats(next.statsInterval));
  signals.onHup = () => {
    if (!c.opts.configFile) {
      log.warn('SIGHUP: l4nat up was started from flags; there is no config file to reload');
      return;
    }
    log.info({ file: c.opts.configFile }, 'SIGHUP: reloading the config file');
    notifier?.send('RELOADING=1');
    c.reload()
      .catch(() => undefined) // logged by reload()
      .finally(() => notifier?.send(`READY=1\nSTATUS=${statusLine()}`));
  };

  const queues = new QueueWatch(dp);
  let ended: NodeJS.Signals | QueueFailure[] | 'live';
  let successor: number | null = null;
  do ended = await Promise.race([signals.next(), queues.failed, signals.liveHandover]);
  while (ended === 'live' && (successor = await startSuccessor(log, sdEnv, LIVE_HANDOVER_TIMEOUT_MS)) === null);
  queues.stop();
  if (typeof ended !== 'string') {
    // Every later read fails the same way and no worker forwards: exit, and let the service manager start l4nat
    // again, which creates the TUN again and re-attaches to the routes and rules left in place meanwhile.
    const why = `TUN ${dp.ifname}: reading ${ended.length === 1 ? `queue ${ended[0]!.queue}` : `queues ${ended.map((f) => f.queue).join(', ')}`} failed with ${ended[0]!.code} (${ended[0]!.message})${ended[0]!.code === 'EBADFD' ? ': the device was deleted' : ''}`;
    notifier?.status(`data plane failed: ${why}`);
    log.error(
      { tun: dp.ifname, failedQueues: ended, exitCode: DATAPLANE_FAILED_EXIT_CODE },
      `${why}. The data plane cannot forward: exiting with status ${DATAPLANE_FAILED_EXIT_CODE} so that the service manager starts l4nat again (the systemd unit does), which creates the TUN again; routes and rules stay meanwhile, so no reply leaks untranslated`,
    );
    await closeKeepingHost();
    signals.close();
    notifier?.close();
    logStats(dp, log, true);
    return DATAPLANE_FAILED_EXIT_CODE;
  }
  if (successor !== null) {
    // The successor forwards through the same flow table already: tell systemd who the service is now, and leave.
    notifier?.send(`MAINPID=${successor}`);
    await drained(() => dp.counters().total.rx_packets);
    dp.detachQueues(); // nothing comes here any more (the successor's steering); what might still, goes to its queues
    await closeKeepingHost();
    signals.close();
    notifier?.close();
    logStats(dp, log, true);
    log.info({ successor }, `handed over live to l4nat pid ${successor}: it forwards every flow on through the same flow table`);
    return 0;
  }
  const signal = ended as NodeJS.Signals;
  if (signal === 'SIGUSR2') {
    notifier?.stopping('handing over to the next l4nat: TUN, routes and rules kept');
    const flows = c.flowCount();
    await closeKeepingHost();
    signals.close();
    notifier?.close();
    logStats(dp, log, true);
    log.info(
      { signal, flows, exitCode: HANDOVER_EXIT_CODE },
      `handed over: TUN ${dp.ifname}, its routes and rules stay${dp.flowFile ? `, and the flow table in ${dp.flowFile.path}` : ''}; start l4nat again with the same configuration and it takes over every flow (the systemd unit does, on exit code ${HANDOVER_EXIT_CODE})`,
    );
    return HANDOVER_EXIT_CODE;
  }
  await cluster?.beginShutdown(); // routers move new flows away before the rings are emptied
  const grace = c.opts.shutdownGrace;
  notifier?.stopping(`stopping (${signal})${grace > 0 ? `: ${grace} s grace for established flows` : ''}`);
  if (grace > 0) {
    log.info({ signal, graceSeconds: grace, flows: c.flowCount() }, `stopping: admitting no new flows; established flows are forwarded for up to ${grace} s (a second signal stops at once)`);
    const t0 = Date.now();
    await c.quiesce().catch((err: unknown) => log.error({ err }, 'emptying the rings failed; stopping at once'));
    const why = await waitGrace(grace * 1000, async () => (await c.countFlows()) === 0, signals);
    log.info({ reason: why, waitedSeconds: Math.round((Date.now() - t0) / 100) / 10, flowsLeft: c.flowCount() }, `grace period over (${why})`);
  }
  log.info({ signal }, 'stopping: removing VIP routes, rules and the TUN');
  await shutdown();
  signals.close();
  notifier?.close();
  logStats(dp, log, true);
  log.info('l4nat stopped');
  return 0;
}

/** Exit status of a handover (SIGUSR2): EX_TEMPFAIL, which the systemd unit restarts at once (RestartForceExitStatus). */
export const HANDOVER_EXIT_CODE = 75;

/** Exit status when the TUN cannot be read any more (deleted): EX_IOERR, a failure the systemd unit restarts. */
export const DATAPLANE_FAILED_EXIT_CODE = 74;

/** null while the data plane forwards; else why not (for the watchdog pings and the cluster's announcements). */
function dataplaneProblem(dp: Dataplane): string | null {
  if (dp.closed) return 'data plane closed';
  const failed = dp.queueFailures();
  if (failed.length) return `TUN ${dp.ifname}: ${failed.map((f) => `queue ${f.queue} ${f.code}`).join(', ')}`;
  return workersAlive(dp.counters().heartbeatsMs, monotonicMs());
}

/**
 * Resolves `failed` with the queues whose worker stopped because its TUN queue cannot be read any more
 * (native/worker.c), checked every `everyMs`.
 */
class QueueWatch {
  readonly failed: Promise<QueueFailure[]>;
  private timer: NodeJS.Timeout | undefined;

  constructor(dp: Dataplane, everyMs = 250) {
    this.failed = new Promise((resolve) => {
      this.timer = setInterval(() => {
        const f = dp.closed ? [] : dp.queueFailures();
        if (f.length) resolve(f);
      }, everyMs);
      this.timer.unref();
    });
  }

  stop(): void {
    clearInterval(this.timer);
  }
}

/** Waits up to ms, or until done() holds (checked every 200 ms), or until another stop signal. */
async function waitGrace(ms: number, done: () => Promise<boolean>, signals: SignalWatch): Promise<string> {
  const deadline = Date.now() + ms;
  let second = false;
  void signals.next().then((s) => {
    second = true;
    return s;
  });
  while (!second) {
    if (await done()) return 'no flows left';
    const left = deadline - Date.now();
    if (left <= 0) return 'grace period elapsed';
    await new Promise((r) => setTimeout(r, Math.min(200, left)));
  }
  return 'second signal: stopping at once';
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

/** Workers ahead of ordinary threads (src/dataplane/worker-priority.ts); refused, they forward at the process's priority. */
function applyWorkerNice(nice: number, queues: number, log: Logger): void {
  if (nice === 0) return;
  try {
    const tids = setWorkerNice(nice);
    if (tids.length !== queues) log.warn({ nice, found: tids.length, queues }, 'not every data-plane worker thread was found by its name (l4nat-qN): some keep the process\'s priority');
    else log.info({ nice, threads: tids.length }, 'data-plane workers run at nice %d', nice);
  } catch (err) {
    log.warn({ err, nice }, `data-plane workers keep the process's priority: ${WORKER_NICE_REMEDY}`);
  }
}
