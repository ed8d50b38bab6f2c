// Source hashing across a VIP's services (src/dataplane/affinity.ts): the rings of source-hashed services with the same
// hosts agree slot for slot, whatever their ports and protocols; 5-tuple rings are what they always were; the
// ring older versions built is carried as the previous ring at start; `l4nat check` warns where rings cannot
// agree. No root needed.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { affinityWarnings, ringIds } from '../src/dataplane/affinity';
import { buildMaglev } from '../src/dataplane/maglev';
import { backendId, DEFAULT_TIMEOUTS, type BackendSpec, type ServiceSpec } from '../src/config/model';
import { BK_WORDS, buildTables, legacyKeyedRing, NO_BACKEND, SlotAllocator, type TableOptions, type TablesInput } from '../src/dataplane/tables';
import { Balancer } from '../src/control/balancer';
import type { Dataplane } from '../src/dataplane/native';
import type { HostSetup } from '../src/host/setup';

const M = 1021;
const OPTS: TableOptions = { hashKey: Buffer.from('00112233445566778899aabbccddeeff', 'hex'), maglevSize: M, timeouts: { ...DEFAULT_TIMEOUTS }, icmpEcho: true, icmpTranslate: true };

function bk(addr: string, port: number, weight = 1): BackendSpec {
  return { addr, family: addr.includes(':') ? 6 : 4, port, weight };
}
function svc(vip: string, port: number, proto: 'tcp' | 'udp', hash: '5tuple' | 'src', backends: BackendSpec[]): ServiceSpec {
  return { vip, family: vip.includes(':') ? 6 : 4, port, proto, hash, backends };
}

/** Each service's ring as the host address of the backend in each slot ('' = no backend). */
function hostRings(services: ServiceSpec[]): string[][] {
  const built = buildTables(services, new SlotAllocator(64), new SlotAllocator(256), OPTS);
  const { bkWords, rings } = built.input;
  const addrOf = new Map<number, string>();
  services.flatMap((s) => s.backends).forEach((b, i) => addrOf.set(bkWords[i * BK_WORDS], b.addr));
  return services.map((_, si) => Array.from(rings.subarray(si * M, (si + 1) * M), (slot) => (slot === NO_BACKEND ? '' : addrOf.get(slot)!)));
}

function agreement(a: string[], b: string[]): number {
  let same = 0;
  for (let i = 0; i < a.length; i++) if (a[i] === b[i]) same++;
  return same / a.length;
}

test('source-hashed services of one VIP with the same hosts have the same ring, whatever their ports and protocols', () => {
  const hosts = ['10.0.1.11', '10.0.1.12', '10.0.1.13'];
  const services = [
    svc('10.0.0.10', 5201, 'tcp', 'src', hosts.map((h) => bk(h, 5201))),
    svc('10.0.0.10', 5201, 'udp', 'src', hosts.map((h) => bk(h, 5201))),
    svc('10.0.0.10', 443, 'tcp', 'src', hosts.map((h, k) => bk(h, 8443 + k))), // other ports on each host
    svc('10.0.0.10', 53, 'udp', 'src', [...hosts].reverse().map((h) => bk(h, 5353))), // listed in another order
  ];
  const rings = hostRings(services);
  for (const r of rings.slice(1)) assert.equal(agreement(rings[0], r), 1, 'every slot on the same host');
  assert.deepEqual(new Set(rings[0]), new Set(hosts), 'every host has slots');
  // IPv6 likewise.
  const h6 = ['fd00:1::11', 'fd00:1::12', 'fd00:1::13'];
  const r6 = hostRings([svc('fd00::10', 5201, 'tcp', 'src', h6.map((h) => bk(h, 5201))), svc('fd00::10', 5201, 'udp', 'src', h6.map((h) => bk(h, 6201)))]);
  assert.equal(agreement(r6[0], r6[1]), 1);
});

test('weights and drain act on source-hashed rings as before: the same weights give the same ring, a drained host leaves the ring', () => {
  const hosts = ['10.0.1.11', '10.0.1.12', '10.0.1.13'];
  const w = [1, 3, 2];
  const tcp = svc('10.0.0.10', 5201, 'tcp', 'src', hosts.map((h, k) => bk(h, 5201, w[k])));
  const udp = svc('10.0.0.10', 5201, 'udp', 'src', hosts.map((h, k) => bk(h, 5201, w[k])));
  const [a, b] = hostRings([tcp, udp]);
  assert.equal(agreement(a, b), 1);
  const count = (r: string[], h: string): number => r.filter((x) => x === h).length;
  assert.equal(count(a, '10.0.1.12'), Math.round((M * 3) / 6), 'weights still decide the shares');
  const drained = { ...udp, backends: udp.backends.map((x, k) => (k === 2 ? { ...x, weight: 0 } : x)) };
  const [, d, without] = hostRings([tcp, drained, { ...udp, port: 5202, backends: udp.backends.slice(0, 2) }]);
  assert.equal(count(d, '10.0.1.13'), 0, 'the drained host has no slot');
  assert.deepEqual(d, without, 'a drained host is out of the ring as if it were not there');
});

