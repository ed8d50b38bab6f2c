// Host set-up: kernel parameters under /proc/sys (docs/design.md "Where packets go", item 4).
// /proc/sys/net reflects the network namespace of the calling process, so the same code configures the host or
// a test namespace (`ip netns exec`) without knowing which.
import { readFileSync, writeFileSync, existsSync } from 'fs';
import { join } from 'path';
import type { Logger } from '../util/log';

export const PROC_SYS = '/proc/sys';

export interface SysctlOptions {
  /** Root of the tree; tests point it at a temporary directory. Default /proc/sys. */
  root?: string;
}

/** "net.ipv4.conf.eth0.rp_filter" or ['net', 'ipv4', 'conf', 'eth0', 'rp_filter'] -> a path. The array form is
 * needed for interface names with dots (sysctl(8) writes those with '/' in the dotted form). */
export function sysctlPath(key: string | readonly string[], opts: SysctlOptions = {}): string {
  const parts = typeof key === 'string' ? key.split('.') : [...key];
  for (const p of parts) {
    if (p === '' || p === '.' || p === '..' || p.includes('/')) throw new TypeError(`invalid sysctl key component ${JSON.stringify(p)} in ${JSON.stringify(key)}`);
  }
  return join(opts.root ?? PROC_SYS, ...parts);
}

function keyName(key: string | readonly string[]): string {
  return typeof key === 'string' ? key : key.join('.');
}

function wrap(err: unknown, what: string, key: string | readonly string[], path: string): Error {
  const e = err as NodeJS.ErrnoException;
  const hint =
    e.code === 'ENOENT' ? ' (no such parameter: is the interface there, is IPv6 enabled?)'
    : e.code === 'EACCES' || e.code === 'EPERM' || e.code === 'EROFS' ? ' (needs root / CAP_NET_ADMIN and a writable /proc/sys)'
    : '';
  const out = new Error(`cannot ${what} sysctl ${keyName(key)} (${path}): ${e.code ?? ''} ${e.message}${hint}`.replace(/\s+/g, ' ')) as NodeJS.ErrnoException;
  out.code = e.code;
  out.errno = e.errno;
  out.path = path;
  out.syscall = e.syscall;
  (out as Error & { cause?: unknown }).cause = err;
  return out;
}

export function readSysctl(key: string | readonly string[], opts: SysctlOptions = {}): string {
  const path = sysctlPath(key, opts);
  try {
    return readFileSync(path, 'utf8').trim();
  } catch (err) {
    throw wrap(err, 'read', key, path);
  }
}

export function writeSysctl(key: string | readonly string[], value: string | number, opts: SysctlOptions = {}): void {
  const path = sysctlPath(key, opts);
  try {
    writeFileSync(path, `${value}\n`);
  } catch (err) {
    throw wrap(err, 'write', key, path);
  }
}

export interface SysctlChange {
  key: string;
  from: string;
  to: string;
}

/** Writes `value` unless the parameter already holds it; returns the change made, if any. */
export function ensureSysctl(key: string | readonly string[], value: string | number, opts: SysctlOptions = {}): SysctlChange | undefined {
  const from = readSysctl(key, opts);
  const to = String(value);
  if (from === to) return undefined;
  writeSysctl(key, to, opts);
  return { key: keyName(key), from, to };
}

export function ipv6Available(opts: SysctlOptions = {}): boolean {
  return existsSync(sysctlPath('net.ipv6.conf.all', opts));
}

export interface ForwardingOptions extends SysctlOptions {
  /** Also turn on IPv6 forwarding (default true). */
  ipv6?: boolean;
}

/** Turns on IPv4 (and IPv6) forwarding if off. Only ever turns them on: another service may rely on them, so
 * l4nat never turns them off, not even at exit. */
export function enableForwarding(log: Logger, opts: ForwardingOptions = {}): SysctlChange[] {
  const changes: SysctlChange[] = [];
  const c4 = ensureSysctlOn('net.ipv4.ip_forward', opts);
  if (c4) changes.push(c4);
  if (opts.ipv6 !== false) {
    if (!ipv6Available(opts)) {
      log.warn('IPv6 is disabled on this host (no /proc/sys/net/ipv6): IPv6 services cannot work');
    } else {
      const c6 = ensureSysctlOn('net.ipv6.conf.all.forwarding', opts);
      if (c6) {
        changes.push(c6);
        // With forwarding on, interfaces with accept_ra=1 stop accepting router advertisements (they need 2).
        log.warn('IPv6 forwarding was off and is now on: interfaces that take their default route from router advertisements need accept_ra=2');
      }
    }
  }
  for (const c of changes) {
    log.info({ sysctl: c.key, from: c.from, to: c.to }, `turned on ${c.key}; l4nat never turns it off (not at exit either)`);
  }
  return changes;
}

function ensureSysctlOn(key: string, opts: SysctlOptions): SysctlChange | undefined {
  const from = readSysctl(key, opts);
  if (from !== '0') return undefined; // on already (any non-zero value)
  writeSysctl(key, '1', opts);
  return { key, from, to: '1' };
}

export interface TunSysctlOptions extends SysctlOptions {
  log?: Logger;
}

/** Per-device parameters of the TUN. addr_gen_mode must be set before the link goes up (the kernel creates the
 * link-local address on NETDEV_UP). Returns the changes made. */
export function configureTunSysctls(ifname: string, opts: TunSysctlOptions = {}): SysctlChange[] {
  if (typeof ifname !== 'string' || ifname === '' || ifname.length > 15 || /[\/\s]/.test(ifname) || ifname === '.' || ifname === '..') {
    throw new TypeError(`ifname must be a valid interface name, got ${JSON.stringify(ifname)}`);
  }
  const changes: SysctlChange[] = [];
  const set = (key: string[], value: number): void => {
    const c = ensureSysctl(key, value, opts);
    if (c) changes.push(c);
  };
  // Loose reverse-path filter: the kernel uses max(conf.all, conf.DEV), so 0 here would be overridden by
  // all=1; 2 passes the client-sourced packets that re-enter through the TUN whatever `all` holds.
  set(['net', 'ipv4', 'conf', ifname, 'rp_filter'], 2);
  if (ipv6Available(opts)) {
    // IN6_ADDR_GEN_MODE_NONE: no link-local address on the TUN.
    set(['net', 'ipv6', 'conf', ifname, 'addr_gen_mode'], 1);
    set(['net', 'ipv6', 'conf', ifname, 'disable_ipv6'], 0);
    set(['net', 'ipv6', 'conf', ifname, 'accept_ra'], 0);
  } else {
    opts.log?.warn({ ifname }, 'IPv6 is disabled on this host: skipping the TUN\'s IPv6 parameters');
  }
  for (const c of changes) opts.log?.debug({ sysctl: c.key, from: c.from, to: c.to }, 'set TUN sysctl');
  return changes;
}
