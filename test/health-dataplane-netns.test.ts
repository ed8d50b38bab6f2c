// The health check through the data plane (issue 5), end to end in the namespace lab: services with a
// `dataplane` check over IPv4 and IPv6. b2 gets the classic LVS-NAT mistake — its default route no longer
// goes through the l4nat host, so its replies bypass it, although the l4nat host still reaches it directly
// on their shared link — and must be marked down with a log line that says its replies bypass the host.
// b3's server is killed (port closed): down with "connection refused". Then b3's namespace forges SYN-ACKs from
// b3's address and port to the probe address (any port, any acknowledgment: not answers to a probe) for 4 s:
// b3 must stay down, every forgery dropped as probe_unmatched. b1 stays up; clients keep connecting without a
// failure, and no probe answer ever reaches a client. Root-only.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import type { Lab } from '../src/lab/lab';
import { runClient } from '../src/lab/workload';
import { skipUnless } from './rigs/requirements';
import { servicesView } from './rigs/admin';
import { ip, PROTO, TCP, tcp } from './rigs/craft';
import { configText, labBackends, withLab } from './rigs/fixture';
import { lbMac, packetFile, parsePktgen, pktgen } from './rigs/pktgen';

const INTERVAL = 0.5;
const TIMEOUT = 0.4;
const FALL = 2;

const PROBE_SOURCE4 = '192.0.2.254'; // global.probe_source's default
const FORGED = 100;
const FORGE_REPEAT = 40; // 4,000 forged SYN-ACKs, one a millisecond

