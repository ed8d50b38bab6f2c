// The lab itself: topology, plain kernel routing through the lb, and cleanup (normal, failed set-up, signals).
// Root-only parts are skipped for other users (failed under CI=true); argument parsing and helpers are tested everywhere.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { parseDriverArgs, streamByte } from '../src/lab/client-driver';
import { parseBackendArgs, peerAddress } from '../src/lab/backend-server';
import { snapshotMentions, snapshotNetns } from './rigs/inspect';
import { defaultFlowFile, FLOW_FILE_DIR } from '../src/daemon/flow-file-name';
import { createLab, Lab, listLabNamespaces, normalizeAddress } from '../src/lab/lab';
import { formatBackend, l4natArgs, startL4nat } from '../src/lab/l4nat-process';
import { CommandError, netnsAdd, netnsDelete, netnsExists, netnsPids, run, sysctlGet } from '../src/lab/netns';
import { runClient, startBackendServers, startStreams } from '../src/lab/workload';
import { paperLab } from './rigs/fixture';
import { skipUnless } from './rigs/requirements';

const needsRoot = skipUnless({ tun: false, l4nat: false, commands: ['ip'] });
/** Addresses and names that must never show up in the default namespace. */
const LAB_NEEDLES = ['10.200.', '10.201.', 'fd4c:'];

/** A stand-in l4nat checkout (bin/l4nat.js + dist/src/cli/main.js) whose behaviour FAKE_MODE picks. */
function fakeL4natRoot(): string {
  const root = mkdtempSync(path.join(tmpdir(), 'l4nat-fake-'));
  mkdirSync(path.join(root, 'bin'));
  mkdirSync(path.join(root, 'dist', 'src', 'cli'), { recursive: true });
  writeFileSync(path.join(root, 'dist', 'src', 'cli', 'main.js'), '');
  writeFileSync(
    path.join(root, 'bin', 'l4nat.js'),
    `const log = (msg, o = {}) => process.stdout.write(JSON.stringify({ level: 30, time: Date.now(), msg, ...o }) + '\\n');
     const mode = process.env.FAKE_MODE;
     log('argv', { argv: process.argv.slice(2) });
     log('netns', { ino: require('fs').statSync('/proc/self/ns/net').ino });
     if (mode === 'fail') { process.stderr.write('no TUN for you\\n'); process.exit(4); }
     if (mode === 'stubborn') process.on('SIGTERM', () => log('ignoring SIGTERM'));
     else process.on('SIGTERM', () => { log('bye'); process.exit(0); });
     if (mode !== 'silent') log('l4nat ready');
     setInterval(() => {}, 1000);`,
  );
  return root;
}

