// The balancers under comparison, each set up in the lab's lb namespace and removed again before the next
// one starts (they all claim the same VIP). Layers: src/lab (namespaces, l4nat process) → this file → run.ts.
//
//   direct    the client talks to b1's own address; the lb forwards by plain kernel routing (the ceiling).
//   nft-dnat  nftables DNAT of the VIP in the lb's prerouting hook, backend chosen by a hash of the client
//             address; no masquerade: backends answer the client's own address and their replies come back
//             through the lb (their gateway), where conntrack undoes the translation.
//   haproxy   HAProxy in TCP mode, bound to the VIP on the lb's loopback, `balance source`; it terminates
//             TCP and opens its own connections to the backends (a proxy, the usual userspace choice).
//   l4nat     `l4nat up` with its defaults except `--hash src` (iperf3's control and data connections must
//             meet on one backend; all variants send one client to one backend), no periodic stats log.
//   l4nat-1q  the same with `--queues 1`.
//   l4nat-nice0  the same with `--worker-nice 0`: the workers at the process's nice value instead of -10.
//   l4nat-baseline  l4nat's settings, run from another built checkout (--baseline DIR): a build-against-build A/B.
//   l4nat-nocoal  l4nat with UDP coalescing off (L4NAT_UDP_COALESCE=0): every datagram its own TUN write.
//   l4nat-nopoll  l4nat with busy polling off (L4NAT_BUSY_POLL_US=0): a worker sleeps as soon as its queue
//             drains.
//   l4nat-sync  l4nat with the workers' flow-state sync logs on (L4NAT_SYNC_LOG=1, no cluster): what sync costs the
//             packet path at steady state (every packet on an entry not yet logged checks it against the ring).
//   l4nat-busypoll  l4nat with a fixed busy-polling window (L4NAT_BUSY_POLL_US=50, L4NAT_BUSY_POLL_ADAPTIVE=0):
//             a worker always keeps reading 50 µs after its queue drains before it sleeps.
//   l4nat-memtable  l4nat with --flow-file none: the flow table in anonymous memory, as before the flow table file
//             (what keeping it in a file for the next l4nat costs); only when named.
//   l4nat-bounded  l4nat with --balance bounded (factor 1.25): every new flow passes admission (native/core/
//             admission.h), with the count updates every variant makes; only when named.
//   tun-relay the client talks to b1's own address, as in direct, but the lb's policy rules send the client's
//             and b1's packets through a TUN device whose relay (bench/tools/tun-relay.c) writes each one back
//             unchanged (its threads at l4nat's workers' default nice value): the cost of the TUN path alone,
//             with no balancer in user space.
//   X+nic     X with the client's and the backends' TSO/GSO off and GRO on at the lb's veths (see nic.ts).
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import type { Lab, LabBackend } from '../../src/lab/lab';
import { startL4nat, type L4natProcess } from '../../src/lab/l4nat-process';
import { cTool } from '../../src/lab/c-build';
import { DEFAULT_WORKER_NICE } from '../../src/dataplane/worker-priority';
import type { NsProcess } from '../../src/lab/netns';
import { NIC_SUFFIX, type BaseVariant } from './options';
import { applyRealNic, type NicRestore } from './nic';
import { benchTempDir } from './snapshot';
import { IPERF_PORT, RR_PORT, sleep, waitListening } from './tools';

export const L4NAT_ADMIN_PORT = 9180;

/** The tun-relay variant's device, its queues (l4nat's default on this machine; its threads at l4nat's workers'
 * default nice value), route table and rule preference. */
const RELAY_DEV = 'l4relay0';
const RELAY_QUEUES = 2;
const RELAY_TABLE = '4243';
const RELAY_PREF = '90';

/** The l4nat ablations: one setting changed from the defaults, through the environment. */
const L4NAT_VARIANT_ENV: Partial<Record<BaseVariant, Record<string, string>>> = {
  'l4nat-nocoal': { L4NAT_UDP_COALESCE: '0' },
  'l4nat-nopoll': { L4NAT_BUSY_POLL_US: '0' },
  'l4nat-busypoll': { L4NAT_BUSY_POLL_US: '50', L4NAT_BUSY_POLL_ADAPTIVE: '0' },
  'l4nat-sync': { L4NAT_SYNC_LOG: '1' },
};

