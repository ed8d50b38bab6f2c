// The flow table's size against the memory left (src/dataplane/flow-memory.ts): /proc and cgroup files are faked, so
// no table is allocated; a table that would not fit is refused with the figures, before anything is opened.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { availableMemory, checkFlowTableFits, flowTableBytes } from '../src/dataplane/flow-memory';
import { Dataplane } from '../src/dataplane/native';

const GiB = 2 ** 30;
const files = (m: Record<string, string>) => (p: string): string => {
  if (!(p in m)) throw Object.assign(new Error(`ENOENT: ${p}`), { code: 'ENOENT' });
  return m[p];
};
const meminfo = (kb: number): string => `MemTotal:       25000000 kB\nMemFree:        1000000 kB\nMemAvailable:   ${kb} kB\nBuffers:          1000 kB\n`;

test('the table takes whole power-of-two buckets of 8 entries, as flow_table.c allocates them', () => {
  assert.equal(flowTableBytes(8, 64), 8 * 64);
  assert.equal(flowTableBytes(1 << 20, 64), 64 * 2 ** 20);
  assert.equal(flowTableBytes((1 << 20) + 1, 64), 128 * 2 ** 20);
  assert.equal(flowTableBytes(2 ** 31, 64), 128 * GiB);
});

test('available memory: MemAvailable, or a cgroup limit less its use when lower (v2 and v1), "max" is no limit', () => {
  assert.deepEqual(availableMemory(files({ '/proc/meminfo': meminfo(8 * 2 ** 20), '/proc/self/cgroup': '0::/\n' })), { bytes: 8 * GiB, source: 'MemAvailable in /proc/meminfo' });
  const v2 = files({
    '/proc/meminfo': meminfo(8 * 2 ** 20),
    '/proc/self/cgroup': '0::/system.slice/l4nat.service\n',
    '/sys/fs/cgroup/system.slice/l4nat.service/memory.max': `${2 * GiB}\n`,
    '/sys/fs/cgroup/system.slice/l4nat.service/memory.current': `${0.5 * GiB}\n`,
  });
  assert.deepEqual(availableMemory(v2), { bytes: 1.5 * GiB, source: "the cgroup's /sys/fs/cgroup/system.slice/l4nat.service/memory.max less /sys/fs/cgroup/system.slice/l4nat.service/memory.current" });
  const unlimited = files({ '/proc/meminfo': meminfo(8 * 2 ** 20), '/proc/self/cgroup': '0::/a\n', '/sys/fs/cgroup/a/memory.max': 'max\n', '/sys/fs/cgroup/a/memory.current': '1\n' });
  assert.equal(availableMemory(unlimited)?.bytes, 8 * GiB);
  const v1 = files({
    '/proc/meminfo': meminfo(8 * 2 ** 20),
    '/proc/self/cgroup': '9:name=systemd:/\n4:memory:/box\n0::/\n',
    '/sys/fs/cgroup/memory/box/memory.limit_in_bytes': `${4 * GiB}\n`,
    '/sys/fs/cgroup/memory/box/memory.usage_in_bytes': `${1 * GiB}\n`,
  });
  assert.equal(availableMemory(v1)?.bytes, 3 * GiB);
  const v1Unlimited = files({ '/proc/meminfo': meminfo(8 * 2 ** 20), '/proc/self/cgroup': '4:memory:/\n', '/sys/fs/cgroup/memory/memory.limit_in_bytes': '9223372036854771712\n', '/sys/fs/cgroup/memory/memory.usage_in_bytes': '5\n' });
  assert.equal(availableMemory(v1Unlimited)?.bytes, 8 * GiB);
  assert.equal(availableMemory(files({})), undefined, 'no /proc: no figure, nothing refused');
});

test('a table larger than three quarters of the available memory is refused, naming need, room, source and what fits', () => {
  const avail = { bytes: 16 * GiB, source: 'MemAvailable in /proc/meminfo' };
  assert.doesNotThrow(() => checkFlowTableFits(1 << 27, 64, avail)); // 8 GiB
  assert.throws(
    () => checkFlowTableFits(1 << 28, 64, avail), // 16 GiB
    /^RangeError: dataplane: flowCapacity 268435456 needs 16\.0 GiB for the flow table \(64 bytes an entry, committed at start\), but this host has 16\.0 GiB available \(MemAvailable in \/proc\/meminfo\) and the table may take 75% of it: set global\.flow_capacity \(--flow-capacity\) to at most about 201326592$/,
  );
  assert.doesNotThrow(() => checkFlowTableFits(1 << 28, 64, undefined));
});

test('the data plane refuses a flow table this host cannot hold before it opens anything', () => {
  const avail = availableMemory();
  assert.ok(avail, 'this host has /proc/meminfo');
  // The smallest power of two whose table is more than the whole of the available memory (never allocated).
  let capacity = 1024;
  while (flowTableBytes(capacity, 64) <= avail.bytes && capacity < 2 ** 31) capacity *= 2;
  assert.ok(flowTableBytes(capacity, 64) > avail.bytes, `a capacity up to 2^31 exceeds ${avail.bytes} bytes`);
  assert.throws(() => new Dataplane({ ifname: 'l4mem0', queues: 1, flowCapacity: capacity, maxServices: 4, maxBackends: 4 }), new RegExp(`flowCapacity ${capacity} needs .* GiB for the flow table`));
});
