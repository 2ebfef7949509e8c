/**
 * score: the importance of each prefix key t < P = L - W, per query head:
 *   a[t] = (1/W) sum_{i = P}^{L-1} 2^(s_it - m_i) / l_i,   s_ij = q_i . k_j * log2(e) / sqrt(D),
 *   m_i = max_{j <= i} s_ij,  l_i = sum_{j <= i} 2^(s_ij - m_i)
 * (base 2 with the log2(e) folded into the scale: the same probabilities as with exp).
 * Two passes over the keys, each a parallel kernel: scoreStats (m_i, l_i of every window query,
 * l accumulated in f64) and scoreMean (the window's mean probability of each prefix key,
 * accumulated in f64).
 *
 * Layouts (byte offsets; head h uses q + h * qHeadStride, kt + (h / group) * ktHeadStride):
 *   q     [W4][Dp]            the window queries L-W .. L-1, W4 = W rounded up to 4, zero rows past W
 *   qt    [heads][W4/4][Dp][4] the same queries as packed tiles (written by scoreStats)
 *   kt    [ceil(L/BK)][BK/8][Dp][8] all L keys, transposed panels (see tile.ts, gather.ts)
 *   m, w  [heads][W4] f32     m_i, and w_i = 1 / l_i (0 for the padding rows)
 *   out   [heads][P] f32
 */
import { BK, exp2, hmax, hsum, nextTask } from './common';
import { maskTile, qkTile, transpose4 } from './tile';

/**
 * scoreStats: m_i and w_i = 1/l_i of each window query, and the packed query tiles.
 * Tasks: (head, tile of 4 window queries).
 */
export function scoreStats(
  thread: i32,
  counter: usize,
  q: usize,
  qHeadStride: usize,
  qt: usize,
  kt: usize,
  ktHeadStride: usize,
  group: i32,
  heads: i32,
  L: i32,
  W: i32,
  Dp: i32,
  scale2: f32,
  m: usize,
  w: usize,
  scratch: usize,
  scratchStride: usize,
): void {
  const s = scratch + <usize>thread * scratchStride;
  const lsum = s + <usize>(4 * BK * 4); // 4 x f64
  const P = L - W;
  const W4 = (W + 3) & ~3;
  const tiles = W4 >> 2;
  const rowBytes = <usize>Dp << 2;
  const blockBytes = rowBytes * <usize>BK;
  const lastKeyBlock = (L - 1) / BK;
  const tasks = heads * tiles;
  for (let t = nextTask(counter); t < tasks; t = nextTask(counter)) {
    const h = t / tiles;
    const r = (t % tiles) << 2;
    const row0 = P + r;
    const row = q + <usize>h * qHeadStride + <usize>r * rowBytes;
    const tile = qt + <usize>(h * W4 + r) * rowBytes;
    transpose4(row, row + rowBytes, row + 2 * rowBytes, row + 3 * rowBytes, Dp, tile, 16);
    const kh = kt + <usize>(h / group) * ktHeadStride;
    const mh = m + (<usize>(h * W4 + r) << 2);
    for (let i: usize = 0; i < 4; i++) {
      store<f32>(mh + (i << 2), -Infinity);
      store<f64>(lsum + (i << 3), 0);
    }
    const lastBlock = min(lastKeyBlock, (row0 + 3) / BK);
    for (let kb = 0; kb <= lastBlock; kb++) {
      const k0 = kb * BK;
      const nk = min(BK, (row0 + 4 - k0 + 7) & ~7);
      qkTile(tile, kh + <usize>kb * blockBytes, Dp, nk, scale2, s);
      if (k0 + nk - 1 > row0) maskTile(s, nk, row0, k0);
      statsTile(s, nk, mh, lsum);
    }
    const wh = w + (<usize>(h * W4 + r) << 2);
    for (let i = 0; i < 4; i++) {
      const l = load<f64>(lsum + (<usize>i << 3));
      store<f32>(wh + (<usize>i << 2), row0 + i < L ? <f32>(1.0 / l) : 0);
    }
  }
}

