// `l4nat trace` in the lab: a real TCP connection from the client traced by its client address and port (the SYN,
// the backend's SYN-ACK, the data and both FINs, each with the backend the client was answered by), with the wire
// view written as pcapng that tcpdump reads, holding both sides of the translation; and a source the service's
// deny_sources refuses, traced with --drops, seen as acl_denied; and the wire view's libpcap handle kept past its close. Root-only.
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import type { Lab } from '../src/lab/lab';
import { repoRoot } from '../src/lab/l4nat-process';
import { run } from '../src/lab/netns';
import { formatPacketLine, type TracePacketEvent } from '../src/trace/events';
import { configText, labBackends, withLab } from './rigs/fixture';
import { skipUnless } from './rigs/requirements';

const CPORT = 40123;

function cli(lab: Lab, args: string[], timeoutMs = 30_000): Promise<{ stdout: string; stderr: string }> {
  return lab.exec('lb', process.execPath, [join(repoRoot(), 'bin', 'l4nat.js'), ...args], { timeoutMs });
}

/** One TCP connection from the client's port CPORT: a line out, the backend's answer back, then both close. */
async function connectOnce(lab: Lab, timeoutMs: number): Promise<string> {
  const script = `
    const s = require('net').connect({ host: ${JSON.stringify(lab.vip4)}, port: 8080, localPort: ${CPORT} });
    let got = '';
    s.setTimeout(${timeoutMs}, () => { console.log('timeout'); s.destroy(); });
    s.on('connect', () => s.write('hello\\n'));
    s.on('data', (d) => { got += d; if (got.includes('\\n')) s.end(); });
    s.on('error', (e) => console.log('error ' + e.code));
    s.on('close', () => console.log(got.trim()));`;
  return (await lab.exec('client', process.execPath, ['-e', script], { timeoutMs: timeoutMs + 5_000 })).stdout.trim();
}

const config = (lab: Lab, deny: string[] = []): string =>
  configText({
    global: { queues: 2, stats_interval: 0 },
    services: [{ name: 'web', vips: [lab.vip4], ports: [8080], ...(deny.length ? { deny_sources: deny } : {}), backends: labBackends(lab, { port: 8080 }) }],
  });

const packets = (stdout: string): TracePacketEvent[] =>
  stdout
    .split('\n')
    .filter((l) => l.trim())
    .map((l) => JSON.parse(l) as TracePacketEvent);

