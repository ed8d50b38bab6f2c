// The options `l4nat up` runs with, whichever way they were given (flags: src/cli/up-args.ts, the config file:
// src/config/load.ts), their defaults, and the one error a bad option value raises, wherever it was given (flags,
// config file, admin API, cluster section). Pure: types, constants and message wording only.
import type { AdminConfig, ServiceConfig, Timeouts } from './model';

export interface UpOptions {
  services: ServiceConfig[];
  queues: number;
  tun: string;
  flowCapacity: number;
  table: number;
  rulePref: number;
  mtu: number | undefined; // undefined: derive from the links
  timeouts: Timeouts;
  icmpEcho: boolean;
  icmpTranslate: boolean;
  hashKey: Buffer | undefined;
  hashKeyFile: string;
  /** The flow table's file, handed to the next l4nat (native/core/flow_segment.h); undefined: flowFileOf's default. */
  flowFile?: string;
  statsInterval: number;
  /** Nice value of the data-plane worker threads (src/dataplane/worker-priority.ts); 0 leaves them at the process's. */
  workerNice: number;
  maglevSize: number;
  logLevel: string;
  admin: AdminConfig;
  shutdownGrace: number; // seconds of forwarding existing flows (and admitting none) after SIGTERM
  proxyNeighbors: string[]; // interfaces on which to answer ARP/NDP for the VIPs
  /** Source addresses of dataplane health probes (src/health/dataplane-probe.ts), routed to the TUN. */
  probeSource: { ipv4: string; ipv6: string };
  configFile?: string; // set when the options came from a config file (reload re-reads it)
}

export const UP_DEFAULTS = {
  tun: 'l4nat0',
  flowCapacity: 1 << 20,
  table: 4400,
  rulePref: 4400,
  hashKeyFile: '/var/lib/l4nat/hash.key',
  /** The admin API's bearer token, created at first start (owner-only) when no other authentication is set. */
  adminTokenFile: '/var/lib/l4nat/admin.token',
  statsInterval: 10,
  maglevSize: 65537,
  adminPort: 9180,
  shutdownGrace: 0,
};

/**
 * Default probe sources: from the documentation ranges (RFC 5737 TEST-NET-1, RFC 3849), which no real client
 * uses. The backends send their answers to them along their route to the clients (their default route), as
 * they would to any client; the l4nat host routes these two addresses into its TUN.
 */
/** The value of flow_file / --flow-file that keeps the flow table in memory only (a restart starts it empty). */
export const FLOW_FILE_NONE = 'none';

export const DEFAULT_PROBE_SOURCE: Readonly<{ ipv4: string; ipv6: string }> = { ipv4: '192.0.2.254', ipv6: '2001:db8:ffff::fe' };

/**
 * A bad option value or a bad use of the command line. Its message is complete where it is shown: the CLI prints it
 * (exit 2), the admin API answers it (400), the config report lists it (with the line and column added).
 */
export class OptionError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'OptionError';
  }
}

/**
 * The name of a value as the user gave it, which starts every error about it, worded as that place reads: a flag
 * (`--backend expects ...`), a positional argument (`BACKEND expects ...`), a field of an admin API request
 * (`body/backend expects ...`), or a key of the config file, whose report says per path what it got and expected
 * (`services[0].backends[1]: got ..., expected ...`).
 */
export class Subject {
  private constructor(
    readonly name: string,
    private readonly inFile: boolean,
  ) {}

  /** A command-line flag, by its name without the dashes. */
  static flag(name: string): Subject {
    return new Subject(`--${name}`, false);
  }

  /** A positional argument (SERVICE, BACKEND) or a request field (body/backend): named as given. */
  static named(name: string): Subject {
    return new Subject(name, false);
  }

  /** A key of the config file, by its path: services[0].backends[1]. */
  static key(path: string): Subject {
    return new Subject(path, true);
  }

  /** The start of an error saying what the value must be: "--backend expects X" / "services[0].backends[1]: expected X". */
  expects(what: string): string {
    return this.inFile ? `${this.name}: expected ${what}` : `${this.name} expects ${what}`;
  }

  /** The value `got` (as shown to the user) is not `what` it must be. */
  expected(what: string, got: string): OptionError {
    return new OptionError(this.inFile ? `${this.name}: got ${got}, expected ${what}` : `${this.name} expects ${what}, got ${got}`);
  }

  /** Any other problem with the value: "--backend 10.0.1.1 is given twice" / "cluster.peers[0]: got ..., ...". */
  error(problem: string): OptionError {
    return new OptionError(this.inFile ? `${this.name}: ${problem}` : `${this.name} ${problem}`);
  }
}