export interface RunningVariant {
  name: string;
  base: BaseVariant;
  /** Address the client connects to. */
  target: string;
  /** Backends that may receive the traffic. */
  backends: readonly LabBackend[];
  /** The balancer process whose CPU is sampled (null: none, the kernel does the work). */
  balancerPid: number | null;
  l4nat: L4natProcess | null;
  teardown(): Promise<void>;
}

/** A scratch directory for config files, removed at exit. */
let scratch: string | null = null;
function scratchDir(): string {
  scratch ??= benchTempDir('l4nat-bench-');
  return scratch;
}

export function nftRuleset(vip: string, backends: readonly LabBackend[]): string {
  const map = backends.map((b, i) => `${i} : ${b.ipv4}`).join(', ');
  return `table ip l4bench {
  chain prerouting {
    type nat hook prerouting priority dstnat; policy accept;
    ip daddr ${vip} dnat to jhash ip saddr mod ${backends.length} map { ${map} }
  }
}
`;
}

export function haproxyConfig(vip: string, backends: readonly LabBackend[]): string {
  const lines = [
    'global', // maxconn left to HAProxy: it derives it from the file-descriptor limit
    'defaults',
    '    mode tcp',
    '    timeout connect 5s',
    '    timeout client 60s',
    '    timeout server 60s',
  ];
  for (const port of [RR_PORT, IPERF_PORT]) {
    lines.push(`frontend fe_${port}`, `    bind ${vip}:${port}`, `    default_backend be_${port}`);
    lines.push(`backend be_${port}`, '    balance source');
    for (const b of backends) lines.push(`    server ${b.id} ${b.ipv4}:${port}`);
  }
  return `${lines.join('\n')}\n`;
}

async function setupBase(lab: Lab, base: BaseVariant, name: string, l4root: string | undefined): Promise<RunningVariant> {
  const all = lab.backends;
  switch (base) {
    case 'direct': {
      const b1 = lab.backends[0]!;
      return { name, base, target: b1.ipv4, backends: [b1], balancerPid: null, l4nat: null, teardown: async () => undefined };
    }
    case 'nft-dnat': {
      const file = path.join(scratchDir(), 'nft-dnat.nft');
      writeFileSync(file, nftRuleset(lab.vip4, all));
      await lab.exec('lb', 'nft', ['-f', file]);
      return {
        name, base, target: lab.vip4, backends: all, balancerPid: null, l4nat: null,
        teardown: async () => {
          await lab.exec('lb', 'nft', ['delete', 'table', 'ip', 'l4bench']);
        },
      };
    }
    case 'haproxy': {
      const file = path.join(scratchDir(), 'haproxy.cfg');
      writeFileSync(file, haproxyConfig(lab.vip4, all));
      await lab.ip('lb', ['addr', 'add', `${lab.vip4}/32`, 'dev', 'lo']);
      let proc: NsProcess | null = null;
      const teardown = async (): Promise<void> => {
        if (proc !== null) await proc.stop({ timeoutMs: 3_000 });
        await lab.ip('lb', ['addr', 'del', `${lab.vip4}/32`, 'dev', 'lo']);
      };
      try {
        // -db: foreground, no master process: the spawned pid is the one doing the work.
        proc = lab.spawn('lb', 'haproxy', ['-db', '-f', file]);
        await waitListening(lab, 'lb', RR_PORT, 5_000);
        await waitListening(lab, 'lb', IPERF_PORT, 5_000);
      } catch (err) {
        await teardown().catch(() => undefined);
        throw new Error(`haproxy did not start: ${String(err)}${proc ? `\n${proc.tail(10)}` : ''}`);
      }
      return { name, base, target: lab.vip4, backends: all, balancerPid: proc.pid ?? null, l4nat: null, teardown };
    }
    case 'tun-relay':
      return setupTunRelay(lab, name);
    case 'l4nat':
    case 'l4nat-1q':
    case 'l4nat-nocoal':
    case 'l4nat-nopoll':
    case 'l4nat-busypoll':
    case 'l4nat-sync':
    case 'l4nat-baseline':
    case 'l4nat-bounded':
    case 'l4nat-memtable':
    case 'l4nat-nice0': {
      const env = L4NAT_VARIANT_ENV[base];
      const l4 = await startL4nat(lab, {
        ...(env ? { env } : {}),
        ...(l4root !== undefined ? { root: l4root } : {}),
        vips: [lab.vip4],
        ports: [`${RR_PORT}/tcp`, `${RR_PORT}/udp`, `${IPERF_PORT}/tcp`],
        // No port: each service's backends listen on the service port.
        backends: all.map((b) => b.ipv4),
        extraArgs: [
          '--hash', 'src',
          '--stats-interval', '0',
          '--admin-port', String(L4NAT_ADMIN_PORT),
          ...(base === 'l4nat-1q' ? ['--queues', '1'] : []),
          ...(base === 'l4nat-nice0' ? ['--worker-nice', '0'] : []),
          ...(base === 'l4nat-bounded' ? ['--balance', 'bounded', '--balance-factor', '1.25'] : []),
          ...(base === 'l4nat-memtable' ? ['--flow-file', 'none'] : []),
        ],
      });
      return {
        name, base, target: lab.vip4, backends: all, balancerPid: l4.pid ?? null, l4nat: l4,
        teardown: async () => {
          const st = await l4.stop(10_000);
          if (st.forced || st.code !== 0) throw new Error(`l4nat did not stop cleanly (code ${st.code}, signal ${st.signal}, forced ${st.forced})`);
        },
      };
    }
  }
}

