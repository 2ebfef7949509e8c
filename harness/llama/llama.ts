/**
 * A small Llama runtime (the llama2.c architecture) whose prefill attention is
 * the library's: every layer hands Q [H][L][D], K/V [Hkv][L][D] (after RoPE)
 * to a `PrefillAttention` plan (dense, token-sparse, or a baseline) and gets
 * [L][H*D] back for the output projection. Decode then runs one token at a
 * time with a KV cache and plain dense attention, as TSA prescribes (sparse
 * prefill, dense decode).
 *
 * Block l, for each token row x (the residual stream, [dim]):
 *   n = RMSNorm(x) * rmsAtt;  q = Wq n, k = Wk n, v = Wv n;  RoPE(q, k) at the token's position
 *   x += Wo attention(q, k, v)
 *   n = RMSNorm(x) * rmsFfn;  x += W2 (silu(W1 n) * (W3 n))
 * logits = classifier . (RMSNorm(x) * rmsFinal)
 * Activations are float32 arrays; every dot product accumulates in float64.
 */
import { TsaInputError, type AttentionInput } from '../index.js';
import type { LayerWeights, LlamaModel } from './checkpoint.js';

export const RMS_EPS = 1e-5;
export const ROPE_THETA = 10000;

/** How one layer's prefill attention ran. */
export interface LayerAttentionInfo {
  layer: number;
  mode: 'dense' | 'sparse';
  /** Kept positions per head over L (1 when dense). */
  keptFraction: number;
  /** The budget or the reason the layer ran dense. */
  detail: string;
}

/** Attention of every layer during prefill: dense, token-sparse, or a baseline selection. */
export interface PrefillAttention {
  /** Short name for reports, e.g. "tsa tau=0.005 layers 2,3". */
  readonly label: string;
  /** Causal attention of layer `layer` over the whole prompt; output [L][H*D]. */
  attend(layer: number, input: AttentionInput): Promise<{ output: Float32Array; info: LayerAttentionInfo }>;
}

/** Keys and values of every layer at positions 0 .. length-1, [Hkv][seqLen][D] per layer. */
export interface KvCache {
  k: Float32Array[];
  v: Float32Array[];
  length: number;
}

export interface PrefillResult {
  /** [L][V]: logits[t] predicts token t+1. */
  logits: Float32Array;
  cache: KvCache;
  /** One entry per layer. */
  layers: LayerAttentionInfo[];
  /** With `captureResiduals`: layers+1 arrays [L][dim], h_l entering layer l, the last one leaving the final layer. */
  residuals?: Float32Array[];
}

/** rmsNorm: out[o+i] = w[i] * x[xo+i] / sqrt(mean_i x[xo+i]^2 + eps), one row of n. */
export function rmsNorm(out: Float32Array, o: number, x: Float32Array, xo: number, w: Float32Array, n: number): void {
  let ss = 0;
  for (let i = 0; i < n; i++) ss += x[xo + i]! * x[xo + i]!;
  const inv = 1 / Math.sqrt(ss / n + RMS_EPS);
  for (let i = 0; i < n; i++) out[o + i] = w[i]! * (x[xo + i]! * inv);
}

/** matVec: out[o+r] = sum_c W[r][c] x[xo+c] for W [rows][cols] row-major (y = W x). */
export function matVec(out: Float32Array, o: number, W: Float32Array, x: Float32Array, xo: number, rows: number, cols: number): void {
  for (let r = 0; r < rows; r++) {
    let s = 0;
    const wo = r * cols;
    for (let c = 0; c < cols; c++) s += W[wo + c]! * x[xo + c]!;
    out[o + r] = s;
  }
}

/**
 * rope: rotates each head's consecutive pairs (2i, 2i+1) of a token row [heads][D] by the angle
 * pos * theta^(-2i/D): (a, b) -> (a cos - b sin, a sin + b cos).
 */
