// GET /v1/cluster: every host's view side by side as this host has it (src/cluster/view.ts; `l4nat cluster status`).
// The peers' parts are their last answers over the health-agreement channel, with their age: nothing is fetched per
// request. Authenticated like every route (the server's onRequest hook runs first).
import type { FastifyInstance } from 'fastify';
import { ControlError } from '../control/controller';
import type { ClusterView } from '../cluster/view';

export function registerClusterRoute(app: FastifyInstance, view: (() => ClusterView) | undefined): void {
  app.get(
    '/v1/cluster',
    {
      schema: {
        summary:
          "Scale-out: each host's view side by side — per service every host's ring digest against the majority's, backend states and weights per host, " +
          'peers fresh or stale with the age of their last answer, VIPs withdrawn because a host\'s tables differ',
        response: { 200: { type: 'object', additionalProperties: true }, 404: { type: 'object', properties: { error: { type: 'string' } } } },
      },
    },
    async () => {
      if (!view) throw new ControlError(404, 'this l4nat runs without a cluster section in its config file: there is no cluster view (docs/scale-out.md)');
      return view();
    },
  );
}
