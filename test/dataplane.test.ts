// The addon wrapper (src/dataplane/native.ts): argument validation without root; with root, in a throw-away network
// namespace: open/publish/start/counters/flows/close, and a process that exits without close() must not
// crash (Node may finalize the counters buffer before the handle at exit; the workers are stopped first).
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { test } from 'node:test';
import { Dataplane } from '../src/dataplane/native';
import { skipUnless } from './rigs/requirements';

const skip = skipUnless({ commands: ['ip'] });

test('bad options are rejected before anything is opened', () => {
  const base = { ifname: 'l4x0', queues: 1, flowCapacity: 1024, maxServices: 4, maxBackends: 4 };
  assert.throws(() => new Dataplane({ ...base, ifname: 'way-too-long-ifname' }), /ifname must be 1-15 characters/);
  assert.throws(() => new Dataplane({ ...base, queues: 0 }), /queues must be an integer from 1 to 256, got 0/);
  assert.throws(() => new Dataplane({ ...base, flowCapacity: 1.5 }), /flowCapacity must be an integer/);
  assert.throws(() => new Dataplane({ ...base, maxBackends: -1 }), /maxBackends must be an integer/);
  assert.throws(() => new Dataplane({ ...base, busyPollUs: 100_001 }), /busyPollUs must be an integer from 0 to 100000/);
  assert.throws(() => new Dataplane({ ...base, busyPollAdaptive: 1 as unknown as boolean }), /busyPollAdaptive must be true or false, got 1/);
});

test('bad data-plane environment settings are rejected by name, with what is expected', () => {
  const base = { ifname: 'l4x0', queues: 1, flowCapacity: 1024, maxServices: 4, maxBackends: 4 };
  const cases: [string, string, RegExp][] = [
    ['L4NAT_BUSY_POLL_US', '50us', /L4NAT_BUSY_POLL_US must be microseconds from 0 to 100000, got "50us"/],
    ['L4NAT_BUSY_POLL_ADAPTIVE', 'yes', /L4NAT_BUSY_POLL_ADAPTIVE must be 0 \(off\) or 1 \(on\), got "yes"/],
    ['L4NAT_UDP_COALESCE', 'true', /L4NAT_UDP_COALESCE must be 0 \(off\) or 1 \(on\), got "true"/],
    ['L4NAT_SYNC_LOG', 'on', /L4NAT_SYNC_LOG must be 0 \(off\) or 1 \(on\), got "on"/],
  ];
  for (const [name, value, expected] of cases) {
    const saved = process.env[name];
    process.env[name] = value;
    try {
      assert.throws(() => new Dataplane(base), expected);
    } finally {
      if (saved === undefined) delete process.env[name];
      else process.env[name] = saved;
    }
  }
});

function inNetns(script: string): { status: number | null; stdout: string; stderr: string } {
  const ns = `l4dp-${randomBytes(3).toString('hex')}`;
  execFileSync('ip', ['netns', 'add', ns]);
  try {
    const r = spawnSync('ip', ['netns', 'exec', ns, process.execPath, '-e', script], { encoding: 'utf8', timeout: 30_000 });
    return { status: r.status, stdout: r.stdout, stderr: r.stderr };
  } finally {
    execFileSync('ip', ['netns', 'del', ns]);
  }
}

const native = JSON.stringify(join(__dirname, '..', 'src', 'dataplane', 'native.js'));
const tables = JSON.stringify(join(__dirname, '..', 'src', 'dataplane', 'tables.js'));

