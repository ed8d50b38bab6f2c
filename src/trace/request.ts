// What a trace asks for, from `l4nat trace`'s flags or GET /v1/trace's query parameters (the same names): which
// packets (client, service, backend, drops only), how many and for how long, and whether the wire view (pcap)
// comes too. Pure; every error names the flag or parameter, what it expects and what it got.
import { familyOf } from '../config/address-syntax';
import { OptionError, Subject } from '../config/options';
import { canonicalIp, type Family } from '../host/addr';

export const TRACE_DEFAULT_COUNT = 1000;
export const TRACE_MAX_COUNT = 1_000_000;
export const TRACE_DEFAULT_SECONDS = 60;
export const TRACE_MAX_SECONDS = 3600;

export interface TraceRequest {
  client?: { addr: string; family: Family; port?: number };
  /** A service's name (the config's), or its id VIP:PORT/PROTO; resolved by the daemon. */
  service?: string;
  backend?: { addr: string; family: Family; port: number };
  drops: boolean;
  /** Stop after this many packets (verdict records). */
  count: number;
  /** Stop after this long. */
  seconds: number;
  /** Also the packets on the TUN as l4nat read and wrote them (the wire view, for --pcap). */
  wire: boolean;
}

/** The parameters, by name: the CLI's flags without "--" and the API's query parameters. */
export const TRACE_PARAMS = ['client', 'service', 'backend', 'drops', 'count', 'seconds', 'pcap'] as const;
export type TraceParam = (typeof TRACE_PARAMS)[number];

function port(text: string, s: Subject, what: string, got: string): number {
  if (!/^\d{1,5}$/.test(text) || Number(text) < 1 || Number(text) > 65535) throw s.expected(what, got);
  return Number(text);
}

/** IP[:PORT]; IPv6 as [IP]:PORT, or bare without a port. */
export function parseClient(text: string, s: Subject): NonNullable<TraceRequest['client']> {
  const what = 'IP or IP:PORT (IPv6 as [IP]:PORT), port 1-65535';
  const got = JSON.stringify(text);
  let addr = text;
  let portText: string | undefined;
  const br = /^\[([^\]]+)\](?::(.*))?$/.exec(text);
  if (br) {
    addr = br[1];
    portText = br[2];
  } else if (familyOf(text) !== 6 && text.includes(':')) {
    addr = text.slice(0, text.lastIndexOf(':'));
    portText = text.slice(text.lastIndexOf(':') + 1);
  }
  const family = familyOf(addr);
  if (!family || (br && family !== 6)) throw s.expected(what, got);
  return { addr: canonicalIp(addr, family), family, ...(portText !== undefined ? { port: port(portText, s, what, got) } : {}) };
}

/** ADDR:PORT (IPv6 as [ADDR]:PORT): a backend in any service. */
export function parseBackendAddr(text: string, s: Subject): NonNullable<TraceRequest['backend']> {
  const what = 'ADDR:PORT (IPv6 as [ADDR]:PORT), port 1-65535';
  const c = (() => {
    try {
      return parseClient(text, s);
    } catch {
      throw s.expected(what, JSON.stringify(text));
    }
  })();
  if (c.port === undefined) throw s.expected(what, JSON.stringify(text));
  return { addr: c.addr, family: c.family, port: c.port };
}

function whole(text: string, s: Subject, min: number, max: number): number {
  if (!/^\d+$/.test(text) || Number(text) < min || Number(text) > max) throw s.expected(`a whole number from ${min} to ${max}`, JSON.stringify(text));
  return Number(text);
}

function flag(text: string, s: Subject): boolean {
  if (text === '' || text === '1' || text === 'true') return true;
  if (text === '0' || text === 'false') return false;
  throw s.expected('nothing, 1, true, 0 or false', JSON.stringify(text));
}

/**
 * Parses the parameters given (undefined: not given). `subject` names each one as its source reads: a flag
 * (--client) or a query parameter (querystring/client).
 */
export function parseTraceRequest(get: (p: TraceParam) => string | undefined, subject: (p: TraceParam) => Subject): TraceRequest {
  const r: TraceRequest = { drops: false, count: TRACE_DEFAULT_COUNT, seconds: TRACE_DEFAULT_SECONDS, wire: false };
  const v = (p: TraceParam): string | undefined => get(p);
  const client = v('client');
  if (client !== undefined) r.client = parseClient(client, subject('client'));
  const service = v('service');
  if (service !== undefined) {
    if (!/^[\w.:[\]/-]{1,100}$/.test(service)) throw subject('service').expected('a service name or VIP:PORT[/tcp|udp]', JSON.stringify(service));
    r.service = service;
  }
  const backend = v('backend');
  if (backend !== undefined) r.backend = parseBackendAddr(backend, subject('backend'));
  const drops = v('drops');
  if (drops !== undefined) r.drops = flag(drops, subject('drops'));
  const count = v('count');
  if (count !== undefined) r.count = whole(count, subject('count'), 1, TRACE_MAX_COUNT);
  const seconds = v('seconds');
  if (seconds !== undefined) r.seconds = whole(seconds, subject('seconds'), 1, TRACE_MAX_SECONDS);
  const pcap = v('pcap');
  if (pcap !== undefined) r.wire = flag(pcap, subject('pcap'));
  return r;
}

/** The query string of GET /v1/trace for a request (what the CLI sends). */
export function traceQuery(r: TraceRequest): string {
  const q = new URLSearchParams();
  const host = (a: { addr: string; family: Family }): string => (a.family === 6 ? `[${a.addr}]` : a.addr);
  if (r.client) q.set('client', r.client.port !== undefined ? `${host(r.client)}:${r.client.port}` : r.client.addr);
  if (r.service !== undefined) q.set('service', r.service);
  if (r.backend) q.set('backend', `${host(r.backend)}:${r.backend.port}`);
  if (r.drops) q.set('drops', '1');
  q.set('count', String(r.count));
  q.set('seconds', String(r.seconds));
  if (r.wire) q.set('pcap', '1');
  return q.toString();
}

/** Query parameters GET /v1/trace does not know: an error naming them and the known ones. */
export function unknownTraceParams(keys: readonly string[]): OptionError | null {
  const bad = keys.filter((k) => !(TRACE_PARAMS as readonly string[]).includes(k));
  return bad.length ? new OptionError(`querystring: unknown parameter ${bad.map((k) => JSON.stringify(k)).join(', ')}; expected ${TRACE_PARAMS.join(', ')}`) : null;
}
