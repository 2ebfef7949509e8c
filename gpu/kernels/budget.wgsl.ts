/**
 * budget: the keep count of the layer, exactly, on the GPU.
 *
 * Math. With S_t = sum_h pooled[h][t] (so g_t = S_t / H) the spec's rule
 * "cumsum_k(sort_asc(g) / (sum g + 1e-8)) < tau" is
 *     prefix_k(sort_asc(S)) < Theta = tau * (sum_t S_t + H * 1e-8).
 * Every pooled value is turned into a 128-bit fixed-point integer
 * X = floor(x * 2^s), with s chosen from the largest value so that all sums
 * fit (budgetFix); the sums are then exact integers, the same in any
 * reduction order. Theta is floor((T + C) * tau_64 / 2^64) with
 * tau_64 = floor(tau * 2^64) and C = H * 1e-8 * 2^s. The count
 * c = max{k : prefix_k < Theta} comes from a radix select over the 128-bit
 * keys, most significant byte first (budgetHist + budgetChoose per byte
 * across workgroups, or all bytes in one workgroup, budgetRadix, which also
 * decides, for prefixes up to GpuCtx.radixOneGroupKeys):
 * each pass keeps the bucket where the running sum first reaches Theta,
 * adding the counts and sums of the buckets below it; after the last byte
 * the group left holds equal values v and the count takes the largest j
 * with base + j v < Theta. No sort of L scores, no float rounding: the only
 * approximation is truncating values below 2^-s, more than 2^80 times
 * smaller than the largest.
 *
 * budgetDecide (after the multi-workgroup passes) applies c == 0 -> dense, else pruned = c + 1,
 * keep = max(minTokens, P - pruned), L' = keep + W, and the cost rule
 * (dense when L' > maxKeptLength), writing the state buffer (state.ts).
 *
 * Layouts: pooled [H][P] f32; keys [P] vec4<u32>; hist [BUDGET_BUCKETS][5] u32
 * (count, 128-bit sum); state u32 words per STATE.
 */
import { read, variants, write, type Kernel } from './kernel.js';
import type { ParamFields } from './params.js';
import { STATE } from './state.js';
import { U128_WGSL } from './u128.wgsl.js';

const S = STATE;

/** Threads of the budget kernels but budgetDecide; also the radix bucket count (one thread per bucket). */
const WG = 256;
/** Radix buckets per byte; hist is [BUDGET_BUCKETS][5] u32 (count, 128-bit sum). */
export const BUDGET_BUCKETS = WG;
/** Keys a thread of budgetHist folds sequentially (runs of one bucket cost one atomic); a workgroup covers WG * HIST_ITEMS. */
export const HIST_ITEMS = 16;


/** Zeroes the histogram and the radix state; one workgroup. */
export const BUDGET_INIT: Kernel<'state' | 'hist'> = {
  name: 'budgetInit',
  key: 'budgetInit',
  params: [['P', 'u32']],
  bindings: [write('state', 'u32'), write('hist', 'u32')],
  workgroupSize: WG,
  source: () => `
@compute @workgroup_size(WG)
fn main(@builtin(local_invocation_index) tid: u32) {
  for (var w = 0u; w < 5u; w = w + 1u) { hist[tid * 5u + w] = 0u; }
  if (tid < ${S.words}u) { state[tid] = 0u; }
  if (tid == 0u) { state[${S.groupCount}] = p.P; }
}
`,
};

/** state.maxBits = max over all pooled values of their bits (non-negative floats order as u32). */
export const BUDGET_MAX: Kernel<'pooled' | 'state'> = {
  name: 'budgetMax',
  key: 'budgetMax',
  params: [['count', 'u32']],
  bindings: [read('pooled'), write('state', 'atomic<u32>')],
  workgroupSize: WG,
  source: () => `var<workgroup> wmax: atomic<u32>;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(local_invocation_index) tid: u32,
        @builtin(num_workgroups) nwg: vec3<u32>) {
  var m = 0u;
  for (var e = gid.x; e < p.count; e = e + nwg.x * WG) {
    m = max(m, bitcast<u32>(pooled[e]) & 0x7fffffffu);
  }
  atomicMax(&wmax, m);
  workgroupBarrier();
  if (tid == 0u) { atomicMax(&state[${S.maxBits}], atomicLoad(&wmax)); }
}
`,
};

