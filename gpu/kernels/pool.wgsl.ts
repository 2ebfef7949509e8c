/**
 * pool: average pooling of each head's scores along tokens, kernel K (odd),
 * stride 1, zero padding (K-1)/2 on both sides, divisor always K
 * (count_include_pad): out[h][t] = (1/K) sum_{u=max(0,t-r)}^{min(P-1,t+r)} in[h][u].
 * Layout: [head][P] f32 in and out; one thread per (t, head).
 */
import { read, write, type Kernel } from './kernel.js';

export const POOL: Kernel<'scores' | 'pooled'> = {
  name: 'pool',
  key: 'pool',
  params: [
    ['P', 'u32'],
    ['radius', 'u32'],
    ['inBase', 'u32'],
    ['outBase', 'u32'],
    ['headStride', 'u32'],
    ['kernel', 'f32'],
  ],
  bindings: [read('scores'), write('pooled')],
  workgroupSize: 256,
  source: () => `
@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let t = gid.x;
  if (t >= p.P) { return; }
  let row = gid.y * p.headStride;
  var lo = 0u;
  if (t >= p.radius) { lo = t - p.radius; }
  let hi = min(p.P - 1u, t + p.radius);
  var s = 0.0;
  for (var u = lo; u <= hi; u = u + 1u) { s = s + scores[p.inBase + row + u]; }
  pooled[p.outBase + row + t] = s / p.kernel;
}
`,
};
