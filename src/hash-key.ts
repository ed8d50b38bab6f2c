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
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw explain(e, file);
  }
  try {
    mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
  } catch (e) {
    throw explain(e, file);
  }
  const key = randomBytes(16);
  try {
    writeFileSync(file, `${key.toString('hex')}\n`, { mode: 0o600, flag: 'wx' });
    log.info({ file }, 'created a new hash key (share it with --hash-key on every host of a cluster)');
    return key;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') return parseKeyFile(file, readFileSync(file, 'utf8'));
    throw explain(e, file);
  }
}

/** A permission error says what to do: an unprivileged l4nat needs a key file it may read and write. */
function explain(e: unknown, file: string): unknown {
  const code = (e as NodeJS.ErrnoException).code;
  if (code !== 'EACCES' && code !== 'EPERM') return e;
  return new Error(
    `hash key file ${file}: ${code} (l4nat runs as uid ${process.getuid?.() ?? '?'}): give the key with --hash-key HEX32 (config: global.hash_key), ` +
      `point global.hash_key_file at a file this user may read, or let systemd's StateDirectory=l4nat make ${dirname(file)} its own`,
  );
}

function parseKeyFile(file: string, text: string): Buffer {
  const t = text.trim();
  if (!/^[0-9a-fA-F]{32}$/.test(t)) throw new Error(`hash key file ${file} must hold 32 hex digits, it holds ${JSON.stringify(t.slice(0, 40))}`);
  return Buffer.from(t, 'hex');
}
