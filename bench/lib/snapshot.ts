// A private copy of the l4nat build (bin/, dist/src/, the addon, the dashboard's files) for the whole run, so that every round
// measures the same data plane even when someone rebuilds the addon or the TypeScript meanwhile (a rebuild
// removes build/Release/l4nat.node for a moment: an l4nat started then would not even start).
// node_modules is linked, not copied. Layers: this file → run.ts, which hands the copy's root to startL4nat.
import { createHash } from 'node:crypto';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { registerCleanup } from '../../src/lab/cleanup';

/**
 * A temporary directory removed when the process ends, also on SIGINT/SIGTERM (through the lab's cleanup
 * registry, which runs before the signal ends the process).
 */
export function benchTempDir(prefix: string): string {
  const dir = mkdtempSync(path.join(tmpdir(), prefix));
  const remove = (): void => rmSync(dir, { recursive: true, force: true });
  registerCleanup({ name: `temporary directory ${dir}`, run: async () => remove(), sync: remove });
  return dir;
}

export interface L4natSnapshot {
  root: string;
  /** First 12 hex digits of the addon's SHA-256, and when it was built. */
  addonSha256: string;
  addonBuilt: string;
}

export function snapshotL4nat(root: string): L4natSnapshot {
  const dir = benchTempDir('l4nat-bench-build-');
  const addon = path.join(root, 'build', 'Release', 'l4nat.node');
  for (const f of [addon, path.join(root, 'dist', 'src'), path.join(root, 'bin', 'l4nat.js')]) {
    if (!existsSync(f)) throw new Error(`${root} is not a built l4nat checkout: ${f} is missing (run npm install there)`);
  }
  const bytes = readFileSync(addon);
  mkdirSync(path.join(dir, 'build', 'Release'), { recursive: true });
  cpSync(addon, path.join(dir, 'build', 'Release', 'l4nat.node'));
  cpSync(path.join(root, 'bin'), path.join(dir, 'bin'), { recursive: true });
  cpSync(path.join(root, 'dist', 'src'), path.join(dir, 'dist', 'src'), { recursive: true });
  cpSync(path.join(root, 'package.json'), path.join(dir, 'package.json'));
  // The dashboard's browser files are served from the source tree (src/admin/dashboard.ts finds them there): an
  // l4nat without them refuses to start. A baseline older than the dashboard has none.
  const dashboard = path.join(root, 'src', 'admin', 'dashboard');
  if (existsSync(dashboard)) cpSync(dashboard, path.join(dir, 'src', 'admin', 'dashboard'), { recursive: true });
  symlinkSync(path.join(root, 'node_modules'), path.join(dir, 'node_modules'), 'dir');
  return {
    root: dir,
    addonSha256: createHash('sha256').update(bytes).digest('hex').slice(0, 12),
    addonBuilt: statSync(addon).mtime.toISOString().replace(/\.\d+Z$/, 'Z'),
  };
}
