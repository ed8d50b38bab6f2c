// The documentation holds together: every relative link in README.md, docs/*.md and bench/README.md names a file
// that exists, and every #anchor a heading of the page it points into (GitHub's heading ids); the README stays a
// front door (at most 200 lines, the set-up commands at the very top, one of them the line .ci/run runs, a link to
// every docs page); and both conformance tables list exactly the suite's checks. No root needed: files only.
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { CHECKS } from '../src/conformance/checks';

const ROOT = path.resolve(__dirname, '..', '..'); // dist/test -> repository root
const DOCS = path.join(ROOT, 'docs');
const PAGES = ['design', 'operating', 'scale-out', 'dataplane', 'conformance', 'reliability', 'speed', 'developer'];
const README_MAX_LINES = 200;

/** The lines of a Markdown text outside fenced code blocks, with inline code spans blanked (links in code are text). */
function proseLines(text: string): Array<{ line: number; text: string }> {
  const out: Array<{ line: number; text: string }> = [];
  let fenced = false;
  text.split('\n').forEach((l, i) => {
    if (/^\s*(```|~~~)/.test(l)) {
      fenced = !fenced;
      return;
    }
    if (!fenced) out.push({ line: i + 1, text: l.replace(/`[^`]*`/g, (m) => ' '.repeat(m.length)) });
  });
  return out;
}

/** GitHub's id for a heading: markup dropped, lower case, punctuation removed, spaces to hyphens, repeats numbered. */
export function headingIds(text: string): Set<string> {
  const ids = new Set<string>();
  const seen = new Map<string, number>();
  let fenced = false;
  for (const l of text.split('\n')) {
    if (/^\s*(```|~~~)/.test(l)) fenced = !fenced;
    const m = fenced ? null : /^#{1,6}\s+(.*?)\s*#*\s*$/.exec(l);
    if (!m) continue;
    const plain = m[1]!
      .replace(/\[([^\]]*)\]\([^)]*\)/g, '$1')
      .replace(/[`*]/g, '')
      .toLowerCase()
      .replace(/[^\p{L}\p{M}\p{N}\p{Pc} -]/gu, '')
      .replace(/ /g, '-');
    const n = seen.get(plain) ?? 0;
    seen.set(plain, n + 1);
    ids.add(n === 0 ? plain : `${plain}-${n}`);
  }
  return ids;
}

/** Every relative link of a Markdown file that does not resolve: the file it names is missing, or its #anchor. */
export function brokenLinks(file: string, text: string, read: (f: string) => string | null): string[] {
  const broken: string[] = [];
  for (const { line, text: l } of proseLines(text)) {
    for (const m of l.matchAll(/\]\(([^)\s]+)\)/g)) {
      const target = m[1]!;
      if (/^[a-z][a-z0-9+.-]*:/i.test(target)) continue; // https:, mailto:
      const [rel, anchor] = target.split('#', 2) as [string, string | undefined];
      const dest = rel === '' ? file : path.resolve(path.dirname(file), decodeURIComponent(rel));
      const where = `${path.relative(ROOT, file)}:${line}: ${target}`;
      const destText = read(dest);
      if (destText === null && !(rel !== '' && existsSync(dest) && statSync(dest).isDirectory())) {
        broken.push(`${where}: ${path.relative(ROOT, dest)} does not exist`);
        continue;
      }
      if (anchor === undefined) continue;
      if (destText === null || !dest.endsWith('.md')) broken.push(`${where}: an anchor into something that is not a Markdown page`);
      else if (!headingIds(destText).has(anchor)) broken.push(`${where}: ${path.relative(ROOT, dest)} has no heading #${anchor}`);
    }
  }
  return broken;
}

function readIfFile(f: string): string | null {
  return existsSync(f) && statSync(f).isFile() ? readFileSync(f, 'utf8') : null;
}

/** The rows of the first Markdown table after the line that starts with `header`: [first cell, second cell]. */
function tableRows(text: string, header: string): Array<[string, string]> {
  const lines = text.split('\n');
  const start = lines.findIndex((l) => l.startsWith(header));
  assert.ok(start >= 0, `a table headed "${header}"`);
  const rows: Array<[string, string]> = [];
  for (const l of lines.slice(start + 2)) {
    if (!l.startsWith('|')) break;
    const cells = l.split(/(?<!\\)\|/).slice(1, -1).map((c) => c.trim());
    rows.push([cells[0]!, cells[1]!]);
  }
  return rows;
}

