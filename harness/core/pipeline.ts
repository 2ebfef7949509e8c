/**
 * The Token Sparse Attention pipeline composed from a backend's stages:
 * score -> pool -> budget -> select -> (gather, attend, scatter).
 * CPU backends use it as their `tokenSparseAttention`; the GPU backend runs
 * its own fused version to avoid readbacks between stages.
 */
import type { AttentionInput, Backend, Budget, ResolvedTsaOptions, TsaOptions, TsaResult } from './interface.js';
import { resolveOptions, validateInput } from './validate.js';

/** The dense fallbacks that need no scores (spec step 2.6), or null. */
export function denseBeforeScoring(seqLen: number, o: ResolvedTsaOptions): Budget | null {
  if (o.coverage === 0) {
    return { mode: 'dense', reason: 'zero-coverage', detail: 'coverage (tau) is 0: the layer is dense' };
  }
  if (seqLen <= o.minTokens + o.window) {
    return {
      mode: 'dense',
      reason: 'short-context',
      detail: `seqLen ${seqLen} <= minTokens ${o.minTokens} + window ${o.window}`,
    };
  }
  return null;
}

/**
 * The keep-count rule after the count: c = number of ascending cumulative
 * sums below tau. c == 0 runs dense; otherwise pruned = c + 1 and
 * keep = max(minTokens, P - pruned) (spec step 2.4-2.5). Every backend turns
 * its count into a Budget here, so the rule and its wording exist once.
 */
export function budgetFromCount(c: number, prefixLen: number, o: ResolvedTsaOptions): Budget {
  if (c === 0) return nothingPruned(o);
  const pruned = c + 1;
  return { mode: 'sparse', keep: Math.max(o.minTokens, prefixLen - pruned), pruned };
}

export function nothingPruned(o: ResolvedTsaOptions): Budget {
  return {
    mode: 'dense',
    reason: 'nothing-pruned',
    detail: `the smallest token already holds >= tau = ${o.coverage} of the attention mass`,
  };
}

/**
 * The stages the pipeline calls. It validates the input and options once and
 * only passes on arrays produced by the stages themselves, so a backend may
 * hand it versions of its stages that skip re-validating (each validateInput
 * is a full pass over Q, K and V); a whole Backend works too.
 */
export type PipelineStages = Pick<Backend, 'scores' | 'pool' | 'budget' | 'select' | 'attendSelected' | 'dense'>;

export async function runPipeline(
  backend: PipelineStages,
  input: AttentionInput,
  options: TsaOptions | undefined,
): Promise<TsaResult> {
  validateInput(input);
  // No window check here: window >= L is a short context and runs dense (spec step 2.6).
  const o = resolveOptions(options);
  const L = input.seqLen;
  const timings = { scores: 0, pool: 0, budget: 0, select: 0, attend: 0, total: 0 };
  const start = performance.now();
  let t = start;
  const lap = (): number => {
    const now = performance.now();
    const dt = now - t;
    t = now;
    return dt;
  };

  let budget = denseBeforeScoring(L, o);
  let indices: Int32Array | null = null;
  let output: Float32Array;
  if (budget === null) {
    const shape = { heads: input.heads, prefixLen: L - o.window };
    const scores = await backend.scores(input, o);
    timings.scores = lap();
    const pooled = await backend.pool(scores, shape, o);
    timings.pool = lap();
    budget = await backend.budget(pooled, shape, o);
    timings.budget = lap();
    if (budget.mode === 'sparse') {
      indices = await backend.select(pooled, shape, budget.keep, o);
      timings.select = lap();
    }
  }
  const keptLength = budget.mode === 'sparse' ? budget.keep + o.window : L;
  if (indices !== null) {
    output = await backend.attendSelected(input, indices, keptLength);
  } else {
    output = await backend.dense(input);
  }
  timings.attend = lap();
  timings.total = performance.now() - start;
  return { output, budget, indices, keptLength, keptFraction: keptLength / L, timings };
}
