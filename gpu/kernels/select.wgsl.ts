/**
 * select: per head, the `keep` prefix positions with the largest pooled
 * score (ties to the lower position), then the window P..L-1, ascending.
 *
 * Math. Non-negative float32 values order like their bits as u32, so the
 * keep-th largest value v_h is found by a radix select on the bits, one byte
 * per pass from the top (selectHist + selectChoose per byte across workgroups,
 * or selectRadix, all four bytes of a head in one workgroup, for prefixes up
 * to GpuCtx.radixOneGroupKeys): keep the bucket where
 * the count from the top first reaches `need`, and subtract the buckets
 * above it. Afterwards G = #{x > v_h} and need = keep - G ties (x == v_h)
 * are taken, lowest positions first. Output slots follow from a prefix
 * count: slot(t) = #{u < t : x_u > v} + min(#{u < t : x_u == v}, need)
 * (selectCount per block, selectScan over blocks, selectWrite).
 *
 * Layouts: pooled [H][P] f32; selHist [H][256] u32 (256 buckets: WG, a thread per bucket); selState [H][4] u32 =
 * (prefix v, need, _, _); blocks [H][nBlocks][2] u32 (greater, ties);
 * indices [H][L] u32 (row h holds L' = keep + W entries, stride L);
 * inverse [H][L] u32: compact row + 1 of each kept position, 0 if pruned
 * (used by scatter). keep comes from the state buffer.
 */
import { read, write, type Kernel } from './kernel.js';
import { STATE } from './state.js';

/** Threads of every select kernel but the scan; also the histogram's bucket count (one thread per bucket). */
const WG = 256;
/** Positions per thread of the compaction (selectCount, selectWrite); a block is WG * PER_THREAD positions. */
const PER_THREAD = 4;
/** Positions per block of the compaction. */
export const SELECT_BLOCK = WG * PER_THREAD;
/** Radix buckets of selectHist and selectChoose (one thread per bucket): selHist is [H][SELECT_BUCKETS]. */
export const SELECT_BUCKETS = WG;
/** Positions a thread of selectHist folds sequentially; a workgroup covers WG * HIST_ITEMS. */
export const HIST_ITEMS = 16;

const IF_SPARSE = `  if (state[${STATE.mode}] != ${STATE.modeSparse}u) { return; }`;

const KEY = `fn key(x: f32) -> u32 { return bitcast<u32>(x) & 0x7fffffffu; }`;

/** selHist = 0, selState[h] = (0, keep, 0, 0). */
export const SELECT_INIT: Kernel<'state' | 'selHist' | 'selState'> = {
  name: 'selectInit',
  key: 'selectInit',
  params: [['H', 'u32']],
  bindings: [read('state', 'u32'), write('selHist', 'u32'), write('selState', 'u32')],
  workgroupSize: WG,
  source: () => `
@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) tid: u32) {
${IF_SPARSE}
  let h = wg.x;
  if (h >= p.H) { return; }
  selHist[h * WG + tid] = 0u;
  if (tid < 4u) { selState[h * 4u + tid] = 0u; }
  if (tid == 1u) { selState[h * 4u + 1u] = state[${STATE.keep}]; }
}
`,
};

/**
 * `histRange(h, t0, t1, prefix, shift)`: counts positions t0 .. t1 of head h whose bytes above
 * `shift` equal the prefix's into the workgroup histogram `local` of byte `shift` (runs of one
 * bucket cost one atomic).
 */
const HIST_RANGE = `${KEY}
fn histRange(h: u32, t0: u32, t1: u32, prefix: u32, shift: u32) {
  var bucket = 0u;
  var n = 0u;
  for (var t = t0; t < t1; t = t + 1u) {
    let k = key(pooled[h * p.P + t]);
    if (shift < 24u && (k >> (shift + 8u)) != (prefix >> (shift + 8u))) { continue; }
    let b = (k >> shift) & 255u;
    if (b != bucket) {
      if (n != 0u) { atomicAdd(&local[bucket], n); }
      bucket = b;
      n = 0u;
    }
    n = n + 1u;
  }
  if (n != 0u) { atomicAdd(&local[bucket], n); }
}
`;

