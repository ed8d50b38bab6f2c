// Where l4nat keeps its flow table file unless told otherwise (src/daemon/flow-handover.ts): systemd's
// RuntimeDirectory, named after the TUN and the network namespace's inode (two l4nat in two namespaces may both call
// their TUN l4nat0). Its own module so the lab can find the files a namespace's crashed l4nat left (src/lab/netns.ts)
// without loading the data plane.
import { readdirSync, rmSync } from 'node:fs';
import path from 'node:path';

export const FLOW_FILE_DIR = '/run/l4nat';

/** The default file for `tun` in the network namespace with inode `netnsInode` (null: unknown, the TUN's name alone). */
export function defaultFlowFile(tun: string, netnsInode: string | null): string {
  return path.join(FLOW_FILE_DIR, `${tun}${netnsInode === null ? '' : `-net${netnsInode}`}.flows`);
}

/**
 * Removes the default flow table files of the network namespace with this inode: what an l4nat killed there left
 * for its successor, which will never come once the namespace is gone. Returns the paths removed.
 */
export function removeFlowFilesOfNetns(netnsInode: string, dir = FLOW_FILE_DIR): string[] {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return []; // no directory: no file
  }
  const suffix = `-net${netnsInode}.flows`;
  const gone = names.filter((n) => n.endsWith(suffix)).map((n) => path.join(dir, n));
  for (const p of gone) rmSync(p, { force: true });
  return gone;
}
