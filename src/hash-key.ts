// The Maglev/flow hash key. It must be the same on every l4nat of a cluster and across restarts (a
// restarted l4nat forwards flows it has no entry for by the ring, so the ring must not change), and
// unpredictable to clients (so nobody can aim flows at one backend). Default: a random key created once
// in a file; --hash-key gives it explicitly (the way to share it across hosts).
import { randomBytes } from 'crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'fs';
import { dirname } from 'path';
import type { Logger } from './log';

export function loadOrCreateHashKey(file: string, log: Logger): Buffer {
  try {
    return parseKeyFile(file, readFileSync(file, 'utf8'));
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
  mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
  const key = randomBytes(16);
  try {
    writeFileSync(file, `${key.toString('hex')}\n`, { mode: 0o600, flag: 'wx' });
    log.info({ file }, 'created a new hash key (share it with --hash-key on every host of a cluster)');
    return key;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') return parseKeyFile(file, readFileSync(file, 'utf8'));
    throw e;
  }
}

function parseKeyFile(file: string, text: string): Buffer {
  const t = text.trim();
  if (!/^[0-9a-fA-F]{32}$/.test(t)) throw new Error(`hash key file ${file} must hold 32 hex digits, it holds ${JSON.stringify(t.slice(0, 40))}`);
  return Buffer.from(t, 'hex');
}
