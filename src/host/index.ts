// Host set-up (docs/design.md "Where packets go"): routes, rules, sysctls and the TUN link over rtnetlink.
export * from './addr';
export * from './plan';
export * from './sysctl';
export { Rtnl, RtnlError, RtnlMonitor, toRtnlError, isErrCode } from './rtnl';
export type { RtnlEvent, RtnlOptions } from './rtnl';
export type { InstalledObject } from './messages';
export { HostSetup, DEFAULT_DEBOUNCE_MS } from './setup';
export type { HostSetupOptions } from './setup';
export { MIN_MTU, MAX_MTU } from './tun-link';
export type { LinkResult } from './tun-link';
export type { ApplyResult } from './route-rule-writer';
