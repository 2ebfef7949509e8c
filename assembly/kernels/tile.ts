/**
 * The register-tiled building blocks of every attention-like kernel (score and
 * attend): a 4 x 8 tile of Q K^T, the online-softmax step on a 4-row tile, and
 * a 4 x 8 tile of P V. Layouts (byte offsets, f32; Dp = head dim padded to a multiple of 8 with zeros):
 *   Q tile      [Dp][4]          4 query rows interleaved (transpose4), so one pointer walks them
 *   key block   [BK/8][Dp][8]    BK keys in panels of 8, transposed (panel g: P[d][j] = k_{8g+j}[d]);
 *                                keys past the end are zero. One 8-key tile walks its panel sequentially.
 *   V rows      [rows][Dp]
 *   S tile      [4][BK]          logits in base-2 units (q.k * scale * log2 e), then probabilities
 * Each K or V vector loaded serves 4 query rows; each Q or P value (splat) serves 8 columns.
 */
import { BK, exp2, hmax, hsum, madd } from './common';

/**
 * Packs 4 rows (at p0..p3, Dp floats each, Dp a multiple of 4) column-interleaved: dst[d][r] = row_r[d]
 * with a row pitch of dstStride bytes, by 4 x 4 transposes in registers. Used for query tiles
 * ([Dp][4], pitch 16) and for half of a key panel ([Dp][8], pitch 32).
 */
export function transpose4(p0: usize, p1: usize, p2: usize, p3: usize, Dp: i32, dst: usize, dstStride: usize): void {
  const end = <usize>Dp << 2;
  for (let d: usize = 0; d < end; d += 16) {
    const a = v128.load(p0 + d);
    const b = v128.load(p1 + d);
    const c = v128.load(p2 + d);
    const e = v128.load(p3 + d);
    const t0 = v128.shuffle<f32>(a, b, 0, 4, 1, 5);
    const t1 = v128.shuffle<f32>(a, b, 2, 6, 3, 7);
    const t2 = v128.shuffle<f32>(c, e, 0, 4, 1, 5);
    const t3 = v128.shuffle<f32>(c, e, 2, 6, 3, 7);
    const o = dst + (d >> 2) * dstStride;
    v128.store(o, v128.shuffle<f32>(t0, t2, 0, 1, 4, 5));
    v128.store(o + dstStride, v128.shuffle<f32>(t0, t2, 2, 3, 6, 7));
    v128.store(o + 2 * dstStride, v128.shuffle<f32>(t1, t3, 0, 1, 4, 5));
    v128.store(o + 3 * dstStride, v128.shuffle<f32>(t1, t3, 2, 3, 6, 7));
  }
}

/**
 * S[r][c] = scale2 * sum_d Q[r][d] * K[c][d] for a packed query tile qt = [Dp][4] (see transpose4)
 * and the first nk keys (a multiple of 8) of the key block kt. 8 f32x4 accumulators: rows 0..3 x
 * keys c..c+7; both operands stream sequentially through one pointer each, with constant offsets.
 */
export function qkTile(qt: usize, kt: usize, Dp: i32, nk: i32, scale2: f32, s: usize): void {
  const qEnd = qt + (<usize>Dp << 4);
  const panelBytes = <usize>Dp << 5;
  for (let c: usize = 0; c < <usize>nk << 2; c += 32) {
    let a00 = f32x4.splat(0);
    let a01 = a00, a10 = a00, a11 = a00, a20 = a00, a21 = a00, a30 = a00, a31 = a00;
    let k = kt + (c >> 5) * panelBytes;
    // One dimension per iteration: unrolling lets the optimiser chain two multiply-adds per
    // accumulator back to back, which measured 1.5-2x slower.
    for (let qp = qt; qp < qEnd; qp += 16) {
      const k0 = v128.load(k);
      const k1 = v128.load(k, 16);
      let x = v128.load32_splat(qp);
      a00 = madd(x, k0, a00);
      a01 = madd(x, k1, a01);
      x = v128.load32_splat(qp, 4);
      a10 = madd(x, k0, a10);
      a11 = madd(x, k1, a11);
      x = v128.load32_splat(qp, 8);
      a20 = madd(x, k0, a20);
      a21 = madd(x, k1, a21);
      x = v128.load32_splat(qp, 12);
      a30 = madd(x, k0, a30);
      a31 = madd(x, k1, a31);
      k += 32;
    }
    const o = s + c;
    const scale = f32x4.splat(scale2);
    v128.store(o, f32x4.mul(a00, scale));
    v128.store(o, f32x4.mul(a01, scale), 16);
    v128.store(o, f32x4.mul(a10, scale), BK * 4);
    v128.store(o, f32x4.mul(a11, scale), BK * 4 + 16);
    v128.store(o, f32x4.mul(a20, scale), BK * 8);
    v128.store(o, f32x4.mul(a21, scale), BK * 8 + 16);
    v128.store(o, f32x4.mul(a30, scale), BK * 12);
    v128.store(o, f32x4.mul(a31, scale), BK * 12 + 16);
  }
}

/**
 * Causal mask of a diagonal tile: S[r][c] = -inf where key k0 + c > query row0 + r
 * (positions in the same numbering), for the first nk columns.
 */
