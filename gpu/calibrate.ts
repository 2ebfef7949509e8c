/**
 * The WebGPU backend's cost model, fitted on first use per adapter (cached
 * by the adapter's description and the backend's precision for the process) with core's fit
 * (harness/core/calibrate.ts) on the fused layer's own paths: the stage
 * calls `dense` (recordDense), `attendSelected` (recordSparse), `scores`,
 * `pool`, `budget`, `select`, timed by device time (timestamp queries where
 * the adapter has them, else the host clock from submit to completion; the
 * uploads and readbacks are not counted).
 *
 * The plan: H 8, Hkv 2, D 128 (H 2, Hkv 1 on a software adapter: llvmpipe,
 * lavapipe); L starts at 256 and doubles until one dense call takes at least
 * BUSY_MS or L reaches 8192, so that a fast GPU is measured busy (about 7 ms
 * of dense at 8K on an H200) and a software adapter stays at the first
 * lengths; core's fit then runs on [L/2, L], medians of 3 after a warm-up.
 * That is about 30 calls, on an H200 of at most a few ms of device time
 * each; on this machine's llvmpipe about 4 s (its ~0.1 s per submission).
 */
import { cachedFit, calibrate, type CallTimer, type CalibrationPlan } from '../harness/core/calibrate.js';
import { checkCostOptions, type CostModel } from '../harness/core/cost.js';
import { generateInput } from '../harness/core/generators.js';
import { DEFAULT_OPTIONS, type ResolvedTsaOptions } from '../harness/core/interface.js';
import type { PipelineStages } from '../harness/core/pipeline.js';
import { H200_COST_MODEL } from './cost.js';

const SHAPE = { heads: 8, kvHeads: 2, headDim: 128 } as const;
const SOFTWARE_SHAPE = { heads: 2, kvHeads: 1, headDim: 128 } as const;
const FIRST_LENGTH = 256;
const MAX_LENGTH = 8192;
/** A dense call at least this long (ms) is taken as a busy device. */
const BUSY_MS = 20;

/** The lengths to fit on: grow L until dense is busy or L is MAX_LENGTH. */
async function gpuPlan(stages: PipelineStages, time: CallTimer, software: boolean): Promise<CalibrationPlan> {
  const o: ResolvedTsaOptions = { ...DEFAULT_OPTIONS };
  const shape = software ? SOFTWARE_SHAPE : SHAPE;
  for (let L = FIRST_LENGTH; ; L *= 2) {
    const x = generateInput('gaussian', { ...shape, seqLen: L }, L);
    if (L === FIRST_LENGTH) await stages.dense(x, o); // warm-up: pipelines, buffers
    if (L >= MAX_LENGTH || (await time(() => stages.dense(x, o))) >= BUSY_MS) return { ...shape, lengths: [L / 2, L], repeats: 3 };
  }
}

/**
 * The fitted model of the adapter `key`, calibrating once per process on
 * `stages` timed by `time`; H200_COST_MODEL where the timings give no valid
 * rates (a clock too coarse for the shapes).
 */
export function gpuCostModel(key: string, stages: PipelineStages, time: CallTimer, software: boolean): Promise<CostModel> {
  return cachedFit(`webgpu ${key}`, async () => {
    const m = await calibrate(stages, await gpuPlan(stages, time, software), time);
    try {
      checkCostOptions({ costModel: m });
      return m;
    } catch {
      return H200_COST_MODEL;
    }
  });
}
