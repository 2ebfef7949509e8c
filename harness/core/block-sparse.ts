/**
 * Block-sparse attention (XAttention) composed with token selection, written once for every
 * backend: blockScores -> blockSelect -> attendBlocks on TSA's compact rows (gathered per head,
 * causal in compact order, scattered back with zeros for dropped rows), or on the full sequence
 * when the layer runs dense (coverage 0, short context, nothing pruned, not worth it).
 * Semantics: ../shared/golden-xattn/README.md.
 */
import { TsaInputError } from './errors.js';
import type { AttentionInput, BlockShape, BlockSparseResult, ResolvedTsaOptions, StageTimings } from './interface.js';
import { blockCount } from './validate.js';

/** The block stages on validated arguments and resolved options (a BlockSparseStages backend works too). */
export interface BlockStages {
  blockScores(input: AttentionInput, o: ResolvedTsaOptions): Promise<Float32Array>;
  blockSelect(masses: Float32Array, shape: BlockShape, o: ResolvedTsaOptions): Promise<Uint8Array>;
  attendBlocks(input: AttentionInput, mask: Uint8Array, o: ResolvedTsaOptions): Promise<Float32Array>;
}

/**
 * TSA's compact set as an ordinary sequence of n rows: head h's Q, K, V rows at indices[h]
 * ([H][n]). Query heads of one GQA group keep different rows, so the compact K/V have one head
 * per query head (kvHeads = H).
 */
export function compactInput(input: AttentionInput, indices: Int32Array, n: number): AttentionInput {
  const { heads: H, kvHeads: Hkv, headDim: D, seqLen: L } = input;
  const G = H / Hkv;
  const q = new Float32Array(H * n * D);
  const k = new Float32Array(H * n * D);
  const v = new Float32Array(H * n * D);
  for (let h = 0; h < H; h++) {
    const qBase = h * L * D;
    const kvBase = Math.floor(h / G) * L * D;
    for (let r = 0; r < n; r++) {
      const t = indices[h * n + r]! * D;
      const dst = (h * n + r) * D;
      q.set(input.q.subarray(qBase + t, qBase + t + D), dst);
      k.set(input.k.subarray(kvBase + t, kvBase + t + D), dst);
      v.set(input.v.subarray(kvBase + t, kvBase + t + D), dst);
    }
  }
  return { heads: H, kvHeads: H, headDim: D, seqLen: n, q, k, v };
}

/** A compact output [n][H*D] scattered to [L][H*D]: compact row r of head h to row indices[h][r]; other rows 0. */
export function scatterCompact(compact: Float32Array, indices: Int32Array, n: number, H: number, D: number, L: number): Float32Array {
  const out = new Float32Array(L * H * D);
  for (let h = 0; h < H; h++) {
    for (let r = 0; r < n; r++) {
      const src = (r * H + h) * D;
      out.set(compact.subarray(src, src + D), (indices[h * n + r]! * H + h) * D);
    }
  }
  return out;
}

/** Per head: selected blocks / causal blocks of a mask [H][nb][nb]. */
export function selectedShares(mask: Uint8Array, H: number, nb: number): Float64Array {
  const shares = new Float64Array(H);
  for (let h = 0; h < H; h++) {
    let n = 0;
    for (let i = h * nb * nb; i < (h + 1) * nb * nb; i++) n += mask[i]!;
    shares[h] = n / ((nb * (nb + 1)) / 2);
  }
  return shares;
}

/** The stages of a layer with blockSparse, or a typed error naming the backend that lacks them. */
/** The error of a blockSparse call on a backend without the block stages. */
export function noBlockSparse(backend: string | undefined): TsaInputError {
  return new TsaInputError(`blockSparse is not supported by ${backend ? `the ${backend} backend` : 'these stages'} yet`, 'OPTION');
}

export function blockStagesOf(stages: Partial<BlockStages>, backend: string | undefined): BlockStages {
  if (!stages.blockScores || !stages.blockSelect || !stages.attendBlocks) throw noBlockSparse(backend);
  return stages as BlockStages;
}

/**
 * The attention of a layer with blockSparse: XAttention on the compact rows `indices` ([H][n])
 * when given, else on all L rows. Adds the block stages' times to `timings`.
 */
export async function blockSparseAttention(
  stages: BlockStages,
  input: AttentionInput,
  indices: Int32Array | null,
  n: number,
  o: ResolvedTsaOptions,
  timings: StageTimings,
): Promise<{ output: Float32Array; blockSparse: BlockSparseResult }> {
  const x = indices ? compactInput(input, indices, n) : input;
  const nb = blockCount(x.seqLen, o);
  let t = performance.now();
  const lap = (): number => {
    const now = performance.now();
    const dt = now - t;
    t = now;
    return dt;
  };
  const masses = await stages.blockScores(x, o);
  timings.blockScores = lap();
  const mask = await stages.blockSelect(masses, { heads: x.heads, blocks: nb }, o);
  timings.blockSelect = lap();
  const out = await stages.attendBlocks(x, mask, o);
  timings.attendBlocks = lap();
  const output = indices ? scatterCompact(out, indices, n, input.heads, input.headDim, input.seqLen) : out;
  return { output, blockSparse: { composed: indices !== null, blocks: nb, mask, selectedShare: selectedShares(mask, x.heads, nb) } };
}

/** Whether `s` (a backend, or a backend's stage table) has all three block-sparse stages. */
export function hasBlockStages<T extends object>(s: T): s is T & BlockStages {
  const x = s as Partial<BlockStages>;
  return typeof x.blockScores === 'function' && typeof x.blockSelect === 'function' && typeof x.attendBlocks === 'function';
}
