// Integration test of HostSetup in a throw-away network namespace (root, /dev/net/tun and ip needed: skipped without them, failed under CI=true).
// The parent creates the namespace and a persistent multiqueue TUN in it, then drives a child process running
// INSIDE the namespace (this same file, started with L4NAT_HOST_NETNS_CHILD=1 under `ip netns exec`) through a
// line-based JSON protocol on stdin/stdout, and checks the result with `ip -n NS ...`. The default namespace's
// routes, rules and sysctls are snapshotted before and compared after.
import { test, before, after } from 'node:test';
import * as assert from 'node:assert/strict';
import { spawn, execFileSync, ChildProcessWithoutNullStreams } from 'child_process';
import { existsSync, readFileSync } from 'fs';
import { randomBytes } from 'crypto';
import { createInterface } from 'readline';
import pino from 'pino';
import { skipUnless } from './rigs/requirements';

const TUN = 'l4nat0';
const TABLE = 100;
const PREF = 1000;

// ---------------------------------------------------------------------------------------------------------
// Child: runs inside the namespace.
interface Request { cmd: string; [k: string]: unknown }

async function runChild(): Promise<void> {
  const { HostSetup } = await import('../src/host/setup');
  const log = pino({ level: 'debug', base: undefined }, pino.destination(2));
  const host = new HostSetup({ log, tunName: TUN, table: TABLE, rulePref: PREF, debounceMs: 100 });
  const reply = (x: unknown): void => { process.stdout.write(`${JSON.stringify(x)}\n`); };
  const rl = createInterface({ input: process.stdin });
  for await (const line of rl) {
    const req = JSON.parse(line) as Request;
    try {
      let result: unknown;
      switch (req.cmd) {
        case 'open': result = await host.open(); break;
        case 'configure': result = await host.configureLink(req.mtu as number); break;
        case 'apply': result = await host.apply(req.desired as never); break;
        case 'watch': result = host.watch(); break;
        case 'teardown': result = await host.teardown(); break;
        case 'leftovers': result = (await host.findLeftovers()).map((o) => host.describe(o)); break;
        case 'close': host.close(); reply({ ok: true }); process.exit(0); break;
        default: throw new Error(`unknown command ${req.cmd}`);
      }
      reply({ ok: true, result: result ?? null });
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      reply({ ok: false, error: { message: e.message, code: e.code } });
    }
  }
}

// ---------------------------------------------------------------------------------------------------------
// Parent.
class Child {
  readonly proc: ChildProcessWithoutNullStreams;
  stderr = '';
  private pending: ((line: string) => void)[] = [];
  private exited = false;

  constructor(ns: string) {
    const env: NodeJS.ProcessEnv = { ...process.env, L4NAT_HOST_NETNS_CHILD: '1' };
    delete env.NODE_TEST_CONTEXT; // not a test-runner child
    this.proc = spawn('ip', ['netns', 'exec', ns, process.execPath, __filename], { env });
    this.proc.stderr.on('data', (d: Buffer) => { this.stderr += d.toString(); });
    createInterface({ input: this.proc.stdout }).on('line', (line) => this.pending.shift()?.(line));
    this.proc.on('exit', () => {
      this.exited = true;
      for (const p of this.pending.splice(0)) p(JSON.stringify({ ok: false, error: { message: `child exited; stderr:\n${this.stderr}` } }));
    });
  }

