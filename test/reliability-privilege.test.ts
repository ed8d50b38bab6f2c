// Least privilege (issue 7): l4nat run as an unprivileged user (a numeric uid with no passwd entry, so nothing on
// the host changes) holding only the systemd unit's capabilities (read from the unit: CAP_NET_ADMIN, and CAP_BPF for
// the queue-steering program), given as ambient capabilities by setpriv the way the unit gives them (User=,
// AmbientCapabilities=, CapabilityBoundingSet=, NoNewPrivileges=yes). The unit's system-call filter on top:
// test/systemd-sandbox-netns.test.ts.
// Capabilities are per thread: /proc/PID/task/*/status of every thread is checked. Then it must work: TUN, routes,
// rules and sysctls set up, TCP and UDP balanced, icmp checks passing, admin API up, a SIGTERM removes everything.
// Reported too: what happens with the default hash key file (/var/lib/l4nat, root's), and what a command health
// check inherits.
// Root-only (to start the lab and drop to the user); about 15 s.
import assert from 'node:assert/strict';
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { adminRequest } from '../src/lab/admin-client';
import type { Lab } from '../src/lab/lab';
import { l4natArgs, READY_MSG } from '../src/lab/l4nat-process';
import { runClient, SERVICE_PORT } from '../src/lab/workload';
import { configText, labBackends, withLab } from './rigs/fixture';
import { capMask, capNames, threadCaps } from './rigs/proc';
import { handOverDir, readStatusCheck, startUnprivileged, statusCheck, tunStandIn, UNIT_CAPS, UNPRIVILEGED_UID, unprivileged, writeUserFile } from './rigs/unprivileged';
import { niceOf, workerThreadIds } from '../src/dataplane/worker-priority';
import { skipUnless } from './rigs/requirements';

const UID = UNPRIVILEGED_UID;
/** What the systemd unit grants, read from the unit file (UNIT_CAPS). */
const UNIT_MASK = capMask(UNIT_CAPS);

function config(lab: Lab, checkOut: string, tokenFile: string): string {
  return configText({
    global: { queues: 2, stats_interval: 0, hash_key: '5f3c2a1b0e9d8c7b6a5f4e3d2c1b0a99' },
    admin: { token_file: tokenFile },
    services: [
      // What a command health check runs with: its own uid and capability sets.
      { name: 'web', vips: [lab.vip4], ports: [SERVICE_PORT, `${SERVICE_PORT}/udp`], health_check: statusCheck(checkOut), backends: labBackends(lab) },
      // An icmp check: the raw ICMP socket it needs is what CAP_NET_RAW is in the unit for.
      { name: 'ping', vips: [lab.vip4], ports: [SERVICE_PORT + 1], health_check: { type: 'icmp', interval: 0.5, timeout: 0.3 }, backends: labBackends(lab) },
    ],
  });
}

