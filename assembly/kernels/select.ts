/**
 * select: per head, the `keep` prefix positions with the largest pooled score, ties to the lower
 * position (as reference/stages.ts), then the window P .. P+W-1; ascending. No sort: a radix
 * select finds the keep-th largest value T (4 passes of 8 bits over the f32 bit patterns, which
 * order like the values since scores are >= 0; -0 counts as +0), then one pass in position order
 * keeps every value > T and the first (keep - #{> T}) values equal to T.
 * Layouts: pooled [heads][P] f32; out [heads][keep + W] i32. Tasks: one per head.
 * Scratch per thread: a 256-bin histogram.
 */
import { nextTask } from './common';

export function select(
  thread: i32,
  counter: usize,
  pooled: usize,
  heads: i32,
  P: i32,
  keep: i32,
  W: i32,
  out: usize,
  scratch: usize,
  scratchStride: usize,
): void {
  const hist = scratch + <usize>thread * scratchStride;
  for (let h = nextTask(counter); h < heads; h = nextTask(counter)) {
    const row = pooled + (<usize>(h * P) << 2);
    // Radix select from the top byte down: prefix holds the bytes of T found so far,
    // need is T's rank among the values that share the prefix.
    let prefix: u32 = 0;
    let need = keep;
    for (let shift: i32 = 24; shift >= 0; shift -= 8) {
      memory.fill(hist, 0, 256 * 4);
      const high: u32 = shift == 24 ? 0 : 0xffffffff << <u32>(shift + 8);
      for (let t = 0; t < P; t++) {
        const x = load<u32>(row + (<usize>t << 2)) & 0x7fffffff;
        if ((x & high) != prefix) continue;
        const digit = <usize>((x >> <u32>shift) & 255);
        store<i32>(hist + (digit << 2), load<i32>(hist + (digit << 2)) + 1);
      }
      let digit = 255;
      for (; digit > 0; digit--) {
        const n = load<i32>(hist + (<usize>digit << 2));
        if (n >= need) break;
        need -= n;
      }
      prefix |= <u32>digit << <u32>shift;
    }
    // prefix is T; `need` of the values equal to T are kept, the lowest positions first.
    const dst = out + (<usize>(h * (keep + W)) << 2);
    let k = 0;
    for (let t = 0; t < P; t++) {
      const x = load<u32>(row + (<usize>t << 2)) & 0x7fffffff;
      if (x > prefix || (x == prefix && need > 0)) {
        if (x == prefix) need--;
        store<i32>(dst + (<usize>k << 2), t);
        k++;
      }
    }
    for (let i = 0; i < W; i++) store<i32>(dst + (<usize>(keep + i) << 2), P + i);
  }
}
