/**
 * The one interface every backend implements (reference/, assembly/, gpu/).
 *
 * Layouts (identical to ../shared/golden):
 *   q       [H][L][D]     float32, query heads
 *   k, v    [Hkv][L][D]   float32, key/value heads, never expanded in memory:
 *                         query head h reads KV head floor(h / (H / Hkv))
 *   scores  [H][L-W]      raw importance of each prefix key (mean window prob)
 *   pooled  [H][L-W]      scores after average pooling (kernel P, include-pad)
 *   indices [H][L']       kept positions per head, strictly ascending, the
 *                         window L-W..L-1 always last; L' = keep + W
 *   output  [L][H*D]      token-major, column h*D + d; pruned (t, h) rows are 0
 *
 * Stage names, shared by every backend so each is easy to find (core/stages.ts):
 *   scores -> pool -> budget -> select -> attend
 * (`attendSelected` is gather + attend + scatter; `dense` is attend on all rows.)
 *
 * Block-sparse attention (XAttention, ../shared/golden-xattn/README.md), nb = ceil(n / blockSize)
 * for a sequence of n rows (L, or L' on TSA's compact set):
 *   masses  [H][nb][nb]   f32, antidiagonal block masses (blockScores)
 *   mask    [H][nb][nb]   u8, 1 = (query block, key block) selected, lower triangle only (blockSelect)
 * Stages: blockScores -> blockSelect -> attendBlocks (BlockSparseStages below).
 */
import type { BlockStageName, StageName } from './stages.js';

import type { CostModel } from './cost.js';

/** Shape of one attention call: one sequence (batch 1), prefill. */
export interface AttentionShape {
  /** Query heads H. */
  heads: number;
  /** Key/value heads Hkv; H must be a multiple of Hkv. */
  kvHeads: number;
  /** Head dimension D. */
  headDim: number;
  /** Sequence length L. */
  seqLen: number;
}

/** Q, K, V after RoPE, in the layouts above. */
export interface AttentionInput extends AttentionShape {
  q: Float32Array;
  k: Float32Array;
  v: Float32Array;
}

/**
 * Per-call options, taken by every stage (each uses what concerns it).
 * Every numeric field has the spec's default.
 */
export interface TsaOptions {
  /** tau: attention mass that may be pruned (default 0.005); 0 means dense. */
  coverage?: number;
  /** W: the last W queries score the prefix and are always kept (default 128). */
  window?: number;
  /** P: average-pooling kernel over token scores, odd (default 7). */
  poolKernel?: number;
  /** Floor on kept prefix tokens (default 1024). */
  minTokens?: number;
  /**
   * Cancels the call: it rejects with TsaAbortError as soon as the backend
   * next checks (before each stage, and between the chunks or submissions of
   * a long stage), frees what the call held, and the backend stays usable.
   */
  signal?: AbortSignal;
  /**
   * Block-sparse attention after token selection (XAttention). With coverage > 0 it runs on TSA's
   * compact Q/K/V; with coverage 0, or when the budget runs the layer dense, on the full sequence.
   */
  blockSparse?: BlockSparseOptions;
  /**
   * Overrides the backend's cost rule for this call (backend option
   * `costRule`): true may run dense where selection would not pay
   * ('not-worth-it'); false runs the spec's pipeline unchanged.
   */
  costRule?: boolean;
  /**
   * Arithmetic of the attention (backend option `precision` is the default):
   * 'f32' (exact path) or 'f16' (Q, K, V rounded to f16, f16 products with f32
   * accumulation, f32 softmax and output; scoring and selection stay f32, so
   * indices and keep counts are the same). A backend without f16 throws
   * TsaInputError 'PRECISION'.
   */
  precision?: Precision;
}

/** XAttention's settings (the TSA authors' composition: block 128, stride 16, threshold 0.9). */
export interface BlockSparseOptions {
  method: 'xattention';
  /** T in (0, 1]: per query block, blocks are added until their mass reaches T of the row (default 0.9). */
  threshold?: number;
  /** S: antidiagonal stride; divides blockSize (default 16). */
  stride?: number;
  /** B: tokens per block, a multiple of 16 (default 128). */
  blockSize?: number;
}

export type ResolvedBlockSparse = Required<BlockSparseOptions>;

