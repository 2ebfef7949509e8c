/**
 * select: per head, the `keep` prefix positions with the largest pooled
 * score (ties to the lower position), then the window P..L-1, ascending.
 *
 * Math. Non-negative float32 values order like their bits as u32, so the
 * keep-th largest value v_h is found by a radix select on the bits, one byte
 * per pass from the top (selectHist + selectChoose): keep the bucket where
 * the count from the top first reaches `need`, and subtract the buckets
 * above it. Afterwards G = #{x > v_h} and need = keep - G ties (x == v_h)
 * are taken, lowest positions first. Output slots follow from a prefix
 * count: slot(t) = #{u < t : x_u > v} + min(#{u < t : x_u == v}, need)
 * (selectCount per block, selectScan over blocks, selectWrite).
 *
 * Layouts: pooled [H][P] f32; selHist [H][256] u32; selState [H][4] u32 =
 * (prefix v, need, _, _); blocks [H][nBlocks][2] u32 (greater, ties);
 * indices [H][L] u32 (row h holds L' = keep + W entries, stride L);
 * inverse [H][L] u32: compact row + 1 of each kept position, 0 if pruned
 * (used by scatter). keep comes from the state buffer.
 */
import { paramsStruct, type ParamFields } from './params.js';
import { STATE } from './state.js';

/** Positions per block of the compaction (256 threads x 4). */
export const SELECT_BLOCK = 1024;
const ITEMS = 16;

export const SELECT_INIT_PARAMS: ParamFields = [['H', 'u32']];
export const SELECT_HIST_PARAMS: ParamFields = [
  ['P', 'u32'],
  ['shift', 'u32'],
];
export const SELECT_CHOOSE_PARAMS: ParamFields = [['shift', 'u32']];
export const SELECT_COUNT_PARAMS: ParamFields = [
  ['P', 'u32'],
  ['nBlocks', 'u32'],
];
export const SELECT_SCAN_PARAMS: ParamFields = [['nBlocks', 'u32']];
export const SELECT_WRITE_PARAMS: ParamFields = [
  ['P', 'u32'],
  ['L', 'u32'],
  ['nBlocks', 'u32'],
];

const GATE = `  if (state[${STATE.mode}] != ${STATE.modeSparse}u) { return; }`;

const KEY = `fn key(x: f32) -> u32 { return bitcast<u32>(x) & 0x7fffffffu; }`;

/** selHist = 0, selState[h] = (0, keep, 0, 0). */
export function selectInitWgsl(): string {
  return `${paramsStruct(SELECT_INIT_PARAMS)}
@group(0) @binding(1) var<storage, read> state: array<u32>;
@group(0) @binding(2) var<storage, read_write> selHist: array<u32>;
@group(0) @binding(3) var<storage, read_write> selState: array<u32>;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) tid: u32) {
${GATE}
  let h = wg.x;
  if (h >= p.H) { return; }
  selHist[h * 256u + tid] = 0u;
  if (tid < 4u) { selState[h * 4u + tid] = 0u; }
  if (tid == 1u) { selState[h * 4u + 1u] = state[${STATE.keep}]; }
}
`;
}

/** Histogram of the current byte over the positions whose higher bytes equal the prefix. */
export function selectHistWgsl(): string {
  return `${paramsStruct(SELECT_HIST_PARAMS)}
@group(0) @binding(1) var<storage, read> state: array<u32>;
@group(0) @binding(2) var<storage, read> pooled: array<f32>;
@group(0) @binding(3) var<storage, read> selState: array<u32>;
@group(0) @binding(4) var<storage, read_write> selHist: array<atomic<u32>>;
var<workgroup> local: array<atomic<u32>, 256>;
${KEY}

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) tid: u32) {
${GATE}
  let h = wg.y;
  let prefix = selState[h * 4u];
  let t0 = (wg.x * 256u + tid) * ${ITEMS}u;
  var bucket = 0u;
  var n = 0u;
  for (var t = t0; t < min(t0 + ${ITEMS}u, p.P); t = t + 1u) {
    let k = key(pooled[h * p.P + t]);
    if (p.shift < 24u && (k >> (p.shift + 8u)) != (prefix >> (p.shift + 8u))) { continue; }
    let b = (k >> p.shift) & 255u;
    if (b != bucket) {
      if (n != 0u) { atomicAdd(&local[bucket], n); }
      bucket = b;
      n = 0u;
    }
    n = n + 1u;
  }
  if (n != 0u) { atomicAdd(&local[bucket], n); }
  workgroupBarrier();
  let c = atomicLoad(&local[tid]);
  if (c != 0u) { atomicAdd(&selHist[h * 256u + tid], c); }
}
`;
}

/** Per head (workgroup = head, thread = bucket): the bucket where the count from the top reaches need. */
export function selectChooseWgsl(): string {
  return `${paramsStruct(SELECT_CHOOSE_PARAMS)}
@group(0) @binding(1) var<storage, read> state: array<u32>;
@group(0) @binding(2) var<storage, read_write> selHist: array<u32>;
@group(0) @binding(3) var<storage, read_write> selState: array<u32>;
var<workgroup> above: array<u32, 256>;
var<workgroup> need: u32;
var<workgroup> chosen: atomic<u32>;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) b: u32) {
${GATE}
  let h = wg.x;
  let cnt = selHist[h * 256u + b];
  selHist[h * 256u + b] = 0u;
  // Inclusive suffix sums: above[b] = count of buckets >= b.
  above[b] = cnt;
  for (var off = 1u; off < 256u; off = off * 2u) {
    workgroupBarrier();
    var c = 0u;
    if (b + off < 256u) { c = above[b + off]; }
    workgroupBarrier();
    above[b] = above[b] + c;
  }
  if (b == 0u) { need = selState[h * 4u + 1u]; }
  workgroupBarrier();
  if (above[b] >= need) { atomicMax(&chosen, b); }
  workgroupBarrier();
  if (b == 0u) {
    let bs = atomicLoad(&chosen);
    var strictlyAbove = 0u;
    if (bs < 255u) { strictlyAbove = above[bs + 1u]; }
    selState[h * 4u] = selState[h * 4u] | (bs << p.shift);
    selState[h * 4u + 1u] = need - strictlyAbove;
  }
}
`;
}

