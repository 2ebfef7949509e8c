/**
 * blockSelect: XAttention's mask rule as the authors' code behaves (../shared/golden-xattn/README.md),
 * per head and query block i < nb = ceil(n / B) over the masses M [H][nb][nb] f32 (n: p.n, or
 * the state's L' when gated):
 *   the diagonal i and block 0 are selected; R = T * sum_j M[i][j];
 *   the causal blocks j < i by descending mass o_0, o_1, ... (ties: lower index first): o_0 always,
 *   o_k (k >= 1) iff M[i][i] + M[o_0] + ... + M[o_{k-2}] < R, stopping at the first that is not.
 * The reference compares in float64 (as the authors' code); here every mass of the row is the
 * exact 128-bit fixed-point integer X = floor(M 2^s) (u128.wgsl.ts; s from the row's largest mass
 * so that the row sum fits 2^126), so the sums are exact (as float64 sums of float32 masses within
 * 2^29 of each other are), and with t = floor(T 2^63) (exact for T >= 2^-10) R = X t / 2^63 is
 * exact too; it is rounded to 53 significant bits, ties to even, as float64 rounds T * total, so
 * "sum < R" decides as the reference does even where the sum equals T total exactly.
 * One workgroup per (query block, head): a bitonic sort of (mass bits, index) pairs (non-negative
 * floats order as their bits) in workgroup memory, the exact row sum by a tree reduction, then
 * one invocation walks the sorted order.
 *
 * BLOCK_LISTS: the per-(head, query block) key-block lists of a mask, in triangle-packed rows:
 *   lists[h nb(nb+1)/2 + i(i+1)/2 + k], k < counts[h nb + i]: the selected j <= i, ascending
 *   (so the diagonal is last).
 *
 * Layouts: masses [H][nb][nb] f32; mask [H][nb][nbp] u8 packed four to a u32 (byte j of row i at
 * bits 8 (j % 4) of word j / 4), rows padded to nbp = nb rounded up to 4 so that every workgroup
 * writes whole words (every byte written: no cleared buffer needed); counts [H][nb] u32;
 * lists as above, u32.
 */
import { gatePrologue } from './attend.wgsl.js';
import { read, variants, write, type Kernel } from './kernel.js';
import { U128_WGSL } from './u128.wgsl.js';

/** The shared gate prologue of the block kernels (n from the params or the state) and nb. */
export function blockGate(B: number): string {
  return `${gatePrologue()}
  let nb = (n + ${B}u - 1u) / ${B}u;
  let nbp = (nb + 3u) & ~3u;`;
}

/** Workgroup memory bytes of blockSelect sorting `size` entries. */
export function blockSelectSharedBytes(size: number): number {
  return 8 * size + size + 16 * 256 + 16;
}

export interface BlockSelectConfig {
  B: number;
  /** Sort capacity, a power of two >= nb. */
  size: number;
}

export const blockSelectKernel = variants(
  (c: BlockSelectConfig) => `blockSelect:${c.B}.${c.size}`,
  (c: BlockSelectConfig, key): Kernel<'masses' | 'mask' | 'state'> => ({
    name: 'blockSelect',
    key,
    params: [
      ['n', 'u32'],
      ['gate', 'u32'],
      ['tLo', 'u32'],
      ['tHi', 'u32'],
    ],
    bindings: [read('masses'), write('mask', 'u32'), read('state', 'u32')],
    workgroupSize: 256,
    source: () => blockSelectSource(c),
  }),
);

