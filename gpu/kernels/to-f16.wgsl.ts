/**
 * to-f16: one f32 head-major tensor into the f16 layout of the f16 attend
 * kernels (attend-f16.wgsl.ts):
 *   dst[h][r][c] = f16(src[h][r][c] * scale)  for r < n, c < dim, else 0,
 * for r < rows (rows = the padded row count, a multiple of ROW_ALIGN) and
 * c < 4 * dp4 (the padded head dimension DP). Q gets scale 1/sqrt(D) (the
 * scale before the product), K and V 1. n is p.n, or L' from the layer state
 * when the gate says sparse (GATE in attend.wgsl.ts: the kernel then runs only
 * if the state's mode matches).
 * The gathered variant (gather-to-f16) is gather (gather.wgsl.ts) and to-f16
 * in one pass, for the compact rows of a sparse layer:
 *   dst[h][r][c] = f16(src[h / kvDiv][indices[h][r]][c] * scale)  for r < n,
 * the same values as the f32 compact copy converted, without the copy.
 * Layout: src [h][row][dim] f32 (`srcBase`, `srcHeadStride` in floats; with
 * gathering [srcHead][L][dim] from head src0 on, read by query head
 * h0 + wg.y), indices [h][L] u32 (`idxBase`, `idxHeadStride`), dst
 * [h][row][DP] as vec4<f16> (`dstBase`, `dstHeadStride` in vec4s); one
 * invocation per TO_F16_PER destination vec4s 256 apart, workgroups (blocks of
 * 256 * TO_F16_PER vec4s, head);
 * where dim % 4 == 0 (every row start then a multiple of 4 floats) src is read
 * as vec4<f32> (`vec`: one 16-byte load per invocation; offsets still in floats).
 */
import { gatePrologue } from './attend.wgsl.js';
import { DIVU_WGSL } from './divu.wgsl.js';
import { read, variants, write, type Kernel } from './kernel.js';
import type { ParamFields } from './params.js';

const PARAMS: ParamFields = [
  ['n', 'u32'],
  ['rows', 'u32'],
  ['dim', 'u32'],
  ['dp4', 'u32'],
  ['srcBase', 'u32'],
  ['srcHeadStride', 'u32'],
  ['dstBase', 'u32'],
  ['dstHeadStride', 'u32'],
  ['gate', 'u32'],
  ['scale', 'f32'],
];
/** Destination vec4s per invocation (a workgroup converts TO_F16_PER * 256 of them). */
export const TO_F16_PER = 4;

const GATHER_PARAMS: ParamFields = [
  ['h0', 'u32'],
  ['kvDiv', 'u32'],
  ['src0', 'u32'],
  ['idxBase', 'u32'],
  ['idxHeadStride', 'u32'],
];

/** The f32 row `r` of this workgroup's head as read: in place, or through the selection. */
const ROW = {
  plain: 'p.srcBase + wg.y * p.srcHeadStride + r * p.dim',
  gathered: 'p.srcBase + (divu(p.h0 + wg.y, p.kvDiv) - p.src0) * p.srcHeadStride + indices[p.idxBase + wg.y * p.idxHeadStride + r] * p.dim',
};

export const toF16Kernel = variants(
  (o: { gathered: boolean; vec: boolean }) => `${o.gathered ? 'gather-to-f16' : 'to-f16'}${o.vec ? ':v4' : ''}`,
  (o, key): Kernel<'state' | 'src' | 'dst' | 'indices'> => ({
    name: o.gathered ? 'gather-to-f16' : 'to-f16',
    key,
    params: o.gathered ? [...PARAMS, ...GATHER_PARAMS] : PARAMS,
    bindings: [read('state', 'u32'), read('src', o.vec ? 'vec4<f32>' : 'f32'), write('dst', 'vec4<f16>'), ...(o.gathered ? [read('indices', 'u32')] : [])],
    workgroupSize: 256,
    enable: ['f16'],
    source: () => `${o.gathered ? DIVU_WGSL : ''}
@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) tid: u32) {
${gatePrologue()}
  // TO_F16_PER vec4s per invocation, WG apart: all loaded before any is stored, so their
  // independent loads (the gathered ones behind their row indices) are in flight together.
  let first = wg.x * ${TO_F16_PER}u * WG + tid;
  let total = p.rows * p.dp4;
  var xs: array<vec4<f32>, ${TO_F16_PER}>;
  for (var k = 0u; k < ${TO_F16_PER}u; k = k + 1u) {
    let e = first + k * WG;
    let r = e / p.dp4;
    let c = 4u * (e % p.dp4);
    var x = vec4<f32>(0.0);
    if (e < total && r < n) {
      let at = ${o.gathered ? ROW.gathered : ROW.plain} + c;
${
  o.vec
    ? '      if (c < p.dim) { x = src[at / 4u]; }'
    : `      if (c < p.dim) { x.x = src[at]; }
      if (c + 1u < p.dim) { x.y = src[at + 1u]; }
      if (c + 2u < p.dim) { x.z = src[at + 2u]; }
      if (c + 3u < p.dim) { x.w = src[at + 3u]; }`
}
    }
    xs[k] = x;
  }
  for (var k = 0u; k < ${TO_F16_PER}u; k = k + 1u) {
    let e = first + k * WG;
    if (e < total) { dst[p.dstBase + wg.y * p.dstHeadStride + e] = vec4<f16>(xs[k] * p.scale); }
  }
}
`,
  }),
);
