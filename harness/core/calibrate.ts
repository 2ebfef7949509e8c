/**
 * Fits a backend's cost model (cost.ts) on the device it runs on: a few small
 * timed runs of its own stages on Gaussian inputs, medians of repeats (the
 * host's speed varies from minute to minute), cached per backend key for the
 * process. Callers who need reproducible decisions pin the rates instead
 * (the `costModel` backend option).
 *
 * The fit: dense at two lengths gives attendRate and attendFixedMs (t = f + F/r);
 * attendSelected on half the rows of the longer length gives compactPenalty;
 * scores gives scoreRate; pool + budget + select give selectMsPerToken. Where the stages include
 * the block stages (block-cost.ts), with the default XAttention settings: blockScores at the
 * longer length and twice it gives blockScoreRate and blockScoreMsPerRow (t = c H n + flops / r),
 * blockSelect blockSelectMsPerBlock, attendBlocks on every causal block against dense
 * blockAttendPenalty (both at the longer length).
 */
import { blockScoreFlops, blockWork } from './block-cost.js';
import { hasBlockStages, type BlockStages } from './block-sparse.js';
import { causalFlops, type BLOCK_RATES, type CostModel } from './cost.js';
import { generateInput } from './generators.js';
import { DEFAULT_BLOCK_SPARSE, DEFAULT_OPTIONS, type AttentionInput, type AttentionShape, type ResolvedBlockSparse, type ResolvedTsaOptions } from './interface.js';
import type { PipelineStages } from './pipeline.js';
import { median } from './stats.js';

/** Where calibration runs: big enough to be compute bound on a CPU, small enough for about 1 s. */
export interface CalibrationPlan {
  heads: number;
  kvHeads: number;
  headDim: number;
  /** The two dense lengths; the longer one also times scoring and attendSelected. */
  lengths: [number, number];
  repeats: number;
}

export const CPU_CALIBRATION: Readonly<CalibrationPlan> = Object.freeze({ heads: 4, kvHeads: 2, headDim: 128, lengths: [768, 1536] as [number, number], repeats: 3 });

export const DEFAULT_MIN_GAIN = 0.05;

/** Milliseconds one call takes: the host clock by default; a GPU backend gives its device time. */
export type CallTimer = (call: () => Promise<unknown>) => Promise<number>;

export const wallClock: CallTimer = async (call) => {
  const t = performance.now();
  await call();
  return performance.now() - t;
};

const cache = new Map<string, Promise<CostModel>>();

/** The fitted model of the backend `key` (e.g. its description), calibrating once per process. */
export function calibrated(key: string, stages: PipelineStages & Partial<BlockStages>, plan: CalibrationPlan = CPU_CALIBRATION, time: CallTimer = wallClock): Promise<CostModel> {
  return cachedFit(key, () => calibrate(stages, plan, time));
}

/** `fit()` once per process for `key` (a failed fit is retried on the next call). */
export function cachedFit(key: string, fit: () => Promise<CostModel>): Promise<CostModel> {
  let m = cache.get(key);
  if (!m) {
    m = fit();
    cache.set(key, m);
    m.catch(() => cache.delete(key));
  }
  return m;
}

async function timed(repeats: number, f: () => Promise<unknown>, time: CallTimer): Promise<number> {
  await f(); // warm-up: compiles, grows memory, starts workers
  const ts: number[] = [];
  for (let i = 0; i < repeats; i++) ts.push(await time(f));
  return median(ts);
}

/** One stage's median time (ms) on seqLen rows. */
export interface Timing {
  seqLen: number;
  ms: number;
}

/** What a backend measured on its device, medians of repeated calls (ms). */
export interface CalibrationSamples {
  heads: number;
  headDim: number;
  /** Dense attention at two lengths. */
  dense: [Timing, Timing];
  /** attendSelected (gather + attend + scatter) on keptLength rows. */
  compact: { keptLength: number; ms: number };
  /** The scores stage: `window` queries over seqLen keys. */
  scores: { seqLen: number; window: number; ms: number };
  /** pool + budget + select over a seqLen-token call. */
  select: Timing;
}

