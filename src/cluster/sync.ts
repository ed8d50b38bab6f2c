// Flow-state sync among the cluster's hosts (docs/scale-out.md "Flow-state sync"), for the entries the ring cannot
// reconstruct: every ~150 ms the workers' logs (native/core/sync_log.h) are drained, their slots named by identity
// (service VIP:port/proto, backend address:port) and sent over UDP, batched and authenticated (sync-wire.ts), to
// every peer; a peer puts them into its flow table as learned. A host that starts asks its peers for their
// divergent sets. Bounded: entries sent per second (max_rate, bootstrap answers and refreshes included), entries
// kept and queued (max_entries); what does not fit is counted, never waited for.
import { randomBytes } from 'crypto';
import { createSocket, type Socket } from 'dgram';
import type { Logger } from '../util/log';
import type { SyncApplied } from '../dataplane/addon';
import type { SyncRecord } from '../dataplane/sync-record';
import { familyOf } from '../config/address-syntax';
import { decodeMessage, encodeMessage, MAX_ENTRIES, ReplayGuard, WireError, type Message, type MessageType, type RejectReason, type WireEntry } from './sync-wire';
import type { PeerAddress } from './options';
import { FLOW_BITS } from '../dataplane/flow-state';
import type { SyncOptions } from './sync-options';
import type { SyncStats } from './sync-stats';

export type { SyncStats } from './sync-stats';

/** What sync needs of the data plane (src/dataplane/native.ts Dataplane has it). */
export interface SyncDataplane {
  syncSet(on: boolean): void;
  syncDrain(): { records: SyncRecord[]; dropped: number };
  syncApply(records: readonly SyncRecord[]): SyncApplied;
  syncCheck(records: readonly SyncRecord[]): Uint32Array;
}

/** Slots by identity, from the tables last published (the balancer has them). */
export interface SyncNames {
  /** The backend a slot holds: its address and port (its service is the flow's VIP, port and protocol). */
  backendOf(slot: number): { addr: string; port: number } | undefined;
  /** This host's service and backend slots for a flow's service and a backend, if it has them. */
  slotsOf(vip: string, vport: number, proto: 'tcp' | 'udp', bkAddr: string, bkPort: number): { svc: number; backend: number } | undefined;
}


const PUMP_MS = 150;
const KEEPALIVE_MS = 1000;
const BOOTSTRAP_EVERY_MS = 5000; // a peer's request for our set is answered at most this often
const REJOIN_MS = 5000; // a peer silent for longer (keepalives every second) is asked for its set again

const flowKey = (e: Pick<WireEntry, 'client' | 'cport' | 'vip' | 'vport' | 'proto'>): string => `${e.proto}|${e.client}|${e.cport}|${e.vip}|${e.vport}`;
const peerName = (p: PeerAddress): string => (p.addr.includes(':') ? `[${p.addr}]:${p.port}` : `${p.addr}:${p.port}`);

/** A peer's entry as this host's data plane takes it (its own slots). */
const toRecord = (e: WireEntry, slots: { svc: number; backend: number }): SyncRecord => ({
  op: e.op, family: e.family, proto: e.proto, client: e.client, cport: e.cport, vip: e.vip, vport: e.vport, backend: slots.backend, svc: slots.svc,
  state: e.confirmed ? FLOW_BITS.EST : FLOW_BITS.REPLY,
});

interface Outgoing {
  entry: WireEntry;
  to: PeerAddress | null; // null: every peer
}

export class FlowSync {
  private socket: Socket | undefined;
  private timers: NodeJS.Timeout[] = [];
  private readonly sender = randomBytes(8);
  private seq = 0n;
  private readonly guard: ReplayGuard;
  /** This host's divergent entries (by flow), and the entries learned from peers with when they were last heard of. */
  private readonly own = new Map<string, WireEntry>();
  private readonly known = new Map<string, { e: WireEntry; at: number }>();
  /** Entries waiting for the rate: queue[qHead..] (an index, not shift(): a bootstrap answer may queue many). */
  private queue: Outgoing[] = [];
  private qHead = 0;
  private tokens = 0;
  private lastFill = Date.now();
  private readonly peerSeen = new Map<string, { at: number; received: number }>();
  private readonly answeredAt = new Map<string, number>();
  private readonly stats = {
    sent: { messages: 0, entries: 0 },
    received: { messages: 0, entries: 0 },
    rejected: { malformed: 0, bad_mac: 0, replayed: 0, stale: 0, unknown_peer: 0, unknown_backend: 0 } as Record<RejectReason, number>,
    learned: 0,
    kept: 0,
    forgotten: 0,
    overflow: 0,
    logFull: 0,
  };

  constructor(
    private readonly opts: SyncOptions,
    private readonly listen: string,
    private readonly peers: readonly PeerAddress[],
    private readonly dp: SyncDataplane,
    private readonly names: SyncNames,
    private readonly log: Logger,
  ) {
    this.guard = new ReplayGuard(opts.maxSkew * 1000);
  }

