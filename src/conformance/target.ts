// The thing under test between the client and the backends: l4nat (bin/l4nat.js up in the lb namespace) or
// HAProxy in TCP mode (the reference proxy). One interface, so every check runs unchanged through either.
// Layers: l4nat-process.ts / haproxy.ts → this file → scenario.ts, checks/*.ts.
import { adminAddBackend, adminSetWeight, DEFAULT_ADMIN_PORT } from '../lab/admin-client';
import type { Lab } from '../lab/lab';
import { L4natProcess, startL4nat } from '../lab/l4nat-process';
import { HaproxyOptions, HaproxyProcess, startHaproxy } from './haproxy';

export type TargetKind = 'l4nat' | 'haproxy';
export const TARGETS: readonly TargetKind[] = ['l4nat', 'haproxy'];

export interface TargetOptions {
  /** Lab backends configured at start (default: all). */
  backendIds?: readonly string[];
  /** l4nat --hash; for haproxy: balance source / roundrobin. Default 5tuple. */
  hash?: 'src' | '5tuple';
  /** Extra `l4nat up` flags. */
  l4natArgs?: readonly string[];
  /** HAProxy settings (timeouts, tfo). */
  haproxy?: HaproxyOptions;
}

export interface Target {
  readonly kind: TargetKind;
  /** How it was started (for evidence). */
  readonly description: string;
  addBackend(id: string): Promise<void>;
  /** No new flows/connections to this backend; existing ones go on. */
  drainBackend(id: string): Promise<void>;
  /** Process output, for failure messages. */
  tail(): string;
  stop(): Promise<void>;
}

class L4natTarget implements Target {
  readonly kind = 'l4nat';
  constructor(
    readonly lab: Lab,
    readonly l4: L4natProcess,
  ) {}
  get description(): string {
    return `l4nat ${this.l4.args.join(' ')}`;
  }
  async addBackend(id: string): Promise<void> {
    await adminAddBackend(this.lab, id);
  }
  async drainBackend(id: string): Promise<void> {
    await adminSetWeight(this.lab, id, 0);
  }
  tail(): string {
    return this.l4.proc.tail();
  }
  async stop(): Promise<void> {
    await this.l4.stop();
  }
}

class HaproxyTarget implements Target {
  readonly kind = 'haproxy';
  constructor(readonly h: HaproxyProcess) {}
  get description(): string {
    return `haproxy ${this.h.config.replace(/\n\s*/g, '; ')}`;
  }
  addBackend(id: string): Promise<void> {
    return this.h.addServer(id);
  }
  drainBackend(id: string): Promise<void> {
    return this.h.drainServer(id);
  }
  tail(): string {
    return this.h.proc.tail();
  }
  stop(): Promise<void> {
    return this.h.stop();
  }
}

export async function startTarget(lab: Lab, kind: TargetKind, o: TargetOptions = {}): Promise<Target> {
  if (kind === 'l4nat') {
    const l4 = await startL4nat(lab, {
      backendIds: o.backendIds,
      extraArgs: ['--hash', o.hash ?? '5tuple', '--admin-port', String(DEFAULT_ADMIN_PORT), '--stats-interval', '0', ...(o.l4natArgs ?? [])],
    });
    return new L4natTarget(lab, l4);
  }
  const h = await startHaproxy(lab, {
    backendIds: o.backendIds,
    balance: o.hash === 'src' ? 'source' : 'roundrobin',
    log: process.env.L4NAT_CONFORMANCE_HAPROXY_LOG === '1',
    ...o.haproxy,
  });
  return new HaproxyTarget(h);
}
