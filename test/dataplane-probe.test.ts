// The dataplane health probe's verdicts (src/health/dataplane-probe.ts) against a fake data plane, and the
// per-service timeouts and probe sources as buildTables lays them out for the addon. No root needed.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { BYPASS_DETAIL, probeDataplane, type ProbingDataplane } from '../src/health/dataplane-probe';
import type { ProbeId, ProbeState } from '../src/dataplane/native';
import { buildTables, keyedRing, NO_BACKEND, SlotAllocator, withPreviousRings } from '../src/dataplane/tables';
import { DEFAULT_TIMEOUTS, type ServiceSpec, type Timeouts } from '../src/config/model';

/**
 * A data plane whose backend slot 3 answers each probe (after `delayMs`) with a SYN-ACK, a RST, or nothing, the
 * way native/core/probe.h records answers: one outstanding probe per slot, a new one replaces the old, an answer
 * counts only for the probe it answers. `forge` adds a SYN-ACK from the backend's address every 10 ms that
 * answers no probe (the old data plane counted those in probe_synacks: the counters below still do).
 */
function fakeDp(answer: 'synack' | 'rst' | 'none', delayMs = 30, forge = false): ProbingDataplane & { sent: unknown[]; stop(): void } {
  const c = { probe_synacks: 0, probe_resets: 0 };
  const sent: unknown[] = [];
  let outstanding: { id: ProbeId; state: ProbeState } | undefined;
  const forger = forge ? setInterval(() => c.probe_synacks++, 10) : undefined;
  return {
    sent,
    stop: () => clearInterval(forger),
    probe(p) {
      sent.push(p);
      const mine = { id: { slot: p.slot, sport: p.sport, seq: p.seq }, state: 'pending' as ProbeState };
      outstanding = mine;
      setTimeout(() => {
        if (answer === 'none') return;
        c[answer === 'synack' ? 'probe_synacks' : 'probe_resets']++;
        if (outstanding === mine) mine.state = answer;
      }, delayMs);
    },
    probeState(id) {
      const o = outstanding;
      return o && o.id.slot === id.slot && o.id.sport === id.sport && o.id.seq === id.seq ? o.state : 'none';
    },
    counters: () => ({ total: {}, drops: {}, perQueue: [], heartbeatsMs: [], services: new Map(), backends: new Map([[3, { ...c }]]) }),
  } as ProbingDataplane & { sent: unknown[]; stop(): void };
}

const target = { addr: '10.0.1.11', family: 4 as const, port: 8080 };
const directOk = async (): Promise<{ ok: boolean; ms: number; detail: string }> => ({ ok: true, ms: 1, detail: '' });
const directDead = async (): Promise<{ ok: boolean; ms: number; detail: string }> => ({ ok: false, ms: 300, detail: 'timeout after 300 ms' });

test('dataplane probe: SYN-ACK through the data plane = up; the probe goes from the probe source to the backend', async () => {
  const dp = fakeDp('synack');
  const r = await probeDataplane({ dp, slot: 3, source: '192.0.2.254', direct: directOk, pollMs: 5 }, target, 300);
  assert.equal(r.ok, true, r.detail);
  assert.ok(r.ms < 300);
  const p = dp.sent[0] as { src: string; dst: string; dport: number; sport: number; slot: number };
  assert.deepEqual([p.src, p.dst, p.dport, p.slot], ['192.0.2.254', '10.0.1.11', 8080, 3]);
  assert.ok(p.sport >= 32768 && p.sport < 61000);
});

test('dataplane probe: RST = refused; nothing back but a direct answer = replies bypass the host; nothing at all = both said', async () => {
  let r = await probeDataplane({ dp: fakeDp('rst'), slot: 3, source: '192.0.2.254', direct: directOk, pollMs: 5 }, target, 300);
  assert.deepEqual([r.ok, r.detail], [false, 'connection refused (RST through the data plane)']);
  r = await probeDataplane({ dp: fakeDp('none'), slot: 3, source: '192.0.2.254', direct: directOk, pollMs: 5 }, target, 200);
  assert.deepEqual([r.ok, r.detail], [false, BYPASS_DETAIL]);
  assert.ok(r.ms >= 190, `waited the whole timeout (${r.ms} ms)`);
  r = await probeDataplane({ dp: fakeDp('none'), slot: 3, source: '192.0.2.254', direct: directDead, pollMs: 5 }, target, 200);
  assert.deepEqual([r.ok, r.detail], [false, 'no answer through the data plane, nor directly (timeout after 300 ms)']);
  // An answer that comes after the timeout does not count.
  r = await probeDataplane({ dp: fakeDp('synack', 300), slot: 3, source: '192.0.2.254', direct: directOk, pollMs: 5 }, target, 100);
  assert.equal(r.ok, false);
});

