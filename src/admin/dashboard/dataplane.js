// The data plane's panel: per-queue rates (and a chart of them), drop reasons as rates, the flow table's fill,
// the workers' heartbeat ages, busy-poll and coalescing counters, and the reload history with the slots moved.
import { html } from './htm-preact.js';
import { clock, pct, si } from './format.js';
import { Chart } from './charts.js';

const QUEUE_COLUMNS = [
  ['rx_packets', 'rx p/s'],
  ['tx_packets', 'tx p/s'],
  ['rx_bytes', 'rx b/s', 8],
  ['tx_bytes', 'tx b/s', 8],
  ['flow_new', 'new flows/s'],
  ['batches', 'batches/s'],
  ['busy_polls', 'busy polls/s'],
  ['busy_poll_hits', 'busy-poll hits/s'],
  ['busy_poll_ceded', 'busy polls ceded/s'],
  ['gso_packets', 'GSO/s'],
  ['udp_super_packets', 'UDP super-packets/s'],
  ['udp_coalesced', 'UDP coalesced/s'],
];

function Queues({ dp, points }) {
  const xs = points.map((p) => p.t / 1000);
  const labels = [];
  const ys = [];
  dp.queues.forEach((q) => {
    labels.push(`q${q.queue} rx`, `q${q.queue} tx`);
    ys.push(points.map((p) => (p.queues[q.queue] ? p.queues[q.queue][0] : null)), points.map((p) => (p.queues[q.queue] ? p.queues[q.queue][1] : null)));
  });
  return html`<div class="dp-queues">
    <${Chart} title="packets/s per queue" labels=${labels} xs=${xs} ys=${ys} unit="p/s" width=${420} />
    <table class="queues">
      <thead><tr><th>queue</th>${QUEUE_COLUMNS.map(([, h]) => html`<th class="num">${h}</th>`)}<th class="num">heartbeat age</th></tr></thead>
      <tbody>${dp.queues.map((q) => html`<tr data-queue=${q.queue}>
        <td>${q.queue}</td>
        ${QUEUE_COLUMNS.map(([k, , mul]) => html`<td class="num">${si((q.rates[k] || 0) * (mul || 1))}</td>`)}
        <td class=${`num ${q.heartbeatAgeMs > 1000 ? 'bad' : ''}`}>${q.heartbeatAgeMs} ms</td>
      </tr>`)}</tbody>
    </table>
  </div>`;
}

function Drops({ drops }) {
  const rows = Object.entries(drops).filter(([, d]) => d.total > 0);
  return html`<div class="dp-drops">
    <h3>Drops</h3>
    ${rows.length === 0
      ? html`<p class="muted">no packet dropped</p>`
      : html`<table><thead><tr><th>reason</th><th class="num">per second</th><th class="num">total</th></tr></thead>
          <tbody>${rows.map(([r, d]) => html`<tr data-drop=${r}><td class="mono">${r}</td><td class=${`num ${d.rate > 0 ? 'bad' : ''}`}>${si(d.rate)}</td><td class="num">${si(d.total)}</td></tr>`)}</tbody></table>`}
  </div>`;
}

function Reloads({ reloads }) {
  return html`<div class="dp-reloads">
    <h3>Reloads</h3>
    ${reloads.length === 0
      ? html`<p class="muted">no reload since l4nat started</p>`
      : html`<table><thead><tr><th>at</th><th>result</th><th>slots moved</th></tr></thead>
          <tbody>${[...reloads].reverse().map((r) => html`<tr class=${r.ok ? '' : 'bad'}>
            <td>${clock(r.at)}</td>
            <td>${r.ok ? `${r.added.length} added, ${r.removed.length} removed, ${r.changed.length} changed` : r.error}</td>
            <td class="mono small">${r.ok ? Object.entries(r.changedSlots || {}).map(([s, n]) => `${s}: ${n}`).join(', ') || 'none' : '–'}</td>
          </tr>`)}</tbody></table>`}
  </div>`;
}

export function DataplanePanel({ dp, points, reloads }) {
  const fill = dp.flowCapacity ? dp.flows / dp.flowCapacity : null;
  return html`<section class="card dataplane">
    <header><h2>Data plane</h2>
      <div class="facts">
        <span>flow-table entries ${si(dp.flows)}${dp.flowCapacity ? ` of ${si(dp.flowCapacity)}` : ''}</span>
        ${fill !== null ? html`<progress class="fill" max="1" value=${fill}></progress><span>${pct(fill)}</span>` : null}
        <span>${dp.queues.length} queue${dp.queues.length === 1 ? '' : 's'}</span>
      </div>
    </header>
    <${Queues} dp=${dp} points=${points} />
    <div class="dp-row"><${Drops} drops=${dp.drops} /><${Reloads} reloads=${reloads} /></div>
  </section>`;
}
