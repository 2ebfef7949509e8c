/**
 * score: importance of each prefix key, as the mean attention probability
 * the last W queries (the window) give it:
 *   a[h][t] = (1/W) sum_{i=P}^{L-1} exp(s_it - m_i) / l_i,   t < P = L - W,
 *   s_ij = q_i . k_j / sqrt(D),  m_i = max_{j<=i} s_ij,  l_i = sum_{j<=i} exp(s_ij - m_i).
 *
 * Three kernels, named as in assembly/kernels/score.ts where they compute the same thing:
 *   scorePartials per (key block of BN keys, head): partial (m, l) of every window
 *                 query over the block's visible keys -> partials [head][block][W][2];
 *                 with `store`, also the prefix logits s_it -> logits [head][W][P]
 *   scoreStats    per (window query, head): folds the partials in a fixed order
 *                 (deterministic) -> stats [head][W][2] = (m_i, l_i)
 *   scoreMean     per (prefix key block, head): (1/W) sum over window queries of
 *                 exp(s - m_i) / l_i -> scores [head][P], the logits recomputed
 *                 (a second Q.K^T pass), or read back from `logits` (scoreMeanStored:
 *                 one Q.K^T pass for W P H floats of memory; the stage picks it where
 *                 they fit)
 * With `round` (precision 'f16'), Q and K are rounded to f16 as they load (before the scale):
 * s_ij = f16(q_i) . f16(k_j) / sqrt(D), as scorePartials-f16 (score-f16.wgsl.ts) on the matrix units.
 * Layouts: Q [head][L][dim], K [kvHead][L][dim] with kvHead = head / kvDiv,
 * f32; bindings are windows starting at the chunk's first head (`*Base`).
 */
import { bm, bn, threads, tileKey, type TileConfig } from '../tiles.js';
import { DIVU_WGSL } from './divu.wgsl.js';
import { read, variants, write, type BindingDecl, type Kernel } from './kernel.js';
import { unroll, type ParamFields } from './params.js';
import { accumulateChunk, ioType, load4Fn, loadChunk, maskLogits, tileConsts, zeroLogits } from './tile.wgsl.js';

/** Parameters of the two logits kernels: shape and the Q/K windows (see qkParams in stages/). */
export const QK_PARAMS: ParamFields = [
  ['L', 'u32'],
  ['P', 'u32'],
  ['W', 'u32'],
  ['dim', 'u32'],
  ['qBase', 'u32'],
  ['kBase', 'u32'],
  ['qHeadStride', 'u32'],
  ['kvHeadStride', 'u32'],
  ['h0', 'u32'],
  ['kvDiv', 'u32'],
  ['kv0', 'u32'],
  ['scale', 'f32'],
];

const qkBindings = (c: TileConfig): [BindingDecl<'qIn'>, BindingDecl<'kIn'>] => [read('qIn', ioType(c)), read('kIn', ioType(c))];

/**
 * Head-relative bases and the S = Q_window K_block^T tile for query chunk qc, key block k0;
 * with `round` (precision 'f16'), of Q and K rounded to f16 as they load.
 */
function logitsOfChunk(c: TileConfig, round: boolean): string {
  const nch = c.dp / c.dk;
  return `
${zeroLogits(c)}
${unroll(nch, (ch) => `${loadChunk({ region: 'QS', rows: 'BM', src: 'qIn', base: 'qBase', row0: 'p.P + qw0', n: 'p.L', d0: `${ch * c.dk}u`, scale: 'p.scale', round })}
${loadChunk({ region: 'KS', rows: 'BN', src: 'kIn', base: 'kBase', row0: 'k0', n: 'p.L', d0: `${ch * c.dk}u`, round })}
    workgroupBarrier();
${accumulateChunk(c)}
    workgroupBarrier();`)}`;
}

const HEADER = (c: TileConfig) => `${tileConsts(c)}
var<workgroup> sm: array<vec4<f32>, ${(bm(c) + bn(c)) * (c.dk / 4 + 1)}>;
${DIVU_WGSL}
${load4Fn('qIn', c)}
${load4Fn('kIn', c)}`;

const BASES = `
  let k0 = wg.x * BN;
  let head = p.h0 + wg.y;
  let qBase = p.qBase + wg.y * p.qHeadStride;
  let kBase = p.kBase + (divu(head, p.kvDiv) - p.kv0) * p.kvHeadStride;
  let tx = tid % NX;
  let ty = tid / NX;`;

export interface ScoreConfig {
  tiles: TileConfig;
  /** Logits of f16-rounded Q (before the scale) and K: precision 'f16' (score-f16.wgsl.ts). */
  round: boolean;
}

export interface ScorePartialsConfig extends ScoreConfig {
  /** Also write the prefix logits [head][W][P] for scoreMeanStored. */
  store: boolean;
}

const scoreKey = ({ tiles, round }: ScoreConfig) => `${tileKey(tiles)}${round ? '.f16in' : ''}`;

