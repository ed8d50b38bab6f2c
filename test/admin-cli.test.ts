// `l4nat status | backend ... | reload` against a real admin API on 127.0.0.1 (a fake data plane behind it):
// argument forms, the ipvsadm-like table, exit codes, and the 401 message with a token. No root needed.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import pino from 'pino';
import { createAdminServer, listenAdmin } from '../src/admin/server';
import { clientOptions } from '../src/cli/client';
import { backendIdArg, serviceIdArg } from '../src/cli/commands';
import { parseConfig } from '../src/config/load';
import { Controller, type BalancerLike } from '../src/control/controller';
import { DEFAULT_TIMEOUTS, type ServiceSpec } from '../src/config/model';
import type { CounterSnapshot } from '../src/dataplane/native';
import type { TableOptions } from '../src/dataplane/tables';

const bin = join(__dirname, '..', '..', 'bin', 'l4nat.js');
const dir = mkdtempSync(join(tmpdir(), 'l4nat-cli-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function fake(): BalancerLike & { last: ServiceSpec[] } {
  const slots = new Map<string, number>();
  const b = {
    last: [] as ServiceSpec[],
    tableOptions: { hashKey: Buffer.alloc(16), maglevSize: 7, timeouts: { ...DEFAULT_TIMEOUTS }, icmpEcho: true, icmpTranslate: true } as TableOptions,
    dp: {
      counters: (): CounterSnapshot => ({ total: {}, drops: {}, perQueue: [{}], heartbeatsMs: [Number(process.hrtime.bigint() / 1_000_000n)], services: new Map(), backends: new Map([[0, { packets_in: 123456, bytes_in: 9e9, packets_out: 5, bytes_out: 6, new_flows: 42 }]]) }),
      flowCount: (): number => 7,
    },
    async setServices(s: ServiceSpec[]) {
      b.last = s;
      for (const x of s) for (const y of x.backends) if (!slots.has(`${x.vip}|${y.addr}`)) slots.set(`${x.vip}|${y.addr}`, slots.size);
      return { changedSlots: {} };
    },
    backendSlot: (k: string): number | undefined => slots.get(`${k.split(':')[0]}|${k.split('|')[1].split(':')[0]}`),
    serviceSlot: (): number | undefined => undefined,
  };
  return b;
}

function run(args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [bin, ...args], { env: { ...process.env, ...env } });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (c) => (stdout += c));
    p.stderr.on('data', (c) => (stderr += c));
    p.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
  });
}

test('argument forms: SERVICE as VIP:PORT[/proto], BACKEND as ADDR:PORT', () => {
  assert.equal(serviceIdArg('10.0.0.10:80'), '10.0.0.10:80/tcp');
  assert.equal(serviceIdArg('[FD00::10]:53/udp'), '[fd00::10]:53/udp');
  assert.throws(() => serviceIdArg('10.0.0.10'), /SERVICE expects VIP:PORT/);
  assert.equal(backendIdArg('10.0.1.1:8080', '10.0.0.10:80/tcp'), '10.0.1.1:8080/tcp');
  assert.equal(backendIdArg('[fd00::1]:53', '[fd00::10]:53/udp'), '[fd00::1]:53/udp');
  assert.throws(() => backendIdArg('10.0.1.1', '10.0.0.10:80/tcp'), /BACKEND expects ADDR:PORT/);
});

