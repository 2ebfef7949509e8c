/**
 * attend-f16: causal softmax attention on the GPU's matrix units (WGSL
 * subgroup matrices, Dawn's `chromium-experimental-subgroup-matrix`): f16
 * operands, f32 accumulation, online softmax in f32, output f32.
 *
 * Math (per head, rows a < n): out[a] = sum_{b <= a} softmax_b(q'[a] . k[b]) v[b]
 * with q' = f16(q / sqrt(D)) (the scale is applied before the product, so
 * large logits cannot overflow f16), k, v f16. Per key tile of BN keys, per
 * subgroup owning 16 query rows:
 *   S = Q' K^T                   (subgroup matrices, f32 result)
 *   m' = max(m, rowmax S); if m' > m + threshold (per row): alpha = exp(m - m'),
 *     m = m', else alpha = 1 (m stays stale: exact, since out = O / l uses the
 *     same m in both and P = exp(S - m) <= exp(threshold) stays in f16 range);
 *   P = f16(exp(S - m)), l = l * alpha + rowsum P (of the rounded P),
 *   O = O * alpha + P V           (subgroup matrices, f32 accumulation).
 * A result fragment can only be scaled by one uniform scalar, so a per-row
 * O *= alpha goes through workgroup memory; it runs for the whole workgroup
 * only when some row's max grew by more than `threshold` (0: whenever it grew).
 *
 * Memory layout (the "f16 layout", shared with the plain kernel and the
 * conversion kernel): Q' [head][row][DP] and K, V [kvHead][row][DP] as f16,
 * rows padded to a multiple of ROW_ALIGN and columns to DP (multiple of 16)
 * with zeros; kvHead = head / kvDiv (GQA reads the KV head in place, kvDiv 1
 * on per-head compact copies); bindings are windows starting at the chunk's
 * first head (`*Base` in halves). Output O [head][row][dim] f32 (`oBase` in
 * floats), rows >= n not written.
 *
 * One workgroup per (query tile of BM = 16 * SG rows, head), SG subgroups of
 * 32 invocations; subgroup g owns rows q0 + 16g .. +16, keeps its Q'
 * fragments (DP/16 left matrices) and O fragments (DP/16 results) unrolled in
 * registers. Workgroup memory: S per subgroup [16][BN + 4] f32, P per subgroup
 * [16][BN + 8] f16, alpha per row, two rescale flags; with `kvShared` also the
 * K and V tiles [BN][DP + 8] f16 (else fragments load from storage directly).
 * Lane t of a subgroup does the softmax of row t / 2, columns (t % 2) * BN/2 ..
 * Tiles run heaviest first; key tiles past the diagonal are skipped.
 */
import { paramsStruct, unroll, type ParamFields } from './params.js';
import { STATE } from './state.js';

/** Rows of every f16-layout tensor are padded (with zeros) to a multiple of this. */
export const ROW_ALIGN = 128;

export interface F16MatrixConfig {
  /** Subgroups per workgroup (each owns 16 query rows). */
  sg: number;
  /** Keys per tile, a multiple of 16. */
  bn: number;
  /** Padded head dimension, a multiple of 16. */
  dp: number;
  /** Stage K and V tiles in workgroup memory (else load fragments from storage). */
  kvShared: boolean;
  /** Rescale O only when a row max grows by more than this (natural-log units, <= 8). */
  threshold: number;
  /** With kvShared: stage K transposed ([DP][BN + 8]) so K^T loads row-major. */
  kT?: boolean;
  spelling?: MatrixSpelling;
}

export const ATTEND_F16_PARAMS: ParamFields = [
  ['n', 'u32'],
  ['dim', 'u32'],
  ['qBase', 'u32'],
  ['kBase', 'u32'],
  ['vBase', 'u32'],
  ['oBase', 'u32'],
  ['qHeadStride', 'u32'],
  ['kvHeadStride', 'u32'],
  ['oHeadStride', 'u32'],
  ['h0', 'u32'],
  ['kvDiv', 'u32'],
  ['kv0', 'u32'],
  ['gate', 'u32'],
];

