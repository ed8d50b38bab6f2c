// Scale-out pieces that need no root: the `cluster` config section (errors name the path, the value and what is
// expected), the BIRD include l4nat writes, `birdc show protocols` parsing, and the health majority.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { HealthAgreement, majorityHealthy } from '../src/cluster/agreement';
import { configureSucceeded, parseProtocols, renderInclude } from '../src/cluster/bird';
import { clusterOptionsOf } from '../src/cluster/options';
import { ConfigError, parseConfig } from '../src/config/load';

const BASE = `
global: { hash_key: "00112233445566778899aabbccddeeff" }
services:
  - name: web
    vips: [10.0.0.10]
    ports: [80]
    backends: ["10.0.1.11:8080"]
`;

function problems(yaml: string): string[] {
  try {
    parseConfig(BASE + yaml, 'l4nat.yaml');
  } catch (e) {
    assert.ok(e instanceof ConfigError, String(e));
    return e.issues;
  }
  return [];
}

test('cluster section: defaults and peers', () => {
  const o = parseConfig(`${BASE}cluster:\n  listen: 10.9.0.1\n  peers: ["10.9.0.2", "10.9.0.3:9999", "[fd00::3]:9181"]\n  bgp:\n    include_file: /run/l4nat/bird.conf\n    return_routes: ["0.0.0.0/0", "fd00::/8"]\n    upstream_protocols: [upstream]\n`, 'l4nat.yaml');
  const c = clusterOptionsOf(o)!;
  assert.equal(c.port, 9181);
  assert.equal(c.health, 'majority');
  assert.deepEqual(c.peers, [
    { addr: '10.9.0.2', port: 9181 },
    { addr: '10.9.0.3', port: 9999 },
    { addr: 'fd00::3', port: 9181 },
  ]);
  assert.deepEqual(c.bgp?.returnRoutes, [
    { prefix: '0.0.0.0/0', family: 4 },
    { prefix: 'fd00::/8', family: 6 },
  ]);
  assert.equal(c.bgp?.socket, '/run/bird/bird.ctl');
  assert.equal(c.bgp?.withdrawDelay, 1);
  assert.equal(clusterOptionsOf(parseConfig(BASE, 'l4nat.yaml')), undefined);
});