export function rope(x: Float32Array, o: number, heads: number, D: number, pos: number): void {
  for (let i = 0; i < D; i += 2) {
    const angle = pos * Math.pow(ROPE_THETA, -i / D);
    const c = Math.cos(angle);
    const s = Math.sin(angle);
    for (let h = 0; h < heads; h++) {
      const j = o + h * D + i;
      const a = x[j]!;
      const b = x[j + 1]!;
      x[j] = a * c - b * s;
      x[j + 1] = a * s + b * c;
    }
  }
}

/** toHeadMajor: copies a token row [heads][D] to dst[(h * rowsPerHead + row) * D + d]. */
function toHeadMajor(dst: Float32Array, src: Float32Array, heads: number, D: number, rowsPerHead: number, row: number): void {
  for (let h = 0; h < heads; h++) dst.set(src.subarray(h * D, (h + 1) * D), (h * rowsPerHead + row) * D);
}

/** Per-token scratch rows, sized by the model. */
class Scratch {
  readonly norm: Float32Array;
  readonly q: Float32Array;
  readonly k: Float32Array;
  readonly v: Float32Array;
  readonly proj: Float32Array;
  readonly h1: Float32Array;
  readonly h3: Float32Array;
  constructor(m: LlamaModel) {
    const { dim, hiddenDim, heads, kvHeads, headDim } = m.config;
    this.norm = new Float32Array(dim);
    this.q = new Float32Array(heads * headDim);
    this.k = new Float32Array(kvHeads * headDim);
    this.v = new Float32Array(kvHeads * headDim);
    this.proj = new Float32Array(dim);
    this.h1 = new Float32Array(hiddenDim);
    this.h3 = new Float32Array(hiddenDim);
  }
}

export class Llama {
  private readonly scratch: Scratch;

  constructor(readonly model: LlamaModel) {
    this.scratch = new Scratch(model);
  }

  get config() {
    return this.model.config;
  }

  newCache(): KvCache {
    const { layers, kvHeads, seqLen, headDim } = this.config;
    const size = kvHeads * seqLen * headDim;
    return {
      k: Array.from({ length: layers }, () => new Float32Array(size)),
      v: Array.from({ length: layers }, () => new Float32Array(size)),
      length: 0,
    };
  }

  /**
   * prefill: runs the whole prompt through every layer, attention by `attention`, and
   * returns logits [L][V] and the KV cache for decoding from position L.
   */
  async prefill(tokens: readonly number[], attention: PrefillAttention, options: { captureResiduals?: boolean } = {}): Promise<PrefillResult> {
    const c = this.config;
    const L = tokens.length;
    if (L < 1 || L > c.seqLen) throw new TsaInputError(`prompt has ${L} tokens; the model takes 1..${c.seqLen}`, 'SHAPE');
    const { dim, heads: H, kvHeads: Hkv, headDim: D } = c;
    const s = this.scratch;
    const x = new Float32Array(L * dim);
    for (let t = 0; t < L; t++) x.set(this.embedding(tokens[t]!), t * dim);
    const cache = this.newCache();
    const infos: LayerAttentionInfo[] = [];
    const residuals: Float32Array[] | undefined = options.captureResiduals ? [] : undefined;
    for (let l = 0; l < c.layers; l++) {
      residuals?.push(x.slice());
      const w = this.model.layers[l]!;
      const q = new Float32Array(H * L * D);
      const k = new Float32Array(Hkv * L * D);
      const v = new Float32Array(Hkv * L * D);
      for (let t = 0; t < L; t++) {
        this.qkv(w, x, t * dim, t);
        toHeadMajor(q, s.q, H, D, L, t);
        toHeadMajor(k, s.k, Hkv, D, L, t);
        toHeadMajor(v, s.v, Hkv, D, L, t);
        toHeadMajor(cache.k[l]!, s.k, Hkv, D, c.seqLen, t);
        toHeadMajor(cache.v[l]!, s.v, Hkv, D, c.seqLen, t);
      }
      const { output, info } = await attention.attend(l, { q, k, v, heads: H, kvHeads: Hkv, headDim: D, seqLen: L });
      infos.push(info);
      for (let t = 0; t < L; t++) this.outputAndFfn(w, x, t * dim, output, t * H * D);
    }
    residuals?.push(x.slice());
    cache.length = L;
    const logits = new Float32Array(L * c.vocabSize);
    for (let t = 0; t < L; t++) this.classify(logits, t * c.vocabSize, x, t * dim);
    return { logits, cache, layers: infos, residuals };
  }

