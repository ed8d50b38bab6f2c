// docker/: one privileged container that runs the same lab code (`l4nat demo`, and on request the conformance suite),
// and every file it refers to exists.
// No Docker needed: compose.yaml is read with a tiny parser for the YAML subset it uses (block maps, scalars,
// flow sequences), the Dockerfile line by line.
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';

const ROOT = path.resolve(__dirname, '..', '..');
const DOCKER = path.join(ROOT, 'docker');

type Yaml = string | string[] | { [k: string]: Yaml };

/** Block maps by indentation, `key: scalar`, `key: [flow, sequence]`, comments. Enough for compose.yaml. */
function parseYamlSubset(text: string): { [k: string]: Yaml } {
  const root: { [k: string]: Yaml } = {};
  const stack: Array<{ indent: number; map: { [k: string]: Yaml } }> = [{ indent: -1, map: root }];
  for (const [n, raw] of text.split('\n').entries()) {
    const line = raw.replace(/\s+#.*$/, '').replace(/^\s*#.*$/, '');
    if (line.trim() === '') continue;
    assert.doesNotMatch(line, /\t/, `compose.yaml:${n + 1}: tab`);
    const m = /^( *)([A-Za-z0-9_.-]+):(?: (.*))?$/.exec(line);
    assert.ok(m, `compose.yaml:${n + 1}: not in the supported subset: ${raw}`);
    const indent = m[1]!.length;
    while (stack[stack.length - 1]!.indent >= indent) stack.pop();
    const parent = stack[stack.length - 1]!.map;
    const key = m[2]!;
    assert.ok(!(key in parent), `compose.yaml:${n + 1}: duplicate key ${key}`);
    const value = m[3]?.trim();
    if (value === undefined || value === '') {
      const child: { [k: string]: Yaml } = {};
      parent[key] = child;
      stack.push({ indent, map: child });
    } else if (value.startsWith('[')) {
      const seq = JSON.parse(value) as unknown;
      assert.ok(Array.isArray(seq) && seq.every((x) => typeof x === 'string'), `compose.yaml:${n + 1}: sequence of strings`);
      parent[key] = seq as string[];
    } else {
      parent[key] = value.replace(/^"(.*)"$/, '$1').replace(/^'(.*)'$/, '$1');
    }
  }
  return root;
}

function map(v: Yaml | undefined, what: string): { [k: string]: Yaml } {
  assert.ok(v !== undefined && typeof v === 'object' && !Array.isArray(v), `${what} must be a map`);
  return v;
}

const compose = parseYamlSubset(readFileSync(path.join(DOCKER, 'compose.yaml'), 'utf8'));
const services = map(compose.services, 'services');
const service = map(services.demo, 'services.demo');
const conformance = map(services.conformance, 'services.conformance');
const build = map(service.build, 'build');
const context = path.resolve(DOCKER, String(build.context));
const dockerfilePath = path.resolve(context, String(build.dockerfile));

/** dist/src/X.js (what a container runs) comes from src/X.ts (tsconfig: rootDir ".", outDir "dist"). */
function sourceOf(compiled: string): string {
  assert.match(compiled, /^dist\/src\/.+\.js$/, `${compiled} is a compiled file under dist/src`);
  return path.join(ROOT, compiled.replace(/^dist\//, '').replace(/\.js$/, '.ts'));
}

test('compose.yaml: the demo, and the conformance suite on request; both privileged, nothing from the host', () => {
  assert.deepEqual(Object.keys(services).sort(), ['conformance', 'demo']);
  for (const [name, s] of [['demo', service], ['conformance', conformance]] as const) {
    assert.equal(s.privileged, 'true', `${name} privileged`);
    assert.equal(s.network_mode, undefined, `${name}: the lab lives in the container, not on the host network`);
    assert.equal(s.volumes, undefined, `${name}: no host paths mounted`);
    assert.equal(s.image, 'l4nat-demo:local', `${name}: one image`);
    assert.deepEqual(map(s.build, `${name}.build`), build, `${name}: built from the same context and Dockerfile`);
  }
  assert.equal(service.profiles, undefined, '`docker compose up` starts the demo');
  assert.deepEqual(conformance.profiles, ['conformance'], 'the suite runs only when asked for');
});

test('the build context and Dockerfile it references exist', () => {
  assert.ok(statSync(context).isDirectory(), `context ${context}`);
  assert.equal(context, ROOT, 'the context is the repository, so the image builds this very checkout');
  assert.ok(statSync(dockerfilePath).isFile(), `dockerfile ${dockerfilePath}`);
  const ignore = `${dockerfilePath}.dockerignore`;
  assert.ok(existsSync(ignore), `${ignore} keeps node_modules/dist out of the context`);
  const ignored = readFileSync(ignore, 'utf8').split('\n').map((l) => l.trim());
  for (const p of ['node_modules', 'dist', 'build']) assert.ok(ignored.includes(p), `${p} ignored`);
  for (const p of ['src', 'src/conformance', 'src/conformance/c', 'src/lab']) {
    assert.ok(!ignored.includes(p), `${p} is part of the image (the suite compiles src/conformance/c/tcpkit.c at run time)`);
  }
});

test('the containers run `l4nat demo` and the conformance runner, i.e. the same lab code, and those entries exist', () => {
  const command = service.command;
  assert.ok(Array.isArray(command), 'command is an exec-form sequence');
  assert.deepEqual(command, ['node', 'bin/l4nat.js', 'demo']);
  assert.ok(existsSync(path.join(context, command[1]!)), `${command[1]} exists`);
  assert.ok(existsSync(path.join(ROOT, 'src', 'demo.ts')), 'src/demo.ts (runDemo) exists');
  assert.ok(existsSync(path.join(ROOT, 'src', 'lab', 'lab.ts')), 'src/lab/lab.ts exists');

  const run = conformance.command;
  assert.ok(Array.isArray(run), 'command is an exec-form sequence');
  assert.deepEqual(run, ['node', 'dist/src/conformance/run.js']);
  assert.ok(existsSync(sourceOf(run[1]!)), `${sourceOf(run[1]!)} exists`);
  // The runner builds its labs with src/lab (no copy of its own) and compiles its C helper from the checkout.
  const checks = readFileSync(path.join(ROOT, 'src', 'conformance', 'checks.ts'), 'utf8');
  assert.match(checks, /from '\.\.\/lab\/lab'/);
  assert.ok(existsSync(path.join(ROOT, 'src', 'conformance', 'c', 'tcpkit.c')));
});

test('the Dockerfile is node:20-bookworm, copies files that exist, installs what the lab and the suite use, runs the demo', () => {
  const lines = readFileSync(dockerfilePath, 'utf8')
    .replace(/\\\n/g, ' ')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'));
  assert.match(lines[0]!, /^FROM node:20-bookworm$/);
  const copies = lines.filter((l) => /^COPY\s/i.test(l));
  assert.ok(copies.length > 0);
  for (const c of copies) {
    const parts = c.split(/\s+/).slice(1).filter((p) => !p.startsWith('--'));
    for (const src of parts.slice(0, -1)) {
      if (src === '.') continue;
      assert.ok(existsSync(path.join(context, src)), `COPY source ${src} exists in the context`);
    }
  }
  const cmd = lines.find((l) => l.startsWith('CMD'));
  assert.ok(cmd, 'CMD present');
  assert.deepEqual(JSON.parse(cmd.slice(3).trim()), ['node', 'bin/l4nat.js', 'demo']);
  const install = lines.find((l) => /apt-get install/.test(l)) ?? '';
  for (const pkg of ['iproute2', 'procps', 'haproxy', 'libpcap-dev']) assert.match(install, new RegExp(`\\b${pkg}\\b`), `${pkg} installed`);
  assert.ok(lines.some((l) => /npx tsc -p tsconfig\.json/.test(l)), 'the TypeScript (dist/src/...) is built in the image');
});

test('docker/ holds no second copy of the lab', () => {
  const files = readdirSync(DOCKER).sort();
  assert.deepEqual(files, ['Dockerfile', 'Dockerfile.dockerignore', 'compose.yaml']);
});
