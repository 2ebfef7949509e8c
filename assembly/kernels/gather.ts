/**
 * gather: copies the rows an attention pass needs into the layouts its tiles read (tile.ts).
 * Row r of head h is source row idx[h][r] (the kept positions, for token-sparse attention) or r
 * itself when idx is 0 (dense attention and scoring, which only repack). Source head of h: h / group.
 *   src   [srcHeads][srcRows][Dp]   f32 rows (Dp = D rounded up to 8, zero columns past D)
 *   idx   [heads][n] i32            ascending positions, or 0
 * Rows past n are zero in every output.
 */
import { BK, nextTask } from './common';
import { transpose4 } from './tile';

/** Source row of compact row r (idx = 0: r itself). */
// @ts-ignore: decorator
@inline function sourceRow(ih: usize, idx: usize, r: i32): usize {
  return <usize>(idx ? load<i32>(ih + (<usize>r << 2)) : r);
}

/**
 * Rows r..r+3 transposed into out[d][j] (pitch bytes per d): transpose4 when all 4 exist,
 * else element by element with zeros for rows >= n.
 */
function gather4(sh: usize, ih: usize, idx: usize, r: i32, n: i32, Dp: i32, out: usize, pitch: usize): void {
  const rowBytes = <usize>Dp << 2;
  if (r + 3 < n) {
    const p0 = sh + sourceRow(ih, idx, r) * rowBytes;
    const p1 = sh + sourceRow(ih, idx, r + 1) * rowBytes;
    const p2 = sh + sourceRow(ih, idx, r + 2) * rowBytes;
    const p3 = sh + sourceRow(ih, idx, r + 3) * rowBytes;
    transpose4(p0, p1, p2, p3, Dp, out, pitch);
    return;
  }
  for (let j = 0; j < 4; j++) {
    const p = r + j < n ? sh + sourceRow(ih, idx, r + j) * rowBytes : 0;
    for (let d: usize = 0; d < <usize>Dp; d++) {
      store<f32>(out + d * pitch + (<usize>j << 2), p ? load<f32>(p + (d << 2)) : 0);
    }
  }
}

/**
 * gatherKeys: key rows into blocks of BK keys in transposed panels of 8 (tile.ts),
 * dst[h][b][g][d][j] = row(b*BK + 8g + j)[d], so a Q K^T tile reads 8 consecutive keys of one
 * dimension as two vectors, walking its panel sequentially. Tasks: (head, key block).
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
      const panel = db + <usize>(c >> 3) * (rowBytes << 3);
      gather4(sh, ih, idx, b * BK + c, n, Dp, panel + (<usize>(c & 7) << 2), 32);
    }
  }
}

/**
 * gatherQueries: query rows into tiles of 4 rows interleaved (tile.ts), dst[h][r/4][d][r%4] =
 * row(r)[d] for r < rows (a multiple of 4). Tasks: one per head.
 */
export function gatherQueries(
  thread: i32,
  counter: usize,
  src: usize,
  srcHeadStride: usize,
  idx: usize,
  heads: i32,
  n: i32,
  rows: i32,
  Dp: i32,
  dst: usize,
  dstHeadStride: usize,
): void {
  const tileBytes = <usize>Dp << 4;
  for (let h = nextTask(counter); h < heads; h = nextTask(counter)) {
    const sh = src + <usize>h * srcHeadStride;
    const ih = idx + (<usize>(h * n) << 2);
    const dh = dst + <usize>h * dstHeadStride;
    for (let r = 0; r < rows; r += 4) gather4(sh, ih, idx, r, n, Dp, dh + <usize>(r >> 2) * tileBytes, 16);
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
    for (let r = 0; r < n; r++) memory.copy(dh + <usize>r * rowBytes, sh + sourceRow(ih, idx, r) * rowBytes, rowBytes);
    memory.fill(dh + <usize>n * rowBytes, 0, <usize>(rows - n) * rowBytes);
  }
}
