/**
 * attend-f16-plain: the numerics of attend-f16 (q' = f16(q / sqrt(D)), k, v
 * f16; products of f16 operands accumulated in f32; online softmax in f32;
 * P rounded to f16 before P V, l summed from the rounded P; output f32) with
 * plain arithmetic, for adapters that have `shader-f16` but no subgroup
 * matrices (e.g. Mesa's lavapipe). The rescale is exact (threshold 0): a
 * thread owns its row, so O *= alpha costs nothing extra.
 *
 * Memory layout: the f16 layout of attend-f16.wgsl.ts (Q' [head][row][DP],
 * K, V [kvHead][row][DP] f16, rows padded to ROW_ALIGN with zeros), read as
 * vec4<f16>; output O [head][row][dim] f32.
 *
 * One workgroup per (query tile of ROWS rows, head), one invocation per query
 * row: its Q' row and O accumulator (DP/4 vec4s each, unrolled) live in registers; K and
 * V tiles of KEYS keys are staged in workgroup memory as vec4<f16>.
 */
import { gatePrologue } from './attend.wgsl.js';
import { ATTEND_F16_BINDINGS, ATTEND_F16_PARAMS } from './attend-f16.wgsl.js';
import { read, variants, type Kernel } from './kernel.js';
import { unroll } from './params.js';

/** Query rows per workgroup (one invocation each) and keys per staged K/V tile. */
export const PLAIN_ROWS = 64;
const KEYS = 32;

/** The plain f16 attend kernel for padded head dimension `dp` (contract). */
export const attendF16PlainKernel = variants(
  (dp: number) => `attend-f16-plain:${dp}`,
  (dp: number, key): Kernel<(typeof ATTEND_F16_BINDINGS)[number]['name']> => ({
    name: 'attend-f16-plain',
    key,
    params: ATTEND_F16_PARAMS,
    bindings: ATTEND_F16_BINDINGS,
    workgroupSize: PLAIN_ROWS,
    enable: ['f16'],
    source: () => plainSource(dp, PLAIN_ROWS, KEYS),
  }),
);

/** Query rows per workgroup and keys per tile of block mode: the largest of 64 / 32 / 16 and 32 / 16 dividing B. */
export function plainBlockTiles(B: number): { rows: number; keys: number } {
  return { rows: [64, 32, 16].find((r) => B % r === 0)!, keys: [32, 16].find((k) => B % k === 0)! };
}

/**
 * The plain f16 kernel over the key blocks of each (head, query block) list (as attendBlocks in
 * attend.wgsl.ts: counts [H][nb], triangle-packed ascending lists), block size B; `rows` and
 * `keys` (plainBlockTiles) divide B.
 */
export const attendF16PlainBlocksKernel = variants(
  (a: { dp: number; B: number }) => `attend-f16-plain-blocks:${a.dp}.${a.B}`,
  ({ dp, B }: { dp: number; B: number }, key): Kernel<(typeof ATTEND_F16_BINDINGS)[number]['name'] | 'counts' | 'lists'> => ({
    name: 'attend-f16-plain-blocks',
    key,
    params: ATTEND_F16_PARAMS,
    bindings: [...ATTEND_F16_BINDINGS, read('counts', 'u32'), read('lists', 'u32')],
    workgroupSize: plainBlockTiles(B).rows,
    enable: ['f16'],
    source: () => plainSource(dp, plainBlockTiles(B).rows, plainBlockTiles(B).keys, B),
  }),
);

function plainSource(dp: number, rows: number, keys: number, B?: number): string {
  const dp4 = dp / 4;
  return `const ROWS: u32 = ${rows}u;
const KEYS: u32 = ${keys}u;
const DP4: u32 = ${dp4}u;
var<workgroup> ks: array<vec4<f16>, ${keys * dp4}>;
var<workgroup> vs: array<vec4<f16>, ${keys * dp4}>;
${B ? `const BLK: u32 = ${B}u;
const TPB: u32 = BLK / KEYS;
fn keyStart(at: u32, kt: u32) -> u32 { return lists[at + kt / TPB] * BLK + (kt % TPB) * KEYS; }` : ''}

/**
 * x >= 0 rounded to f16's 11-bit significand (nearest even) with integer operations: lavapipe
 * computes f16 arithmetic, conversions and pack2x16float in f32, so f32(f16(x)) does not round there.
 * (Values under f16's normal range keep more bits than an f16 would: an error under 6e-8.)
 */
fn roundF16(x: f32) -> f32 {
  let b = bitcast<u32>(x);
  return bitcast<f32>((b + 0xfffu + ((b >> 13u) & 1u)) & 0xffffe000u);
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) tid: u32) {
${gatePrologue()}
  let nTiles = (n + ROWS - 1u) / ROWS;
  if (wg.x >= nTiles) { return; }
  let t0 = (nTiles - 1u - wg.x) * ROWS;
  let row = t0 + tid;
  let head = p.h0 + wg.y;
  let kvOff = (head / p.kvDiv - p.kv0) * p.kvHeadStride;
  let kb = (p.kBase + kvOff) / 4u;
  let vb = (p.vBase + kvOff) / 4u;
  let qb = (p.qBase + wg.y * p.qHeadStride) / 4u + row * DP4;
${unroll(dp4, (d) => `  let q${d} = vec4<f32>(qIn[qb + ${d}u]);\n  var o${d} = vec4<f32>(0.0);`)}
  var m = -1.0e30;
  var l = 0.0;
  let lastKey = min(t0 + ROWS - 1u, n - 1u);
${B ? `  let qBlock = t0 / BLK;
  let nb = (n + BLK - 1u) / BLK;
  let listAt = head * (nb * (nb + 1u) / 2u) + qBlock * (qBlock + 1u) / 2u;
  let nKeyTiles = (counts[head * nb + qBlock] - 1u) * TPB + (lastKey - qBlock * BLK) / KEYS + 1u;` : '  let nKeyTiles = lastKey / KEYS + 1u;'}
  for (var kt = 0u; kt < nKeyTiles; kt = kt + 1u) {
    let k0 = ${B ? 'keyStart(listAt, kt)' : 'kt * KEYS'};
    workgroupBarrier();
    for (var e = tid; e < KEYS * DP4; e = e + ROWS) {
      ks[e] = kIn[kb + k0 * DP4 + e];
      vs[e] = vIn[vb + k0 * DP4 + e];
    }
    workgroupBarrier();
    let last = min(KEYS, row + 1u - min(row + 1u, k0));
    for (var j = 0u; j < last; j = j + 1u) {
      let s = ${Array.from({ length: dp4 }, (_, d) => `dot(q${d}, vec4<f32>(ks[j * DP4 + ${d}u]))`).join(' + ')};
      let mNew = max(m, s);
      let alpha = exp(m - mNew);
      m = mNew;
      let pr = roundF16(exp(s - m));
      l = l * alpha + pr;
${unroll(dp4, (d) => `      o${d} = o${d} * alpha + pr * vec4<f32>(vs[j * DP4 + ${d}u]);`)}
    }
  }
  if (row < n) {
    let ob = p.oBase + wg.y * p.oHeadStride + row * p.dim;
${unroll(dp4, (d) => unroll(4, (k) => `    if (${4 * d + k}u < p.dim) { oOut[ob + ${4 * d + k}u] = o${d}.${'xyzw'[k]} / l; }`))}
  }
}
`;
}