const readme = readFileSync(path.join(ROOT, 'README.md'), 'utf8');
const docFiles = readdirSync(DOCS).filter((f) => f.endsWith('.md')).map((f) => path.join(DOCS, f));

test('the link checker finds a missing file, a missing anchor and an anchor on the same page, and skips code', () => {
  const file = path.join(DOCS, 'x.md');
  const pages: Record<string, string> = {
    [path.join(DOCS, 'y.md')]: "# Y\n\n## Path MTU when the LB host's own hop is the narrow one\n## Maglev (src/dataplane/maglev.ts)\n## A\n## A\n",
  };
  const read = (f: string): string | null => pages[f] ?? null;
  const text = [
    '# X',
    '## Running it: `l4nat up`',
    "[ok](y.md#path-mtu-when-the-lb-hosts-own-hop-is-the-narrow-one) [ok](y.md#maglev-srcdataplanemaglevts) [ok](y.md#a-1)",
    '[ok](#running-it-l4nat-up) [ok](https://example.com/x#y) `[code](missing.md)`',
    '[bad](z.md) [bad](y.md#nope) [bad](#nope)',
    '```',
    '[code](missing.md)',
    '```',
  ].join('\n');
  const broken = brokenLinks(file, text, (f) => (f === file ? text : read(f)));
  assert.deepEqual(broken.map((b) => b.replace(/^.*?: /, '').split(':')[0]), ['z.md', 'y.md#nope', '#nope']);
});

test('every relative link and #anchor in README.md, docs/*.md and bench/README.md resolves', () => {
  const broken = [path.join(ROOT, 'README.md'), path.join(ROOT, 'bench', 'README.md'), ...docFiles].flatMap((f) => brokenLinks(f, readFileSync(f, 'utf8'), readIfFile));
  assert.deepEqual(broken, []);
});

test(`the README is a front door: at most ${README_MAX_LINES} lines, the set-up commands first, a link to every docs page`, () => {
  const lines = readme.split('\n');
  assert.ok(lines.length <= README_MAX_LINES, `README.md has ${lines.length} lines; details belong in docs/`);
  const beforeFirstSection = lines.slice(0, lines.findIndex((l) => l.startsWith('## ')));
  for (const cmd of ['bash scripts/install-deps.sh && npm install && npm run demo', 'bash scripts/install-deps.sh && npm install && npm test']) {
    assert.ok(beforeFirstSection.includes(cmd), `the README starts with \`${cmd}\` on a line of its own`);
  }
  const ci = readFileSync(path.join(ROOT, '.ci', 'run'), 'utf8').split('\n').filter((l) => l.trim() !== '' && !l.startsWith('#'));
  assert.ok(beforeFirstSection.includes(ci[ci.length - 1]!), `.ci/run runs the README's test command: ${ci[ci.length - 1]}`);
  for (const page of PAGES) {
    assert.ok(existsSync(path.join(DOCS, `${page}.md`)), `docs/${page}.md exists`);
    assert.ok(readme.includes(`](docs/${page}.md`), `the README links docs/${page}.md`);
  }
});

test("the conformance tables list the suite's checks: the README's short one (ids, ¹ marks), docs/conformance.md's in full (ids, titles)", () => {
  const short = tableRows(readme, '| # | check | l4nat | HAProxy |');
  assert.deepEqual(short.map(([id]) => id), CHECKS.map((c) => c.id), 'README rows = CHECKS');
  assert.deepEqual(short.map(([, t]) => t.endsWith('¹')), CHECKS.map((c) => c.proxyMustFail), 'README ¹ marks = proxyMustFail');
  const full = tableRows(readFileSync(path.join(DOCS, 'conformance.md'), 'utf8'), '| # | check | l4nat | haproxy |');
  assert.deepEqual(
    full.map(([id, t]) => `${id} ${t}`),
    CHECKS.map((c) => `${c.id} ${c.title.replace(/\|/g, '\\|')}${c.proxyMustFail ? ' ¹' : ''}`),
    'docs/conformance.md rows = CHECKS',
  );
});
