// `l4nat up` flag parsing: every bad flag is one clear line naming the flag, exit 2, nothing configured.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { hashKeyFlagWarning, parseBackend, parseUpArgs } from '../src/cli/up-args';
import { OptionError as UsageError } from '../src/config/options';

const base = ['--vip', '10.0.0.10', '--port', '80', '--backend', '10.0.1.11:8080', '--backend', '10.0.1.12:8080'];

test('the example in docs/operating.md parses into one TCP service with two backends', () => {
  const o = parseUpArgs(base);
  assert.equal(o.services.length, 1);
  const s = o.services[0];
  assert.deepEqual([s.vip, s.port, s.proto, s.hash], ['10.0.0.10', 80, 'tcp', '5tuple']);
  assert.deepEqual(s.backends.map((b) => `${b.addr}:${b.port}@${b.weight}`), ['10.0.1.11:8080@1', '10.0.1.12:8080@1']);
  assert.equal(o.tun, 'l4nat0');
  assert.equal(o.flowCapacity, 1048576);
  assert.ok(o.queues >= 1);
  assert.equal(o.workerNice, -10);
  assert.equal(parseUpArgs([...base, '--worker-nice', '-5']).workerNice, -5);
});

test('IPv4 and IPv6 VIPs each get the backends of their family; ports default to the service port', () => {
  const o = parseUpArgs([
    '--vip', '10.0.0.10', '--vip', 'FD00::10', '--port', '80/tcp', '--port', '53/udp',
    '--backend', '10.0.1.11', '--backend', '[fd00:1::11]:8080@3', '--hash', 'src',
  ]);
  assert.equal(o.services.length, 4);
  const v6 = o.services.filter((s) => s.family === 6);
  assert.deepEqual(v6.map((s) => s.vip), ['fd00::10', 'fd00::10']);
  assert.deepEqual(v6[0].backends, [{ addr: 'fd00:1::11', family: 6, port: 8080, weight: 3 }]);
  const udp4 = o.services.find((s) => s.family === 4 && s.proto === 'udp');
  assert.deepEqual(udp4?.backends, [{ addr: '10.0.1.11', family: 4, port: 53, weight: 1 }]);
  assert.ok(o.services.every((s) => s.hash === 'src'));
});

test('backend syntax: ADDR, ADDR:PORT, ADDR@W, [V6]:PORT@W, bare V6', () => {
  assert.deepEqual(parseBackend('10.1.2.3'), { addr: '10.1.2.3', family: 4, port: undefined, weight: 1 });
  assert.deepEqual(parseBackend('10.1.2.3@0'), { addr: '10.1.2.3', family: 4, port: undefined, weight: 0 });
  assert.deepEqual(parseBackend('[2001:db8::1]:443@2'), { addr: '2001:db8::1', family: 6, port: 443, weight: 2 });
  assert.deepEqual(parseBackend('2001:db8::1'), { addr: '2001:db8::1', family: 6, port: undefined, weight: 1 });
});

