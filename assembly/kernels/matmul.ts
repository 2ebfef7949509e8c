/**
 * matmul: C = A B^T in f32, for A [m][k] row-major and B given by its n rows of k (a weight
 * matrix stored (out, in), y = W x, is such a B):
 *   C[i][j] = sum_kk A[i][kk] * B[j][kk]   (kk ascending, one multiply-add per step)
 * Layouts (byte offsets, f32):
 *   a   [m][k]                row-major
 *   bp  [ceil(n / 8)][k][8]   B in panels of 8 rows, transposed: bp[p][kk][c] = B[8p + c][kk],
 *                             zero rows past n (packed by the host, assembly/matmul.ts)
 *   c   [m][n]                row-major
 * Register tile: 4 rows x 8 columns in 8 f32x4 accumulators; each B vector loaded serves 4 rows,
 * each A value (splat) 8 columns. A last partial panel is written through a per-thread scratch
 * tile [4][8] (scratch + thread * 128). Tasks: blocks of MATMUL_ROWS rows, each over all panels.
 */
import { madd, nextTask } from './common';

/** Rows of A per task. */
export const MATMUL_ROWS: i32 = 16;

export function matmul(thread: i32, counter: usize, a: usize, bp: usize, m: i32, k: i32, n: i32, c: usize, scratch: usize): void {
  const tile = scratch + (<usize>thread << 7);
  const panels = (n + 7) >> 3;
  const blocks = (m + MATMUL_ROWS - 1) / MATMUL_ROWS;
  const rowBytes = <usize>k << 2;
  const cRowBytes = <usize>n << 2;
  for (let t = nextTask(counter); t < blocks; t = nextTask(counter)) {
    const r0 = t * MATMUL_ROWS;
    const r1 = min(m, r0 + MATMUL_ROWS);
    for (let p = 0; p < panels; p++) {
      const panel = bp + <usize>p * (rowBytes << 3);
      const cols = min(8, n - (p << 3));
      for (let r = r0; r < r1; r += 4) {
        const rows = min(4, r1 - r);
        const ar = a + <usize>r * rowBytes;
        const cr = c + <usize>r * cRowBytes + (<usize>p << 5);
        if (rows === 4 && cols === 8) {
          tile4x8(ar, rowBytes, rows, panel, rowBytes, cr, cRowBytes);
        } else {
          tile4x8(ar, rowBytes, rows, panel, rowBytes, tile, 32);
          copyTile(tile, rows, cols, cr, cRowBytes);
        }
      }
    }
  }
}

/**
 * out[r][0..8) = sum_kk A[r][kk] * panel[kk][0..8) for r < rows (rows <= 4; missing rows repeat
 * row 0, their results are discarded), kBytes = 4k; out rows outStride bytes apart.
 */
// @ts-ignore: decorator
@inline function tile4x8(a: usize, rowBytes: usize, rows: i32, panel: usize, kBytes: usize, out: usize, outStride: usize): void {
  const a1 = rows > 1 ? a + rowBytes : a;
  const a2 = rows > 2 ? a + 2 * rowBytes : a;
  const a3 = rows > 3 ? a + 3 * rowBytes : a;
  let c00 = f32x4.splat(0);
  let c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00, c30 = c00, c31 = c00;
  let b = panel;
  for (let kk: usize = 0; kk < kBytes; kk += 4) {
    const b0 = v128.load(b);
    const b1 = v128.load(b, 16);
    let x = v128.load32_splat(a + kk);
    c00 = madd(x, b0, c00);
    c01 = madd(x, b1, c01);
    x = v128.load32_splat(a1 + kk);
    c10 = madd(x, b0, c10);
    c11 = madd(x, b1, c11);
    x = v128.load32_splat(a2 + kk);
    c20 = madd(x, b0, c20);
    c21 = madd(x, b1, c21);
    x = v128.load32_splat(a3 + kk);
    c30 = madd(x, b0, c30);
    c31 = madd(x, b1, c31);
    b += 32;
  }
  v128.store(out, c00);
  v128.store(out, c01, 16);
  if (rows < 2) return;
  v128.store(out + outStride, c10);
  v128.store(out + outStride, c11, 16);
  if (rows < 3) return;
  v128.store(out + 2 * outStride, c20);
  v128.store(out + 2 * outStride, c21, 16);
  if (rows < 4) return;
  v128.store(out + 3 * outStride, c30);
  v128.store(out + 3 * outStride, c31, 16);
}

/** Copies the first `cols` columns of `rows` rows of a [4][8] tile to out (rows outStride bytes apart). */
function copyTile(tile: usize, rows: i32, cols: i32, out: usize, outStride: usize): void {
  for (let r = 0; r < rows; r++) {
    for (let j = 0; j < cols; j++) store<f32>(out + <usize>r * outStride + (<usize>j << 2), load<f32>(tile + (<usize>(r * 8 + j) << 2)));
  }
}