  /** Binds the port, turns the workers' logs on, asks the peers for their divergent sets. */
  async start(): Promise<void> {
    const s = createSocket({ type: familyOf(this.listen) === 6 ? 'udp6' : 'udp4' });
    await new Promise<void>((resolve, reject) => {
      s.once('error', reject);
      s.bind(this.opts.port, this.listen, () => {
        s.off('error', reject);
        resolve();
      });
    });
    s.on('error', (err) => this.log.warn({ event: 'sync_socket_error', err: err.message }, `cluster sync: ${err.message}`));
    s.on('message', (buf, rinfo) => this.receive(buf, rinfo.address));
    this.socket = s;
    this.dp.syncSet(true);
    this.timers.push(setInterval(() => this.guarded('pump', () => this.pump()), PUMP_MS));
    this.timers.push(setInterval(() => this.control('keepalive'), KEEPALIVE_MS));
    this.timers.push(setInterval(() => this.guarded('refresh', () => this.refresh()), this.opts.refresh * 1000));
    for (const t of this.timers) t.unref();
    this.control('request');
    this.log.info({ event: 'sync_started', port: this.opts.port, peers: this.peers.map(peerName) }, `cluster sync: flow-state sync on udp ${this.listen}:${this.opts.port} with ${this.peers.length} peer(s)`);
  }

  /** A timer's work: a data plane closed under it (a stop in progress) is logged once, never thrown from a timer. */
  private guarded(what: string, fn: () => void): void {
    try {
      fn();
    } catch (err) {
      if (this.failed !== what) this.log.warn({ event: 'sync_failed', what, err: (err as Error).message }, `cluster sync: ${what} failed: ${(err as Error).message}`);
      this.failed = what;
    }
  }

  private failed = '';

  async close(): Promise<void> {
    for (const t of this.timers) clearInterval(t);
    this.timers = [];
    try {
      this.dp.syncSet(false);
    } catch {
      // the data plane is closed already
    }
    const s = this.socket;
    this.socket = undefined;
    if (s) await new Promise<void>((r) => s.close(() => r()));
  }

  /** Drains the workers' logs into the own set and the send queue, then sends what the rate allows. */
  pump(): void {
    const { records, dropped } = this.dp.syncDrain();
    this.stats.logFull = dropped;
    for (const r of records) {
      const bk = this.names.backendOf(r.backend);
      if (!bk) continue; // its backend left the tables since: nobody can be pinned to it any more
      const e: WireEntry = { op: r.op, family: r.family, proto: r.proto === 6 ? 6 : 17, client: r.client, cport: r.cport, vip: r.vip, vport: r.vport, bkFamily: familyOf(bk.addr) ?? r.family, bkAddr: bk.addr, bkPort: bk.port, confirmed: r.proto !== 6 || (r.state & FLOW_BITS.EST) !== 0 };
      const k = flowKey(e);
      if (e.op === 'del') this.own.delete(k);
      else if (this.own.size < this.opts.maxEntries || this.own.has(k)) this.own.set(k, e);
      else this.stats.overflow++;
      this.enqueue(e, null);
    }
    this.flush();
  }

  private enqueue(entry: WireEntry, to: PeerAddress | null): void {
    if (this.queue.length - this.qHead >= this.opts.maxEntries) {
      this.stats.overflow++;
      return;
    }
    this.queue.push({ entry, to });
  }

  /** Sends queued entries, MAX_ENTRIES per datagram, within max_rate entries per second. */
  private flush(): void {
    const now = Date.now();
    this.tokens = Math.min(this.opts.maxRate, this.tokens + ((now - this.lastFill) / 1000) * this.opts.maxRate);
    this.lastFill = now;
    const q = this.queue;
    while (this.qHead < q.length && this.tokens >= 1) {
      const to = q[this.qHead].to;
      const batch: WireEntry[] = [];
      while (batch.length < MAX_ENTRIES && batch.length < this.tokens && this.qHead < q.length && q[this.qHead].to === to) batch.push(q[this.qHead++].entry);
      this.tokens -= batch.length;
      this.send('entries', batch, to);
    }
    if (this.qHead === q.length) {
      this.queue = [];
      this.qHead = 0;
    } else if (this.qHead > 4096 && this.qHead > q.length / 2) {
      this.queue = q.slice(this.qHead);
      this.qHead = 0;
    }
  }

  private send(type: MessageType, entries: WireEntry[], to: PeerAddress | null): void {
    const s = this.socket;
    if (!s) return;
    this.seq++;
    const buf = encodeMessage({ type, sender: this.sender, seq: this.seq, timeMs: Date.now(), entries }, this.opts.key);
    for (const p of to ? [to] : this.peers) {
      s.send(buf, this.opts.port, p.addr);
      this.stats.sent.messages++;
      this.stats.sent.entries += entries.length;
    }
  }

  private control(type: 'keepalive' | 'request'): void {
    this.send(type, [], null);
  }

