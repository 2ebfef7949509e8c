/**
 * The rules every backend shares, written once: when a layer is dense before
 * any scoring (spec step 2.6), and how the pruned count c becomes a Budget
 * (spec steps 2.4-2.5). Backends compute c; the decision and its wording are here.
 */
import type { Budget, ResolvedTsaOptions } from './interface.js';

/** The dense fallbacks that need no scores (zero coverage, short context), or null. */
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
 * keep = max(minTokens, P - pruned).
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

/** L' of a layer under a budget: keep + W when sparse, L when dense. */
export function keptLengthOf(budget: Budget, seqLen: number, o: ResolvedTsaOptions): number {
  return budget.mode === 'sparse' ? budget.keep + o.window : seqLen;
}
