// The service model shared by the CLI, the table builder and (later) the config file and admin API.
import type { Family } from './host/addr';

export type Proto = 'tcp' | 'udp';
export type HashMode = '5tuple' | 'src';

export interface BackendSpec {
  addr: string; // canonical text
  family: Family;
  port: number;
  weight: number;
}

export interface ServiceSpec {
  vip: string; // canonical text
  family: Family;
  port: number;
  proto: Proto;
  hash: HashMode;
  backends: BackendSpec[];
}

/** Idle timeouts in seconds, per protocol and TCP state (LVS-like defaults). */
export interface Timeouts {
  tcpSyn: number;
  tcpEstablished: number;
  tcpFin: number;
  tcpClose: number;
  udp: number;
}

export const DEFAULT_TIMEOUTS: Readonly<Timeouts> = {
  tcpSyn: 30,
  tcpEstablished: 900,
  tcpFin: 120,
  tcpClose: 10,
  udp: 300,
};

export function serviceId(s: Pick<ServiceSpec, 'vip' | 'port' | 'proto'>): string {
  return s.vip.includes(':') ? `[${s.vip}]:${s.port}/${s.proto}` : `${s.vip}:${s.port}/${s.proto}`;
}

export function backendId(b: Pick<BackendSpec, 'addr' | 'port'>, proto: Proto): string {
  return b.addr.includes(':') ? `[${b.addr}]:${b.port}/${proto}` : `${b.addr}:${b.port}/${proto}`;
}

/**
 * Reverse translation is stateless: a reply from (backend address, port, proto) is translated back to the
 * one service that owns that triple. Two services sharing one would make replies ambiguous, so reject it.
 */
export function checkServices(services: readonly ServiceSpec[]): void {
  const seen = new Map<string, string>();
  const svcSeen = new Set<string>();
  for (const s of services) {
    const sid = serviceId(s);
    if (svcSeen.has(sid)) throw new Error(`service ${sid} is defined twice`);
    svcSeen.add(sid);
    for (const b of s.backends) {
      if (b.family !== s.family) throw new Error(`backend ${b.addr} is IPv${b.family} but service ${sid} is IPv${s.family}`);
      const id = backendId(b, s.proto);
      const other = seen.get(id);
      if (other !== undefined) {
        throw new Error(
          `backend ${id} is used by services ${other} and ${sid}: replies from it would be ambiguous ` +
            `(give each service its own backend port)`,
        );
      }
      seen.set(id, sid);
    }
  }
}
