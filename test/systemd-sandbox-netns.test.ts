// l4nat under its systemd unit's sandbox (issue 19, item 5). The unit's SystemCallFilter=@system-service left out
// bpf() and its capabilities left out CAP_BPF, so with kernel.unprivileged_bpf_disabled set the queue-steering
// program never loaded and l4nat ran multi-queue without it (a warning; flows reordered between workers).
// systemd is not PID 1 here, so the sandbox is reproduced from the unit file itself (test/rigs/unit-sandbox.ts:
// user, capabilities, bounding set, no-new-privs, the system-call filter with this host's systemd's groups and
// errno, the address families; what is not reproduced is listed there). Checked: with the unit as shipped, 2 queues
// start with the steering program attached and traffic is balanced, every thread holds exactly the unit's
// capabilities under a seccomp filter, and a command health check runs with none; without bpf() in the filter, or
// without CAP_BPF, l4nat refuses to start and says why and what to do; with one queue it needs neither.
// Root-only (lab, setpriv), about 30 s.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import type { Lab } from '../src/lab/lab';
import { L4natProcess, READY_MSG, repoRoot } from '../src/lab/l4nat-process';
import { runClient, SERVICE_PORT } from '../src/lab/workload';
import { configText, labBackends, withLab } from './rigs/fixture';
import { capMask, capNames, threadCaps } from './rigs/proc';
import { skipUnless } from './rigs/requirements';
import {
  canRaiseLimits,
  expandSyscalls,
  handOverDir,
  readStatusCheck,
  readUnitSandbox,
  SANDBOX_UID,
  sandboxCommand,
  seccompExec,
  statusCheck,
  syscallGroups,
  tunStandIn,
  unitSettings,
  writeUserFile,
  type UnitSandbox,
} from './rigs/unit-sandbox';

const STEERING_MSG = 'queue steering program attached: both directions of a flow on one queue';

test('unit sandbox settings: read from the unit file (lists merged, an empty assignment resets); groups expanded recursively', () => {
  const s = unitSettings('[Unit]\nAmbientCapabilities=CAP_X\n[Service]\n# c\nAmbientCapabilities=CAP_A\nAmbientCapabilities=CAP_B CAP_C\nSystemCallFilter=@x\nSystemCallFilter=\nSystemCallFilter=@y bpf\n');
  assert.deepEqual(s.get('AmbientCapabilities'), ['CAP_A', 'CAP_B', 'CAP_C']);
  assert.deepEqual(s.get('SystemCallFilter'), ['@y', 'bpf']);
  const groups = new Map([['@y', ['read', '@z']], ['@z', ['write', '@y']]]);
  assert.deepEqual(expandSyscalls(['@y', 'bpf'], groups), ['bpf', 'read', 'write']);
  assert.throws(() => expandSyscalls(['@nope'], groups), /@nope is unknown/);
  assert.throws(() => readUnitSandbox('[Service]\nSystemCallFilter=~@mount\n'), /deny list is not reproduced/);
  // The shipped unit: what the data plane needs, and bpf() on top of @system-service.
  const sb = readUnitSandbox();
  assert.ok(sb.capabilities.includes('net_admin') && sb.capabilities.includes('bpf'), `AmbientCapabilities: ${sb.capabilities.join(' ')}`);
  assert.deepEqual([...sb.boundingSet].sort(), [...sb.capabilities].sort(), 'CapabilityBoundingSet= holds exactly the ambient capabilities');
  assert.ok(sb.syscallFilter.includes('@system-service') && sb.syscallFilter.includes('bpf'), `SystemCallFilter: ${sb.syscallFilter.join(' ')}`);
  assert.equal(sb.noNewPrivileges, true);
});

function config(lab: Lab, queues: number, checkOut: string, tokenFile: string): string {
  return configText({
    global: { queues, stats_interval: 0, hash_key: '5f3c2a1b0e9d8c7b6a5f4e3d2c1b0a99' },
    admin: { token_file: tokenFile },
    // What a command check runs with under the sandbox.
    services: [{ name: 'web', vips: [lab.vip4], ports: [SERVICE_PORT], health_check: statusCheck(checkOut), backends: labBackends(lab) }],
  });
}

