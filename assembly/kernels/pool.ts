/**
 * pool: average pooling along tokens, per head (PyTorch avg_pool1d, count_include_pad):
 *   out[h][t] = (1/K) sum_{u = t-K/2}^{t+K/2} src[h][u]   (u outside [0, P) counts as 0),
 * summed in f64 in ascending u and rounded once, exactly as the reference does.
 * Layouts: src, out [heads][P] f32. Tasks: one per head.
 */
import { nextTask } from './common';

export function pool(thread: i32, counter: usize, src: usize, heads: i32, P: i32, K: i32, out: usize): void {
  const radius = K >> 1;
  for (let h = nextTask(counter); h < heads; h = nextTask(counter)) {
    const row = src + (<usize>(h * P) << 2);
    const dst = out + (<usize>(h * P) << 2);
    for (let t = 0; t < P; t++) {
      let sum: f64 = 0;
      const end = min(P - 1, t + radius);
      for (let u = max(0, t - radius); u <= end; u++) sum += <f64>load<f32>(row + (<usize>u << 2));
      store<f32>(dst + (<usize>t << 2), <f32>(sum / <f64>K));
    }
  }
}
