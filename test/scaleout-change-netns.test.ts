// Scale-out (issue 8): a backend set change coinciding with a host failure (test/rigs/scaleout-change.ts says how it
// is measured). Asserted here are the cells whose outcome docs/scale-out.md states: the change alone breaks nothing; with
// the settle hold and replies via the host that forwarded, a change coinciding with a host failure breaks nothing;
// flows established before a change survive their host dying 4 s later (the second chance). The other cells (ECMP
// return path, settle 0) are races, measured by `npm run report:scaleout-change`. Root-only; needs bird2 and nft.
// The same over IPv6 runs with L4NAT_SCALEOUT_IPV6=full or, alone, `npm run test:scaleout-ipv6` (=only); not in `npm test`.
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { ChangeBench, STREAMS, type Cell } from './rigs/scaleout-change';
import { scaleoutIpv6Run } from './rigs/scaleout';
import { skipUnless } from './rigs/requirements';

const skip = skipUnless({ commands: ['bird', 'birdc', 'nft'] });
const IPV6_RUN = scaleoutIpv6Run();
/** At most 1% of the connections: a SIGKILLed host can take a flow with it mid-write. */
const BOUND = Math.floor(STREAMS * 0.01);
/**
 * A host failure 4 s after the change: without the second chance 24, 32 and 34 of 200 broke (three runs, docs/scale-out.md);
 * with it 0 and 3 in two runs of this test. 5% tells the two apart.
 */
const LATER_BOUND = Math.floor(STREAMS * 0.05);

let bench: ChangeBench | undefined;
after(async () => {
  await bench?.destroy();
});

function described(c: Cell): string {
  return `${c.name}: ${c.broken}/${STREAMS} broken (${JSON.stringify(c.errors)}, stalled ${c.stalled}); change applied ${c.applyMs} ms after the event; b4 ${c.b4.join('; ')}`;
}

for (const family of IPV6_RUN === 'only' ? ([6] as const) : ([4, 6] as const)) {
  // IPv6 only when asked (npm run test:scaleout-ipv6, or L4NAT_SCALEOUT_IPV6=full).
  if (family === 6 && IPV6_RUN === 'short') continue;
  test(`a backend joining while a host dies${family === 6 ? ' (IPv6)' : ''}: nothing breaks for the change alone, for the coinciding failure with the settle hold and replies via the forwarding host, or for a failure 4 s after the change`, { skip, timeout: 300_000 }, async (t) => {
    await bench?.destroy();
    bench = await ChangeBench.create(family);
    await changeCases(t, bench);
  });
}

async function changeCases(t: { diagnostic(msg: string): void }, b: ChangeBench): Promise<void> {
  const alone = await b.changeAlone();
  t.diagnostic(described(alone));
  assert.ok(alone.broken <= 1, `the change alone broke ${alone.broken}`);

  await b.setSettle(3);
  await b.setForwarderReturn(true);
  const fwd3 = await b.coinciding('forwarderReturn_settle3');
  t.diagnostic(described(fwd3));
  assert.ok(fwd3.broken <= BOUND, `return via the forwarding host with the settle hold: ${fwd3.broken} broke`);

  const later = await b.failureAfterChange();
  t.diagnostic(described(later));
  assert.ok(later.broken <= LATER_BOUND, `flows established before the change, their host dying 4 s after it: ${later.broken} broke (the second chance should find their backend)`);
}
