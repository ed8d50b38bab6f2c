// Unit tests of the host set-up that need no root: plans, diffs, orders, message formatting, error shapes and
// sysctl helpers (against a temporary directory standing in for /proc/sys).
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { mkdtempSync, mkdirSync, writeFileSync, readFileSync, rmSync } from 'fs';
import { tmpdir } from 'os';
import { join } from 'path';
import type { Logger } from '../src/util/log';
import { bufferToIp, canonicalIp, exactPrefixes, ipToBuffer } from '../src/host/addr';
import {
  ADD_ORDER, BLACKHOLE_METRIC, Backend, HostObject, PlanInput, RTPROT_L4NAT, RouteObject, RuleObject, TEARDOWN_ORDER,
  checkParams, describe, diff, objectKey, planHost, portRuns, roleOf, teardownOrder,
} from '../src/host/plan';
import { routeFromMessage, routeToMessage, ruleFromMessage, ruleToDelete, ruleToMessage } from '../src/host/messages';
import { toRtnlError, RtnlError } from '../src/host/rtnl';
import { configureTunSysctls, enableForwarding, readSysctl, sysctlPath } from '../src/host/sysctl';
import { HostSetup } from '../src/host/setup';

interface LogLine { level: string; obj: unknown; msg?: string }
function fakeLog(): { log: Logger; lines: LogLine[] } {
  const lines: LogLine[] = [];
  const at = (level: string) => (obj: unknown, msg?: string) => { lines.push({ level, obj, msg: typeof obj === 'string' ? obj : msg }); };
  const log = { info: at('info'), warn: at('warn'), error: at('error'), debug: at('debug'), trace: at('trace'), fatal: at('fatal') };
  return { log: log as unknown as Logger, lines };
}

const base = { tunIfindex: 7, table: 100, rulePref: 1000 };

function rules(objs: HostObject[]): RuleObject[] {
  return objs.filter((o): o is RuleObject => o.kind === 'rule');
}
function routes(objs: HostObject[]): RouteObject[] {
  return objs.filter((o): o is RouteObject => o.kind === 'route');
}

test('addresses: parse and canonical form', () => {
  assert.deepEqual([...ipToBuffer('192.0.2.1', 4)], [192, 0, 2, 1]);
  assert.equal(canonicalIp('2001:DB8:0:0:1:0:0:1', 6), '2001:db8::1:0:0:1');
  assert.equal(canonicalIp('2001:db8::', 6), '2001:db8::');
  assert.equal(canonicalIp('::', 6), '::');
  assert.equal(canonicalIp('::1', 6), '::1');
  assert.equal(canonicalIp('fe80:0:0:0:0:0:0:1', 6), 'fe80::1');
  assert.equal(canonicalIp('2001:db8:1:2:3:4:5:6', 6), '2001:db8:1:2:3:4:5:6');
  assert.equal(canonicalIp('2001:0:0:1:0:0:0:1', 6), '2001:0:0:1::1'); // longest run wins
  assert.equal(canonicalIp('::ffff:192.0.2.1', 6), '::ffff:c000:201');
  assert.equal(bufferToIp(ipToBuffer('2001:db8::10', 6)), '2001:db8::10');
  assert.throws(() => ipToBuffer('10.0.0.1', 6), /not an IPv6 address/);
  assert.throws(() => ipToBuffer('::1', 4), /not an IPv4 address/);
  assert.throws(() => ipToBuffer('10.0.0.1/32', 4), /not an IPv4 address/);
});

