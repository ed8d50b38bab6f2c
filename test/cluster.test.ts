// Scale-out pieces that need no root: the `cluster` config section (errors name the path, the value and what is
// expected), the BIRD include l4nat writes, `birdc show protocols` parsing, the health majority, and the health
// views' channel (mutual TLS, token, reply cap) against real and forged peers on 127.0.0.1.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer as createHttpServer, get as httpGet, type Server } from 'node:http';
import { createServer as createTlsServer, request as httpsRequest } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { HealthAgreement, majorityHealthy, MAX_PEER_REPLY_BYTES, type LocalState } from '../src/cluster/agreement';
import { configureSucceeded, parseProtocols, renderInclude } from '../src/cluster/bird';
import { DisagreementGuard, judgeService, type PeerRings } from '../src/cluster/disagreement';
import { clusterOptionsOf, type ClusterOptions } from '../src/cluster/options';
import { parseConfig } from '../src/config/load';
import { configProblems } from './rigs/config-problems';
import { issueCert, makeCa, selfSignedCert } from './rigs/certs';

const dir = mkdtempSync(join(tmpdir(), 'l4nat-cluster-'));
after(() => rmSync(dir, { recursive: true, force: true }));
// Readable files stand in for TLS material where only the config is checked.
const pem = join(dir, 'any.pem');
writeFileSync(pem, 'x');
const TLS = `  tls: {cert: ${pem}, key: ${pem}, ca: ${pem}}\n`;

const BASE = `
global: { hash_key: "00112233445566778899aabbccddeeff" }
services:
  - name: web
    vips: [10.0.0.10]
    ports: [80]
    backends: ["10.0.1.11:8080"]
`;

function problems(yaml: string): string[] {
  return configProblems(BASE + yaml);
}

test('cluster section: defaults and peers', () => {
  const o = parseConfig(`${BASE}cluster:\n  listen: 10.9.0.1\n${TLS}  peers: ["10.9.0.2", "10.9.0.3:9999", "[fd00::3]:9181"]\n  bgp:\n    include_file: /run/l4nat/bird.conf\n    return_routes: ["0.0.0.0/0", "fd00::/8"]\n    upstream_protocols: [upstream]\n`, 'l4nat.yaml');
  const c = clusterOptionsOf(o)!;
  assert.equal(c.port, 9181);
  assert.equal(c.health, 'majority');
  assert.deepEqual(c.peers, [
    { addr: '10.9.0.2', port: 9181 },
    { addr: '10.9.0.3', port: 9999 },
    { addr: 'fd00::3', port: 9181 },
  ]);
  assert.deepEqual(c.bgp?.returnRoutes, [
    { prefix: '0.0.0.0/0', family: 4 },
    { prefix: 'fd00::/8', family: 6 },
  ]);
  assert.equal(c.bgp?.socket, '/run/bird/bird.ctl');
  assert.equal(c.bgp?.withdrawDelay, 1);
  assert.deepEqual(c.tls, { cert: pem, key: pem, ca: pem });
  assert.equal(clusterOptionsOf(parseConfig(BASE, 'l4nat.yaml')), undefined);
});