/** Workgroup memory bytes of a config (Dawn's limit is maxComputeWorkgroupStorageSize). */
export function attendF16SharedBytes(c: F16MatrixConfig): number {
  const kv = c.kvShared ? (Math.max(c.bn * (c.dp + 8), c.dp * (c.bn + 8)) + c.bn * (c.dp + 8)) * 2 : 0;
  return c.sg * 16 * ((c.bn + 4) * 4 + (c.bn + 8) * 2 + 4) + 8 + kv;
}

/** The gate prologue shared by the f16 kernels: `n` from the params or the layer state. */
export function gatePrologue(): string {
  return `  var n = p.n;
  if (p.gate != 0u) {
    let sparse = state[${STATE.mode}] == ${STATE.modeSparse}u;
    if ((p.gate == 1u) != sparse) { return; }
    if (sparse) { n = state[${STATE.keptLength}]; }
  }`;
}

/**
 * subgroupMatrixLoad / Store in either spelling: 'template' (majorness as a template argument,
 * `subgroupMatrixLoad<T, row_major>(p, offset, stride)`, the current one) or 'bool' (the deprecated
 * `subgroupMatrixLoad<T>(p, offset, colMajor, stride)`).
 */
export type MatrixSpelling = 'template' | 'bool';
export function matrixLoad(sp: MatrixSpelling, type: string, ptr: string, offset: string, colMajor: boolean, stride: string): string {
  return sp === 'template'
    ? `subgroupMatrixLoad<${type}, ${colMajor ? 'col_major' : 'row_major'}>(${ptr}, ${offset}, ${stride})`
    : `subgroupMatrixLoad<${type}>(${ptr}, ${offset}, ${colMajor}, ${stride})`;
}
export function matrixStore(sp: MatrixSpelling, ptr: string, offset: string, value: string, stride: string): string {
  return sp === 'template'
    ? `subgroupMatrixStore<row_major>(${ptr}, ${offset}, ${value}, ${stride})`
    : `subgroupMatrixStore(${ptr}, ${offset}, ${value}, false, ${stride})`;
}

const LEFT = 'subgroup_matrix_left<f16, 16, 16>';
const RIGHT = 'subgroup_matrix_right<f16, 16, 16>';
const RESULT = 'subgroup_matrix_result<f32, 16, 16>';

