// Files that hold secrets (the hash key, admin and cluster tokens). A secret its group or other users may read
// is already leaked, and one they may write can be replaced: such a file is refused, naming its mode and the fix.
// Errors never quote a secret file's contents (pointed at the wrong file, they would print it).
import { randomBytes } from 'crypto';
import { closeSync, fstatSync, linkSync, mkdirSync, openSync, readFileSync, unlinkSync, writeFileSync } from 'fs';
import { dirname } from 'path';

/** A secret file's problem. `code` is the errno code when the file could not be read (ENOENT, EACCES, ...). */
export class SecretFileError extends Error {
  constructor(
    message: string,
    readonly code?: string,
  ) {
    super(message);
    this.name = 'SecretFileError';
  }
}

/** The file's text, after checking that only its owner may read or write it. `what` names it in errors. */
export function readSecretFile(file: string, what: string): string {
  let fd: number;
  try {
    fd = openSync(file, 'r');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new SecretFileError(`${what} ${file}: cannot read it (${code ?? (e as Error).message})`, code);
  }
  try {
    const st = fstatSync(fd); // the file opened, not whatever the name points at a moment later
    if (!st.isFile()) throw new SecretFileError(`${what} ${file} is not a regular file`);
    const open = st.mode & 0o077;
    if (open !== 0) {
      const who = [open & 0o070 ? 'its group' : '', open & 0o007 ? 'other users' : ''].filter(Boolean).join(' and ');
      throw new SecretFileError(`${what} ${file} has mode ${(st.mode & 0o777).toString(8).padStart(4, '0')}: ${who} may access it; make it private (chmod 600 ${file}) or use another file`);
    }
    return readFileSync(fd, 'utf8');
  } finally {
    closeSync(fd);
  }
}

/**
 * Creates the file (mode 0600, its directory 0700 if missing) with `content`, atomically: it appears complete or
 * not at all, so a second l4nat starting at the same moment reads either nothing or the whole secret. Returns
 * false when the file already existed (it is left as it was).
 */
export function createSecretFile(file: string, content: string): boolean {
  mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
  const tmp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  writeFileSync(tmp, content, { mode: 0o600, flag: 'wx' });
  try {
    linkSync(tmp, file);
    return true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw e;
  } finally {
    unlinkSync(tmp);
  }
}

/**
 * Reads a secret file, creating it first with `make()` when it does not exist. `parse` turns the text into the
 * secret (throwing a message without the text when it is malformed). `remedy` is appended to a permission error.
 */
export function loadOrCreateSecret<T>(file: string, what: string, make: () => string, parse: (text: string) => T, remedy: string): { value: T; created: boolean } {
  const read = (): T => parse(readSecretFile(file, what));
  try {
    return { value: read(), created: false };
  } catch (e) {
    if (!(e instanceof SecretFileError) || e.code !== 'ENOENT') throw explain(e, file, what, remedy);
  }
  let created: boolean;
  try {
    created = createSecretFile(file, make());
  } catch (e) {
    throw explain(e, file, what, remedy);
  }
  return { value: read(), created };
}

/** A permission error says what to do. */
function explain(e: unknown, file: string, what: string, remedy: string): unknown {
  const code = (e as NodeJS.ErrnoException).code;
  if (code !== 'EACCES' && code !== 'EPERM') return e;
  return new Error(`${what} ${file}: ${code} (l4nat runs as uid ${process.getuid?.() ?? '?'}): ${remedy}`);
}

/** An access token: one line of at least 16 printable characters without spaces (it travels in a header). */
export function parseToken(text: string, file: string, what: string): string {
  const t = text.trim();
  if (t.length < 16) throw new SecretFileError(`${what} ${file}: the token is shorter than 16 characters (it has ${t.length})`);
  if (!/^[\x21-\x7e]+$/.test(t)) throw new SecretFileError(`${what} ${file}: the token must be one line of printable ASCII characters without spaces`);
  return t;
}

/** Reads a token file (owner-only, see readSecretFile). */
export function readTokenFile(file: string, what: string): string {
  return parseToken(readSecretFile(file, what), file, what);
}

/** A new random token (32 bytes, base64url). */
export function newToken(): string {
  return `${randomBytes(32).toString('base64url')}\n`;
}
