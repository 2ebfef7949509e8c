/** The reference backend: the executable specification (pure TypeScript, float64). */
import { defineBackend } from '../harness/core/backend.js';
import { calibrated, type CalibrationPlan } from '../harness/core/calibrate.js';
import { checkCostOptions, type CostModel } from '../harness/core/cost.js';
import type { BlockSparseBackend } from '../harness/core/interface.js';
import * as stage from './stages.js';
import * as xattention from './xattention.js';

export interface ReferenceBackendOptions {
  /** The cost rule (core/cost.ts); default off: the reference is the spec's pipeline. */
  costRule?: boolean;
  /** Pinned rates for the cost rule; default: fitted on first use. */
  costModel?: CostModel;
}

/** The reference is about 50x slower than wasm: calibrate on a smaller shape. */
const CALIBRATION: CalibrationPlan = { heads: 2, kvHeads: 1, headDim: 32, lengths: [256, 512], repeats: 3 };

export function createReferenceBackend(options: ReferenceBackendOptions = {}): BlockSparseBackend {
  checkCostOptions(options);
  const pinned = options.costModel;
  return defineBackend({
    name: 'reference',
    description: 'pure TypeScript, float64 accumulation (the executable spec)',
    stages: {
      scores: (input, o) => stage.score(input, o),
      pool: async (scores, shape, o) => stage.pool(scores, shape, o),
      budget: async (pooled, shape, o) => stage.budget(pooled, shape, o),
      select: async (pooled, shape, keep, o) => stage.select(pooled, shape, keep, o),
      attendSelected: (input, indices, keptLength, o) => stage.attendSelected(input, indices, keptLength, o),
      dense: (input, o) => stage.dense(input, o),
      blockScores: async (input, o) => xattention.blockScores(input, o),
      blockSelect: async (masses, shape, o) => xattention.blockSelect(masses, shape, o),
      attendBlocks: async (input, mask, o) => xattention.attendBlocks(input, mask, o),
    },
    costRule: {
      enabled: options.costRule ?? false,
      model: (ran) => (pinned ? Promise.resolve(pinned) : calibrated('reference', ran, CALIBRATION)),
    },
    async dispose() {},
  });
}
