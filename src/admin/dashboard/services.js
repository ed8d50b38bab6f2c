// A service's card: its address, state and flows, four charts of its backends' rates over the last minutes
// (packets/s, bits/s, new flows/s, resets/s), and the backends' table.
import { html } from './htm-preact.js';
import { si } from './format.js';
import { Chart, seriesOf } from './charts.js';
import { BackendRow } from './backend.js';
import { AddBackend } from './actions.js';

const RATE_CHARTS = [
  ['packets/s', 'p/s'],
  ['bits/s', 'b/s'],
  ['new flows/s', '/s'],
  ['resets/s', '/s'],
];

export function ServiceCard({ s, points, readOnly, ask }) {
  const keys = s.backends.map((b) => `${s.id}|${b.id}`);
  const labels = s.backends.map((b) => b.name || b.id);
  const [pps, bps, nf] = s.rates;
  return html`<section class="card service" data-service=${s.id}>
    <header>
      <h2>${s.name} <span class="mono">${s.id}</span></h2>
      <div class="facts">
        ${s.allDown ? html`<span class="badge down">no healthy backend (${s.onAllDown})</span>` : null}
        <span>hash ${s.hash}</span>
        <span>${s.activeFlows === null ? '–' : s.activeFlows} active flows</span>
        <span>${si(pps, 'p/s')}</span><span>${si(bps, 'b/s')}</span><span>${si(nf, ' new flows/s')}</span>
        ${s.healthCheck ? html`<span>check ${s.healthCheck.type} every ${s.healthCheck.interval} s</span>` : html`<span>no health check</span>`}
      </div>
    </header>
    <div class="charts">
      ${RATE_CHARTS.map(([title, unit], i) => {
        const { xs, ys } = seriesOf(points, (p) => p.backends, keys, i);
        return html`<${Chart} title=${title} labels=${labels} xs=${xs} ys=${ys} unit=${unit} />`;
      })}
    </div>
    <table class="backends">
      <thead><tr><th>state</th><th>backend</th><th class="num">weight / effective</th><th class="num">ring share</th><th class="num">active flows</th><th class="num">rates</th><th>health checks, drain</th>${readOnly ? null : html`<th>actions</th>`}</tr></thead>
      <tbody>${s.backends.map((b) => html`<${BackendRow} key=${b.id} s=${s} b=${b} readOnly=${readOnly} ask=${ask} />`)}</tbody>
    </table>
    ${readOnly ? null : html`<${AddBackend} s=${s} ask=${ask} />`}
  </section>`;
}