test('dataplane check: a backend whose replies bypass the l4nat host is marked down and the log says so; forged probe answers mark nothing up', { skip: skipUnless({ commands: ['gcc'] }), timeout: 180_000 }, async (t) => {
  const config = (lab: Lab): string => configText({
    global: { queues: 2, stats_interval: 0 },
    services: [{ name: 'web', vips: [lab.vip4, lab.vip6], ports: [8080], health_check: { type: 'dataplane', interval: INTERVAL, timeout: TIMEOUT, fall: FALL, rise: 2, jitter: 0 }, backends: labBackends(lab, { port: 8080, v6: true }) }],
  });
  await withLab({ backends: 3, ipv6: true, config }, async ({ lab, l4, servers, dir }) => {
    await new Promise((r) => setTimeout(r, 2_000));
    const services = () => servicesView(lab);
    let view = (await services()).services;
    const states = (): string[] => view.flatMap((s) => s.backends.map((b) => `${s.vip} ${b.name}:${b.state}`)).sort();
    assert.ok(view.every((s) => s.backends.every((b) => b.state === 'up' && (b.health?.checks.ok ?? 0) >= 2)), `every backend passes the dataplane check: ${JSON.stringify(states())}`);
    const synacks0 = view.flatMap((s) => s.backends.map((b) => b.counters.probe_synacks ?? 0));
    assert.ok(synacks0.every((n) => n >= 2), `each backend answered probes through the data plane: ${synacks0.join(',')}`);

    // b2: default route on-link instead of via the l4nat host (its replies to clients go nowhere near it).
    const b2 = lab.backend('b2');
    const brokenAt = Date.now();
    await lab.ip('b2', ['-4', 'route', 'replace', 'default', 'dev', b2.dev]);
    await lab.ip('b2', ['-6', 'route', 'replace', 'default', 'dev', b2.dev]);
    // b3: the server dies, its port is closed.
    servers[2]!.kill('SIGKILL');
    await servers[2]!.exited;

    const bypass = await l4.waitForLog((r) => r.event === 'backend_down' && String(r.backend).startsWith(`${b2.ipv4}:`), 10_000, 'b2 (v4) down');
    t.diagnostic(`b2 down ${(bypass.time as number) - brokenAt} ms after its default route changed: ${String(bypass.msg)}`);
    assert.match(String(bypass.reason), /replies bypass the l4nat host/);
    const bypass6 = await l4.waitForLog((r) => r.event === 'backend_down' && String(r.backend).startsWith(`[${b2.ipv6}]:`), 10_000, 'b2 (v6) down');
    assert.match(String(bypass6.reason), /replies bypass the l4nat host/);
    const refused = await l4.waitForLog((r) => r.event === 'backend_down' && String(r.backend).startsWith(`${lab.backend('b3').ipv4}:`), 10_000, 'b3 down');
    assert.match(String(refused.reason), /connection refused \(RST through the data plane\)/);
    t.diagnostic(`b3: ${String(refused.msg)}`);

    // Forged answers: SYN-ACKs from b3 (down, port closed) to the probe address that answer no probe.
    const b3 = lab.backend('b3');
    const lbMacB3 = await lbMac(lab, b3.lbDev);
    const forged = Array.from({ length: FORGED }, (_, i) => ({
      family: 4 as const,
      pkt: ip({ src: b3.ipv4, dst: PROBE_SOURCE4, proto: PROTO.TCP }, tcp(b3.ipv4, PROBE_SOURCE4, { sport: 8080, dport: 32768 + ((i * 283) % 28232), seq: 0x5000 + i, ack: (0x9e3779b9 * (i + 1)) >>> 0, flags: TCP.SYN | TCP.ACK })),
    }));
    const file = join(dir, 'forged.bin');
    writeFileSync(file, packetFile(forged));
    const unmatched0 = (await services()).dataplane.drops.probe_unmatched ?? 0;
    const forgedAt = Date.now();
    const sent = parsePktgen((await lab.exec('b3', await pktgen(), ['send', '--dev', b3.dev, '--dst-mac', lbMacB3, '--file', file, '--repeat', String(FORGE_REPEAT), '--gap-us', '1000'], { timeoutMs: 60_000 })).stdout);
    await new Promise((r) => setTimeout(r, 2 * INTERVAL * 1000));
    const unmatched = ((await services()).dataplane.drops.probe_unmatched ?? 0) - unmatched0;
    t.diagnostic(`forged: ${sent.sent} SYN-ACKs from b3 to the probe address in ${sent.elapsedMs} ms; probe_unmatched +${unmatched}`);
    assert.equal(sent.sent, FORGED * FORGE_REPEAT);
    assert.ok(unmatched >= sent.sent, `every forgery dropped as probe_unmatched (${unmatched} of ${sent.sent})`);
    assert.equal(l4.logs().filter((r) => r.event === 'backend_up' && String(r.backend).startsWith(`${b3.ipv4}:`) && (r.time as number) >= forgedAt).length, 0, 'b3 was not marked up by forged answers');

    view = (await services()).services;
    assert.deepEqual(states(), [`${lab.vip4} b1:up`, `${lab.vip4} b2:down`, `${lab.vip4} b3:down`, `${lab.vip6} b1:up`, `${lab.vip6} b2:down`, `${lab.vip6} b3:down`].sort());
    for (const vip of [lab.vip4, lab.vip6!]) {
      const r = await runClient(lab, { target: vip, proto: 'tcp', count: 200, concurrency: 8, timeoutMs: 30_000 });
      assert.equal(r.failed, 0, `${vip}: ${JSON.stringify(r.errors)}`);
      assert.deepEqual(Object.keys(r.perBackend), ['b1'], `${vip}: only b1 serves: ${JSON.stringify(r.perBackend)}`);
    }
    const dp = await services();
    t.diagnostic(`probe answers: ${dp.dataplane.counters.probe_rst_sent} SYN-ACKs answered with RST, ${dp.dataplane.drops.probe_answer} RSTs consumed`);
    assert.ok(dp.dataplane.counters.probe_rst_sent > 0 && dp.dataplane.drops.probe_answer > 0);
    assert.equal(dp.dataplane.counters.flow_pickup, 0, 'no probe answer became a flow');
  });
});
