// A flow-table entry's state: the bits the data plane keeps (native/core/flow_table.h FL_*) and the TCP state
// names the flow listing shows for them, in the order of native/core/flow_query.h's classes (which decide the
// name of an entry's bits, and which a filter takes by number). Both are checked against the addon at load by
// src/dataplane/addon-layout.ts.

/** SYNCED: logged for the cluster's peers as pinned against the ring, or learned from one (flow-state sync). */
export const FLOW_BITS = { SYN: 1, REPLY: 2, EST: 4, FIN_C: 8, FIN_B: 16, RST: 32, SYNCED: 64 } as const;

export const FLOW_STATES = ['SYN_SENT', 'SYN_RECV', 'ESTABLISHED', 'FIN_WAIT', 'CLOSE', 'UDP'] as const;
export type FlowState = (typeof FLOW_STATES)[number];

/** Each state's number in the addon (its position in FLOW_STATES). */
export const FLOW_CLASSES: Readonly<Record<FlowState, number>> = Object.fromEntries(FLOW_STATES.map((s, i) => [s, i])) as Record<FlowState, number>;
