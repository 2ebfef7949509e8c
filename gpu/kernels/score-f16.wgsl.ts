/**
 * scorePartials-f16: scorePartials (score.wgsl.ts, with `store`) on the GPU's matrix units, for
 * precision 'f16': the logits of f16-rounded Q and K, f32 accumulation,
 *   s_it = (f16(q_i) . f16(k_t)) / sqrt(D),
 * per (key block of BN keys, head): the partial (m, l) of each window query over the block's
 * visible keys (m = max_t s_it, l = sum_t exp(s_it - m); key t visible to query P + qw iff
 * t <= P + qw and t < L) -> partials [head][block][W][2], and the prefix logits s_it (t < P)
 * -> logits [head][W][P], both f32, for scoreStats and scoreMeanStored as in f32.
 * The products of f16 values are exact in f32, so this is the plain kernel's `round` variant
 * up to the order of the f32 sums (the scale there multiplies Q before the products).
 *
 * Memory layout (the f16 layout of attend-f16.wgsl.ts, from to-f16 with scale 1): the window
 * Q rows [head][Wr][DP] (rows P .. L-1 of Q, padded to Wr rows), K [kvHead][Lr][DP] with
 * kvHead = head / kvDiv, f16 as vec4<f16> (`qBase`, `kBase` and the head strides in halves);
 * bindings are windows starting at the chunk's first head.
 *
 * One workgroup per (pass of BM = 16 sgh window rows, run of KPW key blocks, HPW = SG / sgh
 * heads of one KV head), SG subgroups of 32 invocations (grid x = pass + nPass * run, y = head
 * group): subgroup g computes rows (g % sgh) 16 .. +16 of the pass for head g / sgh and keeps
 * their left fragments in registers (loaded from storage: 10% faster on an H200 than staging
 * them through workgroup memory); then per key block the K block is staged into ks ([BN][DP + 8] f16,
 * from registers loaded while the previous block computed; K^T fragments load column-major),
 * each subgroup multiplies and stores S [16][BN + 4] f32 in its region, invocations 2r and
 * 2r + 1 (one subgroup) fold row r's halves by shuffles (the max, then the exponential sum),
 * and the workgroup writes the block's logits row by row (coalesced). The K block is read
 * once for the HPW heads.
 */
import { read, variants, write, type Kernel } from './kernel.js';
import { unroll, type ParamFields } from './params.js';
import { matrixLoad, matrixStore } from './attend-f16.wgsl.js';
import { QK_PARAMS } from './score.wgsl.js';

export interface ScoreF16Config {
  /** Subgroups per workgroup. */
  sg: number;
  /** Subgroups per head (window rows per pass: BM = 16 sgh); the workgroup's sg / sgh heads share a KV head. */
  sgh: number;
  /** Keys per block, a multiple of 16 that divides ROW_ALIGN (K's padded rows). */
  bn: number;
  /** Padded head dimension, a multiple of 16. */
  dp: number;
  /** Key blocks per workgroup (the pass's Q fragments stay in registers across them). */
  blocks: number;
}

/** Workgroup memory bytes of a config: the K block and the S regions. */
export function scoreF16SharedBytes(c: ScoreF16Config): number {
  return c.bn * (c.dp + 8) * 2 + c.sg * 16 * (c.bn + 4) * 4;
}

/** scorePartials' parameters (no `dim`: the f16 layout pads D to DP with zeros); bases in halves. */
const PARAMS: ParamFields = [
  ...QK_PARAMS.filter(([name]) => name !== 'dim'),
  ['nKeyBlocks', 'u32'],
  ['nPass', 'u32'],
  ['partBase', 'u32'],
  ['partHeadStride', 'u32'],
  ['logitsBase', 'u32'],
  ['logitsHeadStride', 'u32'],
];

const LEFT = 'subgroup_matrix_left<f16, 16, 16>';
const RIGHT = 'subgroup_matrix_right<f16, 16, 16>';
const RESULT = 'subgroup_matrix_result<f32, 16, 16>';

export const scorePartialsF16Kernel = variants(
  (c: ScoreF16Config) => `scorePartials-f16:${c.sg}.${c.sgh}.${c.bn}.${c.dp}.${c.blocks}`,
  (c: ScoreF16Config, key): Kernel<'qIn' | 'kIn' | 'partials' | 'logits'> => ({
    name: 'scorePartials',
    key,
    params: PARAMS,
    bindings: [read('qIn', 'vec4<f16>'), read('kIn', 'vec4<f16>'), write('partials'), write('logits')],
    workgroupSize: 32 * c.sg,
    enable: ['f16', 'subgroups', 'chromium_experimental_subgroup_matrix'],
    directives: ['diagnostic(off, chromium.subgroup_matrix_uniformity)'],
    source: () => scoreF16Source(c),
  }),
);

