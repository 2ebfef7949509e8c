/**
 * score: the importance of each prefix key t < P = L - W, per query head:
 *   a[t] = (1/W) sum_{i = P}^{L-1} 2^(s_it - m_i) / l_i,   s_ij = q_i . k_j * log2(e) / sqrt(D),
 *   m_i = max_{j <= i} s_ij,  l_i = sum_{j <= i} 2^(s_ij - m_i)
 * (base 2 with log2(e) folded into the scale: the same probabilities as with exp). Three parallel
 * kernels: scoreLogits (every window query against every key, once, register-tiled), scoreStats
 * (m_i and l_i of each window query, l in f64; replaces each logit by 2^(s_ij - m_i)), scoreMean
 * (the window's mean probability of each prefix key, summed in f64).
 *
 * Layouts (byte offsets; head h uses q + h * qHeadStride, kt + (h / group) * ktHeadStride):
 *   q       [W4/4][Dp][4]              the window queries L-W .. L-1 as tiles (gatherQueries),
 *                                      W4 = W rounded up to 4, zero rows past W
 *   kt      [Lp/BK][BK/8][Dp][8]       all L keys as transposed panels (gatherKeys), Lp = L rounded up to BK
 *   logits  [heads][W4][Lp] f32        s_ij, -inf where j > i (causal among the window keys);
 *                                      after scoreStats e_ij = 2^(s_ij - m_i)
 *   w       [heads][W4] f32            w_i = 1 / l_i (0 for the padding rows)
 *   out     [heads][P] f32
 */
import { BK, exp2, hsum, nextTask } from './common';
import { maskTile, qkTile } from './tile';

/** scoreLogits: logits[h][i][j] for every window query i and key j. Tasks: (head, key block). */
export function scoreLogits(
  thread: i32,
  counter: usize,
  q: usize,
  qHeadStride: usize,
  kt: usize,
  ktHeadStride: usize,
  group: i32,
  heads: i32,
  L: i32,
  W: i32,
  Dp: i32,
  scale2: f32,
  logits: usize,
  scratch: usize,
  scratchStride: usize,
): void {
  const s = scratch + <usize>thread * scratchStride;
  const P = L - W;
  const W4 = (W + 3) & ~3;
  const blocks = (L + BK - 1) / BK;
  const rowBytes = <usize>(blocks * BK) << 2;
  const tileBytes = <usize>Dp << 4;
  const blockBytes = <usize>Dp * <usize>(BK * 4);
  const negInf = f32x4.splat(-Infinity);
  const tasks = heads * blocks;
  for (let t = nextTask(counter); t < tasks; t = nextTask(counter)) {
    const h = t / blocks;
    const kb = t % blocks;
    const k0 = kb * BK;
    const ktb = kt + <usize>(h / group) * ktHeadStride + <usize>kb * blockBytes;
    const lh = logits + <usize>(h * W4) * rowBytes + (<usize>k0 << 2);
    for (let r = 0; r < W4; r += 4) {
      const row0 = P + r;
      const dst = lh + <usize>r * rowBytes;
      if (k0 > row0 + 3) {
        // The whole block is after these 4 queries.
        for (let i: usize = 0; i < 4; i++) {
          for (let c: usize = 0; c < <usize>(BK * 4); c += 16) v128.store(dst + i * rowBytes + c, negInf);
        }
        continue;
      }
      qkTile(q + <usize>h * qHeadStride + <usize>(r >> 2) * tileBytes, ktb, Dp, BK, scale2, s);
      if (k0 + BK - 1 > row0) maskTile(s, BK, row0, k0);
      for (let i: usize = 0; i < 4; i++) memory.copy(dst + i * rowBytes, s + i * <usize>(BK * 4), BK * 4);
    }
  }
}

/**
 * scoreStats: m_i = max_j s_ij and w_i = 1 / l_i, l_i = sum_j e_ij, e_ij = 2^(s_ij - m_i), of each
 * window query, storing e_ij over s_ij (masked logits are -inf and give 0; sums of BK in f32, then
 * f64). Tasks: (head, window query).
 */
