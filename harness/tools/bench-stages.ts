/**
 * Stage-perf mode of the benchmark (`tsa bench --stage NAME`): one stage of
 * the pipeline timed alone per backend, on the same generated inputs; the
 * stage's own inputs (scores, pooled scores, keep, indices) come from the
 * backend's earlier stages, outside the timing. Where the budget says dense,
 * select and attendSelected keep half of the prefix, so that they still run.
 * On webgpu these are the Float32Array methods: the wall time includes
 * uploads and readback, the device time is the stage's kernels.
 */
import { generateInput } from '../core/generators.js';
import type { Backend, ScoreShape } from '../core/interface.js';
import type { StageMethod } from '../core/stages.js';
import { resolveOptions } from '../core/validate.js';
import type { BenchRecord, Progress } from './bench.js';
import { timeOf } from './bench.js';
import { causalFlops } from '../core/cost.js';
import { measure } from './measure.js';

type Base = Pick<BenchRecord, 'backend' | 'seqLen' | 'heads' | 'kvHeads' | 'headDim' | 'inputs' | 'threads' | 'coverage'>;

export async function runStage(backend: Backend, stage: StageMethod, base: Base, seed: number, tag: string, progress: Progress): Promise<BenchRecord> {
  const input = generateInput(base.inputs, base, seed);
  const o = { coverage: base.coverage };
  const { window: W } = resolveOptions(o);
  const shape: ScoreShape = { heads: base.heads, prefixLen: base.seqLen - W };
  progress(`${tag} preparing ${stage}`);
  // Each stage's inputs, computed only as far as the timed stage needs.
  const needs = ['pool', 'budget', 'select', 'attendSelected'].includes(stage);
  const scores = needs ? await backend.scores(input, o) : null;
  const pooled = scores && stage !== 'pool' ? await backend.pool(scores, shape, o) : null;
  const budget = pooled && stage !== 'budget' ? await backend.budget(pooled, shape, o) : null;
  const keep = budget ? (budget.mode === 'sparse' ? budget.keep : Math.floor(shape.prefixLen / 2)) : shape.prefixLen;
  const indices = pooled && stage === 'attendSelected' ? await backend.select(pooled, shape, keep, o) : null;
  const keptLength = stage === 'select' || stage === 'attendSelected' ? keep + W : base.seqLen;
  const calls: Record<StageMethod, () => Promise<unknown>> = {
    scores: () => backend.scores(input, o),
    pool: () => backend.pool(scores!, shape, o),
    budget: () => backend.budget(pooled!, shape, o),
    select: () => backend.select(pooled!, shape, keep, o),
    attendSelected: () => backend.attendSelected(input, indices!, keptLength, o),
    dense: () => backend.dense(input, o),
  };
  progress(`${tag} ${stage}`);
  const m = await measure(async () => {
    await calls[stage]();
  }, backend);
  const attention = stage === 'attendSelected' || stage === 'dense';
  const rec: BenchRecord = {
    ...base,
    mode: stage,
    ...m,
    gflops: attention ? causalFlops(base, keptLength) / timeOf(m) / 1e6 : NaN,
    keptFraction: keptLength / base.seqLen,
    speedup: NaN,
    idealSpeedup: NaN,
    selectionMs: NaN,
  };
  progress(`${tag} ${stage} ${timeOf(m).toFixed(2)} ms${attention ? `, ${rec.gflops.toFixed(1)} GFLOP/s` : ''}`);
  return rec;
}