/** scorePartials: per (key block, head), partial (m, l) of each window query over the block. */
export const scorePartialsKernel = variants(
  (o: ScorePartialsConfig) => `${scoreKey(o)}${o.store ? '.store' : ''}`,
  ({ tiles: c, store, round }: ScorePartialsConfig, key): Kernel<'qIn' | 'kIn' | 'partials' | 'logits'> => ({
  name: 'scorePartials',
  key: `scorePartials:${key}`,
  params: [...QK_PARAMS, ['partBase', 'u32'], ['partHeadStride', 'u32'], ...(store ? ([['logitsBase', 'u32'], ['logitsHeadStride', 'u32']] as ParamFields) : [])],
  bindings: [...qkBindings(c), write('partials'), ...(store ? [write('logits')] : [])],
  workgroupSize: threads(c),
  source: () => {
    const row = (i: number) => `(ty + ${i}u * NY)`;
    // The prefix logits of this tile (rows < W, keys < P), before the causal mask (prefix keys are visible to every window query).
    const keep = store
      ? `    let lb = p.logitsBase + wg.y * p.logitsHeadStride;
${unroll(c.tm, (i) => `    if (qw0 + ${row(i)} < p.W) {
${unroll(c.tn, (j) => `      { let t = k0 + tx + ${j}u * NX; if (t < p.P) { logits[lb + (qw0 + ${row(i)}) * p.P + t] = s${i}${j}; } }`)}
    }`)}`
      : '';
    return `${HEADER(c)}
var<workgroup> redM: array<f32, ${bm(c) * c.nx}>;
var<workgroup> redL: array<f32, ${bm(c) * c.nx}>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) tid: u32) {
${BASES}
  let partBase = p.partBase + wg.y * p.partHeadStride + wg.x * p.W * 2u;
  for (var qw0 = 0u; qw0 < p.W; qw0 = qw0 + BM) {
${logitsOfChunk(c, round)}
${keep}
    // Causal among window keys: key k is visible to query P + qw iff k <= P + qw.
${maskLogits(c, { q0: 'p.P + qw0', k0: 'k0', shift: '0u', nKeys: 'p.L' })}
${unroll(c.tm, (i) => `    redM[${row(i)} * NX + tx] = max(${Array.from({ length: c.tn }, (_, j) => `s${i}${j}`).reduce((a, b) => `max(${a}, ${b})`)}, NEG);`)}
    workgroupBarrier();
${unroll(c.tm, (i) => `    var tmax${i} = NEG;
    for (var x = 0u; x < NX; x = x + 1u) { tmax${i} = max(tmax${i}, redM[${row(i)} * NX + x]); }
    redL[${row(i)} * NX + tx] = ${Array.from({ length: c.tn }, (_, j) => `select(exp(s${i}${j} - tmax${i}), 0.0, s${i}${j} == NEG)`).join(' + ')};`)}
    workgroupBarrier();
    if (tx == 0u) {
${unroll(c.tm, (i) => `      {
        let qw = qw0 + ${row(i)};
        var ls = 0.0;
        for (var x = 0u; x < NX; x = x + 1u) { ls = ls + redL[${row(i)} * NX + x]; }
        if (qw < p.W) {
          partials[partBase + 2u * qw] = tmax${i};
          partials[partBase + 2u * qw + 1u] = ls;
        }
      }`)}
    }
  }
}
`;
  },
  }),
);

/**
 * scoreStats: per (window query, head), (m_i, l_i) folded from the partials. One workgroup per
 * (query, head): thread t folds blocks t, t + WG, ... in ascending order, then the WG partial
 * folds combine pairwise (t with t + s, s = WG/2 .. 1): a fixed order, so deterministic, and
 * nKeyBlocks / WG + log2(WG) dependent steps instead of nKeyBlocks (H200, 16K: 0.12 ms for
 * one thread per query).
 */
export const SCORE_STATS: Kernel<'partials' | 'stats'> = {
  name: 'scoreStats',
  key: 'scoreStats',
  params: [
    ['W', 'u32'],
    ['nKeyBlocks', 'u32'],
    ['partBase', 'u32'],
    ['partHeadStride', 'u32'],
    ['statBase', 'u32'],
    ['statHeadStride', 'u32'],
  ],
  bindings: [read('partials'), write('stats')],
  workgroupSize: 64,
  source: () => `
const NEG: f32 = -1.0e30;
var<workgroup> folds: array<vec2<f32>, WG>;

// (m, l) with (mb, lb) folded in: m' = max(m, mb), l' = l exp(m - m') + lb exp(mb - m');
// a block with no visible key (lb = 0) leaves it as it is.
fn fold(a: vec2<f32>, mb: f32, lb: f32) -> vec2<f32> {
  if (lb <= 0.0) { return a; }
  let mn = max(a.x, mb);
  return vec2<f32>(mn, a.y * exp(a.x - mn) + lb * exp(mb - mn));
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) t: u32) {
  let i = wid.x;
  let base = p.partBase + wid.y * p.partHeadStride + 2u * i;
  var a = vec2<f32>(NEG, 0.0);
  for (var b = t; b < p.nKeyBlocks; b = b + WG) {
    a = fold(a, partials[base + b * p.W * 2u], partials[base + b * p.W * 2u + 1u]);
  }
  folds[t] = a;
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s = s >> 1u) {
    if (t < s) {
      let c = folds[t + s];
      folds[t] = fold(folds[t], c.x, c.y);
    }
    workgroupBarrier();
  }
  if (t == 0u) {
    let o = p.statBase + wid.y * p.statHeadStride + 2u * i;
    stats[o] = folds[0].x;
    stats[o + 1u] = folds[0].y;
  }
}
`,
};

