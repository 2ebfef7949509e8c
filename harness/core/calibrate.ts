/**
 * Fits a backend's cost model (cost.ts) on the device it runs on: a few small
 * timed runs of its own stages on Gaussian inputs, medians of repeats (the
 * host's speed varies from minute to minute), cached per backend key for the
 * process. Callers who need reproducible decisions pin the rates instead
 * (the `costModel` backend option).
 *
 * The fit: dense at two lengths gives attendRate and attendFixedMs (t = f + F/r);
 * attendSelected on half the rows of the longer length gives compactPenalty;
 * scores gives scoreRate; pool + budget + select give selectMsPerToken.
 */
import { causalFlops, type CostModel } from './cost.js';
import { generateInput } from './generators.js';
import { DEFAULT_OPTIONS, type AttentionShape, type ResolvedTsaOptions } from './interface.js';
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

const cache = new Map<string, Promise<CostModel>>();

/** The fitted model of the backend `key` (e.g. its description), calibrating once per process. */
export function calibrated(key: string, stages: PipelineStages, plan: CalibrationPlan = CPU_CALIBRATION): Promise<CostModel> {
  let m = cache.get(key);
  if (!m) {
    m = calibrate(stages, plan);
    cache.set(key, m);
    m.catch(() => cache.delete(key));
  }
  return m;
}

async function timed(repeats: number, f: () => Promise<unknown>): Promise<number> {
  await f(); // warm-up: compiles, grows memory, starts workers
  const ts: number[] = [];
  for (let i = 0; i < repeats; i++) {
    const t = performance.now();
    await f();
    ts.push(performance.now() - t);
  }
  return median(ts);
}

export async function calibrate(stages: PipelineStages, plan: CalibrationPlan): Promise<CostModel> {
  const { heads, kvHeads, headDim, repeats } = plan;
  const [short, long] = plan.lengths;
  const shapeOf = (seqLen: number): AttentionShape => ({ heads, kvHeads, headDim, seqLen });
  const o: ResolvedTsaOptions = { ...DEFAULT_OPTIONS, minTokens: 1 };
  const a = generateInput('gaussian', shapeOf(short), 1);
  const b = generateInput('gaussian', shapeOf(long), 2);
  const t1 = await timed(repeats, () => stages.dense(a, o));
  const t2 = await timed(repeats, () => stages.dense(b, o));
  const f1 = causalFlops(a, short);
  const f2 = causalFlops(b, long);
  const attendRate = (f2 - f1) / Math.max(t2 - t1, 1e-6);
  const attendFixedMs = Math.max(0, t1 - f1 / attendRate);

  const kept = long >> 1;
  const indices = new Int32Array(heads * kept);
  for (let h = 0; h < heads; h++) for (let r = 0; r < kept; r++) indices[h * kept + r] = 2 * r + 1;
  const tc = await timed(repeats, () => stages.attendSelected(b, indices, kept, o));
  const compactPenalty = Math.max(1, (tc - attendFixedMs) / (causalFlops(b, kept) / attendRate));

  const ts = await timed(repeats, () => stages.scores(b, o));
  const scoreRate = (4 * heads * headDim * o.window * long) / ts;
  const shape = { heads, prefixLen: long - o.window };
  const scores = await stages.scores(b, o);
  const tp = await timed(repeats, async () => {
    const pooled = await stages.pool(scores, shape, o);
    await stages.budget(pooled, shape, o);
    await stages.select(pooled, shape, shape.prefixLen >> 1, o);
  });
  return { attendRate, attendFixedMs, compactPenalty, scoreRate, selectMsPerToken: tp / (heads * long), minGain: DEFAULT_MIN_GAIN };
}
