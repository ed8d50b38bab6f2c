// iperf3 through l4nat with --hash src: its TCP control connection and its UDP (or second TCP) data connection
// must reach the same server, or the test fails with "Connection refused" (the other server has no test running).
// Three backends, several client addresses (IPv4 and IPv6), a real iperf3 on every backend. The flow table then
// shows every flow of a client on one backend, and the clients spread over more than one backend.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { adminRequest } from '../src/lab/admin-client';
import type { Lab } from '../src/lab/lab';
import { sleep, withLab } from './rigs/fixture';
import { skipUnless } from './rigs/requirements';

const PORT = 5201;
const HASH_KEY = ['--hash-key', '0f1e2d3c4b5a69788796a5b4c3d2e1f0'];
const CLIENTS4 = ['10.201.0.11', '10.201.0.12', '10.201.0.13', '10.201.0.14', '10.201.0.15', '10.201.0.16'];
const CLIENTS6 = ['fd4c::11', 'fd4c::12'];

async function waitListening(lab: Lab, role: string): Promise<void> {
  for (let i = 0; i < 100; i++) {
    if ((await lab.exec(role, 'ss', ['-Hltn', `sport = :${PORT}`])).stdout.trim() !== '') return;
    await sleep(100);
  }
  throw new Error(`iperf3 in ${role} is not listening on ${PORT}`);
}

/** One iperf3 run from `client` (bound to that address); rejects with iperf3's own error if it fails. */
async function iperf(lab: Lab, vip: string, client: string, udp: boolean): Promise<void> {
  const args = ['-c', vip, '-p', String(PORT), '-B', client, '-t', '1', '--connect-timeout', '3000', ...(udp ? ['-u', '-b', '2M'] : [])];
  try {
    await lab.exec('client', 'iperf3', args, { timeoutMs: 20_000 });
  } catch (e) {
    throw new Error(`iperf3 ${udp ? 'UDP' : 'TCP'} from ${client} to ${vip} failed: ${(e as Error).message}`);
  }
}

/** The backends (host addresses) and protocols of `client`'s entries in l4nat's flow table (every page). */
async function flowsOf(lab: Lab, client: string): Promise<{ hosts: Set<string>; protos: Set<string> }> {
  const flows: Array<{ backend: string; proto: string }> = [];
  let cursor: number | null = 0;
  while (cursor !== null) {
    const r = await adminRequest(lab, 'GET', `/v1/flows?client=${encodeURIComponent(client)}&cursor=${cursor}`);
    assert.equal(r.status, 200, JSON.stringify(r.body));
    const page = r.body as { flows: Array<{ backend: string; proto: string }>; next?: number };
    flows.push(...page.flows);
    cursor = page.next ?? null;
  }
  return {
    hosts: new Set(flows.map((f) => f.backend.replace(/:\d+\/(tcp|udp)$/, '').replace(/^\[|\]$/g, ''))),
    protos: new Set(flows.map((f) => f.proto)),
  };
}

test('--hash src: iperf3 TCP and UDP from several client addresses through l4nat with 3 backends all succeed; each client\'s flows are on one backend', { skip: skipUnless({ commands: ['iperf3', 'ss'] }), timeout: 180_000 }, async () => {
  await withLab({ backends: 3, servers: false }, async ({ lab, start }) => {
    for (const c of CLIENTS4) await lab.ip('client', ['addr', 'add', `${c}/24`, 'dev', lab.client.dev]);
    for (const c of CLIENTS6) await lab.ip('client', ['-6', 'addr', 'add', `${c}/64`, 'dev', lab.client.dev, 'nodad']);
    for (const b of lab.backends) lab.spawn(b.role, 'iperf3', ['-s', '-p', String(PORT)]);
    for (const b of lab.backends) await waitListening(lab, b.role);
    const l4 = await start({ ports: [`${PORT}/tcp`, `${PORT}/udp`], backendPort: PORT, extraArgs: ['--hash', 'src', ...HASH_KEY] });

    const used = new Set<string>();
    const clients: Array<[string, string]> = [...CLIENTS4.map((c): [string, string] => [c, lab.vip4]), ...CLIENTS6.map((c): [string, string] => [c, lab.vip6!])];
    for (const [client, vip] of clients) {
      await iperf(lab, vip, client, false);
      await iperf(lab, vip, client, true);
      const { hosts, protos } = await flowsOf(lab, client);
      assert.deepEqual([...protos].sort(), ['tcp', 'udp'], `${client}: TCP and UDP flows in the table`);
      assert.equal(hosts.size, 1, `${client}: every flow on one backend, got ${[...hosts].join(', ')}`);
      used.add([...hosts][0]!.includes(':') ? lab.backends.find((b) => b.ipv6 === [...hosts][0])!.id : lab.backends.find((b) => b.ipv4 === [...hosts][0])!.id);
    }
    assert.ok(used.size >= 2, `the clients spread over more than one backend: ${[...used].join(', ')}`);
    assert.equal((await l4.stop()).code, 0);
  });
});
