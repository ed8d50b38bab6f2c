// The package entry (package.json "main" and "types"): what a program can use without the CLI. Importing it loads
// no native code; the data-plane addon is loaded when the first Dataplane is opened.
//
//   Dataplane          the TUN data plane (native/, wrapped by src/native.ts): open, publish tables, counters, flows
//   buildTables, ...   a service set laid out as the tables a Dataplane publishes (src/tables.ts)
//   buildMaglev, ...   the Maglev lookup table alone (src/maglev.ts)
//   parseConfig, ...   the YAML config file, validated, as the options `l4nat up` runs with (src/config/load.ts)
export { Dataplane, FLOW_STATES } from './native';
export type { CounterMap, CounterSnapshot, DataplaneOptions, FlowEntry, FlowFilter, FlowPage, FlowState, FlowStats, WatchdogStats } from './native';

export { buildTables, SlotAllocator, NO_BACKEND } from './tables';
export type { BuiltTables, ServiceProtections, TableOptions, TablesInput } from './tables';

export { buildMaglev, slotCounts, maglevDisruption, isPrime, DEFAULT_MAGLEV_SIZE, MAGLEV_KEY_BYTES, MAGLEV_MAX_SIZE, MAGLEV_MAX_WEIGHT, MAGLEV_MIN_SIZE } from './maglev';
export type { MaglevBackend, MaglevOptions } from './maglev';

export { affinityWarnings, ringIds } from './affinity';

export { backendId, checkServices, serviceId, DEFAULT_TIMEOUTS } from './model';
export type { BackendConfig, BackendSpec, HashMode, HealthCheckSpec, Proto, ServiceConfig, ServiceSpec, Timeouts } from './model';

export { ConfigError, loadConfigFile, parseConfig } from './config/load';
export type { UpOptions } from './up-args';