export const DEFAULT_BLOCK_SPARSE: Readonly<ResolvedBlockSparse> = Object.freeze({
  method: 'xattention',
  threshold: 0.9,
  stride: 16,
  blockSize: 128,
});
/** Arithmetic of the attention (TsaOptions.precision). */
export type Precision = 'f32' | 'f16';

/** The numeric options of the method (spec section 2), with their defaults. */
export type MethodOptions = Required<Pick<TsaOptions, 'coverage' | 'window' | 'poolKernel' | 'minTokens'>>;

/** TsaOptions after validation: every default filled in (a resolved object is valid TsaOptions again). */
export interface ResolvedTsaOptions extends MethodOptions {
  signal?: AbortSignal;
  blockSparse?: ResolvedBlockSparse;
  /** Absent: the backend's own setting. */
  costRule?: boolean;
  /** Absent: the backend's own setting. */
  precision?: Precision;
}

export const DEFAULT_OPTIONS: Readonly<MethodOptions> = Object.freeze({
  coverage: 0.005,
  window: 128,
  poolKernel: 7,
  minTokens: 1024,
});

/** Shape of a per-head score array: [heads][prefixLen], prefixLen = L - W. */
export interface ScoreShape {
  heads: number;
  prefixLen: number;
}

/** Why a layer runs dense instead of token-sparse. */
export type DenseReason =
  /** L <= minTokens + W: nothing to gain (spec step 2.6). */
  | 'short-context'
  /** coverage (tau) is 0: the layer is configured dense. */
  | 'zero-coverage'
  /** The cumulative-mass rule prunes no token (c == 0). */
  | 'nothing-pruned'
  /** A backend's cost rule judged selection slower than dense here. */
  | 'not-worth-it';

/** Outcome of the keep-count rule for one layer (shared by all heads). */
export type Budget =
  | {
      mode: 'sparse';
      /** Kept prefix tokens per head: max(minTokens, (L - W) - pruned). */
      keep: number;
      /** Pruned count c after the +1 of the spec (before the minTokens floor). */
      pruned: number;
    }
  | { mode: 'dense'; reason: DenseReason; detail: string };

/**
 * Milliseconds spent per stage of one `tokenSparseAttention` call, one field per stage of
 * core/stages.ts STAGES (scores, pool, budget, select, attend: gather + attend + scatter, or dense
 * attention when the layer is dense; with blockSparse, the three block stages too), and `total`,
 * the wall time of the whole call. With blockSparse, BLOCK_STAGES (blockScores, blockSelect,
 * attendBlocks) give the block stages' share of `attend`.
 */
export type StageTimings = Record<StageName | 'total', number> & Partial<Record<BlockStageName, number>>;

export interface TsaResult {
  /** [L][H*D]; rows of pruned (t, h) pairs are exactly 0. */
  output: Float32Array;
  budget: Budget;
  /** [H][L'] kept positions, or null when the layer ran dense. */
  indices: Int32Array | null;
  /** L' (keep + W), or L when dense. */
  keptLength: number;
  /** keptLength / L. */
  keptFraction: number;
  timings: StageTimings;
  /** With options.blockSparse, where the block stages ran: the block mask and its share. */
  blockSparse?: BlockSparseResult;
  /**
   * With options.blockSparse and the cost rule on: whether the block stages ran ('run') or would
   * not have paid ('not-worth-it': the layer attended its rows without them, blockSparse absent).
   */
  blockDecision?: BlockDecision;
  /** The attention's arithmetic and kernel, where the backend has more than one (the WebGPU backend). */
  precision?: Precision;
  attendKernel?: string;
}

/** The block-sparse half of a layer. */
export interface BlockSparseResult {
  /** true: on TSA's compact rows (n = keptLength); false: on the full sequence (n = L). */
  composed: boolean;
  /** nb = ceil(n / blockSize). */
  blocks: number;
  /** [H][nb][nb], 1 = selected, lower triangle. */
  mask: Uint8Array;
  /** Per head: selected blocks / causal blocks (nb (nb + 1) / 2). */
  selectedShare: Float64Array;
}

/** The cost rule's verdict on the block stages of one layer (core/block-cost.ts). */
export interface BlockDecision {
  verdict: 'run' | 'not-worth-it';
  /** The probe's estimated selected-block share; null where the rule decided without probing. */
  estimatedShare: number | null;
  /** The estimates behind the verdict, e.g. "cost rule: the probe (block rows 8..15 of 64, 2 heads) estimates ...". */
  detail: string;
}