test('cluster section: off loopback the health views need mutual TLS; the token file must be owner-only', () => {
  const open = problems('cluster:\n  listen: 0.0.0.0\n');
  assert.ok(open.some((x) => /^cluster: listen 0\.0\.0\.0 is not a loopback address: the health views need tls \{cert, key, ca\}/.test(x)), open.join('\n'));
  const peer = problems('cluster:\n  listen: 127.0.0.1\n  peers: ["127.0.0.2", "10.9.0.2"]\n');
  assert.ok(peer.some((x) => /^cluster: peer 10\.9\.0\.2 is not a loopback address: the health views need tls/.test(x)), peer.join('\n'));
  assert.deepEqual(problems('cluster:\n  listen: 127.0.0.1\n  peers: ["127.0.0.2"]\n'), [], 'one host\'s loopback: plain HTTP allowed');
  const files = problems('cluster:\n  listen: 10.9.0.1\n  tls: {cert: /nonexistent/c.pem, key: /nonexistent/k.pem, ca: /nonexistent/ca.pem}\n');
  for (const k of ['cert', 'key', 'ca']) assert.ok(files.some((x) => new RegExp(`^cluster\\.tls\\.${k}: cannot read ".*": ENOENT`).test(x)), files.join('\n'));
  assert.ok(problems('cluster:\n  listen: 10.9.0.1\n  tls: {cert: /x}\n').some((x) => /^cluster\.tls: missing required key "key"/.test(x)));
  const token = join(dir, 'cluster.token');
  writeFileSync(token, 'a-cluster-token-of-some-length\n', { mode: 0o644 });
  const tk = problems(`cluster:\n  listen: 10.9.0.1\n${TLS}  token_file: ${token}\n`);
  assert.ok(tk.some((x) => x.startsWith(`cluster.token_file: cluster token file ${token} has mode 0644: its group and other users may access it; make it private (chmod 600 ${token})`)), tk.join('\n'));
});

