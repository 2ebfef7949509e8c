/**
 * floor(a / b) for b >= 1 and a < 2^24 b, without WGSL's integer division:
 * Tint guards every `/` and `%` by a runtime divisor with a polyfill that
 * some GLSL compilers reject (uint mix() before GLSL 4.50, seen on NVIDIA's
 * OpenGL driver). A float estimate, corrected by up to two either way, is exact.
 */
export const DIVU_WGSL = `
fn divu(a: u32, b: u32) -> u32 {
  var q = u32(f32(a) / f32(b));
  if (q * b > a) { q = q - 1u; }
  if (q * b > a) { q = q - 1u; }
  if ((q + 1u) * b <= a) { q = q + 1u; }
  if ((q + 1u) * b <= a) { q = q + 1u; }
  return q;
}
`;