/** Shape of block masses and masks: [heads][blocks][blocks]. */
export interface BlockShape {
  heads: number;
  blocks: number;
}

/**
 * The XAttention stages, public and validated like the others. The reference and wasm backends
 * implement them; the webgpu backend does not yet (its GPU kernels are follow-up work), so they
 * are a separate interface until it does, and then join Backend.
 */
export interface BlockSparseStages {
  /** blockScores: antidiagonal block masses [H][nb][nb], nb = ceil(L / blockSize). */
  blockScores(input: AttentionInput, options?: TsaOptions): Promise<Float32Array>;
  /** blockSelect: the XAttention mask rule per (head, query block), [H][nb][nb]. */
  blockSelect(masses: Float32Array, shape: BlockShape, options?: TsaOptions): Promise<Uint8Array>;
  /** attendBlocks: exact causal attention over the selected blocks only, output [L][H*D]. */
  attendBlocks(input: AttentionInput, mask: Uint8Array, options?: TsaOptions): Promise<Float32Array>;
}

export type BlockSparseBackend = Backend & BlockSparseStages;

/**
 * A Token Sparse Attention backend. All methods validate their inputs
 * (rejecting with `TsaInputError` before computing anything) and are async so that
 * GPU and threaded backends fit the same shape. Every stage takes the same
 * per-call options (each uses what concerns it). Backends are built with
 * defineBackend (core/backend.ts), which does the validation.
 *
 * Input contract: a call may read its array arguments (q, k, v, scores,
 * indices) until its promise settles, so they must not change before then
 * (nothing is snapshotted). No call writes its inputs, and every result is a
 * fresh array, never a view of an input.
 */
export interface Backend {
  /** Registry name: 'reference' | 'wasm' | 'webgpu'. */
  readonly name: string;
  /** What this instance runs on, e.g. "wasm relaxed-simd, 2 threads". */
  readonly description: string;
  /** CPU threads this instance computes on (CPU backends); absent means 1 or not applicable. */
  readonly threads?: number;

  /** score: mean window-query attention probability of each prefix key, [H][L-W]. */
  scores(input: AttentionInput, options?: TsaOptions): Promise<Float32Array>;
  /** pool: average pooling along tokens, kernel P, zero padding P/2, divisor P. */
  pool(scores: Float32Array, shape: ScoreShape, options?: TsaOptions): Promise<Float32Array>;
  /** budget: the keep count of the layer, or dense with the reason. L = prefixLen + W. */
  budget(pooled: Float32Array, shape: ScoreShape, options?: TsaOptions): Promise<Budget>;
  /** select: per head, the `keep` best prefix positions plus the window, ascending, [H][keep+W]. */
  select(pooled: Float32Array, shape: ScoreShape, keep: number, options?: TsaOptions): Promise<Int32Array>;
  /** gather + causal attention on the compact set + scatter; output [L][H*D]. */
  attendSelected(input: AttentionInput, indices: Int32Array, keptLength: number, options?: TsaOptions): Promise<Float32Array>;
  /** Plain causal attention over all L tokens; output [L][H*D]. */
  dense(input: AttentionInput, options?: TsaOptions): Promise<Float32Array>;
  /** The whole pipeline. */
  tokenSparseAttention(input: AttentionInput, options?: TsaOptions): Promise<TsaResult>;
  /** Releases workers, devices and memory; the backend is unusable afterwards. */
  dispose(): Promise<void>;
  /**
   * Accelerator-side milliseconds of the last call (GPU timestamp queries),
   * where the backend can measure them; undefined on CPU backends.
   */
  lastDeviceTimeMs?(): number | null;
  /**
   * The rates of this backend's cost rule (core/cost.ts): fitted on first use
   * on this device (per precision: `options.precision`, default the backend's;
   * one it cannot run rejects with TsaInputError 'PRECISION'), or pinned by
   * the `costModel` option; absent where the backend has no cost rule.
   */
  costRates?(options?: Pick<TsaOptions, 'precision'>): Promise<CostModel>;
}

/** Options a backend factory accepts (each backend ignores what it has no use for). */
export interface BackendCreateOptions {
  /** Worker threads for CPU backends (default: the number of cores). */
  threads?: number;
  /**
   * Backends with a cost rule (wasm, webgpu) may run dense where token-sparse
   * attention would not pay (Budget reason 'not-worth-it'); false turns it
   * off so tokenSparseAttention follows the spec exactly (conformance).
   */
  costRule?: boolean;
}