describe('lab helpers (no root needed)', () => {
  test('normalizeAddress gives one spelling per address', () => {
    assert.equal(normalizeAddress('fd4c:0:0::2'), 'fd4c::2');
    assert.equal(normalizeAddress('[FD4C:0:1:0:0:0:0:2]'), 'fd4c:0:1::2');
    assert.equal(normalizeAddress('::ffff:10.201.0.2'), '10.201.0.2');
    assert.equal(normalizeAddress('10.201.0.2'), '10.201.0.2');
    assert.equal(peerAddress('::ffff:10.1.2.3'), '10.1.2.3');
    assert.equal(peerAddress('fd4c::2'), 'fd4c::2');
  });

  test('createLab validates its options before touching anything', async () => {
    await assert.rejects(createLab({ backends: 0 }), /backends must be an integer/);
    await assert.rejects(createLab({ backends: 1.5 }), /backends must be an integer/);
    await assert.rejects(createLab({ id: 'Bad-Id' }), /id must be/);
    await assert.rejects(createLab({ ipv6: 'yes' as unknown as boolean }), /ipv6 must be a boolean/);
  });

  test('run() errors quote the command and its stderr', async () => {
    const err = await run('sh', ['-c', 'echo oops >&2; exit 3']).then(
      () => null,
      (e: unknown) => e,
    );
    assert.ok(err instanceof CommandError);
    assert.equal(err.exitCode, 3);
    assert.match(err.message, /`sh -c echo oops >&2; exit 3` failed \(exit 3\): oops/);
    const missing = await run('/nonexistent/l4nat-lab-cmd', []).catch((e: unknown) => e);
    assert.ok(missing instanceof CommandError);
    assert.equal(missing.code, 'ENOENT');
  });

  test('backend-server arguments', () => {
    assert.deepEqual(parseBackendArgs(['--name', 'b1', '--port', '8080', '--port', '9090']), {
      name: 'b1',
      ports: [8080, 9090],
      host: '::',
    });
    assert.throws(() => parseBackendArgs(['--port', '8080']), /--name/);
    assert.throws(() => parseBackendArgs(['--name', 'b1', '--port', '70000']), /--port/);
  });

  test('client-driver arguments', () => {
    const r = parseDriverArgs(['--target', '10.200.0.10', '--port', '8080', '--proto', 'udp', '--count', '5']);
    assert.equal(r.mode, 'requests');
    assert.equal(r.mode === 'requests' && r.proto, 'udp');
    const s = parseDriverArgs(['--target', 'fd4c:ffff::10', '--port', '8080', '--streams', '3', '--duration-ms', '100']);
    assert.equal(s.mode, 'streams');
    assert.throws(() => parseDriverArgs(['--target', 'nope', '--port', '1']), /--target/);
    assert.throws(() => parseDriverArgs(['--target', '10.0.0.1', '--port', '1', '--bogus', '1']), /--bogus/);
    assert.throws(() => parseDriverArgs(['--target', '10.0.0.1', '--port', '1', '--streams', '2']), /--duration-ms/);
    assert.notEqual(streamByte(0, 1), streamByte(1, 1));
  });

  test('l4nat arguments follow the CLI contract', () => {
    const lab = paperLab([
      { id: 'b1', ipv4: '10.201.1.2', ipv6: 'fd4c:0:1::2' },
      { id: 'b2', ipv4: '10.201.2.2', ipv6: 'fd4c:0:2::2' },
    ]);
    assert.equal(formatBackend('fd4c:0:1::2', 8080, 2), '[fd4c:0:1::2]:8080@2');
    assert.deepEqual(l4natArgs(lab, { extraArgs: ['--hash', 'src'] }), [
      'up',
      '--vip', '10.200.0.10', '--vip', 'fd4c:ffff::10',
      '--port', '8080/tcp', '--port', '8080/udp',
      '--backend', '10.201.1.2:8080', '--backend', '[fd4c:0:1::2]:8080',
      '--backend', '10.201.2.2:8080', '--backend', '[fd4c:0:2::2]:8080',
      '--hash', 'src',
    ]);
    assert.deepEqual(l4natArgs(lab, { vips: ['10.200.0.10'], backendIds: ['b2'] }).slice(-2), ['--backend', '10.201.2.2:8080']);
  });
});

