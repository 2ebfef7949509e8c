/**
 * The register-tiled WGSL building blocks of the two kernels that compute
 * logit tiles S = Q K^T (score and attend), generated for one TileConfig
 * (the same role as assembly/kernels/tile.ts). The kernels' contracts set
 * their workgroup size to threads(c), so THREADS is the generated WG.
 *
 * Workgroup memory `sm` (vec4) holds, during the Q.K^T phase, a Q chunk
 * [BM][DK4 + 1] at QS and a K chunk [BN][DK4 + 1] at KS: DK floats of the
 * head dimension per row, one vec4 of padding per row so that the rows
 * read by neighbouring threads fall in different banks. Thread (ty, tx)
 * accumulates s{i}{j} = logit of row ty + i*NY and key tx + j*NX.
 */
import { bm, bn, type TileConfig } from '../tiles.js';
import { unroll } from './params.js';

/** Constants of the tile shape, shared by every logits kernel. */
export function tileConsts(c: TileConfig): string {
  return `
const NX: u32 = ${c.nx}u;
const NY: u32 = ${c.ny}u;
const TM: u32 = ${c.tm}u;
const TN: u32 = ${c.tn}u;
const BM: u32 = ${bm(c)}u;
const BN: u32 = ${bn(c)}u;
const THREADS: u32 = WG;
const DP: u32 = ${c.dp}u;
const DP4: u32 = ${c.dp / 4}u;
const DK: u32 = ${c.dk}u;
const DK4: u32 = ${c.dk / 4}u;
const DPAD: u32 = ${c.dk / 4 + 1}u;
const QS: u32 = 0u;
const KS: u32 = BM * DPAD;
const NEG: f32 = -1.0e30;
`;
}

/** Element type of the Q/K/V/O bindings: vec4 (16-byte accesses) or f32. */
export function ioType(c: TileConfig): 'vec4<f32>' | 'f32' {
  return c.vec4 ? 'vec4<f32>' : 'f32';
}

/**
 * `fn load4_<src>(at, col)`: the 4 floats src[at .. at+4) of a row (`at` a
 * float offset), zero from column `col + k >= dim` on. With c.vec4 the
 * binding is a vec4 array, `at` and dim are multiples of 4 and this is one
 * 16-byte load. Workgroup memory is then written as whole vec4s only (no
 * dynamically indexed vector components anywhere).
 */
export function load4Fn(src: string, c: TileConfig): string {
  if (c.vec4) {
    return `
fn load4_${src}(at: u32, col: u32) -> vec4<f32> {
  if (col < p.dim) { return ${src}[at >> 2u]; }
  return vec4<f32>(0.0);
}`;
  }
  return `
fn load4_${src}(at: u32, col: u32) -> vec4<f32> {
  var x = vec4<f32>(0.0);
  if (col + 3u < p.dim) { return vec4<f32>(${src}[at], ${src}[at + 1u], ${src}[at + 2u], ${src}[at + 3u]); }
  if (col < p.dim) { x.x = ${src}[at]; }
  if (col + 1u < p.dim) { x.y = ${src}[at + 1u]; }
  if (col + 2u < p.dim) { x.z = ${src}[at + 2u]; }
  return x;
}`;
}

/**
 * Loads head-dimension columns [d0, d0 + DK) of `rows` rows of a [n][dim] f32
 * matrix (element offset `base`, first row `row0`) into sm at `region`, one
 * vec4 per thread and step, zero beyond n rows or dim columns, times `scale`.
 * `rowAt` names a WGSL function from the row to the matrix row it reads (a
 * gathered kernel's selection), else row r is read. `round`: each value rounded to f16
 * first (quantizeToF16, before the scale: precision 'f16' scores f16-rounded Q and K).
 * Needs load4Fn(src) in the module.
 */
export function loadChunk(o: { region: string; rows: string; src: string; base: string; row0: string; n: string; d0: string; scale?: string; rowAt?: string; round?: boolean }): string {
  const scaled = o.scale ? ` * ${o.scale}` : '';
  const at = o.rowAt ? `${o.rowAt}(row)` : 'row';
  const load = `load4_${o.src}(${o.base} + ${at} * p.dim + col, col)`;
  return `
  for (var e = tid; e < ${o.rows} * DK4; e = e + THREADS) {
    let r = e / DK4;
    let c4 = e % DK4;
    let row = ${o.row0} + r;
    let col = ${o.d0} + 4u * c4;
    var x = vec4<f32>(0.0);
    if (row < ${o.n}) { x = ${o.round ? `quantizeToF16(${load})` : load}${scaled}; }
    sm[${o.region} + r * DPAD + c4] = x;
  }`;
}

/** Declares the logit accumulators s{i}{j} = 0. */
export function zeroLogits(c: TileConfig): string {
  return unroll(c.tm, (i) => unroll(c.tn, (j) => `  var s${i}${j} = 0.0;`));
}

/** s{i}{j} += Q[row i] . K[key j] over the DK floats of the chunk in sm (QS, KS). */
export function accumulateChunk(c: TileConfig): string {
  const fmas = (i: number, j: number) =>
    ['x', 'y', 'z', 'w'].map((w) => `s${i}${j} = fma(q${i}.${w}, k${j}.${w}, s${i}${j});`).join(' ');
  return `
  for (var d4 = 0u; d4 < DK4; d4 = d4 + 1u) {
${unroll(c.tm, (i) => `    let q${i} = sm[QS + (ty + ${i}u * NY) * DPAD + d4];`)}
${unroll(c.tn, (j) => `    let k${j} = sm[KS + (tx + ${j}u * NX) * DPAD + d4];`)}
${unroll(c.tm, (i) => unroll(c.tn, (j) => `    ${fmas(i, j)}`))}
  }`;
}

/**
 * Sets masked logits to NEG: key index (k0 + column) > query index
 * (q0 + row) + `shift` (causal), or key >= nKeys.
 */
export function maskLogits(c: TileConfig, o: { q0: string; k0: string; shift: string; nKeys: string }): string {
  return unroll(c.tm, (i) =>
    unroll(c.tn, (j) => {
      const key = `(${o.k0} + tx + ${j}u * NX)`;
      return `    if (${key} > ${o.q0} + ty + ${i}u * NY + ${o.shift} || ${key} >= ${o.nKeys}) { s${i}${j} = NEG; }`;
    }),
  );
}
