/**
 * attend: causal softmax attention on `heads` heads of n rows each (the whole sequence for dense
 * attention, the compact kept rows for token-sparse), FlashAttention-style: per block of BQ query
 * rows, a sweep over key blocks with online softmax, so no n x n matrix exists. Key blocks wholly
 * after a query tile are skipped; only the diagonal block is masked.
 *
 *   out[i][d] = sum_{j <= i} p_ij v_j[d],  p_ij = softmax_j(q_i . k_j / sqrt(D))
 *
 * Layouts (byte offsets; head h uses q + h * qHeadStride, kt/v + (h / group) * kt/vHeadStride):
 *   q    [n rounded up to 4 / 4][Dp][4]   query tiles (see gather.ts), zero rows past n
 *   kt   [ceil(n / BK)][BK/8][Dp][8]        key blocks, transposed panels (see tile.ts, gather.ts)
 *   v    [rows >= n rounded up to BK][Dp]   zero rows past n
 *   out  row i of head h at out + h * outHeadStride + i * outRowStride, D floats
 * Tasks: (head, query block), per head the last query blocks (most keys) first, for causal load
 * balance; consecutive tasks share a head, so its keys and values stay in cache.
 * Scratch per thread: S tile [4][BK], m, l, alpha [BQ], O [BQ][Dp].
 */
import { BK, BQ, nextTask } from './common';
import { maskTile, pvTile, qkTile, softmaxTile } from './tile';

export function attend(
  thread: i32,
  counter: usize,
  q: usize,
  qHeadStride: usize,
  kt: usize,
  ktHeadStride: usize,
  v: usize,
  vHeadStride: usize,
  group: i32,
  heads: i32,
  n: i32,
  Dp: i32,
  D: i32,
  scale2: f32,
  out: usize,
  outHeadStride: usize,
  outRowStride: usize,
  scratch: usize,
  scratchStride: usize,
): void {
  const s = scratch + <usize>thread * scratchStride;
  const m = s + <usize>(4 * BK * 4);
  const l = m + <usize>(BQ * 4);
  const alpha = l + <usize>(BQ * 4);
  const o = alpha + <usize>(BQ * 4);
  const rowBytes = <usize>Dp << 2;
  const blockBytes = rowBytes * <usize>BK;
  const blocks = (n + BQ - 1) / BQ;
  const tasks = blocks * heads;
  for (let t = nextTask(counter); t < tasks; t = nextTask(counter)) {
    const h = t / blocks;
    const q0 = (blocks - 1 - t % blocks) * BQ;
    const qh = q + <usize>h * qHeadStride;
    const kh = kt + <usize>(h / group) * ktHeadStride;
    const vh = v + <usize>(h / group) * vHeadStride;
    const rowsEnd = min(q0 + BQ, n);
    const tileRows = (rowsEnd - q0 + 3) & ~3;
    startTile(o, m, l, tileRows, rowBytes);
    const lastBlock = (rowsEnd - 1) / BK;
    for (let kb = 0; kb <= lastBlock; kb++) {
      const k0 = kb * BK;
      const ktb = kh + <usize>kb * blockBytes;
      const vb = vh + <usize>k0 * rowBytes;
      keyChunk(qh, ktb, vb, q0, tileRows, k0, BK, Dp, scale2, s, m, l, alpha, o);
    }
    writeRows(o, l, q0, rowsEnd, Dp, D, out + <usize>h * outHeadStride, outRowStride);
  }
}

/** A query tile's running state before its sweep: O = 0, m = -inf, l = 0 for its rows. */
// @ts-ignore: decorator
@inline export function startTile(o: usize, m: usize, l: usize, tileRows: i32, rowBytes: usize): void {
  memory.fill(o, 0, <usize>tileRows * rowBytes);
  for (let i = 0; i < tileRows; i++) {
    store<f32>(m + (<usize>i << 2), -Infinity);
    store<f32>(l + (<usize>i << 2), 0);
  }
}

/**
 * One chunk of up to `width` keys k0.. (a multiple of 8; panels at ktb, value rows at vb) against the
 * query tile rows q0 .. q0 + tileRows: per 4 rows the logits, the causal mask where the chunk
 * reaches past a row, the online-softmax step and the P V update. Rows wholly before k0 skip it.
 */
// @ts-ignore: decorator
@inline export function keyChunk(
  qh: usize,
  ktb: usize,
  vb: usize,
  q0: i32,
  tileRows: i32,
  k0: i32,
  width: i32,
  Dp: i32,
  scale2: f32,
  s: usize,
  m: usize,
  l: usize,
  alpha: usize,
  o: usize,
): void {
  const rowBytes = <usize>Dp << 2;
  for (let r = 0; r < tileRows; r += 4) {
    const row0 = q0 + r;
    if (k0 > row0 + 3) continue; // every key of the chunk is after these 4 rows
    const nk = min(width, (row0 + 4 - k0 + 7) & ~7);
    qkTile(qh + <usize>row0 * rowBytes, ktb, Dp, nk, scale2, s);
    if (k0 + nk - 1 > row0) maskTile(s, nk, row0, k0);
    softmaxTile(s, nk, m + (<usize>r << 2), l + (<usize>r << 2), alpha);
    pvTile(s, vb, rowBytes, nk, Dp, o + <usize>r * rowBytes, alpha);
  }
}

/** out[i][d] = O[i - q0][d] / l[i - q0] for rows q0 <= i < rowsEnd, d < D (vector body, scalar tail). */
export function writeRows(o: usize, l: usize, q0: i32, rowsEnd: i32, Dp: i32, D: i32, out: usize, outRowStride: usize): void {
  const vecEnd = <usize>(D & ~3) << 2;
  const end = <usize>D << 2;
  for (let i = 0; i < rowsEnd - q0; i++) {
    const src = o + <usize>i * (<usize>Dp << 2);
    const dst = out + <usize>(q0 + i) * outRowStride;
    const inv: f32 = <f32>1 / load<f32>(l + (<usize>i << 2));
    const invv = f32x4.splat(inv);
    let d: usize = 0;
    for (; d < vecEnd; d += 16) v128.store(dst + d, f32x4.mul(v128.load(src + d), invv));
    for (; d < end; d += 4) store<f32>(dst + d, load<f32>(src + d) * inv);
  }
}
