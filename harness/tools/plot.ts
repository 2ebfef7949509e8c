/**
 * SVG plot of a benchmark: median latency (log scale) and speedup of
 * token-sparse over dense attention against context length (log2 scale).
 * A series that failed at some lengths (a peer running out of memory, say)
 * gets a cross at each of them on the panel's top edge and says so in its label.
 */
import { timeOf, type BenchRecord } from './bench.js';

const COLORS = ['#1f77b4', '#d62728', '#2ca02c', '#9467bd', '#ff7f0e', '#8c564b', '#e377c2', '#17becf'];
const W = 520;
const H = 340;
const M = { left: 64, right: 16, top: 36, bottom: 48 };

interface Series {
  label: string;
  points: [number, number][];
  dashed?: boolean;
  /** Lengths at which this series has no value because the run failed. */
  failedAt?: number[];
}

const lengthLabel = (x: number): string => (x >= 1024 ? `${x / 1024}K` : `${x}`);

/** Round tick values from 0 (or below) to at least yMax: steps of 1, 2, 2.5 or 5 times a power of ten, 4-8 intervals. */
export function roundTicks(yMin: number, yMax: number): number[] {
  const raw = (yMax - yMin) / 5;
  const p = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * p).find((st) => st >= raw)!;
  const lo = Math.floor(yMin / step) * step;
  const n = Math.max(1, Math.ceil((yMax - lo) / step - 1e-9));
  return Array.from({ length: n + 1 }, (_, i) => Number((lo + i * step).toPrecision(12)));
}

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

function panel(x0: number, title: string, yLabel: string, series: Series[], logY: boolean): string {
  const pts = series.flatMap((s) => s.points).filter(([, y]) => Number.isFinite(y) && (!logY || y > 0));
  if (pts.length === 0) return '';
  const lengths = [...new Set([...pts.map(([x]) => x), ...series.flatMap((s) => s.failedAt ?? [])])];
  const xs = lengths.map((x) => Math.log2(x));
  const ys = pts.map(([, y]) => (logY ? Math.log10(y) : y));
  const [xMin, xMax] = [Math.min(...xs), Math.max(...xs)];
  let [yMin, yMax] = [Math.min(...ys), Math.max(...ys)];
  if (!logY) yMin = Math.min(0, yMin);
  if (yMax - yMin < 1e-9) yMax = yMin + 1;
  let ticks: number[];
  if (logY) {
    const pad = (yMax - yMin) * 0.08;
    yMax += pad;
    yMin -= pad;
    ticks = Array.from({ length: Math.floor(yMax) - Math.ceil(yMin) + 1 }, (_, i) => 10 ** (Math.ceil(yMin) + i));
  } else {
    ticks = roundTicks(yMin, yMax * 1.04);
    [yMin, yMax] = [ticks[0]!, ticks[ticks.length - 1]!];
  }
  const px = (x: number) => x0 + M.left + ((Math.log2(x) - xMin) / Math.max(xMax - xMin, 1e-9)) * (W - M.left - M.right);
  const py = (y: number) => M.top + (1 - ((logY ? Math.log10(y) : y) - yMin) / (yMax - yMin)) * (H - M.top - M.bottom);
  const out: string[] = [];
  out.push(`<text x="${x0 + W / 2}" y="20" text-anchor="middle" font-weight="bold">${esc(title)}</text>`);
  out.push(`<rect x="${x0 + M.left}" y="${M.top}" width="${W - M.left - M.right}" height="${H - M.top - M.bottom}" fill="none" stroke="#888"/>`);
  for (const x of lengths) {
    out.push(`<text x="${px(x)}" y="${H - M.bottom + 16}" text-anchor="middle" font-size="11">${lengthLabel(x)}</text>`);
  }
  for (const t of ticks) {
    out.push(`<line x1="${x0 + M.left}" x2="${x0 + W - M.right}" y1="${py(t)}" y2="${py(t)}" stroke="#eee"/>`);
    out.push(`<text x="${x0 + M.left - 6}" y="${py(t) + 4}" text-anchor="end" font-size="11">${t}</text>`);
  }
  out.push(`<text x="${x0 + W / 2}" y="${H - 8}" text-anchor="middle" font-size="12">context length L</text>`);
  out.push(`<text transform="translate(${x0 + 14},${H / 2}) rotate(-90)" text-anchor="middle" font-size="12">${esc(yLabel)}</text>`);
  series.forEach((s, i) => {
    const p = s.points.filter(([, y]) => Number.isFinite(y) && (!logY || y > 0)).sort((a, b) => a[0] - b[0]);
    const failed = s.failedAt ?? [];
    if (!p.length && !failed.length) return;
    const color = COLORS[i % COLORS.length];
    for (const x of failed) {
      const [cx, cy] = [px(x), M.top + 6];
      out.push(`<path class="failed" d="M${(cx - 4).toFixed(1)},${cy - 4} l8,8 m0,-8 l-8,8" stroke="${color}" stroke-width="2"/>`);
    }
    const label = failed.length ? `${s.label} (failed at ${failed.map(lengthLabel).join(', ')})` : s.label;
    const d = p.map(([x, y], j) => `${j ? 'L' : 'M'}${px(x).toFixed(1)},${py(y).toFixed(1)}`).join(' ');
    out.push(`<path d="${d}" fill="none" stroke="${color}" stroke-width="2"${s.dashed ? ' stroke-dasharray="5,4"' : ''}/>`);
    for (const [x, y] of p) out.push(`<circle class="mark" data-series="${esc(s.label)}" data-x="${x}" cx="${px(x).toFixed(1)}" cy="${py(y).toFixed(1)}" r="3" fill="${color}"/>`);
    out.push(`<text x="${x0 + M.left + 8}" y="${M.top + 14 + 14 * i}" font-size="11" fill="${color}">${esc(label)}</text>`);
  });
  return out.join('\n');
}

function group(records: BenchRecord[], key: (r: BenchRecord) => string): Map<string, BenchRecord[]> {
  const m = new Map<string, BenchRecord[]>();
  for (const r of records) m.set(key(r), [...(m.get(key(r)) ?? []), r]);
  return m;
}

export function benchSvg(records: BenchRecord[], title: string): string {
  const latency: Series[] = [...group(records, (r) => `${r.backend} ${r.mode} (${r.inputs})`)].map(([label, rs]) => ({
    label,
    points: rs.filter((r) => !r.error).map((r) => [r.seqLen, timeOf(r)] as [number, number]),
    dashed: rs[0]!.mode === 'dense',
    failedAt: rs.filter((r) => r.error).map((r) => r.seqLen),
  }));
  const sparse = records.filter((r) => (r.mode === 'tsa' || r.mode === 'xattn' || r.mode === 'tsa+xattn') && !r.peer && !r.error);
  const speedup: Series[] = [...group(sparse, (r) => `${r.backend} ${r.mode} (${r.inputs})`)].flatMap(([label, rs]) => [
    { label: `${label} measured`, points: rs.map((r) => [r.seqLen, r.speedup] as [number, number]) },
    { label: `${label} ideal (L/L')^2 / share`, points: rs.map((r) => [r.seqLen, r.idealSpeedup] as [number, number]), dashed: true },
  ]);
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${2 * W}" height="${H + 20}" font-family="sans-serif" font-size="12">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    panel(0, `${title}: median time (ms; device time where measured)`, 'ms (log)', latency, true),
    panel(W, 'sparse speedup over dense', 'speedup (x)', speedup, false),
    `</svg>`,
  ].join('\n');
}
