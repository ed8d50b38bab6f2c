// `l4nat trace` without root: its flags and the API's query parameters, decoding the data plane's records, the
// one-line format, the pcapng blocks, which side of the TUN a captured packet is from, the trace hub (match
// slots, naming, ending) over a fake data plane, and GET /v1/trace through the admin server.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import pino from 'pino';
import { createAdminServer } from '../src/admin/server';
import { parseTraceArgs } from '../src/cli/trace';
import { loadConfigFile } from '../src/config/load';
import { Subject } from '../src/config/options';
import type { ServiceConfig } from '../src/config/model';
import { Controller } from '../src/control/controller';
import { ControlError } from '../src/control/state';
import { backendKey } from '../src/dataplane/tables';
import { decodeTraceRecords, nativeTraceMatch, TRACE_FIELDS, TRACE_RECORD_BYTES, type TraceMatch, type TraceRecord } from '../src/dataplane/trace-record';
import { formatPacketLine, packetEvent, type TraceEvent } from '../src/trace/events';
import { TraceHub } from '../src/trace/hub';
import { enhancedPacket, tracePcapHeader } from '../src/trace/pcapng';
import { parseTraceRequest, traceQuery, unknownTraceParams, type TraceParam } from '../src/trace/request';
import { wireFilter, wireSide } from '../src/trace/wire';

test('trace flags: every match flag, -c, --seconds, --pcap, and the query the CLI sends', () => {
  const a = parseTraceArgs(['--client', '198.51.100.7:40000', '--service', 'web', '--backend', '[fd4c:1::1]:8080', '--drops', '-c', '5', '--seconds=9', '--pcap', 'out.pcapng']);
  assert.deepEqual(a.req, {
    client: { addr: '198.51.100.7', family: 4, port: 40000 },
    service: 'web',
    backend: { addr: 'fd4c:1::1', family: 6, port: 8080 },
    drops: true,
    count: 5,
    seconds: 9,
    wire: true,
  });
  assert.equal(a.pcap, 'out.pcapng');
  assert.equal(traceQuery(a.req), 'client=198.51.100.7%3A40000&service=web&backend=%5Bfd4c%3A1%3A%3A1%5D%3A8080&drops=1&count=5&seconds=9&pcap=1');
  assert.deepEqual(parseTraceArgs(['--client', 'fd4c::2']).req.client, { addr: 'fd4c::2', family: 6 });
  assert.deepEqual(parseTraceArgs(['--client', '[fd4c::2]:99']).req.client, { addr: 'fd4c::2', family: 6, port: 99 });
  const d = parseTraceArgs([]).req;
  assert.deepEqual([d.count, d.seconds, d.drops, d.wire], [1000, 60, false, false]);
});

