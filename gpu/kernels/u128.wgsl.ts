/**
 * Exact 128-bit unsigned integer arithmetic in WGSL (no 64-bit types there):
 * a value is a vec4<u32>, least significant word in .x. Used by the budget
 * kernels so that sums of scores are exact integers, identical in every
 * reduction order.
 */
export const U128_WGSL = `
fn add128(a: vec4<u32>, b: vec4<u32>) -> vec4<u32> {
  var r = vec4<u32>(0u);
  var carry = 0u;
  for (var w = 0u; w < 4u; w = w + 1u) {
    let s = a[w] + b[w];
    let s2 = s + carry;
    carry = u32(s < a[w]) + u32(s2 < s);
    r[w] = s2;
  }
  return r;
}

/** a >= b */
fn ge128(a: vec4<u32>, b: vec4<u32>) -> bool {
  for (var i = 0u; i < 4u; i = i + 1u) {
    let w = 3u - i;
    if (a[w] != b[w]) { return a[w] > b[w]; }
  }
  return true;
}

/** floor(m * 2^sh) for m < 2^24 and sh <= 103. */
fn shl128(m: u32, sh: i32) -> vec4<u32> {
  var r = vec4<u32>(0u);
  if (sh <= -32) { return r; }
  if (sh < 0) { r.x = m >> u32(-sh); return r; }
  let w = u32(sh) / 32u;
  let b = u32(sh) % 32u;
  r[w] = m << b;
  if (b != 0u && w < 3u) { r[w + 1u] = m >> (32u - b); }
  return r;
}

/** The index of a's highest set bit; -1 for 0. */
fn topBit128(a: vec4<u32>) -> i32 {
  for (var i = 0u; i < 4u; i = i + 1u) {
    let w = 3u - i;
    if (a[w] != 0u) { return i32(w * 32u + firstLeadingBit(a[w])); }
  }
  return -1;
}

/**
 * a + f (0 <= f < 1, frac: f > 0) rounded to 53 significant bits, ties to even: how float64
 * rounds that value, for 2^53 <= a < 2^127.
 */
fn roundSig53(a: vec4<u32>, frac: bool) -> vec4<u32> {
  let sh = topBit128(a) - 52;
  // a = kept + low, low < 2^sh; rounding compares low + f with half = 2^(sh - 1).
  var low = vec4<u32>(0u);
  for (var w = 0u; w < 4u; w = w + 1u) {
    let lo = i32(w * 32u);
    if (lo + 32 <= sh) { low[w] = a[w]; } else if (lo < sh) { low[w] = a[w] & ((1u << u32(sh - lo)) - 1u); }
  }
  let kept = a - low;
  let half = shl128(1u, sh - 1);
  let tie = all(low == half);
  let odd = ((a[u32(sh) / 32u] >> (u32(sh) % 32u)) & 1u) == 1u;
  if ((ge128(low, half) && !tie) || (tie && (frac || odd))) { return add128(kept, shl128(1u, sh)); }
  return kept;
}

/** floor(|x| * 2^s): the exact fixed-point value of a float32, truncated below 2^-s. */
fn fix128(x: f32, s: i32) -> vec4<u32> {
  let bits = bitcast<u32>(x) & 0x7fffffffu;
  let e = bits >> 23u;
  let frac = bits & 0x7fffffu;
  if (e == 0u) { return shl128(frac, s - 149); }
  return shl128(frac | 0x800000u, i32(e) - 150 + s);
}

/** 16-bit limb k of a (k < 8). */
fn limb(a: vec4<u32>, k: u32) -> u32 {
  return (a[k / 2u] >> (16u * (k % 2u))) & 0xffffu;
}

/** Limbs acc[0..n) (each < 2^32 after accumulation) carried into 16-bit limbs, packed from limb "first" into 4 words. */
fn carryPack(acc: ptr<function, array<u32, 13>>, first: u32) -> vec4<u32> {
  for (var k = 0u; k < 12u; k = k + 1u) {
    (*acc)[k + 1u] = (*acc)[k + 1u] + ((*acc)[k] >> 16u);
    (*acc)[k] = (*acc)[k] & 0xffffu;
  }
  var r = vec4<u32>(0u);
  for (var w = 0u; w < 4u; w = w + 1u) {
    r[w] = (*acc)[first + 2u * w] | ((*acc)[first + 2u * w + 1u] << 16u);
  }
  return r;
}

/** a * t for a t of tLimbs 16-bit limbs (tLimbs <= 4), its 16-bit limbs packed into 4 words from limb "first". */
fn mulLimbs(a: vec4<u32>, t: vec4<u32>, tLimbs: u32, first: u32) -> vec4<u32> {
  var acc: array<u32, 13>;
  for (var i = 0u; i < 8u; i = i + 1u) {
    for (var j = 0u; j < tLimbs; j = j + 1u) {
      let prod = limb(a, i) * limb(t, j);
      acc[i + j] = acc[i + j] + (prod & 0xffffu);
      acc[i + j + 1u] = acc[i + j + 1u] + (prod >> 16u);
    }
  }
  return carryPack(&acc, first);
}

/** floor(a * t / 2^64) for a 64-bit t = (hi, lo): the product's bits 64..191. */
fn mulShr64(a: vec4<u32>, lo: u32, hi: u32) -> vec4<u32> {
  return mulLimbs(a, vec4<u32>(lo, hi, 0u, 0u), 4u, 4u);
}

/** a * j mod 2^128 for a 32-bit j. */
fn mulSmall128(a: vec4<u32>, j: u32) -> vec4<u32> {
  return mulLimbs(a, vec4<u32>(j, 0u, 0u, 0u), 2u, 0u);
}
`;
