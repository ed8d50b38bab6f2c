// The queue-steering policy of the Balancer (src/daemon/up.ts), with a fake data plane and host set-up (no root): with more
// than one queue a steering program that cannot be attached is an error — it rejects the update, changing nothing,
// and the next update tries again (it used to be a warning, after which l4nat never tried again) — and the program
// for a new VIP set goes in before the table that uses it. One queue needs no program.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import pino from 'pino';
import type { HostSetup } from '../src/host/setup';
import { DEFAULT_TIMEOUTS, type ServiceSpec } from '../src/config/model';
import type { Dataplane } from '../src/dataplane/native';
import type { TablesInput } from '../src/dataplane/tables';
import { Balancer } from '../src/control/balancer';
import { EnvironmentError } from '../src/host/environment-error';

const log = pino({ level: 'silent' });
const opts = { hashKey: Buffer.alloc(16, 1), maglevSize: 7, timeouts: { ...DEFAULT_TIMEOUTS }, icmpEcho: true, icmpTranslate: true };
const svc = (vip: string, port = 80): ServiceSpec => ({ vip, family: 4, port, proto: 'tcp', hash: '5tuple', backends: [{ addr: `10.0.1.${vip.split('.')[3]}`, family: 4, port: 8000 + port, weight: 1 }] });

/** Records the order of steering and publishing; `refuse` makes the next setSteering calls throw. */
function fakes(queues: number): { dp: Dataplane; host: HostSetup; calls: string[]; refuse: { n: number; code: string } } {
  const calls: string[] = [];
  const refuse = { n: 0, code: 'EPERM' };
  const dp = {
    queues,
    opts: { maxServices: 16, maxBackends: 16 },
    setSteering(vips: readonly string[] | null) {
      if (refuse.n > 0) {
        refuse.n--;
        const e = new Error('attach the steering program: bpf(BPF_PROG_LOAD) failed: Operation not permitted') as NodeJS.ErrnoException;
        e.code = refuse.code;
        throw e;
      }
      calls.push(`steer ${vips === null ? 'none' : vips.join(',')}`);
    },
    publish(t: TablesInput) {
      calls.push(`publish ${t.svcWords.length > 0 ? 'tables' : 'empty'}`);
    },
  } as unknown as Dataplane;
  const host = { apply: async () => undefined } as unknown as HostSetup;
  return { dp, host, calls, refuse };
}

test('2 queues: the program for the VIP set goes in before the table, and only when the VIP set changes', async () => {
  const f = fakes(2);
  const b = new Balancer(f.dp, f.host, opts, log);
  await b.setServices([svc('10.0.0.2'), svc('10.0.0.1')]);
  await b.setServices([svc('10.0.0.2'), svc('10.0.0.1', 81), svc('10.0.0.1')]); // same VIPs: not rebuilt
  await b.setServices([svc('10.0.0.3')]);
  assert.deepEqual(f.calls, ['steer 10.0.0.1,10.0.0.2', 'publish tables', 'publish tables', 'steer 10.0.0.3', 'publish tables']);
});

test('2 queues: a refused program rejects the first table (an error naming the remedies) and every update until one attaches it', async () => {
  const f = fakes(2);
  const b = new Balancer(f.dp, f.host, opts, log);
  f.refuse.n = 1;
  await assert.rejects(b.setServices([svc('10.0.0.1')]), (e: Error & { code?: string }) => {
    assert.ok(e instanceof EnvironmentError);
    assert.equal(e.code, 'EPERM');
    assert.match(e.message, /^queue steering: attach the steering program: bpf\(BPF_PROG_LOAD\) failed: Operation not permitted\. With 2 queues l4nat needs its steering program/);
    assert.match(e.message, /grant CAP_BPF and allow the bpf\(\) system call .*SystemCallFilter=@system-service bpf.*, or run with one queue \(--queues 1, global\.queues: 1\)$/);
    return true;
  });
  assert.deepEqual(f.calls, [], 'nothing published');
  assert.equal(b.current.length, 0);
  await b.setServices([svc('10.0.0.1')]); // tried again
  assert.deepEqual(f.calls, ['steer 10.0.0.1', 'publish tables']);
  f.refuse.n = 1;
  f.refuse.code = 'E2BIG';
  await assert.rejects(b.setServices([svc('10.0.0.1'), svc('10.0.0.9')]), (e: Error) => !/CAP_BPF/.test(e.message) && /run with one queue/.test(e.message));
  assert.deepEqual(b.current.map((s) => s.vip), ['10.0.0.1'], 'the rejected update changed nothing');
  assert.deepEqual(f.calls, ['steer 10.0.0.1', 'publish tables']);
  await b.setServices([svc('10.0.0.1'), svc('10.0.0.9')]);
  assert.deepEqual(f.calls.slice(2), ['steer 10.0.0.1,10.0.0.9', 'publish tables']);
});

test('2 queues: a table the data plane refuses after the new program went in puts the previous program back', async () => {
  const f = fakes(2);
  const b = new Balancer(f.dp, f.host, opts, log);
  await b.setServices([svc('10.0.0.1')]);
  const publish = f.dp.publish.bind(f.dp);
  f.dp.publish = () => {
    throw new RangeError('table refused');
  };
  await assert.rejects(b.setServices([svc('10.0.0.5')]), /table refused/);
  f.dp.publish = publish;
  assert.deepEqual(f.calls, ['steer 10.0.0.1', 'publish tables', 'steer 10.0.0.5', 'steer 10.0.0.1']);
});

test('1 queue: no steering program, nothing to refuse', async () => {
  const f = fakes(1);
  f.refuse.n = 5;
  const b = new Balancer(f.dp, f.host, opts, log);
  await b.setServices([svc('10.0.0.1')]);
  assert.deepEqual(f.calls, ['publish tables']);
});
