// Slots by identity for flow-state sync (sync.ts): slots differ per host, so entries travel with their service's
// VIP:port/proto and their backend's address:port, and each host maps them onto its own slots.
import { backendId, serviceId } from '../config/model';
import type { SyncNames } from './sync';

/** What naming needs of the balancer (src/control/balancer.ts): its slot allocations as last published. */
export interface SlotDirectory {
  backendKeyOfSlot(slot: number): string | undefined;
  backendSlot(key: string): number | undefined;
  serviceSlot(id: string): number | undefined;
}

/** "10.0.0.1:80/tcp" or "[fd00::1]:80/tcp" (config/model.ts backendId) → address and port. */
export function parseBackendId(id: string): { addr: string; port: number } | undefined {
  const m = /^(?:\[([^\]]+)\]|([^:/]+)):(\d+)\/(?:tcp|udp)$/.exec(id);
  return m ? { addr: m[1] ?? m[2], port: Number(m[3]) } : undefined;
}

export function syncNames(d: SlotDirectory): SyncNames {
  return {
    backendOf(slot) {
      const key = d.backendKeyOfSlot(slot);
      return key === undefined ? undefined : parseBackendId(key.slice(key.indexOf('|') + 1));
    },
    slotsOf(vip, vport, proto, bkAddr, bkPort) {
      const sid = serviceId({ vip, port: vport, proto });
      const svc = d.serviceSlot(sid);
      const backend = d.backendSlot(`${sid}|${backendId({ addr: bkAddr, port: bkPort }, proto)}`);
      return svc === undefined || backend === undefined ? undefined : { svc, backend };
    },
  };
}
