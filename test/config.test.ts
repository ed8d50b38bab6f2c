// Config file validation: every error names the path, the bad value and what is expected, with its line;
// a good file gives the same options `l4nat up` flags would. No root needed.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { ConfigError, parseConfig, restartOnlyChanges } from '../src/config/load';
import type { HealthCheckSpec } from '../src/config/model';

const dir = mkdtempSync(join(tmpdir(), 'l4nat-config-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const bin = join(__dirname, '..', '..', 'bin', 'l4nat.js');

const GOOD = `
global:
  queues: 2
  shutdown_grace: 5
  timeouts: {tcp: 600, udp: 60}
defaults:
  health_check: {type: tcp, interval: 2, timeout: 1}
services:
  - name: web
    vips: [10.0.0.10, "FD00::10"]
    ports: [80, "443/tcp"]
    hash: src
    on_all_down: keep-last
    health_check: {type: http, path: /healthz, expect_status: [200, 204], rise: 3, fall: 2}
    backends:
      - {address: 10.0.1.11, weight: 2, name: web1}
      - "10.0.1.12"
      - "[fd00:1::11]"
  - name: dns
    vips: [10.0.0.53]
    ports: ["53/udp"]
    backends: ["10.0.2.1:5353@3"]
`;

function issues(text: string): string[] {
  try {
    parseConfig(text, 'x.yaml');
  } catch (e) {
    assert.ok(e instanceof ConfigError, String(e));
    return e.issues;
  }
  assert.fail('expected a ConfigError');
}

test('a good file expands into one service per VIP × port, backends by family, defaults filled in', () => {
  const o = parseConfig(GOOD, 'good.yaml');
  assert.equal(o.configFile, 'good.yaml');
  assert.equal(o.queues, 2);
  assert.equal(o.shutdownGrace, 5);
  assert.equal(o.timeouts.tcpEstablished, 600);
  assert.equal(o.timeouts.udp, 60);
  assert.equal(o.timeouts.tcpSyn, 30);
  assert.deepEqual(o.admin, { listen: '127.0.0.1', port: 9180, tokenFile: '/var/lib/l4nat/admin.token', createToken: true }, 'authenticated by default');
  assert.deepEqual(
    o.services.map((s) => `${s.name} ${s.vip}:${s.port}/${s.proto} ${s.hash} ${s.onAllDown}`),
    ['web 10.0.0.10:80/tcp src keep-last', 'web 10.0.0.10:443/tcp src keep-last', 'web fd00::10:80/tcp src keep-last', 'web fd00::10:443/tcp src keep-last', 'dns 10.0.0.53:53/udp 5tuple drop'],
  );
  assert.deepEqual(o.services[0].backends, [
    { addr: '10.0.1.11', family: 4, port: 80, weight: 2, name: 'web1' },
    { addr: '10.0.1.12', family: 4, port: 80, weight: 1 },
  ]);
  assert.deepEqual(o.services[2].backends, [{ addr: 'fd00:1::11', family: 6, port: 80, weight: 1 }]);
  assert.deepEqual(o.services[4].backends, [{ addr: '10.0.2.1', family: 4, port: 5353, weight: 3 }]);
  const h = o.services[0].health!;
  assert.deepEqual([h.type, h.path, h.expectStatus, h.rise, h.fall, h.interval, h.timeout], ['http', '/healthz', [200, 204], 3, 2, 2, 1]);
  assert.equal(o.services[4].health?.type, 'tcp', 'defaults.health_check applies where a service has none');
});

test('balance, balance_factor, when_full and max_flows reach the services (defaults and per service)', () => {
  const o = parseConfig(
    'defaults: {when_full: reject}\nservices:\n  - {name: a, vips: [10.0.0.1], ports: [80], balance: bounded, balance_factor: 1.5, backends: [{address: 10.0.1.1, max_flows: 50}, 10.0.1.2]}\n  - {name: b, vips: [10.0.0.2], ports: [80], balance: bounded, when_full: drop}\n  - {name: c, vips: [10.0.0.3], ports: [80]}',
    'a.yaml',
  );
  assert.deepEqual(o.services.map((s) => [s.name, s.balance, s.balanceFactor, s.whenFull]), [['a', 'bounded', 1.5, 'reject'], ['b', 'bounded', 1.25, 'drop'], ['c', undefined, undefined, 'reject']]);
  assert.deepEqual(o.services[0].backends.map((b) => b.maxFlows), [50, undefined]);
});

const BAD: Array<[string, string, RegExp]> = [
  ['unknown top-level key', 'servics: []\nservices: []', /^servics: unknown key; expected one of: global, admin, defaults, cluster, services \(line 1, column 10\)$/],
  ['missing services', 'global: {}', /^\(top level\): missing required key "services"/],
  ['port out of range', 'services:\n  - {name: a, vips: [10.0.0.1], ports: [80], backends: [{address: 10.0.1.1, port: 70000}]}', /^services\[0\]\.backends\[0\]\.port: got 70000, expected a whole number from 1 to 65535 \(line 2, column \d+\)$/],
  ['bad protocol', 'services:\n  - {name: a, vips: [10.0.0.1], ports: ["53/sctp"]}', /^services\[0\]\.ports\[0\]: got "53\/sctp", expected PORT or "PORT\/tcp" or "PORT\/udp"/],
  ['bad hash', 'services:\n  - {name: a, vips: [10.0.0.1], ports: [80], hash: rr}', /^services\[0\]\.hash: got "rr", expected one of "5tuple", "src"/],
  ['wrong type', 'global: {queues: four}\nservices: []', /^global\.queues: got "four", expected a whole number from 1 to 256 \(line 1/],
  ['worker nice out of range', 'global: {worker_nice: -25}\nservices: []', /^global\.worker_nice: got -25, expected a whole number from -20 to 19 \(line 1/],
  ['bad health type', 'services:\n  - {name: a, vips: [10.0.0.1], ports: [80], health_check: {type: ping}}', /^services\[0\]\.health_check\.type: got "ping", expected one of "tcp", "http", "https", "command", "dataplane", "icmp", "none"/],
  ['bad VIP', 'services:\n  - {name: a, vips: [10.0.0.300], ports: [80]}', /^services\[0\]\.vips\[0\]: got "10\.0\.0\.300", expected an IPv4 or IPv6 address/],
  ['backend hostname', 'services:\n  - {name: a, vips: [10.0.0.1], ports: [80], backends: ["example.com:80"]}', /^services\[0\]\.backends\[0\]: expected ADDR\[:PORT\]\[@WEIGHT\].*not an IP address/],
  ['family mismatch', 'services:\n  - {name: a, vips: [10.0.0.1], ports: [80], backends: ["[fd00::1]:80"]}', /backend fd00::1 is IPv6 but no VIP of this service is IPv6/],
  ['timeout longer than interval', 'services:\n  - {name: a, vips: [10.0.0.1], ports: [80], health_check: {type: tcp, interval: 1, timeout: 2}}', /^services\[0\]\.health_check\.timeout: got 2, expected at most the interval \(1 s\)/],
  ['http option on a tcp check', 'services:\n  - {name: a, vips: [10.0.0.1], ports: [80], health_check: {type: tcp, path: /x}}', /^services\[0\]\.health_check\.path: applies to http\/https checks only/],
  ['command check without command', 'services:\n  - {name: a, vips: [10.0.0.1], ports: [80], health_check: {type: command}}', /missing required key "command"/],
  ['ambiguous backend', 'services:\n  - {name: a, vips: [10.0.0.1], ports: [80, 81], backends: ["10.0.1.1:8080"]}', /^services: backend 10\.0\.1\.1:8080\/tcp is used by services 10\.0\.0\.1:80\/tcp and 10\.0\.0\.1:81\/tcp: replies from it would be ambiguous/],
  ['duplicate service name', 'services:\n  - {name: a, vips: [10.0.0.1], ports: [80]}\n  - {name: a, vips: [10.0.0.2], ports: [80]}', /^services\[1\]\.name: got "a", expected a name no other service uses \(line 3/],
  ['non-loopback admin without TLS', 'admin: {listen: 0.0.0.0}\nservices: []', /^admin: listen 0\.0\.0\.0 is not a loopback address: it requires tls/],
  ['TLS files missing', 'admin: {listen: 0.0.0.0, tls: {cert: /nonexistent/c.pem, key: /nonexistent/k.pem}, token_file: /nonexistent/t}\nservices: []', /^admin\.tls\.cert: cannot read "\/nonexistent\/c\.pem": ENOENT/],
  ['service timeout of 0', 'services:\n  - {name: a, vips: [10.0.0.1], ports: [80], timeouts: {tcp: 0}}', /^services\[0\]\.timeouts\.tcp: got 0, expected a whole number from 1 to 604800/],
  ['unknown service timeout', 'services:\n  - {name: a, vips: [10.0.0.1], ports: [80], timeouts: {tcp_est: 5}}', /^services\[0\]\.timeouts\.tcp_est: unknown key; expected one of: tcp, tcp_syn, tcp_fin, tcp_close, udp/],
  ['probe source of the wrong family', 'global: {probe_source: {ipv4: "2001:db8::1"}}\nservices: []', /^global\.probe_source\.ipv4: got "2001:db8::1", expected an IPv4 address/],
  ['port on a dataplane check', 'services:\n  - {name: a, vips: [10.0.0.1], ports: [80], health_check: {type: dataplane, port: 81}}', /^services\[0\]\.health_check\.port: a dataplane check probes the service port itself/],
  ['http option on a dataplane check', 'services:\n  - {name: a, vips: [10.0.0.1], ports: [80], health_check: {type: dataplane, path: /x}}', /^services\[0\]\.health_check\.path: applies to http\/https checks only, this check is dataplane/],
  ['port on an icmp check', 'services:\n  - {name: a, vips: [10.0.0.1], ports: [80], health_check: {type: icmp, port: 81}}', /^services\[0\]\.health_check\.port: an icmp check pings the backend's address and has no port; remove port/],
  ['http option on an icmp check', 'services:\n  - {name: a, vips: [10.0.0.1], ports: [80], health_check: {type: icmp, expect_status: [200]}}', /^services\[0\]\.health_check\.expect_status: applies to http\/https checks only, this check is icmp/],
  ['balance factor of 1', 'services:\n  - {name: a, vips: [10.0.0.1], ports: [80], balance: bounded, balance_factor: 1.0}', /^services\[0\]\.balance_factor: got 1, expected a number above 1\.0 \(from 1\.01\) and at most 100, such as 1\.25: a factor of 1 or less would refuse every backend's next flow/],
  ['balance factor absurd', 'services:\n  - {name: a, vips: [10.0.0.1], ports: [80], balance: bounded, balance_factor: 1000}', /^services\[0\]\.balance_factor: got 1000, expected a number above 1\.0 \(from 1\.01\) and at most 100/],
  ['balance factor in thousandths', 'services:\n  - {name: a, vips: [10.0.0.1], ports: [80], balance: bounded, balance_factor: 1.255}', /^services\[0\]\.balance_factor: got 1\.255, expected at most two decimals/],
  ['balance factor without bounded', 'services:\n  - {name: a, vips: [10.0.0.1], ports: [80], balance_factor: 1.5}', /^services\[0\]\.balance_factor: applies to balance: bounded only/],
  ['unknown balance', 'services:\n  - {name: a, vips: [10.0.0.1], ports: [80], balance: leastconn}', /^services\[0\]\.balance: got "leastconn", expected one of "maglev", "bounded"/],
  ['unknown when_full', 'services:\n  - {name: a, vips: [10.0.0.1], ports: [80], when_full: queue}', /^services\[0\]\.when_full: got "queue", expected one of "drop", "reject"/],
  ['negative max_flows', 'services:\n  - {name: a, vips: [10.0.0.1], ports: [80], backends: [{address: 10.0.1.1, max_flows: -5}]}', /^services\[0\]\.backends\[0\]\.max_flows: got -5, expected a whole number of flows from 1 to 268435456/],
  ['maglev size not prime', 'global: {maglev_size: 65536}\nservices: []', /^global\.maglev_size: got 65536, expected a prime number \(Maglev's table size; the next prime is 65537\)/],
  ['backend = a VIP', 'services:\n  - {name: a, vips: [10.0.0.1, 10.0.0.2], ports: [80], backends: ["10.0.0.2:8080"]}', /^services: backend 10\.0\.0\.2 of service 10\.0\.0\.1:80\/tcp is the VIP of service 10\.0\.0\.2:80\/tcp: packets to it would come back into l4nat's TUN until their TTL ran out/],
  ['backend = its own VIP', 'services:\n  - {name: a, vips: [10.0.0.1], ports: [80], backends: ["10.0.0.1:8080"]}', /^services: backend 10\.0\.0\.1 of service 10\.0\.0\.1:80\/tcp is the VIP of service 10\.0\.0\.1:80\/tcp/],
  ['backend = the probe source', 'global: {probe_source: {ipv4: 10.0.9.9}}\nservices:\n  - {name: a, vips: [10.0.0.1], ports: [80], backends: ["10.0.9.9:8080"]}', /^services: backend 10\.0\.9\.9 of service 10\.0\.0\.1:80\/tcp is the source address of l4nat's dataplane health probes \(global\.probe_source\)/],
  ...(
    [
      ['0.0.0.0', 'an unspecified'],
      ['0.1.2.3', 'an unspecified'],
      ['255.255.255.255', 'the broadcast address'],
      ['127.0.0.1', 'a loopback address'],
      ['127.8.9.10', 'a loopback address'],
      ['224.0.0.5', 'a multicast address'],
      ['239.1.1.1', 'a multicast address'],
      ['::', 'the unspecified address'],
      ['::1', 'the loopback address'],
      ['ff02::1', 'a multicast address'],
      ['fe80::1', 'a link-local address'],
      ['::ffff:a00:1', 'an IPv4-mapped address'],
    ] as const
  ).map(([addr, what]): [string, string, RegExp] => {
    const v6 = addr.includes(':');
    return [
      `backend ${addr}`,
      `services:\n  - {name: a, vips: [${v6 ? 'fd00::10' : '10.0.0.1'}], ports: [80], backends: [{address: "${addr}"}]}`,
      new RegExp(`^services\\[0\\]\\.backends\\[0\\]: backend ${addr.replace(/\./g, '\\.')} is ${what}.*: it cannot be a backend \\(line 2`),
    ];
  }),
  ['YAML syntax error', 'services: [\n', /^YAML syntax:/],
  ['duplicate key', 'services: []\nservices: []', /^YAML syntax: Map keys must be unique/],
];

for (const [what, text, re] of BAD) {
  test(`rejects: ${what}`, () => {
    const list = issues(text);
    assert.ok(list.some((i) => re.test(i)), `no issue matches ${re}:\n${list.join('\n')}`);
  });
}

test('all schema problems are reported at once', () => {
  const list = issues('global: {queues: 0, tun: "way-too-long-name-here"}\nservices:\n  - {name: a, vips: [10.0.0.1], ports: [0]}');
  assert.equal(list.length, 3, list.join('\n'));
});

test('a non-loopback admin listener with TLS and a token file is accepted', () => {
  const cert = join(dir, 'c.pem');
  const key = join(dir, 'k.pem');
  const token = join(dir, 'token');
  writeFileSync(cert, 'x');
  writeFileSync(key, 'x');
  writeFileSync(token, 'abcdefghijklmnopqrstuvwxyz\n', { mode: 0o600 });
  const o = parseConfig(`admin: {listen: 0.0.0.0, port: 9443, tls: {cert: ${cert}, key: ${key}}, token_file: ${token}}\nservices: []`, 'a.yaml');
  assert.deepEqual(o.admin, { listen: '0.0.0.0', port: 9443, tls: { cert, key, clientCa: undefined }, tokenFile: token });
  writeFileSync(token, 'short');
  assert.ok(issues(`admin: {listen: 0.0.0.0, tls: {cert: ${cert}, key: ${key}}, token_file: ${token}}\nservices: []`).some((i) => /shorter than 16/.test(i)));
});

test('admin authentication: insecure_no_auth only explicitly and on loopback; a token file others may read is refused', () => {
  assert.deepEqual(parseConfig('admin: {insecure_no_auth: true}\nservices: []', 'a.yaml').admin, { listen: '127.0.0.1', port: 9180, insecureNoAuth: true });
  assert.deepEqual(parseConfig('admin: {port: 0}\nservices: []', 'a.yaml').admin, { listen: '127.0.0.1', port: 0 }, 'no API, no token');
  const cert = join(dir, 'c2.pem');
  writeFileSync(cert, 'x');
  assert.ok(issues(`admin: {listen: 10.0.0.1, insecure_no_auth: true, tls: {cert: ${cert}, key: ${cert}}}\nservices: []`).some((i) => /^admin\.insecure_no_auth: is allowed on a loopback listen address only, got 10\.0\.0\.1/.test(i)));
  const token = join(dir, 'open.token');
  writeFileSync(token, 'abcdefghijklmnopqrstuvwxyz\n', { mode: 0o644 });
  assert.ok(issues(`admin: {token_file: ${token}, insecure_no_auth: true}\nservices: []`).some((i) => /^admin\.insecure_no_auth: contradicts token_file/.test(i)));
  const list = issues(`admin: {token_file: ${token}}\nservices: []`);
  assert.ok(list.some((i) => i.startsWith(`admin.token_file: admin token file ${token} has mode 0644: its group and other users may access it; make it private (chmod 600 ${token}) or use another file`)), list.join('\n'));
  writeFileSync(token, 'abcdefghijklmnopqrstuvwxyz\n', { mode: 0o640 });
  chmodSync(token, 0o640);
  assert.ok(issues(`admin: {token_file: ${token}}\nservices: []`).some((i) => /has mode 0640: its group may access it/.test(i)));
});

test('hash_key_file is checked as l4nat up would use it: owner-only, 32 hex digits, never echoed; a missing one is created at start', () => {
  const key = join(dir, 'hash.key');
  const cfg = `global: {hash_key_file: ${key}}\nservices: []`;
  assert.equal(parseConfig(cfg, 'a.yaml').hashKeyFile, key, 'not there yet: fine, up creates it');
  writeFileSync(key, 'root:x:0:0:root:/root:/bin/bash\n', { mode: 0o600 });
  let list = issues(cfg);
  assert.ok(list.some((i) => i.startsWith(`global.hash_key_file: hash key file ${key} must hold 32 hex digits (16 bytes), and it does not (31 characters)`)), list.join('\n'));
  assert.ok(!list.some((i) => /root/.test(i)), 'the contents are never quoted');
  chmodSync(key, 0o644);
  list = issues(cfg);
  assert.ok(list.some((i) => /^global\.hash_key_file: hash key file .* has mode 0644: its group and other users may access it; make it private \(chmod 600 /.test(i)), list.join('\n'));
  writeFileSync(key, '00112233445566778899aabbccddeeff\n');
  chmodSync(key, 0o600);
  assert.equal(parseConfig(cfg, 'a.yaml').hashKeyFile, key);
  assert.deepEqual(issues(`global: {hash_key_file: ${dir}}\nservices: []`), [`global.hash_key_file: hash key file ${dir} is not a regular file (line 1, column 25)`]);
  // With the key itself in the file, the key file is not read.
  assert.equal(parseConfig(`global: {hash_key: 00112233445566778899aabbccddeeff, hash_key_file: ${dir}}\nservices: []`, 'a.yaml').hashKey?.length, 16);
});

test('restart-only settings are named when they change', () => {
  const a = parseConfig(GOOD, 'a.yaml');
  const b = parseConfig(GOOD.replace('queues: 2', 'queues: 4').replace('timeouts: {tcp: 600', 'timeouts: {tcp: 700'), 'b.yaml');
  assert.deepEqual(restartOnlyChanges(a, b), ['global.queues']);
  const c = parseConfig(GOOD.replace('  queues: 2', '  queues: 2\n  worker_nice: -5'), 'c.yaml');
  assert.equal(a.workerNice, -10);
  assert.equal(c.workerNice, -5);
  assert.deepEqual(restartOnlyChanges(a, c), ['global.worker_nice']);
  assert.deepEqual(restartOnlyChanges(a, a), []);
});

test('`l4nat check` prints ok and exits 0 for a good file; lists the problems and exits 1 for a bad one; touches nothing', () => {
  const good = join(dir, 'good.yaml');
  writeFileSync(good, GOOD);
  const r = spawnSync(process.execPath, [bin, 'check', '--config', good], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /ok: 5 services \(VIP × port\), 7 backends/);
  const bad = join(dir, 'bad.yaml');
  writeFileSync(bad, 'services:\n  - {name: a, vips: [10.0.0.1], ports: [80], hash: rr, backends: [{address: 10.0.1.1, port: 0}]}\n');
  const r2 = spawnSync(process.execPath, [bin, 'check', '--config', bad], { encoding: 'utf8' });
  assert.equal(r2.status, 1);
  assert.match(r2.stderr, /2 problems/);
  assert.match(r2.stderr, /services\[0\]\.hash: got "rr"/);
  assert.match(r2.stderr, /services\[0\]\.backends\[0\]\.port: got 0/);
  // What `up` would refuse (or loop on), `check` refuses first: the unit's ExecStartPre stops there.
  writeFileSync(bad, 'global: {maglev_size: 65536}\nservices:\n  - {name: a, vips: [10.0.0.1], ports: [80], backends: ["10.0.0.1:8080"]}\n');
  const r4 = spawnSync(process.execPath, [bin, 'check', '--config', bad], { encoding: 'utf8' });
  assert.equal(r4.status, 1);
  assert.match(r4.stderr, /global\.maglev_size: got 65536, expected a prime number/);
  assert.match(r4.stderr, /backend 10\.0\.0\.1 of service 10\.0\.0\.1:80\/tcp is the VIP of service 10\.0\.0\.1:80\/tcp/);
  const r3 = spawnSync(process.execPath, [bin, 'up', '--config', good, '--vip', '10.0.0.1'], { encoding: 'utf8' });
  assert.equal(r3.status, 2);
  assert.match(r3.stderr, /unknown flag --vip: with --config, l4nat up takes only --log-level/);
});

test('the example config in systemd/ passes `l4nat check`', () => {
  const r = spawnSync(process.execPath, [bin, 'check', '--config', join(__dirname, '..', '..', 'systemd', 'l4nat.example.yaml')], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
});

test('per-service timeouts keep only the keys given; probe sources default to documentation addresses and can be set', () => {
  const o = parseConfig(
    'global:\n  timeouts: {tcp: 600}\n  probe_source: {ipv6: "2001:DB8::99"}\nservices:\n  - name: a\n    vips: [10.0.0.1]\n    ports: [80, 53/udp]\n    timeouts: {tcp: 100, udp: 5}\n    health_check: {type: dataplane}\n  - {name: b, vips: [10.0.0.2], ports: [80]}\n',
    'x.yaml',
  );
  assert.deepEqual(o.services.map((s) => s.timeouts), [{ tcpEstablished: 100, udp: 5 }, { tcpEstablished: 100, udp: 5 }, undefined]);
  assert.equal(o.timeouts.tcpEstablished, 600);
  assert.deepEqual(o.probeSource, { ipv4: '192.0.2.254', ipv6: '2001:db8::99' });
  assert.equal(o.services[0].health?.type, 'dataplane');
});

test('an icmp check: interval, timeout, rise, fall and jitter as for the other types, for IPv4 and IPv6 services', () => {
  const o = parseConfig('services:\n  - name: a\n    vips: [10.0.0.1, "fd00::1"]\n    ports: [80]\n    health_check: {type: icmp, interval: 0.5, timeout: 0.2, rise: 3, fall: 2, jitter: 0.1}\n', 'x.yaml');
  const timing = (h: HealthCheckSpec | null): unknown => h && { type: h.type, interval: h.interval, timeout: h.timeout, rise: h.rise, fall: h.fall, jitter: h.jitter, port: h.port };
  assert.deepEqual(o.services.map((s) => [s.family, timing(s.health)]), [4, 6].map((f) => [f, { type: 'icmp', interval: 0.5, timeout: 0.2, rise: 3, fall: 2, jitter: 0.1, port: undefined }]));
});

test('source lists and new-flow rate: checked, split by family per VIP; an allow list missing a VIP family is refused', () => {
  const o = parseConfig(
    'services:\n  - name: a\n    vips: [10.0.0.1, "fd00::1"]\n    ports: [80]\n    new_flow_rate: {rate: 100}\n' +
      '    allow_sources: [10.0.0.0/8, "2001:db8::/32"]\n    deny_sources: [10.6.6.0/24]\n',
    'x.yaml',
  );
  assert.deepEqual(o.services.map((s) => [s.vip, s.newFlowRate, s.allowSources, s.denySources]), [
    ['10.0.0.1', { rate: 100, burst: 100 }, ['10.0.0.0/8'], ['10.6.6.0/24']],
    ['fd00::1', { rate: 100, burst: 100 }, ['2001:db8::/32'], undefined],
  ]);
  const list = issues('services:\n  - name: a\n    vips: [10.0.0.1, "fd00::1"]\n    ports: [80]\n    allow_sources: [10.0.0.0/8, 10.0.0.0/33, nonsense]\n');
  assert.ok(list.some((i) => /^services\[0\]\.allow_sources\[1\]: got "10\.0\.0\.0\/33", expected an IPv4 or IPv6 CIDR/.test(i)), list.join('\n'));
  assert.ok(list.some((i) => /^services\[0\]\.allow_sources\[2\]: got "nonsense"/.test(i)), list.join('\n'));
  assert.ok(list.some((i) => /^services\[0\]\.allow_sources: has no IPv6 prefix but the service has an IPv6 VIP: add one \(::\/0/.test(i)), list.join('\n'));
});