test('open, publish, start, read counters, list flows, close', { skip }, () => {
  const r = inNetns(`
    const { Dataplane } = require(${native});
    const { buildTables, SlotAllocator } = require(${tables});
    const dp = new Dataplane({ ifname: 'l4t0', queues: 2, flowCapacity: 4096, maxServices: 4, maxBackends: 8 });
    const svc = [{ vip: '10.9.0.1', family: 4, port: 80, proto: 'tcp', hash: '5tuple',
      backends: [{ addr: '10.9.1.1', family: 4, port: 8080, weight: 1 }], allowSources: ['10.0.0.0/8'], newFlowRate: { rate: 100, burst: 10 } }];
    const t = buildTables(svc, new SlotAllocator(4), new SlotAllocator(8),
      { hashKey: Buffer.alloc(16, 1), maglevSize: 13, timeouts: { tcpSyn: 30, tcpEstablished: 900, tcpFin: 120, tcpClose: 10, udp: 300 }, icmpEcho: true, icmpTranslate: true });
    dp.publish(t.input);
    let rejected = '';
    try { dp.publish({ ...t.input, rings: new Uint32Array(13).fill(7) }); } catch (e) { rejected = e.message; }
    let badLocal = '';
    try { dp.publish({ ...t.input, localAddrs4: new Uint8Array(5) }); } catch (e) { badLocal = e.message; }
    dp.publish({ ...t.input, localAddrs4: new Uint8Array([10, 9, 0, 254]), localAddrs6: new Uint8Array(16) });
    dp.start();
    const c = dp.counters();
    // A flow: a SYN from this namespace to the VIP, routed into the TUN (the rewritten SYN the worker writes back
    // has a local source and goes nowhere; the entry is made when the worker forwards it).
    const { execFileSync } = require('node:child_process');
    const ip = (...a) => execFileSync('ip', a);
    ip('link', 'set', 'l4t0', 'up');
    ip('addr', 'add', '10.9.2.1/24', 'dev', 'l4t0');
    ip('route', 'add', '10.9.0.1/32', 'dev', 'l4t0', 'src', '10.9.2.1');
    const before = dp.flows();
    const sock = require('node:net').connect({ host: '10.9.0.1', port: 80, localPort: 40123 });
    sock.on('error', () => {});
    (async () => {
      let flows = [];
      for (let i = 0; i < 100 && flows.length === 0; i++) {
        await new Promise((r) => setTimeout(r, 20));
        flows = dp.flows();
      }
      sock.destroy();
      dp.close(false);
      console.log(JSON.stringify({ queues: c.perQueue.length, drops: Object.keys(c.drops).length, before: before.length, flows, bk: t.backendSlots.get('10.9.0.1:80/tcp|10.9.1.1:8080/tcp'), svc: t.serviceSlots.get('10.9.0.1:80/tcp'), offloads: dp.offloads, rejected, badLocal, beats: c.heartbeatsMs.length }));
    })();
  `);
  assert.equal(r.status, 0, r.stderr);
  const o = JSON.parse(r.stdout.trim().split('\n').pop() as string);
  assert.equal(o.queues, 2);
  assert.equal(o.beats, 2);
  assert.ok(o.drops >= 15, 'every drop reason is named');
  assert.ok(o.offloads.includes('tso4') && o.offloads.includes('csum'), `offloads ${o.offloads}`);
  assert.match(o.rejected, /rings\[0\]: backend slot 7 does not exist/);
  assert.equal(o.before, 0, 'no flow before the SYN');
  const [f, ...more] = o.flows as Array<Record<string, unknown>>;
  assert.deepEqual(more, [], 'one flow');
  const { idleSeconds, ageSeconds, ...entry } = f;
  assert.deepEqual(entry, { client: '10.9.2.1', clientPort: 40123, vip: '10.9.0.1', vipPort: 80, proto: 'tcp', backendSlot: o.bk, serviceSlot: o.svc, state: 'SYN_SENT' });
  assert.ok((idleSeconds as number) <= 1, `idle ${String(idleSeconds)} s`);
  assert.ok((ageSeconds as number) <= 4, `age ${String(ageSeconds)} s (to 4 s)`);
  assert.match(o.badLocal, /localAddrs4\?: Uint8Array\(4 each\)/, 'the host addresses must be whole addresses');
});

/** A script line: publishes an empty table on dp (workers start only once one is in). */
const EMPTY_TABLE = `
    const { buildTables: bt0, SlotAllocator: sa0 } = require(${tables});
    dp.publish(bt0([], new sa0(4), new sa0(4), { hashKey: Buffer.alloc(16, 1), maglevSize: 13, timeouts: { tcpSyn: 30, tcpEstablished: 900, tcpFin: 120, tcpClose: 10, udp: 300 }, icmpEcho: true, icmpTranslate: true }).input);`;

