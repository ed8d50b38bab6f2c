// l4nat in its systemd unit's sandbox where systemd is not PID 1: the settings are read from systemd/l4nat.service
// itself and reproduced with util-linux tools and a seccomp helper, so a test of this sandbox tests the shipped unit.
// Layers: src/lab (namespaces, l4nat process) → this file (+ c/seccomp-exec.c) → test/systemd-sandbox-netns.test.ts.
//
// Reproduced, from the unit:
//   User=/Group=               a numeric uid/gid with no passwd entry (setpriv --reuid/--regid --clear-groups)
//   AmbientCapabilities=       setpriv --inh-caps and --ambient-caps (what systemd does for a non-root User=)
//   CapabilityBoundingSet=     setpriv --bounding-set
//   NoNewPrivileges=yes        setpriv --no-new-privs
//   SystemCallFilter=          seccomp allow list, the @groups expanded by this host's `systemd-analyze
//   SystemCallErrorNumber=       syscall-filter` (the systemd that would run the unit), other calls fail with
//   SystemCallArchitectures=     that errno; native architecture only (test/rigs/c/seccomp-exec.c)
//   RestrictAddressFamilies=   a second seccomp filter: socket() of another family fails with EAFNOSUPPORT
//   LimitNICE=, LimitNOFILE=   prlimit, where this process may raise a hard limit (CAP_SYS_RESOURCE; systemd as
//                              PID 1 has it, a container's root may not)
// Not reproduced (they restrict what l4nat does not do, or the file system around it): ProtectSystem=, ProtectHome=,
// PrivateTmp=, ProtectProc=, ProtectKernel*=, ProtectControlGroups=, ProtectClock=, ProtectHostname=,
// DevicePolicy=/DeviceAllow= (a cgroup device filter; /dev/net/tun is allowed), RestrictNamespaces=,
// RestrictRealtime=, RestrictSUIDSGID=, LockPersonality= (argument filters on calls l4nat never makes),
// StateDirectory=, UMask= and the notify handshake (test/systemd.test.ts).
import { execFileSync } from 'node:child_process';
import { chmodSync, chownSync, existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { constants } from 'node:os';
import { join } from 'node:path';
import { cTool } from '../../src/lab/c-build';
import { repoRoot } from '../../src/lab/l4nat-process';
import { waitUntil } from './fixture';

/** A uid/gid with no passwd entry (setpriv takes numbers): nothing on the host changes. */
export const SANDBOX_UID = 47_100;

export function unitPath(): string {
  return join(repoRoot(), 'systemd', 'l4nat.service');
}

/** The unit's sandbox settings, as the tools that reproduce them name things. */
export interface UnitSandbox {
  /** AmbientCapabilities=, lower case without "cap_" (setpriv's names): net_admin, bpf, ... */
  capabilities: string[];
  /** CapabilityBoundingSet=, likewise. */
  boundingSet: string[];
  noNewPrivileges: boolean;
  /** SystemCallFilter= entries in order: names and @groups (an allow list; "~" deny lists are not reproduced). */
  syscallFilter: string[];
  /** SystemCallErrorNumber=, as a number. */
  syscallErrno: number;
  /** RestrictAddressFamilies=, as AF_* numbers (an allow list). */
  addressFamilies: number[];
  /** LimitNICE= as RLIMIT_NICE (20 − nice), LimitNOFILE=. */
  rlimitNice: number | null;
  rlimitNofile: number | null;
}

const FAMILIES: Record<string, number> = { AF_UNIX: 1, AF_INET: 2, AF_INET6: 10, AF_NETLINK: 16, AF_PACKET: 17 };

/**
 * The [Service] settings of a unit file: each key's values in order. A list setting assigned more than once is
 * merged, and an empty assignment resets it, as systemd does.
 */
export function unitSettings(text: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  let section = '';
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue;
    const sec = /^\[(.+)\]$/.exec(line);
    if (sec) {
      section = sec[1]!;
      continue;
    }
    if (section !== 'Service') continue;
    const eq = line.indexOf('=');
    if (eq < 0) continue;
    const key = line.slice(0, eq).trim();
    const value = line.slice(eq + 1).trim();
    if (value === '') out.set(key, []);
    else out.set(key, [...(out.get(key) ?? []), ...value.split(/\s+/)]);
  }
  return out;
}