async function setupTunRelay(lab: Lab, name: string): Promise<RunningVariant> {
  const b1 = lab.backends[0]!;
  const bin = await cTool('bench/tools/tun-relay.c', 'bench', 'tun-relay');
  // Everything arriving from the client or from b1 goes into the relay's device; what the relay writes back
  // arrives on that device, matches neither rule and is forwarded by the main table as in direct.
  const rules = [lab.client.lbDev, b1.lbDev].map((dev) => ['iif', dev, 'lookup', RELAY_TABLE, 'pref', RELAY_PREF]);
  let proc: NsProcess | null = null;
  const teardown = async (): Promise<void> => {
    for (const r of rules) await lab.ip('lb', ['rule', 'del', ...r]).catch(() => undefined);
    await lab.ip('lb', ['route', 'flush', 'table', RELAY_TABLE]).catch(() => undefined);
    if (proc !== null) await proc.stop({ timeoutMs: 3_000 });
  };
  try {
    proc = lab.spawn('lb', bin, [RELAY_DEV, String(RELAY_QUEUES), String(DEFAULT_WORKER_NICE)]);
    await proc.waitForLine((l) => l === 'ready', { timeoutMs: 5_000, what: 'tun-relay ready', stream: 'stderr' });
    // Written-back packets carry the client's (or b1's) source on a device with no route back to it: loose
    // rp_filter, as l4nat sets on its own device.
    await lab.exec('lb', 'sysctl', ['-q', '-w', `net.ipv4.conf.${RELAY_DEV}.rp_filter=2`]);
    await lab.ip('lb', ['link', 'set', RELAY_DEV, 'up']);
    await lab.ip('lb', ['route', 'add', 'default', 'dev', RELAY_DEV, 'table', RELAY_TABLE]);
    for (const r of rules) await lab.ip('lb', ['rule', 'add', ...r]);
  } catch (err) {
    await teardown().catch(() => undefined);
    throw new Error(`tun-relay did not start: ${String(err)}${proc ? `\n${proc.tail(10)}` : ''}`);
  }
  return { name, base: 'tun-relay', target: b1.ipv4, backends: [b1], balancerPid: proc.pid ?? null, l4nat: null, teardown };
}

/** Sets up a variant by name ("l4nat", "direct+nic", ...); l4nat runs from `l4root` (default: this checkout). */
export async function setupVariant(lab: Lab, name: string, l4root?: string): Promise<RunningVariant> {
  const nic = name.endsWith(NIC_SUFFIX);
  const base = (nic ? name.slice(0, -NIC_SUFFIX.length) : name) as BaseVariant;
  let restore: NicRestore | null = null;
  if (nic) restore = await applyRealNic(lab);
  try {
    const v = await setupBase(lab, base, name, l4root);
    if (restore === null) return v;
    const r = restore;
    return {
      ...v,
      teardown: async () => {
        try {
          await v.teardown();
        } finally {
          await r();
        }
      },
    };
  } catch (err) {
    if (restore !== null) await restore().catch(() => undefined);
    throw err;
  }
}

/** Lets the previous variant's connections and timers settle before measuring the next one. */
export function settle(): Promise<void> {
  return sleep(300);
}