/** keys[t] = sum_h fix128(pooled[h][t], s); s = min(kBits - (emax + 1), sCap). */
export const BUDGET_FIX: Kernel<'pooled' | 'keys' | 'state'> = {
  name: 'budgetFix',
  key: 'budgetFix',
  params: [
    ['P', 'u32'],
    ['H', 'u32'],
    ['kBits', 'u32'],
    ['sCap', 'u32'],
  ],
  bindings: [read('pooled'), write('keys', 'vec4<u32>'), write('state', 'u32')],
  workgroupSize: WG,
  source: () => `${U128_WGSL}

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let maxBits = state[${S.maxBits}];
  let e = i32(maxBits >> 23u);
  // max < 2^(emax + 1); a subnormal maximum is < 2^-126.
  var emax = e - 127;
  if (e == 0) { emax = -127; }
  let s = min(i32(p.kBits) - (emax + 1), i32(p.sCap));
  if (gid.x == 0u) { state[${S.shift}] = bitcast<u32>(s); }
  for (var t = gid.x; t < p.P; t = t + nwg.x * WG) {
    var acc = vec4<u32>(0u);
    for (var h = 0u; h < p.H; h = h + 1u) { acc = add128(acc, fix128(pooled[h * p.P + t], s)); }
    keys[t] = acc;
  }
}
`,
};

/** Shared by the radix passes: is key in the group fixed by the prefix bytes above (word, shift)? */
const IN_GROUP = `
fn inGroup(key: vec4<u32>, prefix: vec4<u32>, word: u32, shift: u32) -> bool {
  for (var w = word + 1u; w < 4u; w = w + 1u) {
    if (key[w] != prefix[w]) { return false; }
  }
  if (shift < 24u && (key[word] >> (shift + 8u)) != (prefix[word] >> (shift + 8u))) { return false; }
  return true;
}
`;

/**
 * `fn name(at, v)`: adds the 128-bit v into the 4 atomic words arr[at .. at+4),
 * carrying exactly (order-independent). One per array: WGSL cannot pass a
 * pointer to storage or workgroup atomics generically.
 */
function atomicAdd128Fn(name: string, arr: string): string {
  return `fn ${name}(at: u32, v: vec4<u32>) {
  var carry = 0u;
  for (var w = 0u; w < 4u; w = w + 1u) {
    var c = 0u;
    if (v[w] != 0u) { let old = atomicAdd(&${arr}[at + w], v[w]); c = c + u32(old + v[w] < old); }
    if (carry != 0u) { let old = atomicAdd(&${arr}[at + w], carry); c = c + u32(old + carry < old); }
    carry = c;
  }
}`;
}

/**
 * `histRange(t0, t1, prefix, word, shift)`: adds keys[t0 .. t1) that are in the group to the
 * workgroup histogram `local` [WG][5] (count, 128-bit sum) of byte (word, shift); runs of one
 * bucket (sorted-ish keys) cost one atomic update.
 */
const HIST_RANGE = `${atomicAdd128Fn('atomicAdd128Local', 'local')}
fn flush(bucket: u32, n: u32, sum: vec4<u32>) {
  if (n == 0u) { return; }
  atomicAdd(&local[bucket * 5u], n);
  atomicAdd128Local(bucket * 5u + 1u, sum);
}
fn histRange(t0: u32, t1: u32, prefix: vec4<u32>, word: u32, shift: u32) {
  var bucket = 0u;
  var n = 0u;
  var sum = vec4<u32>(0u);
  for (var t = t0; t < t1; t = t + 1u) {
    let key = keys[t];
    if (!inGroup(key, prefix, word, shift)) { continue; }
    let b = (key[word] >> shift) & 255u;
    if (b != bucket) { flush(bucket, n, sum); bucket = b; n = 0u; sum = vec4<u32>(0u); }
    n = n + 1u;
    sum = add128(sum, key);
  }
  flush(bucket, n, sum);
}
`;