test('unprivileged with only the unit\'s capabilities (setpriv, ambient): every thread holds exactly those, and l4nat sets up, steers, balances and cleans up', { skip: skipUnless({ commands: ['setpriv'] }), timeout: 120_000 }, async (t) => {
  await withLab({ backends: 2, ipv6: false }, async ({ lab, dir, track }) => {
    // The default token file is in /var/lib/l4nat, root's here (systemd's StateDirectory= would make it l4nat's).
    const tokenFile = handOverDir(dir);
    const tunMode = statSync('/dev/net/tun').mode & 0o777;
    const tunNode = tunStandIn(dir);
    if (tunNode !== null) {
      t.diagnostic(`/dev/net/tun here is ${tunMode.toString(8)} (no udev rule): an unprivileged l4nat cannot open it (EACCES); standing in a 0666 node as udev makes it, in l4nat's own mount namespace`);
    }

    // 1. The default hash key lives in /var/lib/l4nat (systemd's StateDirectory= makes it the user's; here it is
    //    whatever root left there). Report what the unprivileged process makes of it.
    const plain = l4natArgs(lab, { ports: [`${SERVICE_PORT}/tcp`], extraArgs: ['--queues', '1', '--admin-port', '0', '--stats-interval', '0'] });
    const [nkCmd, nkArgs] = unprivileged(plain, tunNode);
    const noKey = lab.spawn('lb', nkCmd, nkArgs, { env: { ...process.env, HOME: dir }, cwd: dir });
    const ready = noKey.waitForLine((l) => l.includes(READY_MSG), { timeoutMs: 20_000, what: 'ready' }).then(() => true, () => false);
    const started = await ready;
    if (started) await noKey.stop({ signal: 'SIGTERM', timeoutMs: 10_000 });
    const st = await noKey.exited;
    const why = [...noKey.stdoutLines, ...noKey.stderrLines].map((l) => {
      try {
        const o = JSON.parse(l) as { msg?: string; err?: { message?: string } };
        return o.err?.message ?? o.msg ?? l;
      } catch {
        return l;
      }
    }).filter((l) => /hash|key|EACCES|permission|denied/i.test(l));
    t.diagnostic(`without --hash-key (default /var/lib/l4nat/hash.key${existsSync('/var/lib/l4nat') ? ', directory owned by root' : ', directory absent'}): ${started ? 'started' : `did not start (exit ${st.code})`}${why.length ? `: ${why.slice(0, 2).join(' | ')}` : ''}`);
    // When it cannot use the key file, the error says what to do.
    if (!started) assert.ok(why.some((l) => /point global\.hash_key_file \(--hash-key-file\) at a file this user may read/.test(l) && /StateDirectory=l4nat/.test(l)), `the error names the remedies: ${why.join(' | ')}`);

    // 2. From a config file with the key in it: must start and work.
    const checkOut = join(dir, 'check-status.txt');
    const file = join(dir, 'l4nat.yaml');
    writeUserFile(file, config(lab, checkOut, tokenFile));
    const fwdBefore = (await lab.exec('lb', 'sysctl', ['-n', 'net.ipv4.ip_forward'])).stdout.trim();
    const l4 = track(await startUnprivileged(lab, ['up', '--config', file], dir, tunNode));
    const pid = l4.pid!;
    const threads = threadCaps(pid);
    for (const th of threads) {
      const where = `thread ${th.tid} (${th.name})`;
      assert.match(th.uid, new RegExp(`^${UID}\\s+${UID}\\s+${UID}\\s+${UID}$`), `${where}: Uid ${th.uid}`);
      assert.equal(th.capEff, UNIT_MASK, `${where}: CapEff ${capNames(th.capEff).join(',')}`);
      assert.equal(th.capPrm, UNIT_MASK, `${where}: CapPrm ${capNames(th.capPrm).join(',')}`);
      assert.equal(th.capBnd, UNIT_MASK, `${where}: CapBnd ${capNames(th.capBnd).join(',')}`);
      assert.equal(th.noNewPrivs, true, `${where}: NoNewPrivs`);
    }
    // Lowering the workers' nice value (default -10) needs CAP_SYS_NICE or an RLIMIT_NICE for it, which this
    // process lacks (systemd's unit gives LimitNICE=-10): they keep nice 0, forwarding goes on, the log says why.
    const workers = workerThreadIds(`/proc/${pid}/task`);
    assert.equal(workers.length, 2, `worker threads named l4nat-qN: ${threads.map((x) => x.name).join(', ')}`);
    assert.deepEqual(workers.map((tid) => niceOf(pid, tid)), [0, 0]);
    assert.ok(l4.logs().some((l) => l.level === 40 && /keep the process's priority: .*LimitNICE=/.test(String(l.msg))), 'a warning names what the nice value needs');
    t.diagnostic(`${threads.length} threads (${[...new Set(threads.map((x) => x.name))].join(', ')}): every one uid ${UID}, CapEff = CapPrm = CapBnd = ${UNIT_CAPS.join(',')}, CapAmb = ${capNames(threads[0]!.capAmb).join(',') || 'none'}, NoNewPrivs`);

    // Two queues: the steering program loaded with the unit's CAP_BPF (without it l4nat refuses to start).
    assert.ok(l4.logs().some((l) => l.msg === 'queue steering program attached: both directions of a flow on one queue'), 'the steering program is attached');

    // Set-up done as that user: TUN, routes, rules, sysctls.
    assert.match((await lab.exec('lb', 'ip', ['-br', 'link', 'show', 'dev', 'l4nat0'])).stdout, /^l4nat0/);
    assert.match((await lab.exec('lb', 'ip', ['rule'])).stdout, /lookup 4400 proto 244/);
    assert.equal((await lab.exec('lb', 'sysctl', ['-n', 'net.ipv4.ip_forward'])).stdout.trim(), '1', `ip_forward (was ${fwdBefore}) set by the unprivileged l4nat`);
    assert.equal((await lab.exec('lb', 'sysctl', ['-n', 'net.ipv4.conf.l4nat0.rp_filter'])).stdout.trim(), '2');
    const tcp = await runClient(lab, { target: lab.vip4, count: 200, concurrency: 16 });
    const udp = await runClient(lab, { target: lab.vip4, proto: 'udp', count: 100, concurrency: 8 });
    assert.equal(tcp.failed, 0, JSON.stringify(tcp.errors));
    assert.equal(udp.failed, 0, JSON.stringify(udp.errors));
    assert.deepEqual(Object.keys(tcp.perBackend).sort(), lab.backends.map((b) => b.id).sort());
    const status = await adminRequest(lab, 'GET', '/v1/status', undefined, undefined, tokenFile);
    assert.equal(status.status, 200);
    // The icmp checks pass: the raw ICMP socket opened with the unit's CAP_NET_RAW.
    const ping = await adminRequest(lab, 'GET', `/v1/services/${encodeURIComponent(`${lab.vip4}:${SERVICE_PORT + 1}/tcp`)}`, undefined, undefined, tokenFile);
    const pinged = (ping.body as { backends: { name: string; state: string; health: { checks: { ok: number; failed: number } } | null }[] }).backends;
    for (const b of pinged) assert.ok(b.state === 'up' && (b.health?.checks.ok ?? 0) > 0 && b.health?.checks.failed === 0, `icmp check of ${b.name}: ${JSON.stringify(b)}`);
    t.diagnostic(`works: ${tcp.ok}/200 TCP connections and ${udp.ok}/100 UDP exchanges over both backends, admin API up, ip_forward ${fwdBefore} -> 1, rp_filter 2 on l4nat0`);

    // What a command health check runs with (the unit file says: none of l4nat's capabilities, through setpriv).
    const child = await readStatusCheck(checkOut);
    const hex = (n: string): bigint => BigInt(`0x${new RegExp(`^${n}:\\s+([0-9a-f]+)`, 'm').exec(child)?.[1] ?? '0'}`);
    const childEff = hex('CapEff');
    const childAmb = hex('CapAmb');
    t.diagnostic(`command health check runs as: ${child.trim().split('\n').map((l) => l.replace(/\s+/g, ' ')).join('; ')}`);
    await t.test('command health checks run without capabilities', {
    }, () => {
      assert.equal(childEff, 0n);
      assert.equal(childAmb, 0n);
    });

    // A stop as that user removes everything it added.
    const stop = await l4.stop();
    assert.equal(stop.code, 0, `exit ${stop.code} ${stop.signal}\n${l4.stderr.join('\n')}`);
    assert.doesNotMatch((await lab.exec('lb', 'ip', ['-br', 'link'])).stdout, /l4nat0/, 'the TUN is gone');
    assert.doesNotMatch((await lab.exec('lb', 'ip', ['rule'])).stdout, /proto 244|lookup 4400/, 'the rules are gone');
    assert.equal((await lab.exec('lb', 'ip', ['route', 'show', 'table', 'all', 'proto', '244'])).stdout.trim(), '', 'the routes are gone');
  });
});
