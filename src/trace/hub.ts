// The daemon's side of `l4nat trace`: hands each trace (a GET /v1/trace client) one of the data plane's match
// slots for as long as it runs, drains the workers' trace rings while any trace runs, and gives each trace the
// records its match took, with slots named by service and backend id. A trace ends at its count, at its time
// limit, or when its client goes; the last one to end leaves the data plane with no match: tracing off.
import { ControlError } from '../control/state';
import { backendId, serviceId, type ServiceConfig } from '../config/model';
import { backendKey } from '../dataplane/tables';
import { TRACE_MATCHES, type TraceMatch, type TraceRecord } from '../dataplane/trace-record';
import type { Logger } from '../util/log';
import { packetEvent, type TraceEndEvent, type TraceEvent } from './events';
import type { TraceRequest } from './request';
import { WireCapture, type WireEndpoint, type WireSides } from './wire';

/** How often the rings are drained while a trace runs. */
export const TRACE_DRAIN_MS = 50;

export interface TraceHubDeps {
  dp: { setTrace(slot: number, m: TraceMatch | null): void; drainTrace(): { records: TraceRecord[]; dropped: number }; readonly ifname: string };
  services: () => readonly ServiceConfig[];
  serviceSlot: (id: string) => number | undefined;
  backendSlot: (key: string) => number | undefined;
  log: Logger;
  /** Opens the wire view (tests replace it). */
  openWire?: (tun: string, ends: readonly WireEndpoint[], sides: () => WireSides, on: (e: TraceEvent) => void) => { close(): void };
}

interface Session {
  slot: number;
  req: TraceRequest;
  emit: (e: TraceEvent) => void;
  packets: number;
  timer: NodeJS.Timeout;
  wire?: { close(): void };
  wireEvents: number;
  ended: boolean;
}

export class TraceHub {
  private readonly sessions: Array<Session | undefined> = new Array<Session | undefined>(TRACE_MATCHES).fill(undefined);
  private poll: NodeJS.Timeout | undefined;
  private dropped: number | undefined;

  constructor(private readonly deps: TraceHubDeps) {}

  /** The services `text` names: by id (VIP:PORT[/PROTO]) or by the config's name. */
  private resolveService(text: string): ServiceConfig {
    const all = this.deps.services();
    const id = /\/(tcp|udp)$/.test(text) ? text : `${text}/tcp`;
    const byId = all.find((s) => serviceId(s) === id);
    if (byId) return byId;
    const named = all.filter((s) => s.name === text);
    if (named.length === 1) return named[0];
    if (named.length > 1) throw new ControlError(400, `service "${text}" has ${named.length} VIP:port entries (${named.map(serviceId).join(', ')}): give one of them`);
    throw new ControlError(404, `no service "${text}": expected a service name or VIP:PORT[/tcp|udp] (${all.map((s) => `${s.name} ${serviceId(s)}`).join(', ') || 'no services'})`);
  }

  /** The data-plane match and the wire view's filter for a request; throws ControlError naming what is wrong. */
  match(req: TraceRequest): { match: TraceMatch; ends: WireEndpoint[]; described: Record<string, unknown> } {
    const m: TraceMatch = { drops: req.drops };
    const ends: WireEndpoint[] = [];
    const described: Record<string, unknown> = { drops: req.drops };
    const svc = req.service !== undefined ? this.resolveService(req.service) : undefined;
    if (svc) {
      m.service = { vip: svc.vip, family: svc.family, port: svc.port, proto: svc.proto };
      described.service = serviceId(svc);
    }
    if (req.backend) {
      const b = req.backend;
      const owners = this.deps.services().filter((s) => s.backends.some((x) => x.addr === b.addr && x.port === b.port) && (!svc || s === svc));
      if (!owners.length) throw new ControlError(404, `no backend ${b.family === 6 ? `[${b.addr}]` : b.addr}:${b.port}${svc ? ` in service ${serviceId(svc)}` : ' in any service'}`);
      m.backend = b;
      described.backend = `${b.family === 6 ? `[${b.addr}]` : b.addr}:${b.port}`;
    }
    if (req.client) {
      m.client = req.client;
      described.client = req.client.port !== undefined ? `${req.client.addr} port ${req.client.port}` : req.client.addr;
      ends.push({ addr: req.client.addr, ...(req.client.port !== undefined ? { port: req.client.port } : {}) });
    } else if (svc || req.backend) {
      // Without a client the wire view takes the service side (VIP:port) and the backends' side.
      const services = svc ? [svc] : this.deps.services().filter((s) => s.backends.some((x) => x.addr === req.backend?.addr && x.port === req.backend.port));
      for (const s of services) {
        ends.push({ addr: s.vip, port: s.port });
        for (const b of s.backends) if (!req.backend || (b.addr === req.backend.addr && b.port === req.backend.port)) ends.push({ addr: b.addr, port: b.port });
      }
    }
    return { match: m, ends, described };
  }

