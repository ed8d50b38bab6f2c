// The data plane's options: what `new Dataplane()` takes, checked before anything is opened, with the
// defaults the environment may set (L4NAT_BUSY_POLL_US, L4NAT_BUSY_POLL_ADAPTIVE, L4NAT_UDP_COALESCE, L4NAT_SYNC_LOG).

export interface DataplaneOptions {
  ifname: string;
  queues: number;
  flowCapacity: number;
  maxServices: number;
  maxBackends: number;
  /** After its queue drains, a worker keeps reading up to this many microseconds before it sleeps (0 = never
   * spin). Default: $L4NAT_BUSY_POLL_US, else DEFAULT_BUSY_POLL_US. */
  busyPollUs?: number;
  /** Size the busy-polling window from the idle gaps each worker sees, up to busyPollUs
   * (native/core/busypoll.h); false: always busyPollUs. Default: $L4NAT_BUSY_POLL_ADAPTIVE (0 or 1), else on. */
  busyPollAdaptive?: boolean;
  /** Write runs of one flow's UDP datagrams as one UDP GSO super-packet (native/core/coalesce.h); used only
   * where the kernel's TUN took the USO offloads (Linux 6.2+). Default: $L4NAT_UDP_COALESCE (0 or 1), else on. */
  udpCoalesce?: boolean;
  /** Keep the flow table in this file, placed with this hash key, for the next l4nat to take over
   * (native/core/flow_segment.h); null: in memory. */
  flowFile?: { path: string; hashKey: Uint8Array; shared?: boolean } | null;
  /** The workers' flow-state sync logs on from the start, without a cluster to drain them (native/core/sync_log.h;
   * a full log only counts): the packet path's cost of sync, for benchmarks. cluster.sync turns them on anyway.
   * Default: $L4NAT_SYNC_LOG (0 or 1), else off. */
  syncLog?: boolean;
}

/** The options with every default filled in. */
export type ResolvedDataplaneOptions = Required<DataplaneOptions>;

export const DEFAULT_BUSY_POLL_US = 100;

function defaultBusyPoll(): number {
  const env = process.env.L4NAT_BUSY_POLL_US;
  if (env === undefined || env === '') return DEFAULT_BUSY_POLL_US;
  if (!/^\d+$/.test(env) || Number(env) > 100_000) throw new RangeError(`L4NAT_BUSY_POLL_US must be microseconds from 0 to 100000, got ${JSON.stringify(env)}`);
  return Number(env);
}

/** An on/off environment setting: unset or empty gives the default, else exactly 0 or 1. */
function envSwitch(name: string, dflt: boolean): boolean {
  const env = process.env[name];
  if (env === undefined || env === '') return dflt;
  if (env !== '0' && env !== '1') throw new RangeError(`${name} must be 0 (off) or 1 (on), got ${JSON.stringify(env)}`);
  return env === '1';
}

/** The options with their defaults, or throws naming the first bad one and what is expected. */
export function resolveDataplaneOptions(opts: DataplaneOptions): ResolvedDataplaneOptions {
  const check = (name: keyof DataplaneOptions, min: number, max: number): void => {
    const v = opts[name];
    if (!Number.isInteger(v) || (v as number) < min || (v as number) > max) {
      throw new RangeError(`dataplane: ${name} must be an integer from ${min} to ${max}, got ${String(v)}`);
    }
  };
  if (typeof opts.ifname !== 'string' || !/^[A-Za-z0-9_.-]{1,15}$/.test(opts.ifname)) {
    throw new TypeError(`dataplane: ifname must be 1-15 characters [A-Za-z0-9_.-], got ${JSON.stringify(opts.ifname)}`);
  }
  check('queues', 1, 256);
  check('flowCapacity', 8, 2 ** 31);
  check('maxServices', 1, 65536);
  check('maxBackends', 1, 1 << 20);
  opts = { ...opts, busyPollUs: opts.busyPollUs ?? defaultBusyPoll() };
  check('busyPollUs', 0, 100_000);
  opts = {
    ...opts,
    busyPollAdaptive: opts.busyPollAdaptive ?? envSwitch('L4NAT_BUSY_POLL_ADAPTIVE', true),
    udpCoalesce: opts.udpCoalesce ?? envSwitch('L4NAT_UDP_COALESCE', true),
    syncLog: opts.syncLog ?? envSwitch('L4NAT_SYNC_LOG', false),
  };
  for (const name of ['busyPollAdaptive', 'udpCoalesce', 'syncLog'] as const) {
    if (typeof opts[name] !== 'boolean') throw new TypeError(`dataplane: ${name} must be true or false, got ${String(opts[name])}`);
  }
  const ff = opts.flowFile ?? null;
  if (ff !== null && (typeof ff.path !== 'string' || ff.path.length === 0 || Buffer.byteLength(ff.path) > 254 || !(ff.hashKey instanceof Uint8Array) || ff.hashKey.length !== 16)) {
    // Never quote the key.
    throw new TypeError(`dataplane: flowFile must be {path: a path of 1-254 bytes, hashKey: 16 bytes}, got path ${JSON.stringify(ff.path)} and a key of ${ff.hashKey instanceof Uint8Array ? `${ff.hashKey.length} bytes` : typeof ff.hashKey}`);
  }
  return { ...opts, flowFile: ff } as ResolvedDataplaneOptions;
}
