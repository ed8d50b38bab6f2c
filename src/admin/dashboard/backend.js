// One backend's row: state and why, weights, ring share, active flows, current rates, the health-check timeline and
// the drain's progress, and its actions.
import { html } from './htm-preact.js';
import { ago, clock, pct, si } from './format.js';
import { backendActions } from './actions.js';

/** The last health checks, oldest first, one bar each: green ok, red failed; taller is slower. */
export function HealthTimeline({ b }) {
  const checks = (b.history && b.history.checks) || [];
  if (!b.health) return html`<span class="muted">no check</span>`;
  const max = Math.max(1, ...checks.map((c) => c.ms));
  return html`<div class="timeline" aria-label="health-check history">
    ${checks.map((c) => html`<span class=${`tick ${c.ok ? 'ok' : 'bad'} h${Math.min(4, Math.ceil((c.ms / max) * 4))}`} title=${`${clock(c.at)}: ${c.ok ? 'ok' : 'failed'} in ${c.ms} ms${c.detail ? ` (${c.detail})` : ''}`}></span>`)}
    ${b.health.lastCheck && html`<span class="muted small"> ${b.health.lastCheck.ms} ms</span>`}
  </div>`;
}

/** A drain counting down to its last flow: live flows left of those it started with, then done. */
export function DrainProgress({ b }) {
  const d = b.drain;
  if (!d) return null;
  if (d.done) return html`<div class="drain done" data-drain="done">last flow gone${d.doneBy ? ` (${d.doneBy})` : ''}</div>`;
  const start = Math.max(b.drainStartFlows || 0, d.liveFlows || 0);
  const live = d.liveFlows;
  return html`<div class="drain" data-drain="running" data-live=${live === null ? '' : live}>
    <progress max=${start || 1} value=${start && live !== null ? start - live : 0}></progress>
    <span>${live === null ? 'counting flows…' : `${live} live flow${live === 1 ? '' : 's'} left`}</span>
    <span class="muted small"> since ${ago(d.since)}, quiet ${d.quietSeconds} s</span>
  </div>`;
}

export function BackendRow({ s, b, readOnly, ask }) {
  const [pps, bps, nf, rs] = b.rates;
  return html`<tr class=${`backend state-${b.state}`} data-backend=${b.id} data-state=${b.state}>
    <td><span class=${`badge ${b.state}`}>${b.state}</span><div class="why small">${b.why}</div></td>
    <td><b>${b.name || ''}</b><div class="mono small">${b.id}</div>${b.source === 'api' ? html`<span class="muted small">added by API</span>` : null}</td>
    <td class="num" data-weight=${b.weight}>${b.weight}<span class="muted"> / ${b.effectiveWeight}</span></td>
    <td class="num">${pct(b.ringShare)}</td>
    <td class="num" data-max-flows=${b.maxFlows ?? ''}>${b.activeFlows === null ? '–' : b.activeFlows}${b.maxFlows === null || b.maxFlows === undefined ? null : html`<span class="muted"> / ${b.maxFlows} max</span>`}</td>
    <td class="num small">${si(pps, 'p/s')}<br />${si(bps, 'b/s')}<br />${si(nf, ' new/s')}<br />${si(rs, ' rst/s')}</td>
    <td><${HealthTimeline} b=${b} /><${DrainProgress} b=${b} /></td>
    ${readOnly ? null : html`<td class="actions">${backendActions(s, b).map((a) => html`<button class=${a.danger ? 'danger' : ''} data-action=${a.id} onClick=${() => ask(a)}>${a.label}</button>`)}</td>`}
  </tr>`;
}
