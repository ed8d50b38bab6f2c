// Path MTU when the LB host's own link or route to the client is the narrow hop (issue 14), in a namespace lab
// (client ─ lb ─ b1, every link 1500 unless a test narrows the lb's link to the client, c0). The backend sends
// 4 MiB to the client with DF set and must learn the narrow MTU (its route cache to the client), else the
// transfer stalls. Root only; tcpdump for the second test (scripts/install-deps.sh installs it).
//   1. The TUN MTU follows the links while l4nat runs (logged), the link narrowed before and after start;
//      --mtu pins it, and then the host's own "fragmentation needed" about a translated reply, which l4nat
//      re-sources from the VIP, is what carries the MTU to the backend.
//   2. The host's addresses are followed too: an address added to the lb after start is the source the
//      kernel gives its errors, and the backend still gets them (from the VIP).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Lab } from '../src/lab/lab';
import type { L4natProcess } from '../src/lab/l4nat-process';
import { sysctlSet } from '../src/lab/netns';
import { withLab, type LabFixture } from './rigs/fixture';
import { skipUnless } from './rigs/requirements';

const BYTES = 4 * 1024 * 1024;
const STALL_MS = 5_000;
const FOLLOW_MS = 10_000;

// Each backend connection gets BYTES at once; the client reports how much arrived and whether it stalled.
const SERVER = `require('net').createServer((s) => { s.on('error', () => {}); s.end(Buffer.alloc(${BYTES}, 7)); }).listen(8080, '::');
console.log('ready');`;
const CLIENT = `const s = require('net').connect(8080, process.argv[1]); let got = 0, timer;
const done = (o) => { console.log(JSON.stringify({ got, ...o })); process.exit(0); };
const arm = () => { clearTimeout(timer); timer = setTimeout(() => done({ stalled: true }), ${STALL_MS}); };
arm(); s.on('data', (d) => { got += d.length; arm(); }); s.on('end', () => done({})); s.on('error', (e) => done({ error: e.message }));`;

async function download(lab: Lab, family: 4 | 6): Promise<{ got: number; stalled?: boolean; error?: string }> {
  const vip = family === 4 ? lab.vip4 : lab.vip6!;
  const r = await lab.exec('client', process.execPath, ['-e', CLIENT, vip]);
  return JSON.parse(r.stdout.trim().split('\n').pop()!);
}

/** The MTU b1's route cache holds for the client ('' when none). */
async function cachedMtu(lab: Lab, family: 4 | 6): Promise<string> {
  const out = await lab.ip('b1', [`-${family}`, 'route', 'get', family === 4 ? lab.client.ipv4 : lab.client.ipv6!]);
  return /mtu (\d+)/.exec(out)?.[1] ?? '';
}

async function tunMtu(lab: Lab): Promise<number> {
  return Number(/mtu (\d+)/.exec(await lab.ip('lb', ['link', 'show', 'l4nat0']))?.[1]);
}

async function setClientLinkMtu(lab: Lab, mtu: number): Promise<void> {
  await lab.ip('lb', ['link', 'set', lab.client.lbDev, 'mtu', String(mtu)]);
}

/** A lab whose b1 runs the bulk server (no backend servers of the lab's own); `body` runs with it. */
function withPmtuLab(body: (fx: LabFixture) => Promise<void>): Promise<void> {
  return withLab({ backends: 1, servers: false }, async (fx) => {
    // Path-MTU discovery only, no probing around a black hole (which would hide one).
    await sysctlSet(fx.lab.nsOf('b1'), { 'net.ipv4.tcp_mtu_probing': 0 });
    const server = fx.lab.spawn('b1', process.execPath, ['-e', SERVER]);
    await server.waitForLine((l) => l === 'ready', { timeoutMs: 10_000, what: 'server ready', stream: 'stdout' });
    await body(fx);
  });
}

/** The first log record at or after `from` matching pred. */
function logFrom(l4: L4natProcess, from: number, pred: (r: Record<string, unknown>) => boolean, what: string): Promise<Record<string, unknown>> {
  return l4.waitForLog((r) => (r.time as number) >= from && pred(r), FOLLOW_MS, what);
}

const FOLLOWS = "TUN MTU follows the links' smallest MTU";