function scoreF16Source(c: ScoreF16Config): string {
  const nf = c.dp / 16;
  const ns = c.bn / 16;
  const half = c.bn / 2;
  const threads = 32 * c.sg;
  // K staging: slot i of an invocation is vec4 lid + i WG of the block; the next block's slots
  // load while this one computes.
  const slots = Math.ceil((c.bn * c.dp) / 4 / threads);
  const slot = (i: number, f: (e: string) => string) => `    { let e = lid + ${i * threads}u; if (e < BN * DP4) { ${f('e')} } }`;
  const fetch = (k0: string) => unroll(slots, (i) => slot(i, (e) => `kp${i} = kIn[kb + ${k0} * DP4 + ${e}];`));
  const kFrag = (j: number, f: number) => matrixLoad(RIGHT, '&ks', `${(j * 16 * (c.dp + 8) + f * 16) / 4}u`, true, 'KST4');
  return `const SG: u32 = ${c.sg}u;
const BM: u32 = ${16 * c.sgh}u;
const HPW: u32 = ${c.sg / c.sgh}u;
const BN: u32 = ${c.bn}u;
const KPW: u32 = ${c.blocks}u;
const DP: u32 = ${c.dp}u;
const DP4: u32 = ${c.dp / 4}u;
const KST4: u32 = ${(c.dp + 8) / 4}u;
const SST: u32 = ${c.bn + 4}u;
const NEG: f32 = -1.0e30;
// The matrix operands first, each a multiple of 16 bytes (see attend-f16.wgsl.ts).
var<workgroup> sw: array<f32, ${c.sg * 16 * (c.bn + 4)}>;
var<workgroup> ks: array<vec4<f16>, ${(c.bn * (c.dp + 8)) / 4}>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let qw0 = (wg.x % p.nPass) * BM;
  let chunk = wg.x / p.nPass;
  let hw = wg.y * HPW;
  let sg = lid / 32u;
  let kb = (p.kBase + ((p.h0 + hw) / p.kvDiv - p.kv0) * p.kvHeadStride) / 4u;
  let b0 = chunk * KPW;
  let b1 = min(p.nKeyBlocks, b0 + KPW);
${unroll(slots, (i) => `  var kp${i} = vec4<f16>();`)}
${fetch('b0 * BN')}
  // Subgroup g's left fragments, rows qw0 + (g % sgh) 16 .. +16 of head hw + g / sgh, from storage.
  let qb = (p.qBase + (hw + sg / ${c.sgh}u) * p.qHeadStride + (qw0 + (sg % ${c.sgh}u) * 16u) * DP) / 4u;
${unroll(nf, (f) => `  let qf${f} = ${matrixLoad(LEFT, '&qIn', `qb + ${f * 4}u`, false, 'DP4')};`)}
  // Invocations 2r, 2r + 1 fold row r: head hw + r / BM, window query P + qw.
  let r = lid / 2u;
  let hc = lid % 2u;
  let qw = qw0 + r % BM;
  let pb = p.partBase + (wg.y * HPW + r / BM) * p.partHeadStride;
  for (var blk = b0; blk < b1; blk = blk + 1u) {
    let k0 = blk * BN;
    workgroupBarrier();
${unroll(slots, (i) => slot(i, (e) => `ks[(${e} / DP4) * KST4 + ${e} % DP4] = kp${i};`))}
    workgroupBarrier();
    if (blk + 1u < b1) {
${fetch('(blk + 1u) * BN')}
    }
${unroll(ns, (j) => `    {
      var s = ${RESULT}();
${unroll(nf, (f) => `      s = subgroupMatrixMultiplyAccumulate(qf${f}, ${kFrag(j, f)}, s);`)}
      ${matrixStore('&sw', `sg * 16u * SST + ${j * 16}u`, 's', 'SST')};
    }`)}
    workgroupBarrier();
    // Row r's two halves, folded across the lane pair (one subgroup) by shuffles: the max,
    // then the exponential sum; masked logits (past the query, or t >= L) are NEG.
    let c0 = k0 + hc * ${half}u;
    let limit = min(p.P + qw + 1u, p.L);
    var tmax = NEG;
    for (var e = 0u; e < ${half}u; e = e + 1u) {
      tmax = max(tmax, select(NEG, sw[r * SST + hc * ${half}u + e] * p.scale, c0 + e < limit));
    }
    let m = max(tmax, subgroupShuffleXor(tmax, 1u));
    var ls = 0.0;
    for (var e = 0u; e < ${half}u; e = e + 1u) {
      ls = ls + select(0.0, exp(sw[r * SST + hc * ${half}u + e] * p.scale - m), c0 + e < limit);
    }
    let l = ls + subgroupShuffleXor(ls, 1u);
    if (hc == 0u && qw < p.W) {
      let at = pb + (blk * p.W + qw) * 2u;
      partials[at] = m;
      partials[at + 1u] = l;
    }
    // The block's prefix logits (prefix keys are visible to every window query).
    for (var e = lid; e < SG * 16u * BN; e = e + WG) {
      let w = e / BN;
      let row = qw0 + w % BM;
      let t = k0 + e % BN;
      if (row < p.W && t < p.P) { logits[p.logitsBase + (hw + w / BM) * p.logitsHeadStride + row * p.P + t] = sw[w * SST + e % BN] * p.scale; }
    }
  }
}
`;
}
