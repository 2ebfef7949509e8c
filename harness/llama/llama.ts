/**
 * A small Llama runtime (the llama2.c architecture) whose prefill attention is the library's:
 * every layer hands Q [H][L][D], K/V [Hkv][L][D] (after RoPE) to a `PrefillAttention` plan
 * (dense, token-sparse, or a baseline) and gets [L][H*D] back for the output projection. Prefill
 * runs layer by layer on all rows at once, its dense products through a `Matmul` (the public
 * wasm kernel in the CLI). Decode then runs one token at a time with a KV cache and plain dense
 * attention, as TSA prescribes (sparse prefill, dense decode); `teacherForce` runs a known
 * continuation in the same pass as its prefill, with the dense attention decode would give it.
 *
 * Block l, for each token row x (the residual stream, [dim]):
 *   n = RMSNorm(x) * rmsAtt;  q = Wq n, k = Wk n, v = Wv n;  RoPE(q, k) at the token's position
 *   x += Wo attention(q, k, v)
 *   n = RMSNorm(x) * rmsFfn;  x += W2 (silu(W1 n) * (W3 n))
 * logits = classifier . (RMSNorm(x) * rmsFinal)
 */
import { TsaInputError, type AttentionInput } from '../index.js';
import { continuationAttention, decodeAttention, jsMatmul, matVec, rmsNorm, rmsNormRows, Rope, swiglu, type Matmul } from './blocks.js';
import type { LayerWeights, LlamaModel } from './checkpoint.js';

/** How one layer's prefill attention ran. */
export interface LayerAttentionInfo {
  layer: number;
  /** Token selection ran ('sparse') or kept every row ('dense'; block-sparse attention may still skip blocks: `blocks`). */
  mode: 'dense' | 'sparse';
  /** Kept positions per head over L (1 when dense). */
  keptFraction: number;
  /** The budget or the reason the layer ran dense. */
  detail: string;
  /** With block-sparse attention: per head the selected (query block, key block) pairs, of `causal` = nb (nb + 1) / 2. */
  blocks?: { selected: number[]; causal: number };
}

