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
 * first head (`*Base` in halves). With `q32`, Q is read from its f32 tensor
 * [head][L][dim] instead (`qBase`, `qHeadStride` in floats; on a sparse layer through
 * indices [head][L]) and rounded as it is staged: f16(q * scale), zero past n and dim.
 * Output O [head][row][dim] f32 (`oBase` in floats), rows >= n not written; with `direct`
 * straight into the layer's out [L][H*dim] instead (row indices[h][r] on a sparse layer).
 *
 * One workgroup per (query tile of BM = 16 * SG rows, head), SG subgroups of
 * 32 invocations; subgroup g owns rows q0 + 16g .. +16, keeps its Q'
 * fragments (DP/16 left matrices, staged once through its P region) and O
 * fragments (DP/16 results) unrolled in registers. Workgroup memory: S per
 * subgroup [16][BN + 4] f32, P per subgroup [16][BN + 8] f16, the K and V
 * tiles [BN][DP + 8] f16 (K^T fragments load column-major), alpha per row,
 * two rescale flags. Storage is read as vec4<f16> (16-byte loads).
 * Lane t of a subgroup does the softmax of row t / 2, columns (t % 2) * BN/2 ..
 * Tiles run heaviest first; key tiles past the diagonal are skipped.
 */
import { read, variants, write, type Kernel } from './kernel.js';
import { unroll, type ParamFields } from './params.js';
import { ATTEND_LAYOUT_PARAMS, gatePrologue } from './attend.wgsl.js';

/** Rows of every f16-layout tensor are padded (with zeros) to a multiple of this. */
export const ROW_ALIGN = 128;

export interface F16MatrixConfig {
  /** Subgroups per workgroup (each owns 16 query rows). */
  sg: number;
  /** Keys per tile, a multiple of 16. */
  bn: number;
  /** Padded head dimension, a multiple of 16. */
  dp: number;
  /** Rescale O only when a row max grows by more than this (natural-log units, <= 8). */
  threshold: number;
  /**
   * Matrix loads from arrays of vec4<f16> (offset and stride in vec4s): the K/V tiles in workgroup
   * memory (vecKV) and Q straight from storage (vecQ). Else K/V tiles are f16 arrays and Q is
   * staged through the subgroup's P region.
   */
  vecKV?: boolean;
  vecQ?: boolean;
  /** Load the next K/V tile into registers while this one computes. */
  prefetch?: boolean;
  /** Leave out the barrier before the rescale flag's workgroupUniformLoad (itself a barrier). */
  lean?: boolean;
  /** One lane per softmax row (no subgroup shuffles); else two lanes per row. */
  soloRows?: boolean;
  /**
   * Q straight from its f32 tensor ([head][L][dim], dim % 4 == 0; `qBase`, `qHeadStride` in
   * floats), scaled and rounded to f16 as it is staged: to-f16's values without its pass. 'rows':
   * rows 0 .. n of each head; 'gathered': each head's kept rows, indices[h][r] (a sparse layer).
   * Needs Q staged through the P region (not vecQ); not with `blocks`.
   */
  q32?: 'rows' | 'gathered';
  /**
   * With q32: write each output row straight to the layer's token-major output out [L][H*dim]
   * (`oBase` its window's base, `oRowStride` = H * dim, head h's columns from h * dim): row r of
   * head h to row r, or on a sparse layer to row indices[h][r]; no scatter pass.
   */
  direct?: boolean;
  /**
   * Block mode (XAttention's attendBlocks): the key tiles of each (head, query block of `blocks`
   * rows) come from its list (counts [H][nb], triangle-packed ascending lists, as the f32
   * attendBlocks); 16 * sg and bn divide it.
   */
  blocks?: number;
}

/** The f16 kernels take Q pre-scaled (to-f16.wgsl.ts), so no `scale`. */
export const ATTEND_F16_PARAMS: ParamFields = ATTEND_LAYOUT_PARAMS;

/** Workgroup memory bytes of a config (Dawn's limit is maxComputeWorkgroupStorageSize). */
export function attendF16SharedBytes(c: F16MatrixConfig): number {
  const kv = 2 * c.bn * (c.dp + 8) * 2;
  return c.sg * 16 * ((c.bn + 4) * 4 + (c.bn + 8) * 2 + 4) + 16 + kv;
}

