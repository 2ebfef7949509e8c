/**
 * What `tsa bench` writes: the table (errors as numbered footnotes under it,
 * so no message widens a column) and the run metadata stored in the JSON.
 */
import { execFileSync } from 'node:child_process';
import { availableParallelism, cpus } from 'node:os';
import type { Backend } from '../core/interface.js';
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
  const ours = (r: BenchRecord) => r.mode === 'tsa' && !r.peer;
  const table = formatTable(
    ['backend', 'mode', 'inputs', 'L', 'median ms', 'device ms', 'GFLOP/s', 'kept', 'speedup', 'ideal', 'select ms', 'select/dense'],
    records.map((r) => [
      r.backend,
      r.peer ? 'peer' : r.mode,
      r.inputs,
      String(r.seqLen),
      r.error ? footnote(r) : f(r.medianMs),
      r.deviceMedianMs === null ? '-' : f(r.deviceMedianMs),
      f(r.gflops),
      r.mode === 'dense' ? '-' : r.keptFraction.toFixed(3),
      Number.isFinite(r.speedup) ? `${f(r.speedup, 2)}x` : '-',
      ours(r) ? `${f(r.idealSpeedup, 2)}x` : '-',
      ours(r) ? f(r.selectionMs, 2) : '-',
      ours(r) ? percent(r.selectionMs / timeOf(denseOf(r) ?? { medianMs: NaN, deviceMedianMs: null })) : '-',
    ]),
  );
  const legend = records.some((r) => r.peer) ? ['speedup: our dense time / the row\'s time (peer rows: a dense peer, above 1x faster than our dense)'] : [];
  const lines = [...legend, ...notes.map((n, i) => `[${i + 1}] ${n.text} (${n.where.join(', ')})`)];
  return lines.length ? `${table}\n\n${lines.join('\n')}` : table;
}

export interface RunMeta {
  date: string;
  node: string;
  platform: string;
  cpu: { model: string; cores: number };
  /** `git rev-parse HEAD` (+ '-dirty' with local changes), else $TSA_COMMIT, else null. */
  commit: string | null;
  command: string[];
  backends: { name: string; description: string }[];
  /** The wasm backend's SIMD build ('simd' | 'relaxed-simd'), where it ran. */
  simdBuild: string | null;
  /** The webgpu backend's adapter and Dawn backend, where it ran. */
  adapter: string | null;
}

function gitCommit(): string | null {
  try {
    const git = (...args: string[]) => execFileSync('git', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    return `${git('rev-parse', 'HEAD')}${git('status', '--porcelain', '--untracked-files=no') ? '-dirty' : ''}`;
  } catch {
    return process.env.TSA_COMMIT ?? null;
  }
}

export function runMeta(backends: Backend[], command: string[]): RunMeta {
  const describe = (name: string, pattern: RegExp) => pattern.exec(backends.find((b) => b.name === name)?.description ?? '')?.[1] ?? null;
  return {
    date: new Date().toISOString(),
    node: process.version,
    platform: `${process.platform} ${process.arch}`,
    cpu: { model: cpus()[0]?.model.trim() ?? 'unknown', cores: availableParallelism() },
    commit: gitCommit(),
    command,
    backends: backends.map((b) => ({ name: b.name, description: b.description })),
    simdBuild: describe('wasm', /^wasm (\S+?),/),
    adapter: describe('webgpu', /^WebGPU on (.*?); attention/),
  };
}
