/**
 * One backend skeleton. A backend supplies its trusted stages (inputs already
 * validated, options resolved) and how a call runs on it (serialised, guarded
 * against device loss, ...); `defineBackend` produces the public, validating
 * Backend methods from them. Bad input never computes, by construction: every
 * public method validates its arguments and resolves the per-call options
 * before the backend sees them.
 *
 * tokenSparseAttention is the same for every backend: the dense-before-scoring
 * rule (rules.ts) first, then the backend's fused `layer` where it has one
 * (webgpu), else runPipeline over its stages (reference, wasm).
 */
import { BackendLostError, throwIfAborted } from './errors.js';
import type {
  AttentionInput,
  Backend,
  Budget,
  ResolvedTsaOptions,
  ScoreShape,
  TsaOptions,
  TsaResult,
} from './interface.js';
import { denseLayer, pipelineLayer, type PipelineStages } from './pipeline.js';
import { denseBeforeScoring } from './rules.js';
import {
  resolveOptions,
  resolveOptionsFor,
  validateIndices,
  validateInput,
  validateKeep,
  validateScores,
  validateScoreWindow,
} from './validate.js';

/**
 * A backend's stages on validated arguments. `budget` is the count rule only:
 * the skeleton has already applied the dense-before-scoring rule.
 */
export type BackendStages = PipelineStages;

export interface BackendDefinition {
  name: string;
  description: string;
  threads?: number;
  stages: BackendStages;
  /** Runs one validated call (a stage, or a whole fused layer). Default: as is. */
  run?: <T>(call: () => Promise<T>) => Promise<T>;
  /**
   * The whole layer where it is not dense before scoring (L > minTokens + W,
   * coverage > 0). Default: runPipeline over `stages`, each stage through `run`.
   */
  layer?: (input: AttentionInput, o: ResolvedTsaOptions) => Promise<TsaResult>;
  dispose(): Promise<void>;
  lastDeviceTimeMs?(): number | null;
}

/** The public Backend of a definition; `extra` adds backend-specific members (e.g. GPU-resident calls). */
export function defineBackend<E extends object = Record<never, never>>(def: BackendDefinition, extra?: E): Backend & E {
  const runner = def.run ?? (<T>(call: () => Promise<T>) => call());
  let disposed = false;
  // Each public call, after validation: one made after dispose() or with a fired signal computes nothing.
  const admit = (o: ResolvedTsaOptions): ResolvedTsaOptions => {
    if (disposed) throw new BackendLostError(`the ${def.name} backend was disposed`);
    throwIfAborted(o.signal);
    return o;
  };
  // A stage whose call was aborted before its turn never starts.
  const run = <T>(o: ResolvedTsaOptions, call: () => Promise<T>): Promise<T> =>
    runner(() => {
      throwIfAborted(o.signal);
      return call();
    });
  const s = def.stages;
  // Each stage through `run`: what runPipeline composes, and what the public stage methods call.
  const ran: PipelineStages = {
    scores: (input, o) => run(o, () => s.scores(input, o)),
    pool: (scores, shape, o) => run(o, () => s.pool(scores, shape, o)),
    budget: (pooled, shape, o) => run(o, () => s.budget(pooled, shape, o)),
    select: (pooled, shape, keep, o) => run(o, () => s.select(pooled, shape, keep, o)),
    attendSelected: (input, indices, n, o) => run(o, () => s.attendSelected(input, indices, n, o)),
    dense: (input, o) => run(o, () => s.dense(input, o)),
  };
  const layer = def.layer;
  const backend: Backend = {
    name: def.name,
    description: def.description,
    ...(def.threads !== undefined ? { threads: def.threads } : {}),
    async scores(input: AttentionInput, options?: TsaOptions) {
      validateInput(input);
      return ran.scores(input, admit(resolveOptionsFor(input, options)));
    },
    async pool(scores: Float32Array, shape: ScoreShape, options?: TsaOptions) {
      const o = resolveOptions(options);
      validateScores('scores', scores, shape);
      validateScoreWindow(shape, o);
      return ran.pool(scores, shape, admit(o));
    },
    async budget(pooled: Float32Array, shape: ScoreShape, options?: TsaOptions): Promise<Budget> {
      const o = resolveOptions(options);
      validateScores('pooled', pooled, shape);
      validateScoreWindow(shape, o);
      admit(o);
      return denseBeforeScoring(shape.prefixLen + o.window, o) ?? ran.budget(pooled, shape, o);
    },
    async select(pooled: Float32Array, shape: ScoreShape, keep: number, options?: TsaOptions) {
      const o = resolveOptions(options);
      validateScores('pooled', pooled, shape);
      validateKeep(keep, shape);
      validateScoreWindow(shape, o, keep);
      return ran.select(pooled, shape, keep, admit(o));
    },
    async attendSelected(input: AttentionInput, indices: Int32Array, keptLength: number, options?: TsaOptions) {
      const o = resolveOptions(options);
      validateInput(input);
      validateIndices(indices, keptLength, input);
      return ran.attendSelected(input, indices, keptLength, admit(o));
    },
    async dense(input: AttentionInput, options?: TsaOptions) {
      const o = resolveOptions(options);
      validateInput(input);
      return ran.dense(input, admit(o));
    },
    async tokenSparseAttention(input: AttentionInput, options?: TsaOptions) {
      const o = resolveOptions(options);
      validateInput(input);
      admit(o);
      const early = denseBeforeScoring(input.seqLen, o);
      if (early) return denseLayer(ran, input, o, early);
      return layer ? run(o, () => layer(input, o)) : pipelineLayer(ran, input, o);
    },
    /** Later calls reject with BackendLostError; calls already running finish (or fail) first. */
    dispose: () => {
      disposed = true;
      return def.dispose();
    },
    ...(def.lastDeviceTimeMs ? { lastDeviceTimeMs: () => def.lastDeviceTimeMs!() } : {}),
  };
  return Object.assign(backend, extra);
}