/** Histogram (count, 128-bit sum) of the current byte over the keys still in the group. */
export const BUDGET_HIST: Kernel<'keys' | 'state' | 'hist'> = {
  name: 'budgetHist',
  key: 'budgetHist',
  params: [
    ['P', 'u32'],
    ['word', 'u32'],
    ['shift', 'u32'],
  ],
  bindings: [read('keys', 'vec4<u32>'), read('state', 'u32'), write('hist', 'atomic<u32>')],
  workgroupSize: WG,
  source: () => `var<workgroup> local: array<atomic<u32>, WG * 5u>;
${U128_WGSL}
${IN_GROUP}
${HIST_RANGE}
${atomicAdd128Fn('atomicAdd128Global', 'hist')}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) tid: u32) {
  if (state[${S.done}] != 0u) { return; }
  for (var i = tid; i < (WG * 5u); i = i + WG) { atomicStore(&local[i], 0u); }
  workgroupBarrier();
  let prefix = vec4<u32>(state[${S.prefix}], state[${S.prefix + 1}], state[${S.prefix + 2}], state[${S.prefix + 3}]);
  let t0 = (wg.x * WG + tid) * ${HIST_ITEMS}u;
  histRange(t0, min(t0 + ${HIST_ITEMS}u, p.P), prefix, p.word, p.shift);
  workgroupBarrier();
  let cnt = atomicLoad(&local[tid * 5u]);
  if (cnt != 0u) {
    atomicAdd(&hist[tid * 5u], cnt);
    atomicAdd128Global(tid * 5u + 1u, vec4<u32>(atomicLoad(&local[tid * 5u + 1u]), atomicLoad(&local[tid * 5u + 2u]),
                                               atomicLoad(&local[tid * 5u + 3u]), atomicLoad(&local[tid * 5u + 4u])));
  }
}
`,
};

/**
 * `choose(b, cnt, own, word, shift, first, last)`, called by every thread b of a workgroup of WG
 * with bucket b's count and 128-bit sum of byte (word, shift): picks the bucket where the running
 * sum first reaches Theta (see the file comment) and updates the radix state, or finishes
 * (state.done, state.count). `first`: the first byte (Theta from the total); `last`: byte 0.
 */
