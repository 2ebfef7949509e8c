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
 * (webgpu), else the cost rule's probe where it is on (wasm) and the
 * pipeline over its stages (reference, wasm); with blockSparse and the rule on, the block stages
 * run only where core's block rule (block-cost.ts) judges they pay, on any backend. Every defined
 * backend has the block-sparse stages too (BlockSparseStages: blockScores, blockSelect,
 * attendBlocks).
 */
import { BackendLostError, throwIfAborted, TsaInputError } from './errors.js';
import type {
  AttentionInput,
  Backend,
  BlockShape,
  BlockSparseBackend,
  BlockSparseStages,
  Precision,
  Budget,
  ResolvedTsaOptions,
  ScoreShape,
  TsaOptions,
  TsaResult,
} from './interface.js';
import { blockStagesOf, hasBlockStages, type BlockStages } from './block-sparse.js';
import { beforeProbe, type CostModel } from './cost.js';
import { denseLayer, pipelineLayer, type LayerStages, type PipelineStages } from './pipeline.js';
import { probeVerdict } from './probe.js';
import { denseBeforeScoring } from './rules.js';
import {
  resolveOptions,
  resolveOptionsFor,
  validateIndices,
  validateInput,
  validateKeep,
  validateMask,
  validateMasses,
  validateScores,
  validateScoreWindow,
} from './validate.js';

/**
 * A backend's stages on validated arguments. `budget` is the count rule only:
 * the skeleton has already applied the dense-before-scoring rule.
 */
export type BackendStages = PipelineStages & Partial<BlockStages>;

export interface BackendDefinition {
  name: string;
  description: string;
  threads?: number;
  stages: BackendStages;
  /** Runs one validated call (a stage, or a whole fused layer). Default: as is. */
  run?: <T>(call: () => Promise<T>) => Promise<T>;
  /**
   * The whole layer where it is not dense before scoring (L > minTokens + W,
   * coverage > 0), and with options.blockSparse also where it is (`decided`: that
   * dense budget; XAttention then runs on all rows). Default: runPipeline over
   * `stages`, each stage through `run`. `cost`: the cost rule's rates where it
   * applies to the call (costRule), else null.
   */
  layer?: (input: AttentionInput, o: ResolvedTsaOptions, cost: CostModel | null, decided?: Budget | null) => Promise<TsaResult>;
  /**
   * The cost rule (cost.ts): `enabled` is the backend's default (a call's
   * `costRule` overrides it), `model` its rates (fitted on first use by
   * timing `stages`, the backend's own run through `run`, or pinned), also
   * public as `costRates()`. Without a fused layer the skeleton applies it
   * on the host (beforeProbe, probe.ts); a fused `layer` applies the same
   * rule itself (webgpu: on the device) and the host probe never runs.
   * `o`: the call's options, where the rates depend on them (a backend may fit
   * the block stages' rates apart on the first blockSparse call, and rates per
   * precision).
   */
  costRule?: { enabled: boolean; model: (stages: PipelineStages, o?: ResolvedTsaOptions) => Promise<CostModel> };
  dispose(): Promise<void>;
  lastDeviceTimeMs?(): number | null;
  /** The precisions a call may ask for (TsaOptions.precision; default ['f32']), and why others are missing. */
  precisions?: { supported: readonly Precision[]; why: string };
}

/** `stages`, each call through `run` (given the call's options); the block stages where the backend has them. */
function serialised(
  s: BackendStages,
  run: <T>(call: () => Promise<T>, o: ResolvedTsaOptions) => Promise<T>,
): BackendStages {
  const pipeline: PipelineStages = {
    scores: (input, o) => run(() => s.scores(input, o), o),
    pool: (scores, shape, o) => run(() => s.pool(scores, shape, o), o),
    budget: (pooled, shape, o) => run(() => s.budget(pooled, shape, o), o),
    select: (pooled, shape, keep, o) => run(() => s.select(pooled, shape, keep, o), o),
    attendSelected: (input, indices, n, o) => run(() => s.attendSelected(input, indices, n, o), o),
    dense: (input, o) => run(() => s.dense(input, o), o),
  };
  if (!hasBlockStages(s)) return pipeline;
  return {
    ...pipeline,
    blockScores: (input, o) => run(() => s.blockScores(input, o), o),
    blockSelect: (masses, shape, o) => run(() => s.blockSelect(masses, shape, o), o),
    attendBlocks: (input, mask, o) => run(() => s.attendBlocks(input, mask, o), o),
  };
}

/**
 * The public Backend of a definition; `extra` adds backend-specific members (e.g. GPU-resident
 * calls). With the block stages it is a BlockSparseBackend; without them a call with
 * options.blockSparse rejects with TsaInputError('OPTION') before computing anything.
 */
