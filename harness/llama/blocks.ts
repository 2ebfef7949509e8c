/**
 * The arithmetic of the Llama runtime, row by row: RMSNorm, y = W x, RoPE, SwiGLU, one decode
 * query's attention over the KV cache, and the batched matmul the prefill runs on (any
 * `Matmul`: the public wasm kernel `createWasmMatmul().matmul`, or `jsMatmul` here).
 */
import type { AttentionInput } from '../index.js';

export const RMS_EPS = 1e-5;
export const ROPE_THETA = 10000;

/** C [m][n] = A [m][k] B^T for B [n][k] row-major (B's rows are the outputs: weights (out, in)). */
export type Matmul = (a: Float32Array, b: Float32Array, m: number, k: number, n: number) => Promise<Float32Array>;

/** jsMatmul: C = A B^T in plain loops, each dot product accumulated in float64 (slow; exact to f32 rounding). */
export const jsMatmul: Matmul = async (a, b, m, k, n) => {
  const c = new Float32Array(m * n);
  for (let i = 0; i < m; i++) matVec(c, i * n, b, a, i * k, n, k);
  return c;
};

/** rmsNorm: out[o+i] = w[i] * x[xo+i] / sqrt(mean_i x[xo+i]^2 + eps), one row of n. */
export function rmsNorm(out: Float32Array, o: number, x: Float32Array, xo: number, w: Float32Array, n: number): void {
  let ss = 0;
  for (let i = 0; i < n; i++) ss += x[xo + i]! * x[xo + i]!;
  const inv = 1 / Math.sqrt(ss / n + RMS_EPS);
  for (let i = 0; i < n; i++) out[o + i] = w[i]! * (x[xo + i]! * inv);
}

/** rmsNormRows: rmsNorm of each of the `rows` rows of x [rows][n]. */
export function rmsNormRows(x: Float32Array, w: Float32Array, rows: number, n: number): Float32Array {
  const out = new Float32Array(rows * n);
  for (let r = 0; r < rows; r++) rmsNorm(out, r * n, x, r * n, w, n);
  return out;
}

/** matVec: out[o+r] = sum_c W[r][c] x[xo+c] for W [rows][cols] row-major (y = W x), float64 sums. */
export function matVec(out: Float32Array, o: number, W: Float32Array, x: Float32Array, xo: number, rows: number, cols: number): void {
  for (let r = 0; r < rows; r++) {
    let s = 0;
    const wo = r * cols;
    for (let c = 0; c < cols; c++) s += W[wo + c]! * x[xo + c]!;
    out[o + r] = s;
  }
}

/** swiglu: out[i] = silu(h[i]) * h[F + i] for a row h = [W1 n | W3 n] of 2F, silu(a) = a / (1 + e^-a). */
export function swiglu(out: Float32Array, o: number, h: Float32Array, ho: number, F: number): void {
  for (let i = 0; i < F; i++) {
    const a = h[ho + i]!;
    out[o + i] = (a / (1 + Math.exp(-a))) * h[ho + F + i]!;
  }
}

/**
 * Rotary position embedding: rotates each head's consecutive pairs (2i, 2i+1) of a token row
 * [heads][D] by the angle pos * theta^(-2i/D): (a, b) -> (a cos - b sin, a sin + b cos).
 * cos and sin are tabled per (position, pair) in float64.
 */
export class Rope {
  private readonly cos: Float64Array;
  private readonly sin: Float64Array;

  constructor(
    private readonly D: number,
    positions: number,
  ) {
    const half = D / 2;
    this.cos = new Float64Array(positions * half);
    this.sin = new Float64Array(positions * half);
    for (let pos = 0; pos < positions; pos++) {
      for (let i = 0; i < D; i += 2) {
        const angle = pos * Math.pow(ROPE_THETA, -i / D);
        this.cos[pos * half + i / 2] = Math.cos(angle);
        this.sin[pos * half + i / 2] = Math.sin(angle);
      }
    }
  }