test('5-tuple rings are built from ADDR:PORT/PROTO ids exactly as before (bit for bit)', () => {
  const s = svc('10.0.0.10', 80, 'tcp', '5tuple', [bk('10.0.1.11', 8080), bk('10.0.1.12', 8080, 2), bk('10.0.1.13', 8081)]);
  assert.deepEqual(ringIds(s), s.backends.map((b) => backendId(b, 'tcp')));
  const built = buildTables([s], new SlotAllocator(4), new SlotAllocator(8), OPTS);
  const expected = buildMaglev(s.backends.map((b) => ({ id: backendId(b, s.proto), weight: b.weight })), { size: M, key: OPTS.hashKey });
  const slots = s.backends.map((b) => built.backendSlots.get(`10.0.0.10:80/tcp|${backendId(b, 'tcp')}`)!);
  assert.deepEqual([...built.input.rings], Array.from(expected, (i) => slots[i]));
});

test('ring ids of source-hashed services: the host address; a host listed twice keeps it for its lowest port', () => {
  assert.deepEqual(ringIds(svc('10.0.0.10', 80, 'udp', 'src', [bk('10.0.1.11', 80), bk('10.0.1.12', 90)])), ['10.0.1.11', '10.0.1.12']);
  assert.deepEqual(ringIds(svc('fd00::10', 80, 'tcp', 'src', [bk('fd00:1::11', 80)])), ['[fd00:1::11]']);
  const twice = svc('10.0.0.10', 80, 'tcp', 'src', [bk('10.0.1.11', 9000), bk('10.0.1.11', 8000), bk('10.0.1.12', 8000)]);
  assert.deepEqual(ringIds(twice), ['10.0.1.11:9000', '10.0.1.11', '10.0.1.12']);
  assert.doesNotThrow(() => buildTables([twice], new SlotAllocator(4), new SlotAllocator(8), OPTS));
});

test('the ring older versions built for a source-hashed service is its previous ring at start, so the second chance finds flows begun under it', async () => {
  const hosts = ['10.0.1.11', '10.0.1.12', '10.0.1.13'];
  const src = svc('10.0.0.10', 5201, 'tcp', 'src', hosts.map((h) => bk(h, 5201)));
  const tuple = svc('10.0.0.10', 80, 'tcp', '5tuple', hosts.map((h) => bk(h, 8080)));
  assert.equal(legacyKeyedRing(tuple, OPTS), undefined, 'a 5-tuple ring never changed');
  const legacy = legacyKeyedRing(src, OPTS)!;
  const old = buildMaglev(src.backends.map((b) => ({ id: backendId(b, 'tcp'), weight: b.weight })), { size: M, key: OPTS.hashKey });
  assert.deepEqual([...legacy.idx], [...old]);

  const published: TablesInput[] = [];
  const dp = { opts: { maxServices: 8, maxBackends: 32 }, queues: 1, publish: (t: TablesInput) => published.push(t) } as unknown as Dataplane;
  const host = { apply: async () => undefined } as unknown as HostSetup;
  const log = { debug() {}, info() {}, warn() {} } as unknown as ConstructorParameters<typeof Balancer>[3];
  const bal = new Balancer(dp, host, OPTS, log);
  await bal.setServices([tuple, src]);
  const first = published[0];
  const words = [...(first.prevRingWords ?? [])];
  assert.equal(words.length, 3, 'one previous ring: the source-hashed service\'s');
  const [slot, off, size] = words;
  assert.equal(slot, bal.serviceSlot('10.0.0.10:5201/tcp'));
  assert.equal(size, M);
  const key = (b: BackendSpec): number => bal.backendSlot(`10.0.0.10:5201/tcp|${backendId(b, 'tcp')}`)!;
  assert.deepEqual([...first.rings.subarray(off, off + M)], Array.from(old, (i) => key(src.backends[i])));
  // Unchanged on a republish; replaced by the real previous ring after a change.
  await bal.setServices([tuple, src]);
  assert.deepEqual([...(published[1].prevRingWords ?? [])], words);
  await bal.setServices([tuple, { ...src, backends: src.backends.map((b, k) => (k === 2 ? { ...b, weight: 2 } : b)) }]);
  const [slot2, off2, size2] = [...(published[2].prevRingWords ?? [])];
  assert.deepEqual([slot2, size2], [slot, M]);
  assert.deepEqual([...published[2].rings.subarray(off2, off2 + M)], [...published[1].rings.subarray(M, 2 * M)], 'the ring published before the change');
});

