/**
 * attendBlocks: XAttention's block-sparse causal attention, the FlashAttention sweep of attend.ts
 * over a per-(head, query block) list of key blocks (CSR) instead of every causal block:
 *
 *   out[i][d] = sum_{j <= i, block(j) in list(h, block(i))} p_ij v_j[d],  p_ij = softmax_j(q_i . k_j / sqrt(D))
 *
 * Layouts as attend.ts (q tiles per head, kt key panels and v rows per KV head, h / group), plus
 *   rowStart [heads * nb + 1] i32   CSR offsets: list of (h, b) is blocks[rowStart[h nb + b] ..]
 *   blocks   i32                    key block indices, the diagonal block b first (every row sees
 *                                   a key in its first chunk), then the others in any order
 * B (block size) is a multiple of 16, so every run of 8 keys lies in one block and the key panels
 * of consecutive packed blocks read as one [n/8][Dp][8] array. Tasks: (head, query tile of T rows),
 * T = the host's tile height (a multiple of 4 dividing B, at most BQ), so a tile lies in one block
 * and shares its list. Scratch per thread as attend.ts.
 */
import { BK, BQ, nextTask } from './common';
import { keyChunk, startTile, writeRows } from './attend';

export function attendBlocks(
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
  B: i32,
  T: i32,
  rowStart: usize,
  blockList: usize,
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
  const panelBytes = rowBytes << 3;
  const nb = (n + B - 1) / B;
  const tiles = (n + T - 1) / T;
  const tasks = tiles * heads;
  for (let t = nextTask(counter); t < tasks; t = nextTask(counter)) {
    const h = t / tiles;
    const q0 = (tiles - 1 - t % tiles) * T;
    const qh = q + <usize>h * qHeadStride;
    const kh = kt + <usize>(h / group) * ktHeadStride;
    const vh = v + <usize>(h / group) * vHeadStride;
    const rowsEnd = min(q0 + T, n);
    const tileRows = (rowsEnd - q0 + 3) & ~3;
    startTile(o, m, l, tileRows, rowBytes);
    const list = h * nb + q0 / B;
    const end = load<i32>(rowStart + (<usize>(list + 1) << 2));
    for (let e = load<i32>(rowStart + (<usize>list << 2)); e < end; e++) {
      const b = load<i32>(blockList + (<usize>e << 2));
      const blockEnd = min((b + 1) * B, rowsEnd);
      for (let k0 = b * B; k0 < blockEnd; k0 += BK) {
        const ktb = kh + <usize>(k0 >> 3) * panelBytes;
        keyChunk(qh, ktb, vh + <usize>k0 * rowBytes, q0, tileRows, k0, min(BK, (b + 1) * B - k0), Dp, scale2, s, m, l, alpha, o);
      }
    }
    writeRows(o, l, q0, rowsEnd, Dp, D, out + <usize>h * outHeadStride, outRowStride);
  }
}
