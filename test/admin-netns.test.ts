// The admin API seen from another host (the lab's client namespace). Default (flags): it listens on loopback
// only, so the client cannot connect at all, and even on loopback it wants the token l4nat created. From a config with a non-loopback address, TLS and a bearer token:
// plain HTTP fails, HTTPS without the token gets 401 and no backend detail, with the token 200. Root-only.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { adminRequest, DEFAULT_ADMIN_TOKEN_FILE } from '../src/lab/admin-client';
import type { Lab } from '../src/lab/lab';
import { configText, withLab } from './rigs/fixture';
import { skipUnless } from './rigs/requirements';

const SCRIPT = `
  const [url, ca, token] = process.argv.slice(1);
  const mod = url.startsWith('https:') ? require('https') : require('http');
  const req = mod.request(url, { ca: ca ? require('fs').readFileSync(ca) : undefined, headers: token ? { authorization: 'Bearer ' + token } : {}, timeout: 3000 }, (res) => {
    let body = '';
    res.on('data', (c) => (body += c));
    res.on('end', () => console.log(JSON.stringify({ status: res.statusCode, body })));
  });
  req.on('timeout', () => req.destroy(new Error('timeout')));
  req.on('error', (e) => console.log(JSON.stringify({ error: e.code || e.message })));
  req.end();`;

async function fromClient(lab: Lab, url: string, ca = '', token = ''): Promise<{ status?: number; body?: string; error?: string }> {
  const r = await lab.exec('client', process.execPath, ['-e', SCRIPT, url, ca, token]);
  return JSON.parse(r.stdout.trim()) as { status?: number; body?: string; error?: string };
}

test('admin API: loopback only by default; on another address TLS + bearer token, 401 without it, nothing leaked', { skip: skipUnless(), timeout: 120_000 }, async () => {
  await withLab({ backends: 1, ipv6: false }, async ({ lab, dir, start, startFromConfig }) => {
    const lbAddr = lab.client.lbIpv4;
    // Default: flags, loopback. The client cannot reach it through the LB's address.
    let l4 = await start({ ports: ['8080/tcp'] });
    // Even there, only with the token l4nat created (owner-only) in its state directory.
    const local = await lab.exec('lb', process.execPath, ['-e', SCRIPT, 'http://127.0.0.1:9180/v1/services', '', '']);
    assert.equal(JSON.parse(local.stdout).status, 401);
    assert.equal(statSync(DEFAULT_ADMIN_TOKEN_FILE).mode & 0o777, 0o600);
    assert.equal((await adminRequest(lab, 'GET', '/v1/services')).status, 200);
    assert.deepEqual(await fromClient(lab, `http://${lbAddr}:9180/v1/services`), { error: 'ECONNREFUSED' });
    assert.equal((await l4.stop()).code, 0);

    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', 'srv.key', '-out', 'srv.pem', '-days', '1', '-subj', `/CN=${lbAddr}`, '-addext', `subjectAltName=IP:${lbAddr}`], { cwd: dir, stdio: 'ignore' });
    const token = 'a-long-enough-admin-token-0123456789';
    writeFileSync(join(dir, 'token'), `${token}\n`, { mode: 0o600 });
    l4 = await startFromConfig(configText({
      admin: { listen: lbAddr, port: 9443, token_file: join(dir, 'token'), tls: { cert: join(dir, 'srv.pem'), key: join(dir, 'srv.key') } },
      services: [{ name: 'web', vips: [lab.vip4], ports: [8080], backends: [`${lab.backend('b1').ipv4}:8080`] }],
    }));
    const plain = await fromClient(lab, `http://${lbAddr}:9443/v1/services`);
    assert.ok(plain.error !== undefined || plain.status === 400, `plain HTTP: ${JSON.stringify(plain)}`);
    for (const path of ['/v1/services', '/metrics', '/openapi.json']) {
      const no = await fromClient(lab, `https://${lbAddr}:9443${path}`, join(dir, 'srv.pem'));
      assert.equal(no.status, 401, JSON.stringify(no));
      assert.doesNotMatch(no.body ?? '', /10\.201\.|backend/);
      const wrong = await fromClient(lab, `https://${lbAddr}:9443${path}`, join(dir, 'srv.pem'), 'not-the-token-not-the-token');
      assert.equal(wrong.status, 401);
    }
    const ok = await fromClient(lab, `https://${lbAddr}:9443/v1/services`, join(dir, 'srv.pem'), token);
    assert.equal(ok.status, 200);
    assert.match(ok.body ?? '', new RegExp(lab.backend('b1').ipv4.replace(/\./g, '\\.')));
    assert.equal((await l4.stop()).code, 0);
  });
});