test('l4nat in the unit\'s sandbox: steering attached with 2 queues; without bpf() or CAP_BPF it refuses to start; 1 queue needs neither', { skip: skipUnless({ commands: ['systemd-analyze', 'setpriv', 'prlimit', 'unshare', 'gcc'], headers: ['seccomp.h'] }), timeout: 180_000 }, async (t) => {
  const unit = readUnitSandbox();
  const groups = syscallGroups();
  const seccomp = await seccompExec();
  const limits = canRaiseLimits();
  await withLab({ backends: 2, ipv6: false }, async ({ lab, dir, track }) => {
    const tokenFile = handOverDir(dir);
    const tunNode = tunStandIn(dir);
    const file = (name: string, queues: number): string => {
      const f = join(dir, name);
      writeUserFile(f, config(lab, queues, join(dir, `${name}.check`), tokenFile));
      return f;
    };
    const two = file('two.yaml', 2);
    const one = file('one.yaml', 1);
    const spawnIn = (sb: UnitSandbox, configFile: string): L4natProcess => {
      const args = ['up', '--config', configFile];
      const [cmd, argv] = sandboxCommand(sb, expandSyscalls(sb.syscallFilter, groups), seccomp, [process.execPath, join(repoRoot(), 'bin', 'l4nat.js'), ...args], { tunNode, limits });
      return track(new L4natProcess(lab, lab.spawn('lb', cmd, argv, { env: { ...process.env, L4NAT_LOG_LEVEL: 'info', HOME: dir }, cwd: dir }), args));
    };
    const ready = (l4: L4natProcess): Promise<unknown> => l4.waitForLog((r) => r.msg === READY_MSG, 30_000, `"${READY_MSG}"`);
    /** Waits for an l4nat that must not start: its exit status and what it printed. */
    const refused = async (l4: L4natProcess): Promise<{ code: number | null; out: string }> => {
      const st = await Promise.race([l4.proc.exited, new Promise<null>((r) => setTimeout(() => r(null), 30_000))]);
      assert.ok(st !== null, `l4nat did not exit: ${l4.lines.map((l) => l.raw).join('\n')}`);
      return { code: st.code, out: [...l4.lines.map((l) => l.raw), ...l4.stderr].join('\n') };
    };
    t.diagnostic(`sandbox from systemd/l4nat.service: uid ${SANDBOX_UID}, capabilities ${unit.capabilities.join(',')}, bounding set ${unit.boundingSet.join(',')}, no-new-privs, ${expandSyscalls(unit.syscallFilter, groups).length} system calls allowed (${unit.syscallFilter.join(' ')}, errno ${unit.syscallErrno}), families ${unit.addressFamilies.join(',')}; resource limits ${limits ? 'set' : 'not set (raising a hard limit needs CAP_SYS_RESOURCE, which this root lacks)'}`);

    // 1. As shipped, 2 queues: the steering program loads and is attached.
    const l4 = spawnIn(unit, two);
    await ready(l4);
    assert.ok(l4.logs().some((r) => r.msg === STEERING_MSG), 'the steering program was attached');
    const pid = l4.pid!;
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    assert.match(status, /^Seccomp:\s+2$/m, 'a seccomp filter is in force');
    assert.match(status, /^NoNewPrivs:\s+1$/m);
    const mask = capMask(unit.capabilities);
    for (const th of threadCaps(pid)) {
      const where = `thread ${th.tid} (${th.name})`;
      assert.match(th.uid, new RegExp(`^${SANDBOX_UID}\\s+${SANDBOX_UID}\\s+${SANDBOX_UID}\\s+${SANDBOX_UID}$`), `${where}: Uid ${th.uid}`);
      assert.equal(th.capEff, mask, `${where}: CapEff ${capNames(th.capEff).join(',')}`);
      assert.equal(th.capBnd, capMask(unit.boundingSet), `${where}: CapBnd ${capNames(th.capBnd).join(',')}`);
    }
    const tcp = await runClient(lab, { target: lab.vip4, count: 100, concurrency: 8 });
    assert.equal(tcp.failed, 0, JSON.stringify(tcp.errors));
    assert.deepEqual(Object.keys(tcp.perBackend).sort(), lab.backends.map((b) => b.id).sort());
    const checkOut = join(dir, 'two.yaml.check');
    const child = await readStatusCheck(checkOut);
    assert.match(child, /^CapEff:\s+0+$/m, `the command check holds no capability: ${child}`);
    assert.match(child, /^CapAmb:\s+0+$/m, child);
    assert.match(child, /^Seccomp:\s+2$/m, 'the check runs under the same filter (setpriv worked inside it)');
    t.diagnostic(`as shipped: ready with the steering program attached, every thread CapEff = ${capNames(mask).join(',')}, Seccomp 2; ${tcp.ok}/100 connections over ${Object.keys(tcp.perBackend).length} backends; command check CapEff 0 under the filter`);
    const stop = await l4.stop();
    assert.equal(stop.code, 0, `exit ${stop.code}: ${l4.stderr.join('\n')}`);

    // 2. The filter without bpf(), and 3. the capabilities without CAP_BPF: refused, saying why and what to do.
    const variants: Array<[string, UnitSandbox]> = [
      ['SystemCallFilter= without bpf', { ...unit, syscallFilter: unit.syscallFilter.filter((x) => x !== 'bpf') }],
      ['capabilities without CAP_BPF', { ...unit, capabilities: unit.capabilities.filter((c) => c !== 'bpf'), boundingSet: unit.boundingSet.filter((c) => c !== 'bpf') }],
    ];
    for (const [what, sb] of variants) {
      const r = await refused(spawnIn(sb, two));
      assert.equal(r.code, 1, `${what}: exit status\n${r.out}`);
      assert.match(r.out, /queue steering: attach the steering program: bpf\(BPF_PROG_LOAD\) failed: Operation not permitted/, `${what}: names the refused step\n${r.out}`);
      assert.match(r.out, /grant CAP_BPF and allow the bpf\(\) system call .*run with one queue \(--queues 1, global\.queues: 1\)/, `${what}: names the remedies`);
      assert.doesNotMatch(r.out, new RegExp(READY_MSG), `${what}: never ready`);
      assert.doesNotMatch(await lab.ip('lb', ['-br', 'link']), /l4nat0/, `${what}: the TUN was removed again`);
      t.diagnostic(`${what}: exit 1, "${/queue steering: [^.]*/.exec(r.out)?.[0] ?? ''}"`);
    }

    // 4. One queue needs no steering program: neither CAP_BPF nor bpf().
    const bare: UnitSandbox = { ...unit, syscallFilter: unit.syscallFilter.filter((x) => x !== 'bpf'), capabilities: unit.capabilities.filter((c) => c !== 'bpf'), boundingSet: unit.boundingSet.filter((c) => c !== 'bpf') };
    const single = spawnIn(bare, one);
    await ready(single);
    assert.ok(!single.logs().some((r) => r.msg === STEERING_MSG));
    const tcp1 = await runClient(lab, { target: lab.vip4, count: 50, concurrency: 8 });
    assert.equal(tcp1.failed, 0, JSON.stringify(tcp1.errors));
    assert.equal((await single.stop()).code, 0);
  });
});
