// Small time-series charts (uPlot, loaded by index.html as a classic script: window.uPlot), one line per series.
import { html, useEffect, useRef } from './htm-preact.js';
import { si } from './format.js';

export const COLORS = ['#2456c7', '#d9480f', '#2b8a3e', '#9c36b5', '#e8590c', '#0b7285', '#5c940d', '#c2255c'];

/**
 * A chart of `ys` (one array per label, aligned with `xs`, seconds since the epoch) titled `title`; values are
 * formatted with `unit`. The uPlot instance is made once per set of labels and fed new data on every render.
 */
export function Chart({ title, labels, xs, ys, unit = '', width = 300, height = 110 }) {
  const el = useRef(null);
  const plot = useRef(null);
  const key = labels.join('|');
  useEffect(() => {
    const fmt = (v) => si(v, unit);
    const opts = {
      width,
      height,
      legend: { show: false },
      cursor: { show: false },
      scales: { x: { time: true } },
      axes: [
        { size: 22, font: '10px system-ui', ticks: { size: 3 } },
        { size: 64, font: '10px system-ui', ticks: { size: 3 }, values: (u, vals) => vals.map(fmt) },
      ],
      series: [{}, ...labels.map((l, i) => ({ label: l, stroke: COLORS[i % COLORS.length], width: 1.5, points: { show: false } }))],
    };
    plot.current = new window.uPlot(opts, [xs, ...ys], el.current);
    return () => plot.current.destroy();
  }, [key]);
  useEffect(() => {
    if (plot.current) plot.current.setData([xs, ...ys]);
  });
  return html`<figure class="chart">
    <figcaption>${title}</figcaption>
    <div ref=${el}></div>
    <div class="legend">${labels.map((l, i) => html`<span class=${`sw c${i % COLORS.length}`}></span>${l} `)}</div>
  </figure>`;
}

/** From the rate points (dashboard-feed.ts), the x axis and one series per key, field `i` of each point's rates. */
export function seriesOf(points, pick, keys, i) {
  const xs = points.map((p) => p.t / 1000);
  const ys = keys.map((k) => points.map((p) => (pick(p)[k] ? pick(p)[k][i] : null)));
  return { xs, ys };
}
