// The conformance suite's registry: every check in row order, one place to add a row. The checks themselves live
// in checks/ by topic; what a check is and how one runs, in check.ts (re-exported here for run.ts and the tests).
// Layers: checks/*.ts → this file → report.ts, run.ts, tests.
import type { Check } from './check';
import { clientAddress, ownSyn, tfoFiveTuple, tfoSourceHash } from './checks/handshake';
import { keepalive, longIdle, udpPinning } from './checks/idle';
import { ownHopPmtuCheck, pmtuCheck } from './checks/pmtu';
import { bulkIntegrity, concurrentIntegrity, halfCloseByBackend, halfCloseByClient, resetByBackend, resetByClient } from './checks/streams';

export { DEFAULT_CONTEXT, runCheck } from './check';
export type { Check, CheckContext, CheckResult, Outcome } from './check';

export const CHECKS: readonly Check[] = [
  clientAddress,
  keepalive,
  tfoSourceHash,
  tfoFiveTuple,
  halfCloseByClient,
  halfCloseByBackend,
  resetByBackend,
  resetByClient,
  ownSyn,
  pmtuCheck('7a', 4, false),
  pmtuCheck('7b', 6, false),
  pmtuCheck('7c', 4, true),
  ownHopPmtuCheck('7d', 4, 'link'),
  ownHopPmtuCheck('7e', 6, 'link'),
  ownHopPmtuCheck('7f', 4, 'route'),
  ownHopPmtuCheck('7g', 6, 'route'),
  bulkIntegrity,
  concurrentIntegrity,
  longIdle,
  udpPinning,
];
