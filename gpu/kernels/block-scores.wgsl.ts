/**
 * blockScores: XAttention's antidiagonal block masses (../shared/golden-xattn/README.md), per
 * query head over n rows (p.n, or the state's L' when gated), block size B, stride S,
 * nb = ceil(n / B), PER = B / S strided rows per block, Rn = ceil(n / S) real strided rows:
 *   z[r][c] = qs_r . ks_c / (sqrt(D) S) for c <= r and c < Rn    (a GEMM with inner dimension S D)
 *   p[r][c] = exp(z[r][c] - m_r) / l_r                            (row softmax; rows r >= Rn: 0)
 *   M[i][j] = sum_{r in block i} sum_{c in block j} p[r][c]       (0 above the diagonal)
 * where qs_r = q[rS+S-1], q[rS+S-2], ..., q[rS] (reversed) and ks_c = k[cS], ..., k[cS+S-1],
 * concatenated (zero rows past n): qs_r . ks_c is the antidiagonal sum of an S x S tile of Q K^T.
 * The strided rows are read in place: strided key c is the contiguous K rows cS .. cS+S-1.
 *
 * Parameters: those of attend (ATTEND_LAYOUT_PARAMS; dim, vBase, oBase, oHeadStride unused) and scale.
 * Layouts: Q [head][n][D], K [kvHead][n][D] with kvHead = head / kvDiv (GQA in place, kvDiv 1
 * on per-head compact copies), f32, windows starting at the chunk's first head (`*Base`);
 * masses [H][nb][nb] f32 (whole buffer, global head p.h0 + wg.y), every entry written.
 *
 * One workgroup per (tile of T = 16 TT strided rows, head), 16 x 16 threads; thread (ty, tx)
 * owns the TT x TT logits of rows ty TT + a and columns tx TT + b of each T x T tile. TT divides
 * PER and PER divides T, so a thread's logits lie in one (query block, key block) and a tile
 * holds whole blocks. Two sweeps over the key tiles up to the diagonal, the logits recomputed:
 * the first keeps each thread's online (max, sum) per row, merged across the 16 column threads
 * in order; the second sums each thread's probabilities, then each block of the tile sums its
 * threads' partials in a fixed order (deterministic) and is written once. Q and K chunks of DK
 * inner floats go through workgroup memory `sm` ([T][DK/4 + 1] vec4 each).
 */
import { DIVU_WGSL } from './divu.wgsl.js';
import { ATTEND_LAYOUT_PARAMS, gatePrologue } from './attend.wgsl.js';
import { read, variants, write, type Kernel } from './kernel.js';
import { unroll } from './params.js';

export interface BlockScoresConfig {
  /** Head dimension, stride and block size (compile-time: every division is by a constant). */
  D: number;
  S: number;
  B: number;
  /** Logits per thread and side (divides B / S; 16 TT is a multiple of B / S). */
  tt: number;
  /** Inner floats per chunk in workgroup memory (multiple of 4). */
  dk: number;
  /** Q and K bound as vec4 arrays (D a multiple of 4). */
  vec4: boolean;
}

/** The logits per thread and side for PER = B / S strided rows per block: TT | PER | 16 TT (4 and 2 preferred). */
export function blockScoresTt(per: number): number {
  for (const t of [4, 2, 1]) if (per % t === 0 && (16 * t) % per === 0) return t;
  for (let t = 3; t <= per; t++) if (per % t === 0 && (16 * t) % per === 0) return t;
  return per;
}

/** Workgroup memory bytes of a config. */
export function blockScoresSharedBytes(c: Pick<BlockScoresConfig, 'tt' | 'dk'>): number {
  const T = 16 * c.tt;
  return 2 * (T * (c.dk / 4 + 1) + 16) * 16 + 256 * 4 + 2 * T * 4;
}

const key = (c: BlockScoresConfig) => `blockScores:${c.D}.${c.S}.${c.B}.${c.tt}.${c.dk}${c.vec4 ? '.v4' : ''}`;