export function maskTile(s: usize, nk: i32, row0: i32, k0: i32): void {
  const lane = i32x4(0, 1, 2, 3);
  const negInf = f32x4.splat(-Infinity);
  for (let r = 0; r < 4; r++) {
    const row = s + <usize>(r * BK * 4);
    const limit = i32x4.splat(row0 + r);
    // Columns c <= row0 + r - k0 are visible; start at the first vector holding a masked one.
    for (let c = max(0, (row0 + r - k0 + 1) & ~3); c < nk; c += 4) {
      const masked = i32x4.gt_s(i32x4.add(i32x4.splat(k0 + c), lane), limit);
      const p = row + (<usize>c << 2);
      v128.store(p, v128.bitselect(negInf, v128.load(p), masked));
    }
  }
}

/**
 * Online-softmax step of 4 rows over the first nk columns of a logit tile:
 *   m'_r = max(m_r, max_c S[r][c]);  alpha_r = 2^(m_r - m'_r);  S[r][c] <- 2^(S[r][c] - m'_r);
 *   l_r <- alpha_r * l_r + sum_c S[r][c].
 * m, l, alpha are 4-float arrays of the tile's rows. Every row must see at least one key over the
 * whole sweep's first tile (m starts at -inf; -inf - m' gives alpha = 0).
 */
export function softmaxTile(s: usize, nk: i32, m: usize, l: usize, alpha: usize): void {
  for (let r: usize = 0; r < 4; r++) {
    const row = s + r * <usize>(BK * 4);
    let mx = v128.load(row);
    for (let c = 4; c < nk; c += 4) mx = f32x4.pmax(mx, v128.load(row + (<usize>c << 2)));
    const mOld = load<f32>(m + (r << 2));
    const mNew = max(mOld, hmax(mx));
    const mv = f32x4.splat(mNew);
    let sum = f32x4.splat(0);
    for (let c = 0; c < nk; c += 4) {
      const p = row + (<usize>c << 2);
      const e = exp2(f32x4.sub(v128.load(p), mv));
      v128.store(p, e);
      sum = f32x4.add(sum, e);
    }
    const a = f32x4.extract_lane(exp2(f32x4.splat(mOld - mNew)), 0);
    store<f32>(m + (r << 2), mNew);
    store<f32>(alpha + (r << 2), a);
    store<f32>(l + (r << 2), a * load<f32>(l + (r << 2)) + hsum(sum));
  }
}

/**
 * O[r][:] = alpha_r * O[r][:] + sum_{j < nk} P[r][j] * V[j][:] for 4 rows: P is the probability tile
 * [4][BK], V rows start at v (stride vStride bytes), O rows are contiguous [4][Dp].
 * Per 8-column chunk, 8 f32x4 accumulators stay in registers over all nk keys.
 */
export function pvTile(p: usize, v: usize, vStride: usize, nk: i32, Dp: i32, o: usize, alpha: usize): void {
  const oStride = <usize>Dp << 2;
  const o1 = o + oStride;
  const o2 = o1 + oStride;
  const o3 = o2 + oStride;
  const pEnd = p + (<usize>nk << 2);
  for (let c: usize = 0; c < oStride; c += 32) {
    let x = v128.load32_splat(alpha);
    let a00 = f32x4.mul(v128.load(o + c), x);
    let a01 = f32x4.mul(v128.load(o + c, 16), x);
    x = v128.load32_splat(alpha, 4);
    let a10 = f32x4.mul(v128.load(o1 + c), x);
    let a11 = f32x4.mul(v128.load(o1 + c, 16), x);
    x = v128.load32_splat(alpha, 8);
    let a20 = f32x4.mul(v128.load(o2 + c), x);
    let a21 = f32x4.mul(v128.load(o2 + c, 16), x);
    x = v128.load32_splat(alpha, 12);
    let a30 = f32x4.mul(v128.load(o3 + c), x);
    let a31 = f32x4.mul(v128.load(o3 + c, 16), x);
    let vp = v + c;
    for (let pj = p; pj < pEnd; pj += 4) {
      const v0 = v128.load(vp);
      const v1 = v128.load(vp, 16);
      x = v128.load32_splat(pj);
      a00 = madd(x, v0, a00);
      a01 = madd(x, v1, a01);
      x = v128.load32_splat(pj, BK * 4);
      a10 = madd(x, v0, a10);
      a11 = madd(x, v1, a11);
      x = v128.load32_splat(pj, BK * 8);
      a20 = madd(x, v0, a20);
      a21 = madd(x, v1, a21);
      x = v128.load32_splat(pj, BK * 12);
      a30 = madd(x, v0, a30);
      a31 = madd(x, v1, a31);
      vp += vStride;
    }
    v128.store(o + c, a00);
    v128.store(o + c, a01, 16);
    v128.store(o1 + c, a10);
    v128.store(o1 + c, a11, 16);
    v128.store(o2 + c, a20);
    v128.store(o2 + c, a21, 16);
    v128.store(o3 + c, a30);
    v128.store(o3 + c, a31, 16);
  }
}
