/**
 * The cost rule shared by every backend: token-sparse attention only where it
 * is estimated to beat dense attention on this backend, else dense with
 * Budget reason 'not-worth-it'. It only decides whether to select: whenever
 * it lets a layer run sparse, the spec's pipeline runs unchanged (same
 * indices, keep count and output as with the rule off).
 *
 * Estimated times (ms) from a backend's measured rates (calibrate.ts):
 *   F(n)          = 4 H D n(n+1)/2                        causal attention FLOPs
 *   dense(L)      = attendFixedMs + F(L) / attendRate
 *   attend(L')    = attendFixedMs + compactPenalty F(L') / attendRate   (gather + attend + scatter)
 *   select(L, w)  = 4 H D w L / scoreRate + selectMsPerToken H L     (scores of w queries, pool, budget, select)
 *   sparse(L, L') = select(L, W) + attend(L')
 * The decision:
 *   1. before any scoring: dense unless the best case L' = minTokens + W
 *      beats dense by minGain;
 *   2. the probe: the scores of the last PROBE_QUERIES window queries (the
 *      scores stage with that window: the same per-query softmax as the full
 *      scoring) over the prefix [0, L-W), pooled and counted by the spec's
 *      budget rule, estimate L';
 *   3. dense unless sparse(L, L'_est) <= (1 - minGain) dense(L); otherwise
 *      the full pipeline, whose own budget decides (the probe's estimate is
 *      never used as the keep count).
 * Near-uniform attention (Gaussian inputs) is recognised at the probe's cost,
 * about PROBE_QUERIES / W of the full scoring.
 *
 * With options.blockSparse the same model's block-stage rates (optional
 * fields below) decide, after this rule, whether XAttention's block stages pay
 * on the layer's rows: block-cost.ts.
 */
import { TsaInputError } from './errors.js';
import type { AttentionShape, Budget, ResolvedTsaOptions } from './interface.js';

/** Rates of one backend on one device; fitted by calibrate.ts, or pinned by the caller. */
export interface CostModel {
  /** Dense causal attention rate, FLOP/ms, counting F(n). */
  attendRate: number;
  /** Fixed cost of one attention call, ms. */
  attendFixedMs: number;
  /** attendSelected at L' over dense at the same length (rows gathered per head: GQA's K/V sharing is partly lost). */
  compactPenalty: number;
  /** Scoring rate, FLOP/ms, counting 4 H D W L. */
  scoreRate: number;
  /** pool + budget + select per head and prefix token, ms. */
  selectMsPerToken: number;
  /** Sparse must be estimated at least this fraction faster than dense. */
  minGain: number;
  /**
   * The block-sparse stages (block-cost.ts), all four or none; a model without them lets the
   * block stages run. blockScores rate, FLOP/ms, counting blockScoreFlops.
   */
  blockScoreRate?: number;
  /** blockScores per head and row, ms (packing the strided rows). */
  blockScoreMsPerRow?: number;
  /** blockSelect per head and (query block, key block) pair, ms. */
  blockSelectMsPerBlock?: number;
  /** attendBlocks over dense attention on the pairs its blocks hold (block-cost.ts work(s) x F / attendRate, past attendFixedMs). */
  blockAttendPenalty?: number;
}

/** The block-stage fields of CostModel, present together or not at all. */
export const BLOCK_RATES = ['blockScoreRate', 'blockScoreMsPerRow', 'blockSelectMsPerBlock', 'blockAttendPenalty'] as const;

/** Window queries the probe scores. */
export const PROBE_QUERIES = 16;

/** The causal-attention FLOPs of n rows (n keys for the last query): 4 H D n(n+1)/2. */
export function causalFlops(shape: Pick<AttentionShape, 'heads' | 'headDim'>, n: number): number {
  return (4 * shape.heads * shape.headDim * n * (n + 1)) / 2;
}

export function denseMs(shape: AttentionShape, m: CostModel): number {
  return m.attendFixedMs + causalFlops(shape, shape.seqLen) / m.attendRate;
}

export function selectMs(shape: AttentionShape, window: number, m: CostModel): number {
  const { heads: H, headDim: D, seqLen: L } = shape;
  return (4 * H * D * window * L) / m.scoreRate + m.selectMsPerToken * H * L;
}

export function sparseMs(shape: AttentionShape, keptLength: number, o: ResolvedTsaOptions, m: CostModel): number {
  return selectMs(shape, o.window, m) + m.attendFixedMs + (m.compactPenalty * causalFlops(shape, keptLength)) / m.attendRate;
}

const ms = (x: number): string => `${x.toFixed(x < 10 ? 2 : 1)} ms`;

