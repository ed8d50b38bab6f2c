// Scale-out (issue 8): three l4nat hosts behind an ECMP router, VIPs announced through BIRD 2 with BFD, backends'
// return route learned from the hosts over BGP (test/rigs/scaleout.ts). One lab for the whole file, in order:
//   1. the three processes publish byte-identical rings (same config, same hash key);
//   2. one host alone sees a backend fail (its probes are dropped): the agreed health keeps every table identical;
//      a real failure seen by all is agreed, and the window during which the tables differ is measured; a host
//      restarting while the cluster agrees that backend down announces the VIP only after publishing that verdict;
//   3. 200 long-lived connections over the three hosts: SIGKILL one l4nat, add it back, cut another host's uplink
//      silently, restore it — after each, ≥ 99% of the connections continue (router and return path reconverge);
// (test/scaleout-change-netns.test.ts: a backend set change coinciding with a host failure.)
// Everything runs over IPv4 and then over IPv6 (the same lab with `family: 6`: VIP, sessions, BFD, return route,
// backends and cluster peers all IPv6). In `npm test` the IPv6 run is the short one: the identical rings and steps
// 1-4 of the streams (host failure, re-add, BFD on a silent uplink cut, restore). L4NAT_SCALEOUT_IPV6=full runs
// every test and step over IPv6 as well; `npm run test:scaleout-ipv6` (L4NAT_SCALEOUT_IPV6=only) over IPv6 alone.
// Figures are printed as test diagnostics. Root-only; needs bird2 (scripts/install-deps.sh) and nft.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { startStreams, type StreamRun, type StreamStatus } from '../src/lab/workload';
import { sleep, waitUntil } from './rigs/fixture';
import { skipUnless } from './rigs/requirements';
import { addrPort, scaleoutIpv6Run, startScaleout, type ClusterStateView, type Family, type ScaleoutLab } from './rigs/scaleout';

const skip = skipUnless({ commands: ['bird', 'birdc', 'nft'] });

const STREAMS = 200;
const IPV6_RUN = scaleoutIpv6Run();

/** Connections that made progress between two status snapshots (and have not failed). */
function progressed(before: StreamStatus, now: StreamStatus): { ok: number; stalled: number[]; failed: Array<{ i: number; error: string }> } {
  let ok = 0;
  const stalled: number[] = [];
  const failed: Array<{ i: number; error: string }> = [];
  for (const c of now.conns) {
    const was = before.conns.find((x) => x.i === c.i);
    if (c.error !== null) failed.push({ i: c.i, error: c.error });
    else if (was && c.bytesVerified > was.bytesVerified) ok++;
    else stalled.push(c.i);
  }
  return { ok, stalled, failed };
}

if (IPV6_RUN !== 'only') scaleoutSuite(4, true);
scaleoutSuite(6, IPV6_RUN !== 'short');