/** One online step of m and l (f64) for 4 rows over nk columns of a logit tile (see softmaxTile). */
function statsTile(s: usize, nk: i32, m: usize, l: usize): void {
  for (let r: usize = 0; r < 4; r++) {
    const row = s + r * <usize>(BK * 4);
    let mx = v128.load(row);
    for (let c = 4; c < nk; c += 4) mx = f32x4.pmax(mx, v128.load(row + (<usize>c << 2)));
    const mOld = load<f32>(m + (r << 2));
    const mNew = max(mOld, hmax(mx));
    const mv = f32x4.splat(mNew);
    let sum = f32x4.splat(0);
    for (let c = 0; c < nk; c += 4) sum = f32x4.add(sum, exp2(f32x4.sub(v128.load(row + (<usize>c << 2)), mv)));
    const alpha = <f64>f32x4.extract_lane(exp2(f32x4.splat(mOld - mNew)), 0);
    store<f32>(m + (r << 2), mNew);
    store<f64>(l + (r << 3), alpha * load<f64>(l + (r << 3)) + <f64>hsum(sum));
  }
}

/** scoreMean: out[h][t] = (1/W) sum_i 2^(s_it - m_i) w_i. Tasks: (head, block of BK prefix keys). */
export function scoreMean(
  thread: i32,
  counter: usize,
  qt: usize,
  kt: usize,
  ktHeadStride: usize,
  group: i32,
  heads: i32,
  L: i32,
  W: i32,
  Dp: i32,
  scale2: f32,
  m: usize,
  w: usize,
  out: usize,
  scratch: usize,
  scratchStride: usize,
): void {
  const s = scratch + <usize>thread * scratchStride;
  const acc = s + <usize>(4 * BK * 4); // BK x f64
  const P = L - W;
  const W4 = (W + 3) & ~3;
  const rowBytes = <usize>Dp << 2;
  const blockBytes = rowBytes * <usize>BK;
  const blocks = (P + BK - 1) / BK;
  const tasks = heads * blocks;
  for (let t = nextTask(counter); t < tasks; t = nextTask(counter)) {
    const h = t / blocks;
    const kb = t % blocks;
    const k0 = kb * BK;
    const nk = min(BK, (P - k0 + 7) & ~7);
    const qh = qt + <usize>(h * W4) * rowBytes;
    const ktb = kt + <usize>(h / group) * ktHeadStride + <usize>kb * blockBytes;
    memory.fill(acc, 0, <usize>(BK * 8));
    for (let r = 0; r < W4; r += 4) {
      qkTile(qh + <usize>r * rowBytes, ktb, Dp, nk, scale2, s);
      const mr = m + (<usize>(h * W4 + r) << 2);
      const wr = w + (<usize>(h * W4 + r) << 2);
      const m0 = v128.load32_splat(mr), m1 = v128.load32_splat(mr, 4);
      const m2 = v128.load32_splat(mr, 8), m3 = v128.load32_splat(mr, 12);
      const w0 = v128.load32_splat(wr), w1 = v128.load32_splat(wr, 4);
      const w2 = v128.load32_splat(wr, 8), w3 = v128.load32_splat(wr, 12);
      for (let c: usize = 0; c < <usize>nk << 2; c += 16) {
        let col = f32x4.mul(exp2(f32x4.sub(v128.load(s + c), m0)), w0);
        col = f32x4.add(col, f32x4.mul(exp2(f32x4.sub(v128.load(s + c, BK * 4), m1)), w1));
        col = f32x4.add(col, f32x4.mul(exp2(f32x4.sub(v128.load(s + c, BK * 8), m2)), w2));
        col = f32x4.add(col, f32x4.mul(exp2(f32x4.sub(v128.load(s + c, BK * 12), m3)), w3));
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
