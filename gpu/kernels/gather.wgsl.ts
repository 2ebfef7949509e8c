/**
 * gather: compact copies of one tensor's kept rows, per query head:
 *   dst[h][r][:] = src[h / kvDiv][indices[h][r]][:]   for r < L' (state)
 * (kvDiv = H / Hkv for K and V, 1 for Q), so each head gets its own
 * contiguous Qc, Kc, Vc of L' rows for attend.
 * Layouts: src [srcHead][L][dim], dst [head][L][dim] (rows beyond L' unused),
 * indices [head][L] u32; f32 rows of `dim` floats; bindings are windows
 * starting at the chunk's first head (`*Base`). Runs only if the state says
 * sparse; one workgroup per (block of rowsPerGroup rows, head).
 */
import { DIVU_WGSL } from './divu.wgsl.js';
import { read, write, type Kernel } from './kernel.js';
import { STATE } from './state.js';

export const GATHER: Kernel<'state' | 'indices' | 'src' | 'dst'> = {
  name: 'gather',
  key: 'gather',
  params: [
    ['dim', 'u32'],
    ['rowsPerGroup', 'u32'],
    ['h0', 'u32'],
    ['kvDiv', 'u32'],
    ['src0', 'u32'],
    ['srcBase', 'u32'],
    ['srcHeadStride', 'u32'],
    ['dstBase', 'u32'],
    ['dstHeadStride', 'u32'],
    ['idxBase', 'u32'],
    ['idxHeadStride', 'u32'],
  ],
  bindings: [read('state', 'u32'), read('indices', 'u32'), read('src'), write('dst')],
  workgroupSize: 256,
  source: () => `${DIVU_WGSL}
@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) tid: u32) {
  if (state[${STATE.mode}] != ${STATE.modeSparse}u) { return; }
  let n = state[${STATE.keptLength}];
  let r0 = wg.x * p.rowsPerGroup;
  if (r0 >= n) { return; }
  let head = p.h0 + wg.y;
  let srcBase = p.srcBase + (divu(head, p.kvDiv) - p.src0) * p.srcHeadStride;
  let dstBase = p.dstBase + wg.y * p.dstHeadStride;
  let idxBase = p.idxBase + wg.y * p.idxHeadStride;
  let count = min(p.rowsPerGroup, n - r0) * p.dim;
  for (var e = tid; e < count; e = e + WG) {
    let er = divu(e, p.dim);
    let r = r0 + er;
    let d = e - er * p.dim;
    dst[dstBase + r * p.dim + d] = src[srcBase + indices[idxBase + r] * p.dim + d];
  }
}
`,
};