test('plan: 3 backends on one port share rules: .1/32 and .2/31, each for tcp port 80 and icmp', () => {
  const plan = planHost({
    ...base,
    vips: [{ family: 4, addr: '203.0.113.10' }],
    backends: ['10.0.0.1', '10.0.0.2', '10.0.0.3'].map((addr) => ({ family: 4 as const, addr, proto: 'tcp' as const, port: 80 })),
  });
  const r = rules(plan);
  assert.deepEqual(r.map((x) => [x.src, x.srcLen, x.ipProto, x.sport]), [
    ['10.0.0.1', 32, 6, { start: 80, end: 80 }],
    ['10.0.0.2', 31, 6, { start: 80, end: 80 }],
    ['10.0.0.1', 32, 1, undefined],
    ['10.0.0.2', 31, 1, undefined],
  ]);
  for (const x of r) {
    assert.equal(x.pref, 1000);
    assert.equal(x.table, 100);
    assert.equal(x.protocol, RTPROT_L4NAT);
  }
  const rt = routes(plan);
  assert.deepEqual(rt.map((x) => [x.table, x.dst, x.dstLen, x.type, x.oif, x.metric]), [
    [100, '0.0.0.0', 0, 'blackhole', 0, BLACKHOLE_METRIC],
    [100, '0.0.0.0', 0, 'unicast', 7, 0],
    [254, '203.0.113.10', 32, 'unicast', 7, 0],
  ]);
  assert.ok(plan.every((o) => o.protocol === 0xf4));
  // No IPv6 in use: no IPv6 table routes.
  assert.ok(plan.every((o) => o.family === 4));
});

test('exactPrefixes: the fewest prefixes holding exactly the given addresses', () => {
  const text = (f: 4 | 6, a: string[]): string[] => exactPrefixes(f, a).map((p) => `${p.addr}/${p.len}`);
  assert.deepEqual(text(4, ['10.0.0.6', '10.0.0.1', '10.0.0.3', '10.0.0.2', '10.0.0.4', '10.0.0.5', '10.0.0.5']),
    ['10.0.0.1/32', '10.0.0.2/31', '10.0.0.4/31', '10.0.0.6/32']);
  assert.deepEqual(text(4, ['10.0.0.0', '10.0.0.1', '10.0.0.2', '10.0.0.3', '10.0.0.9']), ['10.0.0.0/30', '10.0.0.9/32']);
  // A run across an octet boundary, and the ends of the address space.
  assert.deepEqual(text(4, ['10.0.0.254', '10.0.0.255', '10.0.1.0', '10.0.1.1']), ['10.0.0.254/31', '10.0.1.0/31']);
  assert.deepEqual(text(4, ['255.255.255.255', '0.0.0.0']), ['0.0.0.0/32', '255.255.255.255/32']);
  assert.deepEqual(text(6, ['2001:db8::4', '2001:db8::5', '2001:db8::6', '2001:db8::7', '2001:db8::1:0']), ['2001:db8::4/126', '2001:db8::1:0/128']);
  assert.deepEqual(text(4, []), []);
  assert.throws(() => exactPrefixes(4, ['10.0.0.1/32']), /not an IPv4 address/);
  // Exact: every address of every prefix is one of the inputs, and every input is in one prefix.
  const rnd = mulberry(7);
  for (let trial = 0; trial < 50; trial++) {
    const set = new Set<number>();
    for (let i = 0; i < 40; i++) set.add(Math.floor(rnd() * 256));
    const got = exactPrefixes(4, [...set].map((n) => `192.0.2.${n}`));
    const covered: number[] = [];
    for (const p of got) {
      const first = Number(p.addr.split('.')[3]);
      assert.equal(first % 2 ** (32 - p.len), 0, `${p.addr}/${p.len} is aligned`);
      for (let n = first; n < first + 2 ** (32 - p.len); n++) covered.push(n);
    }
    assert.deepEqual(covered, [...set].sort((a, b) => a - b));
  }
});

