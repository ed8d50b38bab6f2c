// The `l4nat` command line. Usage errors print one line naming the flag and exit 2; nothing is touched.
import { createLogger } from '../util/log';
import { hashKeyFlagWarning, parseConfigArgs, parseUpArgs } from './up-args';
import { OptionError, type UpOptions } from '../config/options';

const USAGE = `usage: l4nat <command> [flags]

commands:
  up      run the balancer in the foreground
            --vip ADDR                 address clients connect to (repeat for IPv4 and IPv6)
            --port PORT[/tcp|udp]      service port (repeatable; default protocol tcp)
            --backend ADDR[:PORT][@W]  real server (repeatable; IPv6 as [ADDR]:PORT; PORT defaults to the
                                       service port, weight W to 1; backends serve the VIPs of their family)
            --hash 5tuple|src          hash the 5-tuple (default) or the client address only
            --queues N                 TUN queues = worker threads (default: number of CPUs)
            --tun NAME                 TUN device name (default l4nat0)
            --flow-capacity N          flow table entries (default 1048576, 64 bytes each)
            --table N --rule-pref N    routing table and rule preference for reply steering (default 4400)
            --mtu N                    TUN MTU, pinned (default: smallest MTU of the other links, at least 1280,
                                       followed while l4nat runs)
            --tcp-timeout S --tcp-syn-timeout S --tcp-fin-timeout S --tcp-close-timeout S --udp-timeout S
            --no-icmp-echo             do not answer pings to the VIPs
            --hash-key-file F          hash key file, created at first start (default /var/lib/l4nat/hash.key, mode 0600;
                                       copy it to every host of a cluster). (--hash-key HEX32 also exists, but every
                                       local user can read a command line in /proc: use the file.)
            --flow-file F|none         the flow table's file, taken over by the next l4nat after a restart (default
                                       /run/l4nat/TUN-netN.flows, mode 0600; none = memory only, a restart starts empty)
            --stats-interval S         log a counter summary every S seconds (default 10, 0 = off)
            --log-level LEVEL          trace|debug|info|warn|error
            --admin-port N             admin API on 127.0.0.1:N (default 9180, 0 = off)
            --admin-token-file F       its bearer token (default /var/lib/l4nat/admin.token, created at first start,
                                       mode 0600: the CLI run as root or as l4nat's user reads it)
            --admin-insecure-no-auth   no authentication at all (any local user may change backends): not advised
            --shutdown-grace S         on SIGTERM admit no new flows, forward established ones for up to S s (default 0)
            --proxy-neighbor IF        answer ARP/NDP for the VIPs on IF (clients on that segment, no upstream route)
          or: l4nat up --config FILE [--log-level LEVEL]   (YAML; see docs/operating.md)
  check   --config FILE              validate a config file; touches nothing; exit 0 if good, 1 if not
  reload  [API flags]                make the running l4nat re-read its config file (as SIGHUP), print what changed
          --dry-run [--from FILE]    apply nothing: per backend the ring slots and shares before and after, and how
                                     many live flows the new ring would send elsewhere (of FILE's config if given)
  restart [--live] [API flags]       handover restart (as SIGUSR2): the running l4nat exits (status 75) keeping its TUN,
                                     routes, rules and flow table; the next one (systemd restarts it) takes over every flow.
                                     --live: it starts the next one itself, which forwards before it leaves (no gap)
  status  [API flags]                services and backends with state, weights, counters and health (like ipvsadm -Ln --stats)
  backend add SERVICE ADDR[:PORT] [--weight W] [--name N]
          remove|drain|undrain SERVICE BACKEND       drain [--wait S]: wait up to S s until the backend is quiet;
                                                     drain [--deadline S]: remove the flows left after S s
          weight SERVICE BACKEND W
          max-flows SERVICE BACKEND N|none           at most N active flows (new ones go to the next backend); none: no limit
            SERVICE as VIP:PORT[/tcp|udp] ([V6]:PORT for IPv6), BACKEND as ADDR:PORT; --dry-run: show the plan, apply nothing;
            refused on a host of a cluster (cluster.peers): change the config file on every host and reload each
  cluster status [--json] [API flags]  scale-out: every host's view side by side (ring digest per service, agreeing
                                     with the majority or not; backend states and weights; peers fresh or stale; VIPs
                                     withdrawn because the host's tables differ)
  explain PROTO CLIENT:PORT VIP:PORT [--syn]
                                     what the data plane would do now with that tuple's next packet (--syn: a client's
                                     SYN, a new connection on the tuple, which may leave a live entry): source list, rate
                                     limit, flow entry or ring slot, previous ring, backend and state, both rewrites
  flows   [delete] [--service SERVICE] [--backend ADDR:PORT] [--client IP] [--state S[,S]] [--limit N] [--cursor C]
            list flow-table entries (like ipvsadm -Lnc), or remove them (at least one filter); states: SYN_SENT,
            SYN_RECV, ESTABLISHED, FIN_WAIT, CLOSE, UDP; a long listing comes in pages: --cursor as printed
  trace   [--client IP[:PORT]] [--service S] [--backend ADDR:PORT] [--drops] [-c N] [--seconds S] [--pcap FILE] [--json]
            the packets a match takes, live: one line each (time, direction, tuple as read => as written, TCP
            flags/seq/ack/len, gso) with the data plane's verdict; S is a service name or VIP:PORT[/tcp|udp];
            ends after N packets (default 1000) or S seconds (default 60); --pcap writes both sides of the TUN as pcapng
  API flags: --admin URL (default http://127.0.0.1:9180 or $L4NAT_ADMIN_URL), --token-file F ($L4NAT_ADMIN_TOKEN;
             default for a loopback URL: /var/lib/l4nat/admin.token, so run as root or l4nat's user),
             --ca F, --cert F --key F (mTLS), or --config FILE to take all of them from its admin section
  demo    build a network-namespace lab, run l4nat in it and show it balancing (needs root)
  help    this text
`;

