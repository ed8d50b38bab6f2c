// l4nat behind the nftables ruleset docs/operating.md gives: l4nat's traffic exempt from conntrack (each flow
// crosses the LB's stack twice) and accepted under a FORWARD drop policy. The accept rules match only
// untracked packets, so if the exemption failed, traffic would hit the drop policy and this test would fail.
// A direct connection from the client to a backend (not through l4nat) must be dropped. Root-only.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import type { Lab } from '../src/lab/lab';
import { runClient } from '../src/lab/workload';
import { withLab } from './rigs/fixture';
import { skipUnless } from './rigs/requirements';

/** The ruleset of docs/operating.md ("The host around it"), filled in for the lab. */
function ruleset(lab: Lab, tun = 'l4nat0'): string {
  const b4 = lab.backends.map((b) => b.ipv4);
  const b6 = lab.backends.flatMap((b) => (b.ipv6 ? [b.ipv6] : []));
  const svc4 = b4.flatMap((a) => [`${a} . tcp . 8080`, `${a} . udp . 8080`]);
  const svc6 = b6.flatMap((a) => [`${a} . tcp . 8080`, `${a} . udp . 8080`]);
  return `
table inet l4nat_fw {
  set vips4 { type ipv4_addr; elements = { ${lab.vip4} } }
  set vips6 { type ipv6_addr; elements = { ${lab.vip6} } }
  set backends4 { type ipv4_addr; elements = { ${b4.join(', ')} } }
  set backends6 { type ipv6_addr; elements = { ${b6.join(', ')} } }
  set services4 { type ipv4_addr . inet_proto . inet_service; elements = { ${svc4.join(', ')} } }
  set services6 { type ipv6_addr . inet_proto . inet_service; elements = { ${svc6.join(', ')} } }

  chain raw_prerouting {
    type filter hook prerouting priority raw; policy accept;
    iifname "${tun}" counter notrack
    ip daddr @vips4 counter notrack
    ip6 daddr @vips6 counter notrack
    ip saddr . meta l4proto . th sport @services4 counter notrack
    ip6 saddr . meta l4proto . th sport @services6 counter notrack
    ip saddr @backends4 meta l4proto icmp counter notrack
    ip6 saddr @backends6 meta l4proto ipv6-icmp icmpv6 type { destination-unreachable, packet-too-big, time-exceeded, parameter-problem } counter notrack
  }

  chain forward {
    type filter hook forward priority filter; policy drop;
    oifname "${tun}" ct state untracked counter accept comment "to the VIPs, and backend replies steered into the TUN"
    iifname "${tun}" ct state untracked counter accept comment "translated by l4nat"
    ct state established,related accept
  }
}
`;
}

test('l4nat behind an nftables FORWARD drop policy with its traffic exempt from conntrack: TCP and UDP, IPv4 and IPv6 all pass; direct client→backend is dropped', { skip: skipUnless({ commands: ['nft'] }), timeout: 120_000 }, async () => {
  await withLab({ backends: 2 }, async ({ lab, dir, start }) => {
    const file = join(dir, 'fw.nft');
    writeFileSync(file, ruleset(lab));
    await lab.exec('lb', 'nft', ['-f', file]);
    const l4 = await start({ extraArgs: ['--queues', '2'] });
    for (const [target, proto] of [[lab.vip4, 'tcp'], [lab.vip6!, 'tcp'], [lab.vip4, 'udp'], [lab.vip6!, 'udp']] as const) {
      const r = await runClient(lab, { target, proto, count: 200, concurrency: 16, timeoutMs: 30_000 });
      assert.equal(r.failed, 0, `${proto} ${target}: ${JSON.stringify(r.errors)}`);
      assert.deepEqual(Object.keys(r.perBackend).sort(), ['b1', 'b2']);
    }
    const listed = (await lab.exec('lb', 'nft', ['list', 'chain', 'inet', 'l4nat_fw', 'forward'])).stdout;
    const counts = [...listed.matchAll(/ct state untracked counter packets (\d+)/g)].map((m) => Number(m[1]));
    assert.equal(counts.length, 2);
    assert.ok(counts.every((n) => n > 1000), `accept counters ${counts}`);
    // The drop policy is real: the client cannot reach a backend directly through the LB host.
    const direct = await runClient(lab, { target: lab.backend('b1').ipv4, proto: 'tcp', count: 3, concurrency: 3, connTimeoutMs: 1_000, timeoutMs: 5_000 });
    assert.equal(direct.ok, 0);
    assert.equal((await l4.stop()).code, 0);
  });
});
