// docker/: one container that runs the same lab code (`l4nat demo`, and on request the conformance suite), a
// compose file that Compose v1 (docker-compose 1.29, Debian 12's) and v2 both accept, the fallback for engines that
// refuse privileged containers, and every file they refer to exists.
// No Docker needed: the real-engine run is scripts/docker-lab-check.sh (minutes; docs/developer.md, "The lab in a container"). The
// compose files are read with the `yaml` package with merge keys on (both Compose versions read `<<:`), the
// Dockerfile line by line.
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { parse } from 'yaml';

const ROOT = path.resolve(__dirname, '..', '..');
const DOCKER = path.join(ROOT, 'docker');

type Map = { [k: string]: unknown };

function map(v: unknown, what: string): Map {
  assert.ok(v !== null && typeof v === 'object' && !Array.isArray(v), `${what} must be a map`);
  return v as Map;
}

function readCompose(file: string): Map {
  return map(parse(readFileSync(path.join(DOCKER, file), 'utf8'), { merge: true }), file);
}

const compose = readCompose('compose.yaml');
const services = map(compose.services, 'services');
const service = map(services.demo, 'services.demo');
const conformance = map(services.conformance, 'services.conformance');
const build = map(service.build, 'build');
const context = path.resolve(DOCKER, String(build.context));
const dockerfilePath = path.resolve(context, String(build.dockerfile));
const unprivileged = map(readCompose('compose.unprivileged.yaml').services, 'compose.unprivileged.yaml services');

/** The Dockerfile's instructions (continuations joined, comments dropped), split into the part before the first
 * FROM and one list per stage. */
function dockerfileStages(): { preamble: string[]; stages: string[][] } {
  const lines = readFileSync(dockerfilePath, 'utf8')
    .replace(/\\\n/g, ' ')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'));
  const first = lines.findIndex((l) => /^FROM\s/.test(l));
  assert.ok(first >= 0, 'FROM present');
  const stages: string[][] = [];
  for (const l of lines.slice(first)) {
    if (/^FROM\s/.test(l)) stages.push([]);
    stages[stages.length - 1]!.push(l);
  }
  return { preamble: lines.slice(0, first), stages };
}

function argNames(instructions: string[]): string[] {
  return instructions.filter((l) => /^ARG\s/.test(l)).map((l) => l.split(/\s+/)[1]!.split('=')[0]!);
}

