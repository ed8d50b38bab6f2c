// The lab with a narrow middle hop (createLab({ middleHopMtu })): client ─1500─ r2 ─M─ r1 ─1500─ lb. Topology,
// MTUs, plain routing through it (path-MTU discovery works without l4nat), cleanup of the two extra namespaces.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { createLab, Lab, listLabNamespaces, ROUTED_LB_IPV4 } from '../src/lab/lab';
import { sysctlGet } from '../src/lab/netns';
import { runClient, startBackendServers, startStreams } from '../src/lab/workload';
import { skipUnless } from './rigs/requirements';


describe('routed lab options (no root needed)', () => {
  test('middleHopMtu is validated before anything is created', async () => {
    await assert.rejects(createLab({ middleHopMtu: 1000 }), /middleHopMtu must be an integer in 1280\.\.1500 \(IPv6 needs 1280\)/);
    await assert.rejects(createLab({ middleHopMtu: 1501 }), /middleHopMtu/);
    await assert.rejects(createLab({ middleHopMtu: 1280.5 }), /middleHopMtu/);
    await assert.rejects(createLab({ middleHopMtu: 500, ipv6: false }), /middleHopMtu must be an integer in 576\.\.1500/);
  });
});

describe('routed lab', { skip: skipUnless({ tun: false, l4nat: false, commands: ['ip'] }), timeout: 120_000 }, () => {
  let lab: Lab;

  before(async () => {
    lab = await createLab({ backends: 1, middleHopMtu: 1280 });
    await startBackendServers(lab);
  });

  after(async () => {
    await lab?.destroy();
  });

  const mtu = async (role: string, dev: string): Promise<number> => Number(/mtu (\d+)/.exec(await lab.ip(role, ['link', 'show', dev]))?.[1]);

  test('two routers sit between client and lb; only the r2 ⇄ r1 link is narrow', async () => {
    assert.deepEqual(lab.namespaces, ['client', 'lb', 'b1', 'r1', 'r2'].map((r) => `l4-${lab.id}-${r}`));
    assert.equal(lab.middleHopMtu, 1280);
    assert.deepEqual(lab.routers.map((r) => r.role), ['r1', 'r2']);
    assert.equal(await mtu('client', 'eth0'), 1500, "the client's own link stays at 1500");
    assert.equal(await mtu('r2', 'c0'), 1500);
    assert.equal(await mtu('r2', 'r1'), 1280);
    assert.equal(await mtu('r1', 'r2'), 1280);
    assert.equal(await mtu('r1', 'lb'), 1500);
    assert.equal(await mtu('lb', 'c0'), 1500);
    assert.equal(await mtu('lb', 'b1'), 1500);
    assert.equal(lab.client.ipv4, '10.201.0.2', 'the client keeps its address');
    assert.match(await lab.ip('client', ['-4', 'route', 'show', 'default']), /default via 10\.201\.0\.1 dev eth0/);
    assert.match(await lab.ip('lb', ['-4', 'route', 'show', '10.201.0.0/24']), /via 10\.202\.1\.2 dev c0/);
    assert.match(await lab.ip('lb', ['-6', 'route', 'show', 'fd4c::/64']), /via fd4c:0:ff01::2 dev c0/);
    assert.match(await lab.ip('lb', ['-4', 'addr', 'show', 'dev', 'c0']), new RegExp(`${ROUTED_LB_IPV4.replace(/\./g, '\\.')}/24`));
    for (const r of ['r1', 'r2']) {
      assert.equal(await sysctlGet(lab.nsOf(r), 'net.ipv4.ip_forward'), '1', `forwarding in ${r}`);
      assert.equal(await sysctlGet(lab.nsOf(r), 'net.ipv4.conf.all.rp_filter'), '1', `rp_filter in ${r}`);
    }
    // The lb still does not forward until asked (l4nat turns it on itself).
    assert.equal(await sysctlGet(lab.lb.ns, 'net.ipv4.ip_forward'), '0');
  });

  test('with forwarding in the lb, the client reaches the backend over IPv4 and IPv6', async () => {
    await lab.enableForwarding();
    const b = lab.backend('b1');
    for (const [target, want] of [
      [b.ipv4, lab.client.ipv4],
      [b.ipv6!, lab.client.ipv6!],
    ] as const) {
      const r = await runClient(lab, { target, count: 20, concurrency: 5, timeoutMs: 20_000 });
      assert.equal(r.ok, 20, JSON.stringify(r.errors));
      assert.deepEqual(r.peerAddrs, [want]);
    }
  });

  test('full-size segments cross the narrow hop by path-MTU discovery (plain routing)', async () => {
    const s = startStreams(lab, { target: lab.backend('b1').ipv4, streams: 2, durationMs: 1_500, chunkBytes: 64 * 1024, intervalMs: 20, windowBytes: 512 * 1024 });
    const r = await s.result;
    assert.equal(r.ok, 2, JSON.stringify(r.errors));
    assert.ok(r.bytesVerified > 1024 * 1024, `only ${r.bytesVerified} bytes echoed`);
    const route = await lab.ip('b1', ['-4', 'route', 'get', lab.client.ipv4]);
    assert.match(route, /mtu 1280/, `b1 learned the path MTU: ${route}`);
  });

  test('destroy() removes the routers too', async () => {
    await lab.destroy();
    assert.deepEqual(await listLabNamespaces(lab.id), []);
  });
});
