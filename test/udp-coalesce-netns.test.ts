// UDP coalescing end to end (issue 6, native/core/coalesce.h): a client sends one flow of datagrams as fast as it
// can for 1 s, to an IPv4 and an IPv6 VIP, with 64- and 1000-byte payloads. l4nat writes runs of them as UDP GSO
// super-packets; the backend's socket must receive the very datagrams that were sent: the same size, the same
// bytes (each carries a pattern of its sequence number), in order, no duplicates. l4nat's counters must show that
// super-packets were written (else this test proves nothing about them). Root-only; about 10 s.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { buildBenchtool } from '../bench/lib/tools';
import { repoRoot } from '../src/lab/l4nat-process';
import { servicesView } from './rigs/admin';
import { sleep, withLab } from './rigs/fixture';
import { skipUnless } from './rigs/requirements';

const PORT = 8080;
const MAXSEQ = 4_000_000;

function lastJson(lines: string): Record<string, number> {
  const l = lines.split('\n').filter((x) => x.startsWith('{')).pop();
  if (!l) throw new Error(`no JSON result in: ${lines.slice(0, 300)}`);
  return JSON.parse(l) as Record<string, number>;
}

test('UDP runs written as GSO super-packets reach the backend as exactly the datagrams the client sent', { skip: skipUnless(), timeout: 120_000 }, async (t) => {
  const tool = buildBenchtool(repoRoot());
  await withLab({ backends: 1, ipv6: true, servers: false }, async ({ lab, start }) => {
    await start({ vips: [lab.vip4, lab.vip6!], ports: [`${PORT}/udp`], extraArgs: ['--queues', '2'] });
    const counters = async (): Promise<Record<string, number>> => (await servicesView(lab)).dataplane.counters;
    assert.ok(lab.vip6, 'the lab has IPv6');
    for (const vip of [lab.vip4, lab.vip6]) {
      for (const size of [64, 1000]) {
        const c0 = await counters();
        const runid = Math.floor(Math.random() * 0x7fffffff);
        const sink = lab.spawn('b1', tool, ['udp-sink', String(PORT), '15', '1000', String(runid), String(MAXSEQ)]);
        await sink.waitForLine((l) => l === 'ready', { timeoutMs: 5_000, what: 'udp-sink ready', stream: 'stderr' });
        const { stdout } = await lab.exec('client', tool, ['udp-send', vip, String(PORT), '1', String(size), '0', String(runid)], { timeoutMs: 15_000 });
        const sent = lastJson(stdout);
        await sleep(300); // what is still queued arrives
        sink.kill('SIGTERM');
        await sink.exited;
        const got = lastJson(sink.stdoutLines.join('\n'));
        const c1 = await counters();
        const supers = (c1.udp_super_packets ?? 0) - (c0.udp_super_packets ?? 0);
        const merged = (c1.udp_coalesced ?? 0) - (c0.udp_coalesced ?? 0);
        const what = `${vip} ${size} B`;
        t.diagnostic(`${what}: sent ${sent.sent}, received ${got.received} (${got.unique} distinct), corrupt ${got.corrupt}, reordered ${got.reordered}, duplicates ${got.duplicates}, sizes ${got.min_len}–${got.max_len}; l4nat wrote ${merged} of them in ${supers} super-packets (${supers ? (merged / supers).toFixed(1) : '-'} per write)`);
        assert.ok(got.received! > 0 && got.unique === got.received, `${what}: ${JSON.stringify(got)}`);
        assert.equal(got.corrupt, 0, `${what}: datagrams with other bytes than were sent`);
        assert.equal(got.reordered, 0, `${what}: datagrams out of order`);
        assert.equal(got.duplicates, 0, `${what}: duplicates`);
        assert.ok(got.min_len === size && got.max_len === size, `${what}: datagram sizes ${got.min_len}–${got.max_len}, sent ${size}`);
        assert.ok(supers > 0 && merged > supers, `${what}: no UDP super-packet was written (${supers}, ${merged} datagrams): the test did not exercise coalescing`);
      }
    }
  });
});