const CHOOSE_FN = `const NB: u32 = ${BUDGET_BUCKETS}u;
var<workgroup> sums: array<vec4<u32>, NB>;
var<workgroup> counts: array<u32, NB>;
var<workgroup> chosen: atomic<u32>;
var<workgroup> flag: u32;

fn load4(at: u32) -> vec4<u32> { return vec4<u32>(state[at], state[at + 1u], state[at + 2u], state[at + 3u]); }
fn store4(at: u32, v: vec4<u32>) { state[at] = v.x; state[at + 1u] = v.y; state[at + 2u] = v.z; state[at + 3u] = v.w; }
fn finish(count: u32) { state[${S.count}] = count; state[${S.done}] = 1u; }

fn choose(b: u32, cnt: u32, own: vec4<u32>, word: u32, shift: u32, first: bool, last: bool) {
  if (b == 0u) { flag = state[${S.done}]; atomicStore(&chosen, NB); }
  if (workgroupUniformLoad(&flag) != 0u) { return; }

  // Inclusive scans of counts and sums over buckets (Hillis-Steele; integers, exact); threads
  // b >= NB (a wider workgroup's) only take part in the barriers.
  let mine = b < NB;
  if (mine) {
    sums[b] = own;
    counts[b] = cnt;
  }
  for (var off = 1u; off < NB; off = off * 2u) {
    workgroupBarrier();
    var s = vec4<u32>(0u);
    var c = 0u;
    if (mine && b >= off) { s = sums[b - off]; c = counts[b - off]; }
    workgroupBarrier();
    if (mine) {
      sums[b] = add128(sums[b], s);
      counts[b] = counts[b] + c;
    }
  }
  workgroupBarrier();

  if (first && b == 0u) {
    // Theta = floor((T + C) * tau_64 / 2^64), T = every key (all are in the first pass).
    let s = bitcast<i32>(state[${S.shift}]);
    let total = add128(sums[NB - 1u], add128(fix128(p.cHi, s), fix128(p.cLo, s)));
    store4(${S.theta}u, mulShr64(total, p.tauLo, p.tauHi));
  }
  storageBarrier();
  workgroupBarrier();
  let theta = load4(${S.theta}u);
  let base = load4(${S.baseSum}u);
  if (mine && ge128(add128(base, sums[b]), theta)) { atomicMin(&chosen, b); }
  workgroupBarrier();
  if (b != 0u) { return; }

  let baseCount = state[${S.baseCount}];
  let bs = atomicLoad(&chosen);
  if (!ge128(theta, add128(base, vec4<u32>(1u, 0u, 0u, 0u)))) { finish(0u); return; }    // Theta <= base: c = 0
  if (bs == NB) { finish(baseCount + counts[NB - 1u]); return; }                          // the whole group is below Theta
  var belowSum = vec4<u32>(0u);
  var belowCount = 0u;
  if (bs > 0u) { belowSum = sums[bs - 1u]; belowCount = counts[bs - 1u]; }
  let newBase = add128(base, belowSum);
  let newCount = baseCount + belowCount;
  let inBucket = counts[bs] - belowCount;
  var prefix = load4(${S.prefix}u);
  prefix[word] = prefix[word] | (bs << shift);
  store4(${S.baseSum}u, newBase);
  store4(${S.prefix}u, prefix);
  state[${S.baseCount}] = newCount;
  state[${S.groupCount}] = inBucket;
  if (inBucket == 1u) { finish(newCount); return; }
  if (last) {
    // Every key left equals v = prefix: the largest j < inBucket with base + j v < Theta.
    var lo = 0u;
    var hi = inBucket - 1u;
    while (lo < hi) {
      let mid = lo + (hi - lo + 1u) / 2u;
      if (ge128(add128(newBase, mulSmall128(prefix, mid)), theta)) { hi = mid - 1u; } else { lo = mid; }
    }
    finish(newCount + lo);
  }
}
`;

/** Theta's parameters: the coverage as a 64-bit fraction and C = H * 1e-8 as two f32. */
const THETA_PARAMS: ParamFields = [
  ['tauLo', 'u32'],
  ['tauHi', 'u32'],
  ['cHi', 'f32'],
  ['cLo', 'f32'],
];

/** Picks this byte's bucket from the global histogram (zeroing it for the next byte); one workgroup, thread = bucket. */
export const BUDGET_CHOOSE: Kernel<'state' | 'hist'> = {
  name: 'budgetChoose',
  key: 'budgetChoose',
  params: [['word', 'u32'], ['shift', 'u32'], ['first', 'u32'], ['last', 'u32'], ...THETA_PARAMS],
  bindings: [write('state', 'u32'), write('hist', 'u32')],
  workgroupSize: WG,
  source: () => `${U128_WGSL}
${CHOOSE_FN}

@compute @workgroup_size(WG)
fn main(@builtin(local_invocation_index) b: u32) {
  let cnt = hist[b * 5u];
  let own = vec4<u32>(hist[b * 5u + 1u], hist[b * 5u + 2u], hist[b * 5u + 3u], hist[b * 5u + 4u]);
  for (var w = 0u; w < 5u; w = w + 1u) { hist[b * 5u + w] = 0u; }
  choose(b, cnt, own, p.word, p.shift, p.first != 0u, p.last != 0u);
}
`,
};

/** Parameters of `decide`: the shape, minTokens and the cost rule's bound on L'. */
const DECIDE_PARAMS: ParamFields = [
  ['W', 'u32'],
  ['L', 'u32'],
  ['minTokens', 'u32'],
  ['maxKeptLength', 'u32'],
];

