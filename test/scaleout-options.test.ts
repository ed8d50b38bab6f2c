// The scale-out rigs' own inputs, no root needed: which IPv6 runs the lab tests make (L4NAT_SCALEOUT_IPV6), the
// change report's arguments, the lab's options and its family-correct address formatting.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { addrPort, createScaleoutLab, scaleoutIpv6Run } from './rigs/scaleout';
import { parseReportArgs } from './rigs/scaleout-change-report';

test('L4NAT_SCALEOUT_IPV6: short by default, full or only; anything else is refused by name', () => {
  assert.equal(scaleoutIpv6Run({}), 'short');
  assert.equal(scaleoutIpv6Run({ L4NAT_SCALEOUT_IPV6: 'full' }), 'full');
  assert.equal(scaleoutIpv6Run({ L4NAT_SCALEOUT_IPV6: 'only' }), 'only');
  assert.throws(() => scaleoutIpv6Run({ L4NAT_SCALEOUT_IPV6: 'yes' }), /L4NAT_SCALEOUT_IPV6 must be short, full or only, got "yes"/);
});

test('report:scaleout-change arguments: --runs N and --family 4|6', () => {
  assert.deepEqual(parseReportArgs([]), { runs: 1, family: 4 });
  assert.deepEqual(parseReportArgs(['--family', '6', '--runs', '3']), { runs: 3, family: 6 });
  assert.throws(() => parseReportArgs(['--family', '5']), /expected --runs N \(1-99\) or --family 4\|6, got "--family 5"/);
});

test('the lab refuses a family other than 4 or 6 before creating anything; IPv6 addresses go in brackets with a port', async () => {
  await assert.rejects(createScaleoutLab({ family: 5 as 4 }), /family must be 4 or 6, got 5/);
  assert.equal(addrPort('fd00:210::1', 9181), '[fd00:210::1]:9181');
  assert.equal(addrPort('10.210.0.1', 9181), '10.210.0.1:9181');
});
