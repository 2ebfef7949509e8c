/**
 * scatter: the head-major attention output back to token-major rows.
 *   sparse: out[t][h*dim + d] = O[h][inverse[h][t] - 1][d], or exactly 0 when
 *           inverse[h][t] == 0 (position t pruned for head h);
 *   dense:  out[t][h*dim + d] = O[h][t][d].
 * Layouts: O [head][L][dim] (compact rows first), inverse [head][L] u32,
 * out [L][H*dim]; f32 (moved as vec4s where dim % 4 == 0). One dispatch per
 * (window of output rows, chunk of heads); a workgroup writes rowsPerGroup
 * whole rows of the chunk's columns, so consecutive threads write consecutive
 * elements.
 *
 * INVERT_INDICES builds `inverse` from given indices (for attendSelected on
 * host-provided indices; the pipeline's select writes it directly):
 *   inverse[h][indices[h][r]] = r + 1 for r < L', on a zeroed buffer.
 */
import { DIVU_WGSL } from './divu.wgsl.js';
import { read, variants, write, type Kernel } from './kernel.js';
import type { ParamFields } from './params.js';
import { STATE } from './state.js';

/**
 * The entry point of scatter and zeroPruned: `prologue`, then `body` once per output element of
 * the workgroup's rows, with r (row in the window), t = t0 + r (token), hl (head in the chunk),
 * d (column) and `at` (its index in out).
 */
function perOutputElement(prologue: string, body: string): string {
  return `${DIVU_WGSL}
@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) tid: u32) {
${prologue}
  let r0 = wg.x * p.rowsPerGroup;
  let width = p.heads * p.dim;
  let count = min(p.rowsPerGroup, p.rows - r0) * width;
  for (var e = tid; e < count; e = e + WG) {
    let er = divu(e, width);
    let r = r0 + er;
    let inRow = e - er * width;
    let hl = divu(inRow, p.dim);
    let d = inRow - hl * p.dim;
    let t = p.t0 + r;
    let at = p.outBase + r * p.H * p.dim + (p.h0 + hl) * p.dim + d;
${body}
  }
}
`;
}

const SCATTER_PARAMS: ParamFields = [
  ['t0', 'u32'],
  ['rows', 'u32'],
  ['H', 'u32'],
  ['dim', 'u32'],
  ['h0', 'u32'],
  ['heads', 'u32'],
  ['rowsPerGroup', 'u32'],
  ['oBase', 'u32'],
  ['oHeadStride', 'u32'],
  ['invBase', 'u32'],
  ['invHeadStride', 'u32'],
  ['outBase', 'u32'],
];

/**
 * The scatter kernel, on f32 elements or (vec, where dim % 4 == 0) on vec4<f32>: the same
 * code, every offset, stride and `dim` then counted in vec4s (16-byte loads and stores).
 */
export const scatterKernel = variants(
  (o: { vec: boolean }) => `scatter${o.vec ? ':v4' : ''}`,
  (o, key): Kernel<'state' | 'inverse' | 'o' | 'out'> => {
    const T = elementType(o.vec);
    return {
      name: 'scatter',
      key,
      params: SCATTER_PARAMS,
      bindings: [read('state', 'u32'), read('inverse', 'u32'), read('o', T), write('out', T)],
      workgroupSize: 256,
      source: () =>
        perOutputElement(
          `  let sparse = state[${STATE.mode}] == ${STATE.modeSparse}u;`,
          `    var row = t;
    var x = ${T}(0.0);
    if (sparse) {
      let s = inverse[p.invBase + hl * p.invHeadStride + t];
      row = s - 1u;
      if (s != 0u) { x = o[p.oBase + hl * p.oHeadStride + row * p.dim + d]; }
    } else {
      x = o[p.oBase + hl * p.oHeadStride + row * p.dim + d];
    }
    out[at] = x;`,
        ),
    };
  },
);

/**
 * zeroPruned: out[t][h*dim + d] = 0 where inverse[h][t] == 0, other elements untouched, on a
 * sparse layer only (nothing on a dense one): the rest of a scatter when the attention wrote the
 * kept rows into out itself (attend-f16's `direct`). Same grid and parameters as scatter (the `o`
 * ones unused), f32 or vec4 elements alike.
 */
export const zeroPrunedKernel = variants(
  (o: { vec: boolean }) => `zeroPruned${o.vec ? ':v4' : ''}`,
  (o, key): Kernel<'state' | 'inverse' | 'out'> => {
    const T = elementType(o.vec);
    return {
      name: 'zeroPruned',
      key,
      params: SCATTER_PARAMS,
      bindings: [read('state', 'u32'), read('inverse', 'u32'), write('out', T)],
      workgroupSize: 256,
      source: () =>
        perOutputElement(
          `  if (state[${STATE.mode}] != ${STATE.modeSparse}u) { return; }`,
          `    if (inverse[p.invBase + hl * p.invHeadStride + t] == 0u) { out[at] = ${T}(0.0); }`,
        ),
    };
  },
);

function elementType(vec: boolean): 'f32' | 'vec4<f32>' {
  return vec ? 'vec4<f32>' : 'f32';
}

export const INVERT_INDICES: Kernel<'indices' | 'inverse'> = {
  name: 'invertIndices',
  key: 'invertIndices',
  params: [
    ['L', 'u32'],
    ['keptLength', 'u32'],
  ],
  bindings: [read('indices', 'u32'), write('inverse', 'u32')],
  workgroupSize: 256,
  source: () => `
@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let r = gid.x;
  if (r >= p.keptLength) { return; }
  let h = gid.y;
  inverse[h * p.L + indices[h * p.L + r]] = r + 1u;
}
`,
};