export function defineBackend<E extends object = Record<never, never>>(
  def: BackendDefinition & { stages: PipelineStages & BlockStages },
  extra?: E,
): BlockSparseBackend & E;
export function defineBackend<E extends object = Record<never, never>>(def: BackendDefinition, extra?: E): Backend & E;
export function defineBackend<E extends object = Record<never, never>>(def: BackendDefinition, extra?: E): Backend & E {
  const runner = def.run ?? (<T>(call: () => Promise<T>) => call());
  let disposed = false;
  const precisions = def.precisions ?? { supported: ['f32'], why: 'it computes in f32 or better only' };
  // Each public call, after validation: one made after dispose(), with a fired signal, or asking
  // for a precision the backend cannot run (TsaInputError 'PRECISION') computes nothing.
  const admit = (o: ResolvedTsaOptions): ResolvedTsaOptions => {
    if (disposed) throw new BackendLostError(`the ${def.name} backend was disposed`);
    throwIfAborted(o.signal);
    if (o.precision !== undefined && !precisions.supported.includes(o.precision)) {
      throw new TsaInputError(`the ${def.name} backend cannot run precision '${o.precision}': ${precisions.why}`, 'PRECISION');
    }
    return o;
  };
  // A stage whose call was aborted before its turn never starts.
  const run = <T>(o: ResolvedTsaOptions, call: () => Promise<T>): Promise<T> =>
    runner(() => {
      throwIfAborted(o.signal);
      return call();
    });
  // Each stage through `run`: what runPipeline composes, and what the public stage methods call.
  const ran: LayerStages = { name: def.name, ...serialised(def.stages, (call, o) => run(o, call)) };
  const blocks = hasBlockStages(ran) ? ran : null;
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
      if (o.blockSparse) blockStagesOf(ran, def.name);
      const rule = def.costRule;
      const early = denseBeforeScoring(input.seqLen, o);
      // The rates, where the token rule probes (not early) or the block rule decides (blockSparse).
      const model = rule && (o.costRule ?? rule.enabled) && (!early || o.blockSparse) ? await rule.model(ran, o) : null;
      if (layer) {
        // A fused layer keeps XAttention's stages on its device on all rows too; of the block rule it
        // applies the first step (block-cost.ts blockFloorDecision), which needs no probe.
        if (early && !o.blockSparse) return denseLayer(ran, input, o, early);
        return run(o, () => layer(input, o, model, early));
      }
      // With blockSparse and the rule on, every path below lets the block stages run only where they pay (block-cost.ts).
      const blockCost = o.blockSparse ? model : null;
      if (early) return denseLayer(ran, input, o, early, blockCost);
      if (!model) return pipelineLayer(ran, input, o, blockCost);
      const pre = beforeProbe(input, o, model);
      if (pre) return denseLayer(ran, input, o, pre, blockCost);
      const start = performance.now();
      const verdict = await probeVerdict(ran, input, o, model);
      const probeMs = performance.now() - start;
      const result = verdict ? await denseLayer(ran, input, o, verdict, blockCost) : await pipelineLayer(ran, input, o, blockCost);
      result.timings.scores += probeMs;
      result.timings.total += probeMs;
      return result;
    },
    /** Later calls reject with BackendLostError; calls already running finish (or fail) first. */
    dispose: () => {
      disposed = true;
      return def.dispose();
    },
    ...(def.lastDeviceTimeMs ? { lastDeviceTimeMs: () => def.lastDeviceTimeMs!() } : {}),
    ...(def.costRule ? { costRates: async (options?: Pick<TsaOptions, 'precision'>) => def.costRule!.model(ran, admit(resolveOptions(options))) } : {}),
  };
  if (blocks) {
    const blockMethods: BlockSparseStages = {
      async blockScores(input: AttentionInput, options?: TsaOptions) {
        const o = resolveOptions(options);
        validateInput(input);
        return blocks.blockScores(input, admit(o));
      },
      async blockSelect(masses: Float32Array, shape: BlockShape, options?: TsaOptions) {
        const o = resolveOptions(options);
        validateMasses(masses, shape);
        return blocks.blockSelect(masses, shape, admit(o));
      },
      async attendBlocks(input: AttentionInput, mask: Uint8Array, options?: TsaOptions) {
        const o = resolveOptions(options);
        validateInput(input);
        validateMask(mask, input, o);
        return blocks.attendBlocks(input, mask, admit(o));
      },
    };
    Object.assign(backend, blockMethods);
  }
  return Object.assign(backend, extra);
}
