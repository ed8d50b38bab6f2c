// RoleLab, the base every lab builds on (lab.ts, test/rigs/scaleout.ts): what a lab does by role, whatever its topology.
// Layers: netns.ts (commands, processes) → this file → lab.ts, test/rigs/scaleout.ts.
import type { LabHost } from './lab-plan';
import { ipIn, nsExec, NsProcess, ProcessGroup, RunOptions, RunResult, SpawnOptions } from './netns';

/**
 * What every lab shares (lab.ts and test/rigs/scaleout.ts): namespaces by role, commands and processes run in
 * them (tracked, so destroy() can stop them), and a destroyed lab refusing further use.
 */
export abstract class RoleLab {
  abstract readonly id: string;
  protected readonly procs = new ProcessGroup();
  protected readonly byRole = new Map<string, LabHost>();
  protected teardown: Promise<void> | null = null;

  nsOf(role: string): string {
    const h = this.byRole.get(role);
    if (!h) throw new RangeError(`lab ${this.id} has no role ${JSON.stringify(role)} (has ${[...this.byRole.keys()].join(', ')})`);
    return h.ns;
  }

  protected assertAlive(): void {
    if (this.teardown !== null) throw new Error(`lab ${this.id} is destroyed`);
  }

  exec(role: string, cmd: string, args: readonly string[], opts?: RunOptions): Promise<RunResult> {
    this.assertAlive();
    return nsExec(this.nsOf(role), cmd, args, opts);
  }

  ip(role: string, args: readonly string[]): Promise<string> {
    this.assertAlive();
    return ipIn(this.nsOf(role), args);
  }

  spawn(role: string, cmd: string, args: readonly string[], opts?: SpawnOptions): NsProcess {
    this.assertAlive();
    return this.procs.spawn(this.nsOf(role), cmd, args, opts);
  }
}
