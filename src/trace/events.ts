// The lines GET /v1/trace streams (newline-delimited JSON), and `l4nat trace`'s one line per packet made from
// them. Pure.
import type { TraceEndpoint, TraceRecord } from '../dataplane/trace-record';

/** A traced packet: the data plane's record, its slots named. */
export interface TracePacketEvent {
  type: 'packet';
  /** Wall time, nanoseconds since the epoch as a decimal string (a JSON number would lose the last digits). */
  timeNs: string;
  queue: number;
  family: number;
  proto: string;
  dir: TraceRecord['dir'];
  before: { src: TraceEndpoint; dst: TraceEndpoint };
  after: { src: TraceEndpoint; dst: TraceEndpoint };
  tcpFlags?: string;
  seq?: number;
  ack?: number;
  len: number;
  gso: number;
  icmpType?: number;
  verdict: 'written' | 'dropped';
  dropReason?: string;
  flow: TraceRecord['flow'];
  service: string | null;
  backend: string | null;
  ringSlot: number | null;
}

/** A packet on the TUN as l4nat read it (`read`) or wrote it (`written`), for the pcap file. */
export interface TraceWireEvent {
  type: 'wire';
  side: 'read' | 'written';
  timeUs: number;
  origLen: number;
  data: string; // base64 of the IP packet (at most 65535 bytes: a longer GSO super-packet is cut)
}

/** First line: what was installed. Records the rings could not keep are reported as they are found. */
export interface TraceStartEvent {
  type: 'start';
  tun: string;
  match: Record<string, unknown>;
  count: number;
  seconds: number;
  wire: boolean;
}
export interface TraceLostEvent {
  type: 'lost';
  records: number;
  /** The packets were skipped because the client did not read fast enough (else: the data plane's rings were full). */
  slowClient?: boolean;
}
export interface TraceEndEvent {
  type: 'end';
  reason: 'count' | 'seconds' | 'closed';
  packets: number;
}
export type TraceEvent = TracePacketEvent | TraceWireEvent | TraceStartEvent | TraceLostEvent | TraceEndEvent;

const PROTOS: Record<number, string> = { 1: 'icmp', 6: 'tcp', 17: 'udp', 58: 'icmp6' };

/** tcpdump's flag letters: S F R P . (ACK) U E W. */
export function tcpFlagText(f: number): string {
  const letters: Array<[number, string]> = [[0x02, 'S'], [0x01, 'F'], [0x04, 'R'], [0x08, 'P'], [0x20, 'U'], [0x40, 'E'], [0x80, 'W'], [0x10, '.']];
  return letters.filter(([bit]) => f & bit).map(([, l]) => l).join('') || 'none';
}

export function packetEvent(r: TraceRecord, service: string | null, backend: string | null): TracePacketEvent {
  const tcp = r.proto === 6;
  return {
    type: 'packet',
    timeNs: r.timeNs.toString(),
    queue: r.queue,
    family: r.family,
    proto: PROTOS[r.proto] ?? String(r.proto),
    dir: r.dir,
    before: r.before,
    after: r.after,
    ...(tcp ? { tcpFlags: tcpFlagText(r.tcpFlags), seq: r.seq, ack: r.ack } : {}),
    len: r.payloadLen,
    gso: r.gsoSize,
    ...(r.proto === 1 || r.proto === 58 ? { icmpType: r.icmpType } : {}),
    verdict: r.written ? 'written' : 'dropped',
    ...(r.dropReason !== null ? { dropReason: r.dropReason } : {}),
    flow: r.flow,
    service,
    backend,
    ringSlot: r.ringSlot,
  };
}

const ep = (e: TraceEndpoint, family: number): string => {
  if (e.addr === '') return '?';
  const host = family === 6 ? `[${e.addr}]` : e.addr;
  return e.port ? `${host}:${e.port}` : host;
};

/** HH:MM:SS.micro in UTC (the same clock as the pcap's). */
function clock(timeNs: string): string {
  const ns = BigInt(timeNs);
  const d = new Date(Number(ns / 1_000_000n));
  const us = String((ns / 1000n) % 1_000_000n).padStart(6, '0');
  return `${d.toISOString().slice(11, 19)}.${us}`;
}

/** One line per packet: time, queue, direction, tuple before => after, TCP, gso, then the verdict. */
export function formatPacketLine(e: TracePacketEvent): string {
  const tuple = (t: { src: TraceEndpoint; dst: TraceEndpoint }): string => `${ep(t.src, e.family)} > ${ep(t.dst, e.family)}`;
  const parts = [clock(e.timeNs), `q${e.queue}`, e.dir, e.proto, tuple(e.before)];
  if (e.verdict === 'written') parts.push('=>', tuple(e.after));
  if (e.tcpFlags !== undefined) parts.push(`[${e.tcpFlags}]`, `seq ${e.seq}`, `ack ${e.ack}`);
  if (e.icmpType !== undefined) parts.push(`type ${e.icmpType}`);
  parts.push(`len ${e.len}`);
  if (e.gso) parts.push(`gso ${e.gso}`);
  parts.push('|', e.verdict === 'written' ? 'written' : `DROPPED ${e.dropReason ?? ''}`.trim());
  if (e.flow !== 'none') parts.push(`flow ${e.flow}`);
  if (e.ringSlot !== null) parts.push(`ring slot ${e.ringSlot}`);
  if (e.service !== null) parts.push(`service ${e.service}`);
  if (e.backend !== null) parts.push(`backend ${e.backend}`);
  return parts.join(' ');
}