describe('CLI against a running admin API', () => {
  let url = '';
  let url2 = '';
  let ctrl: Controller;
  let ctrl2: Controller;
  const apps: Array<{ close(): Promise<unknown> }> = [];
  const tokenFile = join(dir, 'token');
  const tokenFile1 = join(dir, 'token1');
  const api = (): string[] => ['--admin', url, '--token-file', tokenFile1];

  before(async () => {
    const text = `services:\n  - name: web\n    vips: [10.0.0.10]\n    ports: [80]\n    health_check: {type: tcp, interval: 60, timeout: 1}\n    backends: [{address: 10.0.1.11, port: 8080, name: web1}, "10.0.1.12:8080"]\n`;
    const log = pino({ level: 'silent' });
    writeFileSync(tokenFile1, 'first-servers-token-0123456789\n', { mode: 0o600 });
    const opts = parseConfig(`admin: {port: 0, token_file: ${tokenFile1}}\n${text}`, 'x.yaml');
    ctrl = new Controller(fake(), opts, log, async () => ({ ok: true, ms: 0.4, detail: '' }));
    await ctrl.start();
    const app = await createAdminServer({ ctrl, admin: opts.admin, log });
    url = `http://127.0.0.1:${(await listenAdmin(app, opts.admin)).port}`;
    apps.push(app);
    writeFileSync(tokenFile, 'sixteen-chars-or-more-token\n', { mode: 0o600 });
    const opts2 = parseConfig(`admin: {port: 0, token_file: ${tokenFile}}\n${text}`, 'y.yaml');
    ctrl2 = new Controller(fake(), opts2, log);
    await ctrl2.start();
    const app2 = await createAdminServer({ ctrl: ctrl2, admin: opts2.admin, log });
    url2 = `http://127.0.0.1:${(await listenAdmin(app2, opts2.admin)).port}`;
    apps.push(app2);
  });
  after(async () => {
    ctrl.stop();
    ctrl2.stop();
    for (const a of apps) await a.close();
  });

  test('status prints one line per service and per backend, like ipvsadm -Ln --stats', async () => {
    await new Promise((r) => setTimeout(r, 1200)); // first checks (spread over up to 1 s)
    const r = await run(['status', ...api()]);
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout.split('\n');
    assert.match(lines[0], /^l4nat: 1 services; backends 2 up, 0 down, 0 draining\/drained; 7 flows; workers 1\/1 alive/);
    assert.ok(lines.some((l) => /^Prot LocalAddress:Port\s+Name\s+State\s+Weight\s+ActConn\s+Conns\s+InPkts/.test(l)), r.stdout);
    assert.ok(lines.some((l) => /^TCP  10\.0\.0\.10:80 5tuple\s+web\s+.*tcp every 60s rise 2 fall 3/.test(l)), r.stdout);
    // ActConn "-": this fake data plane cannot count live entries
    assert.ok(lines.some((l) => /^  -> 10\.0\.1\.11:8080\s+web1\s+up\s+1\/1\s+-\s+42\s+123K\s+5\s+9000M\s+6\s+ok 0\.4 ms$/.test(l)), r.stdout);
    const j = await run(['status', ...api(), '--json']);
    assert.equal(JSON.parse(j.stdout).services[0].backends.length, 2);
  });

  test('backend add / weight / drain / undrain / remove', async () => {
    let r = await run(['backend', 'add', '10.0.0.10:80', '10.0.1.13:8080', '--weight', '3', '--name', 'web3', ...api()]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(ctrl.current[0].backends.length, 3);
    r = await run(['backend', 'add', '10.0.0.10:80', '10.0.1.13:8080', ...api()]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /already serves/);
    r = await run(['backend', 'weight', '10.0.0.10:80', '10.0.1.13:8080', '5', ...api()]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(ctrl.current[0].backends[2].weight, 5);
    r = await run(['backend', 'drain', '10.0.0.10:80', '10.0.1.13:8080', '--deadline', '0', ...api()]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /--deadline expects whole seconds \(1 or more\), got "0"/);
    assert.equal(ctrl.view().services[0].backends[2].state, 'up', 'a refused drain changed nothing');
    r = await run(['backend', 'drain', '10.0.0.10:80', '10.0.1.13:8080', '--deadline', '120', ...api()]);
    assert.match(r.stdout, /draining \(out of the ring, flows kept; flows left at \S+ are removed\)/);
    assert.ok(ctrl.view().services[0].backends[2].drain?.deadline, 'the deadline reached the controller');
    r = await run(['backend', 'undrain', '10.0.0.10:80', '10.0.1.13:8080', ...api()]);
    assert.match(r.stdout, /back in the ring/);
    r = await run(['backend', 'remove', '10.0.0.10:80', '10.0.1.13:8080', ...api()]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(ctrl.current[0].backends.length, 2);
    r = await run(['backend', 'remove', '10.0.0.10:80', '10.0.1.99:8080', ...api()]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /no backend 10\.0\.1\.99:8080\/tcp/);
    r = await run(['backend', 'frob', '10.0.0.10:80', 'x', ...api()]);
    assert.equal(r.code, 2);
    r = await run(['reload', ...api()]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /nothing to reload|not from a config file|x\.yaml/);
  });

  test('with a token: refused without it (exit 1, says unauthorized), accepted with --token-file or $L4NAT_ADMIN_TOKEN', async () => {
    const no = await run(['status', '--admin', url2]);
    assert.equal(no.code, 1);
    assert.match(no.stderr, /admin API: unauthorized/);
    assert.equal((await run(['status', '--admin', url2, '--token-file', tokenFile])).code, 0);
    assert.equal((await run(['status', '--admin', url2], { L4NAT_ADMIN_TOKEN: 'sixteen-chars-or-more-token' })).code, 0);
  });

  test('without a token given, a loopback URL gets l4nat\'s own token file (never another host); when it cannot be read, a 401 says why', async () => {
    const own = join(dir, 'own.token');
    const flags = (u: string): Map<string, string[]> => new Map([['admin', [u]]]);
    assert.equal(clientOptions(flags(url2), {}, own).token, undefined);
    assert.match(clientOptions(flags(url2), {}, own).tokenHint ?? '', /no token in .*own\.token: give --token-file/);
    writeFileSync(own, 'sixteen-chars-or-more-token\n', { mode: 0o644 });
    const open = clientOptions(flags(url2), {}, own);
    assert.equal(open.token, undefined, 'a token file others may read is not used');
    assert.match(open.tokenHint ?? '', /has mode 0644: .*chmod 600/);
    chmodSync(own, 0o600);
    assert.equal(clientOptions(flags(url2), {}, own).token, 'sixteen-chars-or-more-token');
    assert.equal(clientOptions(flags(url2.replace('127.0.0.1', 'localhost')), {}, own).token, 'sixteen-chars-or-more-token');
    assert.equal(clientOptions(flags('https://10.9.9.9:9443'), {}, own).token, undefined, 'not sent to another host');
    assert.equal(clientOptions(flags(url2), { L4NAT_ADMIN_TOKEN: 'from-the-environment-0123' }, own).token, 'from-the-environment-0123');
  });

  test('an unreachable API is said so', async () => {
    const r = await run(['status', '--admin', 'http://127.0.0.1:1']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /cannot reach the admin API at http:\/\/127\.0\.0\.1:1/);
  });
});
