// The TUN MTU rule (src/host/link-mtu.ts) and the host's own addresses as the data plane gets them
// (src/host/local-addrs.ts, src/dataplane/tables.ts localAddressInput). Pure functions over rtnetlink messages; no root.
// The run-time following is tested in test/pmtu-netns.test.ts.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { rt } from 'netlink';
import { AF_INET, AF_INET6 } from '../src/host/addr';
import { addressChanges, localAddressesOf, sameLocalAddresses } from '../src/host/local-addrs';
import { smallestMtu } from '../src/host/link-mtu';
import { localAddressInput } from '../src/dataplane/tables';

function link(ifname: string, mtu: number, flags: { up?: boolean; loopback?: boolean } = { up: true }): rt.LinkMessage {
  return { kind: 'link', data: { index: 1, flags }, attrs: { ifname, mtu } } as unknown as rt.LinkMessage;
}

function addr(family: number, o: { address?: number[]; local?: number[] }): rt.AddressMessage {
  const attrs: Record<string, Buffer> = {};
  if (o.address) attrs.address = Buffer.from(o.address);
  if (o.local) attrs.local = Buffer.from(o.local);
  return { kind: 'address', data: { family, index: 2, prefixlen: 24 }, attrs } as unknown as rt.AddressMessage;
}

test('smallestMtu: the smallest MTU of the other up, non-loopback links, named, at least 1280', () => {
  const links = [link('lo', 65536, { up: true, loopback: true }), link('eth0', 1500), link('wg0', 1420), link('l4nat0', 1280), link('eth1', 9000)];
  assert.deepEqual(smallestMtu(links, 'l4nat0'), { mtu: 1420, link: 'wg0' });
  assert.deepEqual(smallestMtu([...links, link('ppp0', 1492)], 'l4nat0'), { mtu: 1420, link: 'wg0' });
  assert.deepEqual(smallestMtu([...links, link('down0', 1000, { up: false })], 'l4nat0'), { mtu: 1420, link: 'wg0' }, 'a link that is down does not count');
  assert.deepEqual(smallestMtu([...links, link('tiny', 576)], 'l4nat0'), { mtu: 1280, link: 'tiny' }, 'never below the IPv6 minimum');
  assert.deepEqual(smallestMtu([link('lo', 65536, { up: true, loopback: true }), link('l4nat0', 1400)], 'l4nat0'), { mtu: 1500, link: null }, 'no other link: 1500');
});

test('localAddressesOf: IFA_LOCAL before IFA_ADDRESS (a point-to-point link names its peer in IFA_ADDRESS), both families, each once, sorted', () => {
  const msgs = [
    addr(AF_INET, { address: [10, 201, 0, 1], local: [10, 201, 0, 1] }),
    addr(AF_INET, { address: [100, 64, 0, 1], local: [100, 64, 0, 5] }), // PPPoE: peer 100.64.0.1
    addr(AF_INET, { local: [10, 77, 1, 1] }),
    addr(AF_INET, { address: [10, 201, 0, 1], local: [10, 201, 0, 1] }), // the same address on another link
    addr(AF_INET6, { address: [0xfd, 0x4c, ...Array(13).fill(0), 1] }),
    addr(AF_INET6, { address: [0xfe, 0x80, ...Array(13).fill(0), 7] }),
    addr(AF_INET, { address: [1, 2, 3] }), // malformed: ignored
  ];
  const l = localAddressesOf(msgs);
  assert.deepEqual(l, { v4: ['10.201.0.1', '10.77.1.1', '100.64.0.5'], v6: ['fd4c::1', 'fe80::7'] });
  assert.ok(sameLocalAddresses(l, localAddressesOf([...msgs].reverse())), 'the order of the dump does not matter');
  const more = localAddressesOf([...msgs, addr(AF_INET, { local: [192, 0, 2, 9] })]);
  assert.ok(!sameLocalAddresses(l, more));
  assert.deepEqual(addressChanges(l, more), { added: ['192.0.2.9'], removed: [] });
  assert.deepEqual(addressChanges(more, l), { added: [], removed: ['192.0.2.9'] });
});

test('localAddressInput: 4 bytes per IPv4 address, 16 per IPv6 address, in order (native/core/tables.h local_addrs4/6)', () => {
  const t = localAddressInput({ v4: ['10.201.0.1', '10.77.1.1'], v6: ['fd4c::1'] });
  assert.deepEqual([...t.localAddrs4!], [10, 201, 0, 1, 10, 77, 1, 1]);
  assert.deepEqual([...t.localAddrs6!], [0xfd, 0x4c, ...Array(13).fill(0), 1]);
  const none = localAddressInput({ v4: [], v6: [] });
  assert.equal(none.localAddrs4!.length + none.localAddrs6!.length, 0);
});
