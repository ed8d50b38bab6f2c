// Proxy ARP/NDP: VIPs inside the client's own subnet (no upstream route), so the client resolves them on its
// link. Without --proxy-neighbor nobody answers and connections fail; with it l4nat answers ARP and NDP for the
// VIPs on the LB's client-side interface, TCP over IPv4 and IPv6 works, and the entries are gone after stop.
// Root-only.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { runClient } from '../src/lab/workload';
import { withLab } from './rigs/fixture';
import { skipUnless } from './rigs/requirements';

const VIP4 = '10.201.0.100';
const VIP6 = 'fd4c::100';

test('--proxy-neighbor answers ARP and NDP for VIPs on the clients\' segment; without it they are unreachable; entries removed at stop', { skip: skipUnless(), timeout: 120_000 }, async () => {
  await withLab({ backends: 2 }, async ({ lab, start }) => {
    const dev = lab.client.lbDev;
    let l4 = await start({ vips: [VIP4, VIP6], ports: ['8080/tcp'] });
    const without = await runClient(lab, { target: VIP4, proto: 'tcp', count: 3, concurrency: 3, connTimeoutMs: 1_500, timeoutMs: 8_000 });
    assert.equal(without.ok, 0, 'nobody answers ARP for the VIP');
    assert.equal((await l4.stop()).code, 0);
    // The failed resolutions above left FAILED neighbour entries in the client, which would answer
    // EHOSTUNREACH until they expire: forget them, as a client would after its retry interval.
    await lab.exec('client', 'ip', ['neigh', 'flush', 'to', VIP4]);
    await lab.exec('client', 'ip', ['-6', 'neigh', 'flush', 'to', VIP6]);

    l4 = await start({ vips: [VIP4, VIP6], ports: ['8080/tcp'], extraArgs: ['--proxy-neighbor', dev] });
    const proxies = await lab.exec('lb', 'ip', ['neigh', 'show', 'proxy']);
    const proxies6 = await lab.exec('lb', 'ip', ['-6', 'neigh', 'show', 'proxy']);
    assert.match(proxies.stdout, new RegExp(`${VIP4.replace(/\./g, '\\.')} dev ${dev} proxy`));
    assert.match(proxies6.stdout, new RegExp(`${VIP6} dev ${dev} proxy`));
    for (const target of [VIP4, VIP6]) {
      const r = await runClient(lab, { target, proto: 'tcp', count: 200, concurrency: 16, timeoutMs: 30_000 });
      assert.equal(r.failed, 0, `${target}: ${JSON.stringify(r.errors)}`);
      assert.deepEqual(Object.keys(r.perBackend).sort(), ['b1', 'b2']);
    }
    assert.equal((await l4.stop()).code, 0);
    assert.equal((await lab.exec('lb', 'ip', ['neigh', 'show', 'proxy'])).stdout.trim(), '');
    assert.equal((await lab.exec('lb', 'ip', ['-6', 'neigh', 'show', 'proxy'])).stdout.trim(), '');
  });
});