  async call(cmd: string, args: Record<string, unknown> = {}): Promise<unknown> {
    if (this.exited) throw new Error(`child has exited; stderr:\n${this.stderr}`);
    const line = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${cmd}: no reply in 15 s; stderr:\n${this.stderr}`)), 15000);
      this.pending.push((l) => { clearTimeout(timer); resolve(l); });
      this.proc.stdin.write(`${JSON.stringify({ cmd, ...args })}\n`);
    });
    const res = JSON.parse(line) as { ok: boolean; result?: unknown; error?: { message: string; code?: string } };
    if (!res.ok) throw Object.assign(new Error(res.error?.message), { code: res.error?.code });
    return res.result;
  }

  /** Log lines (pino JSON on stderr). */
  logs(): { level: number; msg: string; object?: string }[] {
    const out: { level: number; msg: string; object?: string }[] = [];
    for (const l of this.stderr.split('\n')) {
      try { if (l.startsWith('{')) out.push(JSON.parse(l)); } catch { /* a line still being written */ }
    }
    return out;
  }

  kill(): Promise<void> {
    if (this.exited) return Promise.resolve();
    return new Promise((resolve) => {
      this.proc.on('exit', () => resolve());
      this.proc.kill('SIGKILL');
    });
  }
}

function sh(cmd: string, args: string[]): string {
  return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

function snapshotDefaultNamespace(): string {
  const parts = [
    sh('ip', ['-4', 'rule', 'show']), sh('ip', ['-6', 'rule', 'show']),
    sh('ip', ['-4', 'route', 'show', 'table', 'all']), sh('ip', ['-6', 'route', 'show', 'table', 'all']),
  ];
  for (const p of ['net/ipv4/ip_forward', 'net/ipv6/conf/all/forwarding', 'net/ipv4/conf/all/rp_filter']) {
    parts.push(`${p}=${existsSync(`/proc/sys/${p}`) ? readFileSync(`/proc/sys/${p}`, 'utf8').trim() : '-'}`);
  }
  return parts.join('\n---\n');
}

async function waitFor(what: string, check: () => boolean, ms = 3000): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (check()) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  assert.fail(`timed out after ${ms} ms waiting for ${what}`);
}

if (process.env.L4NAT_HOST_NETNS_CHILD === '1') {
  runChild().catch((err) => { process.stderr.write(`${(err as Error).stack}\n`); process.exit(1); });
} else {
  const skip = skipUnless({ l4nat: false, commands: ['ip'] });
  const ns = `l4h-${randomBytes(4).toString('hex')}`;
  let nsCreated = false;
  let defaultBefore = '';
  const children: Child[] = [];
  const ipn = (...args: string[]): string => sh('ip', ['-n', ns, ...args]);
  const inNs = (...args: string[]): string => sh('ip', ['netns', 'exec', ns, ...args]);
  const sysctl = (path: string): string => inNs('cat', `/proc/sys/${path}`).trim();
  /** `ip route get` for a packet arriving from a backend on b0; the error text if the kernel refuses it. */
  const routeGet = (family: string, dst: string, src: string, proto: string, ...port: string[]): string => {
    try {
      return ipn(family, 'route', 'get', dst, 'from', src, 'iif', 'b0', 'ipproto', proto, ...port);
    } catch (err) {
      return String((err as { stderr?: unknown }).stderr ?? err);
    }
  };
  const ours = (out: string): string[] => out.split('\n').filter((l) => /\bproto 244\b/.test(l)).map((l) => l.trim());

  const desired = {
    vips: [{ family: 4, addr: '203.0.113.10' }, { family: 6, addr: '2001:db8::10' }],
    backends: [
      { family: 4, addr: '10.0.0.1', proto: 'tcp', port: 80 },
      { family: 4, addr: '10.0.0.1', proto: 'tcp', port: 81 },
      { family: 4, addr: '10.0.0.2', proto: 'tcp', port: 80 },
      { family: 6, addr: '2001:db8:1::1', proto: 'tcp', port: 80 },
      { family: 6, addr: '2001:db8:1::2', proto: 'udp', port: 53 },
    ],
  };

  before(() => {
    if (skip) return;
    defaultBefore = snapshotDefaultNamespace();
    sh('ip', ['netns', 'add', ns]);
    nsCreated = true;
    inNs('sh', '-c', 'echo 1 > /proc/sys/net/ipv4/conf/all/rp_filter');
    ipn('tuntap', 'add', 'mode', 'tun', 'multi_queue', 'vnet_hdr', 'name', TUN);
    // A stand-in for the backend-facing interface, with the host's default route behind it: a backend reply
    // that escaped table T would show up as "via 10.0.0.253 dev b0".
    ipn('tuntap', 'add', 'mode', 'tun', 'name', 'b0');
    ipn('addr', 'add', '10.0.0.254/24', 'dev', 'b0');
    ipn('-6', 'addr', 'add', '2001:db8:1::fe/64', 'dev', 'b0', 'nodad');
    ipn('link', 'set', 'b0', 'up');
    ipn('route', 'add', 'default', 'via', '10.0.0.253', 'dev', 'b0', 'onlink');
    ipn('-6', 'route', 'add', 'default', 'via', '2001:db8:1::fd', 'dev', 'b0');
    // Someone else's rule in table T at our preference: must survive everything.
    ipn('rule', 'add', 'from', '10.9.9.9', 'lookup', String(TABLE), 'pref', String(PREF));
  });

  after(async () => {
    for (const c of children) await c.kill();
    if (process.env.L4NAT_TEST_VERBOSE) for (const c of children) process.stderr.write(c.stderr);
    if (nsCreated) {
      try { sh('ip', ['netns', 'del', ns]); } catch (err) { process.stderr.write(`cannot delete netns ${ns}: ${String(err)}\n`); }
    }
  });

  test('HostSetup in a network namespace', { skip, timeout: 60000 }, async (t) => {
    const child = new Child(ns);
    children.push(child);
    await child.call('open');
    let next = child;

    await t.test('configureLink: MTU, sysctls, up, no link-local address', async () => {
      const res = (await child.call('configure', { mtu: 1400 })) as { ifindex: number; mtu: number };
      assert.equal(res.mtu, 1400);
      const link = ipn('-d', 'link', 'show', TUN);
      assert.match(link, /mtu 1400/);
      assert.match(link, /<[^>]*\bUP\b[^>]*>/);
      assert.match(link, /multi_queue/);
      assert.equal(sysctl(`net/ipv4/conf/${TUN}/rp_filter`), '2');
      assert.equal(sysctl('net/ipv4/conf/all/rp_filter'), '1'); // not ours to change
      assert.equal(sysctl(`net/ipv6/conf/${TUN}/addr_gen_mode`), '1');
      assert.equal(sysctl(`net/ipv6/conf/${TUN}/disable_ipv6`), '0');
      assert.equal(sysctl(`net/ipv6/conf/${TUN}/accept_ra`), '0');
      assert.equal(sysctl('net/ipv4/ip_forward'), '1');
      assert.equal(sysctl('net/ipv6/conf/all/forwarding'), '1');
      assert.equal(ipn('-6', 'addr', 'show', 'dev', TUN).includes('inet6'), false);
      // (stderr and stdout are separate pipes: a log line may arrive after the reply)
      await waitFor('the forwarding log line', () => child.logs().some((l) => /never turns it off/.test(l.msg)));
      // Repeating it (a restarted l4nat re-attaching) changes nothing and does not fail.
      await child.call('configure', { mtu: 1400 });
    });

    await t.test('apply: table T, rules, VIP routes, all with our protocol', async () => {
      const res = (await child.call('apply', { desired })) as { added: string[]; removed: string[] };
      assert.equal(res.removed.length, 0);
      assert.deepEqual(ours(ipn('-4', 'route', 'show', 'table', String(TABLE))), [
        `default dev ${TUN} proto 244 scope link linkdown`,
        'blackhole default proto 244 metric 4294967295',
      ]);
      const t6 = ours(ipn('-6', 'route', 'show', 'table', String(TABLE)));
      assert.equal(t6.length, 2);
      assert.ok(t6.some((l) => l.startsWith(`default dev ${TUN} proto 244 metric 1024`)));
      assert.ok(t6.some((l) => l.startsWith('blackhole default dev lo proto 244 metric 4294967295')));
      assert.deepEqual(ours(ipn('-4', 'route', 'show', 'table', 'main')), [`203.0.113.10 dev ${TUN} proto 244 scope link linkdown`]);
      assert.ok(ours(ipn('-6', 'route', 'show', 'table', 'main')).some((l) => l.startsWith(`2001:db8::10 dev ${TUN} proto 244 metric 1024`)));
      assert.deepEqual(ours(ipn('-4', 'rule', 'show')), [
        '1000:\tfrom 10.0.0.1 ipproto tcp sport 80-81 lookup 100 proto 244',
        '1000:\tfrom 10.0.0.2 ipproto tcp sport 80 lookup 100 proto 244',
        '1000:\tfrom 10.0.0.1 ipproto icmp lookup 100 proto 244',
        '1000:\tfrom 10.0.0.2 ipproto icmp lookup 100 proto 244',
      ]);
      assert.deepEqual(ours(ipn('-6', 'rule', 'show')), [
        '1000:\tfrom 2001:db8:1::1 ipproto tcp sport 80 lookup 100 proto 244',
        '1000:\tfrom 2001:db8:1::2 ipproto udp sport 53 lookup 100 proto 244',
        '1000:\tfrom 2001:db8:1::1 ipproto ipv6-icmp lookup 100 proto 244',
        '1000:\tfrom 2001:db8:1::2 ipproto ipv6-icmp lookup 100 proto 244',
      ]);
      // The kernel steers backend replies into the TUN, and nothing else.
      assert.match(routeGet('-4', '198.51.100.7', '10.0.0.1', 'tcp', 'sport', '81'), new RegExp(`dev ${TUN} table ${TABLE}`));
      assert.match(routeGet('-4', '198.51.100.7', '10.0.0.2', 'icmp'), new RegExp(`dev ${TUN} table ${TABLE}`));
      assert.match(routeGet('-4', '198.51.100.7', '10.0.0.1', 'tcp', 'sport', '22'), /via 10\.0\.0\.253 dev b0/);
      assert.match(routeGet('-4', '198.51.100.7', '10.0.0.2', 'udp', 'sport', '80'), /via 10\.0\.0\.253 dev b0/);
      assert.match(routeGet('-6', '2001:db8:ff::7', '2001:db8:1::2', 'udp', 'sport', '53'), new RegExp(`dev ${TUN} table ${TABLE}`));
      assert.match(routeGet('-6', '2001:db8:ff::7', '2001:db8:1::1', 'ipv6-icmp'), new RegExp(`dev ${TUN} table ${TABLE}`));
      assert.match(routeGet('-6', '2001:db8:ff::7', '2001:db8:1::1', 'tcp', 'sport', '443'), /via 2001:db8:1::fd dev b0/);
      assert.match(ipn('route', 'get', '203.0.113.10'), new RegExp(`dev ${TUN}`));
      assert.match(ipn('-6', 'route', 'get', '2001:db8::10'), new RegExp(`dev ${TUN}`));
      // Idempotent: a second apply changes nothing.
      const again = (await child.call('apply', { desired })) as { added: string[]; removed: string[]; existed: string[] };
      assert.deepEqual([again.added, again.removed, again.existed], [[], [], []]);
    });

    await t.test('apply: backends with the same ports share a prefix rule, and only they match it', async () => {
      const wider = { ...desired, backends: [...desired.backends, { family: 4, addr: '10.0.0.3', proto: 'tcp', port: 80 }] };
      await child.call('apply', { desired: wider });
      // (rules of one preference are listed in the order they were added)
      assert.deepEqual(ours(ipn('-4', 'rule', 'show')).sort(), [
        '1000:\tfrom 10.0.0.1 ipproto icmp lookup 100 proto 244',
        '1000:\tfrom 10.0.0.1 ipproto tcp sport 80-81 lookup 100 proto 244',
        '1000:\tfrom 10.0.0.2/31 ipproto icmp lookup 100 proto 244',
        '1000:\tfrom 10.0.0.2/31 ipproto tcp sport 80 lookup 100 proto 244',
      ]);
      assert.match(routeGet('-4', '198.51.100.7', '10.0.0.3', 'tcp', 'sport', '80'), new RegExp(`dev ${TUN} table ${TABLE}`));
      assert.match(routeGet('-4', '198.51.100.7', '10.0.0.2', 'tcp', 'sport', '80'), new RegExp(`dev ${TUN} table ${TABLE}`));
      assert.match(routeGet('-4', '198.51.100.7', '10.0.0.4', 'tcp', 'sport', '80'), /via 10\.0\.0\.253 dev b0/);
      // Back to the first set: the /31 goes, the /32 comes back (added before the /31 is removed).
      const back = (await child.call('apply', { desired })) as { added: string[]; removed: string[] };
      assert.equal(back.added.length, 2);
      assert.equal(back.removed.length, 2);
      assert.equal(ours(ipn('-4', 'rule', 'show')).filter((l) => l.includes('/31')).length, 0);
    });

    await t.test('watch: objects deleted by someone else come back', async () => {
      await child.call('watch');
      const rule = '1000:\tfrom 10.0.0.2 ipproto tcp sport 80 lookup 100 proto 244';
      ipn('rule', 'del', 'pref', String(PREF), 'from', '10.0.0.2', 'ipproto', 'tcp', 'sport', '80', 'table', String(TABLE), 'proto', '244');
      assert.ok(!ours(ipn('-4', 'rule', 'show')).includes(rule));
      await waitFor('the rule to come back', () => ours(ipn('-4', 'rule', 'show')).includes(rule));
      await waitFor('a warning naming the deleted rule', () =>
        child.logs().some((l) => l.level === 40 && l.object === 'ipv4 rule pref 1000 from 10.0.0.2/32 ipproto tcp sport 80 lookup 100 proto 244'));
      ipn('-6', 'route', 'del', 'default', 'dev', TUN, 'table', String(TABLE));
      ipn('route', 'del', '203.0.113.10/32', 'dev', TUN);
      await waitFor('the routes to come back', () =>
        ours(ipn('-6', 'route', 'show', 'table', String(TABLE))).length === 2 && ours(ipn('-4', 'route', 'show', 'table', 'main')).length === 1);
      // Link down flushes routes through the TUN without a route notification; they return when it is up.
      ipn('link', 'set', TUN, 'down');
      assert.equal(ours(ipn('-4', 'route', 'show', 'table', 'main')).length, 0);
      // Meanwhile the blackhole drops backend replies (route get: EINVAL) instead of leaking them via b0.
      assert.match(routeGet('-4', '198.51.100.7', '10.0.0.1', 'tcp', 'sport', '80'), /Invalid argument/);
      assert.match(routeGet('-6', '2001:db8:ff::7', '2001:db8:1::1', 'tcp', 'sport', '80'), /^blackhole|Invalid argument/);
      ipn('link', 'set', TUN, 'up');
      await waitFor('the routes to come back after link down/up', () =>
        ours(ipn('-4', 'route', 'show', 'table', 'main')).length === 1 && ours(ipn('-4', 'route', 'show', 'table', String(TABLE))).length === 2
        && ours(ipn('-6', 'route', 'show', 'table', 'main')).length === 1 && ours(ipn('-6', 'route', 'show', 'table', String(TABLE))).length === 2);
      // A re-created TUN is configured again (MTU, sysctls, up) and gets its routes back on its new index.
      ipn('tuntap', 'del', 'mode', 'tun', 'multi_queue', 'name', TUN);
      ipn('tuntap', 'add', 'mode', 'tun', 'multi_queue', 'vnet_hdr', 'name', TUN);
      await waitFor('the routes to come back on the re-created TUN', () =>
        ours(ipn('-4', 'route', 'show', 'table', 'main')).length === 1 && ours(ipn('-6', 'route', 'show', 'table', String(TABLE))).length === 2);
      assert.match(ipn('link', 'show', TUN), /mtu 1400/);
      assert.equal(sysctl(`net/ipv6/conf/${TUN}/addr_gen_mode`), '1');
      assert.equal(ipn('-6', 'addr', 'show', 'dev', TUN).includes('inet6'), false);
    });

    await t.test('a restarted l4nat adopts leftovers of a crashed run and removes stale ones', async () => {
      await child.kill(); // crash: no teardown
      assert.equal(ours(ipn('-4', 'rule', 'show')).length, 4, 'objects survive the crash');
      next = new Child(ns);
      children.push(next);
      await next.call('open');
      const smaller = {
        vips: [{ family: 4, addr: '203.0.113.10' }],
        backends: desired.backends.filter((b) => b.addr !== '10.0.0.2' && b.family === 4),
      };
      const res = (await next.call('apply', { desired: smaller })) as { added: string[]; removed: string[] };
      assert.deepEqual(res.added, []);
      // Removed in teardown order: VIP route, then table T's TUN route, then rules, then the blackhole.
      assert.equal(res.removed[0], `ipv6 route 2001:db8::10/128 dev ${TUN} table main metric 1024 proto 244`);
      assert.equal(res.removed[1], `ipv6 route default dev ${TUN} table 100 metric 1024 proto 244`);
      assert.equal(res.removed[res.removed.length - 1], 'ipv6 route blackhole default table 100 metric 4294967295 proto 244');
      assert.deepEqual([...res.removed].sort(), [
        `ipv6 route 2001:db8::10/128 dev ${TUN} table main metric 1024 proto 244`,
        `ipv6 route default dev ${TUN} table 100 metric 1024 proto 244`,
        'ipv4 rule pref 1000 from 10.0.0.2/32 ipproto tcp sport 80 lookup 100 proto 244',
        'ipv4 rule pref 1000 from 10.0.0.2/32 ipproto icmp lookup 100 proto 244',
        'ipv6 rule pref 1000 from 2001:db8:1::1/128 ipproto tcp sport 80 lookup 100 proto 244',
        'ipv6 rule pref 1000 from 2001:db8:1::2/128 ipproto udp sport 53 lookup 100 proto 244',
        'ipv6 rule pref 1000 from 2001:db8:1::1/128 ipproto ipv6-icmp lookup 100 proto 244',
        'ipv6 rule pref 1000 from 2001:db8:1::2/128 ipproto ipv6-icmp lookup 100 proto 244',
        'ipv6 route blackhole default table 100 metric 4294967295 proto 244',
      ].sort());
      assert.equal(ours(ipn('-6', 'rule', 'show')).length, 0);
      assert.equal(ours(ipn('-4', 'rule', 'show')).length, 2);

    });

    await t.test('teardown: nothing with our protocol remains, the TUN and foreign objects stay', async () => {
      await next.call('watch');
      const down = (await next.call('teardown')) as { removed: string[] };
      assert.deepEqual(down.removed, [
        `ipv4 route 203.0.113.10/32 dev ${TUN} table main metric 0 proto 244`,
        `ipv4 route default dev ${TUN} table 100 metric 0 proto 244`,
        'ipv4 rule pref 1000 from 10.0.0.1/32 ipproto tcp sport 80-81 lookup 100 proto 244',
        'ipv4 rule pref 1000 from 10.0.0.1/32 ipproto icmp lookup 100 proto 244',
        'ipv4 route blackhole default table 100 metric 4294967295 proto 244',
      ]);
      for (const f of ['-4', '-6']) {
        assert.deepEqual(ours(ipn(f, 'route', 'show', 'table', 'all')), []);
        assert.deepEqual(ours(ipn(f, 'rule', 'show')), []);
      }
      assert.deepEqual(await next.call('leftovers'), []);
      assert.match(ipn('link', 'show', TUN), new RegExp(`: ${TUN}:`));
      assert.match(ipn('-4', 'rule', 'show'), /from 10\.9\.9\.9 lookup 100/);
      // Watching stopped with the teardown: nothing comes back.
      await new Promise((r) => setTimeout(r, 400));
      assert.deepEqual(ours(ipn('-4', 'rule', 'show')), []);
      await next.call('close');
    });

    await t.test('the default namespace is untouched', () => {
      assert.equal(snapshotDefaultNamespace(), defaultBefore);
    });
  });
}
