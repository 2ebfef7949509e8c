/**
 * The Token Sparse Attention pipeline composed from a backend's stages:
 * score -> pool -> budget -> select -> (gather, attend, scatter).
 * defineBackend (backend.ts) uses it as the tokenSparseAttention of backends
 * without a fused layer (reference, wasm); runPipeline is the public version
 * that validates first. With options.blockSparse the attention is XAttention's three block
 * stages (block-sparse.ts), on the compact rows when the layer is sparse, else on all rows; given
 * a cost model (the cost rule on), only where block-cost.ts judges that they pay.
 */
import { blockVerdict } from './block-cost.js';
import { blockSparseAttention, blockStagesOf, type BlockStages } from './block-sparse.js';
import type { CostModel } from './cost.js';
import type { AttentionInput, Budget, ResolvedTsaOptions, ScoreShape, StageTimings, TsaOptions, TsaResult } from './interface.js';
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

/** What a layer may call: the pipeline's stages and, for options.blockSparse, the block stages. */
export type LayerStages = PipelineStages & Partial<BlockStages> & { readonly name?: string };

/** Validates, then runs the whole pipeline over `stages`. */
export async function runPipeline(stages: LayerStages, input: AttentionInput, options: TsaOptions | undefined): Promise<TsaResult> {
  const o = resolveOptions(options);
  validateInput(input);
  const early = denseBeforeScoring(input.seqLen, o);
  return early ? denseLayer(stages, input, o, early) : pipelineLayer(stages, input, o);
}

/**
 * A layer that runs dense under `budget` (decided before any scoring). `blockCost`: the cost
 * rule's model where it is on (the block stages then run only where they pay), else null.
 */
export async function denseLayer(stages: LayerStages, input: AttentionInput, o: ResolvedTsaOptions, budget: Budget, blockCost: CostModel | null = null): Promise<TsaResult> {
  const timings: StageTimings = emptyTimings();
  const start = performance.now();
  const attended = await attention(stages, input, null, input.seqLen, o, timings, blockCost);
  timings.attend = timings.total = performance.now() - start;
  return { ...attended, budget, indices: null, keptLength: input.seqLen, keptFraction: 1, timings };
}

/**
 * The attention of a layer: attendSelected on `indices`, or dense; with blockSparse XAttention's
 * block stages instead, unless the cost rule (`blockCost`) judges they would not pay. The probe's
 * time counts as blockScores.
 */
async function attention(
  stages: LayerStages,
  input: AttentionInput,
  indices: Int32Array | null,
  keptLength: number,
  o: ResolvedTsaOptions,
  timings: StageTimings,
  blockCost: CostModel | null,
): Promise<Pick<TsaResult, 'output' | 'blockSparse' | 'blockDecision'>> {
  if (o.blockSparse) {
    const blocks = blockStagesOf(stages, stages.name);
    if (!blockCost) return blockSparseAttention(blocks, input, indices, keptLength, o, timings);
    const t = performance.now();
    const blockDecision = await blockVerdict(blocks, input, indices, keptLength, o, blockCost);
    const probeMs = performance.now() - t;
    if (blockDecision.verdict === 'run') {
      const r = await blockSparseAttention(blocks, input, indices, keptLength, o, timings);
      timings.blockScores! += probeMs;
      return { ...r, blockDecision };
    }
    timings.blockScores = probeMs;
    return { output: await plainAttention(stages, input, indices, keptLength, o), blockDecision };
  }
  return { output: await plainAttention(stages, input, indices, keptLength, o) };
}

function plainAttention(stages: LayerStages, input: AttentionInput, indices: Int32Array | null, keptLength: number, o: ResolvedTsaOptions): Promise<Float32Array> {
  return indices !== null ? stages.attendSelected(input, indices, keptLength, o) : stages.dense(input, o);
}

/** The pipeline where the layer is not dense before scoring (L > minTokens + W, so a prefix remains); `blockCost` as for denseLayer. */
export async function pipelineLayer(stages: LayerStages, input: AttentionInput, o: ResolvedTsaOptions, blockCost: CostModel | null = null): Promise<TsaResult> {
  const L = input.seqLen;
  const timings: StageTimings = emptyTimings();
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
  const attended = await attention(stages, input, indices, keptLength, o, timings, blockCost);
  timings.attend = lap();
  timings.total = performance.now() - start;
  return { ...attended, budget, indices, keptLength, keptFraction: keptLength / L, timings };
}