test('a process that exits with the data plane still running exits cleanly (no crash at teardown)', { skip }, () => {
  const r = inNetns(`
    const { Dataplane } = require(${native});
    const dp = new Dataplane({ ifname: 'l4t0', queues: 2, flowCapacity: 4096, maxServices: 4, maxBackends: 8 });
    ${EMPTY_TABLE}
    dp.start();
    setTimeout(() => process.exit(0), 300);
  `);
  assert.equal(r.status, 0, `exit status ${r.status}: ${r.stderr}`);
});

test('the native watchdog pings NOTIFY_SOCKET only while every worker is fresh, and stops with the data plane', { skip }, () => {
  const r = inNetns(`
    const { Dataplane } = require(${native});
    const unix = require('unix-dgram');
    const path = require('path').join(require('os').tmpdir(), 'l4wd-' + process.pid + '.sock');
    let got = 0;
    const sock = unix.createSocket('unix_dgram', (buf) => { if (buf.toString() === 'WATCHDOG=1') got++; });
    sock.bind(path);
    const dp = new Dataplane({ ifname: 'l4wd0', queues: 2, flowCapacity: 1024, maxServices: 4, maxBackends: 4 });
    const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
    (async () => {
      dp.startWatchdog(path, 50, 2000);
      await sleep(400);
      const idle = { ...dp.watchdogStats(), got };           // workers not started: nothing sent
      ${EMPTY_TABLE}
      dp.start();
      await sleep(600);
      const running = { ...dp.watchdogStats(), got };
      dp.close(false);
      const n = got;
      await sleep(300);
      console.log(JSON.stringify({ idle, running, afterClose: got - n }));
      sock.close();
      require('fs').rmSync(path, { force: true });
    })().catch((e) => { console.error(e); process.exit(1); });
  `);
  assert.equal(r.status, 0, r.stderr);
  const o = JSON.parse(r.stdout.trim()) as { idle: { pings: number; withheld: number; got: number }; running: { pings: number; got: number; running: boolean }; afterClose: number };
  assert.equal(o.idle.pings, 0, 'no ping before the workers run');
  assert.ok(o.idle.withheld >= 4, `withheld ${o.idle.withheld}`);
  assert.equal(o.idle.got, 0);
  assert.ok(o.running.pings >= 5 && o.running.got >= 5 && o.running.running, JSON.stringify(o.running));
  assert.ok(o.afterClose <= 1, `${o.afterClose} pings after close`);
});

test('workers start only once a table is in; packets that came before wait in the TUN and are forwarded with it', { skip }, () => {
  const r = inNetns(`
    const { execFileSync } = require('child_process');
    const dgram = require('dgram');
    const { Dataplane } = require(${native});
    const { buildTables, SlotAllocator } = require(${tables});
    const ip = (...a) => execFileSync('ip', a);
    const dp = new Dataplane({ ifname: 'l4t0', queues: 2, flowCapacity: 4096, maxServices: 4, maxBackends: 8 });
    let refused = '';
    try { dp.start(); } catch (e) { refused = e.message; }
    ip('link', 'set', 'lo', 'up');
    ip('addr', 'add', '10.9.9.1/32', 'dev', 'lo');
    ip('link', 'set', 'l4t0', 'up');
    ip('route', 'add', '10.9.0.1/32', 'dev', 'l4t0', 'src', '10.9.9.1');
    const sock = dgram.createSocket('udp4');
    (async () => {
      for (let i = 0; i < 20; i++) await new Promise((res, rej) => sock.send(Buffer.from('x' + i), 80, '10.9.0.1', (e) => (e ? rej(e) : res())));
      sock.close();
      await new Promise((res) => setTimeout(res, 200)); // nobody reads yet
      const before = dp.counters().total;
      const svc = [{ vip: '10.9.0.1', family: 4, port: 80, proto: 'udp', hash: '5tuple', backends: [{ addr: '10.9.1.1', family: 4, port: 8080, weight: 1 }] }];
      dp.publish(buildTables(svc, new SlotAllocator(4), new SlotAllocator(8),
        { hashKey: Buffer.alloc(16, 1), maglevSize: 13, timeouts: { tcpSyn: 30, tcpEstablished: 900, tcpFin: 120, tcpClose: 10, udp: 300 }, icmpEcho: true, icmpTranslate: true }).input);
      dp.start();
      const t0 = Date.now();
      while (dp.counters().total.forward < 20 && Date.now() - t0 < 5000) await new Promise((res) => setTimeout(res, 50));
      const after = dp.counters().total;
      dp.close(false);
      console.log(JSON.stringify({ refused, before: before.rx_packets, rx: after.rx_packets, forward: after.forward }));
    })().catch((e) => { console.error(e); process.exit(1); });
  `);
  assert.equal(r.status, 0, r.stderr);
  const o = JSON.parse(r.stdout.trim()) as { refused: string; before: number; rx: number; forward: number };
  assert.match(o.refused, /publish a table before starting the workers/);
  assert.equal(o.before, 0, 'nothing read before the workers start');
  assert.equal(o.forward, 20, 'every datagram sent before the table was forwarded once it was in');
});