function capName(c: string): string {
  if (!/^CAP_[A-Z_]+$/.test(c)) throw new Error(`unit sandbox: ${JSON.stringify(c)} is not a capability name`);
  return c.slice(4).toLowerCase();
}

/** Reads the unit's sandbox; throws naming a setting this emulation cannot reproduce faithfully. */
export function readUnitSandbox(text = readFileSync(unitPath(), 'utf8')): UnitSandbox {
  const s = unitSettings(text);
  const one = (k: string): string | undefined => s.get(k)?.at(-1);
  const filter = s.get('SystemCallFilter') ?? [];
  if (filter.some((f) => f.startsWith('~'))) throw new Error('unit sandbox: a SystemCallFilter= deny list is not reproduced');
  const errnoName = one('SystemCallErrorNumber');
  const errno = errnoName === undefined ? undefined : (constants.errno as Record<string, number>)[errnoName];
  if (filter.length && errno === undefined) throw new Error(`unit sandbox: SystemCallErrorNumber=${errnoName ?? ''} (unset: SIGSYS) is not reproduced`);
  if ((one('SystemCallArchitectures') ?? 'native') !== 'native') throw new Error('unit sandbox: only SystemCallArchitectures=native is reproduced');
  const families = (s.get('RestrictAddressFamilies') ?? []).map((f) => {
    const n = FAMILIES[f];
    if (n === undefined) throw new Error(`unit sandbox: RestrictAddressFamilies=${f} is not known here`);
    return n;
  });
  const nice = one('LimitNICE');
  let rlimitNice: number | null = null;
  if (nice !== undefined) rlimitNice = /^[+-]/.test(nice) ? 20 - Number(nice) : Number(nice);
  const nofile = one('LimitNOFILE');
  return {
    capabilities: (s.get('AmbientCapabilities') ?? []).map(capName),
    boundingSet: (s.get('CapabilityBoundingSet') ?? []).map(capName),
    noNewPrivileges: one('NoNewPrivileges') === 'yes',
    syscallFilter: filter,
    syscallErrno: errno ?? constants.errno.EPERM,
    addressFamilies: families,
    rlimitNice,
    rlimitNofile: nofile === undefined ? null : Number(nofile),
  };
}