export const blockScoresKernel = variants(key, (c: BlockScoresConfig, k): Kernel<'qIn' | 'kIn' | 'masses' | 'state'> => ({
  name: 'blockScores',
  key: k,
  params: [...ATTEND_LAYOUT_PARAMS, ['scale', 'f32']],
  bindings: [read('qIn', c.vec4 ? 'vec4<f32>' : 'f32'), read('kIn', c.vec4 ? 'vec4<f32>' : 'f32'), write('masses'), read('state', 'u32')],
  workgroupSize: 256,
  source: () => blockScoresSource(c),
}));

/** The 4 inner floats e .. e+3 of strided query r / strided key c (zero past n rows or S D floats). */
function loaders(c: BlockScoresConfig): string {
  if (c.vec4) {
    return `
fn loadQ4(base: u32, r: u32, e: u32, n: u32) -> vec4<f32> {
  let u = e / D;
  let row = r * S + S - 1u - u;
  if (e >= SD || row >= n) { return vec4<f32>(0.0); }
  return qIn[(base + row * D + e % D) >> 2u];
}
fn loadK4(base: u32, col: u32, e: u32, n: u32) -> vec4<f32> {
  if (e >= SD || col * SD + e >= n * D) { return vec4<f32>(0.0); }
  return kIn[(base + col * SD + e) >> 2u];
}`;
  }
  const q = unroll(4, (k) => `  { let x = e + ${k}u; let row = r * S + S - 1u - x / D; if (x < SD && row < n) { v.${'xyzw'[k]} = qIn[base + row * D + x % D]; } }`);
  const kk = unroll(4, (k) => `  { let x = e + ${k}u; if (x < SD && col * SD + x < n * D) { v.${'xyzw'[k]} = kIn[base + col * SD + x]; } }`);
  return `
fn loadQ4(base: u32, r: u32, e: u32, n: u32) -> vec4<f32> {
  var v = vec4<f32>(0.0);
${q}
  return v;
}
fn loadK4(base: u32, col: u32, e: u32, n: u32) -> vec4<f32> {
  var v = vec4<f32>(0.0);
${kk}
  return v;
}`;
}

