/**
 * budget: the count c of the keep-count rule (single-threaded; the host turns it into a Budget):
 *   g_t = (sum_h pooled[h][t]) / H;  g <- g / (sum_t g_t + 1e-8);  sort g ascending;
 *   c = #{t : cumsum_t < tau}  (stopping at the first cumsum >= tau)
 * all in f64 with the reference's order of operations, so c equals the reference's exactly
 * (golden case d lands 8e-7 from tau). Sorting: LSD radix sort on the f64 bit patterns (the values
 * are >= +0, so their bits sort like the values), 8 passes of 8 bits, skipping passes where every
 * value has the same digit.
 * Layouts: pooled [heads][P] f32; g, tmp [P] f64 scratch; hist [256] i32 scratch.
 */
export function budget(pooled: usize, heads: i32, P: i32, tau: f64, g: usize, tmp: usize, hist: usize): i32 {
  memory.fill(g, 0, <usize>P << 3);
  for (let h = 0; h < heads; h++) {
    const row = pooled + (<usize>(h * P) << 2);
    for (let t = 0; t < P; t++) {
      const p = g + (<usize>t << 3);
      store<f64>(p, load<f64>(p) + <f64>load<f32>(row + (<usize>t << 2)));
    }
  }
  let total: f64 = 0;
  for (let t = 0; t < P; t++) {
    const p = g + (<usize>t << 3);
    const x = load<f64>(p) / <f64>heads;
    store<f64>(p, x);
    total += x;
  }
  const denom = total + 1e-8;
  const sorted = radixSort(g, tmp, P, hist);
  let cum: f64 = 0;
  let c = 0;
  for (let t = 0; t < P; t++) {
    cum += load<f64>(sorted + (<usize>t << 3)) / denom;
    if (!(cum < tau)) break;
    c++;
  }
  return c;
}

/** Sorts P non-negative f64 at a (tmp is as large), returns where the sorted values ended up. */
function radixSort(a: usize, tmp: usize, P: i32, hist: usize): usize {
  let src = a;
  let dst = tmp;
  for (let shift: u64 = 0; shift < 64; shift += 8) {
    memory.fill(hist, 0, 256 * 4);
    for (let t = 0; t < P; t++) {
      const digit = <usize>((load<u64>(src + (<usize>t << 3)) >> shift) & 255);
      store<i32>(hist + (digit << 2), load<i32>(hist + (digit << 2)) + 1);
    }
    let start = 0;
    let single = false;
    for (let d: usize = 0; d < 256; d++) {
      const n = load<i32>(hist + (d << 2));
      if (n == P) single = true;
      store<i32>(hist + (d << 2), start);
      start += n;
    }
    if (single) continue; // every value has this digit: the order is unchanged
    for (let t = 0; t < P; t++) {
      const x = load<u64>(src + (<usize>t << 3));
      const digit = <usize>((x >> shift) & 255);
      const at = load<i32>(hist + (digit << 2));
      store<i32>(hist + (digit << 2), at + 1);
      store<u64>(dst + (<usize>at << 3), x);
    }
    const swap = src;
    src = dst;
    dst = swap;
  }
  return src;
}
