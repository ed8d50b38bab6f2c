// Scale-out (issue 8): a backend set change coinciding with a host failure — the case Maglev's paper calls out.
// A flow that moves to another host has no flow entry there; the data plane pins it when its backend's reply passes
// through that host. A ring change before that sends it to another backend if its slot moved (the new backend resets
// it). Measured with 200 long-lived connections over three hosts (src/lab/scaleout.ts): a fourth backend joins on
// the survivors at the moment one l4nat is SIGKILLed, with
//   - the backends' return route: ECMP over the hosts (replies may return through any host), or "via the host that
//     forwarded" (conntrack mark from the forwarding host's MAC address, per-host tables fed by BIRD);
//   - cluster.settle 0 (the change applies at once) or 3 (held until the set of announcing hosts has been stable 3 s).
// The change alone (no host failure) is the baseline. Root-only; needs bird2 and nft.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { after, before, test } from 'node:test';
import { l4natUnavailable } from '../src/lab/l4nat-process';
import { createScaleoutLab, startRouting, type ScaleoutLab } from '../src/lab/scaleout';
import { startBackendServers, startStreams, type StreamStatus } from '../src/lab/workload';

function skipReason(): string | false {
  if (typeof process.getuid !== 'function' || process.getuid() !== 0) return 'needs root (network namespaces, TUN)';
  if (!existsSync('/dev/net/tun')) return 'no /dev/net/tun';
  for (const bin of ['bird', 'birdc', 'nft']) {
    try {
      execFileSync('sh', ['-c', `command -v ${bin}`], { stdio: 'ignore' });
    } catch {
      return `${bin} is not installed (bash scripts/install-deps.sh)`;
    }
  }
  return l4natUnavailable() ?? false;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const STREAMS = 200;
const VIP = '10.200.0.10';
const ALL = ['lb1', 'lb2', 'lb3'];
const B3 = ['b1', 'b2', 'b3'];
const B4 = ['b1', 'b2', 'b3', 'b4'];

async function waitUntil(what: string, fn: () => Promise<boolean>, timeoutMs: number, everyMs = 50): Promise<number> {
  const t0 = Date.now();
  for (;;) {
    if (await fn()) return Date.now() - t0;
    if (Date.now() - t0 > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(everyMs);
  }
}

function progressed(before: StreamStatus, now: StreamStatus): { ok: number; errors: Record<string, number>; stalled: number } {
  let ok = 0;
  let stalled = 0;
  const errors: Record<string, number> = {};
  for (const c of now.conns) {
    const was = before.conns.find((x) => x.i === c.i);
    if (c.error !== null) errors[c.error] = (errors[c.error] ?? 0) + 1;
    else if (was && c.bytesVerified > was.bytesVerified) ok++;
    else stalled++;
  }
  return { ok, errors, stalled };
}

let lab: ScaleoutLab;
const figures: Record<string, unknown> = {};

async function reload(roles: string[], backends: string[], settle: number): Promise<void> {
  for (const r of roles) lab.writeL4natConfig(lab.host(r), { backends, settle });
  await Promise.all(
    roles.map(async (r) => {
      const res = await lab.admin(r, 'POST', '/v1/reload');
      assert.equal(res.status, 200, JSON.stringify(res.body));
    }),
  );
}

async function converge(role: string, present: boolean): Promise<void> {
  const h = lab.host(role);
  await waitUntil(`router and backends ${present ? 'adding' : 'dropping'} ${role}`, async () => {
    const r = (await lab.nexthops('r', VIP)).includes(h.upIpv4);
    const b = await Promise.all(lab.backends.map(async (x) => (await lab.nexthops(x.role, 'default')).includes(h.lanIpv4)));
    return r === present && b.every((x) => x === present);
  }, 40_000);
}

/** 200 streams; `act` during them; connections broken in the 6 s after it. */
async function measure(name: string, act: () => Promise<void>, t: { diagnostic(s: string): void }): Promise<number> {
  const streams = startStreams(lab, { target: VIP, streams: STREAMS, durationMs: 60_000, intervalMs: 100, chunkBytes: 512, stallMs: 25_000, connTimeoutMs: 10_000 });
  try {
    assert.deepEqual(await streams.streaming, { established: STREAMS, failed: 0 });
    await sleep(1_000);
    const before = await streams.status();
    const t0 = Date.now();
    await act();
    const applyMs = Date.now() - t0;
    await sleep(6_000);
    const p = progressed(before, await streams.status());
    const broken = STREAMS - p.ok;
    // What b4 got on the surviving hosts: its state, ring weight and packets forwarded to it.
    const b4 = await Promise.all(['lb2', 'lb3'].map(async (r) => {
      const svc = (await lab.admin(r, 'GET', '/v1/services')).body.services[0];
      const b = svc.backends.find((x: { addr: string }) => x.addr === lab.backend('b4').ipv4);
      return b ? `${r}: ${b.state} w${b.effectiveWeight} ${b.counters.packets_in} pkts in, ${b.counters.new_flows} new flows` : `${r}: no b4`;
    }));
    t.diagnostic(`${name}: ${broken}/${STREAMS} broken (${JSON.stringify(p.errors)}, stalled ${p.stalled}); change applied ${applyMs} ms after the event; b4 ${b4.join('; ')}`);
    figures[name] = { broken, of: STREAMS, errors: p.errors, applyMs, b4 };
    return broken;
  } finally {
    streams.stop();
    await streams.result.catch(() => undefined);
  }
}

/** SIGHUP (a reload from the file, applied in milliseconds); resolves once each host logged the reload. */
async function hup(roles: string[], backends: string[], settle: number): Promise<void> {
  for (const r of roles) lab.writeL4natConfig(lab.host(r), { backends, settle });
  const count = (r: string): number => lab.l4nats.get(r)!.logs().filter((x) => x.event === 'reload').length;
  const before = new Map(roles.map((r) => [r, count(r)]));
  for (const r of roles) lab.l4nats.get(r)!.proc.kill('SIGHUP');
  await waitUntil('the reloads', async () => roles.every((r) => count(r) > before.get(r)!), 30_000, 20);
}

/** lb1 is SIGKILLed and, in the same instant, the survivors reload with b4 added (SIGHUP). */
function coincide(settle: number): () => Promise<void> {
  return async () => {
    lab.l4nats.get('lb1')!.proc.kill('SIGKILL');
    await hup(['lb2', 'lb3'], B4, settle);
    await converge('lb1', false);
  };
}

/** lb1 back, b4 out again everywhere (no streams run: removing b4 breaks nothing). */
async function restore(settle: number): Promise<void> {
  lab.writeL4natConfig(lab.host('lb1'), { backends: B3, settle });
  await lab.startL4nat('lb1');
  await converge('lb1', true);
  await reload(ALL, B3, settle);
}

before(async () => {
  if (skipReason()) return;
  lab = await createScaleoutLab({ hosts: 3, backends: 4 });
  await startRouting(lab);
  await startBackendServers(lab);
  for (const h of lab.hosts) lab.writeL4natConfig(h, { backends: B3, settle: 0 });
  for (const h of lab.hosts) await lab.startL4nat(h.role);
  await waitUntil('three ECMP next hops on the router and the backends', async () => (await lab.nexthops('r', VIP)).length === 3 && (await lab.nexthops('b1', 'default')).length === 3, 30_000, 100);
});

after(async () => {
  // eslint-disable-next-line no-console
  console.log(`scale-out change figures: ${JSON.stringify(figures)}`);
  await lab?.destroy();
});

test('a backend joining while a host dies: broken connections with each return path, with and without the settle hold', { skip: skipReason(), timeout: 300_000 }, async (t) => {
  const alone = await measure('changeAlone', () => reload(ALL, B4, 0), t);
  await reload(ALL, B3, 0);

  const ecmp0 = await measure('ecmpReturn_settle0', coincide(0), t);
  await restore(0);
  await lab.enableForwarderReturn();
  const fwd0 = await measure('forwarderReturn_settle0', coincide(0), t);
  await restore(0);
  await lab.disableForwarderReturn();

  // Every host restarts with cluster.settle 3 (a restart-only setting).
  for (const r of ALL) {
    await lab.l4nats.get(r)!.stop();
    lab.writeL4natConfig(lab.host(r), { backends: B3, settle: 3 });
    await lab.startL4nat(r);
    await converge(r, true);
  }
  await sleep(3_500); // the restarts themselves are membership changes
  const ecmp3 = await measure('ecmpReturn_settle3', coincide(3), t);
  await restore(3);
  await lab.enableForwarderReturn();
  const fwd3 = await measure('forwarderReturn_settle3', coincide(3), t);
  await restore(3);
  // What no control plane fixes: flows established before a change keep their old backend through their entries;
  // if their host dies later, they move, are looked up in the new ring, and break where their slot moved.
  const later = await measure('failure4sAfterChange', async () => {
    await hup(ALL, B4, 3);
    await sleep(4_000);
    lab.l4nats.get('lb1')!.proc.kill('SIGKILL');
    await converge('lb1', false);
  }, t);

  t.diagnostic(`broken of ${STREAMS}: change alone ${alone}; with a host failure: ECMP return ${ecmp0} (settle 0) / ${ecmp3} (settle 3 s), return via the forwarding host ${fwd0} (settle 0) / ${fwd3} (settle 3 s); host failure 4 s after the change: ${later}`);
  assert.ok(alone <= 1, `the change alone broke ${alone}`);
  // The other cells are races between the ring change and the moved flows' first packets (README): reported only.
  assert.ok(fwd3 <= Math.floor(STREAMS * 0.01), `return via the forwarding host with the settle hold: ${fwd3} broke`);
});
