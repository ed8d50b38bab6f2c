// The lab's hello exchange as the client driver sees it: the backend's reply line "<backend> <peer addr> <peer
// port>" (backend-server.ts writes it) and the short failure codes the driver's error histograms count.
// Layers: this file → client-driver-requests.ts, client-driver-streams.ts.

/** A failure with a short code for the errors histogram. */
export class DriverError extends Error {
  constructor(
    readonly code: string,
    message?: string,
  ) {
    super(message ?? code);
  }
}

export function errorCode(err: unknown): string {
  if (err instanceof DriverError) return err.code;
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  return typeof code === 'string' ? code : 'EUNKNOWN';
}

export function normalizePeer(addr: string): string {
  const m = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(addr);
  return m ? m[1]! : addr;
}

export interface Reply {
  backend: string;
  peerAddr: string;
  peerPort: number;
}

const REPLY = /^(\S+) (\S+) (\d+)$/;

export function parseReply(line: string): Reply | null {
  const m = REPLY.exec(line.trim());
  if (!m) return null;
  return { backend: m[1]!, peerAddr: normalizePeer(m[2]!), peerPort: Number(m[3]) };
}
