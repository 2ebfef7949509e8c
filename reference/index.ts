/** The reference backend: the executable specification (pure TypeScript, float64). */
import { defineBackend } from '../harness/core/backend.js';
import { calibrated, type CalibrationPlan } from '../harness/core/calibrate.js';
import { checkCostOptions, type CostModel } from '../harness/core/cost.js';
import type { Backend } from '../harness/core/interface.js';
import * as stage from './stages.js';

export interface ReferenceBackendOptions {
  /** The cost rule (core/cost.ts); default off: the reference is the spec's pipeline. */
  costRule?: boolean;
  /** Pinned rates for the cost rule; default: fitted on first use. */
  costModel?: CostModel;
}

/** The reference is about 50x slower than wasm: calibrate on a smaller shape. */
const CALIBRATION: CalibrationPlan = { heads: 2, kvHeads: 1, headDim: 32, lengths: [256, 512], repeats: 3 };

export function createReferenceBackend(options: ReferenceBackendOptions = {}): Backend {
  checkCostOptions(options);
  const pinned = options.costModel;
  return defineBackend({
    name: 'reference',
    description: 'pure TypeScript, float64 accumulation (the executable spec)',
    stages: {
      scores: async (input, o) => stage.score(input, o),
      pool: async (scores, shape, o) => stage.pool(scores, shape, o),
      budget: async (pooled, shape, o) => stage.budget(pooled, shape, o),
      select: async (pooled, shape, keep, o) => stage.select(pooled, shape, keep, o),
      attendSelected: async (input, indices, keptLength) => stage.attendSelected(input, indices, keptLength),
      dense: async (input) => stage.dense(input),
    },
    costRule: {
      enabled: options.costRule ?? false,
      model: (ran) => (pinned ? Promise.resolve(pinned) : calibrated('reference', ran, CALIBRATION)),
    },
    async dispose() {},
  });
}
