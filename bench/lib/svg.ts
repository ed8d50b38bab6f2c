// A bar chart of the ratios, as hand-written SVG (no dependency): one group per test, one bar per variant
// (median of the per-round ratios) with a whisker from the smallest to the largest round, and a dashed line
// at 1.0 (the reference). Layers: results.ts → this file → run.ts.
import { Figures2D, isNic, METRICS, nftOf, directOf, type BenchResults, type Metric } from './results';
import { NIC_SUFFIX } from './options';
import type { Spread } from './stats';

const COLORS: Record<string, string> = {
  'nft-dnat': '#4e79a7',
  haproxy: '#f28e2b',
  l4nat: '#59a14f',
  'l4nat-1q': '#8cd17d',
  'l4nat-nocoal': '#b6992d',
  'l4nat-nopoll': '#76b7b2',
  'l4nat-busypoll': '#e15759',
  'l4nat-sync': '#9c755f',
  'tun-relay': '#9c755f',
  'l4nat-nice0': '#b07aa1',
  direct: '#bab0ac',
};

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

function baseOf(v: string): string {
  return isNic(v) ? v.slice(0, -NIC_SUFFIX.length) : v;
}

interface Group {
  label: string[];
  bars: { variant: string; s: Spread | null }[];
}

export function renderChart(r: BenchResults): string {
  const f = new Figures2D(r);
  const main = r.settings.variants.filter((v) => !isNic(v) && v !== 'direct');
  const nic = r.settings.variants.filter((v) => isNic(v) && v !== directOf(v));
  const has = (m: Metric): boolean => r.settings.tests.includes(m.test);
  const short: Record<string, string> = {
    tcp1: 'TCP 1 stream', tcp1r: 'TCP 1 stream -R', tcp4: 'TCP 4 streams', udp64: 'UDP 64 B pps',
    crr1: 'conn/s 1 thread', crr4: 'conn/s 4 threads', rr_p50: 'RR p50 latency',
  };
  const groups: Group[] = [];
  for (const m of METRICS.filter((x) => ['tcp1', 'tcp1r', 'tcp4', 'udp64', 'crr1', 'crr4'].includes(x.key) && has(x))) {
    groups.push({ label: [short[m.key]!, 'vs direct'], bars: main.map((v) => ({ variant: v, s: f.ratio(v, 'direct', m) })) });
  }
  const p50 = METRICS.find((x) => x.key === 'rr_p50')!;
  if (has(p50) && main.includes('nft-dnat')) {
    groups.push({ label: [short.rr_p50!, 'vs nft-dnat (lower', 'is better)'], bars: main.map((v) => ({ variant: v, s: f.ratio(v, nftOf(v), p50) })) });
  }
  for (const m of METRICS.filter((x) => ['tcp1', 'tcp1r', 'tcp4'].includes(x.key) && has(x))) {
    if (nic.length === 0) break;
    groups.push({ label: [short[m.key]!, 'real NIC', 'vs direct+nic'], bars: nic.map((v) => ({ variant: v, s: f.ratio(v, directOf(v), m) })) });
  }

  const barW = 18;
  const gap = 40;
  const left = 56;
  const top = 70;
  const plotH = 300;
  const groupW = (g: Group): number => g.bars.length * barW + gap;
  const width = Math.max(640, left + groups.reduce((a, g) => a + groupW(g), 0) + 20);
  const height = top + plotH + 70;
  let maxV = 1.2;
  for (const g of groups) for (const b of g.bars) if (b.s !== null) maxV = Math.max(maxV, b.s.max, b.s.median);
  maxV = Math.ceil(maxV / 0.2) * 0.2;
  const y = (v: number): number => top + plotH - (v / maxV) * plotH;

  const el: string[] = [];
  el.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="11">`);
  el.push(`<rect width="100%" height="100%" fill="#ffffff"/>`);
  el.push(
    `<text x="${left}" y="20" font-size="14" font-weight="bold">${esc(`l4nat benchmark ${r.machine.date}, kernel ${r.machine.kernel}, ${r.machine.cores} cores, ${r.settings.rounds} rounds × ${r.settings.durationSeconds} s`)}</text>`,
  );
  el.push(`<text x="${left}" y="36" fill="#555">ratio to the reference in the same round: bar = median, whisker = min–max over rounds</text>`);
  // Legend.
  let lx = left;
  for (const v of main) {
    el.push(`<rect x="${lx}" y="46" width="12" height="12" fill="${COLORS[v] ?? '#999'}"/>`);
    el.push(`<text x="${lx + 16}" y="56">${esc(v)}</text>`);
    lx += 24 + v.length * 7;
  }
  // Grid.
  for (let v = 0; v <= maxV + 1e-9; v += 0.2) {
    const yy = y(v).toFixed(1);
    el.push(`<line x1="${left}" x2="${width - 10}" y1="${yy}" y2="${yy}" stroke="#e5e5e5"/>`);
    el.push(`<text x="${left - 6}" y="${(y(v) + 4).toFixed(1)}" text-anchor="end">${v.toFixed(1)}</text>`);
  }
  el.push(`<line x1="${left}" x2="${width - 10}" y1="${y(1).toFixed(1)}" y2="${y(1).toFixed(1)}" stroke="#333" stroke-dasharray="5,4"/>`);
  // Bars.
  let gx = left + gap / 2;
  for (const g of groups) {
    g.bars.forEach((b, i) => {
      const x = gx + i * barW;
      const color = COLORS[baseOf(b.variant)] ?? '#999';
      if (b.s === null) {
        el.push(`<text x="${x + barW / 2}" y="${y(0) - 4}" text-anchor="middle" fill="#999">–</text>`);
        return;
      }
      const h = y(0) - y(b.s.median);
      el.push(`<rect x="${x + 1}" y="${y(b.s.median).toFixed(1)}" width="${barW - 2}" height="${h.toFixed(1)}" fill="${color}"><title>${esc(`${b.variant}: ${b.s.median.toFixed(2)} (${b.s.min.toFixed(2)}–${b.s.max.toFixed(2)})`)}</title></rect>`);
      if (b.s.max > b.s.min) {
        const cx = (x + barW / 2).toFixed(1);
        el.push(`<line x1="${cx}" x2="${cx}" y1="${y(b.s.min).toFixed(1)}" y2="${y(b.s.max).toFixed(1)}" stroke="#222"/>`);
        el.push(`<line x1="${x + 4}" x2="${x + barW - 4}" y1="${y(b.s.max).toFixed(1)}" y2="${y(b.s.max).toFixed(1)}" stroke="#222"/>`);
        el.push(`<line x1="${x + 4}" x2="${x + barW - 4}" y1="${y(b.s.min).toFixed(1)}" y2="${y(b.s.min).toFixed(1)}" stroke="#222"/>`);
      }
      el.push(`<text x="${(x + barW / 2).toFixed(1)}" y="${(y(Math.max(b.s.median, b.s.max)) - 3).toFixed(1)}" text-anchor="middle" font-size="8">${b.s.median.toFixed(2)}</text>`);
    });
    const cx = gx + (g.bars.length * barW) / 2;
    g.label.forEach((line, i) => el.push(`<text x="${cx.toFixed(1)}" y="${top + plotH + 16 + i * 12}" text-anchor="middle"${i > 0 ? ' fill="#555" font-size="9"' : ''}>${esc(line)}</text>`));
    gx += groupW(g);
  }
  el.push(`<line x1="${left}" x2="${width - 10}" y1="${y(0)}" y2="${y(0)}" stroke="#333"/>`);
  el.push('</svg>');
  return `${el.join('\n')}\n`;
}
