/**
 * Tolerances of the shared backend suite, derived from the arithmetic of each
 * kind of backend and stated once here so every property uses the same ones.
 */
import type { AttentionInput } from '../../harness/core/interface.js';
import { f16OutputBound } from '../../harness/core/precision.js';
import { maxAbs, maxRowNorm } from './oracle.js';

/** Unit roundoff of float32 (half an ulp at 1). */
export const U = 2 ** -24;

/**
 * 'float64': accumulates in f64 and rounds results to f32 (the reference backend); compared
 * with the f64 oracle only the final f32 rounding remains, so selections must be identical.
 * 'float32': computes in f32 (WASM, WebGPU); rounding can move near-ties, so selections are
 * checked for validity, not identity.
 * 'float16': precision 'f16' of the WebGPU backend: scoring of f16-rounded q and k, selection as
 * 'float32' with the scores' rounding term, attention outputs within the f16 contract
 * (harness/core/precision.ts).
 */
export type Precision = 'float64' | 'float32' | 'float16';

export interface Tolerances {
  /** Scores vs the f64 oracle, relative per element. */
  scoreRel: number;
  /** pool(s) vs f64 pooling of the same s, relative per element. */
  poolRel: number;
  /** pool(scores(x)) vs the f64 oracle's pooled scores: both errors. */
  pooledRel: number;
  /** Count rule on the backend's own pooled scores: slack on cumulative sums near tau. */
  stageCum(tau: number, prefixLen: number): number;
  /** Count rule on the oracle's pooled scores (adds the pooled-score error). */
  cum(tau: number, prefixLen: number): number;
  /** Attention outputs vs f64 attention, absolute. */
  outAbs: number;
}

export function tolerances(precision: Precision, input: AttentionInput): Tolerances {
  const vMax = maxAbs(input.v);
  if (precision === 'float64') {
    // One rounding of an f64 result to f32 (<= U relative); f64 summation-order differences
    // (~1e-13) are far below it. pooled = pool of rounded scores, rounded again: 4U.
    const pooledRel = 4 * U;
    return {
      scoreRel: 2 * U,
      poolRel: 2 * U,
      pooledRel,
      // f64 cumulative sums of <= 1e5 terms in another order differ by < 1e5 * 2^-53 ~ 1e-11.
      stageCum: () => 1e-11,
      cum: (tau) => 2 * pooledRel * tau + 1e-11,
      // Outputs are convex combinations of v rows: one f32 rounding is <= U * max|v|.
      outAbs: 2 * U * vMax,
    };
  }
  // A logit q.k/sqrt(D) summed in f32 errs by about sqrt(D) U |q||k| / sqrt(D) = U |q||k|
  // (random-walk rounding over D products); exp() turns that absolute error into the same
  // relative error of every probability. Factor 4 for confidence, with the largest row norms.
  const norms = maxRowNorm(input.q, input.headDim) * maxRowNorm(input.k, input.headDim);
  const logit = 4 * U * norms;
  // 'float16' scores f16-rounded q and k: each product is off by <= (2 2^-11 + 2^-22) |q_c k_c|,
  // a logit by <= 2^-10 |q| |k| / sqrt(D) (Cauchy-Schwarz), and exp(s - m) / l, with both s and
  // the normaliser's logits moved, by twice that relative.
  const rounded = precision === 'float16' ? (2 ** -9 * norms) / Math.sqrt(input.headDim) : 0;
  // 1e-5: the golden README's tolerance for f32 scores and pooled scores (sums as long as
  // ours, L up to 8192); the logit term covers inputs with larger logits than the golden ones.
  const scoreRel = 1e-5 + logit + rounded;
  const poolRel = 1e-5;
  const pooledRel = scoreRel + poolRel;
  // An f32 cumulative sum of P terms below tau errs by <= P U tau; the head mean and the
  // normalisation (and rounding tau itself to f32) add a few U tau.
  const stageCum = (tau: number, prefixLen: number) => (prefixLen + 4) * U * tau;
  return {
    scoreRel,
    poolRel,
    pooledRel,
    stageCum,
    // Relative errors of the pooled scores move a normalised sum up to tau by 2 pooledRel tau.
    cum: (tau, prefixLen) => 2 * pooledRel * tau + stageCum(tau, prefixLen),
    // Golden: 2e-5 absolute for |v| up to ~5, i.e. 4e-6 per unit of |v|; the attention
    // weights also carry the logit error. 'float16': the f16 contract instead.
    outAbs: precision === 'float16' ? f16OutputBound(input) : (4e-6 + logit) * vMax,
  };
}