/**
 * `pickBucket(b, cnt, need)`, called by every thread b of a workgroup with bucket b's count: the
 * highest bucket bs whose count from the top reaches need, and the count strictly above it, as
 * (bs, above) in every thread.
 */
const PICK_BUCKET = `var<workgroup> above: array<u32, WG>;
var<workgroup> chosen: atomic<u32>;

fn pickBucket(b: u32, cnt: u32, need: u32) -> vec2<u32> {
  // Inclusive suffix sums: above[b] = count of buckets >= b.
  above[b] = cnt;
  if (b == 0u) { atomicStore(&chosen, 0u); }
  for (var off = 1u; off < WG; off = off * 2u) {
    workgroupBarrier();
    var c = 0u;
    if (b + off < WG) { c = above[b + off]; }
    workgroupBarrier();
    above[b] = above[b] + c;
  }
  workgroupBarrier();
  if (above[b] >= need) { atomicMax(&chosen, b); }
  workgroupBarrier();
  let bs = atomicLoad(&chosen);
  var strictlyAbove = 0u;
  if (bs < 255u) { strictlyAbove = above[bs + 1u]; }
  workgroupBarrier();
  return vec2<u32>(bs, strictlyAbove);
}
`;

/** Histogram of the current byte over the positions whose higher bytes equal the prefix. */
export const SELECT_HIST: Kernel<'state' | 'pooled' | 'selState' | 'selHist'> = {
  name: 'selectHist',
  key: 'selectHist',
  params: [
    ['P', 'u32'],
    ['shift', 'u32'],
  ],
  bindings: [read('state', 'u32'), read('pooled'), read('selState', 'u32'), write('selHist', 'atomic<u32>')],
  workgroupSize: WG,
  source: () => `var<workgroup> local: array<atomic<u32>, WG>;
${HIST_RANGE}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) tid: u32) {
${IF_SPARSE}
  let h = wg.y;
  let t0 = (wg.x * WG + tid) * ${HIST_ITEMS}u;
  histRange(h, t0, min(t0 + ${HIST_ITEMS}u, p.P), selState[h * 4u], p.shift);
  workgroupBarrier();
  let c = atomicLoad(&local[tid]);
  if (c != 0u) { atomicAdd(&selHist[h * WG + tid], c); }
}
`,
};

/** Per head (workgroup = head, thread = bucket): the bucket where the count from the top reaches need. */
export const SELECT_CHOOSE: Kernel<'state' | 'selHist' | 'selState'> = {
  name: 'selectChoose',
  key: 'selectChoose',
  params: [['shift', 'u32']],
  bindings: [read('state', 'u32'), write('selHist', 'u32'), write('selState', 'u32')],
  workgroupSize: WG,
  source: () => `var<workgroup> need: u32;
${PICK_BUCKET}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) b: u32) {
${IF_SPARSE}
  let h = wg.x;
  let cnt = selHist[h * WG + b];
  selHist[h * WG + b] = 0u;
  if (b == 0u) { need = selState[h * 4u + 1u]; }
  let picked = pickBucket(b, cnt, workgroupUniformLoad(&need));
  if (b == 0u) {
    selState[h * 4u] = selState[h * 4u] | (picked.x << p.shift);
    selState[h * 4u + 1u] = need - picked.y;
  }
}
`,
};

/**
 * The four radix passes of one head in one workgroup (workgroup = head; one dispatch for
 * selectInit and every selectHist + selectChoose, for prefixes up to GpuCtx.radixOneGroupKeys):
 * the same selState (v_h, need) as those kernels.
 */
