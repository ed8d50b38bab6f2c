// The package entry (package.json "main" and "types"): what a program can use without the CLI. Importing it loads
// no native code; the data-plane addon is loaded when the first Dataplane is opened.
//
//   Dataplane          the TUN data plane (native/, wrapped by src/dataplane/native.ts): open, publish tables, counters, flows
//   buildTables, ...   a service set laid out as the tables a Dataplane publishes (src/dataplane/tables.ts)
//   buildMaglev, ...   the Maglev lookup table alone (src/dataplane/maglev.ts)
//   parseConfig, ...   the YAML config file, validated, as the options `l4nat up` runs with (src/config/load.ts)
export { Dataplane, FLOW_STATES } from './dataplane/native';
export type { CounterMap, CounterSnapshot, DataplaneOptions, FlowEntry, FlowFilter, FlowPage, FlowState, FlowStats, WatchdogStats } from './dataplane/native';

export { buildTables, SlotAllocator, NO_BACKEND } from './dataplane/tables';
export type { BuiltTables, ServiceProtections, TableOptions, TablesInput } from './dataplane/tables';

export { buildMaglev, slotCounts, maglevDisruption, isPrime, DEFAULT_MAGLEV_SIZE, MAGLEV_KEY_BYTES, MAGLEV_MAX_SIZE, MAGLEV_MAX_WEIGHT, MAGLEV_MIN_SIZE } from './dataplane/maglev';
export type { MaglevBackend, MaglevOptions } from './dataplane/maglev';

export { affinityWarnings, ringIds } from './dataplane/affinity';

export { backendId, checkServices, serviceId, DEFAULT_TIMEOUTS } from './config/model';
export type { BackendConfig, BackendSpec, HashMode, HealthCheckSpec, Proto, ServiceConfig, ServiceSpec, Timeouts } from './config/model';

export { ConfigError, loadConfigFile, parseConfig } from './config/load';
export type { UpOptions } from './config/options';