const bad: Array<[string[], RegExp]> = [
  [['--port', '80', '--backend', '10.0.1.1'], /^--vip is required/],
  [['--vip', '10.0.0.300', ...base.slice(2)], /^--vip expects an IPv4 or IPv6 address.*"10\.0\.0\.300"/],
  [['--vip', '10.0.0.10', '--port', '70000', '--backend', '10.0.1.1'], /^--port expects a whole number from 1 to 65535, got 70000/],
  [['--vip', '10.0.0.10', '--port', '80/sctp', '--backend', '10.0.1.1'], /^--port expects PORT\[\/tcp\|udp\]/],
  [['--vip', '10.0.0.10', '--port', '80'], /^--backend is required/],
  [['--vip', '10.0.0.10', '--port', '80', '--backend', 'example.com:80'], /^--backend expects ADDR\[:PORT\]\[@WEIGHT\].*not an IP address/],
  [['--vip', '10.0.0.10', '--port', '80', '--backend', '10.0.1.1:0'], /^--backend .*port must be 1-65535/],
  [['--vip', '10.0.0.10', '--port', '80', '--backend', '10.0.1.1@x'], /^--backend .*weight must be a whole number/],
  [['--vip', '10.0.0.10', '--port', '80', '--backend', '[fd00::1'], /^--backend .*missing "\]"/],
  [['--vip', '10.0.0.10', '--port', '80', '--backend', 'fd00::1'], /^--vip 10\.0\.0\.10 is IPv4 but no --backend is IPv4/],
  [[...base, '--hash', 'round-robin'], /^--hash expects 5tuple or src, got "round-robin"/],
  [[...base, '--balance', 'leastconn'], /^--balance expects maglev or bounded, got "leastconn"/],
  [[...base, '--balance', 'bounded', '--balance-factor', '1.0'], /^--balance-factor: got "1\.0", expected a number above 1\.0 \(from 1\.01\) and at most 100/],
  [[...base, '--balance', 'bounded', '--balance-factor', 'lots'], /^--balance-factor: got "lots", expected a number from 1\.01 to 100/],
  [[...base, '--balance-factor', '1.5'], /^--balance-factor applies to --balance bounded only/],
  [[...base, '--when-full', 'queue'], /^--when-full expects drop or reject, got "queue"/],
  [[...base, '--max-flows', '-3'], /^--max-flows: got "-3", expected a whole number of flows from 1 to 268435456/],
  [[...base, '--queues', '0'], /^--queues expects a whole number from 1 to 256, got 0/],
  [[...base, '--queues', 'two'], /^--queues expects a whole number from 1 to 256, got "two"/],
  [[...base, '--mtu', '1000'], /^--mtu expects a whole number from 1280 to 65535, got 1000/],
  [[...base, '--worker-nice', '-21'], /^--worker-nice expects a whole number from -20 to 19, got -21/],
  [[...base, '--worker-nice', 'high'], /^--worker-nice expects a whole number from -20 to 19, got "high"/],
  [[...base, '--queues', '-1'], /^--queues expects a whole number from 1 to 256, got "-1"/],
  [[...base, '--tun', 'this-name-is-too-long'], /^--tun expects an interface name/],
  [[...base, '--hash-key', 'abc'], /^--hash-key expects 32 hex digits/],
  [[...base, '--frobnicate'], /^unknown flag --frobnicate/],
  [[...base, '--hash'], /^--hash needs a value/],
  [[...base, '--tun', 'a', '--tun', 'b'], /^--tun given more than once/],
  [[...base, 'extra'], /^unexpected argument "extra"/],
  [['--vip', '10.0.0.10', '--port', '80', '--port', '81', '--backend', '10.0.1.1:8080'], /backend 10\.0\.1\.1:8080\/tcp is used by services 10\.0\.0\.10:80\/tcp and 10\.0\.0\.10:81\/tcp: replies from it would be ambiguous/],
  [['--vip', '10.0.0.10', '--port', '80', '--backend', '10.0.1.1', '--backend', '10.0.1.1'], /is given twice/],
  [[...base, '--maglev-size', '65536'], /^--maglev-size expects a prime number, got 65536 \(the next prime is 65537\)$/],
  [['--vip', '10.0.0.10', '--port', '80', '--backend', '127.0.0.1:8080'], /^--vip\/--port\/--backend: backend 127\.0\.0\.1 of service 10\.0\.0\.10:80\/tcp is a loopback address/],
  [['--vip', '10.0.0.10', '--vip', '10.0.0.11', '--port', '80', '--backend', '10.0.0.11:8080'], /backend 10\.0\.0\.11 of service 10\.0\.0\.10:80\/tcp is the VIP of service 10\.0\.0\.11:80\/tcp: packets to it would come back into l4nat's TUN/],
  [['--vip', '10.0.0.10', '--port', '80', '--backend', '192.0.2.254'], /backend 192\.0\.2\.254 of service 10\.0\.0\.10:80\/tcp is the source address of l4nat's dataplane health probes/],
  [[...base, '--admin-insecure-no-auth', '--admin-token-file', '/x'], /^--admin-insecure-no-auth contradicts --admin-token-file/],
];

for (const [argv, re] of bad) {
  test(`rejects ${argv.join(' ')}`, () => {
    assert.throws(() => parseUpArgs(argv), (e: unknown) => e instanceof UsageError && re.test((e as Error).message));
  });
}

test('the CLI prints one line naming the flag and exits 2, before touching anything', () => {
  const bin = join(__dirname, '..', '..', 'bin', 'l4nat.js');
  const r = spawnSync(process.execPath, [bin, 'up', '--vip', '10.0.0.10', '--port', '80', '--backend', '10.0.1.1', '--queues', '-3'], { encoding: 'utf8' });
  assert.equal(r.status, 2);
  assert.equal(r.stdout, '');
  assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
  assert.match(r.stderr, /^l4nat: --queues expects a whole number from 1 to 256, got "-3"$/m);
  const unknown = spawnSync(process.execPath, [bin, 'frob'], { encoding: 'utf8' });
  assert.equal(unknown.status, 2);
  assert.match(unknown.stderr, /unknown command "frob"/);
});

test('without CAP_NET_ADMIN `up` says so and exits 1', { skip: process.getuid?.() !== 0 ? false : 'running as root; checked by dropping privileges below' }, () => {
  const bin = join(__dirname, '..', '..', 'bin', 'l4nat.js');
  const r = spawnSync(process.execPath, [bin, 'up', ...base], { encoding: 'utf8' });
  assert.equal(r.status, 1);
  assert.match(r.stderr, /needs CAP_NET_ADMIN/);
});

test('as an unprivileged user `up` says it needs CAP_NET_ADMIN and exits 1', { skip: process.getuid?.() === 0 ? false : 'not root: the test above covers it' }, () => {
  const bin = join(__dirname, '..', '..', 'bin', 'l4nat.js');
  // setpriv drops every capability while staying uid 0 is not what we want: run as nobody instead.
  const r = spawnSync('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', '--inh-caps=-all', process.execPath, bin, 'up', ...base], { encoding: 'utf8' });
  assert.equal(r.status, 1, r.stderr);
  assert.match(r.stderr, /needs CAP_NET_ADMIN/);
});

test('a hash key on the command line (readable in /proc) is warned about; a key file is not', () => {
  assert.match(hashKeyFlagWarning(['--vip', '10.0.0.10', '--hash-key', '00112233445566778899aabbccddeeff']) ?? '', /every local user can read in \/proc\/PID\/cmdline: use a key file \(--hash-key-file, mode 0600\)/);
  assert.ok(hashKeyFlagWarning(['--hash-key=00112233445566778899aabbccddeeff']));
  assert.equal(hashKeyFlagWarning(['--vip', '10.0.0.10', '--hash-key-file', '/var/lib/l4nat/hash.key']), undefined);
});

test('--balance bounded, --balance-factor, --when-full and --max-flows reach the service and every backend', () => {
  const o = parseUpArgs([...base, '--balance', 'bounded', '--balance-factor', '1.5', '--when-full', 'reject', '--max-flows', '50']);
  const s = o.services[0];
  assert.deepEqual([s.balance, s.balanceFactor, s.whenFull], ['bounded', 1.5, 'reject']);
  assert.deepEqual(s.backends.map((b) => b.maxFlows), [50, 50]);
  const d = parseUpArgs([...base, '--balance', 'bounded']).services[0];
  assert.deepEqual([d.balance, d.balanceFactor, d.whenFull, d.backends[0].maxFlows], ['bounded', 1.25, undefined, undefined]);
});