test('cluster section: every problem names its path, the value and what is expected', () => {
  const p = problems(`cluster:\n  peers: ["10.9.0.2:99999", "nope", "10.9.0.2", "10.9.0.2"]\n  poll_interval: 2\n  peer_timeout: 3\n  bgp:\n    include_file: relative.conf\n`);
  assert.ok(p.some((x) => /^cluster\.bgp\.include_file: got "relative\.conf", expected an absolute path/.test(x)), p.join('\n'));
  const q = problems(`cluster:\n  peers: ["10.9.0.2:99999", "nope", "10.9.0.2", "10.9.0.2"]\n  poll_interval: 2\n  peer_timeout: 3\n  bgp:\n    include_file: /x.conf\n    return_routes: ["10.0.0.0/33"]\n`);
  const want = [
    /^cluster: missing required key "listen"/,
    /^cluster\.peers\[0\]: got "10\.9\.0\.2:99999", the port must be a whole number from 1 to 65535/,
    /^cluster\.peers\[1\]: got "nope", expected ADDR, ADDR:PORT or \[IPV6\]:PORT/,
    /^cluster\.peers\[3\]: got 10\.9\.0\.2:9181 twice/,
    /^cluster\.peer_timeout: got 3, expected at least twice poll_interval \(4 s\)/,
    /^cluster\.bgp\.return_routes\[0\]: got "10\.0\.0\.0\/33", expected an IPv4 or IPv6 prefix/,
  ];
  for (const w of want) assert.ok(q.some((x) => w.test(x)), `${w} not in:\n${q.join('\n')}`);
  assert.ok(q.every((x) => /\(line \d+, column \d+\)$/.test(x)), q.join('\n'));
  const r = problems(`cluster:\n  listen: 10.9.0.1\n  health: vote\n  bgp: { include_file: /x, upstream_protocols: ["bad name"] }\n`);
  assert.ok(r.some((x) => /^cluster\.health: got "vote", expected one of "majority", "local"/.test(x)), r.join('\n'));
  assert.ok(r.some((x) => /^cluster\.bgp\.upstream_protocols\[0\]: got "bad name", expected a BIRD protocol name/.test(x)), r.join('\n'));
  const tk = problems(`cluster:\n  listen: 10.9.0.1\n  token_file: /nonexistent/l4nat-token\n`);
  assert.ok(tk.some((x) => /^cluster\.token_file: cannot read "\/nonexistent\/l4nat-token": ENOENT/.test(x)), tk.join('\n'));
  const s = problems(`cluster:\n  listen: 10.9.0.1\n  peers: ["10.9.0.1"]\n`);
  assert.ok(s.some((x) => /^cluster\.peers\[0\]: got 10\.9\.0\.1:9181, which is this host's own listen address/.test(x)), s.join('\n'));
});

test('a reload may not change the cluster section', async () => {
  const { restartOnlyChanges } = await import('../src/config/load');
  const a = parseConfig(`${BASE}cluster: { listen: 10.9.0.1, peers: [10.9.0.2] }\n`, 'x');
  const b = parseConfig(`${BASE}cluster: { listen: 10.9.0.1, peers: [10.9.0.3] }\n`, 'x');
  assert.deepEqual(restartOnlyChanges(a, b), ['cluster']);
  assert.deepEqual(restartOnlyChanges(a, a), []);
});

test('the BIRD include: four static protocols via the TUN with check link', () => {
  const text = renderInclude(
    { tun: 'l4nat0', vips: [{ addr: '10.0.0.10', family: 4 }, { addr: 'fd00::10', family: 6 }], returnRoutes: [{ prefix: '0.0.0.0/0', family: 4 }] },
    { vips: 'ok', ret: 'ok' },
  );
  assert.match(text, /protocol static l4nat_vip4 \{\n  ipv4;\n  check link;\n  route 10\.0\.0\.10\/32 via "l4nat0";\n\}/);
  assert.match(text, /protocol static l4nat_vip6 \{\n  ipv6;\n  check link;\n  route fd00::10\/128 via "l4nat0";\n\}/);
  assert.match(text, /protocol static l4nat_ret4 \{\n  ipv4;\n  check link;\n  route 0\.0\.0\.0\/0 via "l4nat0";\n\}/);
  assert.match(text, /protocol static l4nat_ret6 \{\n  ipv6;\n  check link;\n\}/);
  const none = renderInclude({ tun: 'l4nat0', vips: [], returnRoutes: [] }, { vips: 'withdrawn: stopping', ret: 'withdrawn: stopping' });
  assert.doesNotMatch(none, /route /);
  assert.throws(() => renderInclude({ tun: 'x"; }', vips: [], returnRoutes: [] }, { vips: '', ret: '' }), /tun must be an interface name/);
});

test('birdc output: configure result and protocol states', () => {
  assert.ok(configureSucceeded('BIRD 2.0.12 ready.\nReading configuration from /etc/bird.conf\nReconfigured'));
  assert.ok(!configureSucceeded('BIRD 2.0.12 ready.\nReading configuration from /etc/bird.conf\n/x.conf:3:1 syntax error'));
  assert.ok(!configureSucceeded('Unable to connect to server control socket (/run/bird/bird.ctl): No such file or directory'));
  const p = parseProtocols(`BIRD 2.0.12 ready.
Name       Proto      Table      State  Since         Info
device1    Device     ---        up     22:10:43.161  
l4nat_vip4 Static     master4    up     22:10:44.337  
upstream   BGP        ---        start  22:10:44.000  Active        Socket: Connection refused
b1         BGP        ---        up     2026-11-21    Established   
`);
  assert.deepEqual(p.get('upstream'), { state: 'start', info: 'Active        Socket: Connection refused' });
  assert.deepEqual(p.get('b1'), { state: 'up', info: 'Established' });
  assert.equal(p.get('l4nat_vip4')?.state, 'up');
  assert.equal(p.has('Name'), false);
});

test('health majority: a lone dissenter does not move the verdict; stale peers do not vote', () => {
  assert.equal(majorityHealthy([false, true, true]), true);
  assert.equal(majorityHealthy([false, false, true]), false);
  assert.equal(majorityHealthy([false, true]), true, 'a tie keeps the backend');
  assert.equal(majorityHealthy([false]), false);
  const opts = { listen: '10.9.0.1', port: 9181, peers: [{ addr: '10.9.0.2', port: 9181 }, { addr: '10.9.0.3', port: 9181 }], health: 'majority' as const, pollInterval: 0.5, peerTimeout: 2, settle: 3 };
  const a = new HealthAgreement(opts, () => ({ ready: false, health: new Map(), agreed: new Map(), rings: {}, announced: { vips: [], returnRoutes: [] } }));
  const now = 1_000_000;
  a.views.get('10.9.0.2:9181')!.at = now - 500;
  a.views.get('10.9.0.2:9181')!.health = new Map([['s|b1', false], ['s|b2', true]]);
  a.views.get('10.9.0.3:9181')!.at = now - 5_000; // stale
  a.views.get('10.9.0.3:9181')!.health = new Map([['s|b1', false], ['s|b2', false]]);
  const v = a.agree(new Map([['s|b1', false], ['s|b2', false], ['s|b3', false]]), now);
  assert.deepEqual([...v], [['s|b1', false], ['s|b2', true], ['s|b3', false]]);
  const local = new HealthAgreement({ ...opts, health: 'local' }, () => ({ ready: false, health: new Map(), agreed: new Map(), rings: {}, announced: { vips: [], returnRoutes: [] } }));
  assert.deepEqual([...local.agree(new Map([['s|b2', false]]), now)], [['s|b2', false]]);
});