test('trace flags: bad ones are refused naming the flag, what it expects and what it got', () => {
  const bad: Array<[string[], RegExp]> = [
    [['--client', '10.0.0.300'], /^--client expects IP or IP:PORT \(IPv6 as \[IP\]:PORT\), port 1-65535, got "10\.0\.0\.300"$/],
    [['--client', '10.0.0.1:0'], /^--client expects .*got "10\.0\.0\.1:0"$/],
    [['--client', '[10.0.0.1]:80'], /^--client expects/],
    [['--backend', '10.0.1.1'], /^--backend expects ADDR:PORT \(IPv6 as \[ADDR\]:PORT\), port 1-65535, got "10\.0\.1\.1"$/],
    [['-c', '0'], /^--count \(-c\) expects a whole number from 1 to 1000000, got "0"$/],
    [['-c'], /^-c needs a value/],
    [['--seconds', '3601'], /^--seconds expects a whole number from 1 to 3600, got "3601"$/],
    [['--service', 'a b'], /^--service expects a service name or VIP:PORT\[\/tcp\|udp\], got "a b"$/],
    [['--pcap='], /^--pcap expects a file name/],
    [['--bogus'], /^unknown flag --bogus \(trace takes --client/],
    [['10.0.0.1'], /^trace takes flags only .*got "10\.0\.0\.1"$/],
    [['--drops=yes'], /^--drops takes no value$/],
  ];
  for (const [argv, re] of bad) assert.throws(() => parseTraceArgs(argv), (e: Error) => re.test(e.message), argv.join(' '));
});

test('GET /v1/trace parameters: named as query parameters; unknown ones listed with the known', () => {
  const q: Partial<Record<TraceParam, string>> = { drops: 'maybe' };
  assert.throws(() => parseTraceRequest((p) => q[p], (p) => Subject.named(`querystring/${p}`)), (e: Error) => e.message === 'querystring/drops expects nothing, 1, true, 0 or false, got "maybe"');
  assert.equal(unknownTraceParams(['client', 'count'])?.message, undefined);
  assert.equal(unknownTraceParams(['client', 'port'])?.message, 'querystring: unknown parameter "port"; expected client, service, backend, drops, count, seconds, pcap');
});

/** A record as the data plane writes it (native/core/trace.h), v4. */
function rawRecord(f: Partial<Record<keyof typeof TRACE_FIELDS, number | bigint | string>>): Buffer {
  const b = Buffer.alloc(TRACE_RECORD_BYTES);
  const F = TRACE_FIELDS;
  const u8 = ['family', 'proto', 'dir', 'verdict', 'dropReason', 'flow', 'tcpFlags', 'matchMask', 'gsoType', 'icmpType'] as const;
  const u16 = ['gsoSize', 'queue', 'sport', 'dport', 'outSport', 'outDport'] as const;
  const u32 = ['payloadLen', 'seq', 'ack', 'service', 'backend', 'ringSlot', 'ipLen'] as const;
  for (const k of u8) b[F[k]] = Number(f[k] ?? 0);
  for (const k of u16) b.writeUInt16LE(Number(f[k] ?? 0), F[k]);
  for (const k of u32) b.writeUInt32LE(Number(f[k] ?? (k === 'service' || k === 'backend' || k === 'ringSlot' ? 0xffffffff : 0)), F[k]);
  b.writeBigUInt64LE(BigInt(f.timeNs ?? 0), F.timeNs);
  for (const k of ['saddr', 'daddr', 'outSaddr', 'outDaddr'] as const) if (f[k] !== undefined) Buffer.from(String(f[k]).split('.').map(Number)).copy(b, F[k]);
  return b;
}

const DROPS = ['none', 'bad_vnet_hdr', 'acl_denied'];
const SYN = { timeNs: 1_764_957_600_123_456_789n, family: 4, proto: 6, dir: 1, verdict: 1, flow: 2, tcpFlags: 0x02, matchMask: 1, seq: 1000, service: 0, backend: 1, ringSlot: 4242, queue: 1, saddr: '198.51.100.7', daddr: '10.200.0.10', outSaddr: '198.51.100.7', outDaddr: '10.0.1.2', sport: 40000, dport: 80, outSport: 40000, outDport: 8080, ipLen: 60 };

test('trace records: decoded field by field; a drop names its reason; a partial record is refused', () => {
  const [r, d] = decodeTraceRecords(Buffer.concat([rawRecord(SYN), rawRecord({ ...SYN, verdict: 0, dropReason: 2, flow: 0, backend: 0xffffffff, ringSlot: 0xffffffff })]), DROPS);
  assert.equal(r.timeNs, 1_764_957_600_123_456_789n);
  assert.deepEqual([r.family, r.proto, r.dir, r.flow, r.written, r.dropReason, r.queue], [4, 6, 'forward', 'new', true, null, 1]);
  assert.deepEqual(r.before, { src: { addr: '198.51.100.7', port: 40000 }, dst: { addr: '10.200.0.10', port: 80 } });
  assert.deepEqual(r.after, { src: { addr: '198.51.100.7', port: 40000 }, dst: { addr: '10.0.1.2', port: 8080 } });
  assert.deepEqual([r.serviceSlot, r.backendSlot, r.ringSlot, r.seq, r.tcpFlags, r.ipLen], [0, 1, 4242, 1000, 2, 60]);
  assert.deepEqual([d.written, d.dropReason, d.backendSlot, d.ringSlot], [false, 'acl_denied', null, null]);
  assert.throws(() => decodeTraceRecords(Buffer.alloc(TRACE_RECORD_BYTES + 1), DROPS), /not a whole number of 128-byte records/);
});

test('trace lines: time, queue, direction, tuple read => written, TCP, then the verdict', () => {
  const [r, d] = decodeTraceRecords(Buffer.concat([rawRecord(SYN), rawRecord({ ...SYN, verdict: 0, dropReason: 2, flow: 0, backend: 0xffffffff, ringSlot: 0xffffffff })]), DROPS);
  assert.equal(
    formatPacketLine(packetEvent(r, '10.200.0.10:80/tcp', '10.0.1.2:8080/tcp')),
    '18:00:00.123456 q1 forward tcp 198.51.100.7:40000 > 10.200.0.10:80 => 198.51.100.7:40000 > 10.0.1.2:8080 [S] seq 1000 ack 0 len 0 | written flow new ring slot 4242 service 10.200.0.10:80/tcp backend 10.0.1.2:8080/tcp',
  );
  assert.equal(formatPacketLine(packetEvent(d, '10.200.0.10:80/tcp', null)), '18:00:00.123456 q1 forward tcp 198.51.100.7:40000 > 10.200.0.10:80 [S] seq 1000 ack 0 len 0 | DROPPED acl_denied service 10.200.0.10:80/tcp');
});

test('pcapng: section header, one interface per side, packets with a cooked header saying the side, 32-bit padded', () => {
  const h = tracePcapHeader('l4nat0');
  assert.equal(h.readUInt32LE(0), 0x0a0d0d0a);
  assert.equal(h.readUInt32LE(8), 0x1a2b3c4d);
  const shbLen = h.readUInt32LE(4);
  assert.equal(h.readUInt32LE(shbLen - 4), shbLen, 'SHB trailer length');
  assert.equal(h.readUInt32LE(shbLen), 1, 'IDB');
  assert.equal(h.readUInt16LE(shbLen + 8), 113, 'LINKTYPE_LINUX_SLL');
  const idb2 = shbLen + h.readUInt32LE(shbLen + 4);
  assert.equal(h.readUInt32LE(idb2), 1, 'second IDB');
  assert.equal(idb2 + h.readUInt32LE(idb2 + 4), h.length);
  assert.ok(h.includes(Buffer.from('l4nat0-written')));
  const ip = Buffer.from('450000140000000040060000c633640b0ac8000a', 'hex'); // 20 bytes
  const e = enhancedPacket(1, 1_764_957_600_000_001, ip.subarray(0, 19), 19);
  assert.equal(e.readUInt32LE(0), 6);
  assert.equal(e.length % 4, 0);
  assert.equal(e.readUInt32LE(e.length - 4), e.length);
  assert.equal(e.readUInt32LE(8), 1, 'interface 1');
  assert.equal((BigInt(e.readUInt32LE(12)) << 32n) | BigInt(e.readUInt32LE(16)), 1_764_957_600_000_001n);
  assert.deepEqual([e.readUInt32LE(20), e.readUInt32LE(24)], [16 + 19, 16 + 19]);
  assert.equal(e.readUInt16BE(28), 0, 'PACKET_HOST: written by l4nat');
  assert.equal(e.readUInt16BE(28 + 14), 0x0800);
  assert.equal(enhancedPacket(0, 0, ip).readUInt16BE(28), 4, 'PACKET_OUTGOING: read by l4nat');
});

test('wire view: the filter from the match, and which side a packet is from', () => {
  assert.equal(wireFilter([]), '');
  assert.equal(wireFilter([{ addr: '10.0.0.1', port: 80 }, { addr: 'fd00::1' }]), '(host 10.0.0.1 and port 80) or (host fd00::1)');
  const sides = { vips: new Set(['10.200.0.10 80 6', '10.200.0.10']), backends: new Set(['10.0.1.2 8080 6', '10.0.1.2']) };
  const tcp = (src: string, sport: number, dst: string, dport: number): Buffer => {
    const b = Buffer.alloc(40);
    b[0] = 0x45;
    b[9] = 6;
    Buffer.from(src.split('.').map(Number)).copy(b, 12);
    Buffer.from(dst.split('.').map(Number)).copy(b, 16);
    b.writeUInt16BE(sport, 20);
    b.writeUInt16BE(dport, 22);
    return b;
  };
  assert.equal(wireSide(tcp('198.51.100.7', 4000, '10.200.0.10', 80), sides), 'read');
  assert.equal(wireSide(tcp('198.51.100.7', 4000, '10.0.1.2', 8080), sides), 'written');
  assert.equal(wireSide(tcp('10.0.1.2', 8080, '198.51.100.7', 4000), sides), 'read');
  assert.equal(wireSide(tcp('10.200.0.10', 80, '198.51.100.7', 4000), sides), 'written');
});

function svc(name: string, vip: string, port: number, backends: Array<[string, number]>): ServiceConfig {
  return { name, vip, family: 4, port, proto: 'tcp', hash: '5tuple', backends: backends.map(([addr, p]) => ({ addr, family: 4, port: p, weight: 1 })), health: null, passive: null, onAllDown: 'drop', onDown: 'keep' };
}

test('trace hub: a slot per trace, the match installed and removed, records named and counted, bounded', async () => {
  const services = [svc('web', '10.200.0.10', 80, [['10.0.1.1', 8080], ['10.0.1.2', 8080]]), svc('web', '10.200.0.11', 80, [['10.0.2.1', 8080]])];
  const set: Array<[number, TraceMatch | null]> = [];
  let pending: TraceRecord[] = [];
  const dp = { ifname: 'l4nat0', setTrace: (s: number, m: TraceMatch | null) => void set.push([s, m]), drainTrace: () => ({ records: pending.splice(0), dropped: 0 }) };
  const slots = new Map<string, number>([['10.200.0.10:80/tcp', 0], [backendKey(services[0], services[0].backends[1]), 1]]);
  const hub = new TraceHub({ dp, services: () => services, serviceSlot: (id) => slots.get(id), backendSlot: (k) => slots.get(k), log: pino({ level: 'silent' }) });
  const req = (o: object) => ({ drops: false, count: 2, seconds: 30, wire: false, ...o });

  assert.throws(() => hub.open(req({ service: 'web' }), () => undefined), (e: unknown) => e instanceof ControlError && e.status === 400 && /has 2 VIP:port entries \(10\.200\.0\.10:80\/tcp, 10\.200\.0\.11:80\/tcp\)/.test(e.message));
  assert.throws(() => hub.open(req({ service: 'api' }), () => undefined), (e: unknown) => e instanceof ControlError && e.status === 404 && /no service "api"/.test(e.message));
  assert.throws(() => hub.open(req({ backend: { addr: '10.9.9.9', family: 4, port: 1 } }), () => undefined), (e: unknown) => e instanceof ControlError && e.status === 404);
  assert.equal(set.length, 0, 'a refused trace installs nothing');

  const events: TraceEvent[] = [];
  const s = hub.open(req({ service: '10.200.0.10:80', client: { addr: '198.51.100.7', family: 4 } }), (e) => events.push(e));
  assert.deepEqual(set[0], [0, { drops: false, service: { vip: '10.200.0.10', family: 4, port: 80, proto: 'tcp' }, client: { addr: '198.51.100.7', family: 4 } }]);
  assert.equal(nativeTraceMatch(set[0][1]!).flags, 1 | 4, 'CLIENT | SERVICE');
  const others = [1, 2, 3].map(() => hub.open(req({}), () => undefined));
  assert.throws(() => hub.open(req({}), () => undefined), (e: unknown) => e instanceof ControlError && e.status === 503);
  for (const o of others) o.close();

  const [rec] = decodeTraceRecords(rawRecord(SYN), DROPS);
  pending = [rec, { ...rec, matchMask: 2 }, rec, rec];
  hub.drain();
  const pk = events.filter((e) => e.type === 'packet');
  assert.equal(pk.length, 2, 'its own records, up to its count');
  assert.deepEqual(pk[0].type === 'packet' && [pk[0].service, pk[0].backend], ['10.200.0.10:80/tcp', '10.0.1.2:8080/tcp']);
  assert.deepEqual(events.at(-1), { type: 'end', reason: 'count', packets: 2 });
  assert.deepEqual(set.at(-1), [0, null], 'the match removed at the end');
  assert.equal(hub.running, 0);
  s.close(); // after the end: nothing more
  assert.equal(events.filter((e) => e.type === 'end').length, 1);
});

test('GET /v1/trace: authenticated, parameters checked, the stream from start to end, the match removed', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'l4nat-trace-'));
  try {
    const token = 'trace-test-token-0123456789';
    writeFileSync(join(dir, 'admin.token'), `${token}\n`, { mode: 0o600 });
    writeFileSync(join(dir, 'c.yaml'), `admin: {token_file: ${join(dir, 'admin.token')}}\nservices:\n  - name: web\n    vips: [10.200.0.10]\n    ports: [80]\n    backends: ["10.0.1.1:8080", "10.0.1.2:8080"]\n`);
    const opts = loadConfigFile(join(dir, 'c.yaml'));
    const log = pino({ level: 'silent' });
    const counters = { total: {}, drops: {}, perQueue: [], heartbeatsMs: [], services: new Map(), backends: new Map() };
    const bal = {
      tableOptions: { hashKey: Buffer.alloc(16), maglevSize: 7, timeouts: { tcpSyn: 30, tcpEstablished: 900, tcpFin: 120, tcpClose: 10, udp: 300 }, icmpEcho: true, icmpTranslate: true },
      setServices: async () => ({ changedSlots: {} }),
      backendSlot: (k: string) => (k.endsWith('10.0.1.2:8080/tcp') ? 1 : 0),
      serviceSlot: () => 0,
      dp: { counters: () => counters, flowCount: () => 0 },
    };
    const ctrl = new Controller(bal as never, opts, log);
    await ctrl.start();
    const set: Array<[number, TraceMatch | null]> = [];
    const [rec] = decodeTraceRecords(rawRecord(SYN), DROPS);
    let pending: TraceRecord[] = [];
    const dp = { ifname: 'l4nat0', setTrace: (s: number, m: TraceMatch | null) => void set.push([s, m]), drainTrace: () => ({ records: pending.splice(0), dropped: 0 }) };
    const hub = new TraceHub({ dp, services: () => ctrl.current, serviceSlot: () => 0, backendSlot: bal.backendSlot, log });
    const app = await createAdminServer({ ctrl, admin: opts.admin, log, trace: hub });
    const auth = { authorization: `Bearer ${token}` };

    const noAuth = await app.inject({ method: 'GET', url: '/v1/trace' });
    assert.equal(noAuth.statusCode, 401);
    const unknown = await app.inject({ method: 'GET', url: '/v1/trace?port=80', headers: auth });
    assert.equal(unknown.statusCode, 400);
    assert.match(unknown.json<{ error: string }>().error, /unknown parameter "port"; expected client, service/);
    const badClient = await app.inject({ method: 'GET', url: '/v1/trace?client=nobody', headers: auth });
    assert.equal(badClient.statusCode, 400);
    assert.equal(badClient.json<{ error: string }>().error, 'querystring/client expects IP or IP:PORT (IPv6 as [IP]:PORT), port 1-65535, got "nobody"');
    assert.equal(set.length, 0, 'nothing installed by a refused request');

    setTimeout(() => (pending = [rec]), 100);
    const r = await app.inject({ method: 'GET', url: '/v1/trace?client=198.51.100.7&count=1&seconds=5', headers: auth });
    assert.equal(r.statusCode, 200);
    assert.equal(r.headers['content-type'], 'application/x-ndjson');
    const lines = r.body.trim().split('\n').map((l) => JSON.parse(l) as TraceEvent);
    assert.deepEqual(lines.map((l) => l.type), ['start', 'packet', 'end']);
    assert.deepEqual(lines[2], { type: 'end', reason: 'count', packets: 1 });
    assert.equal(lines[1].type === 'packet' && lines[1].backend, '10.0.1.2:8080/tcp');
    assert.deepEqual(set.map(([s, m]) => [s, m === null]), [[0, false], [0, true]], 'installed, then removed');
    await app.close();
    ctrl.stop();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