/** `subgroupMatrixLoad<T, row_major|col_major>(p, offset, stride)` (majorness as a template argument). */
export function matrixLoad(type: string, ptr: string, offset: string, colMajor: boolean, stride: string): string {
  return `subgroupMatrixLoad<${type}, ${colMajor ? 'col_major' : 'row_major'}>(${ptr}, ${offset}, ${stride})`;
}
export function matrixStore(ptr: string, offset: string, value: string, stride: string): string {
  return `subgroupMatrixStore<row_major>(${ptr}, ${offset}, ${value}, ${stride})`;
}

const LEFT = 'subgroup_matrix_left<f16, 16, 16>';
const RIGHT = 'subgroup_matrix_right<f16, 16, 16>';
const RESULT = 'subgroup_matrix_result<f32, 16, 16>';

/** The bindings of both f16 attend kernels (f16 layout in, f32 out, layer state). */
export const ATTEND_F16_BINDINGS = [
  read('qIn', 'vec4<f16>'),
  read('kIn', 'vec4<f16>'),
  read('vIn', 'vec4<f16>'),
  write('oOut', 'f32'),
  read('state', 'u32'),
] as const;

const configKey = (c: F16MatrixConfig) =>
  `attend-f16${c.blocks ? '-blocks' : ''}:${c.sg}.${c.bn}.${c.dp}.${c.threshold}${['vecKV', 'vecQ', 'prefetch', 'lean', 'soloRows'].filter((k) => c[k as keyof F16MatrixConfig]).map((k) => `.${k}`).join('')}${c.blocks ? `.B${c.blocks}` : ''}${c.q32 ? `.q32${c.q32 === 'gathered' ? 'g' : ''}` : ''}${c.direct ? '.direct' : ''}`;

/** With `q32`: Q is f32, and the scale and (gathered) the selection's indices come along. */
const Q32_PARAMS: ParamFields = [
  ['scale', 'f32'],
  ['idxBase', 'u32'],
  ['idxHeadStride', 'u32'],
];

function bindingsOf(c: F16MatrixConfig) {
  if (c.blocks) return [...ATTEND_F16_BINDINGS, read('counts', 'u32'), read('lists', 'u32')];
  if (!c.q32) return ATTEND_F16_BINDINGS;
  const [, ...rest] = ATTEND_F16_BINDINGS;
  return [read('qIn', 'vec4<f32>'), ...rest, ...(c.q32 === 'gathered' ? [read('indices', 'u32')] : [])];
}

/** The subgroup-matrix attend kernel of a config (contract; WGSL generated once per key). */
export const attendF16Kernel = variants(configKey, (c: F16MatrixConfig, key): Kernel<(typeof ATTEND_F16_BINDINGS)[number]['name'] | 'counts' | 'lists' | 'indices'> => ({
  name: c.blocks ? 'attend-f16-blocks' : 'attend-f16',
  key,
  params: c.q32 ? [...ATTEND_F16_PARAMS, ...Q32_PARAMS, ...(c.direct ? ([['oRowStride', 'u32']] as ParamFields) : [])] : ATTEND_F16_PARAMS,
  bindings: bindingsOf(c),
  workgroupSize: 32 * c.sg,
  enable: ['f16', 'subgroups', 'chromium_experimental_subgroup_matrix'],
  directives: ['diagnostic(off, chromium.subgroup_matrix_uniformity)'],
  source: () => attendF16Source(c),
}));

