// The `l4nat` command line. Usage errors print one line naming the flag and exit 2; nothing is touched.
import { createLogger } from './log';
import { parseUpArgs, UsageError } from './up-args';

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
            --mtu N                    TUN MTU (default: smallest MTU of the other links, at least 1280)
            --tcp-timeout S --tcp-syn-timeout S --tcp-fin-timeout S --tcp-close-timeout S --udp-timeout S
            --no-icmp-echo             do not answer pings to the VIPs
            --hash-key HEX32           hash key (same on every host of a cluster; default: /var/lib/l4nat/hash.key)
            --stats-interval S         log a counter summary every S seconds (default 10, 0 = off)
            --log-level LEVEL          trace|debug|info|warn|error
            --admin-port N             admin API on 127.0.0.1:N (default 9180, 0 = off)
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
        const opts = parseUpArgs(rest);
        const log = createLogger({ level: opts.logLevel });
        const { runUp } = await import('./up');
        process.exitCode = await runUp(opts, log);
        return;
      }
      case 'demo': {
        const { demoMain } = await import('./demo');
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
        throw new UsageError(`unknown command "${cmd}": expected up, demo or help`);
    }
  } catch (e) {
    if (e instanceof UsageError) {
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
