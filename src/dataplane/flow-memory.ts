// How large a flow table this host can hold. The table is committed at start (MAP_POPULATE in
// native/core/flow_table.c), so one larger than the memory left ends with the OOM killer, not an error:
// refuse it up front, naming the figures. "Left" is /proc/meminfo's MemAvailable, or the cgroup's limit less
// its current use when that is lower (systemd's MemoryMax=, a container's limit).
import { readFileSync } from 'fs';

/** Entries per bucket in native/core/flow_table.h (L4_FLOW_BUCKET); the bucket count is a power of two. */
const FLOW_BUCKET = 8;

/** The share of the available memory the flow table may take: the rest of the process and the host need some. */
export const FLOW_TABLE_MEMORY_SHARE = 0.75;

/** Bytes the native flow table commits for `capacity` entries (rounded up as flow_table.c does). */
export function flowTableBytes(capacity: number, entryBytes: number): number {
  let buckets = 1;
  while (buckets * FLOW_BUCKET < capacity) buckets *= 2;
  return buckets * FLOW_BUCKET * entryBytes;
}

export interface AvailableMemory {
  bytes: number;
  source: string; // where the figure comes from, for the error message
}

type ReadFile = (path: string) => string;
const readText: ReadFile = (p) => readFileSync(p, 'utf8');

/** The memory this process can still commit; undefined when /proc/meminfo cannot be read. */
export function availableMemory(read: ReadFile = readText): AvailableMemory | undefined {
  let best: AvailableMemory | undefined;
  try {
    const m = /^MemAvailable:\s+(\d+) kB$/m.exec(read('/proc/meminfo'));
    if (m) best = { bytes: Number(m[1]) * 1024, source: 'MemAvailable in /proc/meminfo' };
  } catch {
    return undefined;
  }
  const cg = cgroupRoom(read);
  if (cg && (!best || cg.bytes < best.bytes)) best = cg;
  return best;
}

/** The cgroup's limit less its use (v2: memory.max; v1: memory.limit_in_bytes); undefined without a limit. */
function cgroupRoom(read: ReadFile): AvailableMemory | undefined {
  let text: string;
  try {
    text = read('/proc/self/cgroup');
  } catch {
    return undefined;
  }
  let best: AvailableMemory | undefined;
  for (const line of text.split('\n')) {
    const m = /^(\d+):([^:]*):(.+)$/.exec(line);
    if (!m) continue;
    const sub = m[3] === '/' ? '' : m[3];
    let files: [string, string];
    if (m[1] === '0' && m[2] === '') files = [`/sys/fs/cgroup${sub}/memory.max`, `/sys/fs/cgroup${sub}/memory.current`];
    else if (m[2].split(',').includes('memory')) files = [`/sys/fs/cgroup/memory${sub}/memory.limit_in_bytes`, `/sys/fs/cgroup/memory${sub}/memory.usage_in_bytes`];
    else continue;
    try {
      const limit = read(files[0]).trim();
      if (!/^\d+$/.test(limit) || Number(limit) >= 2 ** 60) continue; // "max", or v1's "no limit"
      const room = Math.max(0, Number(limit) - (Number(read(files[1]).trim()) || 0));
      if (!best || room < best.bytes) best = { bytes: room, source: `the cgroup's ${files[0]} less ${files[1]}` };
    } catch {
      // not mounted here
    }
  }
  return best;
}

const gib = (n: number): string => `${(n / 2 ** 30).toFixed(1)} GiB`;

/** Throws (a RangeError naming the figures) if a flow table of `capacity` entries would not fit. */
export function checkFlowTableFits(capacity: number, entryBytes: number, avail: AvailableMemory | undefined = availableMemory()): void {
  if (!avail) return;
  const need = flowTableBytes(capacity, entryBytes);
  const room = Math.floor(avail.bytes * FLOW_TABLE_MEMORY_SHARE);
  if (need <= room) return;
  const fits = Math.max(0, Math.floor(room / entryBytes));
  throw new RangeError(
    `dataplane: flowCapacity ${capacity} needs ${gib(need)} for the flow table (${entryBytes} bytes an entry, committed at start), ` +
      `but this host has ${gib(avail.bytes)} available (${avail.source}) and the table may take ${FLOW_TABLE_MEMORY_SHARE * 100}% of it: ` +
      `set global.flow_capacity (--flow-capacity) to at most about ${fits}`,
  );
}
