// `l4nat explain`'s wording (src/cli/plan-commands.ts formatExplanation): a new flow that admission sends past the
// ring's backend (bounded load, max_flows) is said to go to the next candidate, naming the ring's backend; with
// --syn, why a SYN leaves a live entry.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { formatExplanation } from '../src/cli/plan-commands';
import type { Explanation } from '../src/control/explain-view';

const base = (backend: string, ringBackend: string): Explanation =>
  ({
    verdict: 'ring',
    dropReason: null,
    tuple: { proto: 'tcp', client: '198.51.100.7:40000', vip: '10.0.0.10:80', packet: 'next' },
    service: null,
    acl: { entries: 0, allowed: true, matched: null },
    rateLimit: null,
    flowEntry: null,
    ring: { generation: 3, size: 13, slot: 4, backend: ringBackend },
    previousRing: null,
    backend: { id: backend, name: null, state: 'up', inRing: true, markedDown: false },
    rewrite: null,
  }) as unknown as Explanation;

test('explain names a new flow admitted past its ring backend; the ring\'s own choice reads as before', () => {
  assert.match(formatExplanation(base('10.0.1.12:8080/tcp', '10.0.1.11:8080/tcp')), /verdict {6}forwarded to the next candidate: 10\.0\.1\.11:8080\/tcp is over its bound or at its max_flows/);
  assert.match(formatExplanation(base('10.0.1.11:8080/tcp', '10.0.1.11:8080/tcp')), /verdict {6}forwarded by the ring \(a new entry pins it\)/);
});

test('explain --syn: the SYN is named, and why it leaves the entry; an entry it follows has no such line', () => {
  const x = base('10.0.1.12:8080/tcp', '10.0.1.12:8080/tcp');
  const withEntry = (left: string | null, packet: 'next' | 'syn'): string =>
    formatExplanation({
      ...x,
      tuple: { ...x.tuple, packet },
      service: { id: '10.0.0.10:80/tcp', name: 'web' },
      flowEntry: { backend: '10.0.1.11:8080/tcp', state: 'ESTABLISHED', idleSeconds: 4, backendStillServes: true, pinnedAgainstRing: true, left },
    } as unknown as Explanation);
  const leaving = withEntry('backend_leaving', 'syn');
  assert.match(leaving, /^TCP 198\.51\.100\.7:40000 -> 10\.0\.0\.10:80 \(a SYN\)$/m);
  assert.match(leaving, /^ {2}left {9}its backend takes no new flows \(draining or down\): a client reusing its port chooses again at once$/m);
  assert.match(withEntry('retransmitted', 'syn'), /^ {2}left {9}a SYN retransmitted without an answer/m);
  assert.match(withEntry('closed', 'next'), /^ {2}left {9}it saw a reset or a FIN/m);
  const follows = withEntry(null, 'next');
  assert.doesNotMatch(follows, /left|a SYN/);
});
