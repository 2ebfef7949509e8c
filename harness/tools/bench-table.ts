/** The benchmark's result table, printed by `tsa bench` and shown by the demo page (no node: imports). */
import type { BenchRecord } from './bench.js';
import { formatTable } from './format.js';

export function benchTable(records: BenchRecord[]): string {
  const f = (x: number, d = 1) => (Number.isFinite(x) ? x.toFixed(d) : '-');
  const denseOf = (r: BenchRecord) =>
    records.find((d) => d.mode === 'dense' && !d.peer && d.backend === (r.peer?.comparedWith ?? r.backend) && d.seqLen === r.seqLen && d.inputs === r.inputs);
  return formatTable(
    ['backend', 'mode', 'inputs', 'L', 'median ms', 'device ms', 'GFLOP/s', 'kept', 'speedup', 'ideal', 'select ms', 'select/dense'],
    records.map((r) => [
      r.backend,
      r.peer ? `dense (peer)` : r.mode,
      r.inputs,
      String(r.seqLen),
      r.error ? `error: …${r.error.trim().slice(-50)}` : f(r.medianMs),
      r.deviceMedianMs === null ? '-' : f(r.deviceMedianMs),
      f(r.gflops),
      r.mode === 'tsa' ? r.keptFraction.toFixed(3) : '-',
      r.peer ? (r.error ? "-" : `peer time ${f(1 / r.speedup, 2)}x ours`) : `${f(r.speedup, 2)}x`,
      r.mode === 'tsa' && !r.peer ? `${f(r.idealSpeedup, 2)}x` : '-',
      r.mode === 'tsa' && !r.peer ? f(r.selectionMs, 2) : '-',
      r.mode === 'tsa' && !r.peer ? `${f((100 * r.selectionMs) / (denseOf(r)?.medianMs ?? NaN), 1)}%` : '-',
    ]),
  );
}
