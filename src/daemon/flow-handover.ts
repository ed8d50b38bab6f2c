// The flow table handed from one l4nat to the next (issue 18, item 4): the data plane keeps it in a file
// (native/core/flow_segment.h; default /run/l4nat/TUN.flows, systemd's RuntimeDirectory, kept across the unit's
// restarts), which the next process takes over when its header allows, with the slot map that gives the same
// backends the same slots. A normal stop removes the file; a handover (exit 75) and a crash leave it.
import { mkdirSync, readlinkSync, rmSync, statfsSync } from 'fs';
import { dirname } from 'path';
import { Dataplane, type DataplaneOptions } from '../dataplane/native';
import { decodeFlowSlots, type FlowSlotMap } from '../dataplane/flow-slots';
import type { Logger } from '../util/log';
import { defaultFlowFile } from './flow-file-name';
import { FLOW_FILE_NONE, type UpOptions } from '../config/options';

/**
 * Where the flow table lives: the configured file, or one in systemd's RuntimeDirectory (/run/l4nat) named after
 * the TUN and the network namespace (two l4nat in two namespaces may both call their TUN l4nat0); null: in memory.
 */
export function flowFileOf(opts: Pick<UpOptions, 'flowFile' | 'tun'>): string | null {
  if (opts.flowFile === FLOW_FILE_NONE) return null;
  if (opts.flowFile !== undefined) return opts.flowFile;
  let ino: string | null = null;
  try {
    ino = /\[(\d+)\]/.exec(readlinkSync('/proc/self/ns/net'))?.[1] ?? null;
  } catch {
    // No /proc: the TUN's name alone.
  }
  return defaultFlowFile(opts.tun, ino);
}

/** statfs(2) f_type of the file systems that keep a file in memory only: tmpfs, ramfs. */
const MEMORY_FS_TYPES = new Set([0x01021994, 0x858458f6]);

/**
 * Why the flow table file should not be where it is, or null. On a disk file system the kernel writes the table's
 * dirty pages back (tens of MiB, every few seconds while flows change) and write-protects them again, so the next
 * new flow on each page takes a fault on the packet path; the file is only ever meant to outlive the process, not
 * the machine. Debian's /run is a tmpfs; some containers' is not.
 */
export function flowFileFsProblem(file: string, statfs: (p: string) => { type: number } = statfsSync): string | null {
  let type: number;
  try {
    type = statfs(file).type;
  } catch {
    return null; // opening it said what is wrong, if anything
  }
  if (MEMORY_FS_TYPES.has(type)) return null;
  return `flow table file ${file} is on a disk file system (statfs type 0x${type.toString(16)}), not tmpfs: the kernel writes the table back to disk and each write-back costs new flows a page fault; give --flow-file a path on a tmpfs (e.g. /dev/shm/l4nat.flows) or use --flow-file none`;
}

export interface OpenedDataplane {
  dp: Dataplane;
  /** The previous l4nat's slots, when its flow table was taken over (the Balancer starts from them). */
  slots?: FlowSlotMap;
}

/**
 * Opens the data plane with its flow table in `file` (null: in memory), saying in one log line what it found.
 * `shared`: a live handover, the previous l4nat still forwards through the file (src/daemon/live-handover.ts).
 */
export function openDataplane(opts: DataplaneOptions, file: string | null, hashKey: Buffer, log: Logger, shared = false): OpenedDataplane {
  if (file === null) return { dp: new Dataplane(opts) };
  try {
    mkdirSync(dirname(file), { recursive: true, mode: 0o700 }); // systemd's RuntimeDirectory= made it already
  } catch {
    // Opening the file says what is wrong.
  }
  let dp: Dataplane;
  try {
    dp = new Dataplane({ ...opts, flowFile: { path: file, hashKey, shared } });
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    if (!String(e.syscall ?? '').includes('flow table file')) throw err;
    log.warn({ flowFile: file, err: e.message }, `flow table file ${file} cannot be used (${e.message}): the flow table is kept in memory only, and the next restart starts it empty`);
    return { dp: new Dataplane(opts) };
  }
  const st = dp.flowFile!;
  const fsProblem = flowFileFsProblem(file);
  if (fsProblem !== null) log.warn({ flowFile: file }, fsProblem);
  if (st.adopted) {
    try {
      const slots = decodeFlowSlots(dp.flowSlots()!);
      log.info({ flowFile: file, repaired: st.repaired }, `took over the flow table of the previous l4nat from ${file}${st.repaired ? ` (${st.repaired} entries it left half-written freed)` : ''}`);
      return { dp, slots };
    } catch (err) {
      // Its entries' slot numbers cannot be read: start anew rather than pin flows to unknown backends.
      dp.close(true);
      rmSync(file, { force: true }); // a live predecessor keeps its mapping of the unlinked file
      log.warn({ flowFile: file, reason: (err as Error).message }, `flow table file ${file} not taken over: ${(err as Error).message}; starting with an empty flow table (the file is replaced)`);
      return { dp: new Dataplane({ ...opts, flowFile: { path: file, hashKey } }) };
    }
  }
  if (st.existed) log.warn({ flowFile: file, reason: st.reason }, `flow table file ${file} not taken over: ${st.reason}; starting with an empty flow table (the file is replaced)`);
  return { dp };
}

/** After a normal stop: the next l4nat starts clean (a handover or a crash keeps the file). */
export function removeFlowFile(file: string | null, log: Logger): void {
  if (file === null) return;
  try {
    rmSync(file, { force: true });
  } catch (err) {
    log.warn({ flowFile: file, err: (err as Error).message }, 'removing the flow table file failed');
  }
}
