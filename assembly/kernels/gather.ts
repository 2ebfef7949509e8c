/**
 * gather: copies the rows an attention pass needs into its own layouts. Row r of head h is source
 * row idx[h][r] (the kept positions, for token-sparse attention) or r itself when idx is 0 (dense
 * attention, where only the keys need repacking). Source head of h: h / group.
 *   src   [srcHeads][srcRows][Dp]   f32 rows (Dp = D rounded up to 8, zero columns past D)
 *   idx   [heads][n] i32            ascending positions, or 0
 */
import { BK, nextTask } from './common';
import { transpose4 } from './tile';

/**
 * gatherKeys: key rows into blocks of BK keys in transposed panels of 8 (tile.ts),
 * dst[h][b][g][d][j] = row(b*BK + 8g + j)[d], zero for rows >= n, so a Q K^T tile reads 8
 * consecutive keys of one dimension as two vectors, walking its panel sequentially.
 * Tasks: (head, key block); 4 keys at a time are transposed in registers (transpose4).
 */
export function gatherKeys(
  thread: i32,
  counter: usize,
  src: usize,
  srcHeadStride: usize,
  group: i32,
  idx: usize,
  heads: i32,
  n: i32,
  Dp: i32,
  dst: usize,
  dstHeadStride: usize,
): void {
  const rowBytes = <usize>Dp << 2;
  const blocks = (n + BK - 1) / BK;
  const tasks = heads * blocks;
  for (let t = nextTask(counter); t < tasks; t = nextTask(counter)) {
    const h = t / blocks;
    const b = t % blocks;
    const sh = src + <usize>(h / group) * srcHeadStride;
    const ih = idx + (<usize>(h * n) << 2);
    const db = dst + <usize>h * dstHeadStride + <usize>b * rowBytes * <usize>BK;
    for (let c = 0; c < BK; c += 4) {
      const r = b * BK + c;
      const out = db + <usize>(c >> 3) * (rowBytes << 3) + (<usize>(c & 7) << 2);
      if (r + 3 < n) {
        const p0 = sh + <usize>(idx ? load<i32>(ih + (<usize>r << 2)) : r) * rowBytes;
        const p1 = sh + <usize>(idx ? load<i32>(ih + (<usize>r << 2), 4) : r + 1) * rowBytes;
        const p2 = sh + <usize>(idx ? load<i32>(ih + (<usize>r << 2), 8) : r + 2) * rowBytes;
        const p3 = sh + <usize>(idx ? load<i32>(ih + (<usize>r << 2), 12) : r + 3) * rowBytes;
        transpose4(p0, p1, p2, p3, Dp, out, 32);
      } else {
        for (let j = 0; j < 4; j++) {
          const rj = r + j;
          const p = rj < n ? sh + <usize>(idx ? load<i32>(ih + (<usize>rj << 2)) : rj) * rowBytes : 0;
          for (let d: usize = 0; d < <usize>Dp; d++) {
            store<f32>(out + ((d * 8 + <usize>j) << 2), p ? load<f32>(p + (d << 2)) : 0);
          }
        }
      }
    }
  }
}

/**
 * gatherRows: dst[h][r] = row(r) for r < n, zero rows for n <= r < rows (the padding the
 * attention tiles read). Tasks: one per head.
 */
export function gatherRows(
  thread: i32,
  counter: usize,
  src: usize,
  srcHeadStride: usize,
  group: i32,
  idx: usize,
  heads: i32,
  n: i32,
  rows: i32,
  Dp: i32,
  dst: usize,
  dstHeadStride: usize,
): void {
  const rowBytes = <usize>Dp << 2;
  for (let h = nextTask(counter); h < heads; h = nextTask(counter)) {
    const sh = src + <usize>(h / group) * srcHeadStride;
    const ih = idx + (<usize>(h * n) << 2);
    const dh = dst + <usize>h * dstHeadStride;
    for (let r = 0; r < n; r++) {
      const from = idx ? load<i32>(ih + (<usize>r << 2)) : r;
      memory.copy(dh + <usize>r * rowBytes, sh + <usize>from * rowBytes, rowBytes);
    }
    memory.fill(dh + <usize>n * rowBytes, 0, <usize>(rows - n) * rowBytes);
  }
}