test('the TUN MTU follows the lb\'s links at run time, logged; with --mtu pinned, the host\'s own error about a translated reply carries the MTU', { skip: skipUnless(), timeout: 180_000 }, async () => {
  await withPmtuLab(async ({ lab, start }) => {
    // Narrowed before start: the TUN starts at 1400; the backend's full-size segments are too big for the TUN
    // and the host's error goes straight to the backend (before translation).
    await setClientLinkMtu(lab, 1400);
    let l4 = await start({ ports: ['8080/tcp'] });
    assert.equal(await tunMtu(lab), 1400);
    let r = await download(lab, 4);
    assert.deepEqual(r, { got: BYTES }, 'IPv4 with the link narrowed before start');
    assert.equal(await cachedMtu(lab, 4), '1400');

    // Widened, then narrowed below the start value, while l4nat runs: the TUN follows, each change logged.
    let t0 = Date.now();
    await setClientLinkMtu(lab, 1500);
    let rec = await logFrom(l4, t0, (x) => x.msg === FOLLOWS && x.to === 1500, 'TUN MTU raised to 1500');
    assert.equal(rec.from, 1400);
    assert.equal(await tunMtu(lab), 1500);
    t0 = Date.now();
    await setClientLinkMtu(lab, 1280);
    rec = await logFrom(l4, t0, (x) => x.msg === FOLLOWS && x.to === 1280, 'TUN MTU lowered to 1280');
    assert.deepEqual([rec.from, rec.link], [1500, lab.client.lbDev]);
    assert.equal(await tunMtu(lab), 1280);
    r = await download(lab, 6);
    assert.deepEqual(r, { got: BYTES }, 'IPv6 with the link narrowed after start');
    assert.equal(await cachedMtu(lab, 6), '1280');
    assert.equal((await l4.stop()).code, 0);

    // Pinned at 1500: the TUN stays; the link narrowed after start is logged as a warning, and the backend
    // learns the MTU from the host's own error about the translated reply (re-sourced from the VIP).
    await setClientLinkMtu(lab, 1500);
    await lab.ip('b1', ['-4', 'route', 'flush', 'cache']);
    l4 = await start({ ports: ['8080/tcp'], extraArgs: ['--mtu', '1500'] });
    t0 = Date.now();
    await setClientLinkMtu(lab, 1300);
    rec = await logFrom(l4, t0, (x) => x.pinned === 1500 && x.smallest === 1300, 'the pinned-MTU warning');
    assert.equal(rec.level, 40, 'a link narrower than the pin is a warning');
    assert.ok(!l4.logs().some((x) => x.msg === FOLLOWS), 'a pinned TUN MTU is not followed');
    assert.equal(await tunMtu(lab), 1500);
    assert.equal(await cachedMtu(lab, 4), '', 'b1 has forgotten the 1400 of the first run');
    r = await download(lab, 4);
    assert.deepEqual(r, { got: BYTES }, 'IPv4, TUN pinned above the narrowed link');
    assert.equal(await cachedMtu(lab, 4), '1300');
  });
});

test('an address the lb gets after start is the source of its errors; the backend still gets them, from the VIP (v4 and v6, a route with mtu 1280)', { skip: skipUnless({ commands: ['tcpdump'] }), timeout: 120_000 }, async () => {
  await withPmtuLab(async ({ lab, start }) => {
    const l4 = await start({ ports: ['8080/tcp'] });
    // A global address on lo: the kernel prefers it as the source of what it sends through the TUN, which has
    // no address of its own (inet_select_addr: lo first).
    const t0 = Date.now();
    await lab.ip('lb', ['addr', 'add', '10.77.1.1/32', 'dev', 'lo']);
    const rec = await logFrom(l4, t0, (x) => Array.isArray(x.added) && (x.added as string[]).includes('10.77.1.1'), "l4nat's log of the new address");
    assert.deepEqual(rec.removed, []);
    // The link stays 1500 (the TUN MTU with it); only the routes to the client are narrow.
    for (const [fam, client] of [[4, lab.client.ipv4], [6, lab.client.ipv6!]] as const) {
      await lab.ip('lb', [`-${fam}`, 'route', 'add', client, 'dev', lab.client.lbDev, 'mtu', '1280']);
    }
    const capTun = lab.spawn('lb', 'tcpdump', ['-l', '-n', '-i', 'l4nat0', 'icmp or icmp6']);
    const capB1 = lab.spawn('b1', 'tcpdump', ['-l', '-n', '-i', lab.backends[0]!.dev, 'icmp or (icmp6 and ip6[40] == 2)']);
    for (const c of [capTun, capB1]) await c.waitForLine((l) => /listening on/.test(l), { timeoutMs: 10_000, what: 'tcpdump listening', stream: 'stderr' });
    for (const fam of [4, 6] as const) {
      const r = await download(lab, fam);
      assert.deepEqual(r, { got: BYTES }, `IPv${fam}`);
      assert.equal(await cachedMtu(lab, fam), '1280', `IPv${fam}: b1's route cache`);
    }
    assert.equal(await tunMtu(lab), 1500);
    await new Promise((res) => setTimeout(res, 300));
    await capTun.stop({ signal: 'SIGTERM', timeoutMs: 3_000 });
    await capB1.stop({ signal: 'SIGTERM', timeoutMs: 3_000 });
    const tun = capTun.stdoutLines.join('\n');
    const atB1 = capB1.stdoutLines.join('\n');
    assert.match(tun, /IP 10\.77\.1\.1 > 10\.200\.0\.10: ICMP .* need to frag \(mtu 1280\)/, `the kernel's error comes from the new address:\n${tun}`);
    assert.match(atB1, /IP 10\.200\.0\.10 > 10\.201\.1\.2: ICMP .* need to frag \(mtu 1280\)/, `b1 gets it from the VIP:\n${atB1}`);
    assert.match(atB1, /IP6 fd4c:ffff::10 > fd4c:0:1::2: ICMP6, packet too big, mtu 1280/, `b1 gets the IPv6 one from the VIP:\n${atB1}`);
    assert.doesNotMatch(atB1, /IP 10\.77\.1\.1 >/, 'no error reaches b1 from the lb\'s own address');
  });
});
