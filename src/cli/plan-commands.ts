// `l4nat explain PROTO CLIENT:PORT VIP:PORT` (GET /v1/flows/explain) and the dry runs `l4nat reload --dry-run` and
// `l4nat backend ... --dry-run` (POST /v1/plan): what the data plane would do with one tuple, and what a change
// would do before it is applied. Exit codes as commands.ts: 0 done, 1 the API said no, 2 usage error.
import { readFileSync } from 'fs';
import { OptionError } from '../config/options';
import type { Explanation, PlanPreview } from '../control/controller';
import { apiRequest, ApiError, CLIENT_FLAGS, clientOptions, type ClientOptions } from './client';
import { splitArgs } from './up-args';

const pct = (x: number): string => `${(x * 100).toFixed(1)}%`;

/** Why the packet leaves a live entry and chooses again (Explanation flowEntry.left). */
const LEFT_BECAUSE: Record<NonNullable<NonNullable<Explanation['flowEntry']>['left']>, string> = {
  closed: 'it saw a reset or a FIN: a new connection on the tuple chooses again',
  backend_leaving: 'its backend takes no new flows (draining or down): a client reusing its port chooses again at once',
  retransmitted: 'a SYN retransmitted without an answer: the ring now sends it elsewhere',
};

/** The decision chain, one step a line. */
export function formatExplanation(x: Explanation): string {
  const lines = [`${x.tuple.proto.toUpperCase()} ${x.tuple.client} -> ${x.tuple.vip}${x.tuple.packet === 'syn' ? ' (a SYN)' : ''}`];
  lines.push(`  service      ${x.service ? `${x.service.id}${x.service.name ? ` (${x.service.name})` : ''}` : 'none'}`);
  if (x.service) {
    const m = x.acl.matched;
    lines.push(`  source list  ${x.acl.entries ? `${m ? `${m.action} ${m.cidr}` : 'no entry matches'}: ${x.acl.allowed ? 'allowed' : 'DENIED'}` : 'none (every source allowed)'}`);
    const r = x.rateLimit;
    lines.push(`  rate limit   ${r ? `${r.rate}/s burst ${r.burst}: bucket ${r.tokens.toFixed(2)} new flows, ${r.allowsNewFlow ? 'a new flow passes' : 'a new flow is LIMITED'}` : 'none'}`);
    const e = x.flowEntry;
    lines.push(
      `  flow entry   ${e ? `${e.state} on ${e.backend}, idle ${e.idleSeconds} s${e.pinnedAgainstRing ? ', pinned against the ring' : ''}${e.backendStillServes ? '' : ' (its backend left the service: ignored)'}` : 'none'}`,
    );
    if (e?.left) lines.push(`  left         ${LEFT_BECAUSE[e.left]}`);
    lines.push(`  ring         generation ${x.ring.generation}, ${x.ring.size ? `slot ${x.ring.slot} of ${x.ring.size} -> ${x.ring.backend}` : 'empty (no backend in the ring)'}`);
    const p = x.previousRing;
    lines.push(`  previous     ${p ? `slot ${p.slot} of ${p.size} -> ${p.backend ?? 'none'}${p.secondChance ? ' (second-chance target)' : ''}` : 'none'}`);
  }
  if (x.backend) {
    const b = x.backend;
    lines.push(`  backend      ${b.id}${b.name ? ` (${b.name})` : ''}: ${b.state ?? 'unknown'}${b.inRing ? '' : ', out of the ring'}${b.markedDown ? ', marked down' : ''}`);
  }
  if (x.rewrite) {
    lines.push(`  forward      ${x.rewrite.forward.before}  =>  ${x.rewrite.forward.after}`);
    lines.push(`  reply        ${x.rewrite.reply.before}  =>  ${x.rewrite.reply.after}`);
  }
  // Under bounded load or max_flows a new flow may go past the ring's backend to the next candidate (admission.h).
  const admitted = x.verdict === 'ring' && x.backend !== null && x.ring.backend !== null && x.backend.id !== x.ring.backend;
  const ring = admitted ? `forwarded to the next candidate: ${x.ring.backend} is over its bound or at its max_flows (a new entry pins it)` : 'forwarded by the ring (a new entry pins it)';
  const verdict = x.verdict === 'entry' ? 'forwarded by its flow entry' : x.verdict === 'ring' ? ring : `DROPPED: ${x.dropReason}`;
  lines.push(`  verdict      ${verdict}`);
  return `${lines.join('\n')}\n`;
}

