// `l4nat reload | status | backend ...`: thin commands over the admin API (client.ts). Exit codes: 0 done,
// 1 the API said no (message printed), 2 usage error.
import { splitArgs, type FlagSpec } from './up-args';
import { OptionError, Subject } from '../config/options';
import { familyOf, parseBackend } from '../config/address-syntax';
import { canonicalIp } from '../host/addr';
import { MAX_FLOWS_LIMIT, maxFlowsProblem } from '../dataplane/tables';
import type { BackendView, FlowView, ReloadResult, ServicesView } from '../control/controller';
import { apiRequest, ApiError, CLIENT_FLAGS, clientOptions, type ClientOptions } from './client';
import { planCommand, reloadPlanBody } from './plan-commands';
import { drainProgress, formatFlows, formatStatus, type StatusView } from './status';

/** VIP:PORT[/proto] or [V6]:PORT[/proto] → the API's service id. */
export function serviceIdArg(text: string): string {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([0-9.]+)):(\d{1,5})(?:\/(tcp|udp))?$/.exec(text);
  const vip = m?.[1] ?? m?.[2];
  const family = vip === undefined ? undefined : familyOf(vip);
  const port = Number(m?.[3]);
  if (!m || vip === undefined || !family || port < 1 || port > 65535) throw Subject.named('SERVICE').expected('VIP:PORT[/tcp|udp] (IPv6 as [VIP]:PORT)', `"${text}"`);
  const addr = canonicalIp(vip, family);
  return `${family === 6 ? `[${addr}]` : addr}:${port}/${m[4] ?? 'tcp'}`;
}

/** ADDR:PORT (or a backend id with /proto) → the API's backend id for that service. */
export function backendIdArg(text: string, service: string): string {
  const proto = service.slice(service.lastIndexOf('/') + 1);
  const t = text.replace(/\/(tcp|udp)$/, '');
  const s = Subject.named('BACKEND');
  const b = parseBackend(t, s);
  if (b.port === undefined) throw s.expected('ADDR:PORT (IPv6 as [ADDR]:PORT)', `"${text}"`);
  if (t.includes('@')) throw s.expected('ADDR:PORT without "@WEIGHT"', `"${text}"`);
  return `${b.family === 6 ? `[${b.addr}]` : b.addr}:${b.port}/${proto}`;
}

/** MAX_FLOWS of `backend max-flows`: a whole number of flows, or `none` (no limit: null). */
function maxFlowsArg(text: string | undefined): number | null {
  if (text === 'none') return null;
  const n = text !== undefined && /^\d+$/.test(text) ? Number(text) : NaN;
  if (maxFlowsProblem(n)) throw Subject.named('MAX_FLOWS').expected(`a whole number of flows from 1 to ${MAX_FLOWS_LIMIT}, or none (no limit)`, `"${text ?? ''}"`);
  return n;
}

function weightArg(text: string | undefined): number {
  if (text === undefined || !/^\d+$/.test(text) || Number(text) > 65535) throw Subject.named('WEIGHT').expected('a whole number from 0 to 65535', `"${text ?? ''}"`);
  return Number(text);
}

const enc = encodeURIComponent;