  /** Starts a trace; `emit` gets its events, ending with one `end`. Throws ControlError when it cannot start. */
  open(req: TraceRequest, emit: (e: TraceEvent) => void): { close(): void } {
    const { match, ends, described } = this.match(req);
    const slot = this.sessions.findIndex((s) => s === undefined);
    if (slot < 0) throw new ControlError(503, `${TRACE_MATCHES} traces are running already (the most at once): try again when one has ended`);
    this.drain(); // records of an earlier user of the slot go to nobody
    const s: Session = { slot, req, emit, packets: 0, wireEvents: 0, ended: false, timer: setTimeout(() => this.end(s, 'seconds'), req.seconds * 1000) };
    if (req.wire) {
      const open = this.deps.openWire ?? ((tun, e, sides, on) => new WireCapture(tun, e, sides, on));
      try {
        s.wire = open(this.deps.dp.ifname, ends, () => this.sides(), (e) => this.wireEvent(s, e));
      } catch (err) {
        clearTimeout(s.timer);
        throw new ControlError(503, `the wire view (pcap) could not open ${this.deps.dp.ifname}: ${(err as Error).message}`);
      }
    }
    this.sessions[slot] = s;
    this.deps.dp.setTrace(slot, match);
    this.deps.log.info({ event: 'trace_start', slot, match: described, count: req.count, seconds: req.seconds, wire: req.wire }, 'trace started');
    emit({ type: 'start', tun: this.deps.dp.ifname, match: described, count: req.count, seconds: req.seconds, wire: req.wire });
    this.poll ??= setInterval(() => {
      try {
        this.drain();
      } catch (err) {
        // The data plane closed under the traces (a failed queue, a handover): they end, l4nat goes on.
        this.deps.log.warn({ err }, 'draining the trace rings failed: ending the traces');
        this.close();
      }
    }, TRACE_DRAIN_MS);
    return { close: () => this.end(s, 'closed') };
  }

  get running(): number {
    return this.sessions.filter(Boolean).length;
  }

  private wireEvent(s: Session, e: TraceEvent): void {
    // The wire view is bounded like the records: a few packets on the wire per traced packet, at most.
    if (s.ended || s.wireEvents >= s.req.count * 4) return;
    s.wireEvents++;
    s.emit(e);
  }

  /** The services' ends, for the wire view to tell what l4nat read from what it wrote; cached per service list. */
  private sidesOf: { of: readonly ServiceConfig[]; sides: WireSides } | undefined;
  private sides(): WireSides {
    const services = this.deps.services();
    if (this.sidesOf?.of !== services) {
      const vips = new Set<string>();
      const backends = new Set<string>();
      for (const s of services) {
        vips.add(`${s.vip} ${s.port} ${s.proto === 'tcp' ? 6 : 17}`).add(s.vip);
        for (const b of s.backends) backends.add(`${b.addr} ${b.port} ${s.proto === 'tcp' ? 6 : 17}`).add(b.addr);
      }
      this.sidesOf = { of: services, sides: { vips, backends } };
    }
    return this.sidesOf.sides;
  }

  private names(): { service: Map<number, string>; backend: Map<number, string> } {
    const service = new Map<number, string>();
    const backend = new Map<number, string>();
    for (const s of this.deps.services()) {
      const ss = this.deps.serviceSlot(serviceId(s));
      if (ss !== undefined) service.set(ss, serviceId(s));
      for (const b of s.backends) {
        const bs = this.deps.backendSlot(backendKey(s, b));
        if (bs !== undefined) backend.set(bs, backendId(b, s.proto));
      }
    }
    return { service, backend };
  }

  /** Moves the rings' records to the traces whose match took them. */
  drain(): void {
    const { records, dropped } = this.deps.dp.drainTrace();
    const lost = this.dropped === undefined ? 0 : dropped - this.dropped;
    this.dropped = dropped;
    const live = this.sessions.filter((s): s is Session => s !== undefined);
    if (lost > 0) for (const s of live) s.emit({ type: 'lost', records: lost });
    if (!records.length) return;
    const names = this.names();
    for (const r of records) {
      for (const s of live) {
        if (s.ended || !(r.matchMask & (1 << s.slot))) continue;
        s.packets++;
        const name = (m: Map<number, string>, slot: number | null): string | null => (slot === null ? null : (m.get(slot) ?? `slot ${slot}`));
        s.emit(packetEvent(r, name(names.service, r.serviceSlot), name(names.backend, r.backendSlot)));
        if (s.packets >= s.req.count) this.end(s, 'count');
      }
    }
  }

  private end(s: Session, reason: TraceEndEvent['reason']): void {
    if (s.ended) return;
    s.ended = true;
    clearTimeout(s.timer);
    s.wire?.close();
    try {
      this.deps.dp.setTrace(s.slot, null);
    } catch (err) {
      // A data plane closed under the trace has no match to remove.
      this.deps.log.debug({ err }, 'removing a trace match failed');
    }
    this.sessions[s.slot] = undefined;
    if (!this.running && this.poll) {
      clearInterval(this.poll);
      this.poll = undefined;
    }
    this.deps.log.info({ event: 'trace_end', slot: s.slot, reason, packets: s.packets }, 'trace ended');
    s.emit({ type: 'end', reason, packets: s.packets });
  }

  /** Ends every trace (shutdown). */
  close(): void {
    for (const s of this.sessions) if (s) this.end(s, 'closed');
  }
}