test('deleting flows and counting them page through the table; a cursor past the table is refused by name', { skip }, () => {
  const r = inNetns(`
    const { Dataplane, FLOW_SCAN_PER_CALL } = require(${native});
    const dp = new Dataplane({ ifname: 'l4t0', queues: 1, flowCapacity: 4 * FLOW_SCAN_PER_CALL, maxServices: 4, maxBackends: 8 });
    (async () => {
      let between = false;
      const p = dp.deleteFlows({ backendSlot: 0 });
      setImmediate(() => { between = true; });
      const deleted = await p;
      let cursorError = '';
      try { dp.flowPage({ cursor: dp.flowCapacity + 1 }); } catch (e) { cursorError = e.message; }
      const last = dp.flowPage({ cursor: dp.flowCapacity });
      const page = dp.flowStatsPage(0);
      const lastStats = dp.flowStatsPage(3 * FLOW_SCAN_PER_CALL);
      const whole = dp.flowStats();
      dp.close(false);
      console.log(JSON.stringify({ deleted, between, cursorError, last, capacity: dp.flowCapacity, statsNext: [page.next, lastStats.next], whole: [whole.total, whole.backends.length] }));
    })().catch((e) => { console.error(e); process.exit(1); });
  `);
  assert.equal(r.status, 0, r.stderr);
  const o = JSON.parse(r.stdout.trim()) as { deleted: number; between: boolean; cursorError: string; last: { flows: unknown[]; next: number | null }; capacity: number; statsNext: Array<number | null>; whole: number[] };
  assert.equal(o.deleted, 0);
  assert.equal(o.between, true, 'other callbacks ran while the delete walked the table');
  assert.match(o.cursorError, new RegExp(`cursor must be the previous page's next, an integer from 0 to the flow table's capacity \\(${o.capacity}\\), got ${o.capacity + 1}`));
  assert.deepEqual(o.last, { flows: [], next: null }, 'the capacity itself is the end of the table');
  assert.deepEqual(o.statsNext, [o.capacity / 4, null], 'statistics come a page at a time');
  assert.deepEqual(o.whole, [0, 8]);
});

