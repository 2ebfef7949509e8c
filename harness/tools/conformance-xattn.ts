/**
 * XAttention conformance with the authors' code: every run of a golden-xattn directory
 * (../shared/golden-xattn) on a backend, each block stage on the golden inputs of that stage
 * (blockScores on the run's sequence, blockSelect on the golden masses, attendBlocks on the golden
 * mask), then the composed pipeline. Tolerances of the golden README: masks exact, masses
 * relative 1e-5, outputs absolute 2e-5; with precision 'f16' the attention asks for f16 and the
 * outputs are held to the f16 contract (core/precision.ts), masses and masks stay exact (the
 * block scores are f32 in both). A backend without the block stages fails every run.
 */
import { compactInput, hasBlockStages, scatterCompact } from '../core/block-sparse.js';
import { maxAbsErr, maxRelErr } from '../core/compare.js';
import type { Backend, Precision } from '../core/interface.js';
import { f16OutputBound } from '../core/precision.js';
import { mean } from '../core/stats.js';
import { TOLERANCE, timed, type ConformanceRow } from './conformance.js';
import type { XattnRun } from './golden-xattn.js';

/** Relative tolerance of block masses (golden-xattn README). */
export const MASS_REL = 1e-5;

/** Where two masks differ: "all N bytes equal", or the count and the first (head, query block, key block). */
function maskDiff(a: Uint8Array | undefined, b: Uint8Array, nb: number): string | null {
  if (!a || a.length !== b.length) return `mask has ${a?.length ?? 0} bytes, expected ${b.length}`;
  let count = 0;
  let first = -1;
  for (let i = 0; i < b.length; i++) {
    if (a[i] !== b[i]) {
      count++;
      if (first < 0) first = i;
    }
  }
  if (count === 0) return null;
  const [h, i, j] = [Math.floor(first / (nb * nb)), Math.floor(first / nb) % nb, first % nb];
  return `${count} mask bytes differ, first at head ${h} query block ${i} key block ${j} (got ${a[first]}, expected ${b[first]})`;
}

/** Runs the block stages and the composed pipeline of one golden-xattn run. */
export async function checkXattnRun(backend: Backend, run: XattnRun, precision: Precision = 'f32'): Promise<ConformanceRow[]> {
  const rows: ConformanceRow[] = [];
  const row = (stage: ConformanceRow['stage'], pass: boolean, detail: string, ms: number) =>
    rows.push({ case: run.name, backend: backend.name, stage, tau: run.indices ? run.options.coverage : null, pass, detail, ms });
  const o = precision === 'f16' ? { ...run.options, precision } : run.options;
  const { input } = run;
  const outTol = precision === 'f16' ? f16OutputBound(input) : TOLERANCE.outputAbs;
  if (!hasBlockStages(backend)) {
    row('blockScores', false, `the ${backend.name} backend has no block-sparse stages (blockScores, blockSelect, attendBlocks) yet`, 0);
  } else {
    const x = run.indices ? compactInput(input, run.indices, run.n) : input;
    const [masses, ms] = await timed(() => backend.blockScores(x, o));
    const e = maxRelErr(masses, run.masses);
    row('blockScores', masses.length === run.masses.length && e <= MASS_REL, `max rel err ${e.toExponential(2)} (tol ${MASS_REL})`, ms);
    const [mask, ms2] = await timed(() => backend.blockSelect(run.masses, { heads: x.heads, blocks: run.blocks }, o));
    const diff = maskDiff(mask, run.mask, run.blocks);
    row('blockSelect', diff === null, diff ?? `all ${run.mask.length} mask bytes equal`, ms2);
    const [out, ms3] = await timed(() => backend.attendBlocks(x, run.mask, o));
    const full = run.indices ? scatterCompact(out, run.indices, run.n, input.heads, input.headDim, input.seqLen) : out;
    const e3 = maxAbsErr(full, run.output);
    row('attendBlocks', e3 <= outTol, `max abs err ${e3.toExponential(2)} (tol ${outTol.toPrecision(3)})`, ms3);
  }
  const t0 = performance.now();
  try {
    const res = await backend.tokenSparseAttention(input, o);
    const problems: string[] = [];
    const bs = res.blockSparse;
    if (!bs) problems.push('no blockSparse result');
    else if (bs.composed !== (run.indices !== null)) problems.push(`composed ${bs.composed}, expected ${run.indices !== null}`);
    if (res.keptLength !== run.n) problems.push(`L' ${res.keptLength} != ${run.n}`);
    const diff = maskDiff(bs?.mask, run.mask, run.blocks);
    if (diff) problems.push(diff);
    const e = maxAbsErr(res.output, run.output);
    if (!(e <= outTol)) problems.push(`output max abs err ${e.toExponential(2)} > ${outTol.toPrecision(3)}`);
    const share = bs ? `share ${mean(bs.selectedShare).toFixed(3)}, ` : '';
    row('pipeline', problems.length === 0, problems.length ? problems.join('; ') : `mask exact, ${share}output max abs err ${e.toExponential(2)}`, performance.now() - t0);
  } catch (err) {
    row('pipeline', false, `threw ${(err as Error).name}: ${(err as Error).message}`, performance.now() - t0);
  }
  return rows;
}
