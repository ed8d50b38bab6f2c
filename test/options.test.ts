// One error per bad option value, worded once for where it was given (src/config/options.ts Subject): the same
// address parsers serve the flags, the config file, the admin API and the CLI's arguments, and each error names the
// value as the user wrote it there. No root needed.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import pino from 'pino';
import { createAdminServer } from '../src/admin/server';
import { backendIdArg, serviceIdArg } from '../src/cli/commands';
import { parseUpArgs } from '../src/cli/up-args';
import { ConfigError, parseConfig } from '../src/config/load';
import { OptionError, Subject } from '../src/config/options';
import type { Controller } from '../src/control/controller';

const SYNTAX = 'ADDR[:PORT][@WEIGHT] (IPv6 as [ADDR]:PORT), not an IP address: "example.com:80"';

function thrown(f: () => unknown): Error {
  try {
    f();
  } catch (e) {
    return e as Error;
  }
  throw new Error('nothing thrown');
}

function configIssues(text: string): string[] {
  const e = thrown(() => parseConfig(text, 'test.yaml'));
  assert.ok(e instanceof ConfigError, String(e));
  return e.issues;
}

test('a subject words its errors as its place reads: flags and fields "expect", config keys report got/expected', () => {
  assert.equal(Subject.flag('queues').expected('a whole number from 1 to 256', '"two"').message, '--queues expects a whole number from 1 to 256, got "two"');
  assert.equal(Subject.named('body/backend').expects('ADDR'), 'body/backend expects ADDR');
  assert.equal(Subject.key('global.queues').expected('a whole number from 1 to 256', '"two"').message, 'global.queues: got "two", expected a whole number from 1 to 256');
  assert.equal(Subject.key('services[0].backends[1]').expects('ADDR'), 'services[0].backends[1]: expected ADDR');
  assert.equal(Subject.flag('backend').error('10.0.1.1 is given twice').message, '--backend 10.0.1.1 is given twice');
  assert.equal(Subject.key('cluster.peers[0]').error('got "x", nope').message, 'cluster.peers[0]: got "x", nope');
  assert.ok(Subject.flag('x').expected('y', 'z') instanceof OptionError);
});

test('one bad backend, one parser: the flag, the config key, the API field and the CLI argument each named as given', async () => {
  const flag = thrown(() => parseUpArgs(['--vip', '10.0.0.10', '--port', '80', '--backend', 'example.com:80']));
  assert.ok(flag instanceof OptionError);
  assert.equal(flag.message, `--backend expects ${SYNTAX}`);

  const file = configIssues('services:\n  - {name: a, vips: [10.0.0.1], ports: [80], backends: ["10.0.1.1", "example.com:80"]}');
  assert.deepEqual(file, [`services[0].backends[1]: expected ${SYNTAX} (line 2, column 69)`]);

  const arg = thrown(() => backendIdArg('example.com:80', '10.0.0.10:80/tcp'));
  assert.ok(arg instanceof OptionError);
  assert.equal(arg.message, `BACKEND expects ${SYNTAX}`);

  // The admin API parses the body before it asks the controller for anything but the service.
  const ctrl = { token: undefined, opts: { admin: {} }, serviceById: () => ({ port: 80 }) } as unknown as Controller;
  const app = await createAdminServer({ ctrl, admin: { listen: '127.0.0.1', port: 0, insecureNoAuth: true }, log: pino({ level: 'silent' }) });
  try {
    const r = await app.inject({ method: 'POST', url: `/v1/services/${encodeURIComponent('10.0.0.10:80/tcp')}/backends`, payload: { backend: 'example.com:80' } });
    assert.equal(r.statusCode, 400, r.body);
    assert.deepEqual(r.json(), { error: `body/backend expects ${SYNTAX}` });
  } finally {
    await app.close();
  }
});

test('one bad address, one parser: --vip, a service VIP and a backend address in the file', () => {
  const flag = thrown(() => parseUpArgs(['--vip', '10.0.0.300', '--port', '80', '--backend', '10.0.1.1']));
  assert.equal(flag.message, '--vip expects an IPv4 or IPv6 address (no brackets, no prefix), got "10.0.0.300"');
  const file = configIssues('services:\n  - {name: a, vips: [10.0.0.300], ports: [80], backends: [{address: "10.0.1.300"}]}');
  assert.deepEqual(file, [
    'services[0].vips[0]: got "10.0.0.300", expected an IPv4 or IPv6 address (no brackets, no prefix) (line 2, column 22)',
    'services[0].backends[0].address: got "10.0.1.300", expected an IPv4 or IPv6 address (no brackets, no prefix) (line 2, column 69)',
  ]);
});

test('SERVICE names itself, not --backend, when its address is no IP address or its port is out of range', () => {
  for (const bad of ['999.0.0.1:80', '10.0.0.1:0', '10.0.0.1:70000/udp']) {
    assert.throws(() => serviceIdArg(bad), (e: unknown) => e instanceof OptionError && e.message === `SERVICE expects VIP:PORT[/tcp|udp] (IPv6 as [VIP]:PORT), got "${bad}"`);
  }
  assert.equal(serviceIdArg('[10.0.0.1]:80'), '10.0.0.1:80/tcp');
});
