// Captures inside lab namespaces, from the orchestrator's side: starts capture-agent.js with `ip netns exec` (a
// process of the lab, so lab.destroy() stops it too), waits until libpcap is open, collects the decoded packets.
// Layers: lab.ts (processes in namespaces) → this file → checks/*.ts.
import path from 'node:path';
import type { Lab } from '../lab/lab';
import type { NsProcess } from '../lab/netns';
import type { CapturedPacket } from './packet';

export interface Capture {
  readonly role: string;
  readonly dev: string;
  readonly proc: NsProcess;
  /** Packets decoded so far. */
  packets(): CapturedPacket[];
  /** Waits `settleMs` (packets still in flight), stops the agent and returns every packet it saw. */
  stop(settleMs?: number): Promise<CapturedPacket[]>;
}

function agentScript(): string {
  return path.join(__dirname, 'capture-agent.js');
}

/** Starts a capture on `dev` inside `role`'s namespace with a BPF `filter`; resolves once it is open. */
export async function startCapture(lab: Lab, role: string, dev: string, filter: string): Promise<Capture> {
  const proc = lab.spawn(role, process.execPath, [agentScript(), '--dev', dev, '--filter', filter], { maxLines: 200_000 });
  await proc.waitForLine((l) => l.startsWith('{"ready":true'), { timeoutMs: 10_000, what: 'capture ready line', stream: 'stdout' });
  const parse = (): CapturedPacket[] =>
    proc.stdoutLines.flatMap((l) => {
      if (!l.startsWith('{"t":')) return [];
      try {
        return [JSON.parse(l) as CapturedPacket];
      } catch {
        return [];
      }
    });
  let stopped: Promise<CapturedPacket[]> | null = null;
  return {
    role,
    dev,
    proc,
    packets: parse,
    stop(settleMs = 300) {
      stopped ??= (async () => {
        await new Promise((r) => setTimeout(r, settleMs));
        await proc.stop({ signal: 'SIGTERM', timeoutMs: 3_000 });
        return parse();
      })();
      return stopped;
    },
  };
}

/** Starts the same capture on every backend's interface (whichever backend a flow lands on, it is seen). */
export async function captureBackends(lab: Lab, filter: string, ids?: readonly string[]): Promise<Map<string, Capture>> {
  const list = ids ?? lab.backends.map((b) => b.id);
  const caps = await Promise.all(list.map((id) => startCapture(lab, id, lab.backend(id).dev, filter)));
  return new Map(list.map((id, i) => [id, caps[i]!]));
}