describe('lab with plain kernel forwarding in the lb', { skip: needsRoot, timeout: 120_000 }, () => {
  let lab: Lab;
  let defaultForwarding: string;

  before(async () => {
    defaultForwarding = await run('sysctl', ['-n', 'net.ipv4.ip_forward']).then((r) => r.stdout.trim());
    lab = await createLab({ backends: 3 });
    await lab.enableForwarding();
    await startBackendServers(lab);
  });

  after(async () => {
    await lab?.destroy();
  });

  test('namespaces, addresses and routes are as documented', async () => {
    assert.match(lab.id, /^[0-9a-f]{6}$/);
    assert.deepEqual(lab.namespaces, ['client', 'lb', 'b1', 'b2', 'b3'].map((r) => `l4-${lab.id}-${r}`));
    assert.deepEqual((await listLabNamespaces(lab.id)).sort(), [...lab.namespaces].sort());
    assert.equal(lab.client.ipv4, '10.201.0.2');
    assert.equal(lab.client.ipv6, 'fd4c::2');
    assert.equal(lab.backend('b2').ipv4, '10.201.2.2');
    assert.equal(lab.backend('b2').ipv6, 'fd4c:0:2::2');
    assert.equal(lab.vip4, '10.200.0.10');
    assert.equal(lab.vip6, 'fd4c:ffff::10');
    for (const role of ['client', 'lb', 'b1', 'b2', 'b3']) {
      assert.equal(await sysctlGet(lab.nsOf(role), 'net.ipv4.conf.all.rp_filter'), '1', `rp_filter in ${role}`);
      assert.match(await lab.ip(role, ['link', 'show', 'lo']), /state UNKNOWN|UP/);
    }
    assert.match(await lab.ip('client', ['-4', 'route', 'show', 'default']), /default via 10\.201\.0\.1 dev eth0/);
    assert.match(await lab.ip('b3', ['-6', 'route', 'show', 'default']), /default via fd4c:0:3::1 dev eth0/);
    assert.match(await lab.ip('lb', ['-6', 'addr', 'show', 'dev', 'b1']), /fd4c:0:1::1\/64/);
    // The VIPs are on no connected subnet.
    assert.doesNotMatch(await lab.ip('lb', ['-4', 'route', 'show']), /10\.200\./);
    assert.throws(() => lab.nsOf('b9'), /no role "b9"/);
  });

  test('the default namespace is untouched', async () => {
    const s = await snapshotNetns(null);
    assert.deepEqual(snapshotMentions(s, [...LAB_NEEDLES, lab.id]), []);
    assert.equal((await run('sysctl', ['-n', 'net.ipv4.ip_forward'])).stdout.trim(), defaultForwarding);
  });

  for (const proto of ['tcp', 'udp'] as const) {
    for (const family of [4, 6] as const) {
      test(`the client reaches every backend directly over ${proto.toUpperCase()} / IPv${family}`, async () => {
        const want = family === 4 ? lab.client.ipv4 : lab.client.ipv6!;
        for (const b of lab.backends) {
          const target = family === 4 ? b.ipv4 : b.ipv6!;
          const r = await runClient(lab, { target, proto, count: 20, concurrency: 5, timeoutMs: 20_000 });
          assert.equal(r.ok, 20, `${b.id}: ${JSON.stringify(r.errors)}`);
          assert.deepEqual(r.perBackend, { [b.id]: 20 });
          assert.deepEqual(r.peerAddrs.map(normalizeAddress), [normalizeAddress(want)]);
          assert.equal(r.peerPortMismatches, 0);
        }
      });
    }
  }

  test('long-lived streams echo and verify data', async () => {
    const s = startStreams(lab, { target: lab.backend('b1').ipv4, streams: 4, durationMs: 1_000, intervalMs: 10 });
    assert.deepEqual(await s.streaming, { established: 4, failed: 0 });
    const st = await s.status();
    assert.equal(st.failed, 0);
    const r = await s.result;
    assert.equal(r.ok, 4, JSON.stringify(r.errors));
    assert.ok(r.bytesVerified > 0 && r.bytesVerified === r.bytesSent);
    assert.deepEqual(r.perBackend, { b1: 4 });
  });

  test('startL4nat: waits for "l4nat ready", keeps the log, stops with SIGTERM and reports the exit code', async () => {
    const root = fakeL4natRoot();
    try {
      const l4 = await startL4nat(lab, { root, env: { FAKE_MODE: 'ok' }, readyTimeoutMs: 10_000 });
      assert.ok(l4.running);
      assert.equal(l4.args[0], 'up');
      const argv = l4.logs().find((r) => r.msg === 'argv')!.argv as string[];
      assert.deepEqual(argv, l4.args, 'the CLI got exactly the generated arguments');
      assert.equal(l4.logs().find((r) => r.msg === 'netns')!.ino !== undefined, true);
      assert.deepEqual(await l4.stop(), { code: 0, signal: null, forced: false });
      assert.ok(l4.logs().some((r) => r.msg === 'bye'));
      assert.equal(l4.running, false);

      const err = await startL4nat(lab, { root, env: { FAKE_MODE: 'fail' }, readyTimeoutMs: 10_000 }).catch((e: unknown) => e);
      assert.ok(err instanceof Error);
      assert.match(err.message, /exited \(code 4/);
      assert.match(err.message, /no TUN for you/, 'stderr is quoted');

      const slow = await startL4nat(lab, { root, env: { FAKE_MODE: 'silent' }, readyTimeoutMs: 300 }).catch((e: unknown) => e);
      assert.ok(slow instanceof Error);
      assert.match(slow.message, /no "l4nat ready" log line within 300 ms/);

      const stubborn = await startL4nat(lab, { root, env: { FAKE_MODE: 'stubborn' }, readyTimeoutMs: 10_000 });
      const st = await stubborn.stop(300);
      assert.equal(st.forced, true);
      assert.equal(st.signal, 'SIGKILL');
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });

  test('destroy() removes every namespace of the lab and is idempotent', async () => {
    await lab.destroy();
    assert.deepEqual(await listLabNamespaces(lab.id), []);
    await lab.destroy();
    assert.throws(() => lab.spawn('client', 'true', []), /destroyed/);
    assert.deepEqual(snapshotMentions(await snapshotNetns(null), [...LAB_NEEDLES, lab.id]), []);
  });
});

describe('lab cleanup when things go wrong', { skip: needsRoot, timeout: 120_000 }, () => {
  test('a throw during set-up removes what was created', async () => {
    const id = `f${Date.now().toString(16).slice(-6)}`;
    let created: string[] = [];
    await assert.rejects(
      createLab({
        id,
        onStep: async (step) => {
          if (step === 'addresses') {
            created = await listLabNamespaces(id);
            throw new Error('injected failure');
          }
        },
      }),
      /injected failure/,
    );
    assert.equal(created.length, 5, 'namespaces existed when the step failed');
    assert.deepEqual(await listLabNamespaces(id), []);
  });

  test('a failing command during set-up removes what was created', async () => {
    const id = `g${Date.now().toString(16).slice(-6)}`;
    const err = await createLab({
      id,
      onStep: async (step) => {
        // Deleting one end of b1's veth deletes both, so adding b1's default route fails for real.
        if (step === 'routes') await run('ip', ['-n', `l4-${id}-lb`, 'link', 'del', 'b1']);
      },
    }).then(
      () => null,
      (e: unknown) => e,
    );
    assert.ok(err instanceof CommandError, String(err));
    assert.match(err.message, /route add default/);
    assert.ok(err.stderr.length > 0);
    assert.deepEqual(await listLabNamespaces(id), []);
  });

  test('deleting a namespace removes the flow table files an l4nat killed in it left, and no other namespace\'s', async () => {
    const ns = `l4-f${Date.now().toString(16).slice(-6)}-lb`;
    await netnsAdd(ns);
    const ino = String(statSync(`/run/netns/${ns}`).ino);
    mkdirSync(FLOW_FILE_DIR, { recursive: true, mode: 0o700 });
    const mine = [defaultFlowFile('l4nat0', ino), defaultFlowFile('l4nat7', ino)];
    const other = defaultFlowFile('l4nat0', `${ino}9`); // another inode that ends like it must not match
    try {
      for (const f of [...mine, other]) writeFileSync(f, 'x', { mode: 0o600 });
      await netnsDelete(ns);
      assert.deepEqual(mine.filter((f) => existsSync(f)), [], 'the namespace\'s files are gone');
      assert.ok(existsSync(other), 'another namespace\'s file stays');
    } finally {
      for (const f of [...mine, other]) rmSync(f, { force: true });
      await netnsDelete(ns, { ifExists: true });
    }
  });

  test('a namespace that is not ours is refused and left alone', async () => {
    const id = `h${Date.now().toString(16).slice(-6)}`;
    const foreign = `l4-${id}-b2`;
    await netnsAdd(foreign);
    try {
      await assert.rejects(createLab({ id }), /in use/);
      assert.ok(await netnsExists(foreign));
      assert.deepEqual(await listLabNamespaces(id), [foreign]);
    } finally {
      await netnsDelete(foreign, { ifExists: true });
    }
  });

  for (const step of ['namespaces', 'links']) {
    test(`SIGINT during set-up (step "${step}") leaves nothing behind`, async () => {
      const id = `i${Date.now().toString(16).slice(-6)}`;
      const labJs = path.join(__dirname, '..', 'src', 'lab', 'lab.js');
      // At "namespaces" the signal lands while namespaces are being added; at "links" after all exist.
      const script = `
        const { createLab } = require(${JSON.stringify(labJs)});
        createLab({ id: ${JSON.stringify(id)}, onStep: (s) => {
          if (s === ${JSON.stringify(step)}) setTimeout(() => process.kill(process.pid, 'SIGINT'), ${step === 'namespaces' ? 5 : 0});
        } }).then(() => setTimeout(() => {}, 30000), () => setTimeout(() => {}, 30000));`;
      const st = await new Promise<{ code: number | null; sig: string | null }>((resolve) => {
        const child = execFile(process.execPath, ['-e', script], { timeout: 60_000 });
        child.on('exit', (code, sig) => resolve({ code, sig }));
      });
      assert.equal(st.sig, 'SIGINT');
      assert.deepEqual(await listLabNamespaces(id), []);
    });
  }

  for (const [how, signal] of [
    ['SIGINT', 'SIGINT'],
    ['SIGTERM', 'SIGTERM'],
    ['an uncaught exception', null],
  ] as const) {
    test(`${how} in the owning process removes the lab`, async () => {
      const id = `s${Date.now().toString(16).slice(-6)}`;
      const labJs = path.join(__dirname, '..', 'src', 'lab', 'lab.js');
      const workloadJs = path.join(__dirname, '..', 'src', 'lab', 'workload.js');
      const script = `
        const { createLab } = require(${JSON.stringify(labJs)});
        const { startBackendServers } = require(${JSON.stringify(workloadJs)});
        (async () => {
          const lab = await createLab({ id: ${JSON.stringify(id)} });
          await startBackendServers(lab);
          console.log('READY');
          process.on('SIGUSR2', () => setImmediate(() => { throw new Error('boom'); }));
          setTimeout(() => {}, 30000);
        })();`;
      const child = execFile(process.execPath, ['-e', script], { timeout: 60_000 });
      let out = '';
      let err = '';
      child.stdout!.on('data', (d: string) => (out += d));
      child.stderr!.on('data', (d: string) => (err += d));
      const exited = new Promise<{ code: number | null; sig: string | null }>((resolve) =>
        child.on('exit', (code, sig) => resolve({ code, sig })),
      );
      const deadline = Date.now() + 30_000;
      while (!out.includes('READY') && Date.now() < deadline && child.exitCode === null) {
        await new Promise((r) => setTimeout(r, 50));
      }
      assert.ok(out.includes('READY'), `fixture did not start: ${err}`);
      assert.equal((await listLabNamespaces(id)).length, 5);
      const pids = (await Promise.all(['b1', 'b2', 'b3'].map((r) => netnsPids(`l4-${id}-${r}`)))).flat();
      assert.equal(pids.length, 3, 'one backend server per backend namespace');
      child.kill(signal ?? 'SIGUSR2');
      const st = await exited;
      if (signal !== null) assert.equal(st.sig, signal, 'the process still ends by the signal');
      else assert.equal(st.code, 1);
      assert.deepEqual(await listLabNamespaces(id), []);
      // SIGKILLed processes may need a moment to be reaped by whoever inherits them.
      const gone = (pid: number): boolean => {
        try {
          process.kill(pid, 0);
          return /^State:\s+Z/m.test(readFileSync(`/proc/${pid}/status`, 'utf8'));
        } catch {
          return true;
        }
      };
      const until = Date.now() + 5_000;
      while (!pids.every(gone) && Date.now() < until) await new Promise((r) => setTimeout(r, 50));
      assert.deepEqual(pids.filter((p) => !gone(p)), [], 'backend servers still running');
    });
  }
});