test('affinityWarnings: hosts or weight ratios that differ between a VIP\'s source-hashed services, and a host listed twice', () => {
  const h = (...a: string[]): BackendSpec[] => a.map((x) => bk(x, 5201));
  assert.deepEqual(affinityWarnings([svc('10.0.0.10', 5201, 'tcp', 'src', h('10.0.1.1', '10.0.1.2')), svc('10.0.0.10', 5201, 'udp', 'src', h('10.0.1.2', '10.0.1.1'))]), []);
  assert.deepEqual(
    affinityWarnings([svc('10.0.0.10', 1, 'tcp', 'src', [bk('10.0.1.1', 1, 2), bk('10.0.1.2', 1, 2)]), svc('10.0.0.10', 1, 'udp', 'src', [bk('10.0.1.1', 1, 1), bk('10.0.1.2', 1, 1)])]),
    [],
    'the same ratios build the same ring',
  );
  const differ = affinityWarnings([svc('10.0.0.10', 5201, 'tcp', 'src', h('10.0.1.1', '10.0.1.2', '10.0.1.3')), svc('10.0.0.10', 5201, 'udp', 'src', h('10.0.1.1', '10.0.1.2', '10.0.1.4'))]);
  assert.equal(differ.length, 1);
  assert.match(differ[0], /VIP 10\.0\.0\.10: source-hashed services 10\.0\.0\.10:5201\/tcp and 10\.0\.0\.10:5201\/udp have different backend hosts or weights \(10\.0\.1\.3 only in 10\.0\.0\.10:5201\/tcp; 10\.0\.1\.4 only in 10\.0\.0\.10:5201\/udp\)/);
  const weights = affinityWarnings([svc('10.0.0.10', 1, 'tcp', 'src', [bk('10.0.1.1', 1, 1), bk('10.0.1.2', 1, 1)]), svc('10.0.0.10', 2, 'tcp', 'src', [bk('10.0.1.1', 2, 1), bk('10.0.1.2', 2, 3)])]);
  assert.equal(weights.length, 1);
  assert.match(weights[0], /different weight ratios for 10\.0\.1\.2 \(1 vs 3\)/);
  const twice = affinityWarnings([svc('10.0.0.10', 1, 'tcp', 'src', [bk('10.0.1.1', 80), bk('10.0.1.1', 81)])]);
  assert.match(twice.join('\n'), /service 10\.0\.0\.10:1\/tcp \(hash src\) lists host 10\.0\.1\.1 2 times \(ports 80, 81\)/);
  // Not about 5-tuple services, nor about services of different VIPs.
  assert.deepEqual(affinityWarnings([svc('10.0.0.10', 1, 'tcp', '5tuple', h('10.0.1.1')), svc('10.0.0.10', 1, 'udp', '5tuple', h('10.0.1.2'))]), []);
  assert.deepEqual(affinityWarnings([svc('10.0.0.10', 1, 'tcp', 'src', h('10.0.1.1')), svc('10.0.0.11', 1, 'udp', 'src', h('10.0.1.2'))]), []);
});

const dir = mkdtempSync(join(tmpdir(), 'l4nat-affinity-'));
after(() => rmSync(dir, { recursive: true, force: true }));

test('`l4nat check` warns about source-hashed services of one VIP that cannot agree, and still exits 0', () => {
  const bin = join(__dirname, '..', '..', 'bin', 'l4nat.js');
  const file = join(dir, 'a.yaml');
  const yaml = (udpBackends: string): string => [
    'services:',
    '  - {name: perf, vips: [10.0.0.10], ports: [5201], hash: src, backends: ["10.0.1.1", "10.0.1.2"]}',
    `  - {name: perf-udp, vips: [10.0.0.10], ports: [5201/udp], hash: src, backends: [${udpBackends}]}`,
    '',
  ].join('\n');
  writeFileSync(file, yaml('"10.0.1.1", "10.0.1.3"'));
  const r = spawnSync(process.execPath, [bin, 'check', '--config', file], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stderr, /warning: VIP 10\.0\.0\.10: source-hashed services 10\.0\.0\.10:5201\/tcp and 10\.0\.0\.10:5201\/udp have different backend hosts/);
  assert.match(r.stdout, /ok: 2 services/);
  writeFileSync(file, yaml('"10.0.1.2", "10.0.1.1"'));
  const r2 = spawnSync(process.execPath, [bin, 'check', '--config', file], { encoding: 'utf8' });
  assert.equal(r2.status, 0, r2.stderr);
  assert.equal(r2.stderr, '');
});

test('affinityWarnings: a source-hashed service under admission (bounded, max_flows) is told its clients may meet several backends', () => {
  const plain = svc('10.0.0.10', 5201, 'tcp', 'src', [bk('10.0.1.1', 5201)]);
  assert.deepEqual(affinityWarnings([plain]), []);
  assert.match(affinityWarnings([{ ...plain, balance: 'bounded' }]).join('\n'), /service 10\.0\.0\.10:5201\/tcp \(hash src\) is bounded: a client's new flows go past its ring backend/);
  assert.match(affinityWarnings([{ ...plain, backends: [{ ...bk('10.0.1.1', 5201), maxFlows: 50 }] }]).join('\n'), /\(hash src\) has max_flows/);
  // A 5-tuple service is not about affinity.
  assert.deepEqual(affinityWarnings([{ ...svc('10.0.0.10', 80, 'tcp', '5tuple', [bk('10.0.1.1', 80)]), balance: 'bounded' }]), []);
});