/** The system-call groups of this host's systemd: `systemd-analyze syscall-filter` (every group, nested ones by name). */
export function syscallGroups(): Map<string, string[]> {
  const text = execFileSync('systemd-analyze', ['syscall-filter', '--no-pager'], { encoding: 'utf8', timeout: 30_000, stdio: ['ignore', 'pipe', 'ignore'] });
  const groups = new Map<string, string[]>();
  let cur: string[] | null = null;
  for (const line of text.split('\n')) {
    const head = /^(@[a-z0-9-]+)\s*$/.exec(line);
    if (head) {
      cur = [];
      groups.set(head[1]!, cur);
      continue;
    }
    const item = /^\s+([@a-z0-9_-]+)\s*$/.exec(line);
    if (item && cur) cur.push(item[1]!);
    else if (!/^\s+#/.test(line)) cur = null; // a blank line or another section ends the group
  }
  if (!groups.has('@system-service')) throw new Error(`systemd-analyze syscall-filter listed no @system-service group:\n${text.slice(0, 500)}`);
  return groups;
}

/** The filter's entries with every @group expanded (recursively), sorted. */
export function expandSyscalls(entries: readonly string[], groups: ReadonlyMap<string, readonly string[]>): string[] {
  const out = new Set<string>();
  const add = (e: string, seen: Set<string>): void => {
    if (!e.startsWith('@')) {
      out.add(e);
      return;
    }
    const g = groups.get(e);
    if (!g) throw new Error(`unit sandbox: system-call group ${e} is unknown to this systemd`);
    if (seen.has(e)) return;
    seen.add(e);
    for (const m of g) add(m, seen);
  };
  for (const e of entries) add(e, new Set());
  return [...out].sort();
}

/** Builds test/rigs/c/seccomp-exec.c (needs libseccomp's header: Debian libseccomp-dev). */
export function seccompExec(): Promise<string> {
  return cTool('test/rigs/c/seccomp-exec.c', 'reliability', 'seccomp-exec', ['seccomp']);
}

/**
 * Where /dev/net/tun is not world read-write (no udev: the kernel creates it 0600; udev's default rule makes it
 * 0666), a 0666 node of the same device in `dir`, to bind-mount over it in the process's own mount namespace; else
 * null.
 */
export function tunStandIn(dir: string): string | null {
  if ((statSync('/dev/net/tun').mode & 0o006) === 0o006) return null;
  const node = join(dir, 'tun');
  execFileSync('mknod', ['-m', '0666', node, 'c', '10', '200']);
  return node;
}

/**
 * Hands a scratch directory to the sandbox user (owner, mode 0700) with an admin token file of the user's own in it:
 * the default one (/var/lib/l4nat/admin.token) is root's here, where under the unit StateDirectory= makes it the
 * user's. Returns the token file's path.
 */
export function handOverDir(dir: string): string {
  chownSync(dir, SANDBOX_UID, SANDBOX_UID);
  chmodSync(dir, 0o700);
  const tokenFile = join(dir, 'admin.token');
  writeUserFile(tokenFile, 'sandbox-user-l4nat-admin-token\n', 0o600);
  return tokenFile;
}

/** Writes a file the sandbox user owns (a config it is started with or reloads). */
export function writeUserFile(file: string, text: string, mode = 0o644): void {
  writeFileSync(file, text, { mode });
  chownSync(file, SANDBOX_UID, SANDBOX_UID);
}

/**
 * A command health check (config form) that copies what it runs with — ids, capabilities, no-new-privs, seccomp mode
 * from /proc/self/status — to `out`, a file the user may write, at every check.
 */
export function statusCheck(out: string): Record<string, unknown> {
  return { type: 'command', command: ['/bin/sh', '-c', `grep -E '^(Uid|Cap[A-Za-z]+|NoNewPrivs|Seccomp):' /proc/self/status > ${out}.tmp && mv ${out}.tmp ${out}`], interval: 1, timeout: 1 };
}

/** What statusCheck(out) wrote, once its first check has run (within 5 s). */
export async function readStatusCheck(out: string): Promise<string> {
  await waitUntil(`the command check's ${out}`, () => existsSync(out), 5_000, 100);
  return readFileSync(out, 'utf8');
}

/** Whether this process may raise a hard resource limit (CAP_SYS_RESOURCE), as prlimit must for LimitNICE=-10. */
export function canRaiseLimits(): boolean {
  const m = /^CapEff:\s*([0-9a-f]+)$/m.exec(readFileSync('/proc/self/status', 'utf8'));
  return m !== null && ((BigInt(`0x${m[1]}`) >> 24n) & 1n) === 1n;
}

/**
 * The command line that runs `argv` in the sandbox: prlimit (as root, when `limits`) → setpriv (drops to the user and the
 * capabilities) → seccomp-exec (loads the filters, then execs argv). Each execs the next in place, so the pid is
 * argv's. With `tunNode`, /dev/net/tun is that node first, in a mount namespace of the process's own.
 */
export function sandboxCommand(
  sb: UnitSandbox,
  syscalls: readonly string[],
  seccompExecPath: string,
  argv: readonly string[],
  opts: { tunNode: string | null; limits: boolean },
): [string, string[]] {
  const { tunNode } = opts;
  const caps = (list: readonly string[]): string => ['-all', ...list.map((c) => `+${c}`)].join(',');
  const limits = !opts.limits ? [] : [...(sb.rlimitNice !== null ? [`--nice=${sb.rlimitNice}`] : []), ...(sb.rlimitNofile !== null ? [`--nofile=${sb.rlimitNofile}`] : [])];
  const cmd = [
    ...(limits.length ? ['prlimit', ...limits] : []),
    'setpriv', `--reuid=${SANDBOX_UID}`, `--regid=${SANDBOX_UID}`, '--clear-groups',
    `--inh-caps=${caps(sb.capabilities)}`, `--ambient-caps=${caps(sb.capabilities)}`, `--bounding-set=${caps(sb.boundingSet)}`,
    ...(sb.noNewPrivileges ? ['--no-new-privs'] : []),
    '--',
    ...(sb.syscallFilter.length
      ? [seccompExecPath, '--errno', String(sb.syscallErrno), '--allow', syscalls.join(','), ...(sb.addressFamilies.length ? ['--families', sb.addressFamilies.join(',')] : []), '--']
      : []),
    ...argv,
  ];
  if (tunNode === null) return [cmd[0]!, cmd.slice(1)];
  return ['unshare', ['--mount', '--propagation', 'private', 'sh', '-c', 'mount --bind "$0" /dev/net/tun && exec "$@"', tunNode, ...cmd]];
}