// The state filter is applied where the other conditions are (native/core/flow_query.h), so a page's limit
// counts entries in the states asked for: one SYN_SENT entry among twenty UDP ones is the page of one.
test('a state filter takes a page of entries in those states; statistics count them per slot', { skip }, () => {
  const r = inNetns(`
    const { Dataplane } = require(${native});
    const { buildTables, SlotAllocator } = require(${tables});
    const { execFileSync } = require('node:child_process');
    const dgram = require('node:dgram');
    const ip = (...a) => execFileSync('ip', a);
    const dp = new Dataplane({ ifname: 'l4t0', queues: 1, flowCapacity: 4096, maxServices: 4, maxBackends: 8 });
    const bk = [{ addr: '10.9.1.1', family: 4, port: 8080, weight: 1 }];
    const svc = [{ vip: '10.9.0.1', family: 4, port: 80, proto: 'tcp', hash: '5tuple', backends: bk },
                 { vip: '10.9.0.1', family: 4, port: 53, proto: 'udp', hash: '5tuple', backends: bk }];
    const t = buildTables(svc, new SlotAllocator(4), new SlotAllocator(8),
      { hashKey: Buffer.alloc(16, 1), maglevSize: 13, timeouts: { tcpSyn: 30, tcpEstablished: 900, tcpFin: 120, tcpClose: 10, udp: 300 }, icmpEcho: true, icmpTranslate: true });
    dp.publish(t.input);
    dp.start();
    ip('link', 'set', 'l4t0', 'up');
    ip('addr', 'add', '10.9.2.1/24', 'dev', 'l4t0');
    ip('route', 'add', '10.9.0.1/32', 'dev', 'l4t0', 'src', '10.9.2.1');
    (async () => {
      const socks = [];
      for (let i = 0; i < 20; i++) {
        const s = dgram.createSocket('udp4');
        await new Promise((res) => s.bind(41000 + i, '10.9.2.1', res));
        await new Promise((res, rej) => s.send(Buffer.from('x'), 53, '10.9.0.1', (e) => (e ? rej(e) : res())));
        socks.push(s);
      }
      const sock = require('node:net').connect({ host: '10.9.0.1', port: 80, localAddress: '10.9.2.1', localPort: 40123 });
      sock.on('error', () => {});
      for (let i = 0; i < 100 && dp.flowCount() < 21; i++) await new Promise((res) => setTimeout(res, 20));
      const syn = dp.flowPage({ states: ['SYN_SENT'], limit: 1 });
      const udp = dp.flowPage({ states: ['UDP'], limit: 5 });
      const both = dp.flows({ states: ['UDP', 'SYN_SENT'] });
      const established = dp.flows({ client: '10.9.2.1', states: ['ESTABLISHED'] });
      let refused = '';
      try { dp.flowPage({ states: ['LISTEN'] }); } catch (e) { refused = e.message; }
      const stats = dp.flowStats();
      sock.destroy();
      for (const s of socks) s.close();
      dp.close(false);
      console.log(JSON.stringify({ syn: syn.flows.map((f) => [f.state, f.vipPort, f.clientPort]), udp: udp.flows.map((f) => f.state), udpNext: udp.next !== null, both: both.length, established: established.length, refused,
        stats: { total: stats.total, tcpService: stats.services[t.serviceSlots.get('10.9.0.1:80/tcp')], udpService: stats.services[t.serviceSlots.get('10.9.0.1:53/udp')] } }));
    })().catch((e) => { console.error(e); process.exit(1); });
  `);
  assert.equal(r.status, 0, r.stderr);
  const o = JSON.parse(r.stdout.trim().split('\n').pop() as string);
  assert.deepEqual(o.syn, [['SYN_SENT', 80, 40123]], 'the one SYN_SENT entry is the page, wherever it lies among the UDP ones');
  assert.deepEqual(o.udp, ['UDP', 'UDP', 'UDP', 'UDP', 'UDP']);
  assert.equal(o.udpNext, true, 'five of twenty: the page goes on');
  assert.equal(o.both, 21);
  assert.equal(o.established, 0);
  assert.match(o.refused, /state must be one of SYN_SENT, SYN_RECV, ESTABLISHED, FIN_WAIT, CLOSE, UDP, got "LISTEN"/);
  assert.deepEqual(o.stats, { total: 21, tcpService: 1, udpService: 20 });
});

