// icmp health checks end to end, through the real `l4nat up` in the lab's lb namespace, IPv4 and IPv6 services
// side by side (one raw socket per family shared by all their checkers). Five backends:
//   b1 answers echo itself (the kernel)                              -> stays up
//   b2 drops echo requests (nftables)                                -> goes down, "no echo reply, timeout"
//   b3 answers through a responder process, correct replies          -> stays up (the responder's positive control)
//   b4 the same responder, replies with the identifier's low bit flipped -> goes down: not counted
//   b5 the same responder, replies with the sequence number + 1      -> goes down: not counted
// While l4nat runs, its policy rules send ICMP *from* the backends into the TUN (errors about translated flows):
// the echo replies to the lb's own address are still delivered locally, because the kernel's `lookup local` rule
// (preference 0) comes first — the test checks both rules are there and that the replies arrived (a packet is
// routed once: delivered locally, or into the TUN, where the data plane would drop an echo reply as icmp_unhandled).
// Then without CAP_NET_RAW (an unprivileged l4nat holding CAP_NET_ADMIN only): `up` with an icmp check refuses to
// start, and a reload that adds one is rejected; both say what is missing. Root-only.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { IDLE_CLOSE_MS } from '../src/health/icmp';
import { adminRequest } from '../src/lab/admin-client';
import type { Lab } from '../src/lab/lab';
import { READY_MSG } from '../src/lab/l4nat-process';
import type { NsProcess } from '../src/lab/netns';
import { runClient } from '../src/lab/workload';
import { configText, labBackends, rigScript, withLab } from './rigs/fixture';
import { skipUnless } from './rigs/requirements';
import { handOverDir, startUnprivileged, tunStandIn, unprivileged, writeUserFile } from './rigs/unprivileged';

const INTERVAL = 0.5;
const TIMEOUT = 0.3;

interface CheckRecord {
  ok: boolean;
  ms: number;
  detail: string;
}
interface BackendView {
  id: string;
  name: string | null;
  state: string;
  health: { state: string; checks: { ok: number; failed: number } } | null;
  history?: { checks: CheckRecord[]; transitions: { to: string; reason: string }[] };
}

async function backendsOf(lab: Lab, sid: string): Promise<Map<string, BackendView>> {
  const r = await adminRequest(lab, 'GET', `/v1/services/${encodeURIComponent(sid)}`);
  assert.equal(r.status, 200, JSON.stringify(r.body));
  return new Map((r.body as { backends: BackendView[] }).backends.map((b) => [b.name ?? b.id, b]));
}

function startResponder(lab: Lab, id: string, mode: string): Promise<NsProcess> {
  const p = lab.spawn(id, process.execPath, [rigScript('icmp-responder'), '--mode', mode]);
  return p.waitForLine((l) => l.includes('"ready":true'), { timeoutMs: 10_000, what: `${id} responder ready`, stream: 'stdout' }).then(() => p);
}

