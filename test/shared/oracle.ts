/**
 * An independent float64 oracle for the shared backend suite, written from
 * TSA-SPEC.md without reusing reference/stages.ts, so a property that compares
 * the reference backend with it is not the reference compared with itself.
 * Layouts are those of harness/core/interface.ts.
 */
import type { AttentionInput } from '../../harness/core/interface.js';

/** Row `r` of a [rows][D] f32 matrix starting at element `base`, as a view. */
function row(a: Float32Array, base: number, r: number, D: number): Float32Array {
  return a.subarray(base + r * D, base + (r + 1) * D);
}

function dotF64(a: Float32Array, b: Float32Array): number {
  let s = 0;
  for (let d = 0; d < a.length; d++) s += a[d]! * b[d]!;
  return s;
}

/** The KV head read by query head h: floor(h / (H / Hkv)). */
export function kvHeadOf(input: AttentionInput, h: number): number {
  return Math.floor((h * input.kvHeads) / input.heads);
}

/**
 * Causal softmax attention of query head `head` restricted to the kept positions `idx`
 * (ascending): row r attends kept keys idx[0..r]. Returns [idx.length][D] in f64.
 * Computed as softmax = exp(s - logsumexp(s)) over each row's visible logits.
 */
export function attentionF64(input: AttentionInput, head: number, idx: ArrayLike<number>): Float64Array {
  const { headDim: D, seqLen: L } = input;
  const qBase = head * L * D;
  const kvBase = kvHeadOf(input, head) * L * D;
  const n = idx.length;
  const out = new Float64Array(n * D);
  const logits = new Float64Array(n);
  const inv = 1 / Math.sqrt(D);
  for (let r = 0; r < n; r++) {
    const qi = row(input.q, qBase, idx[r]!, D);
    let max = -Infinity;
    for (let c = 0; c <= r; c++) {
      logits[c] = dotF64(qi, row(input.k, kvBase, idx[c]!, D)) * inv;
      max = Math.max(max, logits[c]!);
    }
    let sum = 0;
    for (let c = 0; c <= r; c++) sum += Math.exp(logits[c]! - max);
    const lse = max + Math.log(sum);
    for (let c = 0; c <= r; c++) {
      const p = Math.exp(logits[c]! - lse);
      const vc = row(input.v, kvBase, idx[c]!, D);
      for (let d = 0; d < D; d++) out[r * D + d]! += p * vc[d]!;
    }
  }
  return out;
}

/**
 * Importance scores [H][L-W] in f64: for each prefix key t, the mean over the window
 * queries i in [L-W, L) of softmax_i(t), where query i sees keys 0..i.
 */
export function scoresF64(input: AttentionInput, window: number): Float64Array {
  const { heads: H, headDim: D, seqLen: L } = input;
  const P = L - window;
  const out = new Float64Array(H * P);
  const inv = 1 / Math.sqrt(D);
  const logits = new Float64Array(L);
  for (let h = 0; h < H; h++) {
    const kvBase = kvHeadOf(input, h) * L * D;
    for (let i = P; i < L; i++) {
      const qi = row(input.q, h * L * D, i, D);
      let max = -Infinity;
      for (let j = 0; j <= i; j++) {
        logits[j] = dotF64(qi, row(input.k, kvBase, j, D)) * inv;
        max = Math.max(max, logits[j]!);
      }
      let sum = 0;
      for (let j = 0; j <= i; j++) sum += Math.exp(logits[j]! - max);
      for (let t = 0; t < P; t++) out[h * P + t]! += Math.exp(logits[t]! - max) / sum / window;
    }
  }
  return out;
}

/** Average pooling per head, kernel K (odd), zero padding (K-1)/2, divisor always K. */
export function poolF64(scores: ArrayLike<number>, heads: number, prefixLen: number, K: number): Float64Array {
  const out = new Float64Array(heads * prefixLen);
  const r = (K - 1) / 2;
  for (let h = 0; h < heads; h++) {
    for (let t = 0; t < prefixLen; t++) {
      let s = 0;
      // Positions outside [0, prefixLen) are zero padding: only the inside is summed.
      for (let u = Math.max(0, t - r); u <= Math.min(prefixLen - 1, t + r); u++) s += scores[h * prefixLen + u]!;
      out[h * prefixLen + t] = s / K;
    }
  }
  return out;
}

/**
 * The layer distribution of the count rule: g_t = mean_h pooled[h][t], normalised by
 * (sum_t g_t + 1e-8), sorted ascending; returns cum[k] = sum of the k smallest (cum[0] = 0),
 * length prefixLen + 1.
 */
export function sortedLayerCumsum(pooled: ArrayLike<number>, heads: number, prefixLen: number): Float64Array {
  const g = new Float64Array(prefixLen);
  for (let t = 0; t < prefixLen; t++) {
    let s = 0;
    for (let h = 0; h < heads; h++) s += pooled[h * prefixLen + t]!;
    g[t] = s / heads;
  }
  const total = g.reduce((a, b) => a + b, 0) + 1e-8;
  g.sort();
  const cum = new Float64Array(prefixLen + 1);
  for (let k = 0; k < prefixLen; k++) cum[k + 1] = cum[k]! + g[k]! / total;
  return cum;
}

/** Largest Euclidean norm of the [rows][D] rows of `a`. */
export function maxRowNorm(a: Float32Array, D: number): number {
  let worst = 0;
  for (let o = 0; o < a.length; o += D) worst = Math.max(worst, Math.sqrt(dotF64(a.subarray(o, o + D), a.subarray(o, o + D))));
  return worst;
}

export function maxAbs(a: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]!));
  return m;
}

/** Every position 0..L-1 for every head: [H][L]. */
export function allPositions(H: number, L: number): Int32Array {
  const all = new Int32Array(H * L);
  for (let h = 0; h < H; h++) for (let t = 0; t < L; t++) all[h * L + t] = t;
  return all;
}

/** f64 attention of every head over its kept rows, scattered to [L][H*D] (pruned rows 0). */
export function oracleOutput(input: AttentionInput, indices: Int32Array, keptLength: number): Float64Array {
  const { heads: H, headDim: D, seqLen: L } = input;
  const out = new Float64Array(L * H * D);
  for (let h = 0; h < H; h++) {
    const idx = indices.subarray(h * keptLength, (h + 1) * keptLength);
    const rows = attentionF64(input, h, idx);
    for (let r = 0; r < keptLength; r++) out.set(rows.subarray(r * D, (r + 1) * D), (idx[r]! * H + h) * D);
  }
  return out;
}
