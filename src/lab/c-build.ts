// Small C test tools (src/conformance/c/tcpkit.c, test/rigs/c/pktgen.c, test/rigs/c/seccomp-exec.c, bench's tools)
// compiled with gcc on first use.
// Layers: this file → src/conformance/kernel.ts, bench/lib/variants.ts, test/rigs/pktgen.ts, test/rigs/unit-sandbox.ts.
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { repoRoot } from './l4nat-process';

function compile(src: string, out: string, libs: readonly string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const tmp = `${out}.${process.pid}.tmp`;
    execFile('gcc', ['-O2', '-Wall', '-Wextra', '-Werror', '-o', tmp, src, ...libs.map((l) => `-l${l}`)], { timeout: 60_000 }, (err, _stdout, stderr) => {
      if (err) {
        reject(new Error(`gcc ${src} failed: ${stderr || err.message}`));
        return;
      }
      renameSync(tmp, out); // atomic: a concurrent run sees the old binary or the new one, never half of it
      resolve();
    });
  });
}

const built = new Map<string, Promise<string>>();

/**
 * Builds the C file at `relSrc` (from the repository root) once per content, cached as
 * $TMPDIR/l4nat-<tag>-<sha>/<name>, and resolves with the binary's path. A failed build is retried next time.
 * `libs` are linked in (-lNAME).
 */
export function cTool(relSrc: string, tag: string, name: string, libs: readonly string[] = []): Promise<string> {
  let p = built.get(relSrc);
  if (!p) {
    p = (async () => {
      const src = path.join(repoRoot(), relSrc);
      if (!existsSync(src)) throw new Error(`${src} is missing`);
      const sha = createHash('sha256').update(readFileSync(src)).digest('hex').slice(0, 16);
      const dir = path.join(tmpdir(), `l4nat-${tag}-${sha}`);
      const bin = path.join(dir, name);
      if (!existsSync(bin)) {
        mkdirSync(dir, { recursive: true });
        await compile(src, bin, libs);
      }
      return bin;
    })();
    built.set(relSrc, p);
    p.catch(() => built.delete(relSrc));
  }
  return p;
}