test('icmp checks through l4nat up: a backend that answers stays up, one that drops ICMP goes down, replies with a wrong identifier or sequence are not counted (IPv4 and IPv6)', { skip: skipUnless({ commands: ['nft'] }), timeout: 180_000 }, async (t) => {
  await withLab({ backends: 5, ipv6: true }, async ({ lab, dir, startFromConfig }) => {
    const fw = join(dir, 'drop-echo.nft');
    writeFileSync(fw, 'table inet drop_echo {\n  chain input {\n    type filter hook input priority 0; policy accept;\n    icmp type echo-request drop\n    icmpv6 type echo-request drop\n  }\n}\n');
    await lab.exec('b2', 'nft', ['-f', fw]);
    const responders = new Map<string, NsProcess>();
    for (const [id, mode] of [['b3', 'echo'], ['b4', 'wrong-ident'], ['b5', 'wrong-seq']] as const) {
      await lab.exec(id, 'sysctl', ['-qw', 'net.ipv4.icmp_echo_ignore_all=1', 'net.ipv6.icmp.echo_ignore_all=1']);
      responders.set(id, await startResponder(lab, id, mode));
    }

    const l4 = await startFromConfig(configText({
      global: { queues: 2, stats_interval: 0 },
      services: [{ name: 'web', vips: [lab.vip4, lab.vip6!], ports: [8080], health_check: { type: 'icmp', interval: INTERVAL, timeout: TIMEOUT, fall: 2, rise: 2, jitter: 0.2 }, backends: labBackends(lab, { port: 8080, v6: true }) }],
    }));
    const proc = l4;
    const bad = ['b2', 'b4', 'b5'].flatMap((id) => [lab.backend(id).ipv4, lab.backend(id).ipv6!]);
    const downs = await Promise.all(bad.map((addr) => proc.waitForLog((r) => r.event === 'backend_down' && r.backend === (addr.includes(':') ? `[${addr}]:8080/tcp` : `${addr}:8080/tcp`), 10_000, `${addr} down`)));
    t.diagnostic(`down: ${downs.map((d) => `${String(d.backend)} (${String(d.reason)})`).join('; ')}`);
    for (const d of downs) assert.match(String(d.reason), /^no echo reply, timeout after 300 ms \(\d+ failed icmp check\(s\) in a row, fall 2\)$/);

    // A few more rounds, then every backend's history.
    await new Promise((r) => setTimeout(r, 6 * INTERVAL * 1000));
    const services = [`${lab.vip4}:8080/tcp`, `[${lab.vip6!}]:8080/tcp`];
    for (const sid of services) {
      const bs = await backendsOf(lab, sid);
      for (const id of ['b1', 'b3']) {
        const b = bs.get(id)!;
        assert.equal(b.state, 'up', `${sid} ${id}`);
        assert.equal(b.health?.checks.failed, 0, `${sid} ${id}: ${JSON.stringify(b.history?.checks.filter((c) => !c.ok))}`);
        assert.ok((b.health?.checks.ok ?? 0) >= 6, `${sid} ${id}: ${JSON.stringify(b.health)}`);
        assert.deepEqual(b.history?.transitions, [], `${sid} ${id} never changed state`);
        // The round-trip time is the probe's time, recorded in the history.
        for (const c of b.history!.checks) assert.ok(c.ok && c.ms > 0 && c.ms < TIMEOUT * 1000, `${sid} ${id}: ${JSON.stringify(c)}`);
      }
      for (const id of ['b2', 'b4', 'b5']) {
        const b = bs.get(id)!;
        assert.equal(b.state, 'down', `${sid} ${id}`);
        assert.equal(b.health?.checks.ok, 0, `${sid} ${id}: no check ever passed ${JSON.stringify(b.history?.checks)}`);
      }
      const rtt = (id: string): string => bs.get(id)!.history!.checks.map((c) => c.ms).join('/');
      t.diagnostic(`${sid}: b1 (kernel) RTT ms ${rtt('b1')}; b3 (responder) ${rtt('b3')}`);
    }
    // The responders did answer every family's probes: b4 and b5 are down because of what their replies carry.
    for (const [id, p] of responders) {
      for (const fam of [4, 6]) {
        const n = p.stdoutLines.filter((l) => l.includes(`"answered":${fam},`)).length;
        assert.ok(n >= 4, `${id} answered ${n} IPv${fam} echo requests`);
      }
    }

    // The rule that steers ICMP from the backends into the TUN is there, behind `lookup local`.
    const rules = (await lab.exec('lb', 'ip', ['rule'])).stdout + (await lab.exec('lb', 'ip', ['-6', 'rule'])).stdout;
    assert.match(rules, /^0:\s+from all lookup local/m);
    assert.match(rules, new RegExp(`from ${lab.backend('b1').ipv4.replace(/\./g, '\\.')} ipproto icmp lookup 4400`));
    assert.match(rules, new RegExp(`from ${lab.backend('b1').ipv6!} ipproto ipv6-icmp lookup 4400`));

    // Down means out of the ring: new connections reach b1 and b3 only.
    for (const target of [lab.vip4, lab.vip6!]) {
      const rep = await runClient(lab, { target, proto: 'tcp', count: 200, concurrency: 16, timeoutMs: 30_000 });
      assert.equal(rep.failed, 0, JSON.stringify(rep.errors));
      assert.deepEqual(Object.keys(rep.perBackend).sort(), ['b1', 'b3'], `${target}: ${JSON.stringify(rep.perBackend)}`);
    }
    // The shared sockets do not hold the process: it exits on SIGTERM well before they would close by themselves
    // (IDLE_CLOSE_MS after the last probe), had their receive side kept the event loop alive.
    const stopAt = Date.now();
    assert.equal((await l4.stop()).code, 0);
    const stopMs = Date.now() - stopAt;
    t.diagnostic(`l4nat exited ${stopMs} ms after SIGTERM`);
    assert.ok(stopMs < IDLE_CLOSE_MS / 2, `exited ${stopMs} ms after SIGTERM`);
  });
});

