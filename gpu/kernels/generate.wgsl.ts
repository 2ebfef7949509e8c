/**
 * generate: seeded input tensors written on the device, with the distribution
 * of harness/core/generators.ts (the same parameters, STRUCTURED, and the
 * same formulas; GPU random numbers, so not the same bits).
 *
 *   x[h][t][d] = n(h, t, d) + lift
 *   tensor q, structured: lift = beta_j sqrt(D) u_g[d]   (g = h / group, j = h % group)
 *   tensor k, structured: lift = a_{h,t} u_h[d]          (a = sink at t = 0; heavyLift(U) at the
 *                         heavy positions, U < heavyShare, shared by every KV head; else 0)
 *   otherwise (v; q and k of gaussian inputs): lift = 0
 *   local (structured with heavy lifts from p.heavyMin, plus locality): q and k also gain
 *                         c (R(t) w)[d], R the RoPE rotation of pair (2i, 2i+1) by t theta_i
 * n ~ N(0, 1) by Box-Muller from a counter-based hash of (element, tensor, seed).
 * Layout: [head][L][D] f32; this dispatch writes heads head0 .. head0 + grid.y - 1
 * of `x`, bound as a window starting at head0; `dir` holds u_g, [Hkv][D] f32, then (local)
 * c w [D] and theta_i = 10000^(-2i/D) [ceil(D/2)].
 */
import { STRUCTURED } from '../../harness/core/generators.js';
import { DIVU_WGSL } from './divu.wgsl.js';
import { read, write, type Kernel } from './kernel.js';

/** A WGSL f32 literal. */
const f32 = (x: number): string => (Number.isInteger(x) ? `${x}.0` : `${x}`);

/** One workgroup of WG threads strides over a head's elements; grid.y is the heads of the dispatch. */
export const GENERATE: Kernel<'dir' | 'x'> = {
  name: 'generate',
  key: 'generate',
  params: [
    ['count', 'u32'], // L * D: elements per head
    ['L', 'u32'],
    ['D', 'u32'],
    ['group', 'u32'], // H / Hkv
    ['seed', 'u32'],
    ['tensor', 'u32'], // 0 q, 1 k, 2 v
    ['structured', 'u32'], // 1: structured or local
    ['head0', 'u32'],
    ['heavyMin', 'f32'],
    ['local', 'u32'], // 1: add the locality term; its table starts at dir[localAt]
    ['localAt', 'u32'],
  ],
  bindings: [read('dir'), write('x')],
  workgroupSize: 256,
  source: () => generateSource(),
};

function generateSource(): string {
  const S = STRUCTURED;
  return `${DIVU_WGSL}
fn hash(a: u32) -> u32 {
  let v = a * 747796405u + 2891336453u;
  let w = ((v >> ((v >> 28u) + 4u)) ^ v) * 277803737u;
  return (w >> 22u) ^ w;
}
// Uniform in (0, 1) of counter i in stream s.
fn unif(i: u32, s: u32) -> f32 { return (f32(hash(i ^ hash(s * 0x9e3779b9u + p.seed)) >> 8u) + 0.5) / 16777216.0; }
fn normal(i: u32) -> f32 {
  let r = sqrt(-2.0 * log(unif(i, 2u * p.tensor + 1u)));
  return r * cos(6.283185307 * unif(i, 2u * p.tensor + 2u));
}
fn heavyLift(u: f32) -> f32 { return min(${f32(S.heavyMax)}, p.heavyMin * pow(u, ${f32(-1 / S.heavyAlpha)})); }
/** c (R(t) w)[d]: the angle t theta_i reduced to [-pi, pi] first (sin and cos are accurate only there). */
fn locality(t: u32, d: u32) -> f32 {
  let i = d / 2u;
  let a = f32(t) * dir[p.localAt + p.D + i];
  let r = a - 6.28318530718 * floor(a / 6.28318530718 + 0.5);
  let x0 = dir[p.localAt + 2u * i];
  var x1 = 0.0;
  if (2u * i + 1u < p.D) { x1 = dir[p.localAt + 2u * i + 1u]; }
  if (d % 2u == 0u) { return x0 * cos(r) - x1 * sin(r); }
  return x0 * sin(r) + x1 * cos(r);
}
fn queryAlignment(j: u32) -> f32 {
  if (p.group == 1u) { return 1.0; }
  return 1.0 - ${f32(1 - S.betaMin)} * f32(j) / f32(p.group - 1u);
}

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) n: vec3<u32>) {
  let h = p.head0 + gid.y;
  let local = gid.y * p.count;
  for (var e = gid.x; e < p.count; e = e + n.x * WG) {
    let t = divu(e, p.D);
    let d = e - t * p.D;
    var val = normal(h * p.count + e);
    if (p.structured == 1u && p.tensor == 0u) {
      let g = divu(h, p.group);
      val = val + queryAlignment(h - g * p.group) * sqrt(f32(p.D)) * dir[g * p.D + d];
    } else if (p.structured == 1u && p.tensor == 1u) {
      var a = 0.0;
      if (t == 0u) { a = ${f32(S.sink)}; }
      else if (unif(t, 7u) < ${f32(S.heavyShare)}) { a = heavyLift(unif(h * p.L + t, 8u)); }
      val = val + a * dir[h * p.D + d];
    }
    if (p.local == 1u && p.tensor < 2u) { val = val + locality(t, d); }
    x[local + e] = val;
  }
}
`;
}
