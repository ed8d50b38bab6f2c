// Flow-state sync in the scale-out lab (docs/scale-out.md "Flow-state sync"): three hosts behind an ECMP router
// announced by BIRD, 200 long-lived streams, the backends' return route ECMP over the hosts (a flow's replies may
// come back through any host: the hard case), cluster.settle 3 s (the default) and cluster.sync on. Every case:
// every connection keeps making progress with every byte verified, asserted.
//   (a) a backend joins while a host is SIGKILLed                      (IPv4 in npm test)
//   (b) a backend is drained and, 4 s later, a host dies
//   (c) three changes in a row, then a host dies
//   (d) a host restarts, then a different one dies
// `npm run test:scaleout-sync` (L4NAT_SYNC_ALL_CASES=1) runs every case over IPv4 and over IPv6 (the lab's family 6).
// Each case runs in a lab of its own. Without sync the same runs broke (a) 9, (b) 40 and (c) 66 of 200 (one run
// each, docs/scale-out.md): a drained backend is never a second chance's target, and it remembers one change only.
// With sync, two runs of the final code: 0 everywhere but (d), 4 of 200 in one of them (not explained: case (d)
// repeated 12 times per family since broke 0 of 200 every time, so the cause was never seen again).
// Root-only; bird2, nft.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ChangeBench, STREAMS, type Cell } from './rigs/scaleout-change';
import type { Family } from './rigs/scaleout';
import { skipUnless } from './rigs/requirements';

const skip = skipUnless({ commands: ['bird', 'birdc', 'nft'] });
/** Every case on both families, or (npm test) case (a) over IPv4 only. */
const all = process.env.L4NAT_SYNC_ALL_CASES === '1';

function described(c: Cell): string {
  return `${c.name}: ${c.broken}/${STREAMS} broken (${JSON.stringify(c.errors)}, stalled ${c.stalled}); acted in ${c.applyMs} ms`;
}

async function run(t: { diagnostic(s: string): void }, family: Family, act: (b: ChangeBench) => Promise<Cell>): Promise<void> {
  const b = await ChangeBench.create(family, { sync: true, settle: 3 });
  try {
    const c = await act(b);
    t.diagnostic(described(c));
    const sync = await Promise.all(['lb1', 'lb2', 'lb3'].map(async (r) => (b.lab.l4nats.get(r)?.proc.running ? (await b.lab.admin(r, 'GET', '/v1/status').catch(() => null))?.body?.sync : null)));
    t.diagnostic(`sync: ${JSON.stringify(sync.map((s) => s && { own: s.own, known: s.known, learned: s.learned, kept: s.kept, sent: s.sent, rejected: s.rejected }))}`);
    assert.equal(c.broken, 0, described(c));
    assert.deepEqual(c.errors, {});
  } finally {
    await b.destroy();
  }
}

const CASES: ReadonlyArray<readonly [string, (b: ChangeBench) => Promise<Cell>]> = [
  ['(a) a backend joins while a host is SIGKILLed', (b) => b.coinciding('a_joinWhileKilled')],
  ['(b) a backend drained, a host dies 4 s later', (b) => b.drainThenFailure()],
  ['(c) three changes in a row, then a host dies', (b) => b.threeChangesThenFailure()],
  ['(d) a host restarts, then a different one dies', (b) => b.restartThenOtherFailure()],
];

for (const family of [4, 6] as const) {
  for (const [i, [name, act]] of CASES.entries()) {
    if (!all && (family !== 4 || i !== 0)) continue; // the long runs: npm run test:scaleout-sync
    test(`${name}: 200/200 continue (IPv${family})`, { skip, timeout: 300_000 }, (t) => run(t, family, act));
  }
}
