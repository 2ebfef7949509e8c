/// <reference types="@webgpu/types" preserve="true" />
/**
 * The WebGPU backend's cost model, fitted on first use per adapter (cached
 * by the adapter's description and the backend's precision for the process)
 * with core's fit (harness/core/calibrate.ts, fitCostModel) on the
 * GPU-resident layer itself: inputs generated on the device (generate.ts),
 * the output left there, and the stage times read from one call's segments
 * (timestamp queries; without them, host waits between segments). So the
 * calibration costs device time and pipeline creation, not host-side input
 * generation and transfers (which took 3.8 s on the H200 when every stage
 * was a call of its own with uploads and readbacks).
 *
 * The plan: H 8, Hkv 2, D 128 (H 2, Hkv 1 on a software adapter: llvmpipe,
 * lavapipe); L starts at 256 and doubles until one dense call takes at least
 * BUSY_MS or L reaches MAX_LENGTH, so that a fast GPU is measured busy and a
 * software adapter stays at the first lengths; a hardware GPU still not busy
 * at MAX_LENGTH (an H200: about 6 ms in f32, 1 ms in f16) gets 4x the heads.
 * Then, the fastest of REPEATS after a warm-up (a GPU's slow spells are
 * clock states, one-sided and shared by every stage of a call, so the fastest
 * calls are of one state: the one the device runs at under a steady load):
 * dense (coverage 0) at L/2 and L on Gaussian inputs, and
 * the spec's pipeline (cost rule off) at L on structured inputs, whose
 * segments give scores, pool + budget + select and the compact attention
 * (gather + attend + scatter) on the L' it kept; XAttention on all rows of
 * Gaussian inputs at L/2 and L gives the block stages' rates (core's fitBlockRates).
 */
import { cachedFit, fitBlockRates, fitCostModel, type Timing } from '../harness/core/calibrate.js';
import { checkCostOptions, type CostModel } from '../harness/core/cost.js';
import { DEFAULT_BLOCK_SPARSE, DEFAULT_OPTIONS, type AttentionShape, type Precision, type TsaOptions } from '../harness/core/interface.js';
import { mean } from '../harness/core/stats.js';
import { H200_COST_MODEL } from './cost.js';
import { generateInputOnGpu } from './generate.js';
import type { ResidentCall } from './resident.js';
import { STORAGE_USAGE } from './stages/common.js';

const SHAPE = { heads: 8, kvHeads: 2, headDim: 128 } as const;
const SOFTWARE_SHAPE = { heads: 2, kvHeads: 1, headDim: 128 } as const;
/** The shape for a hardware GPU still not busy at MAX_LENGTH (the bench's H 32, Hkv 8). */
const WIDE_SHAPE = { heads: 32, kvHeads: 8, headDim: 128 } as const;
const FIRST_LENGTH = 256;
const MAX_LENGTH = 8192;
/** A dense call at least this long (ms) is taken as a busy device. */
const BUSY_MS = 20;
const REPEATS = 3;

interface Sample {
  ms: number;
  stageMs: Record<string, number>;
  keptLength: number;
  /** With blockSparse: the mean selected-block share. */
  share: number;
}

/** Where a fit runs: the backend's resident layer on its adapter, at one precision. */
export interface CalibrationTarget {
  /** The adapter's description (the cache key, with the precision). */
  adapter: string;
  precision: Precision;
  device: GPUDevice;
  call: ResidentCall;
  timestamps: boolean;
  software: boolean;
}

type Sampler = (kind: 'gaussian' | 'structured', seqLen: number, options: TsaOptions, repeats: number, model?: CostModel) => Promise<Sample>;

/**
 * Timed resident calls on device-generated inputs of the target's shape, at its precision and
 * with no cost rule (the calls never ask for the rates they fit), or the rule with the given
 * `model`: the fastest of `repeats` after a warm-up (the one call where `repeats` is 0).
 */
function sampler(t: CalibrationTarget, shape: Omit<AttentionShape, 'seqLen'>): Sampler {
  return async (kind, seqLen, options, repeats, model) => {
    const input = await generateInputOnGpu(t.device, kind, { ...shape, seqLen }, seqLen);
    const output = t.device.createBuffer({ label: 'calibration output', size: seqLen * shape.heads * shape.headDim * 4, usage: STORAGE_USAGE });
    try {
      const runs: Sample[] = [];
      for (let i = 0; i <= repeats; i++) {
        const r = await t.call({ ...input, output }, { ...options, costRule: !!model, precision: t.precision }, !t.timestamps, model);
        const stageMs = await r.stageMs;
        const { keptLength, blockSparse } = await r.info();
        const share = blockSparse ? mean(blockSparse.selectedShare) : 1;
        if (i > 0 || repeats === 0) runs.push({ ms: Object.values(stageMs).reduce((a, b) => a + b, 0), stageMs, keptLength, share });
      }
      return runs.sort((a, b) => a.ms - b.ms)[0]!;
    } finally {
      for (const b of [input.q, input.k, input.v, output]) b.destroy();
    }
  };
}

