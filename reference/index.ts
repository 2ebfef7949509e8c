/** The reference backend: the executable specification (pure TypeScript, float64). */
import type { AttentionInput, Backend, ScoreShape, TsaOptions } from '../harness/core/interface.js';
import { runPipeline, type PipelineStages } from '../harness/core/pipeline.js';
import {
  resolveOptions,
  resolveOptionsFor,
  validateIndices,
  validateInput,
  validateKeep,
  validateScores,
} from '../harness/core/validate.js';
import * as stage from './stages.js';

/** The stages without re-validation, for runPipeline (which validates once). */
const trusted: PipelineStages = {
  scores: async (input, o) => stage.score(input, resolveOptionsFor(input, o)),
  pool: async (scores, shape, o) => stage.pool(scores, shape, resolveOptions(o)),
  budget: async (pooled, shape, o) => stage.budget(pooled, shape, resolveOptions(o)),
  select: async (pooled, shape, keep, o) => stage.select(pooled, shape, keep, resolveOptions(o)),
  attendSelected: async (input, indices, keptLength) => stage.attendSelected(input, indices, keptLength),
  dense: async (input) => stage.dense(input),
};

export function createReferenceBackend(): Backend {
  return {
    name: 'reference',
    description: 'pure TypeScript, float64 accumulation (the executable spec)',
    async scores(input: AttentionInput, options?: TsaOptions) {
      validateInput(input);
      return stage.score(input, resolveOptionsFor(input, options));
    },
    async pool(scores: Float32Array, shape: ScoreShape, options?: TsaOptions) {
      validateScores('scores', scores, shape);
      return stage.pool(scores, shape, resolveOptions(options));
    },
    async budget(pooled: Float32Array, shape: ScoreShape, options?: TsaOptions) {
      validateScores('pooled', pooled, shape);
      return stage.budget(pooled, shape, resolveOptions(options));
    },
    async select(pooled: Float32Array, shape: ScoreShape, keep: number, options?: TsaOptions) {
      validateScores('pooled', pooled, shape);
      validateKeep(keep, shape);
      return stage.select(pooled, shape, keep, resolveOptions(options));
    },
    async attendSelected(input: AttentionInput, indices: Int32Array, keptLength: number) {
      validateInput(input);
      validateIndices(indices, keptLength, input);
      return stage.attendSelected(input, indices, keptLength);
    },
    async dense(input: AttentionInput) {
      validateInput(input);
      return stage.dense(input);
    },
    tokenSparseAttention(input: AttentionInput, options?: TsaOptions) {
      return runPipeline(trusted, input, options);
    },
    async dispose() {},
  };
}