function attendF16Source(c: F16MatrixConfig): string {
  const nf = c.dp / 16;
  const ns = c.bn / 16;
  // Softmax columns per lane: half a row (two lanes per row, combined by a shuffle), or with
  // c.soloRows a whole row (lanes t and t + 16 compute row t alike; only lanes < 16 write O).
  const solo = c.soloRows === true;
  const half = solo ? c.bn : c.bn / 2;
  const mine = solo ? 'lane < 16u' : 'true';
  const v = c.vecKV === true;
  const u = (halves: number) => `${v ? halves / 4 : halves}u`;
  // K^T fragment (d block f, key block j) and V fragment (key block j, d block f) from the staged tiles.
  const kFrag = (j: number, f: number) => matrixLoad(RIGHT, '&ks', u(j * 16 * (c.dp + 8) + f * 16), true, v ? 'KST / 4u' : 'KST');
  const vFrag = (j: number, f: number) => matrixLoad(RIGHT, '&vs', u(j * 16 * (c.dp + 8) + f * 16), false, v ? 'KST / 4u' : 'KST');
  // O fragments pass through the subgroup's S region NS at a time (rescale and epilogue).
  const chunks = Array.from({ length: Math.ceil(nf / ns) }, (_, g) =>
    Array.from({ length: Math.min(ns, nf - g * ns) }, (_, i) => g * ns + i),
  );
  const oStore = (fs: number[]) =>
    fs.map((f, i) => `    ${matrixStore('&sw', `sBase + ${i * 16}u`, `o${f}`, 'SST')};`).join('\n');
  const rescale = chunks
    .map(
      (fs) => `${oStore(fs)}
    workgroupBarrier();
    if (${mine}) {
      for (var e = 0u; e < ${(fs.length * 16) / (solo ? 1 : 2)}u; e = e + 1u) { let at = sBase + r * SST + hc * ${(fs.length * 16) / 2}u + e; sw[at] = sw[at] * aw[sg * 16u + r]; }
    }
    workgroupBarrier();
${fs.map((f, i) => `    o${f} = ${matrixLoad(RESULT, '&sw', `sBase + ${i * 16}u`, false, 'SST')};`).join('\n')}
    // Lanes of a subgroup run independently: every lane has loaded before any stores the next chunk.
    workgroupBarrier();`,
    )
    .join('\n');
  const epilogue = chunks
    .map(
      (fs) => `${oStore(fs)}
  workgroupBarrier();
  if (row < n && ${mine}) {
${c.direct ? `    let orow = ${c.q32 === 'gathered' ? 'indices[p.idxBase + wg.y * p.idxHeadStride + row]' : 'row'};
` : ''}    for (var e = 0u; e < ${(fs.length * 16) / (solo ? 1 : 2)}u; e = e + 1u) {
      let cc = hc * ${(fs.length * 16) / 2}u + e;
      let col = ${fs[0] * 16}u + cc;
      if (col < p.dim) { oOut[${c.direct ? 'ob + orow * p.oRowStride' : 'ob + row * p.dim'} + col] = sw[sBase + r * SST + cc] * invL; }
    }
  }
  workgroupBarrier();`,
    )
    .join('\n');
  // K/V tile staging: vec4 e of the tile is row e / DP4, column group e % DP4; with c.prefetch the
  // next tile's vec4s wait in registers (slot i: e = lid + i * THREADS) while this tile computes.
  const put = (e: string, kx: string, vx: string) =>
    v
      ? `ks[(${e} / DP4) * (KST / 4u) + ${e} % DP4] = ${kx}; vs[(${e} / DP4) * (KST / 4u) + ${e} % DP4] = ${vx};`
      : `let at = (${e} / DP4) * KST + 4u * (${e} % DP4);
      ks[at] = ${kx}.x; ks[at + 1u] = ${kx}.y; ks[at + 2u] = ${kx}.z; ks[at + 3u] = ${kx}.w;
      vs[at] = ${vx}.x; vs[at + 1u] = ${vx}.y; vs[at + 2u] = ${vx}.z; vs[at + 3u] = ${vx}.w;`;
  const at4 = (base: string, k0: string, e: string) => `(${base} + (${k0} + ${e} / DP4) * DP) / 4u + ${e} % DP4`;
  const slots = Math.ceil((c.bn * (c.dp / 4)) / (32 * c.sg));
  // The first key of key tile `kt`: kt * BN, or in block mode the tile's place in its block list.
  const blk = c.blocks !== undefined;
  const keyStart = (kt: string) => (blk ? `keyStart(listAt, ${kt})` : `(${kt}) * BN`);
  const slot = (i: number, f: (e: string) => string) =>
    `    { let e = lid + ${i * 32 * c.sg}u; if (e < BN * DP4) { ${f('e')} } }`;
  const fetch = (k0: string) =>
    unroll(slots, (i) => slot(i, (e) => `kp${i} = kIn[${at4('kb', k0, e)}]; vp${i} = vIn[${at4('vb', k0, e)}];`));
  const stage = c.prefetch
    ? `    workgroupBarrier();
${unroll(slots, (i) => slot(i, (e) => put(e, `kp${i}`, `vp${i}`)))}
    workgroupBarrier();
    if (kt + 1u < nKeyTiles) {
${fetch(keyStart('kt + 1u'))}
    }`
    : `    workgroupBarrier();
    for (var e = lid; e < BN * DP4; e = e + THREADS) {
      let kx = kIn[${at4('kb', 'k0', 'e')}];
      let vx = vIn[${at4('vb', 'k0', 'e')}];
      ${put('e', 'kx', 'vx')}
    }
    workgroupBarrier();`;
  // Q fragments: straight from storage (vecQ), or NS at a time through the subgroup's P region,
  // from the f16 layout (qb in halves) or, with q32, from the f32 rows (qRow: a row's first float).
  const qRow = (qr: string) =>
    c.q32 === 'gathered' ? `p.qBase + wg.y * p.qHeadStride + indices[p.idxBase + wg.y * p.idxHeadStride + ${qr}] * p.dim` : `p.qBase + wg.y * p.qHeadStride + ${qr} * p.dim`;
  const qVec = (fs: number[]) =>
    c.q32
      ? `let qrow = q0 + sg * 16u + qr;
    let col = ${fs[0] * 16}u + 4u * qc;
    var x32 = vec4<f32>(0.0);
    if (qrow < n && col < p.dim) { x32 = qIn[(${qRow('qrow')} + col) / 4u]; }
    let x = vec4<f16>(x32 * p.scale);`
      : `let x = qIn[(qb + qr * DP) / 4u + ${fs[0] * 4}u + qc];`;
  // The subgroup's first Q row in the f16 layout, in halves (q32 addresses rows by qRow instead).
  const qb = c.q32 ? '' : '  let qb = p.qBase + wg.y * p.qHeadStride + (q0 + sg * 16u) * DP;\n';
  const qLoad =
    qb +
    (c.vecQ
      ? unroll(nf, (f) => `  let qf${f} = ${matrixLoad(LEFT, '&qIn', `qb / 4u + ${f * 4}u`, false, 'DP4')};`)
      : chunks
          .map(
            (fs) => `  for (var e = lane; e < ${fs.length * 64}u; e = e + 32u) {
    let qr = e / ${fs.length * 4}u;
    let qc = e % ${fs.length * 4}u;
    ${qVec(fs)}
    let at = pBase + qr * PST + 4u * qc;
    pw[at] = x.x; pw[at + 1u] = x.y; pw[at + 2u] = x.z; pw[at + 3u] = x.w;
  }
  workgroupBarrier();
${fs.map((f, i) => `  let qf${f} = ${matrixLoad(LEFT, '&pw', `pBase + ${i * 16}u`, false, 'PST')};`).join('\n')}
  workgroupBarrier();`,
          )
          .join('\n'));
  return `const SG: u32 = ${c.sg}u;
const BM: u32 = ${16 * c.sg}u;
const BN: u32 = ${c.bn}u;
const DP: u32 = ${c.dp}u;
const DP4: u32 = ${c.dp / 4}u;
const KST: u32 = ${c.dp + 8}u;
const SST: u32 = ${c.bn + 4}u;
const PST: u32 = ${c.bn + 8}u;
const THREADS: u32 = ${32 * c.sg}u;
const NEG: f32 = -1.0e30;
const THRESHOLD: f32 = ${c.threshold.toFixed(1)};
// Matrix loads and stores need 16-byte aligned rows; the driver packs these variables one after
// another, so each is a multiple of 16 bytes (flags too) and the matrix operands come first.
var<workgroup> sw: array<f32, ${c.sg * 16 * (c.bn + 4)}>;
var<workgroup> pw: array<f16, ${c.sg * 16 * (c.bn + 8)}>;
var<workgroup> ks: array<${v ? `vec4<f16>, ${(c.bn * (c.dp + 8)) / 4}` : `f16, ${c.bn * (c.dp + 8)}`}>;
var<workgroup> vs: array<${v ? `vec4<f16>, ${(c.bn * (c.dp + 8)) / 4}` : `f16, ${c.bn * (c.dp + 8)}`}>;
var<workgroup> aw: array<f32, ${c.sg * 16}>;
var<workgroup> flags: array<u32, 4>;
${blk ? `const BLK: u32 = ${c.blocks}u;
const TPB: u32 = BLK / BN;
fn keyStart(at: u32, kt: u32) -> u32 { return lists[at + kt / TPB] * BLK + (kt % TPB) * BN; }
` : ''}
@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32, @builtin(subgroup_invocation_id) sgLane: u32, @builtin(subgroup_size) sgSize: u32) {
${gatePrologue()}
  let nTiles = (n + BM - 1u) / BM;
  if (wg.x >= nTiles) { return; }
  let q0 = (nTiles - 1u - wg.x) * BM;
  let head = p.h0 + wg.y;
  let sg = lid / 32u;
  // The shuffle partner is by subgroup lane (32 wide on the matrix adapters; the emulation's are narrower).
  let lane = select(lid % 32u, sgLane, sgSize == 32u);
  let r = ${solo ? 'lane % 16u' : 'lane / 2u'};
  let hc = ${solo ? '0u' : 'lane % 2u'};
  let row = q0 + sg * 16u + r;
  let kvOff = (head / p.kvDiv - p.kv0) * p.kvHeadStride;
  let kb = p.kBase + kvOff;
  let vb = p.vBase + kvOff;
  let ob = p.oBase + ${c.direct ? '(p.h0 + wg.y) * p.dim' : 'wg.y * p.oHeadStride'};
  let sBase = sg * 16u * SST;
  let pBase = sg * 16u * PST;
${qLoad}
${unroll(nf, (f) => `  var o${f} = ${RESULT}();`)}
  var m = NEG;
  var l = 0.0;
  let lastKey = min(q0 + BM - 1u, n - 1u);
${
  blk
    ? `  let qBlock = q0 / BLK;
  let nb = (n + BLK - 1u) / BLK;
  let listAt = head * (nb * (nb + 1u) / 2u) + qBlock * (qBlock + 1u) / 2u;
  let nKeyTiles = (counts[head * nb + qBlock] - 1u) * TPB + (lastKey - qBlock * BLK) / BN + 1u;`
    : '  let nKeyTiles = lastKey / BN + 1u;'
}
${c.prefetch ? `${unroll(slots, (i) => `  var kp${i} = vec4<f16>();\n  var vp${i} = vec4<f16>();`)}\n${fetch(keyStart('0u'))}` : ''}
  for (var kt = 0u; kt < nKeyTiles; kt = kt + 1u) {
    let k0 = ${keyStart('kt')};
${stage}
${unroll(ns, (j) => `    {
      var s = ${RESULT}();
${unroll(nf, (f) => `      s = subgroupMatrixMultiplyAccumulate(qf${f}, ${kFrag(j, f)}, s);`)}
      ${matrixStore('&sw', `sBase + ${j * 16}u`, 's', 'SST')};
    }`)}
    workgroupBarrier();
    // Every invocation has read the previous tile's flag: clear it for the next tile.
    if (lid == 0u) { flags[(kt + 1u) % 2u] = 0u; }
    let c0 = k0 + hc * ${half}u;
${unroll(half, (e) => `    let x${e} = select(sw[sBase + r * SST + hc * ${half}u + ${e}u], NEG, c0 + ${e}u > row);`)}
    var tmax = ${Array.from({ length: half }, (_, e) => `x${e}`).reduce((a, b) => `max(${a}, ${b})`)};
${solo ? '' : '    tmax = max(tmax, subgroupShuffleXor(tmax, 1u));'}
    let mNew = max(m, tmax);
    let grow = mNew > m + THRESHOLD;
    let alpha = select(1.0, exp(m - mNew), grow);
    if (grow) { m = mNew; }
${unroll(half, (e) => `    let p${e} = f16(exp(x${e} - m));
    pw[pBase + r * PST + hc * ${half}u + ${e}u] = p${e};`)}
    var ls = ${Array.from({ length: half }, (_, e) => `f32(p${e})`).join(' + ')};
${solo ? '' : '    ls = ls + subgroupShuffleXor(ls, 1u);'}
    l = l * alpha + ls;
    if (hc == 0u) { aw[sg * 16u + r] = alpha; }
    if (grow && kt > 0u) { flags[kt % 2u] = 1u; }
${c.lean ? '' : '    workgroupBarrier();'}
    if (workgroupUniformLoad(&flags[kt % 2u]) != 0u) {
${rescale}
    }
${unroll(ns, (j) => `    {
      let pf = ${matrixLoad(LEFT, '&pw', `pBase + ${j * 16}u`, false, 'PST')};
${unroll(nf, (f) => `      o${f} = subgroupMatrixMultiplyAccumulate(pf, ${vFrag(j, f)}, o${f});`)}
    }`)}
  }
  let invL = 1.0 / l;
${epilogue}
}
`;
}
