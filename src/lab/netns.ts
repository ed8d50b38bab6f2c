// Lab plumbing: network namespaces, veths, addresses, routes and sysctls, one `ip`/`sysctl` command per helper.
// Commands themselves run in command.ts, names are checked in netns-names.ts, processes inside namespaces live in
// ns-process.ts; all three are re-exported here, the one import for lab code.
// Layers: command.ts, netns-names.ts → this file → lab-wiring.ts, lab.ts, role-lab.ts (the lab).
//
// This is lab and test code: it shells out to iproute2 (`ip -n NS ...`, `ip netns exec NS ...`), which keeps it
// readable and close to what an operator would type. Nothing here touches the default namespace: veth pairs are
// created directly inside their two namespaces, and sysctls are always written through `ip netns exec`.
import { execFileSync } from 'node:child_process';
import { statSync } from 'node:fs';
import { removeFlowFilesOfNetns } from '../daemon/flow-file-name';
import { run, RunOptions, RunResult } from './command';
import { assertIfName, assertNsName } from './netns-names';

export { CommandError, run } from './command';
export type { RunOptions, RunResult } from './command';
export { assertIfName, assertNsName } from './netns-names';
export { NsProcess, ProcessGroup, spawnInNetns } from './ns-process';
export type { ExitStatus, SpawnOptions } from './ns-process';

// ---------------------------------------------------------------------------------------------------------------
// Namespaces

/** `ip -n NS <args>` — an iproute2 command inside a namespace (no process is started inside it). */
export async function ipIn(ns: string, args: readonly string[], opts?: RunOptions): Promise<string> {
  assertNsName(ns);
  return (await run('ip', ['-n', ns, ...args], opts)).stdout;
}

/** Runs a command inside a namespace: `ip netns exec NS cmd args...`. */
export function nsExec(ns: string, cmd: string, args: readonly string[], opts?: RunOptions): Promise<RunResult> {
  assertNsName(ns);
  return run('ip', ['netns', 'exec', ns, cmd, ...args], opts);
}

export async function netnsAdd(name: string): Promise<void> {
  assertNsName(name);
  await run('ip', ['netns', 'add', name]);
}

/** Deletes a namespace. With `ifExists`, a namespace that is already gone is not an error. */
export async function netnsDelete(name: string, opts: { ifExists?: boolean } = {}): Promise<void> {
  assertNsName(name);
  removeFlowFilesOf(name);
  try {
    await run('ip', ['netns', 'del', name]);
  } catch (err) {
    if (opts.ifExists && !(await netnsExists(name))) return;
    throw err;
  }
}

/**
 * The flow table files an l4nat killed in this namespace left in /run/l4nat (a normal stop removes its own): nobody
 * takes them over once the namespace is gone, and each holds the table's whole size.
 */
function removeFlowFilesOf(name: string): void {
  try {
    removeFlowFilesOfNetns(String(statSync(`/run/netns/${name}`).ino));
  } catch {
    // The namespace is already gone: its inode, and so its files' names, with it.
  }
}

/** Synchronous delete for exit handlers. Never throws. */
export function netnsDeleteSync(name: string): void {
  try {
    assertNsName(name);
    removeFlowFilesOf(name);
    execFileSync('ip', ['netns', 'del', name], { stdio: 'ignore', timeout: 10_000 });
  } catch {
    // Already gone, or nothing we can do while exiting.
  }
}

/** Names of all named namespaces (`ip netns list`). */
export async function netnsList(): Promise<string[]> {
  const { stdout } = await run('ip', ['netns', 'list']);
  // Lines look like "name" or "name (id: 3)".
  return stdout
    .split('\n')
    .map((l) => l.trim().split(/\s+/)[0] ?? '')
    .filter((n) => n.length > 0);
}

export async function netnsExists(name: string): Promise<boolean> {
  return (await netnsList()).includes(name);
}

/** PIDs of all processes whose network namespace is `ns` (`ip netns pids`). */
export async function netnsPids(ns: string): Promise<number[]> {
  assertNsName(ns);
  const { stdout } = await run('ip', ['netns', 'pids', ns]);
  return stdout
    .split(/\s+/)
    .filter((s) => /^\d+$/.test(s))
    .map(Number);
}

// ---------------------------------------------------------------------------------------------------------------
// Links, addresses, routes, sysctls

export interface VethEnd {
  ns: string;
  name: string;
}

/**
 * Creates a veth pair whose two ends are born inside their namespaces
 * (`ip link add A netns NS_A type veth peer name B netns NS_B`), so nothing ever appears in the default
 * namespace, even for a moment. Both ends are set up.
 */
export async function vethPair(a: VethEnd, b: VethEnd, opts: { mtu?: number } = {}): Promise<void> {
  assertNsName(a.ns);
  assertNsName(b.ns);
  assertIfName(a.name);
  assertIfName(b.name);
  const mtu = opts.mtu !== undefined ? ['mtu', String(opts.mtu)] : [];
  // `ip -n A` runs the command inside A; `netns` on both ends makes the placement explicit either way.
  await ipIn(a.ns, ['link', 'add', a.name, 'netns', a.ns, ...mtu, 'type', 'veth', 'peer', 'name', b.name, 'netns', b.ns, ...mtu]);
  await linkUp(a.ns, a.name);
  await linkUp(b.ns, b.name);
}

export async function linkUp(ns: string, dev: string): Promise<void> {
  assertIfName(dev);
  await ipIn(ns, ['link', 'set', 'dev', dev, 'up']);
}

/** Adds an address (CIDR). IPv6 addresses get `nodad` unless told otherwise, so they are usable at once. */
export async function addrAdd(ns: string, dev: string, cidr: string, opts: { nodad?: boolean } = {}): Promise<void> {
  assertIfName(dev);
  const v6 = cidr.includes(':');
  const nodad = v6 && opts.nodad !== false ? ['nodad'] : [];
  await ipIn(ns, [v6 ? '-6' : '-4', 'addr', 'add', cidr, 'dev', dev, ...nodad]);
}

/** Adds a route: `ip route add DEST via GW [dev DEV]`; DEST may be "default". */
export async function routeAdd(ns: string, dest: string, via: string, opts: { dev?: string } = {}): Promise<void> {
  const v6 = via.includes(':');
  const dev = opts.dev !== undefined ? ['dev', opts.dev] : [];
  await ipIn(ns, [v6 ? '-6' : '-4', 'route', 'add', dest, 'via', via, ...dev]);
}

/** Writes sysctls inside a namespace (one `sysctl -w` for all of them). */
export async function sysctlSet(ns: string, values: Record<string, string | number>): Promise<void> {
  const args = Object.entries(values).map(([k, v]) => {
    if (!/^[a-z0-9_.\/-]+$/i.test(k)) throw new TypeError(`sysctl key must be a plain dotted name, got ${JSON.stringify(k)}`);
    return `${k}=${v}`;
  });
  if (args.length === 0) return;
  await nsExec(ns, 'sysctl', ['-q', '-w', ...args]);
}

/** Reads one sysctl inside a namespace. */
export async function sysctlGet(ns: string, key: string): Promise<string> {
  const { stdout } = await nsExec(ns, 'sysctl', ['-n', key]);
  return stdout.trim();
}