export function scoreStats(
  thread: i32,
  counter: usize,
  logits: usize,
  heads: i32,
  L: i32,
  W: i32,
  w: usize,
): void {
  const W4 = (W + 3) & ~3;
  const Lp = (L + BK - 1) & ~(BK - 1);
  const rowBytes = <usize>Lp << 2;
  const tasks = heads * W4;
  for (let t = nextTask(counter); t < tasks; t = nextTask(counter)) {
    const row = logits + <usize>t * rowBytes;
    let mx = v128.load(row);
    for (let c: usize = 16; c < rowBytes; c += 16) mx = f32x4.pmax(mx, v128.load(row + c));
    mx = f32x4.pmax(mx, v128.shuffle<f32>(mx, mx, 2, 3, 0, 1));
    mx = f32x4.pmax(mx, v128.shuffle<f32>(mx, mx, 1, 0, 3, 2));
    let l: f64 = 0;
    for (let c: usize = 0; c < rowBytes; c += <usize>(BK * 4)) {
      let sum = f32x4.splat(0);
      for (let j: usize = 0; j < <usize>(BK * 4); j += 16) {
        const e = exp2(f32x4.sub(v128.load(row + c + j), mx));
        v128.store(row + c + j, e);
        sum = f32x4.add(sum, e);
      }
      l += <f64>hsum(sum);
    }
    const i = t % W4;
    store<f32>(w + (<usize>t << 2), i < W ? <f32>(1.0 / l) : 0);
  }
}

/** scoreMean: out[h][t] = (1/W) sum_i e_it w_i. Tasks: (head, block of BK prefix keys). */
export function scoreMean(
  thread: i32,
  counter: usize,
  e: usize,
  heads: i32,
  L: i32,
  W: i32,
  w: usize,
  out: usize,
  scratch: usize,
  scratchStride: usize,
): void {
  const acc = scratch + <usize>thread * scratchStride; // BK x f64
  const P = L - W;
  const W4 = (W + 3) & ~3;
  const Lp = (L + BK - 1) & ~(BK - 1);
  const rowBytes = <usize>Lp << 2;
  const blocks = (P + BK - 1) / BK;
  const tasks = heads * blocks;
  for (let t = nextTask(counter); t < tasks; t = nextTask(counter)) {
    const h = t / blocks;
    const k0 = (t % blocks) * BK;
    memory.fill(acc, 0, BK * 8);
    for (let i = 0; i < W4; i += 4) {
      const row = e + <usize>(h * W4 + i) * rowBytes + (<usize>k0 << 2);
      const wi = w + (<usize>(h * W4 + i) << 2);
      const w0 = v128.load32_splat(wi), w1 = v128.load32_splat(wi, 4);
      const w2 = v128.load32_splat(wi, 8), w3 = v128.load32_splat(wi, 12);
      for (let c: usize = 0; c < <usize>(BK * 4); c += 16) {
        // Column sums over 4 window queries in f32, then into the f64 accumulators.
        let col = f32x4.mul(v128.load(row + c), w0);
        col = f32x4.add(col, f32x4.mul(v128.load(row + rowBytes + c), w1));
        col = f32x4.add(col, f32x4.mul(v128.load(row + 2 * rowBytes + c), w2));
        col = f32x4.add(col, f32x4.mul(v128.load(row + 3 * rowBytes + c), w3));
        const a = acc + (c << 1);
        v128.store(a, f64x2.add(v128.load(a), f64x2.promote_low_f32x4(col)));
        v128.store(a, f64x2.add(v128.load(a, 16), f64x2.promote_low_f32x4(v128.shuffle<f32>(col, col, 2, 3, 0, 1))), 16);
      }
    }
    const oh = out + (<usize>(h * P + k0) << 2);
    const count = min(BK, P - k0);
    for (let c = 0; c < count; c++) store<f32>(oh + (<usize>c << 2), <f32>(load<f64>(acc + (<usize>c << 3)) / <f64>W));
  }
}
