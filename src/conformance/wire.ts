// What the conformance server and client share: sending N random bytes with backpressure while hashing them,
// hashing what arrives, reading a first line, JSON output.
// Layers: node:net → this file → server.ts / client.ts.
import { createHash, Hash, randomFillSync } from 'node:crypto';
import type net from 'node:net';

const CHUNK = 256 * 1024;

/** Writes `n` random bytes to `sock` (respecting backpressure) and resolves with their SHA-256 (hex). */
export function sendRandom(sock: net.Socket, n: number): Promise<string> {
  const hash = createHash('sha256');
  return new Promise((resolve, reject) => {
    let left = n;
    const onError = (err: Error): void => reject(err);
    sock.once('error', onError);
    const pump = (): void => {
      while (left > 0) {
        if (sock.destroyed) {
          reject(new Error(`socket destroyed with ${left} bytes unsent`));
          return;
        }
        const len = Math.min(CHUNK, left);
        const buf = randomFillSync(Buffer.allocUnsafe(len));
        hash.update(buf);
        left -= len;
        if (!sock.write(buf)) {
          sock.once('drain', pump);
          return;
        }
      }
      sock.removeListener('error', onError);
      resolve(hash.digest('hex'));
    };
    pump();
  });
}

/** Counts and hashes bytes as they arrive. */
export class Receiver {
  bytes = 0;
  private readonly hash: Hash = createHash('sha256');
  private digestValue: string | null = null;

  push(chunk: Buffer): void {
    if (this.digestValue !== null) throw new Error('Receiver: data after digest()');
    this.bytes += chunk.length;
    this.hash.update(chunk);
  }

  digest(): string {
    this.digestValue ??= this.hash.digest('hex');
    return this.digestValue;
  }
}

/** The SHA-256 of nothing: what a receiver reports when no byte came. */
export const EMPTY_SHA256 = createHash('sha256').digest('hex');

/** Error code of a socket error ('ECONNRESET', ...), or its message. */
export function errCode(err: unknown): string {
  const e = err as NodeJS.ErrnoException;
  return typeof e?.code === 'string' ? e.code : String((e as Error)?.message ?? err);
}

export function printJson(obj: unknown): void {
  process.stdout.write(`${JSON.stringify(obj)}\n`);
}

/** Normalises a socket address (IPv4-mapped IPv6 → dotted quad). */
export function plainAddress(addr: string | undefined): string {
  if (addr === undefined) return '?';
  const m = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(addr);
  return m ? m[1]! : addr;
}

/** Parses `--name value` style arguments into a map (every flag takes one value). */
export function parseFlags(argv: readonly string[], known: readonly string[]): Map<string, string> {
  const out = new Map<string, string>();
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (!a.startsWith('--') || !known.includes(a.slice(2))) throw new Error(`unknown argument ${a} (known: ${known.map((k) => `--${k}`).join(' ')})`);
    const v = argv[++i];
    if (v === undefined) throw new Error(`${a} needs a value`);
    out.set(a.slice(2), v);
  }
  return out;
}

export function intFlag(flags: Map<string, string>, name: string, dflt?: number): number {
  const v = flags.get(name);
  if (v === undefined) {
    if (dflt === undefined) throw new Error(`--${name} is required`);
    return dflt;
  }
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n < 0) throw new Error(`--${name} expects a non-negative integer, got ${v}`);
  return n;
}
