/**
 * scatter: compact attention outputs back to their positions, zero rows for pruned positions:
 *   out[t][h] = oc[h][r] if idx[h][r] == t, else 0     (D floats each)
 * Layouts: oc [heads][n][D] f32; idx [heads][n] i32 ascending; out row t of head h at
 * out + h * outHeadStride + t * outRowStride. Tasks: one per head.
 */
import { nextTask } from './common';

export function scatter(
  thread: i32,
  counter: usize,
  oc: usize,
  idx: usize,
  heads: i32,
  n: i32,
  L: i32,
  D: i32,
  out: usize,
  outHeadStride: usize,
  outRowStride: usize,
): void {
  const rowBytes = <usize>D << 2;
  for (let h = nextTask(counter); h < heads; h = nextTask(counter)) {
    const ih = idx + (<usize>(h * n) << 2);
    const oh = oc + <usize>h * <usize>n * rowBytes;
    const dh = out + <usize>h * outHeadStride;
    let r = 0;
    for (let t = 0; t < L; t++) {
      const dst = dh + <usize>t * outRowStride;
      if (r < n && load<i32>(ih + (<usize>r << 2)) == t) {
        memory.copy(dst, oh + <usize>r * rowBytes, rowBytes);
        r++;
      } else {
        memory.fill(dst, 0, rowBytes);
      }
    }
  }
}
