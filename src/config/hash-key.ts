// The Maglev/flow hash key. It must be the same on every l4nat of a cluster and across restarts (a
// restarted l4nat forwards flows it has no entry for by the ring, so the ring must not change), and
// unpredictable to clients (so nobody can aim flows at one backend). Default: a random key created once
// in a file (owner-only, src/config/secret-file.ts); to share it across hosts, copy that file (hash_key_file).
import { randomBytes } from 'crypto';
import { dirname } from 'path';
import type { Logger } from '../util/log';
import { loadOrCreateSecret, readSecretFile, SecretFileError } from './secret-file';

const WHAT = 'hash key file';

export function loadOrCreateHashKey(file: string, log: Logger): Buffer {
  const remedy =
    `point global.hash_key_file (--hash-key-file) at a file this user may read, ` +
    `or let systemd's StateDirectory=l4nat make ${dirname(file)} its own`;
  const { value, created } = loadOrCreateSecret(file, WHAT, () => `${randomBytes(16).toString('hex')}\n`, (t) => parseKeyFile(file, t), remedy);
  if (created) log.info({ file }, 'created a new hash key (copy this file to every host of a cluster and name it in global.hash_key_file)');
  return value;
}

/** Reads and checks a key file (owner-only, 32 hex digits); `l4nat check` runs it before `up` would. */
export function readHashKeyFile(file: string): Buffer {
  return parseKeyFile(file, readSecretFile(file, WHAT));
}

function parseKeyFile(file: string, text: string): Buffer {
  const t = text.trim();
  // Never quote the text: a key file pointed at the wrong file would print a line of it.
  if (!/^[0-9a-fA-F]{32}$/.test(t)) throw new SecretFileError(`${WHAT} ${file} must hold 32 hex digits (16 bytes), and it does not (${t.length} characters)`);
  return Buffer.from(t, 'hex');
}
