// The cluster's view for operators (no root): a host whose ring differs from its peers' withdraws the VIP in the
// announcement it wants (logged once, counted, in `l4nat status`) and announces it again after the hold; every
// host's view side by side (GET /v1/cluster's body, src/cluster/view.ts) with a peer that does not answer and one
// that is stale; its rendering by `l4nat cluster status` (src/cli/cluster.ts) and the status line.
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { test } from 'node:test';
import pino from 'pino';
import { Cluster, type ClusterControl } from '../src/cluster';
import { ringDigest } from '../src/cluster/agreement';
import type { ClusterOptions } from '../src/cluster/options';
import { buildClusterView } from '../src/cluster/view';
import { formatClusterView } from '../src/cli/cluster';
import { clusterLine } from '../src/cli/status';
import { createMetrics } from '../src/admin/metrics';
import { parseConfig } from '../src/config/load';
import { backendId, serviceId, type ServiceConfig } from '../src/config/model';

const CONFIG = `
global: { hash_key: "00112233445566778899aabbccddeeff" }
services:
  - name: web
    vips: [10.0.0.10]
    ports: [80]
    backends: ["10.0.1.11:8080", "10.0.1.12:8080"]
  - name: tls
    vips: [10.0.0.10]
    ports: [443]
    backends: ["10.0.1.11:8443"]
  - name: dns
    vips: [10.0.0.20]
    ports: ["53/udp"]
    backends: ["10.0.2.1:53"]
`;
const services = parseConfig(CONFIG, 'l4nat.yaml').services as ServiceConfig[];
const [A80, A443, B53] = services.map(serviceId);

async function closedPort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const { port } = s.address() as AddressInfo;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

function fakeControl(): ClusterControl {
  const weights = new Map(services.map((s) => [serviceId(s), new Map(s.backends.map((b) => [backendId(b, s.proto), b.weight]))]));
  return {
    localHealth: () => new Map(),
    healthVote: null,
    syncStatus: null,
    beforePlannedChange: null,
    republish: async () => undefined,
    publishedWeights: weights,
    summary: () => ({ allDown: [] }),
    current: services,
    backendState: () => ({ state: 'up' }),
  };
}

