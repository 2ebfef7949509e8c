/**
 * Conformance with the authors' implementation: runs every stage of a backend
 * on every case of a golden directory and compares with the tolerances of the
 * golden README (indices and keep count exact; scores relative 1e-5; outputs
 * absolute 2e-5). Each stage gets the golden inputs of that stage, so one
 * wrong stage shows as one failing row. A golden-xattn directory (xattn_manifest.json) runs the
 * XAttention checks of conformance-xattn.ts instead.
 */
import type { Backend, Budget, Precision } from '../core/interface.js';
import type { BlockStageName, StageMethod } from '../core/stages.js';
import { f16OutputBound } from '../core/precision.js';
import { maxAbsErr, maxRelErr } from '../core/compare.js';
import { checkXattnRun } from './conformance-xattn.js';
import { loadGoldenCase, goldenCaseNames, type GoldenCase } from './golden.js';
import { isXattnDir, loadXattnRun, xattnRunNames } from './golden-xattn.js';

export const TOLERANCE = { scoresRel: 1e-5, outputAbs: 2e-5 } as const;

export interface ConformanceRow {
  case: string;
  backend: string;
  /** The stage method checked (core/stages.ts STAGE_METHODS, BLOCK_STAGES), or the whole pipeline. */
  stage: StageMethod | BlockStageName | 'pipeline';
  tau: number | null;
  pass: boolean;
  /** What was compared and the worst deviation. */
  detail: string;
  ms: number;
}

/** First position where two index arrays differ, or -1. */
function firstDiff(a: Int32Array | null, b: Int32Array): number {
  if (!a || a.length !== b.length) return 0;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return i;
  return -1;
}

function describeBudget(b: Budget): string {
  return b.mode === 'sparse' ? `sparse keep=${b.keep} pruned=${b.pruned}` : `dense (${b.reason})`;
}

export async function timed<T>(fn: () => Promise<T>): Promise<[T, number]> {
  const t0 = performance.now();
  const value = await fn();
  return [value, performance.now() - t0];
}

/**
 * Runs every stage of `backend` on one golden case. `precision` 'f16' asks each
 * call for it; outputs are then held to the f16 contract (core/precision.ts)
 * instead of 2e-5, while scores, budgets and indices keep their tolerances.
 */
export async function checkCase(backend: Backend, g: GoldenCase, precision: Precision = 'f32'): Promise<ConformanceRow[]> {
  const rows: ConformanceRow[] = [];
  const row = (stage: ConformanceRow['stage'], tau: number | null, pass: boolean, detail: string, ms: number) =>
    rows.push({ case: g.name, backend: backend.name, stage, tau, pass, detail, ms });
  const { input } = g;
  const W = g.window;
  const shape = { heads: input.heads, prefixLen: input.seqLen - W };
  const base = g.runs[0]?.options;
  if (!base) throw new Error(`case ${g.name} has no runs`);
  const p = precision === 'f16' ? { precision } : {};
  const outTol = precision === 'f16' ? f16OutputBound(input) : TOLERANCE.outputAbs;
  const tolText = outTol.toExponential(2);

  if (g.scoresRaw) {
    const [s, ms] = await timed(() => backend.scores(input, base));
    const e = maxRelErr(s, g.scoresRaw);
    row('scores', null, e <= TOLERANCE.scoresRel, `max rel err ${e.toExponential(2)} (tol ${TOLERANCE.scoresRel})`, ms);
  }
  if (g.scoresRaw && g.pooled) {
    const [p, ms] = await timed(() => backend.pool(g.scoresRaw!, shape, base));
    const e = maxRelErr(p, g.pooled);
    row('pool', null, e <= TOLERANCE.scoresRel, `max rel err ${e.toExponential(2)} (tol ${TOLERANCE.scoresRel})`, ms);
  }
  if (g.denseLastW) {
    const [out, ms] = await timed(() => backend.dense(input, p));
    const HD = input.heads * input.headDim;
    const e = maxAbsErr(out.subarray((input.seqLen - W) * HD), g.denseLastW);
    row('dense', null, e <= outTol, `last ${W} rows: max abs err ${e.toExponential(2)} (tol ${tolText})`, ms);
  }

  for (const run of g.runs) {
    const expected = run.keep === null ? 'dense' : `sparse keep=${run.keep} pruned=${run.pruned}`;
    if (g.pooled) {
      const [b, ms] = await timed(() => backend.budget(g.pooled!, shape, run.options));
      const ok = run.keep === null ? b.mode === 'dense' : b.mode === 'sparse' && b.keep === run.keep && b.pruned === run.pruned;
      row('budget', run.tau, ok, `got ${describeBudget(b)}, expected ${expected}`, ms);
    }
    if (g.pooled && run.indices && run.keep !== null) {
      const [idx, ms] = await timed(() => backend.select(g.pooled!, shape, run.keep!, run.options));
      const at = firstDiff(idx, run.indices);
      row('select', run.tau, at < 0, at < 0 ? `all ${run.indices.length} indices equal` : `first difference at entry ${at}`, ms);
      const [out, ms2] = await timed(() => backend.attendSelected(input, run.indices!, run.keptLength, p));
      const e = maxAbsErr(out, run.output);
      row('attendSelected', run.tau, e <= outTol, `max abs err ${e.toExponential(2)} (tol ${tolText})`, ms2);
    }
    const [res, ms] = await timed(() => backend.tokenSparseAttention(input, { ...run.options, ...p }));
    const problems: string[] = [];
    if (res.keptLength !== run.keptLength) problems.push(`L' ${res.keptLength} != ${run.keptLength}`);
    if (run.keep === null ? res.budget.mode !== 'dense' : res.budget.mode !== 'sparse' || res.budget.keep !== run.keep) {
      problems.push(`budget ${describeBudget(res.budget)} != ${expected}`);
    }
    if (run.indices) {
      const at = firstDiff(res.indices, run.indices);
      if (at >= 0) problems.push(`indices differ from entry ${at}`);
    }
    const e = maxAbsErr(res.output, run.output);
    if (!(e <= outTol)) problems.push(`output max abs err ${e.toExponential(2)} > ${tolText}`);
    row(
      'pipeline',
      run.tau,
      problems.length === 0,
      problems.length ? problems.join('; ') : `L'=${res.keptLength}, indices exact, output max abs err ${e.toExponential(2)}`,
      ms,
    );
  }
  return rows;
}

/** Runs every case of a golden directory (or every run of a golden-xattn directory) on each backend. */
export async function runConformance(
  dir: string,
  backends: Backend[],
  onRow: (row: ConformanceRow) => void = () => {},
  precision: Precision = 'f32',
): Promise<ConformanceRow[]> {
  const xattn = isXattnDir(dir);
  const all: ConformanceRow[] = [];
  for (const name of xattn ? xattnRunNames(dir) : goldenCaseNames(dir)) {
    let check: (backend: Backend) => Promise<ConformanceRow[]>;
    if (xattn) {
      const run = loadXattnRun(dir, name);
      check = (b) => checkXattnRun(b, run, precision);
    } else {
      const g = loadGoldenCase(dir, name);
      check = (b) => checkCase(b, g, precision);
    }
    for (const backend of backends) {
      for (const r of await check(backend)) {
        onRow(r);
        all.push(r);
      }
    }
  }
  return all;
}
