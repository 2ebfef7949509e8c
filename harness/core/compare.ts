/** Elementwise comparisons of float arrays (conformance, peers, tests); a NaN entry makes the result NaN. */

/** max_i |a_i - b_i| / |b_i| (0 where both are 0). */
export function maxRelErr(a: Float32Array, b: Float32Array): number {
  let worst = 0;
  for (let i = 0; i < b.length; i++) {
    const d = Math.abs(a[i]! - b[i]!);
    if (Number.isNaN(d)) return NaN;
    if (d === 0) continue;
    worst = Math.max(worst, d / Math.abs(b[i]!));
  }
  return worst;
}

export function maxAbsErr(a: Float32Array, b: Float32Array): number {
  let worst = 0;
  for (let i = 0; i < b.length; i++) {
    const d = Math.abs(a[i]! - b[i]!);
    if (Number.isNaN(d)) return NaN;
    worst = Math.max(worst, d);
  }
  return worst;
}