function blockSelectSource(c: BlockSelectConfig): string {
  const lg = Math.log2(c.size);
  return `const SIZE: u32 = ${c.size}u;
var<workgroup> keys: array<u32, SIZE>;
var<workgroup> order: array<u32, SIZE>;
var<workgroup> words: array<atomic<u32>, ${c.size / 4}>;
var<workgroup> acc: array<vec4<u32>, WG>;
var<workgroup> wmax: atomic<u32>;
var<workgroup> taken: u32;
${U128_WGSL}

/** Whether entry y goes before entry x: larger mass, or equal mass and lower index. */
fn before(y: u32, x: u32) -> bool {
  return keys[y] > keys[x] || (keys[y] == keys[x] && order[y] < order[x]);
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) tid: u32) {
${blockGate(c.B)}
  let i = wg.x;
  if (i >= nb) { return; }
  let row = (wg.y * nb + i) * nb;
  if (tid == 0u) { atomicStore(&wmax, 0u); }
  workgroupBarrier();
  var mx = 0u;
  for (var j = tid; j < nb; j = j + WG) { mx = max(mx, bitcast<u32>(masses[row + j]) & 0x7fffffffu); }
  atomicMax(&wmax, mx);
  // The causal blocks j < i to sort, padded with entries that sort last.
  var size = 1u;
  while (size < i) { size = size * 2u; }
  for (var x = tid; x < size; x = x + WG) {
    keys[x] = 0u;
    order[x] = 0xffffffffu;
    if (x < i) {
      keys[x] = bitcast<u32>(masses[row + x]) & 0x7fffffffu;
      order[x] = x;
    }
  }
  for (var w = tid; w < SIZE / 4u; w = w + WG) { atomicStore(&words[w], 0u); }
  workgroupBarrier();
  let e = i32(atomicLoad(&wmax) >> 23u);
  let s = select(${252 - lg} - e, 0, atomicLoad(&wmax) == 0u);
  var part = vec4<u32>(0u);
  for (var j = tid; j < nb; j = j + WG) { part = add128(part, fix128(masses[row + j], s)); }
  acc[tid] = part;
  for (var k = 2u; k <= size; k = k * 2u) {
    for (var h = k / 2u; h > 0u; h = h / 2u) {
      workgroupBarrier();
      for (var x = tid; x < size; x = x + WG) {
        let y = x ^ h;
        if (y > x && before(select(x, y, (x & k) == 0u), select(y, x, (x & k) == 0u))) {
          let kx = keys[x];
          let ox = order[x];
          keys[x] = keys[y];
          order[x] = order[y];
          keys[y] = kx;
          order[y] = ox;
        }
      }
    }
  }
  for (var h = WG / 2u; h > 0u; h = h / 2u) {
    workgroupBarrier();
    if (tid < h) { acc[tid] = add128(acc[tid], acc[tid + h]); }
  }
  workgroupBarrier();
  if (tid == 0u) {
    let total2 = add128(acc[0], acc[0]);
    let exact = mulShr64(total2, p.tLo, p.tHi);
    let rest = mulLimbs(total2, vec4<u32>(p.tLo, p.tHi, 0u, 0u), 4u, 0u);
    let inexact = rest.x != 0u || rest.y != 0u;
    // R = T total as float64 rounds it (53 significant bits); at 2^53 units or below (no scale puts
    // a row there but an all-zero one) the exact product, its fraction kept in 'fraction'.
    let rounded = topBit128(exact) >= 53;
    var limit = exact;
    if (rounded) { limit = roundSig53(exact, inexact); }
    let fraction = inexact && !rounded;
    var sum = fix128(masses[row + i], s);
    var k = 0u;
    for (; k < i; k = k + 1u) {
      if (k >= 1u) {
        let below = !ge128(sum, limit) || (all(sum == limit) && fraction);
        if (!below) { break; }
        sum = add128(sum, fix128(masses[row + order[k - 1u]], s));
      }
    }
    taken = k;
    atomicOr(&words[i / 4u], 1u << (8u * (i % 4u)));
    atomicOr(&words[0], 1u);
  }
  workgroupBarrier();
  let t = taken;
  for (var x = tid; x < t; x = x + WG) { atomicOr(&words[order[x] / 4u], 1u << (8u * (order[x] % 4u))); }
  workgroupBarrier();
  let out = (wg.y * nb + i) * (nbp / 4u);
  for (var w = tid; w < nbp / 4u; w = w + WG) { mask[out + w] = atomicLoad(&words[w]); }
}
`;
}

export const blockListsKernel = variants(
  (B: number) => `blockLists:${B}`,
  (B: number, key): Kernel<'mask' | 'counts' | 'lists' | 'state'> => ({
    name: 'blockLists',
    key,
    params: [
      ['n', 'u32'],
      ['gate', 'u32'],
    ],
    bindings: [read('mask', 'u32'), write('counts', 'u32'), write('lists', 'u32'), read('state', 'u32')],
    workgroupSize: 64,
    source: () => `
@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
${blockGate(B)}
  let i = gid.x;
  let h = gid.y;
  if (i >= nb) { return; }
  let words = (h * nb + i) * (nbp / 4u);
  let at = h * (nb * (nb + 1u) / 2u) + i * (i + 1u) / 2u;
  var count = 0u;
  for (var j = 0u; j <= i; j = j + 1u) {
    if (((mask[words + j / 4u] >> (8u * (j % 4u))) & 0xffu) != 0u) {
      lists[at + count] = j;
      count = count + 1u;
    }
  }
  counts[h * nb + i] = count;
}
`,
  }),
);
