// In a cluster (the config file's cluster section names peers) the admin API refuses backend changes: every host must
// build the same ring, and the config file that the operator's config management puts on every host is the
// cluster's one source of truth. Propagating a change from one host to the others, all or nothing, would need a
// commit across hosts over the agreement channel, and a partition in the middle of it would leave the hosts with
// different tables: a failure mode a load balancer's control path should not have (docs/scale-out.md, "One
// cluster view for changes"). The refusal names the way that works.
import type { UpOptions } from '../config/options';
import { clusterOptionsOf } from '../cluster/options';

/** Why add/remove/weight/drain/undrain are refused on this host (HTTP 409), or null when they are allowed. */
export function backendWritesRefusal(opts: UpOptions): string | null {
  const c = clusterOptionsOf(opts);
  if (!c || c.peers.length === 0) return null;
  const file = opts.configFile ?? 'the config file';
  return (
    `this l4nat is one host of a cluster (cluster.peers names ${c.peers.length} other host${c.peers.length > 1 ? 's' : ''}): backend changes through one host's admin API ` +
    `are refused, since they would give this host other rings than its peers'. Change the backends in the config file (${file}) on every host, ` +
    'then run `l4nat reload` (or send SIGHUP) on each; `l4nat cluster status` shows when their rings agree again'
  );
}
