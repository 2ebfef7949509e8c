/**
 * blockSelect: XAttention's mask rule as the authors' code behaves (../shared/golden-xattn/README.md),
 * per head and query block i over the causal key blocks j <= i of masses M [heads][nb][nb] f32:
 *   the diagonal i is selected; R = T * sum_j M[i][j] (f64);
 *   the other blocks by descending mass o_0, o_1, ... (a stable merge sort: ties keep the lower index
 *   first): o_0 always, o_k (k >= 1) iff M[i][i] + M[o_0] + ... + M[o_{k-2}] < R (f64), stopping at
 *   the first that is not (the running sum lags one block); block 0 always.
 * Output mask [heads][nb][nb] u8, every entry written (1 = selected). Tasks: (head, query block).
 * Scratch per thread: two index arrays [nb] i32.
 */
import { nextTask } from './common';

export function blockSelect(
  thread: i32,
  counter: usize,
  masses: usize,
  heads: i32,
  nb: i32,
  threshold: f64,
  mask: usize,
  scratch: usize,
  scratchStride: usize,
): void {
  const order = scratch + <usize>thread * scratchStride;
  const tmp = order + (<usize>nb << 2);
  const tasks = heads * nb;
  for (let t = nextTask(counter); t < tasks; t = nextTask(counter)) {
    const i = t % nb;
    const row = masses + (<usize>(t * nb) << 2);
    const out = mask + <usize>(t * nb);
    let total: f64 = 0;
    for (let j = 0; j < nb; j++) total += <f64>load<f32>(row + (<usize>j << 2));
    const limit = threshold * total;
    memory.fill(out, 0, <usize>nb);
    store<u8>(out + <usize>i, 1);
    store<u8>(out, 1);
    for (let j = 0; j < i; j++) store<i32>(order + (<usize>j << 2), j);
    const sorted = sortByMassDescending(row, order, tmp, i);
    let sum: f64 = <f64>load<f32>(row + (<usize>i << 2));
    for (let k = 0; k < i; k++) {
      if (k >= 1) {
        if (!(sum < limit)) break;
        sum += <f64>load<f32>(row + (<usize>load<i32>(sorted + (<usize>(k - 1) << 2)) << 2));
      }
      store<u8>(out + <usize>load<i32>(sorted + (<usize>k << 2)), 1);
    }
  }
}

/**
 * Stable bottom-up merge sort of the n block indices at `a` by descending mass row[j] (equal masses
 * keep their order); `b` is a buffer of n. Returns the buffer holding the result.
 */
function sortByMassDescending(row: usize, a: usize, b: usize, n: i32): usize {
  for (let width = 1; width < n; width <<= 1) {
    for (let lo = 0; lo < n; lo += 2 * width) {
      const mid = min(lo + width, n);
      const hi = min(lo + 2 * width, n);
      let x = lo;
      let y = mid;
      for (let k = lo; k < hi; k++) {
        let takeX = y >= hi;
        if (!takeX && x < mid) {
          const jx = load<i32>(a + (<usize>x << 2));
          const jy = load<i32>(a + (<usize>y << 2));
          takeX = load<f32>(row + (<usize>jx << 2)) >= load<f32>(row + (<usize>jy << 2));
        }
        store<i32>(b + (<usize>k << 2), load<i32>(a + (<usize>(takeX ? x++ : y++) << 2)));
      }
    }
    const swap = a;
    a = b;
    b = swap;
  }
  return a;
}