/** scoreMean: per (prefix key block, head), the window's mean probability of each key. */
export const scoreMeanKernel = variants(scoreKey, ({ tiles: c, round }: ScoreConfig, key): Kernel<'qIn' | 'kIn' | 'stats' | 'scores'> => ({
  name: 'scoreMean',
  key: `scoreMean:${key}`,
  params: [...QK_PARAMS, ['statBase', 'u32'], ['statHeadStride', 'u32'], ['outBase', 'u32'], ['outHeadStride', 'u32'], ['invW', 'f32']],
  bindings: [...qkBindings(c), read('stats'), write('scores')],
  workgroupSize: threads(c),
  source: () => {
    const row = (i: number) => `(ty + ${i}u * NY)`;
    return `${HEADER(c)}
var<workgroup> redC: array<f32, ${bn(c) * c.ny}>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) tid: u32) {
${BASES}
  let statBase = p.statBase + wg.y * p.statHeadStride;
${unroll(c.tn, (j) => `  var col${j} = 0.0;`)}
  for (var qw0 = 0u; qw0 < p.W; qw0 = qw0 + BM) {
${logitsOfChunk(c, round)}
${unroll(c.tm, (i) => `    {
      let qw = qw0 + ${row(i)};
      if (qw < p.W) {
        let m = stats[statBase + 2u * qw];
        let inv = 1.0 / stats[statBase + 2u * qw + 1u];
${unroll(c.tn, (j) => `        col${j} = col${j} + exp(s${i}${j} - m) * inv;`)}
      }
    }`)}
  }
${unroll(c.tn, (j) => `  redC[(tx + ${j}u * NX) * NY + ty] = col${j};`)}
  workgroupBarrier();
  if (tid < BN) {
    var a = 0.0;
    for (var y = 0u; y < NY; y = y + 1u) { a = a + redC[tid * NY + y]; }
    let t = k0 + tid;
    if (t < p.P) { scores[p.outBase + wg.y * p.outHeadStride + t] = a * p.invW; }
  }
}
`;
  },
}));

/** Window rows scoreMeanStored loads at once. */
const MEAN_ROWS = 8;

/**
 * scoreMeanStored: scoreMean on the logits scorePartials stored, one thread per prefix key t
 * of a block of 256, per head: scores[t] = (1/W) sum_i exp(logits[i][t] - m_i) / l_i
 * (logits [head][W][P], stats [head][W][2], scores [head][P]).
 */
export const SCORE_MEAN_STORED: Kernel<'logits' | 'stats' | 'scores'> = {
  name: 'scoreMeanStored',
  key: 'scoreMeanStored',
  params: [
    ['P', 'u32'],
    ['W', 'u32'],
    ['logitsBase', 'u32'],
    ['logitsHeadStride', 'u32'],
    ['statBase', 'u32'],
    ['statHeadStride', 'u32'],
    ['outBase', 'u32'],
    ['outHeadStride', 'u32'],
    ['invW', 'f32'],
  ],
  bindings: [read('logits'), read('stats'), write('scores')],
  workgroupSize: 256,
  source: () => `
@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(workgroup_id) wg: vec3<u32>) {
  let t = gid.x;
  if (t >= p.P) { return; }
  let lb = p.logitsBase + wg.y * p.logitsHeadStride + t;
  let sb = p.statBase + wg.y * p.statHeadStride;
  // Rows MEAN_ROWS at a time (their loads in flight together), summed in row order.
  var a = 0.0;
  var i = 0u;
  for (; i + ${MEAN_ROWS}u <= p.W; i = i + ${MEAN_ROWS}u) {
${unroll(MEAN_ROWS, (j) => `    let e${j} = exp(logits[lb + (i + ${j}u) * p.P] - stats[sb + 2u * (i + ${j}u)]) * (1.0 / stats[sb + 2u * (i + ${j}u) + 1u]);`)}
${unroll(MEAN_ROWS, (j) => `    a = a + e${j};`)}
  }
  for (; i < p.W; i = i + 1u) {
    a = a + exp(logits[lb + i * p.P] - stats[sb + 2u * i]) * (1.0 / stats[sb + 2u * i + 1u]);
  }
  scores[p.outBase + wg.y * p.outHeadStride + t] = a * p.invW;
}
`,
};
