/**
 * The WebGPU backend's side of core's cost rule (harness/core/cost.ts): the
 * same model type and the same decisions, applied on the device. Before
 * scoring the host asks core's beforeProbe; after the budget the GPU
 * compares L' with `maxKeptLength`, the largest L' that satisfies core's
 * inequality sparse(L, L') <= (1 - minGain) dense(L) (core's sparseMs and
 * denseMs, searched here once per call), so no readback is needed.
 *
 * The rates are fitted per adapter on first use (calibrate.ts); the
 * fallback `H200_COST_MODEL` maps the constants once fitted on an NVIDIA
 * H200 through Dawn's OpenGL backend (BENCHMARKS.md) to core's fields:
 * attend 23.3 TFLOP/s, scoring 14 TFLOP/s (counting 4 H D W L), compact
 * attention 1.05x dense plus the gather/scatter traffic (about 1.1x in
 * all), about 1 ms of pool, budget and select at H 32, L 16K.
 */
import { denseMs, sparseMs, type CostModel } from '../harness/core/cost.js';
import type { AttentionShape, ResolvedTsaOptions } from '../harness/core/interface.js';

export const H200_COST_MODEL: Readonly<CostModel> = Object.freeze({
  attendRate: 23.3e9,
  attendFixedMs: 0.05,
  compactPenalty: 1.1,
  scoreRate: 14e9,
  selectMsPerToken: 2e-6,
  minGain: 0.1,
});

/** The largest L' in [0, L] with core's sparse(L, L') <= (1 - minGain) dense(L); 0 where none pays. */
export function maxKeptLength(shape: AttentionShape, o: ResolvedTsaOptions, m: CostModel): number {
  const limit = (1 - m.minGain) * denseMs(shape, m);
  let lo = 0;
  let hi = shape.seqLen;
  while (lo < hi) {
    const mid = Math.ceil((lo + hi) / 2);
    if (sparseMs(shape, mid, o, m) <= limit) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}
