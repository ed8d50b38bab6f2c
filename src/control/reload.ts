// Reload (SIGHUP, POST /v1/reload): re-reads the config file and applies all of it or none of it, through the
// change queue, compared with the running config when it applies (after any reload or write queued before it).
// Settings that take effect only at start are refused, naming them. Run-time changes are not written back:
// backends added through the API are dropped by a reload (logged), a drain survives it (as HAProxy's
// server-state-file keeps MAINT) as long as the backend is still in the file.
import { affinityWarnings } from '../dataplane/affinity';
import { loadConfigFile, readToken, restartOnlyChanges, ConfigError } from '../config/load';
import { serviceId } from '../config/model';
import { icmpChecksUnavailable } from '../health/icmp';
import { backendKey, type TableOptions } from '../dataplane/tables';
import type { UpOptions } from '../config/options';
import { planServices, type Change } from './plan';
import type { ChangeQueue } from './queue';
import { cloneServices, ControlError, type ControlState } from './state';

export interface ReloadResult {
  file: string;
  added: string[];
  removed: string[];
  changed: string[];
  unchanged: number;
  changedSlots: Record<string, number>;
  discardedApiBackends: string[];
}

/** One reload as the dashboard's reload history shows it: when, whether it applied, and what it moved (or why not). */
export interface ReloadRecord {
  at: string;
  ok: boolean;
  error?: string;
  added?: string[];
  removed?: string[];
  changed?: string[];
  changedSlots?: Record<string, number>;
}

/** Where a reload's outcome is kept (the Controller's public fields). */
export interface ReloadTarget {
  opts: UpOptions;
  token: string | undefined;
  lastReload: { at: string; ok: boolean; error?: string } | undefined;
  reloads: { ok: number; failed: number };
  /** The last RELOAD_HISTORY reloads, oldest first (the dashboard's reload history). */
  readonly reloadHistory: ReloadRecord[];
  emit(event: 'reload', next: UpOptions): boolean;
}

export const RELOAD_HISTORY = 20;

function remember(target: ReloadTarget, r: ReloadRecord): void {
  target.reloadHistory.push(r);
  if (target.reloadHistory.length > RELOAD_HISTORY) target.reloadHistory.shift();
}

/**
 * The change a reload from `running` to `next` (the file just read) makes, and what it adds, removes, changes
 * and discards; throws a ConfigError (the reload changed nothing) for a setting that needs a restart.
 */
export function planReload(state: ControlState, file: string, running: UpOptions, next: UpOptions): { change: Change; result: Omit<ReloadResult, 'changedSlots'> } {
  const restart = restartOnlyChanges(running, next);
  if (restart.length) {
    throw new ConfigError(file, [`these settings take effect only at start: ${restart.join(', ')}; restart l4nat to change them (the reload changed nothing)`]);
  }
  const noIcmp = icmpChecksUnavailable(next.services);
  if (noIcmp) throw new ConfigError(file, [`${noIcmp} (the reload changed nothing)`]);
  const oldById = new Map(running.services.map((s) => [serviceId(s), JSON.stringify(s)]));
  const newById = new Map(next.services.map((s) => [serviceId(s), JSON.stringify(s)]));
  const added = [...newById.keys()].filter((k) => !oldById.has(k));
  const removed = [...oldById.keys()].filter((k) => !newById.has(k));
  const changed = [...newById.keys()].filter((k) => oldById.has(k) && oldById.get(k) !== newById.get(k));
  const newKeys = new Set(next.services.flatMap((s) => s.backends.map((b) => backendKey(s, b))));
  const discarded = [...state.runtime.values()].filter((rt) => rt.source === 'api' && !newKeys.has(rt.key)).map((rt) => rt.key);
  const result = { file, added, removed, changed, unchanged: newById.size - added.length - changed.length, discardedApiBackends: discarded };
  const tableOpts: TableOptions = { ...state.balancer.tableOptions, timeouts: next.timeouts, icmpEcho: next.icmpEcho, probeSource: next.probeSource };
  return { change: { plan: planServices(state, cloneServices(next.services), 'config', tableOpts), tableOpts, extra: { file, added, removed, changed } }, result };
}

/** Re-reads the config file and applies all of it, or nothing (the error says why); keeps the outcome in `target`. */
export async function reload(target: ReloadTarget, state: ControlState, queue: ChangeQueue): Promise<ReloadResult> {
  const log = state.log;
  const file = target.opts.configFile;
  if (!file) throw new ControlError(409, 'l4nat was started from flags, not from a config file: there is nothing to reload');
  const at = new Date().toISOString();
  try {
    const next = loadConfigFile(file);
    const token = next.admin.tokenFile ? readToken(next.admin.tokenFile) : undefined;
    let result: Omit<ReloadResult, 'changedSlots'> | undefined;
    const r = await queue.planned('reload', () => {
      const p = planReload(state, file, target.opts, next);
      result = p.result;
      const applied = (): void => {
        target.opts = next;
        target.token = token;
        log.level = next.logLevel;
      };
      return { ...p.change, applied };
    });
    const res = { ...result!, changedSlots: r!.changedSlots };
    target.lastReload = { at, ok: true };
    target.reloads.ok++;
    if (res.discardedApiBackends.length) {
      log.warn({ event: 'reload_discarded', backends: res.discardedApiBackends }, `reload: ${res.discardedApiBackends.length} backend(s) added through the API are not in the file and were removed`);
    }
    for (const w of affinityWarnings(next.services)) log.warn({ event: 'affinity_warning' }, w);
    log.info({ event: 'reload', file, added: res.added, removed: res.removed, changed: res.changed, changedSlots: res.changedSlots }, `reloaded ${file}: ${res.added.length} service(s) added, ${res.removed.length} removed, ${res.changed.length} changed`);
    target.emit('reload', next);
    remember(target, { at, ok: true, added: res.added, removed: res.removed, changed: res.changed, changedSlots: res.changedSlots });
    return res;
  } catch (e) {
    target.reloads.failed++;
    target.lastReload = { at, ok: false, error: (e as Error).message };
    log.error({ event: 'reload_failed', file, err: (e as Error).message }, `reload of ${file} rejected; the running config is unchanged`);
    remember(target, { at, ok: false, error: (e as Error).message });
    if (e instanceof ConfigError) throw new ControlError(400, e.message);
    throw e;
  }
}