export async function apiCommand(cmd: 'reload' | 'restart' | 'status' | 'backend' | 'flows', argv: readonly string[]): Promise<number> {
  const extra: Record<string, FlagSpec> =
    cmd === 'backend'
      ? { weight: { value: true }, name: { value: true }, wait: { value: true }, deadline: { value: true }, json: { value: false }, 'dry-run': { value: false } }
      : cmd === 'flows'
        ? { service: { value: true }, backend: { value: true }, client: { value: true }, limit: { value: true }, state: { value: true }, cursor: { value: true }, json: { value: false } }
        : cmd === 'reload'
          ? { json: { value: false }, 'dry-run': { value: false }, from: { value: true } }
          : cmd === 'restart'
            ? { json: { value: false }, live: { value: false } }
            : { json: { value: false } };
  const { pos, flags } = splitArgs(argv, { ...CLIENT_FLAGS, ...extra });
  const o: ClientOptions = clientOptions(flags);
  const json = flags.has('json');
  const out = (v: unknown, text: string): void => {
    process.stdout.write(json ? `${JSON.stringify(v, null, 2)}\n` : text);
  };
  try {
    if (cmd === 'status') {
      if (pos.length) throw new OptionError(`status takes no arguments, got "${pos[0]}"`);
      const [view, st] = await Promise.all([apiRequest<ServicesView>(o, 'GET', '/v1/services'), apiRequest<StatusView>(o, 'GET', '/v1/status')]);
      out({ ...view, status: st }, formatStatus(view, st));
      return 0;
    }
    if (cmd === 'flows') {
      if (pos.length > 1 || (pos.length === 1 && pos[0] !== 'delete')) throw new OptionError(`flows expects [delete] and --service/--backend/--client/--state/--limit/--cursor, got "${pos.join(' ')}"`);
      const q = new URLSearchParams();
      const svc = flags.get('service')?.[0];
      const sid = svc === undefined ? undefined : serviceIdArg(svc);
      if (sid) q.set('service', sid);
      const bk = flags.get('backend')?.[0];
      if (bk !== undefined) q.set('backend', backendIdArg(bk, sid ?? (bk.endsWith('/udp') ? '/udp' : '/tcp')));
      const client = flags.get('client')?.[0];
      if (client !== undefined) q.set('client', client);
      const qs0 = q.toString();
      const state = flags.get('state')?.[0];
      const limit = flags.get('limit')?.[0];
      const cursor = flags.get('cursor')?.[0];
      if (pos[0] === 'delete' && (state ?? limit ?? cursor) !== undefined) throw new OptionError('flows delete takes --service, --backend and --client only');
      if (state !== undefined) q.set('state', state.toUpperCase());
      if (limit !== undefined) q.set('limit', limit);
      if (cursor !== undefined) q.set('cursor', cursor);
      const qs = q.toString() ? `?${q.toString()}` : '';
      if (pos[0] === 'delete') {
        if (!qs0) throw new OptionError('flows delete needs --service, --backend and/or --client (deleting every flow is refused)');
        const r = await apiRequest<{ deleted: number }>(o, 'DELETE', `/v1/flows${qs}`);
        out(r, `${r.deleted} flow(s) removed\n`);
        return 0;
      }
      // Each API request looks at a bounded part of the table; without --cursor the CLI follows the pages to
      // the end (or to --limit), as ipvsadm -Lnc lists everything.
      type Page = { flows: FlowView[]; truncated: boolean; next: number | null };
      let r = await apiRequest<Page>(o, 'GET', `/v1/flows${qs}`);
      const want = limit === undefined ? 1000 : Number(limit);
      while (cursor === undefined && r.next !== null && r.flows.length < want) {
        q.set('cursor', String(r.next));
        q.set('limit', String(want - r.flows.length));
        const more = await apiRequest<Page>(o, 'GET', `/v1/flows?${q.toString()}`);
        r = { flows: [...r.flows, ...more.flows], truncated: more.truncated, next: more.next };
      }
      out(r, formatFlows(r.flows, r.truncated, r.next));
      return 0;
    }
    if (cmd === 'restart') {
      if (pos.length) throw new OptionError(`restart takes no arguments, got "${pos[0]}"`);
      if (flags.has('live')) {
        const r = await apiRequest<{ restarting: boolean; exitCode: number }>(o, 'POST', '/v1/restart?live=true');
        out(r, 'l4nat is handing over live: it starts the next l4nat, which forwards through the same flow table before this one exits (if the new one fails, this one goes on: see its log)\n');
        return 0;
      }
      const r = await apiRequest<{ restarting: boolean; exitCode: number }>(o, 'POST', '/v1/restart');
      out(r, `l4nat is handing over: it exits with status ${r.exitCode} keeping its TUN, routes, rules and flow table; the next l4nat (systemd restarts it; else run l4nat up again) takes over every flow\n`);
      return 0;
    }
    if (cmd === 'reload') {
      if (pos.length) throw new OptionError(`reload takes no arguments, got "${pos[0]}"`);
      if (flags.has('from') && !flags.has('dry-run')) throw new OptionError('reload --from FILE is for --dry-run: a reload applies the running config file');
      if (flags.has('dry-run')) return await planCommand(o, reloadPlanBody(flags.get('from')?.[0]), json);
      const r = await apiRequest<ReloadResult>(o, 'POST', '/v1/reload');
      const slots = Object.entries(r.changedSlots).map(([k, v]) => `${k}: ${v} slots`);
      out(
        r,
        `reloaded ${r.file}: added ${r.added.join(', ') || 'none'}; removed ${r.removed.join(', ') || 'none'}; changed ${r.changed.join(', ') || 'none'}; ` +
          `${r.unchanged} unchanged\n${slots.length ? `ring slots moved: ${slots.join('; ')}\n` : 'no ring slot moved\n'}` +
          (r.discardedApiBackends.length ? `backends added through the API and not in the file were removed: ${r.discardedApiBackends.join(', ')}\n` : ''),
      );
      return 0;
    }
    const [sub, svcText, third, fourth] = pos;
    const usage = 'backend expects: add SERVICE ADDR[:PORT] | remove|drain|undrain SERVICE BACKEND | weight SERVICE BACKEND W | max-flows SERVICE BACKEND N|none';
    if (!sub || !svcText || !third) throw new OptionError(usage);
    const sid = serviceIdArg(svcText);
    const base = `/v1/services/${enc(sid)}/backends`;
    if (flags.has('dry-run')) {
      if (!['add', 'remove', 'weight', 'max-flows', 'drain', 'undrain'].includes(sub)) throw new OptionError(usage);
      const b = sub === 'add' ? third : backendIdArg(third, sid);
      const body: Record<string, unknown> = { op: sub === 'max-flows' ? 'max_flows' : sub, service: sid, backend: b };
      if (sub === 'weight') body.weight = weightArg(fourth);
      if (sub === 'max-flows') body.max_flows = maxFlowsArg(fourth);
      if (sub === 'add' && flags.has('weight')) body.weight = weightArg(flags.get('weight')?.[0]);
      if (sub === 'add' && flags.has('name')) body.name = flags.get('name')?.[0];
      return await planCommand(o, body, json);
    }
    switch (sub) {
      case 'add': {
        if (fourth) throw new OptionError(`backend add takes SERVICE ADDR[:PORT], got an extra "${fourth}"`);
        const body: Record<string, unknown> = { backend: third };
        if (flags.has('weight')) body.weight = weightArg(flags.get('weight')?.[0]);
        if (flags.has('name')) body.name = flags.get('name')?.[0];
        const v = await apiRequest<ServicesView>(o, 'POST', base, body);
        out(v, `added ${third} to ${sid}\n`);
        return 0;
      }
      case 'remove': {
        const bid = backendIdArg(third, sid);
        const v = await apiRequest<ServicesView>(o, 'DELETE', `${base}/${enc(bid)}`);
        out(v, `removed ${bid} from ${sid}\n`);
        return 0;
      }
      case 'weight': {
        const bid = backendIdArg(third, sid);
        const w = weightArg(fourth);
        const v = await apiRequest<ServicesView>(o, 'PATCH', `${base}/${enc(bid)}`, { weight: w });
        out(v, `${bid} of ${sid}: weight ${w}\n`);
        return 0;
      }
      case 'max-flows': {
        const bid = backendIdArg(third, sid);
        const n = maxFlowsArg(fourth);
        const v = await apiRequest<ServicesView>(o, 'PATCH', `${base}/${enc(bid)}`, { max_flows: n });
        out(v, `${bid} of ${sid}: max_flows ${n ?? 'none (no limit)'}\n`);
        return 0;
      }
      case 'undrain': {
        const bid = backendIdArg(third, sid);
        const v = await apiRequest<BackendView>(o, 'POST', `${base}/${enc(bid)}/undrain`);
        out(v, `${bid} of ${sid}: back in the ring (state ${v.state})\n`);
        return 0;
      }
      case 'drain': {
        const bid = backendIdArg(third, sid);
        const deadlineText = flags.get('deadline')?.[0];
        if (deadlineText !== undefined && !/^[1-9]\d*$/.test(deadlineText)) throw new OptionError(`--deadline expects whole seconds (1 or more), got "${deadlineText}"`);
        const body = deadlineText !== undefined ? { deadline: Number(deadlineText) } : undefined;
        let v = await apiRequest<BackendView>(o, 'POST', `${base}/${enc(bid)}/drain`, body);
        const waitText = flags.get('wait')?.[0];
        if (waitText !== undefined) {
          if (!/^\d+$/.test(waitText)) throw new OptionError(`--wait expects seconds, got "${waitText}"`);
          const deadline = Date.now() + Number(waitText) * 1000;
          while (!v.drain?.done && Date.now() < deadline) {
            await new Promise((r) => setTimeout(r, 500));
            v = await apiRequest<BackendView>(o, 'GET', `${base}/${enc(bid)}`);
          }
          out(
            v,
            v.drain?.done
              ? `${bid} of ${sid}: drained (${v.drain.doneBy ?? 'done'})\n`
              : `${bid} of ${sid}: still draining after ${waitText} s (${v.drain ? drainProgress(v.drain) : '?'}, last packet ${v.drain?.lastPacketAt})\n`,
          );
          return v.drain?.done ? 0 : 1;
        }
        const until = v.drain?.deadline ? `; flows left at ${v.drain.deadline} are removed` : '';
        out(v, `${bid} of ${sid}: draining (out of the ring, flows kept${until}); \`l4nat backend drain ... --wait S\` waits until it is quiet\n`);
        return 0;
      }
      default:
        throw new OptionError(usage);
    }
  } catch (e) {
    if (e instanceof ApiError) {
      process.stderr.write(`l4nat: ${e.status === 401 ? 'admin API: ' : ''}${e.message}\n`);
      return 1;
    }
    throw e;
  }
}
