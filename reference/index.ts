/** The reference backend: the executable specification (pure TypeScript, float64). */
import { defineBackend } from '../harness/core/backend.js';
import type { BlockSparseBackend } from '../harness/core/interface.js';
import * as stage from './stages.js';
import * as xattention from './xattention.js';

export function createReferenceBackend(): BlockSparseBackend {
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
      blockScores: async (input, o) => xattention.blockScores(input, o),
      blockSelect: async (masses, shape, o) => xattention.blockSelect(masses, shape, o),
      attendBlocks: async (input, mask, o) => xattention.attendBlocks(input, mask, o),
    },
    async dispose() {},
  });
}