test('without CAP_NET_RAW: up with an icmp check refuses to start, a reload adding one is rejected; both name the capability', { skip: skipUnless({ commands: ['setpriv'] }), timeout: 120_000 }, async () => {
  const NET_ADMIN_ONLY = ['net_admin'];
  await withLab({ backends: 1, ipv6: false, servers: false }, async ({ lab, dir, configFile: cfg, track }) => {
    // The default token file (/var/lib/l4nat/admin.token) is root's: this user's l4nat gets its own.
    const tokenFile = handOverDir(dir);
    const tunNode = tunStandIn(dir);
    const config = (check: string): void => writeUserFile(cfg, configText({
      global: { queues: 1, stats_interval: 0, hash_key: '5f3c2a1b0e9d8c7b6a5f4e3d2c1b0a99' },
      admin: { token_file: tokenFile },
      services: [{ name: 'web', vips: [lab.vip4], ports: [8080], health_check: { type: check, interval: 1, timeout: 0.5 }, backends: [{ address: lab.backends[0]!.ipv4 }] }],
    }));
    const WHY = /service web has an icmp health check \(IPv4\), but cannot open a raw ICMP socket: Operation not permitted \(an icmp check needs CAP_NET_RAW\): grant CAP_NET_RAW/;

    config('icmp');
    const [cmd, argv] = unprivileged(['up', '--config', cfg], tunNode, NET_ADMIN_ONLY);
    const refused = lab.spawn('lb', cmd, argv, { env: { ...process.env, HOME: dir }, cwd: dir });
    const started = await refused.waitForLine((l) => l.includes(READY_MSG), { timeoutMs: 20_000, what: 'ready' }).then(() => true, () => false);
    if (started) await refused.stop({ signal: 'SIGTERM', timeoutMs: 10_000 });
    const st = await refused.exited;
    assert.equal(started, false, 'l4nat started with icmp checks it cannot run');
    assert.equal(st.code, 1, refused.stderrLines.join('\n'));
    assert.match(refused.stderrLines.join('\n'), WHY);
    assert.doesNotMatch((await lab.exec('lb', 'ip', ['-br', 'link'])).stdout, /l4nat0/, 'nothing was set up');

    config('tcp');
    const l4 = track(await startUnprivileged(lab, ['up', '--config', cfg], dir, tunNode, NET_ADMIN_ONLY));
    config('icmp');
    const r = await adminRequest(lab, 'POST', '/v1/reload', undefined, undefined, tokenFile);
    assert.equal(r.status, 400, JSON.stringify(r.body));
    assert.match(JSON.stringify(r.body), WHY);
    assert.match(JSON.stringify(r.body), /the reload changed nothing/);
    const view = await adminRequest(lab, 'GET', `/v1/services/${encodeURIComponent(`${lab.vip4}:8080/tcp`)}`, undefined, undefined, tokenFile);
    assert.equal((view.body as { healthCheck: { type: string } }).healthCheck.type, 'tcp', 'the running check is unchanged');
    assert.equal((await l4.stop()).code, 0);
  });
});
