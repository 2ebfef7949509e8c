/**
 * The reference stages: TSA-SPEC.md written as plain TypeScript, float64
 * accumulation throughout, deterministic ties (the lower position wins).
 * Layouts are those of harness/core/interface.ts.
 */
import type { AttentionInput, Budget, ResolvedTsaOptions, ScoreShape } from '../harness/core/interface.js';
import { checkpoint } from '../harness/core/errors.js';
import { budgetFromCount } from '../harness/core/rules.js';

/** Dot product of two f32 rows in f64: a[ao..ao+D) . b[bo..bo+D). */
function dot(a: Float32Array, ao: number, b: Float32Array, bo: number, D: number): number {
  let s = 0;
  for (let d = 0; d < D; d++) s += a[ao + d]! * b[bo + d]!;
  return s;
}

/**
 * score: a[h][t] = (1/W) sum_{i=L-W}^{L-1} exp(s_it - m_i) / l_i for prefix keys t < L-W,
 * where s_ij = q_i . k_j / sqrt(D), and m_i, l_i are query i's softmax max and sum over
 * keys j <= i (every prefix key is visible to every window query). Output [H][L-W].
 * Cancellable between heads (o.signal).
 */
export async function score(input: AttentionInput, o: ResolvedTsaOptions): Promise<Float32Array> {
  const { heads: H, kvHeads: Hkv, headDim: D, seqLen: L, q, k } = input;
  const W = o.window;
  const P = L - W;
  const group = H / Hkv;
  const scale = 1 / Math.sqrt(D);
  const out = new Float32Array(H * P);
  const s = new Float64Array(L); // logits of one window query
  const acc = new Float64Array(P);
  for (let h = 0; h < H; h++) {
    await checkpoint(o.signal);
    const kBase = Math.floor(h / group) * L * D;
    acc.fill(0);
    for (let i = P; i < L; i++) {
      const qo = (h * L + i) * D;
      let m = -Infinity;
      for (let j = 0; j <= i; j++) {
        const x = dot(q, qo, k, kBase + j * D, D) * scale;
        s[j] = x;
        if (x > m) m = x;
      }
      let l = 0;
      for (let j = 0; j <= i; j++) l += Math.exp(s[j]! - m);
      const inv = 1 / l;
      for (let t = 0; t < P; t++) acc[t]! += Math.exp(s[t]! - m) * inv;
    }
    for (let t = 0; t < P; t++) out[h * P + t] = acc[t]! / W;
  }
  return out;
}

/**
 * pool: avg_pool1d with kernel K (odd), stride 1, zero padding K/2 on both sides, divisor
 * always K (padding counts). Per head, [H][P] -> [H][P].
 */
export function pool(scores: Float32Array, shape: ScoreShape, o: ResolvedTsaOptions): Float32Array {
  const { heads: H, prefixLen: P } = shape;
  const K = o.poolKernel;
  const r = (K - 1) / 2;
  const out = new Float32Array(H * P);
  for (let h = 0; h < H; h++) {
    const row = h * P;
    for (let t = 0; t < P; t++) {
      let s = 0;
      for (let u = Math.max(0, t - r); u <= Math.min(P - 1, t + r); u++) s += scores[row + u]!;
      out[row + t] = s / K;
    }
  }
  return out;
}

/**
 * budget: g_t = mean_h pooled[h][t], normalised to sum 1 (+1e-8); sort ascending; c = number of
 * cumulative sums < tau (float64). c == 0 -> dense; else keep = max(minTokens, P - (c + 1)).
 */
export function budget(pooled: Float32Array, shape: ScoreShape, o: ResolvedTsaOptions): Budget {
  const { heads: H, prefixLen: P } = shape;
  const g = new Float64Array(P);
  for (let h = 0; h < H; h++) for (let t = 0; t < P; t++) g[t]! += pooled[h * P + t]!;
  let total = 0;
  for (let t = 0; t < P; t++) {
    g[t]! /= H;
    total += g[t]!;
  }
  const denom = total + 1e-8;
  g.sort();
  let cum = 0;
  let c = 0;
  for (let t = 0; t < P; t++) {
    cum += g[t]! / denom;
    if (cum < o.coverage) c++;
    else break;
  }
  return budgetFromCount(c, P, o);
}

