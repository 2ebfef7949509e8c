/**
 * The benchmark's result table, printed by `tsa bench` and shown by the demo page (no node:
 * imports): errors as numbered footnotes under it, so no message widens a column.
 */
import { timeOf, type BenchRecord } from './bench.js';
import { formatTable } from './format.js';

/** The table of `records`, then a legend where peers ran and `[n] message (lengths)` for each distinct error. */
export function benchTable(records: BenchRecord[]): string {
  const f = (x: number, d = 1) => (Number.isFinite(x) ? x.toFixed(d) : '-');
  const percent = (x: number) => (Number.isFinite(x) ? `${(100 * x).toFixed(1)}%` : '-');
  const notes: { text: string; where: string[] }[] = [];
  const footnote = (r: BenchRecord): string => {
    const text = `${r.backend}: ${r.error!.replace(/\s+/g, ' ').trim()}`;
    let i = notes.findIndex((n) => n.text === text);
    if (i < 0) i = notes.push({ text, where: [] }) - 1;
    notes[i]!.where.push(`L=${r.seqLen}`);
    return `failed [${i + 1}]`;
  };
  const denseOf = (r: BenchRecord) =>
    records.find((d) => d.mode === 'dense' && !d.peer && d.backend === (r.peer?.comparedWith ?? r.backend) && d.seqLen === r.seqLen && d.inputs === r.inputs);
  const ours = (r: BenchRecord) => (r.mode === 'tsa' || r.mode === 'xattn' || r.mode === 'tsa+xattn') && !r.peer;
  const ofDense = (r: BenchRecord, ms: number) => percent(ms / timeOf(denseOf(r) ?? { medianMs: NaN, deviceMedianMs: null }));
  // The XAttention columns only where an XAttention method ran.
  const blocks = records.some((r) => r.blockShare !== undefined || r.blockSkipped);
  // A share, or where the cost rule skipped the block stages its probe's estimate.
  const blockCell = (r: BenchRecord): string =>
    r.blockShare !== undefined ? r.blockShare.toFixed(3) : r.blockSkipped ? `skipped (est. ${f(r.blockSkipped.estimatedShare, 3)})` : '-';
  const header = ['backend', 'mode', 'inputs', 'L', 'median ms', 'device ms', 'GFLOP/s', 'kept', 'blocks', 'speedup', 'ideal', 'select ms', 'select/dense', 'block scoring/dense'];
  const shown = (_: unknown, i: number) => blocks || (header[i] !== 'blocks' && header[i] !== 'block scoring/dense');
  const table = formatTable(
    header.filter(shown),
    records.map((r) => [
      r.backend,
      r.peer ? 'peer' : r.mode,
      r.inputs,
      String(r.seqLen),
      r.error ? footnote(r) : f(r.medianMs),
      r.deviceMedianMs === null ? '-' : f(r.deviceMedianMs),
      f(r.gflops),
      r.mode === 'dense' ? '-' : r.keptFraction.toFixed(3),
      blockCell(r),
      Number.isFinite(r.speedup) ? `${f(r.speedup, 2)}x` : '-',
      ours(r) ? `${f(r.idealSpeedup, 2)}x` : '-',
      ours(r) ? f(r.selectionMs, 2) : '-',
      ours(r) ? ofDense(r, r.selectionMs) : '-',
      r.blockScoringMs !== undefined ? ofDense(r, r.blockScoringMs) : '-',
    ].filter(shown)),
  );
  const legend = records.some((r) => r.peer) ? ['speedup: our dense time / the row\'s time (peer rows: a dense peer, above 1x faster than our dense)'] : [];
  const lines = [...legend, ...notes.map((n, i) => `[${i + 1}] ${n.text} (${n.where.join(', ')})`)];
  return lines.length ? `${table}\n\n${lines.join('\n')}` : table;
}
