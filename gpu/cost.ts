/**
 * The cost rule of the WebGPU backend: token-sparse attention only where it
 * is estimated to beat dense attention on this device, else dense with the
 * reason. `budget()` stays the spec's rule; this applies only inside
 * tokenSparseAttention.
 *
 * Estimated times (ms) from the model's rates, measured on an NVIDIA H200
 * through Dawn's OpenGL backend (BENCHMARKS.md). The attend kernel runs at a
 * near-constant rate from 8K to 128K tokens, modelled as
 * rate(n) = attendTflops n / (n + attendHalfLength) (22 TFLOP/s at 8K, 23.3 at
 * 16K..128K); on the gathered per-head copies (no GQA sharing), gather and
 * scatter included, it takes compactPenalty times as long as dense attention
 * at the same length:
 *   dense(L)   = 4 H D L(L+1)/2 / rate(L)
 *   attend(L') = compactPenalty * 4 H D L'(L'+1)/2 / rate(L')
 *   select(L)  = 2 passes * 2 H D W L / score rate + fixed (pool, budget, select dispatches)
 *   move(L')   = gather + scatter bytes / bandwidth
 * Before scoring: run dense unless the best case (L' = minTokens + W) wins
 * by minGain and the selection overhead is at most maxOverhead of dense (the
 * price paid when attention turns out near-uniform). After the GPU budget:
 * sparse only if attend(L') + move(L') <= (1 - minGain) dense(L), i.e.
 * L' <= maxKeptLength; the GPU compares L' with it, no readback.
 */
import type { AttentionShape, ResolvedTsaOptions } from '../harness/core/interface.js';

export interface CostModel {
  /** Asymptotic rate of the attend kernel at long lengths, TFLOP/s. */
  attendTflops: number;
  /** Length at which the attend kernel reaches half of attendTflops. */
  attendHalfLength: number;
  /** Slowdown of attend on gathered per-head K/V (no GQA sharing) at equal length. */
  compactPenalty: number;
  /** Effective rate of the score kernels, TFLOP/s. */
  scoreTflops: number;
  /** Fixed time of the pool, budget and select dispatches, ms. */
  fixedMs: number;
  /** Device memory bandwidth for gather and scatter, GB/s. */
  bandwidthGBs: number;
  /** Sparse must be estimated at least this fraction faster than dense. */
  minGain: number;
  /** Largest selection overhead, as a fraction of dense time, risked before knowing L'. */
  maxOverhead: number;
}

/**
 * Fitted to the H200 measurements of BENCHMARKS.md (Dawn OpenGL backend, H 32, Hkv 8, D 128):
 * selection costs about 3.6% of dense at 16K, 1.6% at 32K and 0.3% at 128K, so with
 * maxOverhead 2% the rule starts scoring at 32K.
 */
export const DEFAULT_COST_MODEL: Readonly<CostModel> = Object.freeze({
  attendTflops: 23.3,
  attendHalfLength: 400,
  compactPenalty: 1.05,
  scoreTflops: 14,
  fixedMs: 1,
  bandwidthGBs: 2000,
  minGain: 0.1,
  maxOverhead: 0.02,
});

function denseMs(shape: AttentionShape, n: number, m: CostModel): number {
  const rate = (m.attendTflops * n) / (n + m.attendHalfLength);
  return (4 * shape.heads * shape.headDim * ((n * (n + 1)) / 2)) / (rate * 1e9);
}

function attendMs(shape: AttentionShape, n: number, m: CostModel): number {
  return m.compactPenalty * denseMs(shape, n, m);
}

function selectMs(shape: AttentionShape, window: number, m: CostModel): number {
  return (2 * 2 * shape.heads * shape.headDim * window * shape.seqLen) / (m.scoreTflops * 1e9) + m.fixedMs;
}

/** Gather (3 tensors read + written) and the extra scatter traffic of L' rows. */
function moveMs(shape: AttentionShape, n: number, m: CostModel): number {
  return (8 * 4 * shape.heads * n * shape.headDim) / (m.bandwidthGBs * 1e6);
}

export interface PreDecision {
  score: boolean;
  detail: string;
}

/** Before scoring: is selection worth trying at this length? */
export function worthScoring(shape: AttentionShape, o: ResolvedTsaOptions, m: CostModel): PreDecision {
  const dense = denseMs(shape, shape.seqLen, m);
  const sel = selectMs(shape, o.window, m);
  const best = Math.min(shape.seqLen, o.minTokens + o.window);
  const bestSparse = sel + attendMs(shape, best, m) + moveMs(shape, best, m);
  const est = `estimated dense ${dense.toFixed(2)} ms, selection ${sel.toFixed(2)} ms, best-case sparse ${bestSparse.toFixed(2)} ms`;
  if (bestSparse > (1 - m.minGain) * dense) {
    return { score: false, detail: `cost rule: even L' = ${best} would not beat dense by ${m.minGain * 100}% (${est})` };
  }
  if (sel > m.maxOverhead * dense) {
    return { score: false, detail: `cost rule: selection would cost over ${m.maxOverhead * 100}% of dense, lost if attention is near uniform (${est})` };
  }
  return { score: true, detail: est };
}

/** After scoring: the largest L' for which the sparse remainder beats dense by minGain. */
export function maxKeptLength(shape: AttentionShape, m: CostModel): number {
  const limit = (1 - m.minGain) * denseMs(shape, shape.seqLen, m);
  let lo = 0;
  let hi = shape.seqLen;
  while (lo < hi) {
    const mid = Math.ceil((lo + hi) / 2);
    if (attendMs(shape, mid, m) + moveMs(shape, mid, m) <= limit) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}
