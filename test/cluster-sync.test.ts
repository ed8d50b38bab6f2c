// Flow-state sync without root (src/cluster/sync*.ts): the datagram format and its checks (MAC, replay, staleness,
// bounds), the `cluster.sync` config section, and two FlowSync instances on loopback addresses with fake data
// planes: an entry one host logs reaches the other's flow table by identity, its slots mapped; a forged datagram,
// a replayed one and one from a stranger change nothing and are counted; a starting host gets the divergent set.
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { createSocket } from 'node:dgram';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { clusterOptionsOf } from '../src/cluster/options';
import { FlowSync, type SyncDataplane, type SyncNames } from '../src/cluster/sync';
import { parseBackendId, syncNames } from '../src/cluster/sync-names';
import { decodeMessage, encodeMessage, MAX_DATAGRAM, MAX_ENTRIES, ReplayGuard, WireError, type Message, type WireEntry } from '../src/cluster/sync-wire';
import { parseConfig } from '../src/config/load';
import { configProblems } from './rigs/config-problems';
import { decodeSyncRecords, encodeSyncRecords, type SyncRecord } from '../src/dataplane/sync-record';
import { createLogger } from '../src/util/log';

const dir = mkdtempSync(join(tmpdir(), 'l4nat-sync-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const KEY = Buffer.from('0123456789abcdef0123456789abcdef');

const E4: WireEntry = { op: 'add', family: 4, proto: 6, client: '198.51.100.7', cport: 40000, vip: '10.200.0.10', vport: 80, bkFamily: 4, bkAddr: '10.210.0.11', bkPort: 8080, confirmed: true };
const E6: WireEntry = { op: 'del', family: 6, proto: 17, client: '2001:db8::7', cport: 5353, vip: 'fd4c::10', vport: 53, bkFamily: 6, bkAddr: 'fd4c:1::2', bkPort: 5300, confirmed: false };
const msg = (over: Partial<Message> = {}): Message => ({ type: 'entries', sender: Buffer.from('sender01'), seq: 1n, timeMs: Date.now(), entries: [E4, E6], ...over });

function reason(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    assert.ok(e instanceof WireError, String(e));
    return e.reason;
  }
  return 'accepted';
}

test('sync datagrams: IPv4 and IPv6 entries survive encode/decode; a datagram of MAX_ENTRIES fits the IPv6 minimum MTU', () => {
  const m = msg();
  const d = decodeMessage(encodeMessage(m, KEY), KEY);
  assert.deepEqual(d, m);
  const full = encodeMessage(msg({ entries: new Array<WireEntry>(MAX_ENTRIES).fill(E6) }), KEY);
  assert.equal(full.length, MAX_DATAGRAM);
  assert.ok(MAX_DATAGRAM <= 1232, `${MAX_DATAGRAM} bytes`);
  assert.throws(() => encodeMessage(msg({ entries: new Array<WireEntry>(MAX_ENTRIES + 1).fill(E4) }), KEY), /at most 19 entries/);
});

test('sync datagrams: a wrong MAC, any changed byte, a truncated or oversized datagram is refused before anything is read', () => {
  const buf = encodeMessage(msg(), KEY);
  assert.equal(reason(() => decodeMessage(buf, Buffer.from('another-key-another-key-another-'))), 'bad_mac');
  for (const at of [0, 5, 7, 20, 40, 100, buf.length - 1]) {
    const b = Buffer.from(buf);
    b[at] ^= 1;
    assert.equal(reason(() => decodeMessage(b, KEY)), 'bad_mac', `byte ${at} flipped`);
  }
  assert.equal(reason(() => decodeMessage(buf.subarray(0, 40), KEY)), 'malformed');
  assert.equal(reason(() => decodeMessage(Buffer.alloc(MAX_DATAGRAM + 1), KEY)), 'malformed');
  // authenticated but inconsistent (a count that does not match the length): malformed, not believed
  const body = Buffer.from(encodeMessage(msg(), KEY).subarray(0, -32));
  body.writeUInt16BE(3, 6);
  const forgedCount = Buffer.concat([body, createHmac('sha256', KEY).update(body).digest()]);
  assert.equal(reason(() => decodeMessage(forgedCount, KEY)), 'malformed');
});

test('sync datagrams: a replayed or older sequence, a stale or future time are refused; senders are bounded', () => {
  const g = new ReplayGuard(30_000, 2);
  const now = Date.now();
  g.accept(msg({ seq: 5n }), now);
  assert.equal(reason(() => g.accept(msg({ seq: 5n }), now)), 'replayed');
  assert.equal(reason(() => g.accept(msg({ seq: 4n }), now)), 'replayed');
  g.accept(msg({ seq: 6n }), now);
  assert.equal(reason(() => g.accept(msg({ seq: 7n, timeMs: now - 31_000 }), now)), 'stale');
  assert.equal(reason(() => g.accept(msg({ seq: 7n, timeMs: now + 31_000 }), now)), 'stale');
  g.accept(msg({ seq: 1n, sender: Buffer.from('sender02') }), now);
  assert.equal(reason(() => g.accept(msg({ seq: 1n, sender: Buffer.from('sender03') }), now)), 'stale', 'a third sender within the window: bounded');
  g.accept(msg({ seq: 1n, sender: Buffer.from('sender03'), timeMs: now + 61_000 }), now + 61_000);
});

test('sync records: the addon layout round-trips (network-order ports, host-order slots)', () => {
  const r: SyncRecord[] = [
    { op: 'add', family: 4, proto: 6, client: '198.51.100.7', cport: 40000, vip: '10.200.0.10', vport: 80, backend: 3, svc: 1, state: 0x47 },
    { op: 'del', family: 6, proto: 17, client: '2001:db8::7', cport: 5353, vip: 'fd4c::10', vport: 53, backend: 70000, svc: 2, state: 0 },
  ];
  const b = encodeSyncRecords(r);
  assert.equal(b.byteLength, 112);
  assert.equal(b.byteOffset % 8, 0);
  assert.deepEqual(decodeSyncRecords(b), r);
  assert.deepEqual(parseBackendId('[fd4c:1::2]:5300/udp'), { addr: 'fd4c:1::2', port: 5300 });
  assert.deepEqual(parseBackendId('10.0.0.1:80/tcp'), { addr: '10.0.0.1', port: 80 });
});

const BASE = `
global: { hash_key: "00112233445566778899aabbccddeeff" }
services:
  - name: web
    vips: [10.0.0.10]
    ports: [80]
    backends: ["10.0.1.11:8080"]
cluster:
  listen: 127.0.0.1
  peers: ["127.0.0.2"]
`;
function problems(yaml: string): string[] {
  return configProblems(BASE + yaml);
}

test('cluster.sync: off by default; the key file must be owner-only and long enough; clear errors', () => {
  assert.equal(clusterOptionsOf(parseConfig(BASE, 'x'))!.sync, undefined, 'off by default');
  const key = join(dir, 'sync.key');
  writeFileSync(key, `${'ab'.repeat(32)}\n`, { mode: 0o600 });
  const s = clusterOptionsOf(parseConfig(`${BASE}  sync: {key_file: ${key}}\n`, 'x'))!.sync!;
  assert.deepEqual({ ...s, key: s.key.toString() }, { port: 9182, keyFile: key, key: 'ab'.repeat(32), maxRate: 20000, maxEntries: 262144, refresh: 10, maxSkew: 30 });
  const open = join(dir, 'open.key');
  writeFileSync(open, `${'ab'.repeat(32)}\n`, { mode: 0o644 });
  assert.ok(problems(`  sync: {key_file: ${open}}\n`).some((x) => x.startsWith(`cluster.sync.key_file: cluster sync key file ${open} has mode 0644`)));
  const short = join(dir, 'short.key');
  writeFileSync(short, 'tooshort\n', { mode: 0o600 });
  assert.ok(problems(`  sync: {key_file: ${short}}\n`).some((x) => x.includes('shorter than 32 characters (it has 8)')));
  assert.ok(problems('  sync: {key_file: /nonexistent/sync.key}\n').some((x) => x.startsWith('cluster.sync.key_file: cluster sync key file /nonexistent/sync.key: cannot read it (ENOENT)')));
  assert.ok(problems(`  sync: {key_file: ${key}, port: 9181}\n`).some((x) => x.startsWith('cluster.sync.port: got 9181, the same as cluster.port')));
  assert.ok(problems(`  sync: {key_file: ${key}, refresh: 0}\n`).some((x) => x.startsWith('cluster.sync.refresh')));
  assert.ok(problems(`  sync: {port: 9999}\n`).some((x) => /^cluster\.sync: missing required key "key_file"/.test(x)));
  assert.ok(problems(`  sync: {key_file: ${key}, colour: red}\n`).some((x) => x.includes('colour')));
});

/** A data plane that remembers what it was given, with a log to drain and a table to check. */
class FakeDp implements SyncDataplane {
  on = false;
  log: SyncRecord[] = [];
  applied: SyncRecord[] = [];
  live = new Map<string, number>();
  syncSet(on: boolean): void {
    this.on = on;
  }
  syncDrain(): { records: SyncRecord[]; dropped: number } {
    const r = this.log;
    this.log = [];
    return { records: r, dropped: 0 };
  }
  syncApply(records: readonly SyncRecord[]) {
    this.applied.push(...records);
    return { learned: records.filter((r) => r.op === 'add').length, kept: 0, forgotten: records.filter((r) => r.op === 'del').length, invalid: 0 };
  }
  syncCheck(records: readonly SyncRecord[]): Uint32Array {
    return Uint32Array.from(records.map((r) => this.live.get(`${r.client}:${r.cport}`) ?? 0xffffffff));
  }
}

/** Host A has the backend in slot 3 (service slot 0), host B in slot 7 (service slot 2). */
function names(bkSlot: number, svcSlot: number): SyncNames {
  const key = '10.200.0.10:80/tcp|10.210.0.11:8080/tcp';
  return syncNames({ backendKeyOfSlot: (s) => (s === bkSlot ? key : undefined), backendSlot: (k) => (k === key ? bkSlot : undefined), serviceSlot: (id) => (id === '10.200.0.10:80/tcp' ? svcSlot : undefined) });
}

const until = async (cond: () => boolean, what: string, ms = 3000): Promise<void> => {
  const t0 = Date.now();
  while (!cond()) {
    if (Date.now() - t0 > ms) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
};

test('two hosts on loopback: a logged entry reaches the peer by identity; forged, replayed and strangers\' datagrams change nothing; a starting host gets the set', async () => {
  const port = 20000 + (process.pid % 20000);
  const opts = { port, keyFile: '-', key: KEY, maxRate: 10000, maxEntries: 1000, refresh: 3600, maxSkew: 30 };
  const log = createLogger({ level: 'silent', pretty: false });
  const dpA = new FakeDp();
  const dpB = new FakeDp();
  const a = new FlowSync(opts, '127.0.0.2', [{ addr: '127.0.0.3', port: 9181 }], dpA, names(3, 0), log);
  const b = new FlowSync(opts, '127.0.0.3', [{ addr: '127.0.0.2', port: 9181 }], dpB, names(7, 2), log);
  await a.start();
  await b.start();
  try {
    assert.ok(dpA.on && dpB.on, 'the workers\' logs are switched on');
    dpA.log.push({ op: 'add', family: 4, proto: 6, client: '198.51.100.7', cport: 40000, vip: '10.200.0.10', vport: 80, backend: 3, svc: 0, state: 0x07 });
    await until(() => dpB.applied.length === 1, 'B learning the entry');
    assert.deepEqual(dpB.applied[0], { op: 'add', family: 4, proto: 6, client: '198.51.100.7', cport: 40000, vip: '10.200.0.10', vport: 80, backend: 7, svc: 2, state: 0x04 }, 'B\'s own slots, confirmed');
    assert.equal(b.status().learned, 1);
    assert.equal(a.status().own, 1);

    // forged (another key), replayed (a captured datagram sent again) and from a stranger: counted, nothing applied
    const s = createSocket('udp4');
    await new Promise<void>((r) => s.bind(0, '127.0.0.2', () => r()));
    const forged = encodeMessage({ type: 'entries', sender: Buffer.from('attacker'), seq: 1n, timeMs: Date.now(), entries: [E4] }, Buffer.from('not-the-cluster-key-not-the-key!'));
    const good = encodeMessage({ type: 'entries', sender: Buffer.from('capture1'), seq: 9n, timeMs: Date.now(), entries: [E4] }, KEY);
    for (const d of [forged, good, good]) await new Promise<void>((r) => s.send(d, port, '127.0.0.3', () => r()));
    const stranger = createSocket('udp4');
    await new Promise<void>((r) => stranger.bind(0, '127.0.0.9', () => r()));
    await new Promise<void>((r) => stranger.send(good, port, '127.0.0.3', () => r()));
    await until(() => b.status().rejected.unknown_peer === 1 && b.status().rejected.replayed === 1 && b.status().rejected.bad_mac === 1, 'the rejections');
    assert.equal(dpB.applied.length, 2, 'only the first copy of the genuine datagram was applied');
    s.close();
    stranger.close();

    // the close travels too, and a refresh re-sends only what is still live
    dpA.log.push({ op: 'del', family: 4, proto: 6, client: '198.51.100.7', cport: 40000, vip: '10.200.0.10', vport: 80, backend: 3, svc: 0, state: 0x1f });
    await until(() => dpB.applied.some((r) => r.op === 'del'), 'the removal');
    assert.equal(a.status().own, 0);

    // a host that starts (C, same address as B after B stops) asks and is given A's set
    dpA.log.push({ op: 'add', family: 4, proto: 6, client: '198.51.100.8', cport: 40001, vip: '10.200.0.10', vport: 80, backend: 3, svc: 0, state: 0x02 }); // a pick-up
    await until(() => a.status().own === 1, 'A logging a second entry');
    await b.close();
    const dpC = new FakeDp();
    const c = new FlowSync(opts, '127.0.0.3', [{ addr: '127.0.0.2', port: 9181 }], dpC, names(5, 1), log);
    await c.start();
    try {
      await until(() => dpC.applied.some((r) => r.client === '198.51.100.8' && r.backend === 5), 'the bootstrap answer');
      assert.equal(dpC.applied.find((r) => r.client === '198.51.100.8')!.state, 0x02, 'a pick-up travels unconfirmed (learned half-open)');
      assert.ok(c.status().peers[0].lastMessageAgeMs !== null);
      dpA.live.set('198.51.100.8:40001', 3);
      const sentBefore = a.status().sent.entries;
      a.refresh();
      assert.equal(a.status().own, 1, 'a live entry is kept');
      assert.ok(a.status().sent.entries > sentBefore, 'and sent again');
      dpA.live.clear();
      a.refresh();
      assert.equal(a.status().own, 0, 'a dead one is forgotten');
      await new Promise((r) => setTimeout(r, 300));
      assert.ok(!dpC.applied.some((r) => r.client === '198.51.100.8' && r.op === 'del'), 'without a removal: a peer carrying the flow keeps its copy alive');
    } finally {
      await c.close();
    }
  } finally {
    await a.close();
    await b.close();
  }
});
