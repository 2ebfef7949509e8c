/// <reference types="@webgpu/types" preserve="true" />
/**
 * The fused GPU layer: every stage recorded into one submission, no readback
 * between stages. One LayerPlan per call makes the host-side decisions once
 * (the cost rule before scoring and its bound maxKeptLength on L'); the GPU
 * budget (stages/budget.ts) decides sparse or dense on the device, and
 * decodeLayer turns the state words it left into the Budget, once.
 *
 * The dense-before-scoring rule (short context, zero coverage) is core's
 * (harness/core/rules.ts) and is applied before a plan is made.
 */
import { BackendResourceError } from '../harness/core/errors.js';
import type { AttentionShape, Budget, ResolvedTsaOptions } from '../harness/core/interface.js';
import { keptLengthOf, nothingPruned } from '../harness/core/rules.js';
import { maxKeptLength, worthScoring, type CostModel } from './cost.js';
import { GATE } from './kernels/attend.wgsl.js';
import { STATE } from './kernels/state.js';
import { attend, gather, scatter } from './stages/attend.js';
import { budget } from './stages/budget.js';
import { dimsOf, stateBuffer, type Dims, type GpuCtx, type StageCtx } from './stages/common.js';
import { pool, score } from './stages/score.js';
import { select, type Selection } from './stages/select.js';
import type { HeadTensor } from './resources.js';

export interface LayerTensors {
  q: HeadTensor;
  k: HeadTensor;
  v: HeadTensor;
}

/** The cost rule of a backend: off (the spec's pipeline), or on with its rates. */
export type CostRule = CostModel | null;

/** What the host decides about one layer, made once per call. */
export interface LayerPlan {
  d: Dims;
  o: ResolvedTsaOptions;
  /** Dense decided before scoring (core's rule, or the cost rule: 'not-worth-it'), or null: the GPU budget decides. */
  pre: Budget | null;
  /** The cost rule's largest L' worth running sparse (L when the rule is off). */
  maxKeptLength: number;
}

/**
 * The plan of a layer. `decided`: the dense budget of core's
 * dense-before-scoring rule where it applies (defineBackend applies it before
 * calling the fused layer; the GPU-resident entry passes it here).
 */
export function planLayer(shape: AttentionShape, o: ResolvedTsaOptions, cost: CostRule, decided: Budget | null = null): LayerPlan {
  const d = dimsOf(shape, o.window);
  if (decided) return { d, o, pre: decided, maxKeptLength: d.L };
  if (!cost) return { d, o, pre: null, maxKeptLength: d.L };
  const pre = worthScoring(shape, o, cost);
  return {
    d,
    o,
    pre: pre.score ? null : { mode: 'dense', reason: 'not-worth-it', detail: pre.detail },
    maxKeptLength: maxKeptLength(shape, cost),
  };
}

/** Writes the given state words (the rest zero): decisions made on the host. */
export function writeState(ctx: GpuCtx, words: Partial<Record<'mode' | 'keep' | 'pruned' | 'keptLength', number>>): void {
  const init = new Uint32Array(STATE.words);
  for (const [k, v] of Object.entries(words)) init[STATE[k as keyof typeof words]] = v;
  ctx.device.queue.writeBuffer(stateBuffer(ctx), 0, init);
}

/** Dense attention on all L rows, scattered to `out` (the state must say dense). */
export function recordDense(ctx: StageCtx, d: Dims, t: LayerTensors, sel: Selection, out: GPUBuffer, gate: number = GATE.always): void {
  const o = attend(ctx, d, t.q, t.k, t.v, d.G, gate);
  scatter(ctx, d, o, sel, out);
}

/** gather (Q, K, V), attend on L' rows, scatter; the kernels but scatter run only if the state says sparse. */
export function recordSparse(ctx: StageCtx, d: Dims, t: LayerTensors, sel: Selection, out: GPUBuffer): void {
  const qc = gather(ctx, d, t.q, 1, sel, 'gather.q');
  const kc = gather(ctx, d, t.k, d.G, sel, 'gather.k');
  const vc = gather(ctx, d, t.v, d.G, sel, 'gather.v');
  const o = attend(ctx, d, qc, kc, vc, 1, GATE.ifSparse);
  scatter(ctx, d, o, sel, out);
}

