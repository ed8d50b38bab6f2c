// l4nat run as an unprivileged user in the lab, holding only the capabilities given: setpriv makes them ambient the
// way the systemd unit's AmbientCapabilities= does (User=, CapabilityBoundingSet=, NoNewPrivileges=yes), for a
// numeric uid with no passwd entry (nothing on the host changes). Used by the least-privilege tests.
import { join } from 'node:path';
import type { Lab } from '../../src/lab/lab';
import { L4natProcess, READY_MSG, repoRoot } from '../../src/lab/l4nat-process';
import { handOverDir, readStatusCheck, readUnitSandbox, SANDBOX_UID, statusCheck, tunStandIn, writeUserFile } from './unit-sandbox';

/** A uid/gid with no passwd entry (setpriv takes numbers): the sandbox's. */
export const UNPRIVILEGED_UID = SANDBOX_UID;
export { handOverDir, readStatusCheck, statusCheck, tunStandIn, writeUserFile };

/** The systemd unit's capabilities (systemd/l4nat.service AmbientCapabilities=), as setpriv names them. */
export const UNIT_CAPS: readonly string[] = readUnitSandbox().capabilities;

export function setprivArgs(caps: readonly string[]): string[] {
  const set = ['-all', ...caps.map((c) => `+${c}`)].join(',');
  return ['setpriv', `--reuid=${UNPRIVILEGED_UID}`, `--regid=${UNPRIVILEGED_UID}`, '--clear-groups', `--inh-caps=${set}`, `--ambient-caps=${set}`, `--bounding-set=${set}`, '--no-new-privs'];
}

/** The command line that runs l4nat (with `args`) as the user with `caps`. */
export function unprivileged(args: readonly string[], tunNode: string | null, caps: readonly string[] = UNIT_CAPS): [string, string[]] {
  const cmd = [...setprivArgs(caps), process.execPath, join(repoRoot(), 'bin', 'l4nat.js'), ...args];
  if (tunNode === null) return [cmd[0]!, cmd.slice(1)];
  return ['unshare', ['--mount', '--propagation', 'private', 'sh', '-c', 'mount --bind "$0" /dev/net/tun && exec "$@"', tunNode, ...cmd]];
}

/** Starts l4nat as the user in the lb namespace; resolves once ready (or rejects with its output). */
export async function startUnprivileged(lab: Lab, args: string[], cwd: string, tunNode: string | null, caps: readonly string[] = UNIT_CAPS): Promise<L4natProcess> {
  const [cmd, argv] = unprivileged(args, tunNode, caps);
  const proc = lab.spawn('lb', cmd, argv, { env: { ...process.env, L4NAT_LOG_LEVEL: 'info', HOME: cwd }, cwd });
  const l4 = new L4natProcess(lab, proc, args);
  try {
    await l4.waitForLog((r) => r.msg === READY_MSG, 20_000, `"${READY_MSG}"`);
  } catch (err) {
    await l4.stop(3_000);
    throw err;
  }
  return l4;
}
