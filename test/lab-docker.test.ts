// docker/: one privileged container that runs the same lab code (`l4nat demo`), and every file it refers to exists.
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
const [serviceName, serviceValue] = Object.entries(services)[0] ?? [];
const service = map(serviceValue, `services.${serviceName}`);
const build = map(service.build, 'build');
const context = path.resolve(DOCKER, String(build.context));
const dockerfilePath = path.resolve(context, String(build.dockerfile));

test('compose.yaml defines exactly one privileged service', () => {
  assert.equal(Object.keys(services).length, 1, `services: ${Object.keys(services).join(', ')}`);
  assert.equal(service.privileged, 'true');
  assert.equal(service.network_mode, undefined, 'the lab lives in the container, not on the host network');
  assert.equal(service.volumes, undefined, 'no host paths mounted');
});

test('the build context and Dockerfile it references exist', () => {
  assert.ok(statSync(context).isDirectory(), `context ${context}`);
  assert.equal(context, ROOT, 'the context is the repository, so the image builds this very checkout');
  assert.ok(statSync(dockerfilePath).isFile(), `dockerfile ${dockerfilePath}`);
  const ignore = `${dockerfilePath}.dockerignore`;
  assert.ok(existsSync(ignore), `${ignore} keeps node_modules/dist out of the context`);
  const ignored = readFileSync(ignore, 'utf8').split('\n').map((l) => l.trim());
  for (const p of ['node_modules', 'dist', 'build']) assert.ok(ignored.includes(p), `${p} ignored`);
});

test('the container runs `l4nat demo`, i.e. the same lab code, and that entry exists', () => {
  const command = service.command;
  assert.ok(Array.isArray(command), 'command is an exec-form sequence');
  assert.deepEqual(command, ['node', 'bin/l4nat.js', 'demo']);
  assert.ok(existsSync(path.join(context, command[1]!)), `${command[1]} exists`);
  assert.ok(existsSync(path.join(ROOT, 'src', 'demo.ts')), 'src/demo.ts (runDemo) exists');
  assert.ok(existsSync(path.join(ROOT, 'src', 'lab', 'lab.ts')), 'src/lab/lab.ts exists');
});

test('the Dockerfile is node:20-bookworm, copies files that exist, and runs the demo', () => {
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
  assert.ok(lines.some((l) => /apt-get install .*iproute2/.test(l)), 'iproute2 installed (ip netns)');
});

test('docker/ holds no second copy of the lab', () => {
  const files = readdirSync(DOCKER).sort();
  assert.deepEqual(files, ['Dockerfile', 'Dockerfile.dockerignore', 'compose.yaml']);
});