  /** Rotates the row [heads][D] at x[o..] for position pos. */
  apply(x: Float32Array, o: number, heads: number, pos: number): void {
    const D = this.D;
    const t = pos * (D / 2);
    for (let i = 0; i < D; i += 2) {
      const c = this.cos[t + i / 2]!;
      const s = this.sin[t + i / 2]!;
      for (let h = 0; h < heads; h++) {
        const j = o + h * D + i;
        const a = x[j]!;
        const b = x[j + 1]!;
        x[j] = a * c - b * s;
        x[j + 1] = a * s + b * c;
      }
    }
  }
}

/**
 * decodeAttention: one query row q [H][D] against cached keys/values [Hkv][stride][D] at
 * positions 0..n-1: out[h] = sum_j softmax_j(q_h . k_j / sqrt(D)) v_j, KV head floor(h / (H/Hkv)).
 */
export function decodeAttention(
  out: Float32Array,
  q: Float32Array,
  k: Float32Array,
  v: Float32Array,
  H: number,
  Hkv: number,
  D: number,
  stride: number,
  n: number,
): void {
  const scale = 1 / Math.sqrt(D);
  const s = new Float64Array(n);
  const acc = new Float64Array(D);
  for (let h = 0; h < H; h++) {
    const base = Math.floor(h / (H / Hkv)) * stride * D;
    let m = -Infinity;
    for (let j = 0; j < n; j++) {
      let dot = 0;
      for (let d = 0; d < D; d++) dot += q[h * D + d]! * k[base + j * D + d]!;
      s[j] = dot * scale;
      if (s[j]! > m) m = s[j]!;
    }
    let l = 0;
    acc.fill(0);
    for (let j = 0; j < n; j++) {
      const p = Math.exp(s[j]! - m);
      l += p;
      for (let d = 0; d < D; d++) acc[d]! += p * v[base + j * D + d]!;
    }
    for (let d = 0; d < D; d++) out[h * D + d] = acc[d]! / l;
  }
}

/**
 * continuationAttention: rows [from, T) of causal attention for Q [H][T][D], K/V [Hkv][T][D]
 * (row i attends keys j <= i, KV head floor(h / (H/Hkv))), out [T - from][H*D]: what decoding
 * those rows one by one over the KV cache computes. Per KV head, its query heads' rows stacked:
 * S = Q K^T by `matmul`, softmax of S / sqrt(D) over the visible keys in float64 (stored as f32
 * probabilities, the rest zero), O = P V by `matmul` (with V^T), divided by the row sums.
 */
export async function continuationAttention(matmul: Matmul, input: AttentionInput, from: number): Promise<Float32Array> {
  const { q, k, v, heads: H, kvHeads: Hkv, headDim: D, seqLen: T } = input;
  const G = H / Hkv;
  const R = T - from;
  const out = new Float32Array(R * H * D);
  const scale = 1 / Math.sqrt(D);
  for (let g = 0; g < Hkv; g++) {
    const qs = new Float32Array(G * R * D);
    for (let i = 0; i < G; i++) qs.set(q.subarray(((g * G + i) * T + from) * D, (g * G + i + 1) * T * D), i * R * D);
    const s = await matmul(qs, k.subarray(g * T * D, (g + 1) * T * D), G * R, D, T);
    const inv = new Float64Array(G * R);
    for (let row = 0; row < G * R; row++) {
      const n = from + (row % R) + 1;
      const o = row * T;
      let m = -Infinity;
      for (let j = 0; j < n; j++) m = Math.max(m, s[o + j]!);
      let l = 0;
      for (let j = 0; j < n; j++) {
        const p = Math.exp((s[o + j]! - m) * scale);
        s[o + j] = p;
        l += p;
      }
      s.fill(0, o + n, o + T);
      inv[row] = 1 / l;
    }
    const vt = new Float32Array(D * T);
    for (let j = 0; j < T; j++) for (let d = 0; d < D; d++) vt[d * T + j] = v[(g * T + j) * D + d]!;
    const o = await matmul(s, vt, G * R, T, D);
    for (let i = 0; i < G; i++) {
      for (let r = 0; r < R; r++) {
        const x = inv[i * R + r]!;
        for (let d = 0; d < D; d++) out[r * H * D + (g * G + i) * D + d] = o[(i * R + r) * D + d]! * x;
      }
    }
  }
  return out;
}