/** `decide()`: c -> mode, keep, pruned, L' (spec step 2 plus the cost rule's maxKeptLength), by one thread. */
const DECIDE_FN = `fn decide() {
  let c = state[${S.count}];
  state[${S.keptLength}] = p.L;
  if (c == 0u) { state[${S.mode}] = ${S.modeNothingPruned}u; return; }
  let pruned = c + 1u;
  var keep = p.minTokens;
  if (pruned < p.P && p.P - pruned > keep) { keep = p.P - pruned; }
  state[${S.pruned}] = pruned;
  state[${S.keep}] = keep;
  if (keep + p.W > p.maxKeptLength) { state[${S.mode}] = ${S.modeNotWorthIt}u; return; }
  state[${S.mode}] = ${S.modeSparse}u;
  state[${S.keptLength}] = keep + p.W;
}
`;

/**
 * The whole radix select in one workgroup of `threads` (a multiple of BUDGET_BUCKETS; one dispatch
 * instead of two per byte, for prefixes up to GpuCtx.radixOneGroupKeys): for bytes firstByte .. 0,
 * the histogram of the keys still in the group (each thread a contiguous range) in workgroup
 * memory, then `choose`, until the state says done; then `decide`. The same state words as
 * budgetHist + budgetChoose + budgetDecide. More threads than buckets shorten each thread's range
 * (the histogram's atomics are the kernel's cost).
 */
export const budgetRadixKernel = variants(
  (threads: number) => `budgetRadix:${threads}`,
  (threads: number, key): Kernel<'keys' | 'state'> => ({
    name: 'budgetRadix',
    key,
    params: [['P', 'u32'], ['firstByte', 'u32'], ...THETA_PARAMS, ...DECIDE_PARAMS],
    bindings: [read('keys', 'vec4<u32>'), write('state', 'u32')],
    workgroupSize: threads,
    source: () => `var<workgroup> local: array<atomic<u32>, ${BUDGET_BUCKETS * 5}u>;
var<workgroup> stop: u32;
${U128_WGSL}
${IN_GROUP}
${HIST_RANGE}
${CHOOSE_FN}
${DECIDE_FN}

@compute @workgroup_size(WG)
fn main(@builtin(local_invocation_index) tid: u32) {
  let per = (p.P + WG - 1u) / WG;
  let t0 = min(tid * per, p.P);
  let t1 = min(t0 + per, p.P);
  let b = min(tid, NB - 1u);
  for (var byte = i32(p.firstByte); byte >= 0; byte = byte - 1) {
    let word = u32(byte) >> 2u;
    let shift = 8u * (u32(byte) & 3u);
    for (var i = tid; i < NB * 5u; i = i + WG) { atomicStore(&local[i], 0u); }
    workgroupBarrier();
    histRange(t0, t1, load4(${S.prefix}u), word, shift);
    workgroupBarrier();
    // Threads past the buckets read the last one's words, unused (choose ignores them).
    let own = vec4<u32>(atomicLoad(&local[b * 5u + 1u]), atomicLoad(&local[b * 5u + 2u]),
                        atomicLoad(&local[b * 5u + 3u]), atomicLoad(&local[b * 5u + 4u]));
    choose(tid, atomicLoad(&local[b * 5u]), own, word, shift, u32(byte) == p.firstByte, byte == 0);
    storageBarrier();
    workgroupBarrier();
    if (tid == 0u) { stop = state[${S.done}]; }
    if (workgroupUniformLoad(&stop) != 0u) { break; }
  }
  if (tid == 0u) { decide(); }
}
`,
  }),
);

/** `decide` after the multi-workgroup radix passes; one thread. */
export const BUDGET_DECIDE: Kernel<'state'> = {
  name: 'budgetDecide',
  key: 'budgetDecide',
  params: [['P', 'u32'], ...DECIDE_PARAMS],
  bindings: [write('state', 'u32')],
  workgroupSize: 1,
  source: () => `${DECIDE_FN}
@compute @workgroup_size(WG)
fn main() {
  decide();
}
`,
};
