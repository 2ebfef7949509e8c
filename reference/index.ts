/** The reference backend: the executable specification (pure TypeScript, float64). */
import { defineBackend } from '../harness/core/backend.js';
import type { Backend } from '../harness/core/interface.js';
import * as stage from './stages.js';

export function createReferenceBackend(): Backend {
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
    },
    async dispose() {},
  });
}
