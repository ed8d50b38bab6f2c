// No import cycles in src/ (the house rule). Two walks, because each misses what the other sees:
// - the compiled modules (dist/src/**/*.js, their require() calls with relative paths): what Node really loads, where a
//   cycle hands a module a half-initialised export;
// - the TypeScript sources (src/**/*.ts, every import: `import type`, `export ... from`, import() included): type-only
//   imports vanish from the compiled JS, yet they tie two modules together just the same.
// Imports are read with TypeScript's own scanner (ts.preProcessFile), so commented-out imports do not count.
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { test } from 'node:test';
import ts from 'typescript';

type Graph = Map<string, string[]>;

function filesUnder(dir: string, ext: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = join(dir, e.name);
    if (e.isDirectory()) return filesUnder(p, ext);
    return e.name.endsWith(ext) && !e.name.endsWith('.d.ts') ? [p] : [];
  });
}

/** The file a relative specifier names, as the module resolution of tsconfig.json (node) finds it, or undefined. */
function resolveRelative(from: string, spec: string, ext: string): string | undefined {
  const base = resolve(dirname(from), spec);
  for (const c of [base, `${base}${ext}`, join(base, `index${ext}`)]) {
    if (c.endsWith(ext) && existsSync(c) && statSync(c).isFile()) return c;
  }
  return undefined;
}

/**
 * Each file under `root` ending in `ext` (and passing `keep`) with the files under `root` it imports (relative
 * specifiers only: packages cannot import us back).
 */
function importGraph(root: string, ext: '.js' | '.ts', keep: (file: string) => boolean = () => true): Graph {
  const g: Graph = new Map();
  for (const f of filesUnder(root, ext).filter(keep)) {
    const refs = ts.preProcessFile(readFileSync(f, 'utf8'), true, true).importedFiles.map((r) => r.fileName);
    g.set(f, [...new Set(refs.filter((s) => s.startsWith('.')).map((s) => resolveRelative(f, s, ext)).filter((x): x is string => x !== undefined))]);
  }
  return g;
}

/** One import cycle of the graph (first file repeated at the end), or undefined. Depth-first, three colours. */
function findCycle(g: Graph): string[] | undefined {
  const state = new Map<string, 'open' | 'done'>();
  const stack: string[] = [];
  const visit = (f: string): string[] | undefined => {
    state.set(f, 'open');
    stack.push(f);
    for (const next of g.get(f) ?? []) {
      if (state.get(next) === 'open') return [...stack.slice(stack.indexOf(next)), next];
      if (state.get(next) === undefined) {
        const c = visit(next);
        if (c) return c;
      }
    }
    stack.pop();
    state.set(f, 'done');
    return undefined;
  };
  for (const f of [...g.keys()].sort()) {
    if (state.get(f) === undefined) {
      const c = visit(f);
      if (c) return c;
    }
  }
  return undefined;
}

function cycleMessage(root: string, g: Graph): string | undefined {
  const c = findCycle(g);
  return c && `import cycle: ${c.map((f) => relative(root, f)).join(' → ')}`;
}

const repo = join(__dirname, '..', '..');

test('the compiled modules (dist/src) import each other without a cycle', () => {
  const root = join(repo, 'dist');
  // Only modules whose source still exists: tsc leaves the output of a deleted source behind.
  const g = importGraph(join(root, 'src'), '.js', (f) => existsSync(join(repo, relative(root, f)).replace(/\.js$/, '.ts')));
  assert.ok(g.size > 50, `only ${g.size} compiled modules under ${root}/src: is it built?`);
  assert.equal(cycleMessage(root, g), undefined);
});

test('the TypeScript sources (src), type-only imports included, import each other without a cycle', () => {
  const g = importGraph(join(repo, 'src'), '.ts');
  assert.ok(g.size > 50, `only ${g.size} sources under ${repo}/src`);
  assert.equal(cycleMessage(repo, g), undefined);
});

test('the check finds and names a cycle: require() in JS, `import type` in TypeScript, through an index file', () => {
  const dir = mkdtempSync(join(tmpdir(), 'l4nat-cycles-'));
  try {
    const write = (name: string, text: string): void => writeFileSync(join(dir, name), text);
    write('a.js', '"use strict";\nconst b = require("./b");\n');
    write('b.js', '"use strict";\n// require("./c") in a comment is no import\nconst a = require("./a.js");\n');
    write('c.js', '"use strict";\nconst a = require("./a");\n');
    assert.equal(cycleMessage(dir, importGraph(dir, '.js')), 'import cycle: a.js → b.js → a.js');
    write('b.js', '"use strict";\nrequire("fs");\n');
    assert.equal(cycleMessage(dir, importGraph(dir, '.js')), undefined, 'a → b and c → a make no cycle');

    write('x.ts', "import type { Y } from './y';\nexport interface X { y: Y }\n");
    write('y.ts', "export { z } from './z';\nexport interface Y { n: number }\n");
    rmSync(join(dir, 'a.js'));
    mkdirSync(join(dir, 'z'));
    write(join('z', 'index.ts'), "export const z = async () => (await import('../x')) && 1;\n");
    assert.equal(cycleMessage(dir, importGraph(dir, '.ts')), `import cycle: x.ts → y.ts → ${join('z', 'index.ts')} → x.ts`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
