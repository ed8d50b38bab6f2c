// End to end: the real l4nat (bin/l4nat.js up) in the lab's lb namespace, real TCP/UDP traffic from the client
// namespace to the VIPs, real backend servers. Root-only; without root, TUN or a built l4nat skipped (failed under CI=true).
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { RequestReport } from '../src/lab/client-driver';
import { NetSnapshot, snapshotMentions, snapshotNetns } from './rigs/inspect';
import { createLab, Lab, listLabNamespaces, normalizeAddress } from '../src/lab/lab';
import { addBackend, L4natProcess, startL4nat } from '../src/lab/l4nat-process';
import { run } from '../src/lab/netns';
import { runClient, startBackendServers, startStreams } from '../src/lab/workload';
import { withLab } from './rigs/fixture';
import { skipUnless } from './rigs/requirements';

const skip = skipUnless();
const LAB_NEEDLES = ['10.200.', '10.201.', 'fd4c:'];
const TCP_CONNECTIONS = 3_000;

/** Every backend got a share within ±tolerance of an even split. */
function assertEvenSpread(r: RequestReport, backends: readonly string[], tolerance: number): void {
  const even = r.ok / backends.length;
  for (const b of backends) {
    const n = r.perBackend[b] ?? 0;
    assert.ok(
      Math.abs(n - even) <= even * tolerance,
      `${b} served ${n}, expected ${Math.round(even)} ± ${Math.round(tolerance * 100)}%: ${JSON.stringify(r.perBackend)}`,
    );
  }
  assert.deepEqual(Object.keys(r.perBackend).sort(), [...backends].sort(), 'only the configured backends answer');
}

function assertAllOk(r: RequestReport): void {
  assert.equal(r.failed, 0, `failures: ${JSON.stringify(r.errors)}`);
  assert.equal(r.ok, r.count);
}

describe('l4nat in the lab', { skip, timeout: 300_000 }, () => {
  let lab: Lab;
  let l4: L4natProcess | null = null;
  let lbBefore: NetSnapshot;
  let defaultForwarding: string;

  before(async () => {
    defaultForwarding = (await run('sysctl', ['-n', 'net.ipv4.ip_forward'])).stdout.trim();
    lab = await createLab({ backends: 3 });
    await startBackendServers(lab);
    lbBefore = await snapshotNetns(lab.lb.ns);
    l4 = await startL4nat(lab);
  });

  after(async () => {
    await l4?.stop();
    await lab?.destroy();
  });

  const ids = ['b1', 'b2', 'b3'];

  test(`${TCP_CONNECTIONS} TCP connections to the IPv4 VIP all succeed, spread within ±15% over 3 backends`, async () => {
    const r = await runClient(lab, { target: lab.vip4, proto: 'tcp', count: TCP_CONNECTIONS, concurrency: 32, timeoutMs: 120_000 });
    assertAllOk(r);
    assertEvenSpread(r, ids, 0.15);
    assert.equal(r.peerPortMismatches, 0, 'the client source port reaches the backend unchanged');
  });

  test('UDP request/response through the IPv4 VIP', async () => {
    const r = await runClient(lab, { target: lab.vip4, proto: 'udp', count: 600, concurrency: 16, timeoutMs: 60_000 });
    assertAllOk(r);
    assertEvenSpread(r, ids, 0.3);
  });

  test(`${TCP_CONNECTIONS} TCP connections to the IPv6 VIP all succeed, spread within ±15% over 3 backends`, async () => {
    const r = await runClient(lab, { target: lab.vip6!, proto: 'tcp', count: TCP_CONNECTIONS, concurrency: 32, timeoutMs: 120_000 });
    assertAllOk(r);
    assertEvenSpread(r, ids, 0.15);
  });

  test('UDP request/response through the IPv6 VIP', async () => {
    const r = await runClient(lab, { target: lab.vip6!, proto: 'udp', count: 600, concurrency: 16, timeoutMs: 60_000 });
    assertAllOk(r);
    assertEvenSpread(r, ids, 0.3);
  });

  test("every backend sees the client's own source address (TCP and UDP, IPv4 and IPv6)", async () => {
    for (const [target, want] of [
      [lab.vip4, lab.client.ipv4],
      [lab.vip6!, lab.client.ipv6!],
    ] as const) {
      for (const proto of ['tcp', 'udp'] as const) {
        const r = await runClient(lab, { target, proto, count: 300, concurrency: 16, timeoutMs: 60_000 });
        assertAllOk(r);
        for (const b of ids) {
          assert.deepEqual(
            (r.peerAddrsByBackend[b] ?? []).map(normalizeAddress),
            [normalizeAddress(want)],
            `${proto} to ${target}: ${b} saw ${JSON.stringify(r.peerAddrsByBackend[b])}`,
          );
        }
      }
    }
  });

  test('l4nat keeps running and stops cleanly; teardown leaves no device, route, rule or namespace behind', async () => {
    assert.ok(l4 !== null && l4.running, 'l4nat still runs after all the traffic');
    const st = await l4!.stop();
    assert.equal(st.forced, false, 'l4nat ended on SIGTERM');
    assert.equal(st.code, 0, `l4nat exit code ${st.code} (signal ${st.signal})\n${l4!.proc.tail()}`);
    // Everything l4nat added inside the lb namespace (TUN, VIP routes, table, rules) is gone again.
    assert.deepEqual(await snapshotNetns(lab.lb.ns), lbBefore);
    await lab.destroy();
    assert.deepEqual(await listLabNamespaces(lab.id), []);
    // And nothing ever reached the default namespace.
    assert.deepEqual(snapshotMentions(await snapshotNetns(null), [...LAB_NEEDLES, lab.id]), []);
    assert.equal((await run('sysctl', ['-n', 'net.ipv4.ip_forward'])).stdout.trim(), defaultForwarding);
  });
});

describe('l4nat: changing backends at run time', { skip, timeout: 300_000 }, () => {
  test(
    'adding a fourth backend while 50 long-lived connections stream breaks none of them; new connections reach it',
    {},
    async () => {
      await withLab({ backends: 4, l4nat: { backendIds: ['b1', 'b2', 'b3'] } }, async ({ lab, l4 }) => {
        const streams = startStreams(lab, { target: lab.vip4, streams: 50, durationMs: 10_000, intervalMs: 20 });
        assert.deepEqual(await streams.streaming, { established: 50, failed: 0 });
        try {
          const before = await streams.status();
          assert.equal(before.failed, 0);
          await addBackend(lab, l4, 'b4');
          // New connections reach the new backend (about a quarter of them).
          const r = await runClient(lab, { target: lab.vip4, proto: 'tcp', count: 1_000, concurrency: 32, timeoutMs: 60_000 });
          assertAllOk(r);
          assert.ok((r.perBackend.b4 ?? 0) >= 150, `b4 served ${r.perBackend.b4 ?? 0} of 1000`);
          // The established streams kept flowing after the change.
          const mid = await streams.status();
          assert.equal(mid.failed, 0);
          for (const c of mid.conns) {
            const was = before.conns.find((x) => x.i === c.i)!;
            assert.ok(c.bytesVerified > was.bytesVerified, `stream ${c.i} (${c.backend}) made no progress`);
          }
        } finally {
          streams.stop();
        }
        const rep = await streams.result;
        assert.equal(rep.failed, 0, `broken streams: ${JSON.stringify(rep.errors)}`);
        assert.equal(rep.ok, 50);
        for (const c of rep.conns) assert.ok(['b1', 'b2', 'b3'].includes(c.backend ?? ''), `stream ${c.i} on ${c.backend}`);
      });
    },
  );
});