export const SELECT_RADIX: Kernel<'state' | 'pooled' | 'selState'> = {
  name: 'selectRadix',
  key: 'selectRadix',
  params: [['P', 'u32']],
  bindings: [read('state', 'u32'), read('pooled'), write('selState', 'u32')],
  workgroupSize: WG,
  source: () => `var<workgroup> local: array<atomic<u32>, WG>;
${HIST_RANGE}
${PICK_BUCKET}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) tid: u32) {
${IF_SPARSE}
  let h = wg.x;
  let per = (p.P + WG - 1u) / WG;
  let t0 = min(tid * per, p.P);
  let t1 = min(t0 + per, p.P);
  var prefix = 0u;
  var need = state[${STATE.keep}];
  for (var byte = 4u; byte > 0u; byte = byte - 1u) {
    let shift = 8u * (byte - 1u);
    atomicStore(&local[tid], 0u);
    workgroupBarrier();
    histRange(h, t0, t1, prefix, shift);
    workgroupBarrier();
    let picked = pickBucket(tid, atomicLoad(&local[tid]), need);
    prefix = prefix | (picked.x << shift);
    need = need - picked.y;
  }
  if (tid == 0u) {
    selState[h * 4u] = prefix;
    selState[h * 4u + 1u] = need;
  }
}
`,
};

/** Per block of SELECT_BLOCK prefix positions: (#greater, #ties) with respect to v_h. */
export const SELECT_COUNT: Kernel<'state' | 'pooled' | 'selState' | 'blocks'> = {
  name: 'selectCount',
  key: 'selectCount',
  params: [
    ['P', 'u32'],
    ['nBlocks', 'u32'],
  ],
  bindings: [read('state', 'u32'), read('pooled'), read('selState', 'u32'), write('blocks', 'u32')],
  workgroupSize: WG,
  source: () => `var<workgroup> greater: atomic<u32>;
var<workgroup> ties: atomic<u32>;
${KEY}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) tid: u32) {
${IF_SPARSE}
  let h = wg.y;
  let v = selState[h * 4u];
  var g = 0u;
  var e = 0u;
  for (var i = 0u; i < ${PER_THREAD}u; i = i + 1u) {
    let t = wg.x * ${SELECT_BLOCK}u + tid * ${PER_THREAD}u + i;
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
`,
};

/** Per head: exclusive prefix sums of the block counts, in place (one thread, blocks in order). */
export const SELECT_SCAN: Kernel<'state' | 'blocks'> = {
  name: 'selectScan',
  key: 'selectScan',
  params: [['nBlocks', 'u32']],
  bindings: [read('state', 'u32'), write('blocks', 'u32')],
  workgroupSize: 1,
  source: () => `
@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3<u32>) {
${IF_SPARSE}
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
`,
};

/** Writes indices and inverse for one block of positions in [0, L). */
export const SELECT_WRITE: Kernel<'state' | 'pooled' | 'selState' | 'blocks' | 'indices' | 'inverse'> = {
  name: 'selectWrite',
  key: 'selectWrite',
  params: [
    ['P', 'u32'],
    ['L', 'u32'],
    ['nBlocks', 'u32'],
  ],
  bindings: [read('state', 'u32'), read('pooled'), read('selState', 'u32'), read('blocks', 'u32'), write('indices', 'u32'), write('inverse', 'u32')],
  workgroupSize: WG,
  source: () => `var<workgroup> scanG: array<u32, WG>;
var<workgroup> scanE: array<u32, WG>;
${KEY}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) tid: u32) {
${IF_SPARSE}
  let h = wg.y;
  let keep = state[${STATE.keep}];
  let v = selState[h * 4u];
  let need = selState[h * 4u + 1u];
  var gf: array<bool, ${PER_THREAD}>;
  var ef: array<bool, ${PER_THREAD}>;
  var g = 0u;
  var e = 0u;
  for (var i = 0u; i < ${PER_THREAD}u; i = i + 1u) {
    let t = wg.x * ${SELECT_BLOCK}u + tid * ${PER_THREAD}u + i;
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
  for (var off = 1u; off < WG; off = off * 2u) {
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
  for (var i = 0u; i < ${PER_THREAD}u; i = i + 1u) {
    let t = wg.x * ${SELECT_BLOCK}u + tid * ${PER_THREAD}u + i;
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
`,
};