test('cluster section: every problem names its path, the value and what is expected', () => {
  const p = problems(`cluster:\n  peers: ["10.9.0.2:99999", "nope", "10.9.0.2", "10.9.0.2"]\n  poll_interval: 2\n  peer_timeout: 3\n  bgp:\n    include_file: relative.conf\n`);
  assert.ok(p.some((x) => /^cluster\.bgp\.include_file: got "relative\.conf", expected an absolute path/.test(x)), p.join('\n'));
  const q = problems(`cluster:\n  peers: ["10.9.0.2:99999", "nope", "10.9.0.2", "10.9.0.2"]\n  poll_interval: 2\n  peer_timeout: 3\n  bgp:\n    include_file: /x.conf\n    return_routes: ["10.0.0.0/33"]\n`);
  const want = [
    /^cluster: missing required key "listen"/,
    /^cluster\.peers\[0\]: got "10\.9\.0\.2:99999", the port must be a whole number from 1 to 65535/,
    /^cluster\.peers\[1\]: got "nope", expected ADDR, ADDR:PORT or \[IPV6\]:PORT/,
    /^cluster\.peers\[3\]: got 10\.9\.0\.2:9181 twice/,
    /^cluster\.peer_timeout: got 3, expected at least twice poll_interval \(4 s\)/,
    /^cluster\.bgp\.return_routes\[0\]: got "10\.0\.0\.0\/33", expected an IPv4 or IPv6 prefix/,
  ];
  for (const w of want) assert.ok(q.some((x) => w.test(x)), `${w} not in:\n${q.join('\n')}`);
  assert.ok(q.every((x) => /\(line \d+, column \d+\)$/.test(x)), q.join('\n'));
  const r = problems(`cluster:\n  listen: 10.9.0.1\n${TLS}  health: vote\n  bgp: { include_file: /x, upstream_protocols: ["bad name"] }\n`);
  assert.ok(r.some((x) => /^cluster\.health: got "vote", expected one of "majority", "local"/.test(x)), r.join('\n'));
  assert.ok(r.some((x) => /^cluster\.bgp\.upstream_protocols\[0\]: got "bad name", expected a BIRD protocol name/.test(x)), r.join('\n'));
  const tk = problems(`cluster:\n  listen: 10.9.0.1\n  token_file: /nonexistent/l4nat-token\n`);
  assert.ok(tk.some((x) => /^cluster\.token_file: cannot read "\/nonexistent\/l4nat-token": ENOENT/.test(x)), tk.join('\n'));
  const s = problems(`cluster:\n  listen: 10.9.0.1\n  peers: ["10.9.0.1"]\n`);
  assert.ok(s.some((x) => /^cluster\.peers\[0\]: got 10\.9\.0\.1:9181, which is this host's own listen address/.test(x)), s.join('\n'));
});

test('cluster.disagreement_withdraw_after: 5 s by default, 0 turns it off, otherwise at least twice poll_interval', () => {
  const at = (extra: string): number => clusterOptionsOf(parseConfig(`${BASE}cluster:\n  listen: 127.0.0.1\n${extra}`, 'l4nat.yaml'))!.disagreementWithdrawAfter;
  assert.equal(at(''), 5);
  assert.equal(at('  disagreement_withdraw_after: 0\n'), 0);
  assert.equal(at('  poll_interval: 1\n  peer_timeout: 3\n  disagreement_withdraw_after: 2\n'), 2);
  const short = problems('cluster:\n  listen: 127.0.0.1\n  poll_interval: 1\n  peer_timeout: 3\n  disagreement_withdraw_after: 1.5\n');
  assert.ok(short.some((x) => /^cluster\.disagreement_withdraw_after: got 1\.5, expected 0 \(off\) or at least twice poll_interval \(2 s\)/.test(x)), short.join('\n'));
  const neg = problems('cluster:\n  listen: 127.0.0.1\n  disagreement_withdraw_after: -1\n');
  assert.ok(neg.some((x) => /^cluster\.disagreement_withdraw_after: got -1, expected a number of seconds from 0 to 3600/.test(x)), neg.join('\n'));
});

test('a reload may not change the cluster section', async () => {
  const { restartOnlyChanges } = await import('../src/config/load');
  const a = parseConfig(`${BASE}cluster:\n  listen: 10.9.0.1\n  peers: [10.9.0.2]\n${TLS}`, 'x');
  const b = parseConfig(`${BASE}cluster:\n  listen: 10.9.0.1\n  peers: [10.9.0.3]\n${TLS}`, 'x');
  assert.deepEqual(restartOnlyChanges(a, b), ['cluster']);
  assert.deepEqual(restartOnlyChanges(a, a), []);
});

test('the BIRD include: four static protocols via the TUN with check link', () => {
  const text = renderInclude(
    { tun: 'l4nat0', vips: [{ addr: '10.0.0.10', family: 4 }, { addr: 'fd00::10', family: 6 }], returnRoutes: [{ prefix: '0.0.0.0/0', family: 4 }] },
    { vips: 'ok', ret: 'ok' },
  );
  assert.match(text, /protocol static l4nat_vip4 \{\n  ipv4;\n  check link;\n  route 10\.0\.0\.10\/32 via "l4nat0";\n\}/);
  assert.match(text, /protocol static l4nat_vip6 \{\n  ipv6;\n  check link;\n  route fd00::10\/128 via "l4nat0";\n\}/);
  assert.match(text, /protocol static l4nat_ret4 \{\n  ipv4;\n  check link;\n  route 0\.0\.0\.0\/0 via "l4nat0";\n\}/);
  assert.match(text, /protocol static l4nat_ret6 \{\n  ipv6;\n  check link;\n\}/);
  const none = renderInclude({ tun: 'l4nat0', vips: [], returnRoutes: [] }, { vips: 'withdrawn: stopping', ret: 'withdrawn: stopping' });
  assert.doesNotMatch(none, /route /);
  assert.throws(() => renderInclude({ tun: 'x"; }', vips: [], returnRoutes: [] }, { vips: '', ret: '' }), /tun must be an interface name/);
});

test('the BIRD include of an IPv6-only host: the VIP as a /128 and ::/0 in the v6 protocols, the v4 ones empty', () => {
  const text = renderInclude({ tun: 'l4nat0', vips: [{ addr: 'fd00:200::10', family: 6 }], returnRoutes: [{ prefix: '::/0', family: 6 }] }, { vips: 'ok', ret: 'ok' });
  assert.match(text, /protocol static l4nat_vip6 \{\n  ipv6;\n  check link;\n  route fd00:200::10\/128 via "l4nat0";\n\}/);
  assert.match(text, /protocol static l4nat_ret6 \{\n  ipv6;\n  check link;\n  route ::\/0 via "l4nat0";\n\}/);
  assert.match(text, /protocol static l4nat_vip4 \{\n  ipv4;\n  check link;\n\}/);
  assert.match(text, /protocol static l4nat_ret4 \{\n  ipv4;\n  check link;\n\}/);
});

test('birdc output: configure result and protocol states', () => {
  assert.ok(configureSucceeded('BIRD 2.0.12 ready.\nReading configuration from /etc/bird.conf\nReconfigured'));
  assert.ok(!configureSucceeded('BIRD 2.0.12 ready.\nReading configuration from /etc/bird.conf\n/x.conf:3:1 syntax error'));
  assert.ok(!configureSucceeded('Unable to connect to server control socket (/run/bird/bird.ctl): No such file or directory'));
  const p = parseProtocols(`BIRD 2.0.12 ready.
Name       Proto      Table      State  Since         Info
device1    Device     ---        up     22:10:43.161  
l4nat_vip4 Static     master4    up     22:10:44.337  
upstream   BGP        ---        start  22:10:44.000  Active        Socket: Connection refused
b1         BGP        ---        up     2026-11-21    Established   
`);
  assert.deepEqual(p.get('upstream'), { state: 'start', info: 'Active        Socket: Connection refused' });
  assert.deepEqual(p.get('b1'), { state: 'up', info: 'Established' });
  assert.equal(p.get('l4nat_vip4')?.state, 'up');
  assert.equal(p.has('Name'), false);
});

test('health majority: a lone dissenter does not move the verdict; stale peers do not vote', () => {
  assert.equal(majorityHealthy([false, true, true]), true);
  assert.equal(majorityHealthy([false, false, true]), false);
  assert.equal(majorityHealthy([false, true]), true, 'a tie keeps the backend');
  assert.equal(majorityHealthy([false]), false);
  const opts = { listen: '10.9.0.1', port: 9181, peers: [{ addr: '10.9.0.2', port: 9181 }, { addr: '10.9.0.3', port: 9181 }], health: 'majority' as const, pollInterval: 0.5, peerTimeout: 2, settle: 3, disagreementWithdrawAfter: 5 };
  const a = new HealthAgreement(opts, () => ({ ready: false, health: new Map(), agreed: new Map(), rings: {}, announced: { vips: [], returnRoutes: [] } }));
  const now = 1_000_000;
  a.views.get('10.9.0.2:9181')!.at = now - 500;
  a.views.get('10.9.0.2:9181')!.health = new Map([['s|b1', false], ['s|b2', true]]);
  a.views.get('10.9.0.3:9181')!.at = now - 5_000; // stale
  a.views.get('10.9.0.3:9181')!.health = new Map([['s|b1', false], ['s|b2', false]]);
  const v = a.agree(new Map([['s|b1', false], ['s|b2', false], ['s|b3', false]]), now);
  assert.deepEqual([...v], [['s|b1', false], ['s|b2', true], ['s|b3', false]]);
  const local = new HealthAgreement({ ...opts, health: 'local' }, () => ({ ready: false, health: new Map(), agreed: new Map(), rings: {}, announced: { vips: [], returnRoutes: [] } }));
  assert.deepEqual([...local.agree(new Map([['s|b2', false]]), now)], [['s|b2', false]]);
});

async function freePort(): Promise<number> {
  const s = createHttpServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const { port } = s.address() as AddressInfo;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

test('health views over IPv6: a peer on [::1]:PORT is polled, and a host names itself with brackets', async () => {
  const state = (): LocalState => ({ ready: true, health: new Map([['s|b1', false]]), agreed: new Map(), rings: {}, announced: { vips: ['fd00::10'], returnRoutes: ['::/0'] } });
  const base: Omit<ClusterOptions, 'port' | 'peers'> = { listen: '::1', health: 'majority', pollInterval: 0.5, peerTimeout: 4, settle: 0, disagreementWithdrawAfter: 5 };
  const [portA, portB] = [await freePort(), await freePort()];
  const b = new HealthAgreement({ ...base, port: portB, peers: [] }, state);
  const a = new HealthAgreement({ ...base, port: portA, peers: [{ addr: '::1', port: portB }] }, state);
  try {
    await b.listen();
    await a.listen();
    await new Promise<void>((r) => a.startPolling(r));
    const view = a.views.get(`[::1]:${portB}`);
    assert.ok(view, `views: ${[...a.views.keys()].join(', ')}`);
    assert.equal(view.error, undefined);
    assert.deepEqual([...view.health!], [['s|b1', false]]);
    const body = await new Promise<string>((resolve, reject) => {
      httpGet({ host: '::1', port: portB, path: '/cluster/v1/state', agent: false }, (res) => {
        let text = '';
        res.on('data', (c) => (text += c));
        res.on('end', () => resolve(text));
      }).on('error', reject);
    });
    assert.equal(JSON.parse(body).host, `[::1]:${portB}`);
  } finally {
    await a.close();
    await b.close();
  }
});

async function listening(s: Server): Promise<number> {
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  return (s.address() as AddressInfo).port;
}

test('health views: mutual TLS with the cluster CA and a token; forged peers (another CA, plain HTTP), an oversized reply and unknown clients get no say', async () => {
  const ca = makeCa(dir);
  const hostA = issueCert(dir, ca, 'host-a', ['127.0.0.1']);
  const hostB = issueCert(dir, ca, 'host-b', ['127.0.0.1']);
  const rogue = selfSignedCert(dir, 'rogue', ['127.0.0.1']);
  const tokenFile = join(dir, 'peers.token');
  const TOKEN = 'the-cluster-token-0123456789';
  writeFileSync(tokenFile, `${TOKEN}\n`, { mode: 0o600 });
  const everythingDown = JSON.stringify({ health: { 's|b1': false, 's|b2': false }, announced: { vips: ['10.0.0.10'] } });
  const state = (health: Array<[string, boolean]>) => (): LocalState => ({ ready: true, health: new Map(health), agreed: new Map(), rings: {}, announced: { vips: ['10.0.0.10'], returnRoutes: [] } });

  // Three forged peers, all claiming every backend is down: a majority of the votes if they counted.
  const servers: Server[] = [];
  const forgedTls = createTlsServer({ cert: readFileSync(rogue.cert), key: readFileSync(rogue.key) }, (_q, r) => r.end(everythingDown));
  const forgedPlain = createHttpServer((_q, r) => r.end(everythingDown));
  // An insider (a certificate from the CA) whose reply never ends: read up to the cap, then dropped.
  const huge = createTlsServer({ cert: readFileSync(hostB.cert), key: readFileSync(hostB.key) }, (_q, r) => {
    r.write(`{"health":{"s|b2":false},"pad":"`);
    const chunk = 'x'.repeat(64 * 1024);
    let sent = 0;
    const more = (): void => {
      while (sent <= MAX_PEER_REPLY_BYTES && r.write(chunk)) sent += chunk.length;
      if (sent <= MAX_PEER_REPLY_BYTES) r.once('drain', more);
      else r.end('"}');
    };
    more();
  });
  servers.push(forgedTls, forgedPlain, huge);
  const [pTls, pPlain, pHuge] = [await listening(forgedTls), await listening(forgedPlain), await listening(huge)];

  const base: Omit<ClusterOptions, 'port' | 'peers'> = { listen: '127.0.0.1', health: 'majority', pollInterval: 0.5, peerTimeout: 4, settle: 0, disagreementWithdrawAfter: 5, tokenFile };
  const portA = await freePort();
  const portB = await freePort();
  const b = new HealthAgreement({ ...base, port: portB, peers: [], tls: { ...hostB, ca: ca.cert } }, state([['s|b1', false], ['s|b2', true]]));
  const a = new HealthAgreement(
    { ...base, port: portA, peers: [portB, pTls, pPlain, pHuge].map((port) => ({ addr: '127.0.0.1', port })), tls: { ...hostA, ca: ca.cert } },
    state([['s|b1', true], ['s|b2', true]]),
  );
  try {
    await b.listen();
    await a.listen();
    await new Promise<void>((r) => a.startPolling(r));
    const view = (port: number) => a.views.get(`127.0.0.1:${port}`)!;
    assert.equal(view(portB).error, undefined, 'the real peer answers');
    assert.deepEqual([...view(portB).health!], [['s|b1', false], ['s|b2', true]]);
    assert.match(view(pTls).error ?? '', /self[- ]signed|unable to verify|certificate/i, 'a certificate from another CA');
    assert.ok(view(pTls).at === undefined && view(pPlain).at === undefined && view(pHuge).at === undefined, 'no forged view is fresh');
    assert.ok(view(pPlain).error !== undefined, 'plain HTTP');
    assert.match(view(pHuge).error ?? '', new RegExp(`reply larger than ${MAX_PEER_REPLY_BYTES} bytes`));
    // Votes: this host (up, up) and the real peer (down, up): b1 is a tie (kept), b2 up. The forged "down"s count for nothing.
    assert.deepEqual([...a.agree(new Map([['s|b1', true], ['s|b2', true]]))], [['s|b1', true], ['s|b2', true]]);

    // This host's own listener: only clients with a certificate from the CA, and then only with the token.
    const ask = (cert?: { cert: string; key: string }, token?: string): Promise<string> =>
      new Promise((resolve) => {
        const req = httpsRequest(
          { host: '127.0.0.1', port: portA, path: '/cluster/v1/state', ca: readFileSync(ca.cert), agent: false, headers: token ? { authorization: `Bearer ${token}` } : {}, ...(cert ? { cert: readFileSync(cert.cert), key: readFileSync(cert.key) } : {}) },
          (res) => {
            res.resume();
            res.on('end', () => resolve(String(res.statusCode)));
          },
        );
        req.on('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? 'error'));
        req.end();
      });
    assert.doesNotMatch(await ask(), /^\d+$/, 'no client certificate: no TLS session');
    assert.doesNotMatch(await ask(rogue, TOKEN), /^\d+$/, 'a certificate from another CA: no TLS session');
    assert.equal(await ask(hostB), '401', 'a host of the cluster without the token');
    assert.equal(await ask(hostB, TOKEN), '200');
  } finally {
    await a.close();
    await b.close();
    for (const s of servers) {
      s.closeAllConnections();
      await new Promise<void>((r) => s.close(() => r()));
    }
  }
});

// ---------------------------------------------------------------------------------------------------------------
// Tables that disagree (src/cluster/disagreement.ts): the decision over ring digests with fake peers and a fake clock.

const VIP_A = '10.0.0.10';
const VIP_B = '10.0.0.20';
const A80 = `${VIP_A}:80/tcp`;
const A443 = `${VIP_A}:443/tcp`;
const B80 = `${VIP_B}:80/tcp`;
const SERVICE_VIP = new Map([[A80, VIP_A], [A443, VIP_A], [B80, VIP_B]]);
const peer = (name: string, rings: Record<string, string>, vips = [VIP_A, VIP_B]): PeerRings => ({ peer: name, rings, vips });

test('disagreement: a ring differs only when a strict majority of the votes holds another digest; peers without the service abstain', () => {
  assert.equal(judgeService(A80, 'x', [peer('p2', { [A80]: 'x' }), peer('p3', { [A80]: 'y' })]).kind, 'agree', 'this host is in the majority');
  const d = judgeService(A80, 'y', [peer('p2', { [A80]: 'x' }), peer('p3', { [A80]: 'x' })]);
  assert.deepEqual(d, { kind: 'differs', votes: 3, majority: 'x', majorityPeers: ['p2', 'p3'] });
  assert.equal(judgeService(A80, 'y', [peer('p2', { [A80]: 'x' })]).kind, 'no-majority', 'two hosts that differ: a tie, nobody is told apart');
  assert.equal(judgeService(A80, 'y', [peer('p2', { [A80]: 'x' }), peer('p3', { [A80]: 'z' })]).kind, 'no-majority', 'three different tables');
  assert.equal(judgeService(A80, 'y', [peer('p2', { [A80]: 'x' }), peer('p3', { [A80]: 'x' }), peer('p4', { [A80]: 'y' })]).kind, 'no-majority', '2-2');
  assert.equal(judgeService(A80, 'y', [peer('p2', { [A80]: 'x' }), peer('p3', {})]).kind, 'no-majority', 'p3 lacks the service: it abstains, leaving a tie');
  assert.equal(judgeService(A80, 'y', []).kind, 'agree', 'alone: this host is the majority');
});

test('disagreement: withdrawn after the bound (reported once per withdrawal), announced again after the hold; a break in the disagreement restarts the bound', () => {
  const g = new DisagreementGuard(5_000, 2_000);
  const mine = { [A80]: 'new', [A443]: 'same', [B80]: 'same' };
  const others = [peer('p2', { [A80]: 'old', [A443]: 'same', [B80]: 'same' }), peer('p3', { [A80]: 'old', [A443]: 'same', [B80]: 'same' })];
  let t = 1_000_000;
  assert.deepEqual(g.update(t, mine, SERVICE_VIP, others), { withdrawn: [], restored: [] });
  assert.deepEqual(g.view().map((d) => [d.vip, d.state]), [[VIP_A, 'differs']], 'A differs (one of its two services); B agrees');
  t += 4_900;
  assert.equal(g.update(t, mine, SERVICE_VIP, others).withdrawn.length, 0, 'not before the bound');
  // A rolling change that completes within the bound: the disagreement breaks, and the bound starts again.
  t += 50;
  g.update(t, mine, SERVICE_VIP, others.map((p) => peer(p.peer, { ...p.rings, [A80]: 'new' })));
  assert.deepEqual(g.view(), [], 'agrees again: nothing pending');
  t += 50;
  g.update(t, mine, SERVICE_VIP, others);
  t += 4_999;
  assert.equal(g.update(t, mine, SERVICE_VIP, others).withdrawn.length, 0, 'the bound started again at the new disagreement');
  t += 1;
  const ev = g.update(t, mine, SERVICE_VIP, others);
  assert.deepEqual(ev.withdrawn.map((d) => [d.vip, d.services.map((s) => [s.service, s.mine, s.majority, s.majorityPeers, s.votes])]), [[VIP_A, [[A80, 'new', 'old', ['p2', 'p3'], 3]]]]);
  assert.deepEqual([...g.withdrawn()], [VIP_A], 'the VIP goes, with both its services: one differing is enough');
  assert.equal(g.withdrawals, 1);
  t += 10_000;
  assert.equal(g.update(t, mine, SERVICE_VIP, others).withdrawn.length, 0, 'reported once');
  assert.equal(g.withdrawals, 1);
  // The config is restored: agreeing again, announced after the hold; a disagreement within the hold restarts it.
  const healed = { ...mine, [A80]: 'old' };
  t += 1_000;
  g.update(t, healed, SERVICE_VIP, others);
  t += 1_500;
  g.update(t, mine, SERVICE_VIP, others);
  assert.deepEqual([...g.withdrawn()], [VIP_A], 'differs again within the hold');
  t += 500;
  g.update(t, healed, SERVICE_VIP, others);
  t += 1_999;
  assert.deepEqual(g.update(t, healed, SERVICE_VIP, others).restored, [], 'not before the hold');
  t += 1;
  assert.deepEqual(g.update(t, healed, SERVICE_VIP, others).restored, [{ vip: VIP_A, withdrawnMs: 15_000 }]);
  assert.deepEqual([...g.withdrawn()], []);
  assert.deepEqual(g.view(), []);
});

test('disagreement: never withdrawn in the majority, on a tie, when no host of the majority announces the VIP, or when off', () => {
  const t0 = 5_000_000;
  const run = (g: DisagreementGuard, mine: Record<string, string>, peers: PeerRings[]): Set<string> => {
    for (let t = t0; t <= t0 + 60_000; t += 500) g.update(t, mine, SERVICE_VIP, peers);
    return g.withdrawn();
  };
  const differ = { [A80]: 'new', [A443]: 'x', [B80]: 'x' };
  assert.deepEqual([...run(new DisagreementGuard(5_000, 2_000), { [A80]: 'old', [A443]: 'x', [B80]: 'x' }, [peer('p2', { [A80]: 'old' }), peer('p3', { [A80]: 'new' })])], [], 'this host in the majority');
  assert.deepEqual([...run(new DisagreementGuard(5_000, 2_000), differ, [peer('p2', { [A80]: 'old' })])], [], 'two hosts that differ: neither withdraws');
  assert.deepEqual([...run(new DisagreementGuard(5_000, 2_000), differ, [peer('p2', { [A80]: 'old' }, [VIP_B]), peer('p3', { [A80]: 'old' }, [])])], [], 'the majority does not announce A');
  assert.deepEqual([...run(new DisagreementGuard(0, 2_000), differ, [peer('p2', { [A80]: 'old' }), peer('p3', { [A80]: 'old' })])], [], 'disagreement_withdraw_after 0: off');
  assert.deepEqual([...run(new DisagreementGuard(5_000, 2_000), differ, [peer('p2', { [A80]: 'old' }), peer('p3', { [A80]: 'old' })])], [VIP_A], 'the same with a majority: withdrawn');
  // Three hosts, each judging with the others' digests as they are: the minority alone withdraws.
  const hosts = { h1: { [A80]: 'new' }, h2: { [A80]: 'old' }, h3: { [A80]: 'old' } } as Record<string, Record<string, string>>;
  const out = Object.keys(hosts).map((h) => [h, [...run(new DisagreementGuard(5_000, 2_000), hosts[h]!, Object.keys(hosts).filter((x) => x !== h).map((x) => peer(x, hosts[x]!)))]]);
  assert.deepEqual(out, [['h1', [VIP_A]], ['h2', []], ['h3', []]]);
});

test('disagreement: a stale peer does not vote (its old digest cannot make a majority)', () => {
  const opts = { listen: '10.9.0.1', port: 9181, peers: [{ addr: '10.9.0.2', port: 9181 }, { addr: '10.9.0.3', port: 9181 }], health: 'majority' as const, pollInterval: 0.5, peerTimeout: 2, settle: 3, disagreementWithdrawAfter: 5 };
  const a = new HealthAgreement(opts, () => ({ ready: false, health: new Map(), agreed: new Map(), rings: {}, announced: { vips: [], returnRoutes: [] } }));
  let now = 2_000_000;
  const report = (digest: string) => ({ rings: { [A80]: digest }, announced: { vips: [VIP_A], returnRoutes: [] }, backends: {}, disagreement: [] });
  const p2 = a.views.get('10.9.0.2:9181')!;
  const p3 = a.views.get('10.9.0.3:9181')!;
  Object.assign(p2, { at: now, report: report('old') });
  Object.assign(p3, { at: now - 10_000, report: report('old') }); // answered 10 s ago: stale
  const g = new DisagreementGuard(5_000, 2_000);
  for (; now <= 2_030_000; now += 500) {
    p2.at = now;
    assert.deepEqual(a.freshRings(now).map((p) => p.peer), ['10.9.0.2:9181']);
    g.update(now, { [A80]: 'new' }, new Map([[A80, VIP_A]]), a.freshRings(now));
  }
  assert.deepEqual([...g.withdrawn()], [], 'with the stale peer out, 1 against 1: no majority');
  p3.at = now; // it answers again: two of three hold "old"
  for (const end = now + 5_000; now <= end; now += 500) {
    p2.at = p3.at = now;
    g.update(now, { [A80]: 'new' }, new Map([[A80, VIP_A]]), a.freshRings(now));
  }
  assert.deepEqual([...g.withdrawn()], [VIP_A]);
});