/** The suite over one family; `full: false` runs the identical-rings test and the first four stream steps only. */
function scaleoutSuite(family: Family, full: boolean): void {
  describe(`scale-out${family === 6 ? ' over IPv6' : ''}: three l4nat hosts behind ECMP, announced by BIRD`, { skip, timeout: 600_000 }, () => {
    let lab: ScaleoutLab;
    const backendIp = (id: string): string => lab.backendAddr(id);
    const KEY = (b: string): string => `${addrPort(lab.vip, 8080)}/tcp|${addrPort(b, 8080)}/tcp`;
    /** nft's word for the lab's family in a match (`ip saddr` / `ip6 saddr`). */
    const nftIp = family === 6 ? 'ip6' : 'ip';
    const live = new Set<string>(['lb1', 'lb2', 'lb3']);
    const figures: Record<string, unknown> = {};

    async function states(roles = [...live]): Promise<Map<string, ClusterStateView>> {
      const all = await lab.clusterStates(roles);
      return new Map(roles.map((r) => [r, all[r]!] as const));
    }

    /** pino `time` of the last record of `role`'s l4nat matching `pred`. */
    function logTime(role: string, pred: (r: Record<string, unknown>) => boolean): number | undefined {
      const recs = lab.l4nats.get(role)!.logs().filter(pred);
      return recs.length ? (recs[recs.length - 1]!.time as number) : undefined;
    }

    async function ringsEqual(roles = [...live]): Promise<{ equal: boolean; digests: Record<string, string> }> {
      const st = await states(roles);
      const digests = Object.fromEntries([...st].map(([r, s]) => [r, JSON.stringify(s.rings)]));
      return { equal: new Set(Object.values(digests)).size === 1, digests };
    }

    const routerHas = async (role: string): Promise<boolean> => (await lab.nexthops('r', lab.vip)).includes(lab.host(role).upAddr);
    const backendsHave = async (role: string): Promise<boolean[]> =>
      Promise.all(lab.backends.map(async (b) => (await lab.nexthops(b.role, 'default')).includes(lab.host(role).lanAddr)));

    /** Waits until the router and every backend have (or no longer have) `role` as a next hop; times in ms from now. */
    async function converge(role: string, present: boolean, timeoutMs = 20_000): Promise<{ routerMs: number; returnMs: number }> {
      const [routerMs, returnMs] = await Promise.all([
        waitUntil(`router ${present ? 'adding' : 'dropping'} ${role}`, async () => (await routerHas(role)) === present, timeoutMs, 25),
        waitUntil(`backends ${present ? 'adding' : 'dropping'} ${role}`, async () => (await backendsHave(role)).every((x) => x === present), timeoutMs, 25),
      ]);
      return { routerMs, returnMs };
    }

    before(async () => {
      lab = await startScaleout({ hosts: 3, backends: 3, family });
    });

    after(async () => {
      // eslint-disable-next-line no-console
      console.log(`scale-out figures (IPv${family}): ${JSON.stringify(figures)}`);
      await lab?.destroy();
    });

    test('every host publishes byte-identical rings and announces the VIP and the return route', async (t) => {
      await waitUntil('every peer answered', async () => [...(await states()).values()].every((s) => s.peers.every((p) => p.ageMs !== null && p.ageMs < 2_000)), 10_000, 200);
      const st = await states();
      const r = await ringsEqual();
      assert.ok(r.equal, `rings differ: ${JSON.stringify(r.digests)}`);
      for (const [role, s] of st) {
        assert.deepEqual(s.announced, { vips: [lab.vip], returnRoutes: [lab.returnRoute] }, role);
        assert.equal(Object.keys(s.rings).length, 1);
      }
      // One multipath route to the VIP on the router, through the three hosts' uplink addresses.
      const route = await lab.ip('r', [`-${family}`, 'route', 'show', lab.vip]);
      assert.equal(route.match(/nexthop via/g)?.length, 3, route);
      assert.deepEqual(await lab.nexthops('r', lab.vip), lab.hosts.map((h) => h.upAddr).sort(), route);
      t.diagnostic(`ring sha256 on all three hosts: ${[...st.values()][0]!.rings[`${addrPort(lab.vip, 8080)}/tcp`]}`);
    });

    // Not in the short IPv6 run (npm run test:scaleout-ipv6 runs it).
    if (full) test('one host alone sees a backend fail: the agreed health keeps the tables identical; a failure all see is agreed, and a host restarting then announces the agreed table', async (t) => {
      const b2 = backendIp('b2');
      // b2 drops lb1's probes only (data-plane packets carry the client's address and pass).
      await lab.exec('b2', 'nft', ['add', 'table', 'inet', 'probe']);
      await lab.exec('b2', 'nft', ['add', 'chain', 'inet', 'probe', 'in', '{ type filter hook input priority 0; policy accept; }']);
      await lab.exec('b2', 'nft', ['add', 'rule', 'inet', 'probe', 'in', nftIp, 'saddr', lab.host('lb1').lanAddr, 'tcp', 'dport', '8080', 'drop']);
      const seenMs = await waitUntil('lb1 sees b2 down', async () => (await lab.clusterState('lb1')).health[KEY(b2)] === false, 15_000, 100);
      t.diagnostic(`lb1's own checks see b2 down after ${seenMs} ms`);
      let samples = 0;
      const until = Date.now() + 5_000;
      while (Date.now() < until) {
        const st = await states();
        assert.equal(st.get('lb1')!.health[KEY(b2)], false, 'lb1 still sees b2 down');
        assert.equal(st.get('lb2')!.health[KEY(b2)], true);
        for (const [role, s] of st) assert.equal(s.agreed[KEY(b2)], true, `${role}: b2 is agreed up (one vote of three)`);
        const digests = new Set([...st.values()].map((s) => JSON.stringify(s.rings)));
        assert.equal(digests.size, 1, `tables differ while only lb1 sees b2 down: ${JSON.stringify([...st].map(([r, s]) => [r, s.rings]))}`);
        samples++;
        await sleep(250);
      }
      t.diagnostic(`${samples} samples over 5 s: rings identical on the three hosts, b2 agreed up`);
      figures.loneFailureSamplesIdentical = samples;

      // A failure every host sees (a table of its own, removed whatever happens below, so that a failure here
      // leaves the later cases their lab): agreed down everywhere; how long do the hosts' tables differ?
      await lab.exec('b2', 'nft', ['add', 'table', 'inet', 'probeall']);
      try {
        await lab.exec('b2', 'nft', ['add', 'chain', 'inet', 'probeall', 'in', '{ type filter hook input priority 0; policy accept; }']);
        await lab.exec('b2', 'nft', ['add', 'rule', 'inet', 'probeall', 'in', nftIp, 'saddr', lab.lanNet, 'tcp', 'dport', '8080', 'drop']);
        const t0 = Date.now();
        await waitUntil('b2 agreed down on every host with identical rings', async () => {
          const st = await states();
          const same = new Set([...st.values()].map((s) => JSON.stringify(s.rings))).size === 1;
          return same && [...st.values()].every((s) => s.agreed[KEY(b2)] === false);
        }, 20_000, 50);
        // When did each host publish the ring without b2? Its own log says (same clock: one machine). The API shows
        // the new ring as soon as it is in; the log line may come a moment later, so each is waited for.
        const agreedDown = (x: Record<string, unknown>): boolean => x.event === 'table_published' && String(x.reason).startsWith('cluster health') && String(x.reason).includes(`${addrPort(b2, 8080)}/tcp down`);
        const published = await Promise.all([...live].map(async (r) => (await lab.l4nats.get(r)!.waitForLog(agreedDown, 5_000).catch(() => undefined), logTime(r, agreedDown))));
        const lastRingEvents = (r: string): string => JSON.stringify(lab.l4nats.get(r)!.logs().filter((x) => x.event === 'table_published' || x.event === 'cluster_health').slice(-6).map((x) => `${x.event}: ${String(x.reason ?? x.changes)}`));
        assert.ok(published.every((x) => x !== undefined), `every host published the agreed verdict: ${JSON.stringify(published)}; their last ring events: ${[...live].map((r) => `${r} ${lastRingEvents(r)}`).join('; ')}`);
        const window = Math.max(...(published as number[])) - Math.min(...(published as number[]));
        t.diagnostic(`b2 down for everyone: agreed down everywhere within ${Date.now() - t0} ms; the hosts published the new ring ${window} ms apart (their tables differed for that long)`);
        figures.agreedDownDisagreementMs = window;

        // A host that restarts meanwhile takes traffic with the agreed table only: it announces the VIP after it
        // published the ring without b2, which its own checks, new, would still count in.
        const old = lab.l4nats.get('lb3')!;
        old.proc.kill('SIGTERM');
        live.delete('lb3');
        await old.proc.exited;
        const l4 = await lab.startL4nat('lb3');
        live.add('lb3');
        const announced = (x: Record<string, unknown>): boolean => x.event === 'bgp_announce' && Array.isArray(x.vips) && x.vips.length > 0;
        await l4.waitForLog(announced, 10_000, 'the restarted lb3 announcing the VIP');
        const recs = l4.logs();
        const announceAt = recs.findIndex(announced);
        const withoutB2At = recs.findIndex((x) => x.event === 'table_published' && String(x.reason).includes(`${addrPort(b2, 8080)}/tcp down`));
        const order = recs.filter((x) => x.event === 'table_published' || x.event === 'bgp_announce' || x.event === 'cluster_health').map((x) => `${x.event}: ${String(x.reason ?? x.changes ?? x.vips)}`);
        t.diagnostic(`lb3 restarted while b2 is agreed down: ${JSON.stringify(order)}`);
        assert.ok(withoutB2At >= 0 && withoutB2At < announceAt, `lb3 published the ring without b2 before it announced the VIP: ${JSON.stringify(order)}`);
      } finally {
        // Back: drop the "everyone" rule, keep lb1's (the failure runs below go on with lb1 alone seeing b2 down).
        await lab.exec('b2', 'nft', ['delete', 'table', 'inet', 'probeall']);
      }
      await waitUntil('b2 agreed up again', async () => [...(await states()).values()].every((s) => s.agreed[KEY(b2)] === true), 20_000, 100);
      const r = await ringsEqual();
      assert.ok(r.equal, JSON.stringify(r.digests));
    });

    // Not in the short IPv6 run (npm run test:scaleout-ipv6 runs it).
    if (full) test('no healthy backend: every host withdraws the VIP (the router loses it) and announces it again on recovery', async (t) => {
      // Every backend drops every host's probes (data-plane packets still pass): agreed down everywhere.
      for (const b of lab.backends) {
        await lab.exec(b.role, 'nft', ['add', 'table', 'inet', 'alldown']);
        await lab.exec(b.role, 'nft', ['add', 'chain', 'inet', 'alldown', 'in', '{ type filter hook input priority 0; policy accept; }']);
        await lab.exec(b.role, 'nft', ['add', 'rule', 'inet', 'alldown', 'in', nftIp, 'saddr', lab.lanNet, 'tcp', 'dport', '8080', 'drop']);
      }
      const t0 = Date.now();
      const goneMs = await waitUntil('the router without a route to the VIP', async () => (await lab.nexthops('r', lab.vip)).length === 0 && !(await lab.ip('r', [`-${family}`, 'route'])).includes(lab.vip), 20_000, 50);
      for (const [role, s] of await states()) {
        assert.deepEqual(s.announced.vips, [], `${role} withdrew the VIP`);
        assert.deepEqual(s.announced.returnRoutes, [lab.returnRoute], `${role} keeps its return route`);
      }
      for (const b of lab.backends) await lab.exec(b.role, 'nft', ['delete', 'table', 'inet', 'alldown']);
      const backMs = await waitUntil('the VIP announced by the three hosts again', async () => (await lab.nexthops('r', lab.vip)).length === 3, 20_000, 50);
      // A host announces again with its first healthy backend; the others rise one by one and are agreed by vote,
      // so for a moment the hosts' rings may differ. They must converge.
      let last: Record<string, string> = {};
      const sameMs = await waitUntil('identical rings on the three hosts', async () => {
        const r = await ringsEqual();
        last = r.digests;
        return r.equal;
      }, 10_000, 100).catch((e: Error) => {
        throw new Error(`${e.message}: ${JSON.stringify(last)}`);
      });
      t.diagnostic(`all backends failing their checks: VIP gone from the router ${goneMs} ms after the probes were dropped; back on three next hops ${backMs} ms after they passed again (checks every 0.5 s, fall 2, rise 2); rings identical again ${sameMs} ms after that`);
      figures.allDown = { withdrawnMs: goneMs, reannouncedMs: backMs, ringsIdenticalMs: sameMs, totalMs: Date.now() - t0 };
    });

    test(`${STREAMS} long-lived connections: SIGKILL one l4nat, add it back, cut another host's uplink, restore it: ≥ 99% continue each time`, async (t) => {
      const streams: StreamRun = startStreams(lab, { target: lab.vip, streams: STREAMS, durationMs: 150_000, intervalMs: 100, chunkBytes: 512, stallMs: 25_000, connTimeoutMs: 10_000 });
      try {
        assert.deepEqual(await streams.streaming, { established: STREAMS, failed: 0 });
        const spread: Record<string, number> = {};
        for (const h of lab.hosts) spread[h.role] = (await lab.admin(h.role, 'GET', '/v1/services')).body.dataplane.counters.flow_new ?? 0;
        t.diagnostic(`new flows per host: ${JSON.stringify(spread)}`);
        figures.newFlowsPerHost = spread;
        for (const h of lab.hosts) assert.ok(spread[h.role]! >= STREAMS / 6, `ECMP spreads the connections: ${JSON.stringify(spread)}`);

        const phase = async (name: string, act: () => Promise<{ routerMs: number; returnMs: number }>): Promise<void> => {
          const t0 = Date.now();
          const conv = await act();
          const atConv = await streams.status();
          await sleep(5_000);
          const later = await streams.status();
          const p = progressed(atConv, later);
          const rings = await ringsEqual();
          t.diagnostic(`${name}: router ${conv.routerMs} ms, return path ${conv.returnMs} ms; ${p.ok}/${STREAMS} connections continue (failed ${JSON.stringify(p.failed.slice(0, 5))}, stalled ${p.stalled.length}); live hosts' rings identical: ${rings.equal}`);
          figures[name] = { routerMs: conv.routerMs, returnMs: conv.returnMs, continuing: p.ok, of: STREAMS };
          assert.ok(rings.equal, JSON.stringify(rings.digests));
          // On a failure, what moved the rings meanwhile (a health verdict agreed during the step moves flows' slots).
          const ringEvents = (): string =>
            JSON.stringify([...lab.l4nats].map(([r, l4]) => [r, l4.logs().filter((x) => (x.event === 'cluster_health' || x.event === 'table_published') && (x.time as number) >= t0).map((x) => `${x.event}: ${String(x.reason ?? x.changes)}`)]));
          assert.ok(p.ok >= Math.ceil(STREAMS * 0.99), `${name}: only ${p.ok}/${STREAMS} continue; failed ${JSON.stringify(p.failed)}, stalled ${p.stalled.join(',')}; ring events since the step began: ${ringEvents()}`);
        };

        await phase('sigkill', async () => {
          const l4 = lab.l4nats.get('lb3')!;
          const c = converge('lb3', false);
          l4.proc.kill('SIGKILL');
          live.delete('lb3');
          const conv = await c;
          assert.match(await lab.ip('lb3', ['link', 'show', 'l4nat0']), /NO-CARRIER/, 'the persistent TUN has no carrier without a reader');
          assert.ok(lab.bird('lb3')?.running, "lb3's BIRD still runs");
          const include = readFileSync(lab.host('lb3').includeFile, 'utf8');
          assert.ok(include.includes(`route ${lab.vip}/${family === 6 ? 128 : 32} via "l4nat0"`), `nobody rewrote the include: check link withdrew the VIP\n${include}`);
          return conv;
        });
        await phase('readd', async () => {
          const t0 = Date.now();
          const c = converge('lb3', true, 40_000);
          await lab.startL4nat('lb3');
          const readyMs = Date.now() - t0;
          live.add('lb3');
          const conv = await c;
          t.diagnostic(`readd: l4nat ready after ${readyMs} ms; router and return path follow ${conv.routerMs - readyMs} / ${conv.returnMs - readyMs} ms after ready`);
          return conv;
        });
        await phase('linkcut', async () => {
          const c = converge('lb2', false);
          await lab.cutUplink('lb2');
          live.delete('lb2'); // still runs, but is out of the cluster's traffic
          return c;
        });
        await phase('linkrestore', async () => {
          const c = converge('lb2', true, 40_000);
          await lab.restoreUplink('lb2');
          live.add('lb2');
          return c;
        });
        // Steps 5-7 run in the full runs only (every IPv4 run; IPv6 with L4NAT_SCALEOUT_IPV6=full).
        if (full) {
          // BIRD restarts under l4nat: the include file it reads at start still says what l4nat wants.
          await phase('birdrestart', async () => {
            const gone = converge('lb2', false);
            await lab.bird('lb2')!.stop({ signal: 'SIGTERM', timeoutMs: 5_000 });
            const down = await gone;
            const back = converge('lb2', true, 40_000);
            await lab.startBird('lb2');
            const up = await back;
            t.diagnostic(`birdrestart: lb2 withdrawn ${down.routerMs} ms after its BIRD stopped; announced again ${up.routerMs} ms after it started`);
            return up;
          });
          // A graceful stop withdraws first, then waits withdraw_delay, then the grace period.
          await phase('sigterm', async () => {
            const l4 = lab.l4nats.get('lb3')!;
            const c = converge('lb3', false);
            const t0 = Date.now();
            l4.proc.kill('SIGTERM');
            live.delete('lb3');
            const conv = await c;
            const st = await l4.proc.exited;
            const exitMs = Date.now() - t0;
            assert.equal(st.code, 0, l4.proc.tail());
            assert.ok(conv.routerMs < exitMs, 'the router moved before l4nat stopped forwarding');
            const quiesced = logTime('lb3', (x) => String(x.msg).startsWith('stopping: admitting no new flows'));
            const withdrawn = logTime('lb3', (x) => x.event === 'bgp_withdrawn');
            assert.ok(withdrawn !== undefined && (quiesced === undefined || withdrawn <= quiesced), 'withdrawn before the rings were emptied');
            t.diagnostic(`sigterm: router dropped lb3 after ${conv.routerMs} ms, l4nat exited after ${exitMs} ms (withdraw_delay 1 s, shutdown_grace 2 s)`);
            return conv;
          });
          await phase('readd2', async () => {
            const c = converge('lb3', true, 40_000);
            await lab.startL4nat('lb3');
            live.add('lb3');
            return c;
          });
        }
      } finally {
        streams.stop();
      }
      const rep = await streams.result;
      t.diagnostic(`end of run: ${rep.ok}/${STREAMS} connections ok, errors ${JSON.stringify(rep.errors)}`);
      figures.endOfRun = { ok: rep.ok, errors: rep.errors };
      assert.ok(rep.ok >= Math.ceil(STREAMS * 0.99), JSON.stringify(rep.errors));
    });
  });
}
