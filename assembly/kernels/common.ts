/**
 * Shared pieces of the kernels: block sizes, the work queue, fused multiply-add
 * and a vector 2^x.
 *
 * Every parallel kernel is called on every thread at once with the same
 * arguments plus its thread number; the threads take tasks from one atomic
 * counter in shared memory (`nextTask`) until none are left, so faster threads
 * take more tasks. All memory is laid out by the host (no allocation here: the
 * stub runtime is not thread-safe); kernels take byte offsets.
 */

/** Keys per packed key block (see tile.ts for the layout). */
export const BK: i32 = 32;
/** Query rows per attention task (a multiple of 4, the register tile height). */
export const BQ: i32 = 64;

/** Takes the next task number from the shared counter at `counter`. */
// @ts-ignore: decorator
@inline export function nextTask(counter: usize): i32 {
  return atomic.add<i32>(counter, 1);
}

/** a * b + c per f32 lane: one fused op (relaxed_madd) in the relaxed-SIMD build, mul then add in the plain one. */
// @ts-ignore: decorator
@inline export function madd(a: v128, b: v128, c: v128): v128 {
  if (ASC_FEATURE_RELAXED_SIMD) return f32x4.relaxed_madd(a, b, c);
  return f32x4.add(f32x4.mul(a, b), c);
}

/**
 * 2^x per lane, for x <= 0 (x <= -127, including -inf, gives exactly 0).
 * x = n + r with n = round(x), r in [-1/2, 1/2]; 2^r by the Cephes exp2f
 * polynomial (relative error ~2e-7), 2^n by building the exponent bits.
 * n is read from the low mantissa bits of x + 1.5 * 2^23.
 */
// @ts-ignore: decorator
@inline export function exp2(x: v128): v128 {
  x = f32x4.pmax(x, f32x4.splat(-127.0));
  const shifted = f32x4.add(x, f32x4.splat(12582912.0));
  const r = f32x4.sub(x, f32x4.sub(shifted, f32x4.splat(12582912.0)));
  let p = f32x4.splat(1.535336188319500e-4);
  p = madd(p, r, f32x4.splat(1.339887440266574e-3));
  p = madd(p, r, f32x4.splat(9.61843735767464e-3));
  p = madd(p, r, f32x4.splat(5.550332471162809e-2));
  p = madd(p, r, f32x4.splat(2.402264791363012e-1));
  p = madd(p, r, f32x4.splat(6.931472028550421e-1));
  p = madd(p, r, f32x4.splat(1.0));
  // shifted's bits are 0x4B400000 + n; (n + 127) << 23 is 2^n (0 for n = -127).
  const scale = i32x4.shl(i32x4.sub(shifted, i32x4.splat(0x4b400000 - 127)), 23);
  return f32x4.mul(p, scale);
}

/** Largest of the 4 lanes. */
// @ts-ignore: decorator
@inline export function hmax(v: v128): f32 {
  v = f32x4.pmax(v, v128.shuffle<f32>(v, v, 2, 3, 0, 1));
  v = f32x4.pmax(v, v128.shuffle<f32>(v, v, 1, 0, 3, 2));
  return f32x4.extract_lane(v, 0);
}

/** Sum of the 4 lanes, ((v0 + v2) + (v1 + v3)). */
// @ts-ignore: decorator
@inline export function hsum(v: v128): f32 {
  v = f32x4.add(v, v128.shuffle<f32>(v, v, 2, 3, 0, 1));
  v = f32x4.add(v, v128.shuffle<f32>(v, v, 1, 0, 3, 2));
  return f32x4.extract_lane(v, 0);
}
