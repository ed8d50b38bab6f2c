// What flow-state sync reports (cluster/sync.ts): for `l4nat status`, GET /v1/status and the metrics. Its own
// module so that the control plane and the admin API can name it without depending on the sync itself.
import type { RejectReason } from './sync-wire';

export interface SyncStats {
  peers: Array<{ peer: string; lastMessageAgeMs: number | null; received: number }>;
  sent: { messages: number; entries: number };
  received: { messages: number; entries: number };
  /** Datagrams (and, for unknown_backend, entries) that changed nothing, by reason. */
  rejected: Record<RejectReason, number>;
  /** Peers' entries put into the flow table as learned, refused there because a live local entry won, and forgotten. */
  learned: number;
  kept: number;
  forgotten: number;
  /** Divergent entries this host logged and keeps sending (live at the last refresh), and entries learned from peers. */
  own: number;
  known: number;
  /** Entries not sent or not kept because a bound (max_entries) was reached. */
  overflow: number;
  /** Records lost to full worker logs (the entries are logged again at a later packet). */
  logFull: number;
  queued: number;
}
