/**
 * blockScores: XAttention's antidiagonal block masses (../shared/golden-xattn/README.md), per
 * query head over n rows, block size B, stride S, nb = ceil(n / B), per = B / S strided rows per
 * block, R = nb * per strided rows, Rn = ceil(n / S) of them real:
 *   z[r][c] = qs_r . ks_c * log2(e) / (sqrt(D) S) for c <= r   (a GEMM with inner dimension S D)
 *   p[r][c] = 2^(z[r][c] - m_r) / l_r                             (row softmax, base 2)
 *   M[i][j] = sum_{r in block i, r < Rn} sum_{c in block j} p[r][c]  (f64 sums of f32 block sums)
 * where qs_r = q[rS+S-1], q[rS+S-2], ..., q[rS] (reversed) and ks_c = k[cS], ..., k[cS+S-1],
 * concatenated (zero rows past n), so qs_r . ks_c is the antidiagonal sum of an S x S tile of Q K^T.
 *
 * Layouts (byte offsets; head h uses qt + h * qHeadStride, kt + (h / group) * ktHeadStride), with
 * SDp = S D rounded up to 8 playing the head dimension of tile.ts:
 *   qt      [R4/4][SDp][4]              strided queries as query tiles (gatherQueries), R4 = R rounded up to 4
 *   kt      [Rp/BK][BK/8][SDp][8]       strided keys as key blocks (gatherKeys), Rp = R rounded up to BK
 *   masses  [heads][nb][nb] f32         every entry written (0 above the diagonal)
 * Tasks: (head, query block i). Scratch per thread: S tile [4][BK] f32, logit rows [4][Rp] f32,
 * block sums [nb] f64.
 */
import { BK, exp2, nextTask } from './common';
import { maskTile, qkTile } from './tile';

export function blockScores(
  thread: i32,
  counter: usize,
  qt: usize,
  qHeadStride: usize,
  kt: usize,
  ktHeadStride: usize,
  group: i32,
  heads: i32,
  Rn: i32,
  per: i32,
  nb: i32,
  SDp: i32,
  scale2: f32,
  masses: usize,
  scratch: usize,
  scratchStride: usize,
): void {
  const Rp = (nb * per + BK - 1) / BK * BK;
  const rowBytes = <usize>Rp << 2;
  const s = scratch + <usize>thread * scratchStride;
  const rows = s + <usize>(4 * BK * 4);
  const acc = rows + 4 * rowBytes;
  const tileBytes = <usize>SDp << 4;
  const blockBytes = <usize>SDp * <usize>(BK * 4);
  const tasks = heads * nb;
  for (let t = nextTask(counter); t < tasks; t = nextTask(counter)) {
    const h = t / nb;
    const i = t % nb;
    const qh = qt + <usize>h * qHeadStride;
    const kh = kt + <usize>(h / group) * ktHeadStride;
    memory.fill(acc, 0, <usize>nb << 3);
    const r0 = i * per;
    const r1 = min(r0 + per, Rn);
    for (let row0 = r0 & ~3; row0 < r1; row0 += 4) {
      // Logits of strided rows row0..row0+3 against the strided keys c <= row0 + 3 (-inf where c > r).
      let cols = 0;
      for (let k0 = 0; k0 <= row0 + 3; k0 += BK) {
        const nk = min(BK, (row0 + 4 - k0 + 7) & ~7);
        qkTile(qh + <usize>(row0 >> 2) * tileBytes, kh + <usize>(k0 / BK) * blockBytes, SDp, nk, scale2, s);
        if (k0 + nk - 1 > row0) maskTile(s, nk, row0, k0);
        for (let r = 0; r < 4; r++) memory.copy(rows + <usize>r * rowBytes + (<usize>k0 << 2), s + <usize>(r * BK * 4), <usize>nk << 2);
        cols = k0 + nk;
      }
      for (let r = 0; r < 4; r++) {
        if (row0 + r < r0 || row0 + r >= r1) continue;
        addRowMasses(rows + <usize>r * rowBytes, cols, row0 + r, per, acc);
      }
    }
    const out = masses + (<usize>(t * nb) << 2);
    for (let j = 0; j < nb; j++) store<f32>(out + (<usize>j << 2), <f32>load<f64>(acc + (<usize>j << 3)));
  }
}

/**
 * One strided row's softmax over its logits z[0..cols) (-inf past column r), added to the block
 * sums: acc[j] += sum_{c in block j, c <= r} 2^(z[c] - m) / l. The probabilities overwrite z.
 */
function addRowMasses(z: usize, cols: i32, r: i32, per: i32, acc: usize): void {
  const end = <usize>cols << 2;
  let mx = f32x4.splat(-Infinity);
  for (let c: usize = 0; c < end; c += 16) mx = f32x4.pmax(mx, v128.load(z + c));
  let m = max(max(f32x4.extract_lane(mx, 0), f32x4.extract_lane(mx, 1)), max(f32x4.extract_lane(mx, 2), f32x4.extract_lane(mx, 3)));
  const mv = f32x4.splat(m);
  let sum = f32x4.splat(0);
  for (let c: usize = 0; c < end; c += 16) {
    const e = exp2(f32x4.sub(v128.load(z + c), mv));
    v128.store(z + c, e);
    sum = f32x4.add(sum, e);
  }
  const l: f64 = <f64>f32x4.extract_lane(sum, 0) + <f64>f32x4.extract_lane(sum, 1) + <f64>f32x4.extract_lane(sum, 2) + <f64>f32x4.extract_lane(sum, 3);
  const inv: f64 = 1 / l;
  for (let j = 0; j * per <= r; j++) {
    let b: f32 = 0;
    const cEnd = min((j + 1) * per, r + 1);
    for (let c = j * per; c < cEnd; c++) b += load<f32>(z + (<usize>c << 2));
    const a = acc + (<usize>j << 3);
    store<f64>(a, load<f64>(a) + <f64>b * inv);
  }
}
