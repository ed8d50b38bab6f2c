// Numbers and times as the dashboard shows them.
const SI = ['', 'k', 'M', 'G', 'T'];

/** 1234567 -> "1.23 M" (with `unit` after it). */
export function si(v, unit = '') {
  if (v === null || v === undefined || Number.isNaN(v)) return '–';
  let i = 0;
  let x = Math.abs(v);
  while (x >= 1000 && i < SI.length - 1) {
    x /= 1000;
    i++;
  }
  const n = x >= 100 || i === 0 ? Math.round(x) : x.toFixed(x >= 10 ? 1 : 2);
  return `${v < 0 ? '-' : ''}${n}${SI[i] || unit ? ' ' : ''}${SI[i]}${unit}`;
}

export const pct = (f) => (f === null || f === undefined ? '–' : `${(f * 100).toFixed(1)} %`);

/** Seconds since an ISO time, as "12 s ago". */
export function ago(iso, now = Date.now()) {
  const s = Math.max(0, Math.round((now - Date.parse(iso)) / 1000));
  if (s < 120) return `${s} s ago`;
  if (s < 7200) return `${Math.round(s / 60)} min ago`;
  return `${Math.round(s / 3600)} h ago`;
}

export const clock = (iso) => new Date(iso).toLocaleTimeString([], { hour12: false });