/** dist/src/X.js (what a container runs) comes from src/X.ts (tsconfig: rootDir ".", outDir "dist"). */
function sourceOf(compiled: string): string {
  assert.match(compiled, /^dist\/src\/.+\.js$/, `${compiled} is a compiled file under dist/src`);
  return path.join(ROOT, compiled.replace(/^dist\//, '').replace(/\.js$/, '.ts'));
}

test('compose.yaml has only top-level keys Compose v1 accepts (no `name:`, which only v2 knows)', () => {
  // docker-compose 1.29's schema: these, plus extension fields `x-*` ("does not match any of the regexes: '^x-'").
  const v1TopLevel = ['version', 'services', 'networks', 'volumes', 'secrets', 'configs'];
  for (const key of Object.keys(compose)) {
    assert.ok(v1TopLevel.includes(key) || key.startsWith('x-'), `top-level key \`${key}\` is rejected by Compose v1`);
  }
});

test('compose.yaml: the demo, and the conformance suite on request; both privileged, no network and nothing from the host', () => {
  assert.deepEqual(Object.keys(services).sort(), ['conformance', 'demo']);
  for (const [name, s] of [['demo', service], ['conformance', conformance]] as const) {
    assert.equal(s.privileged, true, `${name} privileged`);
    assert.equal(s.network_mode, 'none', `${name}: the lab lives in the container and needs no network of the host's`);
    assert.equal(s.volumes, undefined, `${name}: no host paths mounted`);
    assert.equal(s.image, 'l4nat-demo:local', `${name}: one image`);
    assert.deepEqual(map(s.build, `${name}.build`), build, `${name}: built from the same context and Dockerfile`);
  }
  assert.equal(service.profiles, undefined, '`docker compose up` starts the demo');
  assert.deepEqual(conformance.profiles, ['conformance'], 'the suite runs only when asked for');
});

test('compose.unprivileged.yaml: every service unprivileged, with the capabilities, TUN and writable /proc/sys the lab needs', () => {
  assert.deepEqual(Object.keys(unprivileged).sort(), Object.keys(services).sort(), 'the same services as compose.yaml');
  for (const [name, raw] of Object.entries(unprivileged)) {
    const s = map(raw, name);
    assert.equal(s.privileged, false, `${name}: overrides privileged`);
    const caps = s.cap_add as string[];
    for (const cap of ['NET_ADMIN', 'SYS_ADMIN', 'SYS_NICE']) assert.ok(caps.includes(cap), `${name}: cap_add ${cap}`);
    assert.ok(!caps.includes('ALL'), `${name}: a named set, not ALL`);
    assert.deepEqual(s.devices, ['/dev/net/tun'], `${name}: the TUN device`);
    // systempaths=unconfined is a `docker run` option the engine rejects from Compose v1: the entrypoint remounts
    // /proc/sys writable instead, then runs compose.yaml's command ("$@"; `$$` is Compose's escape of `$`).
    const opts = (s.security_opt ?? []) as string[];
    assert.ok(!opts.some((o) => o.startsWith('systempaths')), `${name}: no systempaths= (Compose v1: "invalid --security-opt")`);
    assert.deepEqual(s.entrypoint, ['sh', '-c', 'mount -o remount,rw,bind /proc/sys && exec "$$@"', 'sh'], `${name}: writable /proc/sys`);
    for (const key of ['build', 'image', 'command', 'network_mode']) assert.equal(s[key], undefined, `${name}: ${key} comes from compose.yaml`);
  }
});

test('the build context, Dockerfile and .dockerignore exist; the ignore list sits where both builders read it', () => {
  assert.ok(statSync(context).isDirectory(), `context ${context}`);
  assert.equal(context, ROOT, 'the context is the repository, so the image builds this very checkout');
  assert.ok(statSync(dockerfilePath).isFile(), `dockerfile ${dockerfilePath}`);
  // The classic builder (Compose v1's) reads only the context's .dockerignore; BuildKit would prefer a
  // Dockerfile-specific one, so there must not be a second list beside the Dockerfile.
  assert.ok(!existsSync(`${dockerfilePath}.dockerignore`), 'no Dockerfile-specific ignore list');
  const ignored = readFileSync(path.join(context, '.dockerignore'), 'utf8').split('\n').map((l) => l.trim());
  for (const p of ['node_modules', 'dist', 'build']) assert.ok(ignored.includes(p), `${p} ignored`);
  for (const p of ['src', 'src/conformance', 'src/conformance/c', 'src/lab']) {
    assert.ok(!ignored.includes(p), `${p} is part of the image (the suite compiles src/conformance/c/tcpkit.c at run time)`);
  }
});

test('the base is a build argument (default node:20-bookworm) and every build argument compose passes is declared', () => {
  const { preamble, stages } = dockerfileStages();
  assert.ok(preamble.includes('ARG BASE=node:20-bookworm'), 'ARG BASE=node:20-bookworm before the first FROM');
  assert.match(stages[0]![0]!, /^FROM \$\{BASE\} AS system$/);
  const declared = new Set([...argNames(preamble), ...stages.flatMap(argNames)]);
  const args = map(build.args, 'build.args');
  for (const key of Object.keys(args)) assert.ok(declared.has(key), `build arg ${key} is an ARG of the Dockerfile`);
  assert.equal(args.BASE, '${L4NAT_BASE:-node:20-bookworm}', 'compose takes the base from L4NAT_BASE, default the same');
});

test("npm's settings reach only the stage that runs npm ci; the final image copies its node_modules", () => {
  const { stages } = dockerfileStages();
  const npmStages = stages.filter((s) => s.some((l) => /^RUN .*\bnpm ci\b/.test(l)));
  assert.equal(npmStages.length, 1, 'one stage downloads from npm');
  const npmStage = npmStages[0]!;
  const stageName = /^FROM \S+ AS (\S+)$/.exec(npmStage[0]!)?.[1];
  assert.ok(stageName, 'the npm stage is named');
  const npmArgs = argNames(npmStage);
  for (const a of ['NPM_REGISTRY', 'NPM_CAFILE', 'NPM_PROXY', 'NPM_HTTPS_PROXY', 'NPM_NOPROXY']) {
    assert.ok(npmArgs.includes(a), `${a} declared in the npm stage`);
  }
  const final = stages[stages.length - 1]!;
  assert.notEqual(final, npmStage);
  assert.deepEqual(argNames(final), [], 'the final stage declares no build argument (none lands in its history)');
  assert.ok(!final.some((l) => /^ENV .*NPM/i.test(l)), 'no npm setting in the image environment');
  assert.ok(final.includes(`COPY --from=${stageName} /opt/l4nat/node_modules node_modules`));
});

test('the containers run `l4nat demo` and the conformance runner, i.e. the same lab code, and those entries exist', () => {
  const command = service.command;
  assert.ok(Array.isArray(command), 'command is an exec-form sequence');
  assert.deepEqual(command, ['node', 'bin/l4nat.js', 'demo']);
  assert.ok(existsSync(path.join(context, command[1] as string)), `${String(command[1])} exists`);
  assert.ok(existsSync(path.join(ROOT, 'src', 'lab', 'demo.ts')), 'src/lab/demo.ts (runDemo) exists');
  assert.ok(existsSync(path.join(ROOT, 'src', 'lab', 'lab.ts')), 'src/lab/lab.ts exists');

  const run = conformance.command;
  assert.ok(Array.isArray(run), 'command is an exec-form sequence');
  assert.deepEqual(run, ['node', 'dist/src/conformance/run.js']);
  assert.ok(existsSync(sourceOf(run[1] as string)), `${sourceOf(run[1] as string)} exists`);
  // The runner builds its labs with src/lab (no copy of its own) and compiles its C helper from the checkout.
  const checks = readFileSync(path.join(ROOT, 'src', 'conformance', 'scenario.ts'), 'utf8');
  assert.match(checks, /from '\.\.\/lab\/lab'/);
  assert.ok(existsSync(path.join(ROOT, 'src', 'conformance', 'c', 'tcpkit.c')));
});

test('the Dockerfile copies files that exist, installs what the lab, node-gyp and the suite use, runs the demo', () => {
  const lines = dockerfileStages().stages.flat();
  const copies = lines.filter((l) => /^COPY\s/i.test(l) && !/--from=/.test(l));
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
  for (const pkg of ['iproute2', 'procps', 'haproxy', 'libpcap-dev', 'python3', 'make', 'g\\+\\+']) {
    assert.match(install, new RegExp(`(^|\\s)${pkg}(\\s|$)`), `${pkg} installed (a plain Debian base has none)`);
  }
  assert.ok(lines.some((l) => /npx tsc -p tsconfig\.json/.test(l)), 'the TypeScript (dist/src/...) is built in the image');
});

test("the docs' compose commands name files that exist and are the ones scripts/docker-lab-check.sh runs", () => {
  // The README and every page under docs/ (the container's page is docs/developer.md, "The lab in a container").
  const docs = ['README.md', ...readdirSync(path.join(ROOT, 'docs')).filter((f) => f.endsWith('.md')).map((f) => path.join('docs', f))];
  const text = docs.map((f) => readFileSync(path.join(ROOT, f), 'utf8')).join('\n');
  const commands = text
    .split('\n')
    .map((l) => l.replace(/\s+#.*$/, '').trim())
    .filter((l) => /^(L4NAT_BASE=\S+ )?(docker-compose|docker compose) /.test(l));
  const seen = new Set<string>();
  for (const c of commands) {
    const m = /^(?:L4NAT_BASE=\S+ )?(?:docker-compose|docker compose) -p l4nat((?: -f \S+)+) (up --build|run --rm conformance)$/.exec(c);
    assert.ok(m, `docs command in the expected form: ${c}`);
    const files = m[1]!.trim().split(/\s*-f\s+/).filter(Boolean);
    assert.equal(files[0], 'docker/compose.yaml', c);
    for (const f of files) assert.ok(existsSync(path.join(ROOT, f)), `${f} exists (${c})`);
    seen.add(`${files.join(' ')} ${m[2]!}`);
  }
  for (const expected of [
    'docker/compose.yaml up --build',
    'docker/compose.yaml run --rm conformance',
    'docker/compose.yaml docker/compose.unprivileged.yaml up --build',
  ]) {
    assert.ok(seen.has(expected), `the docs show ${expected}`);
  }
  for (const compose of ['docker-compose', 'docker compose']) {
    assert.ok(commands.some((c) => c.includes(`${compose} -p`)), `the docs show ${compose}`);
  }
  const script = readFileSync(path.join(ROOT, 'scripts', 'docker-lab-check.sh'), 'utf8');
  for (const piece of ['project=l4nat\n', 'files=(-f docker/compose.yaml)', 'files+=(-f docker/compose.unprivileged.yaml)', ' up --build', ' run --rm conformance', 'compose_v1=(docker-compose)', 'compose_v2=(docker compose)']) {
    assert.ok(script.includes(piece), `scripts/docker-lab-check.sh: ${piece.trim()}`);
  }
});

test('docker/ holds no second copy of the lab', () => {
  const files = readdirSync(DOCKER).sort();
  assert.deepEqual(files, ['Dockerfile', 'compose.unprivileged.yaml', 'compose.yaml']);
});