  /** decodeStep: appends `token` at position cache.length with dense attention; returns its logits [V]. */
  decodeStep(cache: KvCache, token: number): Float32Array {
    const c = this.config;
    const pos = cache.length;
    if (pos >= c.seqLen) throw new TsaInputError(`context is full: the model has ${c.seqLen} positions`, 'SHAPE');
    const { heads: H, kvHeads: Hkv, headDim: D } = c;
    const s = this.scratch;
    const x = this.embedding(token).slice();
    const att = new Float32Array(H * D);
    for (let l = 0; l < c.layers; l++) {
      const w = this.model.layers[l]!;
      this.qkv(w, x, 0, pos);
      toHeadMajor(cache.k[l]!, s.k, Hkv, D, c.seqLen, pos);
      toHeadMajor(cache.v[l]!, s.v, Hkv, D, c.seqLen, pos);
      decodeAttention(att, s.q, cache.k[l]!, cache.v[l]!, H, Hkv, D, c.seqLen, pos + 1);
      this.outputAndFfn(w, x, 0, att, 0);
    }
    cache.length = pos + 1;
    const logits = new Float32Array(c.vocabSize);
    this.classify(logits, 0, x, 0);
    return logits;
  }

  private embedding(token: number): Float32Array {
    const { vocabSize, dim } = this.config;
    if (!Number.isInteger(token) || token < 0 || token >= vocabSize) {
      throw new TsaInputError(`token ${token} is outside the vocabulary [0, ${vocabSize})`, 'SHAPE');
    }
    return this.model.tokenEmbedding.subarray(token * dim, (token + 1) * dim);
  }

  /** qkv: scratch q, k, v of the token row x[xo..xo+dim) at position pos, RoPE applied. */
  private qkv(w: LayerWeights, x: Float32Array, xo: number, pos: number): void {
    const { dim, heads, kvHeads, headDim: D } = this.config;
    const s = this.scratch;
    rmsNorm(s.norm, 0, x, xo, w.rmsAtt, dim);
    matVec(s.q, 0, w.wq, s.norm, 0, heads * D, dim);
    matVec(s.k, 0, w.wk, s.norm, 0, kvHeads * D, dim);
    matVec(s.v, 0, w.wv, s.norm, 0, kvHeads * D, dim);
    rope(s.q, 0, heads, D, pos);
    rope(s.k, 0, kvHeads, D, pos);
  }

  /** outputAndFfn: x += Wo att; x += W2 (silu(W1 n) * W3 n) with n = RMSNorm(x) * rmsFfn. */
  private outputAndFfn(w: LayerWeights, x: Float32Array, xo: number, att: Float32Array, ao: number): void {
    const { dim, hiddenDim: F, heads, headDim: D } = this.config;
    const s = this.scratch;
    matVec(s.proj, 0, w.wo, att, ao, dim, heads * D);
    for (let i = 0; i < dim; i++) x[xo + i]! += s.proj[i]!;
    rmsNorm(s.norm, 0, x, xo, w.rmsFfn, dim);
    matVec(s.h1, 0, w.w1, s.norm, 0, F, dim);
    matVec(s.h3, 0, w.w3, s.norm, 0, F, dim);
    for (let i = 0; i < F; i++) {
      const a = s.h1[i]!;
      s.h1[i] = (a / (1 + Math.exp(-a))) * s.h3[i]!;
    }
    matVec(s.proj, 0, w.w2, s.h1, 0, dim, F);
    for (let i = 0; i < dim; i++) x[xo + i]! += s.proj[i]!;
  }

  /** classify: out[o..o+V) = classifier . (RMSNorm(x row) * rmsFinal). */
  private classify(out: Float32Array, o: number, x: Float32Array, xo: number): void {
    const { dim, vocabSize } = this.config;
    rmsNorm(this.scratch.norm, 0, x, xo, this.model.rmsFinal, dim);
    matVec(out, o, this.model.classifier, this.scratch.norm, 0, vocabSize, dim);
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