/** The cost model of a backend's samples (the fit in the header). */
export function fitCostModel(s: CalibrationSamples): CostModel {
  const [a, b] = s.dense;
  const f1 = causalFlops(s, a.seqLen);
  const f2 = causalFlops(s, b.seqLen);
  const attendRate = (f2 - f1) / Math.max(b.ms - a.ms, 1e-6);
  const attendFixedMs = Math.max(0, a.ms - f1 / attendRate);
  const compactPenalty = Math.max(1, (s.compact.ms - attendFixedMs) / (causalFlops(s, s.compact.keptLength) / attendRate));
  const scoreRate = (4 * s.heads * s.headDim * s.scores.window * s.scores.seqLen) / s.scores.ms;
  return { attendRate, attendFixedMs, compactPenalty, scoreRate, selectMsPerToken: s.select.ms / (s.heads * s.select.seqLen), minGain: DEFAULT_MIN_GAIN };
}

export async function calibrate(stages: PipelineStages & Partial<BlockStages>, plan: CalibrationPlan, time: CallTimer = wallClock): Promise<CostModel> {
  const { heads, kvHeads, headDim, repeats } = plan;
  const [short, long] = plan.lengths;
  const shapeOf = (seqLen: number): AttentionShape => ({ heads, kvHeads, headDim, seqLen });
  const o: ResolvedTsaOptions = { ...DEFAULT_OPTIONS, minTokens: 1 };
  const a = generateInput('gaussian', shapeOf(short), 1);
  const b = generateInput('gaussian', shapeOf(long), 2);
  const t1 = await timed(repeats, () => stages.dense(a, o), time);
  const t2 = await timed(repeats, () => stages.dense(b, o), time);
  const kept = long >> 1;
  const indices = new Int32Array(heads * kept);
  for (let h = 0; h < heads; h++) for (let r = 0; r < kept; r++) indices[h * kept + r] = 2 * r + 1;
  const tc = await timed(repeats, () => stages.attendSelected(b, indices, kept, o), time);
  const ts = await timed(repeats, () => stages.scores(b, o), time);
  const shape = { heads, prefixLen: long - o.window };
  const scores = await stages.scores(b, o);
  const tp = await timed(repeats, async () => {
    const pooled = await stages.pool(scores, shape, o);
    await stages.budget(pooled, shape, o);
    await stages.select(pooled, shape, shape.prefixLen >> 1, o);
  }, time);
  const model = fitCostModel({
    heads,
    headDim,
    dense: [{ seqLen: short, ms: t1 }, { seqLen: long, ms: t2 }],
    compact: { keptLength: kept, ms: tc },
    scores: { seqLen: long, window: o.window, ms: ts },
    select: { seqLen: long, ms: tp },
  });
  return hasBlockStages(stages) ? { ...model, ...(await blockRates(stages, b, model, repeats, time)) } : model;
}

/** Calls f and g alternately `repeats` times after a warm-up of each: their times side by side, so a drift of the host's speed hits both alike. */
async function interleaved(repeats: number, f: () => Promise<unknown>, g: () => Promise<unknown>, time: CallTimer): Promise<[number, number][]> {
  await f();
  await g();
  const ts: [number, number][] = [];
  for (let i = 0; i < repeats; i++) ts.push([await time(f), await time(g)]);
  return ts;
}

/**
 * The block stages' rates on input x and one of twice its length (default XAttention settings),
 * given the fitted attention rates. attendBlocks with every causal block is timed alternately with
 * dense on x: blockAttendPenalty is the median ratio of the two, mapped onto the attention model.
 */