function mulberry(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

test('plan: 1,000 backends with the same ports get rules per prefix, not 3,000 rules', () => {
  const backends: Backend[] = [];
  for (let i = 0; i < 1000; i++) {
    const addr = `10.1.${Math.floor(i / 250)}.${(i % 250) + 1}`;
    for (const proto of ['tcp', 'udp'] as const) backends.push({ family: 4, addr, proto, port: 8080 });
  }
  let r = rules(planHost({ ...base, vips: [], backends }));
  // 10.1.0.1-250, 10.1.1.1-250, ...: four runs of 250 addresses, each 13 prefixes (.1/32, .2/31, .4/30, ...,
  // .128/26, .192/27, ..., .248/31, .250/32), each with a tcp, a udp and an icmp rule.
  assert.equal(r.length, 4 * 13 * 3);
  // One run of 1,024 aligned addresses is one prefix.
  const aligned: Backend[] = [];
  for (let i = 0; i < 1024; i++) aligned.push({ family: 4, addr: `10.2.${i >> 8}.${i & 255}`, proto: 'tcp', port: 80 });
  r = rules(planHost({ ...base, vips: [], backends: aligned }));
  assert.deepEqual(r.map((x) => [x.src, x.srcLen, x.ipProto]), [['10.2.0.0', 22, 6], ['10.2.0.0', 22, 1]]);
  // Backends with other ports get rules of their own; the icmp rule still covers all addresses.
  aligned[1] = { family: 4, addr: '10.2.0.1', proto: 'tcp', port: 81 };
  r = rules(planHost({ ...base, vips: [], backends: aligned }));
  assert.ok(r.some((x) => x.src === '10.2.0.1' && x.srcLen === 32 && x.sport?.start === 81));
  const v4 = (a: string): number => a.split('.').reduce((n, o) => n * 256 + Number(o), 0);
  const holds = (x: RuleObject, a: string): boolean => Math.floor(v4(a) / 2 ** (32 - x.srcLen)) === Math.floor(v4(x.src) / 2 ** (32 - x.srcLen));
  assert.ok(!r.some((x) => x.ipProto === 6 && x.sport?.start === 80 && holds(x, '10.2.0.1')), 'no tcp/80 rule holds 10.2.0.1');
  assert.ok(r.some((x) => x.ipProto === 6 && x.sport?.start === 80 && holds(x, '10.2.0.0')));
  assert.deepEqual(r.filter((x) => x.ipProto === 1).map((x) => `${x.src}/${x.srcLen}`), ['10.2.0.0/22']);
});

test('plan: contiguous ports merge into ranges, per address and protocol', () => {
  const backends: Backend[] = [80, 81, 82, 443, 8080, 8081].map((port) => ({ family: 4, addr: '10.0.0.1', proto: 'tcp', port }));
  backends.push({ family: 4, addr: '10.0.0.1', proto: 'udp', port: 53 }, { family: 4, addr: '10.0.0.1', proto: 'tcp', port: 81 });
  const r = rules(planHost({ ...base, vips: [], backends }));
  assert.deepEqual(r.map((x) => [x.ipProto, x.sport && `${x.sport.start}-${x.sport.end}`]), [
    [6, '80-82'], [6, '443-443'], [6, '8080-8081'], [17, '53-53'], [1, undefined],
  ]);
  assert.deepEqual(portRuns([5, 3, 4, 10, 3]), [{ start: 3, end: 5 }, { start: 10, end: 10 }]);
  assert.deepEqual(portRuns([]), []);
});

test('plan: IPv6 uses /128, ipproto 58 and the metrics the kernel reports', () => {
  const plan = planHost({
    ...base, vipTable: 200,
    vips: [{ family: 6, addr: '2001:DB8::10' }],
    backends: [{ family: 6, addr: '2001:db8:1::0:5', proto: 'udp', port: 4789 }],
  });
  const r = rules(plan);
  assert.deepEqual(r.map((x) => [x.src, x.srcLen, x.ipProto]), [['2001:db8:1::5', 128, 17], ['2001:db8:1::5', 128, 58]]);
  const rt = routes(plan);
  assert.deepEqual(rt.map((x) => [x.family, x.table, x.dst, x.dstLen, x.type, x.metric]), [
    [6, 100, '::', 0, 'blackhole', BLACKHOLE_METRIC],
    [6, 100, '::', 0, 'unicast', 1024],
    [6, 200, '2001:db8::10', 128, 'unicast', 1024],
  ]);
});

test('plan: validation names the field and the expected type', () => {
  const ok: PlanInput = { ...base, vips: [], backends: [] };
  assert.throws(() => planHost({ ...ok, table: 254 }), /table must be a table of l4nat's own/);
  assert.throws(() => planHost({ ...ok, rulePref: 32766 }), /rulePref must be an integer in 1\.\.32765/);
  assert.throws(() => planHost({ ...ok, vipTable: 100 }), /vipTable must differ from table/);
  assert.throws(() => planHost({ ...ok, protocol: 4 }), /protocol must be an integer in 5\.\.255/);
  assert.throws(() => planHost({ ...ok, tunIfindex: 0 }), /tunIfindex/);
  assert.throws(() => planHost({ ...ok, backends: [{ family: 4, addr: '10.0.0.1', proto: 'sctp' as 'tcp', port: 1 }] }), /backends\[0\]\.proto must be "tcp" or "udp"/);
  assert.throws(() => planHost({ ...ok, backends: [{ family: 4, addr: '10.0.0.1', proto: 'tcp', port: 0 }] }), /backends\[0\]\.port/);
  assert.throws(() => planHost({ ...ok, vips: [{ family: 4, addr: '2001:db8::1' }] }), /not an IPv4 address/);
  assert.throws(() => planHost({ ...ok, vips: [{ family: 5 as 4, addr: '1.2.3.4' }] }), /vips\[0\]\.family must be 4 or 6/);
  assert.deepEqual(checkParams({ ...base }), { ...base, protocol: 0xf4, vipTable: 254 });
  assert.deepEqual(planHost(ok), []);
});

test('order: adds put table T first, then rules, then VIP routes; teardown the reverse with blackholes last', () => {
  assert.deepEqual(ADD_ORDER, ['blackhole', 'tun', 'rule', 'vip']);
  assert.deepEqual(TEARDOWN_ORDER, ['vip', 'tun', 'rule', 'blackhole']);
  const plan = planHost({
    ...base,
    vips: [{ family: 6, addr: '2001:db8::10' }, { family: 4, addr: '203.0.113.10' }],
    backends: [{ family: 4, addr: '10.0.0.1', proto: 'tcp', port: 80 }, { family: 6, addr: '2001:db8:1::5', proto: 'tcp', port: 80 }],
  });
  const roles = plan.map(roleOf);
  assert.deepEqual(roles, ['blackhole', 'blackhole', 'tun', 'tun', 'rule', 'rule', 'rule', 'rule', 'vip', 'vip']);
  const d = diff(plan, []);
  assert.deepEqual(d.add.map(roleOf), roles);
  const down = teardownOrder([...plan].reverse());
  assert.deepEqual(down.map(roleOf), ['vip', 'vip', 'tun', 'tun', 'rule', 'rule', 'rule', 'rule', 'blackhole', 'blackhole']);
  // Objects of another protocol are never part of a teardown.
  assert.equal(teardownOrder(plan.map((o) => ({ ...o, protocol: 4 }))).length, 0);
});

test('diff: removes stale objects, adds missing ones, ignores other protocols, drops duplicates', () => {
  const old = planHost({
    ...base,
    vips: [{ family: 4, addr: '203.0.113.10' }, { family: 4, addr: '203.0.113.11' }],
    backends: [{ family: 4, addr: '10.0.0.1', proto: 'tcp', port: 80 }, { family: 4, addr: '10.0.0.2', proto: 'tcp', port: 80 }],
  });
  const want = planHost({
    ...base,
    vips: [{ family: 4, addr: '203.0.113.10' }],
    backends: [{ family: 4, addr: '10.0.0.1', proto: 'tcp', port: 80 }, { family: 4, addr: '10.0.0.3', proto: 'tcp', port: 80 }],
  });
  const foreign: RouteObject = { kind: 'route', family: 4, table: 254, dst: '198.51.100.0', dstLen: 24, type: 'unicast', oif: 2, metric: 0, protocol: 4 };
  const duplicate = { ...old.find((o) => o.kind === 'rule' && o.src === '10.0.0.1' && o.ipProto === 6)! };
  const existing = [...old, foreign, duplicate];
  const d = diff(want, existing);
  assert.deepEqual(d.add.map((o) => describe(o)), [
    'ipv4 rule pref 1000 from 10.0.0.3/32 ipproto tcp sport 80 lookup 100 proto 244',
    'ipv4 rule pref 1000 from 10.0.0.3/32 ipproto icmp lookup 100 proto 244',
  ]);
  assert.deepEqual(d.remove.map((o) => describe(o)), [
    'ipv4 route 203.0.113.11/32 dev #7 table main metric 0 proto 244',
    'ipv4 rule pref 1000 from 10.0.0.2/32 ipproto tcp sport 80 lookup 100 proto 244',
    'ipv4 rule pref 1000 from 10.0.0.2/32 ipproto icmp lookup 100 proto 244',
    'ipv4 rule pref 1000 from 10.0.0.1/32 ipproto tcp sport 80 lookup 100 proto 244', // the duplicate
  ]);
  assert.ok(!d.remove.includes(foreign as never));
  // Applying the diff gives the wanted set.
  const after = existing.filter((o) => !d.remove.includes(o)).filter((o) => o.protocol === RTPROT_L4NAT).concat(d.add);
  assert.deepEqual(new Set(after.map(objectKey)), new Set(want.map(objectKey)));
  assert.equal(after.length, want.length);
  // Nothing to do when in sync; everything goes when nothing is wanted (in teardown order).
  assert.deepEqual(diff(want, want), { add: [], remove: [] });
  assert.deepEqual(diff([], old).remove.map(roleOf), teardownOrder(old).map(roleOf));
  // A changed table id makes every table-T object and rule stale.
  const moved = planHost({ ...base, table: 101, vips: [{ family: 4, addr: '203.0.113.10' }], backends: [{ family: 4, addr: '10.0.0.1', proto: 'tcp', port: 80 }] });
  const dm = diff(moved, want);
  assert.equal(dm.add.filter((o) => roleOf(o) !== 'vip').length, 4);
  assert.equal(dm.remove.filter((o) => roleOf(o) === 'vip').length, 0);
  // An installed object with selectors we never set is stale even if it otherwise looks like ours.
  const odd = { ...want.find((o) => o.kind === 'rule')!, extra: 'fwmark 1' } as RuleObject;
  assert.deepEqual(diff(want, [...want, odd]).remove, [odd]);
});

test('messages: routes and rules round-trip through the netlink shapes', () => {
  const plan = planHost({
    ...base, table: 1000,
    vips: [{ family: 6, addr: '2001:db8::10' }, { family: 4, addr: '203.0.113.10' }],
    backends: [{ family: 4, addr: '10.0.0.1', proto: 'tcp', port: 80 }, { family: 6, addr: '2001:db8:1::5', proto: 'udp', port: 53 }],
  });
  for (const o of plan) {
    if (o.kind === 'route') {
      const m = routeToMessage(o);
      assert.equal(m.attrs.table, o.table);
      assert.equal(m.data.table, o.table < 256 ? o.table : 0); // RT_TABLE_UNSPEC + RTA_TABLE for big ids
      // The package's parser reports enum names; the kernel reports lo as the device of IPv6 blackholes.
      const reported = {
        data: { ...m.data, type: o.type === 'unicast' ? 'UNICAST' : 'BLACKHOLE', protocol: o.protocol, scope: 'UNIVERSE' },
        attrs: { ...m.attrs, ...(o.type === 'blackhole' && o.family === 6 ? { oif: 1 } : {}) },
      } as never;
      const back = routeFromMessage(reported)!;
      assert.equal(objectKey(back), objectKey(o), describe(o));
    } else {
      const m = ruleToMessage(o);
      assert.equal(m.data.action, 1);
      assert.equal(m.attrs.protocol, o.protocol);
      const back = ruleFromMessage({ data: { ...m.data, action: 'toTbl', flags: {} }, attrs: { ...m.attrs, suppressPrefixlen: Buffer.from([255, 255, 255, 255]) } } as never)!;
      assert.equal(objectKey(back), objectKey(o), describe(o));
    }
  }
  const v4tun = routeToMessage(plan.find((o) => o.kind === 'route' && o.family === 4 && roleOf(o) === 'tun') as RouteObject);
  assert.equal(v4tun.data.scope, 253); // scope link, as `ip route add default dev X`
  assert.equal(v4tun.attrs.dst, undefined);
  assert.equal(v4tun.attrs.oif, 7);
  assert.equal(routeToMessage(plan[0] as RouteObject, true).data.scope, 255); // deletes match any scope
  // A rule with a selector we never set is deleted with its own message, not a partial one.
  const raw = { data: { family: 2, srcLen: 32, action: 'toTbl', flags: {} }, attrs: { src: Buffer.from([10, 0, 0, 1]), priority: 1000, table: 100, protocol: 244, fwmark: 5 } };
  const odd = ruleFromMessage(raw as never)!;
  assert.equal(odd.extra, 'fwmark 5');
  assert.equal(ruleToDelete(odd).attrs, raw.attrs);
});

test('rtnl errors look like Node system errors and name the operation and object', () => {
  const e = toRtnlError(new Error('Request rejected: EEXIST'), 'add rule', 'ipv4 rule pref 1000 from 10.0.0.1/32');
  assert.ok(e instanceof RtnlError);
  assert.equal(e.code, 'EEXIST');
  assert.equal(e.errno, -17);
  assert.equal(e.syscall, 'rtnetlink');
  assert.match(e.message, /^EEXIST: .*rtnetlink add rule ipv4 rule pref 1000 from 10\.0\.0\.1\/32$/);
  const t = toRtnlError(new Error('Timeout has been reached'), 'dump routes', 'ipv4');
  assert.equal(t.code, 'ETIMEDOUT');
  const n = toRtnlError(new Error('Request rejected: -3'), 'delete route');
  assert.equal(n.code, 'ESRCH');
  assert.equal(n.errno, -3);
  const s = toRtnlError(Object.assign(new Error('Error when receiving'), { errno: 105, code: 'ENOBUFS', syscall: 'recvmsg' }), 'receive');
  assert.equal(s.code, 'ENOBUFS');
  assert.equal(s.errno, -105);
});

test('sysctl: forwarding is only turned on, TUN parameters are set, errors name the key', (t) => {
  const root = mkdtempSync(join(tmpdir(), 'l4nat-sysctl-'));
  t.after(() => rmSync(root, { recursive: true, force: true }));
  const put = (key: string, v: string) => {
    const p = sysctlPath(key.split('/'), { root });
    mkdirSync(join(p, '..'), { recursive: true });
    writeFileSync(p, `${v}\n`);
  };
  put('net/ipv4/ip_forward', '0');
  put('net/ipv6/conf/all/forwarding', '1');
  put('net/ipv4/conf/l4nat.0/rp_filter', '0');
  for (const [k, v] of [['addr_gen_mode', '0'], ['disable_ipv6', '1'], ['accept_ra', '1']]) put(`net/ipv6/conf/l4nat.0/${k}`, v);
  const { log, lines } = fakeLog();
  const changes = enableForwarding(log, { root });
  assert.deepEqual(changes, [{ key: 'net.ipv4.ip_forward', from: '0', to: '1' }]);
  assert.equal(readSysctl('net.ipv4.ip_forward', { root }), '1');
  assert.ok(lines.some((l) => l.level === 'info' && /never turns it off/.test(l.msg ?? '')));
  assert.deepEqual(enableForwarding(log, { root }), []); // on already: nothing written
  const tun = configureTunSysctls('l4nat.0', { root });
  assert.deepEqual(tun.map((c) => `${c.key}=${c.to}`), [
    'net.ipv4.conf.l4nat.0.rp_filter=2', 'net.ipv6.conf.l4nat.0.addr_gen_mode=1',
    'net.ipv6.conf.l4nat.0.disable_ipv6=0', 'net.ipv6.conf.l4nat.0.accept_ra=0',
  ]);
  assert.equal(readFileSync(join(root, 'net/ipv4/conf/l4nat.0/rp_filter'), 'utf8'), '2\n');
  assert.deepEqual(configureTunSysctls('l4nat.0', { root }), []);
  assert.throws(() => configureTunSysctls('nosuch0', { root }), (err: NodeJS.ErrnoException) =>
    err.code === 'ENOENT' && /net\.ipv4\.conf\.nosuch0\.rp_filter/.test(err.message) && /is the interface there/.test(err.message));
  assert.throws(() => configureTunSysctls('../x'), /valid interface name/);
  assert.throws(() => sysctlPath('net..x'), /invalid sysctl key/);
});

test('HostSetup validates its options up front', () => {
  const { log } = fakeLog();
  const ok = { log, tunName: 'l4nat0', table: 100, rulePref: 1000 };
  const h = new HostSetup(ok);
  assert.equal(h.protocol, 0xf4);
  assert.equal(h.vipTable, 254);
  assert.throws(() => new HostSetup({ ...ok, tunName: 'a-name-that-is-too-long' }), /tunName/);
  assert.throws(() => new HostSetup({ ...ok, table: 255 }), /table/);
  assert.throws(() => new HostSetup({ ...ok, log: undefined as never }), /options\.log must be a pino logger/);
  assert.rejects(() => h.configureLink(1500), /not open/);
  assert.rejects(() => h.apply({ vips: [], backends: [] }), /not open/);
});
