// Does this process hold CAP_NET_ADMIN? Read from /proc/self/status (CapEff), so a non-root process
// with the capability (systemd AmbientCapabilities, setcap) is accepted too.
import { readFileSync } from 'fs';

const CAP_NET_ADMIN = 12;

export function hasNetAdmin(): boolean {
  try {
    const m = /^CapEff:\s*([0-9a-f]+)$/m.exec(readFileSync('/proc/self/status', 'utf8'));
    return m !== null && (BigInt(`0x${m[1]}`) & (1n << BigInt(CAP_NET_ADMIN))) !== 0n;
  } catch {
    return process.getuid?.() === 0;
  }
}