/** Attention of every layer during prefill: dense, token-sparse, or a baseline selection. */
export interface PrefillAttention {
  /** Short name for reports, e.g. "tsa tau=0.005 layers 2,3". */
  readonly label: string;
  /** False for a layer this plan always runs as plain dense attention. */
  selects(layer: number): boolean;
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

/**
 * A teacher-forced pass at the entry of `layer`, for a plan dense in every layer before it: the
 * residual stream [T][dim], the layer's Q/K/V (a function of it) and its continuation rows'
 * attention [T - P][H*D] (dense, so the same for every plan).
 */
export interface LayerState {
  layer: number;
  x: Float32Array;
  input: AttentionInput;
  continuation: Float32Array;
}

export interface TeacherForced {
  /** [T - P + 1][V]: row r predicts token P + r. */
  logits: Float32Array;
  /** One entry per layer run (from the resumed layer on). */
  layers: LayerAttentionInfo[];
  /** With `keepAt`: the state entering that layer, to resume other plans from. */
  kept?: LayerState;
}

/** One forward pass over T rows: [0, P) attended by the plan, [P, T) by dense attention over all rows. */
interface Pass {
  tokens: readonly number[];
  P: number;
  attention: PrefillAttention;
  /** Rows from here on get logits; earlier rows skip the last layer's output projection and FFN. */
  logitsFrom: number;
  cache?: KvCache;
  residuals?: Float32Array[];
  start?: LayerState;
  keepAt?: number;
}

/** A layer's weights with the projections that share an input fused: [Wq; Wk; Wv] and [W1; W3]. */
interface FusedLayer {
  wqkv: Float32Array;
  w13: Float32Array;
}

function concat(...parts: Float32Array[]): Float32Array {
  const out = new Float32Array(parts.reduce((s, p) => s + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** Rows [0, P) of a head-major [heads][T][D] array. */
function firstRows(x: Float32Array, heads: number, T: number, D: number, P: number): Float32Array {
  const out = new Float32Array(heads * P * D);
  for (let h = 0; h < heads; h++) out.set(x.subarray(h * T * D, (h * T + P) * D), h * P * D);
  return out;
}

export class Llama {
  private readonly fused: FusedLayer[];
  private readonly rope: Rope;

  /** `matmul` runs the prefill's products (default: plain float64 loops). */
  constructor(
    readonly model: LlamaModel,
    private readonly matmul: Matmul = jsMatmul,
  ) {
    this.fused = model.layers.map((w) => ({ wqkv: concat(w.wq, w.wk, w.wv), w13: concat(w.w1, w.w3) }));
    this.rope = new Rope(model.config.headDim, model.config.seqLen);
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
    this.checkLength(tokens.length);
    const cache = this.newCache();
    const residuals: Float32Array[] | undefined = options.captureResiduals ? [] : undefined;
    const r = await this.pass({ tokens, P: tokens.length, attention, logitsFrom: 0, cache, residuals });
    cache.length = tokens.length;
    return { logits: r.logits, cache, layers: r.layers, residuals };
  }

  /**
   * teacherForce: the logits predicting tokens P..N-1 of `tokens` (N of them) when tokens[0..P)
   * are prefilled with `attention` and tokens P..N-2 are then decoded one by one with dense
   * attention: computed in one pass, rows >= P attending densely over all rows
   * (continuationAttention), which is what decode over the KV cache computes. `start` resumes from a state kept by an earlier
   * call (`keepAt`), skipping the layers before it and that layer's Q/K/V and continuation
   * attention; `attention` must be dense before it.
   */
  async teacherForce(
    tokens: readonly number[],
    P: number,
    attention: PrefillAttention,
    options: { start?: LayerState; keepAt?: number } = {},
  ): Promise<TeacherForced> {
    const N = tokens.length;
    this.checkLength(N - 1);
    if (!(Number.isInteger(P) && P >= 1 && P < N)) throw new TsaInputError(`prefill ${P} must be in [1, ${N - 1}] for ${N} tokens`, 'SHAPE');
    const s = options.start;
    const selectsBefore = (layer: number) => Array.from({ length: layer }, (_, l) => attention.selects(l)).includes(true);
    if (s && (s.x.length !== (N - 1) * this.config.dim || selectsBefore(s.layer))) {
      throw new TsaInputError(`cannot resume '${attention.label}' at layer ${s.layer}: wrong length, or the plan selects before it`, 'SHAPE');
    }
    return this.pass({ tokens: tokens.slice(0, N - 1), P, attention, logitsFrom: P - 1, ...options });
  }

  /** decodeStep: appends `token` at position cache.length with dense attention; returns its logits [V]. */
  decodeStep(cache: KvCache, token: number): Float32Array {
    const c = this.config;
    const pos = cache.length;
    if (pos >= c.seqLen) throw new TsaInputError(`context is full: the model has ${c.seqLen} positions`, 'SHAPE');
    const { dim, hiddenDim: F, heads: H, kvHeads: Hkv, headDim: D } = c;
    const x = this.embedding(token).slice();
    const n = new Float32Array(dim);
    const qkv = new Float32Array((H + 2 * Hkv) * D);
    const att = new Float32Array(H * D);
    const proj = new Float32Array(dim);
    const h13 = new Float32Array(2 * F);
    const g = new Float32Array(F);
    for (let l = 0; l < c.layers; l++) {
      const w = this.model.layers[l]!;
      const f = this.fused[l]!;
      rmsNorm(n, 0, x, 0, w.rmsAtt, dim);
      matVec(qkv, 0, f.wqkv, n, 0, qkv.length, dim);
      this.rope.apply(qkv, 0, H, pos);
      this.rope.apply(qkv, H * D, Hkv, pos);
      for (let h = 0; h < Hkv; h++) {
        cache.k[l]!.set(qkv.subarray((H + h) * D, (H + h + 1) * D), (h * c.seqLen + pos) * D);
        cache.v[l]!.set(qkv.subarray((H + Hkv + h) * D, (H + Hkv + h + 1) * D), (h * c.seqLen + pos) * D);
      }
      decodeAttention(att, qkv, cache.k[l]!, cache.v[l]!, H, Hkv, D, c.seqLen, pos + 1);
      matVec(proj, 0, w.wo, att, 0, dim, H * D);
      for (let i = 0; i < dim; i++) x[i]! += proj[i]!;
      rmsNorm(n, 0, x, 0, w.rmsFfn, dim);
      matVec(h13, 0, f.w13, n, 0, 2 * F, dim);
      swiglu(g, 0, h13, 0, F);
      matVec(proj, 0, w.w2, g, 0, dim, F);
      for (let i = 0; i < dim; i++) x[i]! += proj[i]!;
    }
    cache.length = pos + 1;
    const logits = new Float32Array(c.vocabSize);
    rmsNorm(n, 0, x, 0, this.model.rmsFinal, dim);
    matVec(logits, 0, this.model.classifier, n, 0, c.vocabSize, dim);
    return logits;
  }

  private checkLength(L: number): void {
    if (L < 1 || L > this.config.seqLen) throw new TsaInputError(`prompt has ${L} tokens; the model takes 1..${this.config.seqLen}`, 'SHAPE');
  }

  private embedding(token: number): Float32Array {
    const { vocabSize, dim } = this.config;
    if (!Number.isInteger(token) || token < 0 || token >= vocabSize) {
      throw new TsaInputError(`token ${token} is outside the vocabulary [0, ${vocabSize})`, 'SHAPE');
    }
    return this.model.tokenEmbedding.subarray(token * dim, (token + 1) * dim);
  }

  /** Every layer from the start on, then the logits of rows logitsFrom..T-1. */
  private async pass(p: Pass): Promise<TeacherForced> {
    const c = this.config;
    const T = p.tokens.length;
    let x: Float32Array = p.start?.x ?? new Float32Array(T * c.dim);
    if (!p.start) for (let t = 0; t < T; t++) x.set(this.embedding(p.tokens[t]!), t * c.dim);
    const layers: LayerAttentionInfo[] = [];
    let kept: LayerState | undefined;
    for (let l = p.start?.layer ?? 0; l < c.layers; l++) {
      const resumed = l === p.start?.layer ? p.start : undefined;
      p.residuals?.push(x.slice());
      const input = resumed?.input ?? (await this.qkvRows(l, x, T, p.cache));
      const { output, info, continuation } = await this.attendRows(l, input, p, resumed?.continuation);
      if (l === p.keepAt && continuation) kept = { layer: l, x, input, continuation };
      layers.push(info);
      const from = l === c.layers - 1 ? p.logitsFrom : 0;
      x = await this.outputAndFfnRows(l, x.subarray(from * c.dim), output.subarray(from * c.heads * c.headDim), T - from);
    }
    p.residuals?.push(x);
    const rows = T - p.logitsFrom;
    const tail = x.subarray(x.length - rows * c.dim);
    const logits = await this.matmul(rmsNormRows(tail, this.model.rmsFinal, rows, c.dim), this.model.classifier, rows, c.dim, c.vocabSize);
    return { logits, layers, kept };
  }

  /** Q [H][T][D], K, V [Hkv][T][D] of layer l for rows x [T][dim] (RoPE applied); fills the cache. */
  private async qkvRows(l: number, x: Float32Array, T: number, cache?: KvCache): Promise<AttentionInput> {
    const { dim, heads: H, kvHeads: Hkv, headDim: D, seqLen } = this.config;
    const width = (H + 2 * Hkv) * D;
    const rows = await this.matmul(rmsNormRows(x, this.model.layers[l]!.rmsAtt, T, dim), this.fused[l]!.wqkv, T, dim, width);
    const q = new Float32Array(H * T * D);
    const k = new Float32Array(Hkv * T * D);
    const v = new Float32Array(Hkv * T * D);
    for (let t = 0; t < T; t++) {
      const o = t * width;
      this.rope.apply(rows, o, H, t);
      this.rope.apply(rows, o + H * D, Hkv, t);
      for (let h = 0; h < H; h++) q.set(rows.subarray(o + h * D, o + (h + 1) * D), (h * T + t) * D);
      for (let h = 0; h < Hkv; h++) {
        k.set(rows.subarray(o + (H + h) * D, o + (H + h + 1) * D), (h * T + t) * D);
        v.set(rows.subarray(o + (H + Hkv + h) * D, o + (H + Hkv + h + 1) * D), (h * T + t) * D);
      }
    }
    if (cache) {
      for (let h = 0; h < Hkv; h++) {
        cache.k[l]!.set(k.subarray(h * T * D, (h + 1) * T * D), h * seqLen * D);
        cache.v[l]!.set(v.subarray(h * T * D, (h + 1) * T * D), h * seqLen * D);
      }
    }
    return { q, k, v, heads: H, kvHeads: Hkv, headDim: D, seqLen: T };
  }

  /** Rows [0, P) by the plan, rows [P, T) by continuationAttention over all rows (or as given). */
  private async attendRows(
    l: number,
    input: AttentionInput,
    p: Pass,
    given?: Float32Array,
  ): Promise<{ output: Float32Array; info: LayerAttentionInfo; continuation?: Float32Array }> {
    const T = input.seqLen;
    if (T === p.P) return p.attention.attend(l, input);
    const { heads: H, kvHeads: Hkv, headDim: D } = input;
    const prefix = { ...input, seqLen: p.P, q: firstRows(input.q, H, T, D, p.P), k: firstRows(input.k, Hkv, T, D, p.P), v: firstRows(input.v, Hkv, T, D, p.P) };
    const r = await p.attention.attend(l, prefix);
    const continuation = given ?? (await continuationAttention(this.matmul, input, p.P));
    const output = new Float32Array(T * H * D);
    output.set(r.output);
    output.set(continuation, p.P * H * D);
    return { output, info: r.info, continuation };
  }

  /** x [rows][dim] + Wo att, then + W2 swiglu(W1 n, W3 n) with n = RMSNorm(x) * rmsFfn; a new array. */
  private async outputAndFfnRows(l: number, x: Float32Array, att: Float32Array, rows: number): Promise<Float32Array> {
    const { dim, hiddenDim: F, heads, headDim: D } = this.config;
    const w: LayerWeights = this.model.layers[l]!;
    const out = await this.matmul(att, w.wo, rows, heads * D, dim);
    for (let i = 0; i < out.length; i++) out[i]! += x[i]!;
    const h13 = await this.matmul(rmsNormRows(out, w.rmsFfn, rows, dim), this.fused[l]!.w13, rows, dim, 2 * F);
    const g = new Float32Array(rows * F);
    for (let r = 0; r < rows; r++) swiglu(g, r * F, h13, r * 2 * F, F);
    const ffn = await this.matmul(g, w.w2, rows, F, dim);
    for (let i = 0; i < out.length; i++) out[i]! += ffn[i]!;
    return out;
  }
}
