/**
 * The accuracy contract of precision 'f16' (README "Precision"): Q, K, V are
 * rounded to f16 (Q after the 1/sqrt(D) scale), products of f16 operands are
 * accumulated in f32, the softmax is f32, and P is rounded to f16 for P V.
 * - Against float64 attention on the f16-rounded inputs the output is within
 *   2e-3 max|V| (absolute): P's rounding (2^-11 relative per weight, twice through
 *   the normalisation) and f32 accumulation, with room to spare.
 * - Against the f32 path on the original inputs, rounding Q, K and the scaled Q
 *   moves each logit by at most 3 * 2^-11 |q| |k| / sqrt(D) (Cauchy-Schwarz), which
 *   changes every normalised weight by at most twice that, relatively:
 *   f16OutputBound adds 2 * 3 * 2^-11 max|q| max|k| / sqrt(D) max|V|.
 * Scoring, pooling, budget and selection stay f32, so indices and keep counts
 * are those of the f32 path.
 */
import type { AttentionInput } from './interface.js';

/** Output error bound of 'f16' against float64 attention on the f16-rounded inputs, per unit of max|V|. */
export const F16_KERNEL_BOUND = 2e-3;

function maxAbs(a: Float32Array): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]!));
  return m;
}

function maxRowNorm(a: Float32Array, D: number): number {
  let worst = 0;
  for (let o = 0; o < a.length; o += D) {
    let s = 0;
    for (let i = o; i < o + D; i++) s += a[i]! * a[i]!;
    worst = Math.max(worst, Math.sqrt(s));
  }
  return worst;
}

/** Absolute output bound of 'f16' against the float64 (or f32) attention on the original inputs. */
export function f16OutputBound(input: AttentionInput): number {
  const D = input.headDim;
  const logit = 3 * 2 ** -11 * (maxRowNorm(input.q, D) * maxRowNorm(input.k, D)) / Math.sqrt(D);
  return (F16_KERNEL_BOUND + 2 * logit) * maxAbs(input.v);
}
