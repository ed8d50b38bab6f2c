// Wires a planned lab (lab-plan.ts) into the namespaces lab.ts created for it: loopback, sysctls, veths, addresses
// and routes, and in a routed lab the client ⇄ r2 ⇄ r1 ⇄ lb chain. Each step is announced to onStep first.
// Layers: netns.ts (one command per helper), lab-plan.ts → this file → lab.ts.
import { ROUTED_LB_IPV4, ROUTED_LB_IPV6, type LabEndpoint, type LabHost, type LabPlan, type LabRouter } from './lab-plan';
import { addrAdd, linkUp, routeAdd, sysctlSet, vethPair } from './netns';

/** Everything after the namespaces, step by step; any failure propagates (createLab() then destroys). */
export async function wireLab(lab: LabPlan, onStep: (step: string) => Promise<void>): Promise<void> {
  const hosts: LabHost[] = [lab.client, lab.lb, ...lab.backends, ...lab.routers];
  const routed = lab.routers.length > 0;
  // In a routed lab the client's link ends at r2, not at the lb (see the picture at the top of lab.ts).
  const endpoints: LabEndpoint[] = routed ? [...lab.backends] : [lab.client, ...lab.backends];

  await onStep('loopback');
  await Promise.all(hosts.map((h) => linkUp(h.ns, 'lo')));

  await onStep('sysctls');
  await Promise.all(
    hosts.map((h) =>
      sysctlSet(h.ns, {
        'net.ipv4.conf.all.rp_filter': 1,
        'net.ipv4.conf.default.rp_filter': 1,
        // Links come up at once: no duplicate address detection on the veths' link-local addresses either.
        ...(lab.ipv6 ? { 'net.ipv6.conf.all.accept_dad': 0, 'net.ipv6.conf.default.accept_dad': 0 } : {}),
      }),
    ),
  );

  await onStep('links');
  for (const e of endpoints) {
    await vethPair({ ns: lab.lb.ns, name: e.lbDev }, { ns: e.ns, name: e.dev });
  }
  if (routed) await wireRouterLinks(lab);

  await onStep('addresses');
  await Promise.all(
    endpoints.map(async (e) => {
      await addrAdd(e.ns, e.dev, `${e.ipv4}/24`);
      await addrAdd(lab.lb.ns, e.lbDev, `${e.lbIpv4}/24`);
      if (lab.ipv6) {
        await addrAdd(e.ns, e.dev, `${e.ipv6}/64`, { nodad: true });
        await addrAdd(lab.lb.ns, e.lbDev, `${e.lbIpv6}/64`, { nodad: true });
      }
    }),
  );

  await onStep('routes');
  await Promise.all(
    [...endpoints, ...(routed ? [lab.client] : [])].map(async (e) => {
      await routeAdd(e.ns, 'default', e.lbIpv4, { dev: e.dev });
      if (lab.ipv6) await routeAdd(e.ns, 'default', e.lbIpv6!, { dev: e.dev });
    }),
  );
  if (routed) await routeRouters(lab);
  await onStep('done');
}

/** The client ⇄ r2 ⇄ r1 ⇄ lb chain: veths (the r2 ⇄ r1 one narrow), addresses, forwarding. */
async function wireRouterLinks(lab: LabPlan): Promise<void> {
  const [r1, r2] = lab.routers as [LabRouter, LabRouter];
  const c = lab.client;
  await vethPair({ ns: r2.ns, name: c.lbDev }, { ns: c.ns, name: c.dev });
  await vethPair({ ns: r2.ns, name: 'r1' }, { ns: r1.ns, name: 'r2' }, { mtu: lab.middleHopMtu! });
  await vethPair({ ns: lab.lb.ns, name: c.lbDev }, { ns: r1.ns, name: 'lb' });
  const v6 = lab.ipv6;
  await addrAdd(c.ns, c.dev, `${c.ipv4}/24`);
  await addrAdd(r2.ns, c.lbDev, `${r2.downIpv4}/24`);
  await addrAdd(r2.ns, 'r1', `${r2.upIpv4}/24`);
  await addrAdd(r1.ns, 'r2', `${r1.downIpv4}/24`);
  await addrAdd(r1.ns, 'lb', `${r1.upIpv4}/24`);
  await addrAdd(lab.lb.ns, c.lbDev, `${ROUTED_LB_IPV4}/24`);
  if (v6) {
    await addrAdd(c.ns, c.dev, `${c.ipv6}/64`);
    await addrAdd(r2.ns, c.lbDev, `${r2.downIpv6}/64`);
    await addrAdd(r2.ns, 'r1', `${r2.upIpv6}/64`);
    await addrAdd(r1.ns, 'r2', `${r1.downIpv6}/64`);
    await addrAdd(r1.ns, 'lb', `${r1.upIpv6}/64`);
    await addrAdd(lab.lb.ns, c.lbDev, `${ROUTED_LB_IPV6}/64`);
  }
  for (const r of lab.routers) {
    await sysctlSet(r.ns, { 'net.ipv4.ip_forward': 1, ...(v6 ? { 'net.ipv6.conf.all.forwarding': 1 } : {}) });
  }
}

/** The routes of the chain: r2 defaults to r1, r1 to the lb, and the lb reaches the client's subnet via r1. */
async function routeRouters(lab: LabPlan): Promise<void> {
  const [r1, r2] = lab.routers as [LabRouter, LabRouter];
  const v6 = lab.ipv6;
  await routeAdd(r2.ns, 'default', r1.downIpv4, { dev: 'r1' });
  await routeAdd(r1.ns, '10.201.0.0/24', r2.upIpv4, { dev: 'r2' });
  await routeAdd(r1.ns, 'default', ROUTED_LB_IPV4, { dev: 'lb' });
  await routeAdd(lab.lb.ns, '10.201.0.0/24', r1.upIpv4, { dev: lab.client.lbDev });
  if (v6) {
    await routeAdd(r2.ns, 'default', r1.downIpv6!, { dev: 'r1' });
    await routeAdd(r1.ns, 'fd4c::/64', r2.upIpv6!, { dev: 'r2' });
    await routeAdd(r1.ns, 'default', ROUTED_LB_IPV6, { dev: 'lb' });
    await routeAdd(lab.lb.ns, 'fd4c::/64', r1.upIpv6!, { dev: lab.client.lbDev });
  }
}
