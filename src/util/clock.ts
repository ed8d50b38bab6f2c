// The clock of the data plane's worker heartbeats, for everything that compares with them (watchdog, status,
// metrics, test rigs).

/** CLOCK_MONOTONIC in ms, the clock of the workers' heartbeats (libuv's hrtime is CLOCK_MONOTONIC on Linux). */
export function monotonicMs(): number {
  return Number(process.hrtime.bigint() / 1_000_000n);
}
