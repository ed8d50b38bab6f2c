// The package entry: package.json "main" and "types" point at files the build makes, a program that requires the
// package gets the Dataplane, table, Maglev and config API (without loading the native addon), and TypeScript
// finds the declarations through "types". No root needed.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import ts from 'typescript';

const ROOT = join(__dirname, '..', '..');
const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { main: string; types: string };

test('"main" and "types" name files the build made', () => {
  assert.ok(existsSync(join(ROOT, pkg.main)), `main: ${pkg.main}`);
  assert.ok(existsSync(join(ROOT, pkg.types)), `types: ${pkg.types}`);
});

test('requiring the package gives the public API, and loads no native code until a Dataplane is opened', () => {
  const script = `
    const l4 = require(${JSON.stringify(ROOT)});
    const out = {};
    for (const k of ['Dataplane', 'buildTables', 'SlotAllocator', 'buildMaglev', 'slotCounts', 'maglevDisruption', 'parseConfig', 'loadConfigFile', 'ConfigError', 'checkServices', 'serviceId', 'backendId', 'affinityWarnings', 'ringIds']) out[k] = typeof l4[k];
    const key = Buffer.alloc(l4.MAGLEV_KEY_BYTES, 7);
    out.table = Array.from(l4.buildMaglev([{ id: 'a', weight: 1 }, { id: 'b', weight: 1 }], { size: 7, key }));
    const opts = l4.parseConfig('services:\\n  - {name: web, vips: [10.0.0.10], ports: [80], backends: [10.0.1.1]}\\n', 'x.yaml');
    out.services = opts.services.map((s) => l4.serviceId(s));
    const built = l4.buildTables(opts.services, new l4.SlotAllocator(4), new l4.SlotAllocator(4), { hashKey: key, maglevSize: 7, timeouts: l4.DEFAULT_TIMEOUTS, icmpEcho: true, icmpTranslate: true });
    out.ring = Array.from(built.input.rings);
    try { l4.parseConfig('services: 3\\n', 'bad.yaml'); } catch (e) { out.configError = e instanceof l4.ConfigError; }
    try { new l4.Dataplane({ ifname: 'way-too-long-ifname', queues: 1, flowCapacity: 1024, maxServices: 4, maxBackends: 4 }); } catch (e) { out.dpError = e.message; }
    out.nativeLoaded = Object.keys(require.cache).filter((k) => k.endsWith('.node'));
    console.log(JSON.stringify(out));
  `;
  const r = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', cwd: tmpdir() });
  assert.equal(r.status, 0, r.stderr);
  const o = JSON.parse(r.stdout) as Record<string, unknown>;
  for (const k of ['Dataplane', 'buildTables', 'SlotAllocator', 'buildMaglev', 'slotCounts', 'maglevDisruption', 'parseConfig', 'loadConfigFile', 'ConfigError', 'checkServices', 'serviceId', 'backendId', 'affinityWarnings', 'ringIds']) {
    assert.equal(o[k], 'function', k);
  }
  assert.equal((o.table as number[]).length, 7);
  assert.deepEqual(o.services, ['10.0.0.10:80/tcp']);
  assert.deepEqual(o.ring, Array(7).fill(0), 'one backend: every slot');
  assert.equal(o.configError, true);
  assert.match(o.dpError as string, /ifname must be 1-15 characters/);
  assert.deepEqual(o.nativeLoaded, []);
});

test('TypeScript resolves the package through "types": a correct program compiles, a wrong one is rejected', () => {
  const dir = mkdtempSync(join(tmpdir(), 'l4nat-types-'));
  try {
    const good = join(dir, 'good.ts');
    const bad = join(dir, 'bad.ts');
    const spec = JSON.stringify(ROOT);
    writeFileSync(good, `import { buildMaglev, Dataplane, parseConfig, type ServiceSpec, type DataplaneOptions } from ${spec};
const t: Int32Array = buildMaglev([{ id: 'a', weight: 1 }], { key: Buffer.alloc(16) });
const o: DataplaneOptions = { ifname: 'l4nat0', queues: 1, flowCapacity: 1024, maxServices: 4, maxBackends: 4 };
const s: ServiceSpec[] = parseConfig('', 'x.yaml').services;
export const used = [t, o, s, Dataplane];
`);
    writeFileSync(bad, `import { buildMaglev } from ${spec};\nexport const t: string = buildMaglev([{ id: 1, weight: 1 }], { key: Buffer.alloc(16) });\n`);
    const compile = (file: string): string[] => {
      const program = ts.createProgram([file], { strict: true, noEmit: true, module: ts.ModuleKind.CommonJS, moduleResolution: ts.ModuleResolutionKind.Node10, target: ts.ScriptTarget.ES2022, types: ['node'], typeRoots: [join(ROOT, 'node_modules', '@types')], skipLibCheck: true });
      return ts.getPreEmitDiagnostics(program).map((d) => ts.flattenDiagnosticMessageText(d.messageText, '\n'));
    };
    assert.deepEqual(compile(good), []);
    const errors = compile(bad);
    assert.ok(errors.some((e) => /Type 'number' is not assignable to type 'string'/.test(e)), errors.join('\n'));
    assert.ok(errors.some((e) => /Int32Array.* is not assignable to type 'string'/.test(e)), errors.join('\n'));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
