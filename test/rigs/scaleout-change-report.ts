// `npm run report:scaleout-change [-- --runs N] [--family 4|6]`: the six cells of docs/scale-out.md's "A backend change coinciding with a
// host failure" table, measured N times (default 1) in a fresh scale-out lab each, printed as a table and as JSON.
// A measurement, not a test: most cells are races between the ring change and each moved flow's first packets.
// The cells with a stated outcome are asserted by test/scaleout-change-netns.test.ts. Root; bird2 and nft.
import { ChangeBench, STREAMS, type Cell } from './scaleout-change';
import type { Family } from './scaleout';
import { missingFor } from './requirements';

export function parseReportArgs(argv: readonly string[]): { runs: number; family: Family } {
  let runs = 1;
  let family: Family = 4;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--runs' && /^[1-9]\d?$/.test(argv[i + 1] ?? '')) runs = Number(argv[++i]);
    else if (a === '--family' && /^[46]$/.test(argv[i + 1] ?? '')) family = Number(argv[++i]) as Family;
    else throw new Error(`report:scaleout-change: expected --runs N (1-99) or --family 4|6, got ${JSON.stringify(argv.slice(i).join(' '))}`);
  }
  return { runs, family };
}

/** One run: every cell, in the order that needs the fewest restarts. */
async function oneRun(family: Family): Promise<Cell[]> {
  const b = await ChangeBench.create(family);
  try {
    const cells = [await b.changeAlone(), await b.coinciding('ecmpReturn_settle0')];
    await b.setForwarderReturn(true);
    cells.push(await b.coinciding('forwarderReturn_settle0'));
    await b.setForwarderReturn(false);
    await b.setSettle(3);
    cells.push(await b.coinciding('ecmpReturn_settle3'));
    await b.setForwarderReturn(true);
    cells.push(await b.coinciding('forwarderReturn_settle3'));
    cells.push(await b.failureAfterChange());
    return cells;
  } finally {
    await b.destroy();
  }
}

async function main(): Promise<number> {
  const { runs, family } = parseReportArgs(process.argv.slice(2));
  const missing = missingFor({ commands: ['bird', 'birdc', 'nft'] });
  if (missing !== null) {
    process.stderr.write(`report:scaleout-change ${missing}\n`);
    return 1;
  }
  const all: Cell[][] = [];
  for (let r = 0; r < runs; r++) {
    all.push(await oneRun(family));
    process.stderr.write(`run ${r + 1}/${runs}: ${all[r].map((c) => `${c.name} ${c.broken}`).join(', ')}\n`);
  }
  process.stdout.write(`broken connections of ${STREAMS} in the 6 s after the event, IPv${family}, ${runs} run(s):\n`);
  for (const [i, c] of all[0].entries()) process.stdout.write(`  ${c.name.padEnd(26)} ${all.map((run) => run[i].broken).join(', ')}\n`);
  process.stdout.write(`${JSON.stringify(all)}\n`);
  return 0;
}

if (require.main === module) {
  main().then(
    (code) => process.exit(code),
    (err: unknown) => {
      process.stderr.write(`report:scaleout-change: ${(err as Error).stack ?? String(err)}\n`);
      process.exit(1);
    },
  );
}
