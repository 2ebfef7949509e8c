/**
 * The Token Sparse Attention pipeline composed from a backend's stages:
 * score -> pool -> budget -> select -> (gather, attend, scatter).
 * defineBackend (backend.ts) uses it as the tokenSparseAttention of backends
 * without a fused layer (reference, wasm); runPipeline is the public version
 * that validates first.
 */
import type { AttentionInput, Budget, ResolvedTsaOptions, ScoreShape, TsaOptions, TsaResult } from './interface.js';
import { denseBeforeScoring, keptLengthOf } from './rules.js';
import { emptyTimings } from './stages.js';
import { resolveOptions, validateInput } from './validate.js';

/**
 * The stages the pipeline calls, on validated arrays and resolved options
 * (a whole Backend works too). The pipeline only passes on arrays produced by
 * the stages themselves.
 */
export interface PipelineStages {
  scores(input: AttentionInput, o: ResolvedTsaOptions): Promise<Float32Array>;
  pool(scores: Float32Array, shape: ScoreShape, o: ResolvedTsaOptions): Promise<Float32Array>;
  budget(pooled: Float32Array, shape: ScoreShape, o: ResolvedTsaOptions): Promise<Budget>;
  select(pooled: Float32Array, shape: ScoreShape, keep: number, o: ResolvedTsaOptions): Promise<Int32Array>;
  attendSelected(input: AttentionInput, indices: Int32Array, keptLength: number, o: ResolvedTsaOptions): Promise<Float32Array>;
  dense(input: AttentionInput, o: ResolvedTsaOptions): Promise<Float32Array>;
}

/** Validates, then runs the whole pipeline over `stages`. */
export async function runPipeline(stages: PipelineStages, input: AttentionInput, options: TsaOptions | undefined): Promise<TsaResult> {
  const o = resolveOptions(options);
  validateInput(input);
  const early = denseBeforeScoring(input.seqLen, o);
  return early ? denseLayer(stages, input, o, early) : pipelineLayer(stages, input, o);
}

/** A layer that runs dense under `budget` (decided before any scoring). */
export async function denseLayer(stages: Pick<PipelineStages, 'dense'>, input: AttentionInput, o: ResolvedTsaOptions, budget: Budget): Promise<TsaResult> {
  const timings = emptyTimings();
  const start = performance.now();
  const output = await stages.dense(input, o);
  timings.attend = timings.total = performance.now() - start;
  return { output, budget, indices: null, keptLength: input.seqLen, keptFraction: 1, timings };
}

/** The pipeline where the layer is not dense before scoring (L > minTokens + W, so a prefix remains). */
export async function pipelineLayer(stages: PipelineStages, input: AttentionInput, o: ResolvedTsaOptions): Promise<TsaResult> {
  const L = input.seqLen;
  const timings = emptyTimings();
  const start = performance.now();
  let t = start;
  const lap = (): number => {
    const now = performance.now();
    const dt = now - t;
    t = now;
    return dt;
  };
  const shape = { heads: input.heads, prefixLen: L - o.window };
  const scores = await stages.scores(input, o);
  timings.scores = lap();
  const pooled = await stages.pool(scores, shape, o);
  timings.pool = lap();
  const budget = await stages.budget(pooled, shape, o);
  timings.budget = lap();
  let indices: Int32Array | null = null;
  if (budget.mode === 'sparse') {
    indices = await stages.select(pooled, shape, budget.keep, o);
    timings.select = lap();
  }
  const keptLength = keptLengthOf(budget, L, o);
  const output = indices !== null ? await stages.attendSelected(input, indices, keptLength, o) : await stages.dense(input, o);
  timings.attend = lap();
  timings.total = performance.now() - start;
  return { output, budget, indices, keptLength, keptFraction: keptLength / L, timings };
}