/**
 * Records the whole layer into ctx.rec: dense without scoring where the plan
 * says so; otherwise score, pool, budget, select, and both the sparse and the
 * dense attention, each gated on the mode the GPU budget writes.
 */
export function recordLayer(ctx: StageCtx, plan: LayerPlan, t: LayerTensors, sel: Selection, out: GPUBuffer): void {
  const { rec } = ctx;
  const { d, o } = plan;
  if (plan.pre) {
    writeState(ctx, { mode: STATE.modeDense, keptLength: d.L });
    rec.mark('attend');
    recordDense(ctx, d, t, sel, out);
    return;
  }
  rec.mark('scores');
  const scores = score(ctx, d, t.q, t.k);
  rec.mark('pool');
  const pooled = pool(ctx, d, scores, o.poolKernel);
  rec.mark('budget');
  budget(ctx, d, pooled, o, plan.maxKeptLength);
  rec.mark('select');
  select(ctx, d, pooled);
  rec.mark('attend');
  recordDense(ctx, d, t, sel, out, GATE.ifDense);
  recordSparse(ctx, d, t, sel, out);
}

/** The buffers a scored layer reads back for its result: state words and [H][L]-strided indices. */
export function layerOutputs(ctx: GpuCtx, plan: LayerPlan, sel: Selection): { src: GPUBuffer; bytes: number }[] {
  if (plan.pre) return [];
  return [
    { src: stateBuffer(ctx), bytes: STATE.words * 4 },
    { src: sel.indices.parts[0]!.buffer, bytes: plan.d.H * plan.d.L * 4 },
  ];
}

export interface LayerInfo {
  budget: Budget;
  keptLength: number;
  indices: Int32Array | null;
}

/** The layer's Budget, L' and kept indices from what layerOutputs read back ([] when decided on the host). */
export function decodeLayer(plan: LayerPlan, data: ArrayBuffer[]): LayerInfo {
  const budget = plan.pre ?? budgetFromState(new Uint32Array(data[0]!), plan);
  const keptLength = keptLengthOf(budget, plan.d.L, plan.o);
  const indices = budget.mode === 'sparse' ? packIndices(new Int32Array(data[1]!), plan.d, keptLength) : null;
  return { budget, keptLength, indices };
}

/** The Budget the GPU budget left in the state words (budgetDecide). */
export function budgetFromState(state: Uint32Array, plan: Pick<LayerPlan, 'd' | 'o' | 'maxKeptLength'>): Budget {
  const mode = state[STATE.mode]!;
  const keep = state[STATE.keep]!;
  const pruned = state[STATE.pruned]!;
  if (mode === STATE.modeSparse) return { mode: 'sparse', keep, pruned };
  if (mode === STATE.modeNothingPruned) return nothingPruned(plan.o);
  if (mode === STATE.modeNotWorthIt) {
    const { d } = plan;
    return {
      mode: 'dense',
      reason: 'not-worth-it',
      detail: `cost rule: the budget keeps L' = ${keep + d.W} of ${d.L} (pruned ${pruned}); sparse pays only for L' <= ${plan.maxKeptLength} on this device`,
    };
  }
  throw new BackendResourceError(`the GPU budget left no decision in the state buffer (mode word ${mode}): the device may have dropped the work`, 'INTERNAL');
}

/** [H][L]-strided indices to [H][keptLength]. */
export function packIndices(strided: Int32Array, d: Dims, keptLength: number): Int32Array {
  const out = new Int32Array(d.H * keptLength);
  for (let h = 0; h < d.H; h++) out.set(strided.subarray(h * d.L, h * d.L + keptLength), h * keptLength);
  return out;
}