test('explain and flow-move questions through the addon: read-only answers, bad input refused naming what is wrong', { skip }, () => {
  const r = inNetns(`
    const { Dataplane } = require(${native});
    const { buildTables, SlotAllocator } = require(${tables});
    const dp = new Dataplane({ ifname: 'l4t0', queues: 1, flowCapacity: 4096, maxServices: 4, maxBackends: 8 });
    const err = (f) => { try { f(); return 'no error'; } catch (e) { return e.message; } };
    const q = { proto: 'tcp', client: '10.9.2.1', clientPort: 40123, vip: '10.9.0.1', vipPort: 80 };
    const noTable = err(() => dp.explain(q));
    const svc = [{ vip: '10.9.0.1', family: 4, port: 80, proto: 'tcp', hash: '5tuple',
      backends: [{ addr: '10.9.1.1', family: 4, port: 8080, weight: 1 }], allowSources: ['10.0.0.0/8'], newFlowRate: { rate: 100, burst: 10 } }];
    const t = buildTables(svc, new SlotAllocator(4), new SlotAllocator(8),
      { hashKey: Buffer.alloc(16, 1), maglevSize: 13, timeouts: { tcpSyn: 30, tcpEstablished: 900, tcpFin: 120, tcpClose: 10, udp: 300 }, icmpEcho: true, icmpTranslate: true });
    dp.publish(t.input);
    dp.start();
    const fresh = dp.explain(q);
    const denied = dp.explain({ ...q, client: '192.0.2.1' });
    const bad = [err(() => dp.explain({ ...q, proto: 'sctp' })), err(() => dp.explain({ ...q, client: '2001:db8::1' })), err(() => dp.explain({ ...q, vipPort: 0 })),
      err(() => dp.flowMovesPage({ services: new Uint32Array([0, 0, 0, 13]), rings: new Uint32Array(5) })), err(() => dp.flowMovesPage({ services: new Uint32Array([0, 0, 0]), rings: new Uint32Array(13) }))];
    const { execFileSync } = require('node:child_process');
    const ip = (...a) => execFileSync('ip', a);
    ip('link', 'set', 'l4t0', 'up');
    ip('addr', 'add', '10.9.2.1/24', 'dev', 'l4t0');
    ip('route', 'add', '10.9.0.1/32', 'dev', 'l4t0', 'src', '10.9.2.1');
    const sock = require('node:net').connect({ host: '10.9.0.1', port: 80, localPort: 40123 });
    sock.on('error', () => {});
    (async () => {
      for (let i = 0; i < 100 && dp.flows().length === 0; i++) await new Promise((r) => setTimeout(r, 20));
      const pinned = dp.explain(q);
      const pinnedSyn = dp.explain({ ...q, syn: true }); // its backend in the ring, the ring's choice: a SYN follows the entry
      bad.push(err(() => dp.explain({ ...q, proto: 'udp', syn: true })), err(() => dp.explain({ ...q, syn: 1 })));
      const kept = dp.flowMovesPage({ services: new Uint32Array([0, 0, 0, 13]), rings: t.input.rings });
      const gone = dp.flowMovesPage({ services: new Uint32Array([0, 0, 0, 0]), rings: new Uint32Array(0) });
      const flows = dp.flows().length;
      sock.destroy();
      dp.close(false);
      console.log(JSON.stringify({ noTable, fresh, denied, bad, pinned, pinnedSyn, kept: [...kept.kept], movedKept: [...kept.moved], gone: [...gone.moved], next: kept.next, flows, bk: t.backendSlots.get('10.9.0.1:80/tcp|10.9.1.1:8080/tcp') }));
    })();
  `);
  assert.equal(r.status, 0, r.stderr);
  const o = JSON.parse(r.stdout.trim().split('\n').pop() as string);
  assert.match(o.noTable, /no table published yet/);
  assert.equal(o.fresh.verdict, 'ring');
  assert.equal(o.fresh.backend.slot, o.bk);
  assert.equal(o.fresh.backend.addr, '10.9.1.1');
  assert.equal(o.fresh.backend.port, 8080);
  assert.deepEqual(o.fresh.vip, { addr: '10.9.0.1', port: 80 });
  assert.deepEqual(o.fresh.acl, { entries: 1, index: 0, allowed: true });
  assert.deepEqual(o.fresh.rateLimit, { rate: 100, burst: 10, tokens: 10, allowsNewFlow: true });
  assert.equal(o.fresh.entry, null);
  assert.equal(o.fresh.ring.backendSlot, o.bk);
  assert.ok(o.fresh.generation >= 1);
  assert.equal(o.denied.verdict, 'drop');
  assert.equal(o.denied.dropReason, 'acl_denied');
  assert.deepEqual(o.denied.acl, { entries: 1, index: null, allowed: false });
  assert.match(o.bad[0], /proto must be tcp or udp, got "sctp"/);
  assert.match(o.bad[1], /client 2001:db8::1 is IPv6 but VIP 10\.9\.0\.1 is IPv4/);
  assert.match(o.bad[2], /VIP port must be an integer from 1 to 65535, got 0/);
  assert.match(o.bad[3], /flowMoves\(handle, \{services: Uint32Array of \[service_slot/);
  assert.match(o.bad[4], /flowMoves/);
  assert.equal(o.flows, 1, 'one flow');
  assert.equal(o.pinned.verdict, 'entry');
  assert.equal(o.pinned.entry.backendSlot, o.bk);
  assert.equal(o.pinned.entry.state, 'SYN_SENT');
  assert.equal(o.pinned.entry.left, null);
  assert.deepEqual([o.pinnedSyn.verdict, o.pinnedSyn.entry.left], ['entry', null]);
  assert.match(o.bad[5], /a SYN is a TCP packet: give proto tcp/);
  assert.match(o.bad[6], /syn must be true or false, got 1/);
  assert.equal(o.kept[o.bk], 1, 'the ring it runs keeps the flow');
  assert.equal(o.movedKept[o.bk], 0);
  assert.equal(o.gone[o.bk], 1, 'an empty ring moves it');
  assert.equal(o.next, null, 'a 4096-entry table is one page');
});

test('flow-state sync through the addon: peers\' entries learned (confirmed or half-open) and listed, checked, forgotten; bad records and a missing table refused', { skip }, () => {
  const r = inNetns(`
    const { Dataplane } = require(${native});
    const { buildTables, SlotAllocator } = require(${tables});
    const dp = new Dataplane({ ifname: 'l4t0', queues: 1, flowCapacity: 4096, maxServices: 4, maxBackends: 8 });
    const svc = [{ vip: '10.9.0.1', family: 4, port: 80, proto: 'tcp', hash: '5tuple',
      backends: [{ addr: '10.9.1.1', family: 4, port: 8080, weight: 1 }, { addr: '10.9.1.2', family: 4, port: 8080, weight: 0 }] }];
    const t = buildTables(svc, new SlotAllocator(4), new SlotAllocator(8),
      { hashKey: Buffer.alloc(16, 1), maglevSize: 13, timeouts: { tcpSyn: 30, tcpEstablished: 900, tcpFin: 120, tcpClose: 10, udp: 300 }, icmpEcho: true, icmpTranslate: true });
    let early = '';
    try { dp.syncApply([]); } catch (e) { early = e.code; }
    dp.publish(t.input);
    const b2 = t.backendSlots.get('10.9.0.1:80/tcp|10.9.1.2:8080/tcp');
    const s = t.serviceSlots.get('10.9.0.1:80/tcp');
    const rec = (cport, state) => ({ op: 'add', family: 4, proto: 6, client: '10.9.2.1', cport, vip: '10.9.0.1', vport: 80, backend: b2, svc: s, state });
    const applied = dp.syncApply([rec(40000, 4), rec(40001, 2), { ...rec(40002, 4), backend: 7 }]);
    const flows = dp.flows();
    const check = Array.from(dp.syncCheck([rec(40000, 4), rec(40009, 4)]));
    const forgot = dp.syncApply([{ ...rec(40001, 2), op: 'del' }]);
    const left = dp.flows().length;
    const drained = dp.syncDrain();
    let bad = '';
    const { loadAddon } = require(${JSON.stringify(join(__dirname, '..', 'src', 'dataplane', 'addon.js'))});
    try { loadAddon().syncApply(dp['handle'], new Uint8Array(55)); } catch (e) { bad = e.message; }
    dp.close(false);
    console.log(JSON.stringify({ early, applied, flows, check, forgot, left, drained: drained.records.length, bad, b2, noBackend: 0xffffffff }));
  `);
  assert.equal(r.status, 0, r.stderr);
  const o = JSON.parse(r.stdout.trim().split('\n').pop() as string);
  assert.equal(o.early, 'ENODATA', 'before the first table: refused, nothing learned');
  assert.deepEqual(o.applied, { learned: 2, kept: 0, forgotten: 0, invalid: 1 }, 'the record naming a slot that is not the service\'s backend is invalid');
  const byPort = new Map((o.flows as Array<{ clientPort: number; backendSlot: number; state: string; sync?: string }>).map((f) => [f.clientPort, f]));
  assert.deepEqual([byPort.get(40000)?.backendSlot, byPort.get(40000)?.state, byPort.get(40000)?.sync], [o.b2, 'ESTABLISHED', 'learned'], 'confirmed: established, listed learned');
  assert.deepEqual([byPort.get(40001)?.state, byPort.get(40001)?.sync], ['SYN_RECV', 'learned'], 'unconfirmed: half-open');
  assert.deepEqual(o.check, [o.noBackend, o.noBackend], 'a learned entry is not this host\'s own; a missing one neither');
  assert.equal(o.forgot.forgotten, 1);
  assert.equal(o.left, 1);
  assert.equal(o.drained, 0, 'sync logs off: nothing logged');
  assert.match(o.bad, /syncApply\(handle, records: Uint8Array of syncRecordBytes-byte records, 8-byte aligned\)/);
});
