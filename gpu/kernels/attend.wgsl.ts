/**
 * attend: causal softmax attention, FlashAttention-2 style, for every query
 * head of a chunk of heads.
 *
 * Math (per head, rows a < n): out[a] = sum_{b <= a} softmax_b(q[a] . k[b] * scale) v[b],
 * computed tile by tile with an online softmax: for each key tile,
 * m' = max(m, rowmax S), alpha = exp(m - m'), P = exp(S - m'),
 * l = l * alpha + rowsum P, O = O * alpha + P V; finally out = O / l.
 *
 * Memory layout: Q [head][row][dim], K and V [kvHead][row][dim] with
 * kvHead = head / kvDiv (GQA on the original tensors, kvDiv = 1 on gathered
 * per-head copies), output O [head][row][dim]; all f32, rows of `dim` floats,
 * heads `*HeadStride` floats apart, each binding a window starting at the
 * chunk's first head (`*Base` = offset of that head inside the window).
 *
 * One workgroup per (query tile of BM rows, head). The Q tile stays in
 * registers (scaled by 1/sqrt(D)) and is staged into workgroup memory one DK
 * chunk at a time; K chunks [BN][DK] and V chunks [BV][DP] go through the
 * vec4 array `sm` (written as whole vec4s only: NVIDIA's OpenGL compiler is
 * slow on dynamically indexed components), P [BM][BN + 1] through `ps`.
 * With c.prefetch the next K or V chunk is loaded into registers while the
 * current one is used. Key tiles above the diagonal are skipped; tiles run
 * heaviest first. Tile sizes come from the adapter's limits (tiles.ts).
 *
 * `gate` (GATE) makes one recorded dispatch serve both outcomes of the
 * GPU-side budget: ifSparse runs only if state.mode is sparse (rows n =
 * state L'), ifDense only if the layer went dense, always runs on n rows.
 *
 * The gathered variant (attendGathered) attends a sparse layer's kept rows
 * in place: row r of head h is row indices[h][r] of the full Q, K, V (K, V
 * of kv head h / kvDiv, so the heads of a GQA group read one tensor and
 * share it in the cache), the same arithmetic as on gathered copies,
 * without them. Output rows are compact (r < L'), for scatter.
 */
import { bm, bn, threads, tileKey, unionVec4, type TileConfig } from '../tiles.js';
import { DIVU_WGSL } from './divu.wgsl.js';
import { read, variants, write, type Kernel } from './kernel.js';
import { unroll, type ParamFields } from './params.js';
import { STATE } from './state.js';
import { accumulateChunk, ioType, load4Fn, loadChunk, maskLogits, tileConsts, zeroLogits } from './tile.wgsl.js';

/** Values of the attend kernel's `gate` parameter. */
export const GATE = { always: 0, ifSparse: 1, ifDense: 2 } as const;

/**
 * The gate prologue of every gated kernel (attend at both precisions, to-f16, the block stages):
 * `n` rows from the params, or L' from the layer state when sparse; a kernel whose branch the
 * state did not choose (p.gate) returns at once.
 */
export function gatePrologue(): string {
  return `  var n = p.n;
  if (p.gate != ${GATE.always}u) {
    let sparse = state[${STATE.mode}] == ${STATE.modeSparse}u;
    if ((p.gate == ${GATE.ifSparse}u) != sparse) { return; }
    if (sparse) { n = state[${STATE.keptLength}]; }
  }`;
}

/**
 * The parameters every attend kernel (f32 here, f16 in attend-f16*.wgsl.ts) shares: n rows,
 * head dimension, the bases and head strides of Q, K/V and O in their bindings, the first head
 * of the dispatch and its GQA mapping (kv head = (h0 + h) / kvDiv - kv0), and the GATE mode.
 */