  /**
   * Re-sends this host's entries that are still live and still its own, and forgets the others without telling:
   * an entry that expired here may live on at a peer that carries its flow now (its packets keep that peer's
   * learned copy alive), and one that is not carried anywhere expires there by the same timeouts. Closes travel
   * as removals from the data plane.
   */
  refresh(): void {
    const keys = [...this.own.keys()];
    const recs: SyncRecord[] = [];
    const kept: string[] = [];
    for (const k of keys) {
      const e = this.own.get(k)!;
      const slots = this.names.slotsOf(e.vip, e.vport, e.proto === 6 ? 'tcp' : 'udp', e.bkAddr, e.bkPort);
      if (!slots) {
        this.own.delete(k);
        continue;
      }
      recs.push(toRecord(e, slots));
      kept.push(k);
    }
    const live = recs.length ? this.dp.syncCheck(recs) : new Uint32Array(0);
    kept.forEach((k, i) => {
      const e = this.own.get(k)!;
      if (live[i] === recs[i].backend) this.enqueue(e, null);
      else this.own.delete(k);
    });
    const stale = Date.now() - 3 * this.opts.refresh * 1000;
    for (const [k, v] of this.known) if (v.at < stale) this.known.delete(k);
    this.flush();
  }

  /** A datagram from the network: believed only from a configured peer, with the cluster's MAC, fresh and new. */
  receive(buf: Buffer, from: string): void {
    const peer = this.peers.find((p) => p.addr === from);
    let m: Message;
    try {
      if (!peer) throw new WireError('unknown_peer', `a datagram from ${from}, which is not a configured peer`);
      m = decodeMessage(buf, this.opts.key);
      this.guard.accept(m, Date.now());
    } catch (e) {
      if (!(e instanceof WireError)) throw e;
      this.stats.rejected[e.reason]++;
      return;
    }
    const seen = this.peerSeen.get(peer.addr) ?? { at: 0, received: 0 };
    // First contact (the peer was not up when this host asked at start) or back after a silence (a partition, a
    // restart): ask it for its divergent set; it answers each process of ours once.
    if (Date.now() - seen.at > REJOIN_MS) this.send('request', [], peer);
    seen.at = Date.now();
    seen.received++;
    this.peerSeen.set(peer.addr, seen);
    this.stats.received.messages++;
    if (m.type === 'request') this.answer(peer, m.sender.toString('hex'));
    else if (m.type === 'entries') this.learn(m.entries);
  }

  private learn(entries: WireEntry[]): void {
    const recs: SyncRecord[] = [];
    const now = Date.now();
    for (const e of entries) {
      this.stats.received.entries++;
      const slots = this.names.slotsOf(e.vip, e.vport, e.proto === 6 ? 'tcp' : 'udp', e.bkAddr, e.bkPort);
      if (!slots) {
        this.stats.rejected.unknown_backend++;
        continue;
      }
      const k = flowKey(e);
      if (e.op === 'del') this.known.delete(k);
      else if (this.known.size < this.opts.maxEntries || this.known.has(k)) this.known.set(k, { e, at: now });
      else this.stats.overflow++;
      recs.push(toRecord(e, slots));
    }
    if (!recs.length) return;
    try {
      const r = this.dp.syncApply(recs);
      this.stats.learned += r.learned;
      this.stats.kept += r.kept;
      this.stats.forgotten += r.forgotten;
    } catch (err) {
      this.log.warn({ event: 'sync_apply_failed', err: (err as Error).message }, `cluster sync: ${(err as Error).message}`);
    }
  }

  /**
   * A peer that started asks for the divergent set: ours and what we learned. Once per process of that peer (its
   * sender id) within BOOTSTRAP_EVERY_MS, so a restarted peer is answered at once and a repeated request is not.
   */
  private answer(peer: PeerAddress, sender: string): void {
    const now = Date.now();
    if (now - (this.answeredAt.get(sender) ?? 0) < BOOTSTRAP_EVERY_MS) return;
    for (const [k, at] of this.answeredAt) if (now - at >= BOOTSTRAP_EVERY_MS) this.answeredAt.delete(k);
    this.answeredAt.set(sender, now);
    for (const e of this.own.values()) this.enqueue(e, peer);
    for (const { e } of this.known.values()) this.enqueue(e, peer);
    this.flush();
  }

  status(): SyncStats {
    const now = Date.now();
    return {
      peers: this.peers.map((p) => {
        const s = this.peerSeen.get(p.addr);
        return { peer: peerName({ addr: p.addr, port: this.opts.port }), lastMessageAgeMs: s ? now - s.at : null, received: s?.received ?? 0 };
      }),
      sent: { ...this.stats.sent },
      received: { ...this.stats.received },
      rejected: { ...this.stats.rejected },
      learned: this.stats.learned,
      kept: this.stats.kept,
      forgotten: this.stats.forgotten,
      own: this.own.size,
      known: this.known.size,
      overflow: this.stats.overflow,
      logFull: this.stats.logFull,
      queued: this.queue.length - this.qHead,
    };
  }
}