/**
 * select: per head, the `keep` prefix positions with the largest pooled score (the per-head
 * normalisation is a positive scale, so the order is the same), ties to the lower position;
 * then the window P..P+W-1; ascending. Output [H][keep + W].
 */
export function select(pooled: Float32Array, shape: ScoreShape, keep: number, o: ResolvedTsaOptions): Int32Array {
  const { heads: H, prefixLen: P } = shape;
  const W = o.window;
  const Lc = keep + W;
  const out = new Int32Array(H * Lc);
  const order = new Int32Array(P);
  for (let h = 0; h < H; h++) {
    const row = h * P;
    for (let t = 0; t < P; t++) order[t] = t;
    order.sort((a, b) => pooled[row + b]! - pooled[row + a]! || a - b);
    const kept = order.slice(0, keep).sort();
    out.set(kept, h * Lc);
    for (let w = 0; w < W; w++) out[h * Lc + keep + w] = P + w;
  }
  return out;
}

/** gather: rows `idx` of a [L][D] matrix starting at `base`, into a compact f64 [idx.length][D]. */
export function gather(src: Float32Array, base: number, idx: Int32Array, D: number): Float64Array {
  const out = new Float64Array(idx.length * D);
  for (let r = 0; r < idx.length; r++) {
    const so = base + idx[r]! * D;
    for (let d = 0; d < D; d++) out[r * D + d] = src[so + d]!;
  }
  return out;
}

/**
 * attend: causal softmax attention on compact rows, f64: out[a] = sum_{b<=a} p_ab v[b],
 * p_ab = softmax_b(q[a] . k[b] / sqrt(D)). Inputs and output are [n][D].
 */
export function attend(qc: Float64Array, kc: Float64Array, vc: Float64Array, n: number, D: number): Float64Array {
  const scale = 1 / Math.sqrt(D);
  const out = new Float64Array(n * D);
  const s = new Float64Array(n);
  const acc = new Float64Array(D);
  for (let a = 0; a < n; a++) {
    let m = -Infinity;
    for (let b = 0; b <= a; b++) {
      let x = 0;
      for (let d = 0; d < D; d++) x += qc[a * D + d]! * kc[b * D + d]!;
      x *= scale;
      s[b] = x;
      if (x > m) m = x;
    }
    acc.fill(0);
    let l = 0;
    for (let b = 0; b <= a; b++) {
      const p = Math.exp(s[b]! - m);
      l += p;
      for (let d = 0; d < D; d++) acc[d]! += p * vc[b * D + d]!;
    }
    for (let d = 0; d < D; d++) out[a * D + d] = acc[d]! / l;
  }
  return out;
}

/** scatter: compact head output [n][D] to rows idx of output [L][H*D], columns h*D..h*D+D. */
export function scatter(out: Float32Array, head: number, H: number, D: number, idx: Int32Array, oc: Float64Array): void {
  for (let r = 0; r < idx.length; r++) {
    const o = idx[r]! * H * D + head * D;
    for (let d = 0; d < D; d++) out[o + d] = oc[r * D + d]!;
  }
}

/** gather + attend + scatter for every head; rows not in a head's set stay 0. Cancellable between heads. */
export async function attendSelected(input: AttentionInput, indices: Int32Array, keptLength: number, o: ResolvedTsaOptions): Promise<Float32Array> {
  const { heads: H, kvHeads: Hkv, headDim: D, seqLen: L } = input;
  const group = H / Hkv;
  const out = new Float32Array(L * H * D);
  for (let h = 0; h < H; h++) {
    await checkpoint(o.signal);
    const idx = indices.subarray(h * keptLength, (h + 1) * keptLength);
    const kvBase = Math.floor(h / group) * L * D;
    const qc = gather(input.q, h * L * D, idx, D);
    const kc = gather(input.k, kvBase, idx, D);
    const vc = gather(input.v, kvBase, idx, D);
    scatter(out, h, H, D, idx, attend(qc, kc, vc, keptLength, D));
  }
  return out;
}

/** Dense causal attention: every head keeps every position. */
export function dense(input: AttentionInput, o: ResolvedTsaOptions): Promise<Float32Array> {
  const { heads: H, seqLen: L } = input;
  const all = new Int32Array(H * L);
  for (let h = 0; h < H; h++) for (let t = 0; t < L; t++) all[h * L + t] = t;
  return attendSelected(input, all, L, o);
}
