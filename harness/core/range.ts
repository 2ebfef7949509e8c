/**
 * The magnitude bound on inputs: the accelerated backends compute logits and output
 * accumulators in floating point of a given precision, so inputs whose size could overflow it
 * are rejected (TsaInputError 'RANGE') instead of returning NaN or Infinity.
 *
 * With m_q = max|q|, m_k = max|k|, m_v = max|v| (over all heads), D the head dimension and L the
 * sequence length, a call is accepted when
 *   logits:      m_q * m_k * D * max(1, log2(e) / sqrt(D)) <= limit(precision)
 *   accumulator: m_v * L <= limit(precision)
 * The first bounds every partial dot product q.k (<= D m_q m_k), the scaled base-2 logit the
 * kernels exponentiate, and, as limit is a quarter of the largest finite value, the difference
 * of two logits (s - max s) too. The second bounds the unnormalised output sum_j p_j v_j, p_j <= 1.
 */

/** Largest finite value of each compute precision. */
export const FLOAT_MAX = {
  f32: 3.4028234663852886e38,
  /**
   * IEEE half: values above 65504 round to Infinity, so an f16 path must also bound every
   * element it stores in f16 (not only the logits) by this.
   */
  f16: 65504,
} as const;

export type Precision = keyof typeof FLOAT_MAX;

/** The bound of both conditions above for `precision`: a quarter of its largest finite value. */
export function magnitudeLimit(precision: Precision = 'f32'): number {
  return FLOAT_MAX[precision] / 4;
}

/** The logit bound's left side: m_q * m_k * D * max(1, log2(e) / sqrt(D)). */
export function logitMagnitude(maxQ: number, maxK: number, headDim: number): number {
  return maxQ * maxK * headDim * Math.max(1, Math.LOG2E / Math.sqrt(headDim));
}