/** Per block of SELECT_BLOCK prefix positions: (#greater, #ties) with respect to v_h. */
export function selectCountWgsl(): string {
  return `${paramsStruct(SELECT_COUNT_PARAMS)}
@group(0) @binding(1) var<storage, read> state: array<u32>;
@group(0) @binding(2) var<storage, read> pooled: array<f32>;
@group(0) @binding(3) var<storage, read> selState: array<u32>;
@group(0) @binding(4) var<storage, read_write> blocks: array<u32>;
var<workgroup> greater: atomic<u32>;
var<workgroup> ties: atomic<u32>;
${KEY}

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) tid: u32) {
${GATE}
  let h = wg.y;
  let v = selState[h * 4u];
  var g = 0u;
  var e = 0u;
  for (var i = 0u; i < 4u; i = i + 1u) {
    let t = wg.x * ${SELECT_BLOCK}u + tid * 4u + i;
    if (t < p.P) {
      let k = key(pooled[h * p.P + t]);
      g = g + u32(k > v);
      e = e + u32(k == v);
    }
  }
  atomicAdd(&greater, g);
  atomicAdd(&ties, e);
  workgroupBarrier();
  if (tid == 0u) {
    let o = (h * p.nBlocks + wg.x) * 2u;
    blocks[o] = atomicLoad(&greater);
    blocks[o + 1u] = atomicLoad(&ties);
  }
}
`;
}

/** Per head: exclusive prefix sums of the block counts, in place (one thread, blocks in order). */
export function selectScanWgsl(): string {
  return `${paramsStruct(SELECT_SCAN_PARAMS)}
@group(0) @binding(1) var<storage, read> state: array<u32>;
@group(0) @binding(2) var<storage, read_write> blocks: array<u32>;

@compute @workgroup_size(1)
fn main(@builtin(workgroup_id) wg: vec3<u32>) {
${GATE}
  var g = 0u;
  var e = 0u;
  for (var i = 0u; i < p.nBlocks; i = i + 1u) {
    let o = (wg.x * p.nBlocks + i) * 2u;
    let bg = blocks[o];
    let be = blocks[o + 1u];
    blocks[o] = g;
    blocks[o + 1u] = e;
    g = g + bg;
    e = e + be;
  }
}
`;
}

/** Writes indices and inverse for one block of positions in [0, L). */
export function selectWriteWgsl(): string {
  return `${paramsStruct(SELECT_WRITE_PARAMS)}
@group(0) @binding(1) var<storage, read> state: array<u32>;
@group(0) @binding(2) var<storage, read> pooled: array<f32>;
@group(0) @binding(3) var<storage, read> selState: array<u32>;
@group(0) @binding(4) var<storage, read> blocks: array<u32>;
@group(0) @binding(5) var<storage, read_write> indices: array<u32>;
@group(0) @binding(6) var<storage, read_write> inverse: array<u32>;
var<workgroup> scanG: array<u32, 256>;
var<workgroup> scanE: array<u32, 256>;
${KEY}

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) tid: u32) {
${GATE}
  let h = wg.y;
  let keep = state[${STATE.keep}];
  let v = selState[h * 4u];
  let need = selState[h * 4u + 1u];
  var gf: array<bool, 4>;
  var ef: array<bool, 4>;
  var g = 0u;
  var e = 0u;
  for (var i = 0u; i < 4u; i = i + 1u) {
    let t = wg.x * ${SELECT_BLOCK}u + tid * 4u + i;
    gf[i] = false;
    ef[i] = false;
    if (t < p.P) {
      let k = key(pooled[h * p.P + t]);
      gf[i] = k > v;
      ef[i] = k == v;
    }
    g = g + u32(gf[i]);
    e = e + u32(ef[i]);
  }
  // Exclusive scan over the block's threads (Hillis-Steele on inclusive sums).
  scanG[tid] = g;
  scanE[tid] = e;
  for (var off = 1u; off < 256u; off = off * 2u) {
    workgroupBarrier();
    var a = 0u;
    var c = 0u;
    if (tid >= off) { a = scanG[tid - off]; c = scanE[tid - off]; }
    workgroupBarrier();
    scanG[tid] = scanG[tid] + a;
    scanE[tid] = scanE[tid] + c;
  }
  var gBefore = scanG[tid] - g;
  var eBefore = scanE[tid] - e;
  if (wg.x < p.nBlocks) {
    let o = (h * p.nBlocks + wg.x) * 2u;
    gBefore = gBefore + blocks[o];
    eBefore = eBefore + blocks[o + 1u];
  }
  for (var i = 0u; i < 4u; i = i + 1u) {
    let t = wg.x * ${SELECT_BLOCK}u + tid * 4u + i;
    if (t >= p.L) { break; }
    var slot = 0xffffffffu;
    if (t >= p.P) {
      slot = keep + (t - p.P);
    } else if (gf[i] || (ef[i] && eBefore < need)) {
      slot = gBefore + min(eBefore, need);
    }
    if (slot != 0xffffffffu) { indices[h * p.L + slot] = t; }
    inverse[h * p.L + t] = slot + 1u;
    gBefore = gBefore + u32(gf[i]);
    eBefore = eBefore + u32(ef[i]);
  }
}
`;
}