export const ATTEND_LAYOUT_PARAMS: ParamFields = [
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

const attendBindings = (c: TileConfig) =>
  [read('qIn', ioType(c)), read('kIn', ioType(c)), read('vIn', ioType(c)), write('oOut', ioType(c)), read('state', 'u32')] as const;

export const attendKernel = variants(tileKey, (c: TileConfig, key): Kernel<'qIn' | 'kIn' | 'vIn' | 'oOut' | 'state'> => ({
  name: 'attend',
  key: `attend:${key}`,
  params: [...ATTEND_LAYOUT_PARAMS, ['scale', 'f32']],
  bindings: attendBindings(c),
  workgroupSize: threads(c),
  source: () => attendSource(c),
}));

/** attend over each head's kept rows of the full tensors (see the file comment): `indices` [H][L] u32. */
export const attendGatheredKernel = variants(tileKey, (c: TileConfig, key): Kernel<'qIn' | 'kIn' | 'vIn' | 'oOut' | 'state' | 'indices'> => ({
  name: 'attendGathered',
  key: `attendGathered:${key}`,
  params: [...ATTEND_LAYOUT_PARAMS, ['scale', 'f32'], ['idxBase', 'u32'], ['idxHeadStride', 'u32']],
  bindings: [...attendBindings(c), read('indices', 'u32')],
  workgroupSize: threads(c),
  source: () => attendSource(c, undefined, true),
}));

/**
 * attendBlocks: the same attention over the key blocks of each (head, query block) list
 * (block-select.wgsl.ts blockLists: counts [H][nb], triangle-packed ascending lists, the
 * diagonal last) instead of every causal key tile; block size B, with BM and BN dividing B so
 * that a query tile lies in one block and key tiles tile each block.
 */
export const attendBlocksKernel = variants(
  (a: { c: TileConfig; B: number }) => `${tileKey(a.c)}.b${a.B}`,
  ({ c, B }: { c: TileConfig; B: number }, key): Kernel<'qIn' | 'kIn' | 'vIn' | 'oOut' | 'state' | 'counts' | 'lists'> => ({
    name: 'attendBlocks',
    key: `attendBlocks:${key}`,
    params: [...ATTEND_LAYOUT_PARAMS, ['scale', 'f32']],
    bindings: [...attendBindings(c), read('counts', 'u32'), read('lists', 'u32')],
    workgroupSize: threads(c),
    source: () => attendSource(c, B),
  }),
);

/** The key-tile walk of block mode: tile kt of a query tile's list starting at `at`. */
const keyStartWgsl = (B: number) => `
const BLK: u32 = ${B}u;
const TPB: u32 = BLK / BN;
fn keyStart(at: u32, kt: u32) -> u32 { return lists[at + kt / TPB] * BLK + (kt % TPB) * BN; }`;

function attendSource(c: TileConfig, B?: number, gathered = false): string {
  const dk4 = c.dk / 4;
  const nch = c.dp / c.dk;
  const qu = Math.ceil((bm(c) * dk4) / threads(c));
  const td4 = c.dp / 4 / c.nx;
  // Register prefetch (c.prefetch): thread slot u (a vec4) of a K chunk [BN][DK4] or a V chunk [BV][DP4].
  const ku = Math.ceil((bn(c) * dk4) / threads(c));
  const vu = Math.ceil((c.bv * (c.dp / 4)) / threads(c));
  const kLoad = (k0: string, d0: string) =>
    unroll(ku, (u) => `    {
      let e = tid + ${u}u * THREADS;
      let row = ${k0} + e / DK4;
      let col = ${d0} + 4u * (e % DK4);
      kp${u} = vec4<f32>(0.0);
      if (e < BN * DK4 && row < n) { kp${u} = load4_kIn(kBase + rowAt(row) * p.dim + col, col); }
    }`);
  const kStore = () =>
    unroll(ku, (u) => `    { let e = tid + ${u}u * THREADS; if (e < BN * DK4) { sm[KS + (e / DK4) * DPAD + e % DK4] = kp${u}; } }`);
  const vLoad = (v0: string) =>
    unroll(vu, (u) => `    {
      let e = tid + ${u}u * THREADS;
      let row = ${v0} + e / DP4;
      let col = 4u * (e % DP4);
      vp${u} = vec4<f32>(0.0);
      if (e < BV * DP4 && row < n) { vp${u} = load4_vIn(vBase + rowAt(row) * p.dim + col, col); }
    }`);
  const vStore = () => unroll(vu, (u) => `      { let e = tid + ${u}u * THREADS; if (e < BV * DP4) { sm[VS + e] = vp${u}; } }`);
  const stageQ = (ch: number) =>
    unroll(qu, (u) => `    if (qe${u} < BM * DK4) { sm[QS + (qe${u} / DK4) * DPAD + qe${u} % DK4] = qr${ch}_${u}; }`);
  return `${tileConsts(c)}
const BV: u32 = ${c.bv}u;
const PPAD: u32 = BN + 1u;
const VS: u32 = 0u;
var<workgroup> sm: array<vec4<f32>, ${unionVec4(c)}>;
var<workgroup> ps: array<f32, ${bm(c) * (bn(c) + 1)}>;
var<workgroup> redM: array<f32, ${bm(c) * c.nx}>;
var<workgroup> redL: array<f32, ${bm(c) * c.nx}>;
${DIVU_WGSL}
${load4Fn('qIn', c)}
${load4Fn('kIn', c)}
${load4Fn('vIn', c)}
${B ? keyStartWgsl(B) : ''}

${
  gathered
    ? `var<private> idxHead: u32;
/** The full tensors' row of this head's kept row r. */
fn rowAt(r: u32) -> u32 { return indices[idxHead + r]; }`
    : `fn rowAt(r: u32) -> u32 { return r; }`
}

/** Q[row][col .. col+4) * scale, zero outside n rows and dim columns. */
fn loadQ4(base: u32, row: u32, col: u32, n: u32) -> vec4<f32> {
  if (row < n) { return load4_qIn(base + rowAt(row) * p.dim + col, col) * p.scale; }
  return vec4<f32>(0.0);
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) tid: u32) {
${gatePrologue()}
  let nTiles = (n + BM - 1u) / BM;
  if (wg.x >= nTiles) { return; }
  let qt = nTiles - 1u - wg.x;
  let q0 = qt * BM;
  let head = p.h0 + wg.y;
  let qBase = p.qBase + wg.y * p.qHeadStride;
  let kvOff = (divu(head, p.kvDiv) - p.kv0) * p.kvHeadStride;
  let kBase = p.kBase + kvOff;
  let vBase = p.vBase + kvOff;
  let oBase = p.oBase + wg.y * p.oHeadStride;
${gathered ? '  idxHead = p.idxBase + wg.y * p.idxHeadStride;' : ''}
  let tx = tid % NX;
  let ty = tid / NX;

  // The Q tile in registers: chunk ch, slot u holds vec4 qe_u of that chunk.
${unroll(qu, (u) => `  let qe${u} = tid + ${u}u * THREADS;`)}
${unroll(nch, (ch) =>
  unroll(qu, (u) => `  let qr${ch}_${u} = loadQ4(qBase, q0 + qe${u} / DK4, ${ch * c.dk}u + 4u * (qe${u} % DK4), n);`),
)}

${unroll(c.tm, (i) => `  var m${i} = NEG;\n  var l${i} = 0.0;`)}
${unroll(c.tm, (i) => unroll(td4, (j) => `  var o${i}${j} = vec4<f32>(0.0);`))}

  let lastKey = min(q0 + BM - 1u, n - 1u);
${B ? `  let qb = q0 / BLK;
  let nb = (n + BLK - 1u) / BLK;
  let listAt = head * (nb * (nb + 1u) / 2u) + qb * (qb + 1u) / 2u;
  let nKeyTiles = (counts[head * nb + qb] - 1u) * TPB + (lastKey - qb * BLK) / BN + 1u;` : `  let nKeyTiles = lastKey / BN + 1u;`}
${c.prefetch ? `${unroll(ku, (u) => `  var kp${u} = vec4<f32>(0.0);`)}
${unroll(vu, (u) => `  var vp${u} = vec4<f32>(0.0);`)}
  let kFirst = ${B ? 'keyStart(listAt, 0u)' : '0u'};
${kLoad('kFirst', '0u')}` : ''}
  for (var kt = 0u; kt < nKeyTiles; kt = kt + 1u) {
    let k0 = ${B ? 'keyStart(listAt, kt)' : 'kt * BN'};
    // V chunks this tile needs (keys beyond the diagonal have P = 0).
    let nV = min(BN / BV, (lastKey - k0) / BV + 1u);
${zeroLogits(c)}
${unroll(nch, (ch) => `${stageQ(ch)}
${c.prefetch ? kStore() : loadChunk({ region: 'KS', rows: 'BN', src: 'kIn', base: 'kBase', row0: 'k0', n: 'n', d0: `${ch * c.dk}u`, rowAt: 'rowAt' })}
    workgroupBarrier();
${c.prefetch ? (ch + 1 < nch ? kLoad('k0', `${(ch + 1) * c.dk}u`) : vLoad('k0')) : ''}
${accumulateChunk(c)}
${ch + 1 < nch ? '    workgroupBarrier();' : '    // (the row-max barrier below also ends the last chunk: sm is next written after it)'}`)}
    if (k0 + BN - 1u > q0 || k0 + BN > n) {
${maskLogits(c, { q0: 'q0', k0: 'k0', shift: '0u', nKeys: 'n' })}
    }
${unroll(c.tm, (i) => `    redM[(ty + ${i}u * NY) * NX + tx] = max(${Array.from({ length: c.tn }, (_, j) => `s${i}${j}`).reduce((a, b) => `max(${a}, ${b})`)}, NEG);`)}
    workgroupBarrier();
${unroll(c.tm, (i) => `    var tmax${i} = NEG;
    for (var x = 0u; x < NX; x = x + 1u) { tmax${i} = max(tmax${i}, redM[(ty + ${i}u * NY) * NX + x]); }
    let mNew${i} = max(m${i}, tmax${i});
    let alpha${i} = exp(m${i} - mNew${i});
    m${i} = mNew${i};
${unroll(c.tn, (j) => `    s${i}${j} = exp(s${i}${j} - mNew${i});
    ps[(ty + ${i}u * NY) * PPAD + tx + ${j}u * NX] = s${i}${j};`)}
    redL[(ty + ${i}u * NY) * NX + tx] = ${Array.from({ length: c.tn }, (_, j) => `s${i}${j}`).join(' + ')};
${unroll(td4, (j) => `    o${i}${j} = o${i}${j} * alpha${i};`)}`)}
    for (var vc = 0u; vc < nV; vc = vc + 1u) {
      let v0 = k0 + vc * BV;
${c.prefetch ? vStore() : `      for (var e = tid; e < BV * DP4; e = e + THREADS) {
        let row = v0 + e / DP4;
        let col = 4u * (e % DP4);
        var x = vec4<f32>(0.0);
        if (row < n) { x = load4_vIn(vBase + rowAt(row) * p.dim + col, col); }
        sm[VS + e] = x;
      }`}
      workgroupBarrier();
${c.prefetch ? `      if (vc + 1u < nV) {
${vLoad('v0 + BV')}
      } else if (kt + 1u < nKeyTiles) {
        let kNext = ${B ? 'keyStart(listAt, kt + 1u)' : 'k0 + BN'};
${kLoad('kNext', '0u')}
      }` : ''}
      if (vc == 0u) {
${unroll(c.tm, (i) => `        var ls${i} = 0.0;
        for (var x = 0u; x < NX; x = x + 1u) { ls${i} = ls${i} + redL[(ty + ${i}u * NY) * NX + x]; }
        l${i} = l${i} * alpha${i} + ls${i};`)}
      }
      for (var b = 0u; b < BV; b = b + 1u) {
${unroll(c.tm, (i) => `        let pr${i} = vec4<f32>(ps[(ty + ${i}u * NY) * PPAD + vc * BV + b]);`)}
${unroll(td4, (j) => `        let v${j} = sm[VS + b * DP4 + tx + ${j}u * NX];`)}
${unroll(c.tm, (i) => unroll(td4, (j) => `        o${i}${j} = fma(pr${i}, v${j}, o${i}${j});`))}
      }
      workgroupBarrier();
    }
  }

  // Components are addressed statically: a dynamically indexed vector would live in local memory.
${unroll(c.tm, (i) => `  {
    let row = q0 + ty + ${i}u * NY;
    if (row < n) {
${unroll(td4, (j) => `      {
        let col = 4u * (tx + ${j}u * NX);
        let at = oBase + row * p.dim + col;
        let o = o${i}${j} / l${i};
${c.vec4 ? `        if (col < p.dim) { oOut[at >> 2u] = o; }` : unroll(4, (k) => `        if (col + ${k}u < p.dim) { oOut[at + ${k}u] = o.${'xyzw'[k]}; }`)}
      }`)}
    }
  }`)}
}
`;
}