export function attendF16MatrixWgsl(c: F16MatrixConfig): string {
  const nf = c.dp / 16;
  const ns = c.bn / 16;
  const half = c.bn / 2;
  const kvArr = c.kvShared ? 'vec4<f16>' : 'f16';
  const sp = c.spelling ?? 'template';
  const kT = c.kvShared && c.kT === true;
  // K^T fragment (d block f, key block j) and V fragment (key block j, d block f).
  const kFrag = (j: number, f: number) =>
    c.kvShared
      ? kT
        ? matrixLoad(sp, RIGHT, '&ks', `${f * 16 * (c.bn + 8) + j * 16}u`, false, 'KTST')
        : matrixLoad(sp, RIGHT, '&ks', `${j * 16 * (c.dp + 8) + f * 16}u`, true, 'KST')
      : matrixLoad(sp, RIGHT, '&kIn', `kb + (k0 + ${j * 16}u) * DP + ${f * 16}u`, true, 'DP');
  const vFrag = (j: number, f: number) =>
    c.kvShared
      ? matrixLoad(sp, RIGHT, '&vs', `${j * 16 * (c.dp + 8) + f * 16}u`, false, 'KST')
      : matrixLoad(sp, RIGHT, '&vIn', `vb + (k0 + ${j * 16}u) * DP + ${f * 16}u`, false, 'DP');
  // O fragments pass through the subgroup's S region NS at a time (rescale and epilogue).
  const chunks = Array.from({ length: Math.ceil(nf / ns) }, (_, g) =>
    Array.from({ length: Math.min(ns, nf - g * ns) }, (_, i) => g * ns + i),
  );
  const oStore = (fs: number[]) =>
    fs.map((f, i) => `    ${matrixStore(sp, '&sw', `sBase + ${i * 16}u`, `o${f}`, 'SST')};`).join('\n');
  const rescale = chunks
    .map(
      (fs) => `${oStore(fs)}
    workgroupBarrier();
    for (var e = 0u; e < ${(fs.length * 16) / 2}u; e = e + 1u) { let at = sBase + r * SST + hc * ${(fs.length * 16) / 2}u + e; sw[at] = sw[at] * aw[sg * 16u + r]; }
    workgroupBarrier();
${fs.map((f, i) => `    o${f} = ${matrixLoad(sp, RESULT, '&sw', `sBase + ${i * 16}u`, false, 'SST')};`).join('\n')}`,
    )
    .join('\n');
  const epilogue = chunks
    .map(
      (fs) => `${oStore(fs)}
  workgroupBarrier();
  if (row < n) {
    for (var e = 0u; e < ${(fs.length * 16) / 2}u; e = e + 1u) {
      let cc = hc * ${(fs.length * 16) / 2}u + e;
      let col = ${fs[0] * 16}u + cc;
      if (col < p.dim) { oOut[ob + row * p.dim + col] = sw[sBase + r * SST + cc] * invL; }
    }
  }
  workgroupBarrier();`,
    )
    .join('\n');
  const stage = c.kvShared
    ? `    workgroupBarrier();
    for (var e = lid; e < BN * DP4; e = e + THREADS) {
      let kr = e / DP4;
      let kc = e % DP4;
      let kx = kIn[(kb + (k0 + kr) * DP) / 4u + kc];
      let vx = vIn[(vb + (k0 + kr) * DP) / 4u + kc];
      let at = kr * KST + 4u * kc;
${kT ? '      let kt0 = 4u * kc * KTST + kr;\n      ks[kt0] = kx.x; ks[kt0 + KTST] = kx.y; ks[kt0 + 2u * KTST] = kx.z; ks[kt0 + 3u * KTST] = kx.w;' : '      ks[at] = kx.x; ks[at + 1u] = kx.y; ks[at + 2u] = kx.z; ks[at + 3u] = kx.w;'}
      vs[at] = vx.x; vs[at + 1u] = vx.y; vs[at + 2u] = vx.z; vs[at + 3u] = vx.w;
    }
    workgroupBarrier();`
    : '';
  return `enable f16;
enable subgroups;
enable chromium_experimental_subgroup_matrix;
diagnostic(off, chromium.subgroup_matrix_uniformity);
${paramsStruct(ATTEND_F16_PARAMS)}
@group(0) @binding(1) var<storage, read> qIn: array<f16>;
@group(0) @binding(2) var<storage, read> kIn: array<${kvArr}>;
@group(0) @binding(3) var<storage, read> vIn: array<${kvArr}>;
@group(0) @binding(4) var<storage, read_write> oOut: array<f32>;
@group(0) @binding(5) var<storage, read> state: array<u32>;
const SG: u32 = ${c.sg}u;
const BM: u32 = ${16 * c.sg}u;
const BN: u32 = ${c.bn}u;
const DP: u32 = ${c.dp}u;
const DP4: u32 = ${c.dp / 4}u;
const KST: u32 = ${c.dp + 8}u;
const KTST: u32 = ${c.bn + 8}u;
const SST: u32 = ${c.bn + 4}u;
const PST: u32 = ${c.bn + 8}u;
const THREADS: u32 = ${32 * c.sg}u;
const NEG: f32 = -1.0e30;
const THRESHOLD: f32 = ${c.threshold.toFixed(1)};
var<workgroup> sw: array<f32, ${c.sg * 16 * (c.bn + 4)}>;
var<workgroup> pw: array<f16, ${c.sg * 16 * (c.bn + 8)}>;
var<workgroup> aw: array<f32, ${c.sg * 16}>;
var<workgroup> flags: array<u32, 2>;
${c.kvShared ? `var<workgroup> ks: array<f16, ${Math.max(c.bn * (c.dp + 8), c.dp * (c.bn + 8))}>;\nvar<workgroup> vs: array<f16, ${c.bn * (c.dp + 8)}>;` : ''}

@compute @workgroup_size(${32 * c.sg})
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
${gatePrologue()}
  let nTiles = (n + BM - 1u) / BM;
  if (wg.x >= nTiles) { return; }
  let q0 = (nTiles - 1u - wg.x) * BM;
  let head = p.h0 + wg.y;
  let sg = lid / 32u;
  let lane = lid % 32u;
  let r = lane / 2u;
  let hc = lane % 2u;
  let row = q0 + sg * 16u + r;
  let qb = p.qBase + wg.y * p.qHeadStride + (q0 + sg * 16u) * DP;
  let kvOff = (head / p.kvDiv - p.kv0) * p.kvHeadStride;
  let kb = p.kBase + kvOff;
  let vb = p.vBase + kvOff;
  let ob = p.oBase + wg.y * p.oHeadStride;
  let sBase = sg * 16u * SST;
  let pBase = sg * 16u * PST;
${unroll(nf, (f) => `  let qf${f} = ${matrixLoad(sp, LEFT, '&qIn', `qb + ${f * 16}u`, false, 'DP')};`)}
${unroll(nf, (f) => `  var o${f} = ${RESULT}();`)}
  var m = NEG;
  var l = 0.0;
  let nKeyTiles = min(q0 + BM - 1u, n - 1u) / BN + 1u;
  for (var kt = 0u; kt < nKeyTiles; kt = kt + 1u) {
    let k0 = kt * BN;
${stage}
${unroll(ns, (j) => `    {
      var s = ${RESULT}();
${unroll(nf, (f) => `      s = subgroupMatrixMultiplyAccumulate(qf${f}, ${kFrag(j, f)}, s);`)}
      ${matrixStore(sp, '&sw', `sBase + ${j * 16}u`, 's', 'SST')};
    }`)}
    workgroupBarrier();
    // Every invocation has read the previous tile's flag: clear it for the next tile.
    if (lid == 0u) { flags[(kt + 1u) % 2u] = 0u; }
    let c0 = k0 + hc * ${half}u;
${unroll(half, (e) => `    let x${e} = select(sw[sBase + r * SST + hc * ${half}u + ${e}u], NEG, c0 + ${e}u > row);`)}
    var tmax = ${Array.from({ length: half }, (_, e) => `x${e}`).reduce((a, b) => `max(${a}, ${b})`)};
    tmax = max(tmax, subgroupShuffleXor(tmax, 1u));
    let mNew = max(m, tmax);
    let grow = mNew > m + THRESHOLD;
    let alpha = select(1.0, exp(m - mNew), grow);
    if (grow) { m = mNew; }
${unroll(half, (e) => `    let p${e} = f16(exp(x${e} - m));
    pw[pBase + r * PST + hc * ${half}u + ${e}u] = p${e};`)}
    var ls = ${Array.from({ length: half }, (_, e) => `f32(p${e})`).join(' + ')};
    ls = ls + subgroupShuffleXor(ls, 1u);
    l = l * alpha + ls;
    if (hc == 0u) { aw[sg * 16u + r] = alpha; }
    if (grow && kt > 0u) { flags[kt % 2u] = 1u; }
    workgroupBarrier();
    if (workgroupUniformLoad(&flags[kt % 2u]) != 0u) {
${rescale}
    }
${unroll(ns, (j) => `    {
      let pf = ${matrixLoad(sp, LEFT, '&pw', `pBase + ${j * 16}u`, false, 'PST')};
${unroll(nf, (f) => `      o${f} = subgroupMatrixMultiplyAccumulate(pf, ${vFrag(j, f)}, o${f});`)}
    }`)}
  }
  let invL = 1.0 / l;
${epilogue}
}
`;
}
