// A flow-table entry's state: the bits the data plane keeps (native/core/flow_table.h FL_*, checked against
// the addon at load by src/dataplane/addon-layout.ts) and the TCP state names the flow listing shows for them.

export const FLOW_BITS = { SYN: 1, REPLY: 2, EST: 4, FIN_C: 8, FIN_B: 16, RST: 32 } as const;

export const FLOW_STATES = ['SYN_SENT', 'SYN_RECV', 'ESTABLISHED', 'FIN_WAIT', 'CLOSE', 'UDP'] as const;
export type FlowState = (typeof FLOW_STATES)[number];

/** The state of an entry with protocol `proto` and state bits `s` (as l4_flow_state_closed and l4_flow_timeout read them). */
export function flowStateName(proto: number, s: number): FlowState {
  const FL = FLOW_BITS;
  if (proto !== 6) return 'UDP';
  if (s & FL.RST || (s & (FL.FIN_C | FL.FIN_B)) === (FL.FIN_C | FL.FIN_B)) return 'CLOSE';
  if (s & (FL.FIN_C | FL.FIN_B)) return 'FIN_WAIT';
  if (s & FL.EST) return 'ESTABLISHED';
  return s & FL.REPLY ? 'SYN_RECV' : 'SYN_SENT';
}