const DENSE: TsaOptions = { coverage: 0 };

/**
 * Rates under which the rule probes every layer (free scoring and selection, no gain asked): the
 * first call, with them, records the probe as well as the full selection and both attention
 * branches, so every kernel a later call of the rule runs is created in one batch.
 */
const PROBE_ALWAYS: CostModel = { attendRate: 1, attendFixedMs: 0, compactPenalty: 1, scoreRate: 1e30, selectMsPerToken: 0, minGain: 0 };

/** The calibration length L (doubling until dense is busy; see the header) and a sampler, once per target. */
const plans = new Map<string, Promise<{ shape: Omit<AttentionShape, 'seqLen'>; sample: Sampler; L: number }>>();
function planned(t: CalibrationTarget) {
  const key = `${t.adapter} ${t.precision}`;
  let plan = plans.get(key);
  if (!plan) {
    plan = (async () => {
      const shape = t.software ? SOFTWARE_SHAPE : SHAPE;
      const sample = sampler(t, shape);
      // One call of the rule's pipeline first (PROBE_ALWAYS): it records every kernel the fit runs
      // and the probe's, whose pipelines are then created side by side (Recorder.prepare); on an
      // H200 with a cold shader cache the probe's kernels cost over a second more when created
      // after the fit, one at a time, by the first call.
      await sample('structured', FIRST_LENGTH, { minTokens: 1 }, 0, PROBE_ALWAYS);
      let L = FIRST_LENGTH;
      let ms = 0;
      while (L < MAX_LENGTH && (ms = (await sample('gaussian', L, DENSE, 0)).ms) < BUSY_MS) L *= 2;
      // ms is the dense call at L / 2: a quarter of the one at L.
      if (L === MAX_LENGTH && !t.software && 4 * ms < BUSY_MS) return { shape: WIDE_SHAPE, sample: sampler(t, WIDE_SHAPE), L };
      return { shape, sample, L };
    })();
    plans.set(key, plan);
    plan.catch(() => plans.delete(key));
  }
  return plan;
}

/** The fitted model of the target, calibrating once per process on its resident layer. */
export function gpuCostModel(t: CalibrationTarget): Promise<CostModel> {
  return cachedFit(`webgpu ${t.adapter} ${t.precision}`, async () => {
    const { shape, sample, L } = await planned(t);
    const long = await sample('gaussian', L, DENSE, REPEATS);
    const short = await sample('gaussian', L / 2, DENSE, REPEATS);
    const sparse = await sample('structured', L, { minTokens: 1 }, REPEATS);
    const s = sparse.stageMs;
    return valid(
      fitCostModel({
        ...shape,
        dense: [{ seqLen: L / 2, ms: short.ms }, { seqLen: L, ms: long.ms }],
        // Where the budget kept every row, the attend segment is dense attention: no compact penalty measured.
        compact: sparse.keptLength < L ? { keptLength: sparse.keptLength, ms: s.attend! } : { keptLength: L, ms: long.ms },
        scores: { seqLen: L, window: DEFAULT_OPTIONS.window, ms: s.scores! },
        select: { seqLen: L, ms: s.pool! + s.budget! + s.select! },
      }),
    );
  });
}

/**
 * gpuCostModel with the block stages' rates too, fitted apart on the first call with blockSparse
 * (their kernels compile slowly on software adapters: nobody else pays for them): XAttention on
 * all rows of Gaussian inputs (nearly every block selected) at L / 2 and L, core's fitBlockRates.
 */
export function gpuBlockCostModel(t: CalibrationTarget): Promise<CostModel> {
  return cachedFit(`webgpu blocks ${t.adapter} ${t.precision}`, async () => {
    const attention = await gpuCostModel(t);
    if (attention === H200_COST_MODEL) return attention;
    const { shape, sample, L } = await planned(t);
    const xattn: TsaOptions = { ...DENSE, blockSparse: { method: 'xattention' } };
    const [b1, b2] = [await sample('gaussian', L / 2, xattn, REPEATS), await sample('gaussian', L, xattn, REPEATS)];
    const blocks = {
      ...shape,
      scores: [{ seqLen: L / 2, ms: b1.stageMs.blockScores! }, { seqLen: L, ms: b2.stageMs.blockScores! }] as [Timing, Timing],
      select: { seqLen: L, ms: b2.stageMs.blockSelect! },
      attend: { seqLen: L, share: b2.share, ms: b2.stageMs.attendBlocks! },
    };
    const m = valid({ ...attention, ...fitBlockRates(blocks, DEFAULT_BLOCK_SPARSE, attention) });
    return m === H200_COST_MODEL ? attention : m;
  });
}

/** m where its rates are valid, else H200_COST_MODEL (a clock too coarse for the shapes). */
function valid(m: CostModel): CostModel {
  try {
    checkCostOptions({ costModel: m });
    return m;
  } catch {
    return H200_COST_MODEL;
  }
}