test('l4nat trace: a connection SYN to FIN with its backend, the pcap with both sides; a denied source as acl_denied', { skip: skipUnless({ commands: ['tcpdump'] }), timeout: 120_000 }, async (t) => {
  await withLab({ backends: 2, ipv6: false }, async ({ lab, dir, configFile, startFromConfig }) => {
    const l4 = await startFromConfig(config(lab));
    const pcap = join(dir, 'trace.pcapng');
    const client = lab.client.ipv4;
    const tracing = cli(lab, ['trace', '--client', `${client}:${CPORT}`, '--seconds', '6', '--json', '--pcap', pcap]);
    await l4.waitForLog((r) => r.event === 'trace_start', 10_000, 'trace started');
    const answer = await connectOnce(lab, 3_000);
    const m = /^(b\d) /.exec(answer);
    assert.ok(m, `the backend answered: ${answer}`);
    const bk = `${lab.backend(m[1]).ipv4}:8080`;
    const out = await tracing;
    t.diagnostic(out.stderr.trim());
    const pk = packets(out.stdout);
    t.diagnostic(pk.map(formatPacketLine).join('\n'));
    const fwd = pk.filter((p) => p.dir === 'forward');
    const rep = pk.filter((p) => p.dir === 'reply');
    const ep = (e: { addr: string; port: number }): string => `${e.addr}:${e.port}`;
    for (const p of fwd) {
      assert.equal(ep(p.before.src), `${client}:${CPORT}`);
      assert.equal(ep(p.before.dst), `${lab.vip4}:8080`, 'read: to the VIP');
      assert.equal(ep(p.after.dst), bk, 'written: to the backend that answered');
      assert.equal(p.backend, `${bk}/tcp`);
      assert.equal(p.service, `${lab.vip4}:8080/tcp`);
    }
    for (const p of rep) {
      assert.equal(ep(p.before.src), bk, 'read: from the backend');
      assert.equal(ep(p.after.src), `${lab.vip4}:8080`, 'written: from the VIP');
      assert.equal(ep(p.after.dst), `${client}:${CPORT}`);
      assert.equal(p.backend, `${bk}/tcp`);
    }
    const syn = fwd.find((p) => p.tcpFlags === 'S');
    assert.ok(syn, `a SYN line: ${out.stdout}`);
    assert.equal(syn.flow, 'new');
    assert.ok(syn.ringSlot !== null, 'the SYN chose by a ring slot');
    assert.equal(syn.verdict, 'written');
    assert.ok(rep.some((p) => p.tcpFlags === 'S.' && p.flow === 'hit' && p.ack === (syn.seq! + 1) >>> 0), 'the SYN-ACK, acknowledging the SYN');
    assert.ok(fwd.some((p) => p.len === 6 && p.flow === 'hit' && p.tcpFlags!.includes('P')), 'the data (hello\\n) on the entry');
    assert.ok(rep.some((p) => p.len > 0), 'the answer');
    assert.ok(fwd.some((p) => p.tcpFlags!.includes('F')), 'the client FIN');
    assert.ok(rep.some((p) => p.tcpFlags!.includes('F')), 'the backend FIN');

    // The pcap: tcpdump reads it; it holds the client's packets to the VIP as read and to the backend as written.
    const dump = (await lab.exec('lb', 'tcpdump', ['-n', '-r', pcap], { timeoutMs: 10_000 })).stdout;
    const bkDot = `${lab.backend(m[1]).ipv4}.8080`;
    assert.match(dump, new RegExp(`${client.replace(/\./g, '\\.')}\\.${CPORT} > ${lab.vip4.replace(/\./g, '\\.')}\\.8080: Flags \\[S\\]`), dump);
    assert.match(dump, new RegExp(`${client.replace(/\./g, '\\.')}\\.${CPORT} > ${bkDot.replace(/\./g, '\\.')}: Flags \\[S\\]`), dump);
    assert.match(dump, new RegExp(`${bkDot.replace(/\./g, '\\.')} > ${client.replace(/\./g, '\\.')}\\.${CPORT}: Flags \\[S\\.\\]`), dump);
    assert.match(dump, new RegExp(`${lab.vip4.replace(/\./g, '\\.')}\\.8080 > ${client.replace(/\./g, '\\.')}\\.${CPORT}: Flags \\[S\\.\\]`), dump);
    assert.ok(readFileSync(pcap).readUInt32LE(0) === 0x0a0d0d0a, 'pcapng');

    // Refused requests: an unknown service (exit 1, the API's message), no token (401, nothing installed).
    await assert.rejects(cli(lab, ['trace', '--service', 'nosuch']), /no service "nosuch": expected a service name or VIP:PORT/);
    const unauth = await lab.exec('lb', process.execPath, ['-e', "require('http').get('http://127.0.0.1:9180/v1/trace', (r) => { console.log(r.statusCode); process.exit(0); })"]);
    assert.equal(unauth.stdout.trim(), '401');
    // A client that goes: its match is removed.
    const gone = lab.spawn('lb', process.execPath, [join(repoRoot(), 'bin', 'l4nat.js'), 'trace', '--seconds', '60']);
    await l4.waitForLog((r) => r.event === 'trace_start' && (r.match as { client?: string }).client === undefined && (r.match as { drops?: boolean }).drops === false && r.seconds === 60, 10_000, 'third trace started');
    gone.kill('SIGKILL');
    await l4.waitForLog((r) => r.event === 'trace_end' && r.reason === 'closed', 10_000, 'the trace of a client that went ended');

    // A denied source: --drops shows the SYN dropped as acl_denied, in the one-line format.
    writeFileSync(configFile, config(lab, [`${client}/32`]));
    await cli(lab, ['reload']);
    const denied = cli(lab, ['trace', '--drops', '-c', '1', '--seconds', '15']);
    await l4.waitForLog((r) => r.event === 'trace_start' && (r.match as { drops?: boolean }).drops === true, 10_000, 'second trace started');
    assert.match(await connectOnce(lab, 1_500), /timeout|error/);
    const d = await denied;
    t.diagnostic(d.stdout.trim());
    assert.match(d.stdout, new RegExp(`forward tcp ${client.replace(/\./g, '\\.')}:${CPORT} > ${lab.vip4.replace(/\./g, '\\.')}:8080 \\[S\\].*DROPPED acl_denied.*service ${lab.vip4.replace(/\./g, '\\.')}:8080/tcp`));
    assert.match(d.stderr, /1 packets traced \(ended: count\)/);
  });
});

// The wire view's libpcap handle (the `cap` addon) must outlive its close: cap stops its libuv poll handle without
// closing it, so an addon object the garbage collector frees leaves the event loop's handle list pointing into
// freed memory (src/trace/wire.ts, closedCaps). Seen by a FinalizationRegistry on each closed handle after forced
// collections; the capture is on the loopback of a namespace of its own (`unshare -n`).
test('wire view: a closed libpcap handle is never freed (cap leaves its poll handle in the event loop)', { skip: skipUnless({ commands: ['unshare'] }), timeout: 60_000 }, async () => {
  const script = `
    const { WireCapture } = require(${JSON.stringify(join(repoRoot(), 'dist', 'src', 'trace', 'wire.js'))});
    let freed = 0;
    const reg = new FinalizationRegistry(() => freed++);
    (async () => {
      for (let i = 0; i < 3; i++) {
        const w = new WireCapture('lo', [], () => ({ vips: new Set(), backends: new Set() }), () => undefined);
        reg.register(w.handle, i);
        w.close();
      }
      // An object nothing keeps (made in a function of its own, so no scope holds it): shows that the collections
      // ran and finalizers were called.
      ((o) => reg.register(o, 'control'))({});
      for (let i = 0; i < 5; i++) { global.gc(); await new Promise((r) => setTimeout(r, 20)); }
      console.log(JSON.stringify({ freed }));
    })();`;
  const { stdout } = await run('unshare', ['-n', 'sh', '-c', 'ip link set lo up && exec "$0" --expose-gc -e "$1"', process.execPath, script], { timeoutMs: 30_000 });
  assert.deepEqual(JSON.parse(stdout.trim().split('\n').pop()!), { freed: 1 }, 'only the control object was collected, none of the 3 closed handles');
});