/** Per service and backend: slots, shares, flows that would move. */
export function formatPlan(p: PlanPreview): string {
  const out = [`plan (${p.change}): ${p.changes ? 'nothing applied' : 'nothing to do'}`];
  for (const s of p.services) {
    out.push(`${s.service}${s.change === 'kept' ? '' : ` (${s.change})`}: ${s.slotsMoved} ring slot(s) move`);
    for (const b of s.backends) {
      const w = `${b.weight.before ?? '-'} -> ${b.weight.after ?? '-'}`;
      const f = b.flows ? `, flows ${b.flows.live} live, ${b.flows.wouldMove} would move` : '';
      out.push(
        `  ${b.backend}${b.name ? ` (${b.name})` : ''}${b.change === 'kept' ? '' : ` [${b.change}]`}: weight ${w}, slots ${b.slots.before} -> ${b.slots.after} (+${b.slots.gained} -${b.slots.lost}), share ${pct(b.share.before)} -> ${pct(b.share.after)}${f}`,
      );
    }
  }
  out.push(
    p.flows
      ? `live flows ${p.flows.live}: ${p.flows.wouldMove} would be sent elsewhere by the new ring if they lost their entries`
      : 'live flows: not counted (this data plane cannot)',
  );
  return `${out.join('\n')}\n`;
}

/** POST /v1/plan with `body`, printed. */
export async function planCommand(o: ClientOptions, body: Record<string, unknown>, json: boolean): Promise<number> {
  const p = await apiRequest<PlanPreview>(o, 'POST', '/v1/plan', body);
  process.stdout.write(json ? `${JSON.stringify(p, null, 2)}\n` : formatPlan(p));
  return 0;
}

/** The body of `reload --dry-run [--from FILE]`: the running config file, or this file's text. */
export function reloadPlanBody(from: string | undefined): Record<string, unknown> {
  if (from === undefined) return { reload: true };
  try {
    return { config: readFileSync(from, 'utf8') };
  } catch (e) {
    throw new OptionError(`--from: cannot read ${JSON.stringify(from)}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
}

export async function explainCommand(argv: readonly string[]): Promise<number> {
  const { pos, flags } = splitArgs(argv, { ...CLIENT_FLAGS, json: { value: false }, syn: { value: false } });
  const [proto, client, vip, extra] = pos;
  if (!proto || !client || !vip || extra !== undefined) throw new OptionError(`explain expects PROTO CLIENT:PORT VIP:PORT (e.g. tcp 192.0.2.7:40000 10.0.0.10:80), got "${pos.join(' ')}"`);
  if (proto !== 'tcp' && proto !== 'udp') throw new OptionError(`explain: PROTO must be tcp or udp, got "${proto}"`);
  if (flags.has('syn') && proto !== 'tcp') throw new OptionError('explain --syn is for tcp: a SYN is a TCP packet');
  const o = clientOptions(flags);
  try {
    const q = new URLSearchParams({ proto, client, vip, ...(flags.has('syn') ? { packet: 'syn' } : {}) });
    const x = await apiRequest<Explanation>(o, 'GET', `/v1/flows/explain?${q.toString()}`);
    process.stdout.write(flags.has('json') ? `${JSON.stringify(x, null, 2)}\n` : formatExplanation(x));
    return 0;
  } catch (e) {
    if (e instanceof ApiError) {
      process.stderr.write(`l4nat: ${e.message}\n`);
      return 1;
    }
    throw e;
  }
}