test('dataplane probe: only the answer to this probe counts — not forged SYN-ACKs, not a late answer to the previous probe', async () => {
  // A dead backend (no answer) while SYN-ACKs from its address that answer no probe keep arriving.
  const forged = fakeDp('none', 30, true);
  let r = await probeDataplane({ dp: forged, slot: 3, source: '192.0.2.254', direct: directDead, pollMs: 5 }, target, 150);
  forged.stop();
  assert.equal(r.ok, false, 'forged SYN-ACKs do not make a dead backend up');
  // The previous probe's answer arrives (at 150 ms) while the next probe is waiting for its own (due at 300 ms).
  const late = fakeDp('synack', 150);
  r = await probeDataplane({ dp: late, slot: 3, source: '192.0.2.254', direct: directOk, pollMs: 5 }, target, 100);
  assert.equal(r.ok, false, 'the first probe timed out');
  r = await probeDataplane({ dp: late, slot: 3, source: '192.0.2.254', direct: directOk, pollMs: 5 }, target, 100);
  assert.equal(r.ok, false, 'the previous probe\'s late SYN-ACK does not pass the next probe');
  r = await probeDataplane({ dp: fakeDp('synack', 150), slot: 3, source: '192.0.2.254', direct: directOk, pollMs: 5 }, target, 300);
  assert.equal(r.ok, true, 'its own answer does');
});

test('dataplane probe: no slot or no probe source is a failure that says why, and sends nothing', async () => {
  const dp = fakeDp('synack');
  let r = await probeDataplane({ dp, slot: undefined, source: '192.0.2.254', direct: directOk }, target, 100);
  assert.deepEqual([r.ok, r.detail], [false, 'the backend is not in the data plane table yet']);
  r = await probeDataplane({ dp, slot: 3, source: undefined, direct: directOk }, target, 100);
  assert.match(r.detail, /no IPv4 probe source address configured \(global\.probe_source\)/);
  assert.equal(dp.sent.length, 0);
});

test('buildTables: per-service timeout words (0 = the global value), probe source addresses, bad values named', () => {
  const svc = (vip: string, port: number, timeouts?: Partial<Timeouts>): ServiceSpec & { timeouts?: Partial<Timeouts> } => ({
    vip, family: 4, port, proto: 'tcp', hash: '5tuple', backends: [{ addr: '10.0.1.1', family: 4, port: 8000 + port, weight: 1 }], ...(timeouts ? { timeouts } : {}),
  });
  const opts = { hashKey: Buffer.alloc(16, 1), maglevSize: 7, timeouts: { ...DEFAULT_TIMEOUTS }, icmpEcho: true, icmpTranslate: true, probeSource: { ipv4: '192.0.2.254', ipv6: '2001:db8::fe' } };
  const t = buildTables([svc('10.0.0.1', 80, { tcpEstablished: 100 }), svc('10.0.0.1', 81), svc('10.0.0.1', 82, { udp: 5, tcpSyn: 7 })], new SlotAllocator(8), new SlotAllocator(8), opts);
  assert.deepEqual([...(t.input.timeoutWords ?? [])], [0, 0, 100, 0, 0, 0, 2, 7, 0, 0, 0, 5]);
  assert.deepEqual([...(t.input.probeAddr4 ?? [])], [192, 0, 2, 254]);
  assert.equal(t.input.probeAddr6?.length, 16);
  assert.throws(() => buildTables([svc('10.0.0.1', 80, { tcpFin: 1.5 })], new SlotAllocator(8), new SlotAllocator(8), opts), /service 10\.0\.0\.1:80\/tcp: timeout tcpFin must be whole seconds from 1 to 2147483647, got 1\.5/);
  assert.throws(() => buildTables([svc('10.0.0.1', 80)], new SlotAllocator(8), new SlotAllocator(8), { ...opts, probeSource: { ipv4: '2001:db8::1' } }), /probe source ipv4: "2001:db8::1" is not an IPv4 address/);
});

test('previous rings: a changed service carries its ring before the change, by backend, removed backends emptied', () => {
  const svc = (backends: string[]): ServiceSpec => ({
    vip: '10.0.0.1', family: 4, port: 80, proto: 'tcp', hash: '5tuple', backends: backends.map((a) => ({ addr: a, family: 4 as const, port: 8080, weight: 1 })),
  });
  const opts = { hashKey: Buffer.alloc(16, 1), maglevSize: 7, timeouts: { ...DEFAULT_TIMEOUTS }, icmpEcho: true, icmpTranslate: true };
  const sa = new SlotAllocator(8);
  const ba = new SlotAllocator(8);
  const before = buildTables([svc(['10.0.1.1', '10.0.1.2'])], sa, ba, opts);
  sa.commit(before.serviceSlots);
  ba.commit(before.backendSlots);
  const ring0 = keyedRing(before, 0, 7);
  assert.deepEqual(new Set(ring0.keys), new Set(['10.0.0.1:80/tcp|10.0.1.1:8080/tcp', '10.0.0.1:80/tcp|10.0.1.2:8080/tcp']));
  // 10.0.1.1 removed, 10.0.1.3 added: its slot may be 10.0.1.1's old one, so the previous ring is laid out by key
  const after = buildTables([svc(['10.0.1.2', '10.0.1.3'])], sa, ba, opts);
  const input = withPreviousRings(after, new Map([['10.0.0.1:80/tcp', ring0]]));
  assert.equal(input.rings.length, 14);
  assert.deepEqual([...(input.prevRingWords ?? [])], [after.serviceSlots.get('10.0.0.1:80/tcp'), 7, 7]);
  const s2 = after.backendSlots.get('10.0.0.1:80/tcp|10.0.1.2:8080/tcp');
  for (let i = 0; i < 7; i++) {
    const k = ring0.keys[ring0.idx[i]];
    assert.equal(input.rings[7 + i], k.endsWith('10.0.1.2:8080/tcp') ? s2 : NO_BACKEND, `slot ${i}: ${k}`);
  }
  // nothing to carry: the input is unchanged
  assert.equal(withPreviousRings(after, new Map()), after.input);
});