test('a host whose ring differs from both peers\' withdraws that VIP (every service of it) after the bound, logs it once, counts it, shows it, and announces it again after the hold', async () => {
  const lines: Array<Record<string, unknown>> = [];
  const log = pino({ level: 'info' }, new Writable({ write: (c, _e, cb) => (lines.push(JSON.parse(String(c))), cb()) }));
  const [p2, p3] = [await closedPort(), await closedPort()];
  const opts: ClusterOptions = { listen: '127.0.0.1', port: 9181, peers: [{ addr: '127.0.0.1', port: p2 }, { addr: '127.0.0.1', port: p3 }], health: 'majority', pollInterval: 0.5, peerTimeout: 2, settle: 0, disagreementWithdrawAfter: 5 };
  const c = new Cluster({ ...opts, listen: '' }, log); // '' : no listener of its own in a unit test
  let now = 10_000_000;
  c.clock = () => now;
  const rings = new Map([[A80, Uint32Array.of(0, 1, 0, 1, 0, 1, 0)], [A443, Uint32Array.of(1, 0, 1, 0, 1, 0, 1)], [B53, Uint32Array.of(0, 0, 0, 0, 0, 0, 0)]]);
  await c.start({ ctrl: fakeControl(), tun: 'l4nat0', rings: () => rings, dataplaneProblem: () => null });
  await c.agreement.close(); // the ticks below are the test's, on its clock
  const mine = Object.fromEntries([...rings].map(([k, r]) => [k, ringDigest(r)]));
  const peerNames = [...c.agreement.views.keys()];
  const answer = (rs: Record<string, string>): void => {
    for (const v of c.agreement.views.values()) {
      v.at = now;
      v.error = undefined;
      v.report = { rings: rs, announced: { vips: ['10.0.0.10', '10.0.0.20'], returnRoutes: [] }, backends: {}, disagreement: [] };
    }
  };
  const theirs = { ...mine, [A443]: 'f'.repeat(64) }; // the peers' ring for port 443 differs from this host's
  const vips = (): string[] => c.desired().a.vips.map((v) => v.addr).sort();
  assert.deepEqual(vips(), ['10.0.0.10', '10.0.0.20']);
  const t0 = now;
  for (const at of [0, 2_500, 4_999]) {
    now = t0 + at;
    answer(theirs);
    await c.tick();
  }
  assert.deepEqual(vips(), ['10.0.0.10', '10.0.0.20'], 'not yet: the bound is 5 s');
  assert.deepEqual(c.status(now).disagreement.map((d) => [d.vip, d.state]), [['10.0.0.10', 'differs']]);
  now += 1;
  answer(theirs);
  await c.tick();
  assert.deepEqual(vips(), ['10.0.0.20'], '10.0.0.10 withdrawn with both of its services; 10.0.0.20 agrees and stays');
  assert.match(c.desired().why.vips, /withdrawn \(tables differ from the cluster's majority\): 10\.0\.0\.10/);
  for (let i = 0; i < 4; i++) {
    now += 500;
    answer(theirs);
    await c.tick();
  }
  const logged = lines.filter((l) => l.event === 'disagreement_withdraw');
  assert.equal(logged.length, 1, 'logged once');
  assert.equal(logged[0]!.vip, '10.0.0.10');
  assert.deepEqual(logged[0]!.services, [{ service: A443, mine: mine[A443], majority: 'f'.repeat(64), majorityPeers: peerNames, votes: 3 }]);
  assert.match(String(logged[0]!.msg), new RegExp(`withdrawing VIP 10\\.0\\.0\\.10: .*${A443.replace(/[./]/g, '\\$&')} ring ${mine[A443]!.slice(0, 12)} vs ffffffffffff`));
  const st = c.status(now);
  assert.equal(st.withdrawals, 1);
  assert.deepEqual(st.peers, { fresh: 2, total: 2 });
  assert.match(clusterLine(st, now), /^cluster: 2\/2 peers fresh; VIP 10\.0\.0\.10 WITHDRAWN 2 s ago: tables differ from the majority \(10\.0\.0\.10:443\/tcp ring [0-9a-f]{12}, majority ffffffffffff\); 1 withdrawal\(s\) for disagreement since start$/);
  // The peers come round to this host's table: announced again once it has agreed for the hold (2 s).
  now += 500;
  answer(mine);
  await c.tick();
  now += 1_999;
  answer(mine);
  await c.tick();
  assert.deepEqual(vips(), ['10.0.0.20'], 'held');
  now += 1;
  answer(mine);
  await c.tick();
  assert.deepEqual(vips(), ['10.0.0.10', '10.0.0.20']);
  assert.equal(lines.filter((l) => l.event === 'disagreement_cleared').length, 1);
  assert.deepEqual(c.status(now).disagreement, []);
  await c.close();
});

test('every host side by side: digests marked against the fresh majority; a stale peer and one that never answered are shown as such and do not vote', () => {
  const now = 50_000_000;
  const report = (digest: string, state = 'up', inRing = 1) => ({
    rings: { [A80]: digest },
    announced: { vips: ['10.0.0.10'], returnRoutes: ['0.0.0.0/0'] },
    backends: { [A80]: { '10.0.1.11:8080/tcp': { state, weight: 1, inRing } } },
    disagreement: [],
  });
  const X = 'a'.repeat(64);
  const Y = 'b'.repeat(64);
  const v = buildClusterView({
    self: '10.210.0.1:9181',
    mine: { ...report(Y), disagreement: [{ vip: '10.0.0.10', state: 'withdrawn', since: now - 3_000, agreeingSince: null, services: [{ service: A80, mine: Y, majority: X, majorityPeers: ['10.210.0.2:9181', '10.210.0.3:9181'], votes: 3 }] }] },
    peers: [
      { peer: '10.210.0.2:9181', at: now - 300, report: report(X) },
      { peer: '10.210.0.3:9181', at: now - 400, report: report(X, 'down', 0) },
      { peer: '10.210.0.4:9181', at: now - 9_000, error: 'no answer within 1000 ms', report: report(Y) },
      { peer: '10.210.0.5:9181', error: 'connect ECONNREFUSED 10.210.0.5:9181' },
    ],
    now,
    peerTimeoutSeconds: 2,
    disagreementWithdrawAfterSeconds: 5,
  });
  assert.deepEqual(v.hosts.map((h) => [h.host, h.peer, h.ageMs, h.announced]), [
    ['10.210.0.1:9181', 'self', 0, ['10.0.0.10']],
    ['10.210.0.2:9181', 'fresh', 300, ['10.0.0.10']],
    ['10.210.0.3:9181', 'fresh', 400, ['10.0.0.10']],
    ['10.210.0.4:9181', 'stale', 9_000, ['10.0.0.10']],
    ['10.210.0.5:9181', 'no answer', null, null],
  ]);
  const s = v.services.find((x) => x.service === A80)!;
  assert.equal(s.majority, X, 'the stale host\'s Y does not count: X holds 2 of 3 votes');
  assert.deepEqual(Object.fromEntries(Object.entries(s.rings).map(([h, r]) => [h, r.mark])), {
    '10.210.0.1:9181': 'differs',
    '10.210.0.2:9181': 'majority',
    '10.210.0.3:9181': 'majority',
    '10.210.0.4:9181': 'stale',
    '10.210.0.5:9181': 'absent',
  });
  assert.deepEqual(s.backends[0]!.hosts['10.210.0.3:9181'], { state: 'down', weight: 1, inRing: 0 });
  assert.equal(s.backends[0]!.hosts['10.210.0.5:9181'], null);

  const text = formatClusterView(v, now);
  const rows = text.split('\n');
  assert.match(rows[0]!, /^cluster, as 10\.210\.0\.1:9181 sees it: a peer votes while it answered within 2 s; disagreement_withdraw_after 5 s$/);
  assert.match(text, /^10\.210\.0\.1:9181 +self +10\.0\.0\.10 +10\.0\.0\.10 WITHDRAWN 3\.0 s$/m);
  assert.match(text, /^10\.210\.0\.2:9181 +fresh, 0\.3 s +10\.0\.0\.10 +-$/m);
  assert.match(text, /^10\.210\.0\.4:9181 +STALE, 9\.0 s: no answer within 1000 ms +10\.0\.0\.10 +-$/m);
  assert.match(text, /^10\.210\.0\.5:9181 +NO ANSWER: connect ECONNREFUSED 10\.210\.0\.5:9181 +\? +-$/m);
  assert.match(text, /^ {2}ring +bbbbbbbbbbbb DIFFERS +aaaaaaaaaaaa = +aaaaaaaaaaaa = +bbbbbbbbbbbb stale +-$/m);
  assert.match(text, /^ {2}-> 10\.0\.1\.11:8080 +up 1\/1 +up 1\/1 +down 1\/0 +up 1\/1 +-$/m);
  // Side by side: each host's column starts where its name does in the service's header line.
  const head = rows.find((r) => r.startsWith(A80))!;
  const ring = rows.find((r) => r.startsWith('  ring'))!;
  for (const [h, cell] of [['10.210.0.2:9181', 'aaaaaaaaaaaa ='], ['10.210.0.4:9181', 'bbbbbbbbbbbb stale']]) assert.equal(ring.indexOf(cell, head.indexOf(h)), head.indexOf(h), `${h}'s column`);
});

test('metrics: withdrawals for disagreement since start and the VIPs withdrawn now, only with a cluster', async () => {
  const ctrl = { view: () => ({ services: [] }), reloads: { ok: 0, failed: 0 }, drainDeadlineRemovals: 0, lastReload: undefined };
  const counters = () => ({ total: {}, drops: {}, perQueue: [], heartbeatsMs: [], services: new Map(), backends: new Map() });
  const disagreement = [{ state: 'withdrawn' }, { state: 'differs' }, { state: 'withdrawn' }];
  const text = await createMetrics({ ctrl, counters, flowCount: () => 0, flowCapacity: 1, cluster: () => ({ withdrawals: 3, disagreement }) }).metrics();
  assert.match(text, /^l4nat_cluster_disagreement_withdrawals_total 3$/m);
  assert.match(text, /^l4nat_cluster_withdrawn_vips 2$/m);
  const none = await createMetrics({ ctrl, counters, flowCount: () => 0, flowCapacity: 1 }).metrics();
  assert.doesNotMatch(none, /l4nat_cluster_/);
});