async function blockRates(stages: BlockStages & PipelineStages, x: AttentionInput, m: CostModel, repeats: number, time: CallTimer): Promise<Pick<CostModel, (typeof BLOCK_RATES)[number]>> {
  const o: ResolvedTsaOptions = { ...DEFAULT_OPTIONS, blockSparse: { ...DEFAULT_BLOCK_SPARSE } };
  const nb = Math.ceil(x.seqLen / DEFAULT_BLOCK_SPARSE.blockSize);
  const x2 = generateInput('gaussian', { ...x, seqLen: 2 * x.seqLen }, 3);
  const scoring = await interleaved(repeats, () => stages.blockScores(x, o), () => stages.blockScores(x2, o), time);
  const t1 = median(scoring.map((t) => t[0]));
  const t2 = median(scoring.map((t) => t[1]));
  const masses = await stages.blockScores(x, o);
  const tSelect = await timed(repeats, () => stages.blockSelect(masses, { heads: x.heads, blocks: nb }, o), time);
  const all = new Uint8Array(x.heads * nb * nb);
  for (let h = 0; h < x.heads; h++) for (let i = 0; i < nb; i++) all.fill(1, (h * nb + i) * nb, (h * nb + i) * nb + i + 1);
  const pairs = await interleaved(repeats, () => stages.attendBlocks(x, all, o), () => stages.dense(x, o), time);
  const ratio = median(pairs.map(([blocks, dense]) => blocks / dense));
  return fitBlockRates(
    {
      ...x,
      scores: [{ seqLen: x.seqLen, ms: t1 }, { seqLen: x2.seqLen, ms: t2 }],
      select: { seqLen: x.seqLen, ms: tSelect },
      // Every causal block, as a ratio to dense on the same rows, mapped onto the attention model.
      attend: { seqLen: x.seqLen, share: 1, ms: ratio * (m.attendFixedMs + causalFlops(x, x.seqLen) / m.attendRate) },
    },
    DEFAULT_BLOCK_SPARSE,
    m,
  );
}

/** What a backend measured of its block stages (default XAttention settings), medians (ms). */
export interface BlockCalibrationSamples {
  heads: number;
  headDim: number;
  /** blockScores at n and 2n rows. */
  scores: [Timing, Timing];
  /** blockSelect of one call's masses. */
  select: Timing;
  /** attendBlocks at a selected-block share. */
  attend: { seqLen: number; share: number; ms: number };
}

/**
 * The four block rates of a backend's samples, given its fitted attention rates m:
 * blockScores t = c H n + f / r at n and 2n (1/r = (t2 - 2 t1) / (f2 - 2 f1), at least f2 / t2), blockSelect per block of H nb^2, and attendBlocks
 * over the attention model at its work share (block-cost.ts blockWork).
 */
export function fitBlockRates(s: BlockCalibrationSamples, bs: ResolvedBlockSparse, m: CostModel): Pick<CostModel, (typeof BLOCK_RATES)[number]> {
  const [a, b] = s.scores;
  const f1 = blockScoreFlops(s, a.seqLen, bs);
  const f2 = blockScoreFlops(s, b.seqLen, bs);
  // Never below f2 / t2 (all of t2 the GEMM), where timing noise breaks the fit.
  const blockScoreRate = Math.max(f2 / b.ms, b.ms > 2 * a.ms ? (f2 - 2 * f1) / (b.ms - 2 * a.ms) : 0);
  const blockScoreMsPerRow = Math.max(0, (b.ms - f2 / blockScoreRate) / (s.heads * b.seqLen));
  const nb = Math.ceil(s.select.seqLen / bs.blockSize);
  const nbAttend = Math.ceil(s.attend.seqLen / bs.blockSize);
  const work = (blockWork(nbAttend, bs.blockSize, s.attend.share) * causalFlops(s, s.attend.seqLen)) / m.attendRate;
  return {
    blockScoreRate,
    blockScoreMsPerRow,
    blockSelectMsPerBlock: s.select.ms / (s.heads * nb * nb),
    blockAttendPenalty: Math.max(1e-3, (s.attend.ms - m.attendFixedMs) / work),
  };
}