export async function main(argv: string[]): Promise<void> {
  const [cmd, ...rest] = argv;
  try {
    switch (cmd) {
      case 'up': {
        if (rest.includes('--help') || rest.includes('-h')) {
          process.stdout.write(USAGE);
          return;
        }
        let opts: UpOptions;
        if (rest.some((a) => a === '--config' || a.startsWith('--config='))) {
          const c = parseConfigArgs(rest, 'up');
          const { loadConfigFile } = await import('../config/load');
          opts = loadConfigFile(c.configFile);
          if (c.logLevel) opts.logLevel = c.logLevel;
        } else {
          opts = parseUpArgs(rest);
        }
        const log = createLogger({ level: opts.logLevel });
        const keyWarning = hashKeyFlagWarning(rest);
        if (keyWarning) log.warn(keyWarning);
        const { runUp } = await import('../daemon/up');
        process.exitCode = await runUp(opts, log);
        return;
      }
      case 'check': {
        const c = parseConfigArgs(rest, 'check');
        const { loadConfigFile } = await import('../config/load');
        const o = loadConfigFile(c.configFile);
        const backends = o.services.reduce((n, x) => n + x.backends.length, 0);
        const checked = o.services.filter((x) => x.health).length;
        const { affinityWarnings } = await import('../dataplane/affinity');
        for (const w of affinityWarnings(o.services)) process.stderr.write(`${c.configFile}: warning: ${w}\n`);
        process.stdout.write(`${c.configFile}: ok: ${o.services.length} services (VIP × port), ${backends} backends, ${checked} services with health checks\n`);
        return;
      }
      case 'reload':
      case 'restart':
      case 'status':
      case 'flows':
      case 'backend': {
        const { apiCommand } = await import('./commands');
        process.exitCode = await apiCommand(cmd, rest);
        return;
      }
      case 'trace': {
        const { traceCommand } = await import('./trace');
        process.exitCode = await traceCommand(rest);
        return;
      }
      case 'cluster': {
        const { clusterCommand } = await import('./cluster');
        process.exitCode = await clusterCommand(rest);
        return;
      }
      case 'explain': {
        const { explainCommand } = await import('./plan-commands');
        process.exitCode = await explainCommand(rest);
        return;
      }
      case 'demo': {
        const { demoMain } = await import('../lab/demo');
        process.exitCode = await demoMain(rest);
        return;
      }
      case undefined:
      case 'help':
      case '--help':
      case '-h':
        process.stdout.write(USAGE);
        if (cmd === undefined) process.exitCode = 2;
        return;
      default:
        throw new OptionError(`unknown command "${cmd}": expected up, check, reload, restart, status, cluster, backend, flows, explain, trace, demo or help`);
    }
  } catch (e) {
    if ((e as Error).name === 'ConfigError') {
      process.stderr.write(`l4nat: ${(e as Error).message}\n`);
      process.exitCode = 1;
      return;
    }
    if (e instanceof OptionError) {
      process.stderr.write(`l4nat: ${e.message}\n`);
      process.exitCode = 2;
      return;
    }
    const err = e as Error & { code?: string };
    process.stderr.write(`l4nat: ${err.message}${err.code && !err.message.includes(err.code) ? ` (${err.code})` : ''}\n`);
    if (process.env.L4NAT_DEBUG) process.stderr.write(`${err.stack}\n`);
    process.exitCode = 1;
  }
}