function notWorthIt(detail: string): Budget {
  return { mode: 'dense', reason: 'not-worth-it', detail: `cost rule: ${detail}` };
}

/** Step 1: dense when even the best case (L' = minTokens + W) would not pay; null to go on probing. */
export function beforeProbe(shape: AttentionShape, o: ResolvedTsaOptions, m: CostModel): Budget | null {
  const dense = denseMs(shape, m);
  const best = Math.min(shape.seqLen, o.minTokens + o.window);
  const sparse = sparseMs(shape, best, o, m);
  if (sparse <= (1 - m.minGain) * dense) return null;
  return notWorthIt(`even L' = ${best} would not beat dense by ${m.minGain * 100}% (estimated dense ${ms(dense)}, sparse ${ms(sparse)})`);
}

/** Step 3: the verdict on the probe's estimated L' (L when the probe prunes nothing); null runs the pipeline. */
export function afterProbe(shape: AttentionShape, estimate: number, o: ResolvedTsaOptions, m: CostModel): Budget | null {
  const dense = denseMs(shape, m);
  const sparse = sparseMs(shape, estimate, o, m);
  if (sparse <= (1 - m.minGain) * dense) return null;
  return notWorthIt(
    `the probe (${Math.min(PROBE_QUERIES, o.window)} of ${o.window} window queries) estimates L' = ${estimate} of ${shape.seqLen}: sparse ${ms(sparse)} would not beat dense ${ms(dense)} by ${m.minGain * 100}%`,
  );
}

/** Validates a backend's `costRule` and `costModel` options (TsaInputError 'OPTION'). */
export function checkCostOptions(options: { costRule?: unknown; costModel?: CostModel }): void {
  if (options.costRule !== undefined && typeof options.costRule !== 'boolean') {
    throw new TsaInputError(`option costRule must be a boolean, got ${String(options.costRule)}`, 'OPTION');
  }
  const bad = options.costModel && validCostModel(options.costModel);
  if (bad) throw new TsaInputError(`option costModel: ${bad}`, 'OPTION');
}

/** Checks a caller's pinned model: every rate finite and positive, minGain in [0, 1). */
function validCostModel(m: CostModel): string | null {
  if (m === null || typeof m !== 'object') return `must be an object of rates, got ${String(m)}`;
  for (const key of ['attendRate', 'compactPenalty', 'scoreRate'] as const) {
    if (!(m[key] > 0 && Number.isFinite(m[key]))) return `${key} must be a positive number, got ${String(m[key])}`;
  }
  for (const key of ['attendFixedMs', 'selectMsPerToken'] as const) {
    if (!(m[key] >= 0 && Number.isFinite(m[key]))) return `${key} must be a number >= 0, got ${String(m[key])}`;
  }
  if (!(m.minGain >= 0 && m.minGain < 1)) return `minGain must be in [0, 1), got ${String(m.minGain)}`;
  const given = BLOCK_RATES.filter((key) => m[key] !== undefined);
  if (given.length > 0 && given.length < BLOCK_RATES.length) return `${BLOCK_RATES.join(', ')} come together (given: ${given.join(', ')})`;
  for (const key of ['blockScoreRate', 'blockAttendPenalty'] as const) {
    if (m[key] !== undefined && !(m[key] > 0 && Number.isFinite(m[key]))) return `${key} must be a positive number, got ${String(m[key])}`;
  }
  for (const key of ['blockScoreMsPerRow', 'blockSelectMsPerBlock'] as const) {
    if (m[key] !== undefined && !(m[key] >= 0 && Number.isFinite(m[key]))) return `${key} must be a number >= 0, got ${String(m[key])}`;
  }
  return null;
}

/** One line of rates for `tsa backends` and descriptions. */
export function describeCostModel(m: CostModel): string {
  return (
    `attend ${(m.attendRate / 1e6).toFixed(1)} GFLOP/s + ${m.attendFixedMs.toFixed(2)} ms, compact x${m.compactPenalty.toFixed(2)}, ` +
    `score ${(m.scoreRate / 1e6).toFixed(1)} GFLOP/s, select ${(m.selectMsPerToken * 1e6).toFixed(1)} ns/token, min gain ${m.minGain * 100}%` +
    (m.blockScoreRate !== undefined
      ? `; blocks: score ${(m.blockScoreRate / 1e6).toFixed(1)} GFLOP/s + ${(m.blockScoreMsPerRow! * 1e6).toFixed(1)} ns/row, select ${(m.blockSelectMsPerBlock! * 1e6).toFixed(1)} ns/block, attend x${m.blockAttendPenalty!.toFixed(2)}`
      : '; blocks: no rates')
  );
}