function blockScoresSource(c: BlockScoresConfig): string {
  const TT = c.tt;
  const cells = (f: (a: number, b: number) => string) => unroll(TT, (a) => unroll(TT, (b) => f(a, b)));
  // The T x T logits of row tile r0, key tile c0 into s{a}{b}, masked to NEG outside c <= r < Rn.
  const logits = `
${cells((a, b) => `    var s${a}${b} = 0.0;`)}
    for (var e0 = 0u; e0 < SD; e0 = e0 + DK) {
      for (var x = tid; x < T * DK4; x = x + WG) {
        let row = x / DK4;
        let e = e0 + 4u * (x % DK4);
        sm[row * DPAD + row / TT + x % DK4] = loadQ4(qBase, r0 + row, e, n);
        sm[KS + row * DPAD + row / TT + x % DK4] = loadK4(kBase, c0 + row, e, n);
      }
      workgroupBarrier();
      for (var d4 = 0u; d4 < DK4; d4 = d4 + 1u) {
${unroll(TT, (a) => `        let q${a} = sm[(ty * TT + ${a}u) * DPAD + ty + d4];`)}
${unroll(TT, (b) => `        let k${b} = sm[KS + (tx * TT + ${b}u) * DPAD + tx + d4];`)}
${cells((a, b) => `        s${a}${b} = s${a}${b} + dot(q${a}, k${b});`)}
      }
      workgroupBarrier();
    }
${cells((a, b) => `    if (c0 + tx * TT + ${b}u > r0 + ty * TT + ${a}u || c0 + tx * TT + ${b}u >= Rn || r0 + ty * TT + ${a}u >= Rn) { s${a}${b} = NEG; } else { s${a}${b} = s${a}${b} * p.scale; }`)}`;
  return `const D: u32 = ${c.D}u;
const S: u32 = ${c.S}u;
const SD: u32 = ${c.S * c.D}u;
const B: u32 = ${c.B}u;
const PER: u32 = ${c.B / c.S}u;
const TT: u32 = ${TT}u;
const T: u32 = ${16 * TT}u;
const NX: u32 = 16u;
const DK: u32 = ${c.dk}u;
const DK4: u32 = ${c.dk / 4}u;
const DPAD: u32 = ${c.dk / 4 + 1}u;
// Rows padded by one vec4 per DPAD, and one more per TT rows (row / TT): the rows of successive
// threads (TT DPAD + 1 vec4s apart, odd) fall in different 16-byte bank groups.
const KS: u32 = T * DPAD + 16u;
const NBS: u32 = T / PER;
const NEG: f32 = -1.0e30;
var<workgroup> sm: array<vec4<f32>, ${2 * (16 * TT * (c.dk / 4 + 1) + 16)}>;
var<workgroup> red: array<f32, 256>;
var<workgroup> rowM: array<f32, ${16 * TT}>;
var<workgroup> rowL: array<f32, ${16 * TT}>;
${DIVU_WGSL}
${loaders(c)}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) tid: u32) {
${gatePrologue()}
  let Rn = (n + S - 1u) / S;
  let nb = (n + B - 1u) / B;
  let nTiles = (Rn + T - 1u) / T;
  if (wg.x >= nTiles) { return; }
  let rt = nTiles - 1u - wg.x;
  let r0 = rt * T;
  let head = p.h0 + wg.y;
  let qBase = p.qBase + wg.y * p.qHeadStride;
  let kBase = p.kBase + (divu(head, p.kvDiv) - p.kv0) * p.kvHeadStride;
  let tx = tid % NX;
  let ty = tid / NX;

  // Sweep 1: each thread's online (max, sum) of its rows over its columns of every key tile.
${unroll(TT, (a) => `  var m${a} = NEG;\n  var l${a} = 0.0;`)}
  for (var kt = 0u; kt <= rt; kt = kt + 1u) {
    let c0 = kt * T;
${logits}
${unroll(TT, (a) => `    {
      let mNew = max(m${a}, ${Array.from({ length: TT }, (_, b) => `s${a}${b}`).reduce((x, y) => `max(${x}, ${y})`)});
      if (mNew > NEG) {
        l${a} = l${a} * exp(m${a} - mNew)${Array.from({ length: TT }, (_, b) => ` + select(0.0, exp(s${a}${b} - mNew), s${a}${b} > NEG)`).join('')};
        m${a} = mNew;
      }
    }`)}
  }
  // Row (max, sum) across the 16 column threads, merged in column order.
  for (var x = 0u; x < NX; x = x + 1u) {
    if (tx == x) {
${unroll(TT, (a) => `      {
        let row = ty * TT + ${a}u;
        if (x == 0u) { rowM[row] = m${a}; rowL[row] = l${a}; } else if (m${a} > NEG) {
          let mNew = max(rowM[row], m${a});
          rowL[row] = rowL[row] * exp(rowM[row] - mNew) + l${a} * exp(m${a} - mNew);
          rowM[row] = mNew;
        }
      }`)}
    }
    workgroupBarrier();
  }
${unroll(TT, (a) => `  let mr${a} = rowM[ty * TT + ${a}u];\n  let il${a} = 1.0 / rowL[ty * TT + ${a}u];`)}

  // Sweep 2: block sums of the probabilities, one partial per thread, then per block of the tile.
  for (var kt = 0u; kt <= rt; kt = kt + 1u) {
    let c0 = kt * T;
${logits}
    var part = 0.0;
${cells((a, b) => `    if (s${a}${b} > NEG) { part = part + exp(s${a}${b} - mr${a}) * il${a}; }`)}
    red[tid] = part;
    workgroupBarrier();
    for (var bin = tid; bin < NBS * NBS; bin = bin + WG) {
      let i = r0 / PER + bin / NBS;
      let j = c0 / PER + bin % NBS;
      if (i < nb && j <= i) {
        var sum = 0.0;
        let y0 = (bin / NBS) * (PER / TT);
        let x0 = (bin % NBS) * (PER / TT);
        for (var y = y0; y < y0 + PER / TT; y = y + 1u) {
          for (var x = x0; x < x0 + PER / TT; x = x + 1u) { sum = sum + red[y * NX + x]; }
        }
        masses[(head * nb + i) * nb + j] = sum;
      }
    }
  }
  // Zeros above the diagonal of the tile's query blocks.
  for (var x = tid; x < NBS * nb; x = x + WG) {
    let i = r0 / PER + divu(x, nb);
    let j = x - divu(x, nb) * nb;
    if (i < nb && j > i) { masses[(head * nb + i) * nb + j] = 0.0; }
  }
}
`;
}
