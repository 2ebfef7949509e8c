/// <reference types="@webgpu/types" preserve="true" />
/**
 * The fused GPU layer: every stage recorded into one submission, no readback
 * between stages. One LayerPlan per call makes the host-side decisions once
 * (core's cost rule before scoring, beforeProbe, and its bound maxKeptLength
 * on L'). With the rule on, the probe runs first on the device (the scores
 * of the last PROBE_QUERIES window queries, pooled over the prefix, counted
 * by the budget kernels with the bound) and probeGate zeroes the full
 * selection's workgroup counts where it would not pay; otherwise the GPU
 * budget (stages/budget.ts) decides sparse or dense on the device, as in the
 * spec. decodeLayer turns the state words left into the Budget, once.
 *
 * The dense-before-scoring rule (short context, zero coverage) is core's
 * (harness/core/rules.ts) and is applied before a plan is made.
 */
import { BackendResourceError } from '../harness/core/errors.js';
import type { AttentionShape, BlockDecision, BlockSparseResult, Budget, ResolvedBlockSparse, ResolvedTsaOptions } from '../harness/core/interface.js';
import { blockFloorDecision } from '../harness/core/block-cost.js';
import { selectedShares } from '../harness/core/block-sparse.js';
import { blockCount } from '../harness/core/validate.js';
import { blockScores } from './stages/block-scores.js';
import { blockLists, blockSelect, maskBuffer, maskBytes, padMaskRows } from './stages/block-select.js';
import { keptLengthOf, nothingPruned } from '../harness/core/rules.js';
import { afterProbe, beforeProbe, PROBE_QUERIES, type CostModel } from '../harness/core/cost.js';
import { maxKeptLength } from './cost.js';
import { GATE } from './kernels/attend.wgsl.js';
import { MODE_GATE, PROBE_GATE } from './kernels/gate.wgsl.js';
import { STATE } from './kernels/state.js';
import { attend, attendInto, gather, scatter } from './stages/attend.js';
import { f16K } from './stages/attend-f16.js';
import { budget } from './stages/budget.js';
import { dimsOf, stateBuffer, stateWindow, type Dims, type GpuCtx, type StageCtx } from './stages/common.js';
import { pool, score } from './stages/score.js';
import { select, type Selection } from './stages/select.js';
import type { HeadTensor, Window } from './resources.js';

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
  /** Dense decided before scoring (core's rule, or the cost rule: 'not-worth-it'), or null: the GPU decides. */
  pre: Budget | null;
  /** The cost rule's rates where the probe runs (rule on, `pre` null), else null. */
  cost: CostModel | null;
  /** The cost rule's largest L' worth running sparse, the probe's bound (L when the rule is off). */
  maxKeptLength: number;
  /**
   * With blockSparse and the cost rule on, block-cost.ts's first step on L rows: 'not-worth-it'
   * where even the floor share would not pay (then `o` has no blockSparse and the layer attends
   * plainly), else 'run' (the GPU has no block probe); null without the rule.
   */
  blockDecision: BlockDecision | null;
}

/**
 * The plan of a layer. `decided`: the dense budget of core's
 * dense-before-scoring rule where it applies (defineBackend applies it before
 * calling the fused layer; the GPU-resident entry passes it here).
 */
export function planLayer(shape: AttentionShape, options: ResolvedTsaOptions, cost: CostRule, decided: Budget | null = null): LayerPlan {
  const bs = options.blockSparse;
  const blockDecision = bs && cost ? blockFloorDecision(shape, shape.seqLen, false, bs, cost) : null;
  const o = blockDecision?.verdict === 'not-worth-it' ? withoutBlocks(options) : options;
  const d = dimsOf(shape, o.window);
  if (decided || !cost) return { d, o, pre: decided, cost: null, maxKeptLength: d.L, blockDecision };
  const pre = beforeProbe(shape, o, cost);
  return { d, o, pre, cost: pre ? null : cost, maxKeptLength: maxKeptLength(shape, o, cost), blockDecision };
}

function withoutBlocks(o: ResolvedTsaOptions): ResolvedTsaOptions {
  const { blockSparse: _, ...rest } = o;
  return rest;
}

/** Writes the given state words (the rest zero): decisions made on the host. */
export function writeState(ctx: GpuCtx, words: Partial<Record<'mode' | 'keep' | 'pruned' | 'keptLength', number>>): void {
  const init = new Uint32Array(STATE.words);
  for (const [k, v] of Object.entries(words)) init[STATE[k as keyof typeof words]] = v;
  ctx.device.queue.writeBuffer(stateBuffer(ctx), 0, init);
}

/**
 * The attention of a layer's rows: attend, or with blockSparse XAttention's three stages on them
 * (blockScores -> blockSelect -> attendBlocks, each timed under its name, the mask left on the
 * device in 'block.mask'); n rows: d.L, or the state's L' under `gate`.
 */
function attention(ctx: StageCtx, d: Dims, t: LayerTensors, kvDiv: number, gate: number, bs: ResolvedBlockSparse | undefined): HeadTensor {
  if (!bs) return attend(ctx, d, t.q, t.k, t.v, kvDiv, gate);
  const { rec } = ctx;
  rec.mark('blockScores');
  const masses = blockScores(ctx, d, t.q, t.k, kvDiv, bs, gate);
  rec.mark('blockSelect');
  const lists = blockLists(ctx, d.H, d.L, blockSelect(ctx, d.H, d.L, masses, bs, gate), bs.blockSize, gate);
  rec.mark('attendBlocks');
  const o = attend(ctx, d, t.q, t.k, t.v, kvDiv, gate, lists);
  rec.mark('attend');
  return o;
}

/** Dense attention on all L rows (XAttention's with `bs`), into `out` (the state must say dense). */
export function recordDense(ctx: StageCtx, d: Dims, t: LayerTensors, sel: Selection, out: GPUBuffer, gate: number = GATE.always, bs?: ResolvedBlockSparse): void {
  if (!bs) {
    attendInto(ctx, d, t.q, t.k, t.v, d.G, gate, sel, out);
    return;
  }
  scatter(ctx, d, attention(ctx, d, t, d.G, gate, bs), sel, out);
}

/**
 * attend on L' rows (XAttention with `bs`), scatter; the kernels but scatter run only if the state
 * says sparse. Without block stages attend reads the kept rows in place (attend's `indices`); with
 * them the kept rows are gathered into compact copies first, which XAttention's block scores read.
 */
export function recordSparse(ctx: StageCtx, d: Dims, t: LayerTensors, sel: Selection, out: GPUBuffer, bs?: ResolvedBlockSparse): void {
  if (!bs) {
    attendInto(ctx, d, t.q, t.k, t.v, d.G, GATE.ifSparse, sel, out, sel.indices);
    return;
  }
  const compact = {
    q: gather(ctx, d, t.q, 1, sel, 'gather.q'),
    k: gather(ctx, d, t.k, d.G, sel, 'gather.k'),
    v: gather(ctx, d, t.v, d.G, sel, 'gather.v'),
  };
  scatter(ctx, d, attention(ctx, d, compact, 1, GATE.ifSparse, bs), sel, out);
}

/** The spec's selection: score, pool, budget (its own, no bound), select. */
function recordSelection(ctx: StageCtx, plan: LayerPlan, t: LayerTensors): void {
  const { rec } = ctx;
  const { d, o } = plan;
  rec.mark('scores');
  const scores = score(ctx, d, t.q, t.k);
  rec.mark('pool');
  const pooled = pool(ctx, d, scores, o.poolKernel);
  rec.mark('budget');
  budget(ctx, d, pooled, o, d.L);
  rec.mark('select');
  select(ctx, d, pooled);
}

/**
 * The cost rule's probe (core's probe.ts, on the device): the scores of the
 * last PROBE_QUERIES window queries over the prefix [0, L - W), pooled and
 * counted by the budget kernels with the bound; probeGate then lets the
 * selection run or zeroes its workgroups (state: modeNotWorthIt).
 */
function recordProbe(ctx: StageCtx, plan: LayerPlan, t: LayerTensors): void {
  const { rec } = ctx;
  const { d, o } = plan;
  rec.mark('scores');
  const sampled = score(ctx, dimsOf(shapeOf(d), Math.min(PROBE_QUERIES, d.W)), t.q, t.k, 'probe.');
  budget(ctx, d, pool(ctx, d, sampled, o.poolKernel, 'probe.'), o, plan.maxKeptLength);
  rec.gated(
    (grids, words) => rec.dispatch(PROBE_GATE, { L: d.L, W: d.W, maxKeptLength: plan.maxKeptLength, words }, { state: stateWindow(ctx), grids }, [1]),
    () => recordSelection(ctx, plan, t),
  );
}

const shapeOf = (d: Dims): AttentionShape => ({ heads: d.H, kvHeads: d.Hkv, headDim: d.D, seqLen: d.L });

/**
 * Records the whole layer into ctx.rec: dense without scoring where the plan
 * says so; otherwise (after the probe, where the cost rule is on) score,
 * pool, budget, select, and both the sparse and the dense attention, each
 * gated on the mode the GPU left in the state.
 */
export function recordLayer(ctx: StageCtx, plan: LayerPlan, t: LayerTensors, sel: Selection, out: GPUBuffer): void {
  const { rec } = ctx;
  const { d } = plan;
  const bs = plan.o.blockSparse;
  if (plan.pre) {
    writeState(ctx, { mode: STATE.modeDense, keptLength: d.L });
    rec.mark('attend');
    recordDense(ctx, d, t, sel, out, GATE.always, bs);
    return;
  }
  // At f16 the scoring and the dense branch read one f16 copy of K: made here, ungated.
  if (ctx.precision === 'f16') f16K(ctx, d, t.k);
  if (plan.cost) recordProbe(ctx, plan, t);
  else recordSelection(ctx, plan, t);
  rec.mark('attend');
  // Both branches recorded, each launching workgroups only if the mode the GPU left selects it.
  const branch = (sparse: boolean) => (grids: Window, words: number) =>
    rec.dispatch(MODE_GATE, { sparse: sparse ? 1 : 0, words }, { state: stateWindow(ctx), grids }, [1]);
  rec.gated(branch(false), () => recordDense(ctx, d, t, sel, out, GATE.ifDense, bs));
  rec.gated(branch(true), () => recordSparse(ctx, d, t, sel, out, bs));
}

/**
 * The buffers a layer reads back for its result: where scored, state words and [H][L]-strided
 * indices; with blockSparse, the device mask (sized for the nb of L).
 */
export function layerOutputs(ctx: GpuCtx, plan: LayerPlan, sel: Selection): { src: GPUBuffer; bytes: number }[] {
  const { d, o } = plan;
  const mask = o.blockSparse ? [{ src: maskBuffer(ctx, d.H, d.L, o.blockSparse.blockSize), bytes: maskBytes(d.H, blockCount(d.L, o)) }] : [];
  if (plan.pre) return mask;
  return [{ src: stateBuffer(ctx), bytes: STATE.words * 4 }, { src: sel.indices.parts[0]!.buffer, bytes: d.H * d.L * 4 }, ...mask];
}

export interface LayerInfo {
  budget: Budget;
  keptLength: number;
  indices: Int32Array | null;
  /** With blockSparse: the mask of the rows XAttention ran on (compact when sparse) and its share. */
  blockSparse?: BlockSparseResult;
  /** With blockSparse and the cost rule: the block rule's verdict (LayerPlan.blockDecision). */
  blockDecision?: BlockDecision;
}

/** The layer's Budget, L', kept indices (and block mask) from what layerOutputs read back. */
export function decodeLayer(plan: LayerPlan, data: ArrayBuffer[]): LayerInfo {
  const budget = plan.pre ?? budgetFromState(new Uint32Array(data[0]!), plan);
  const keptLength = keptLengthOf(budget, plan.d.L, plan.o);
  const indices = budget.mode === 'sparse' ? packIndices(new Int32Array(data[1]!), plan.d, keptLength) : null;
  const decision = plan.blockDecision ? { blockDecision: plan.blockDecision } : {};
  if (!plan.o.blockSparse) return { budget, keptLength, indices, ...decision };
  const H = plan.d.H;
  const nb = blockCount(keptLength, plan.o);
  const mask = padMaskRows(new Uint8Array(data[data.length - 1]!, 0, maskBytes(H, nb)), H, nb, true);
  return { budget, keptLength, indices, blockSparse: { composed: indices !== null, blocks: nb, mask, selectedShare: selectedShares(mask, H, nb) }, ...decision };
}

/**
 * The Budget the GPU left in the state words (budgetDecide, probeGate).
 * Not worth it after the probe: core's afterProbe verdict on the estimate.
 */
export function budgetFromState(state: Uint32Array, plan: Pick<LayerPlan, 'd' | 'o' | 'maxKeptLength'> & { cost?: CostModel | null }): Budget {
  const mode = state[STATE.mode]!;
  const keep = state[STATE.keep]!;
  const pruned = state[STATE.pruned]!;
  if (mode === STATE.modeSparse) return { mode: 'sparse', keep, pruned };
  if (mode === STATE.modeNothingPruned) return nothingPruned(plan.o);
  if (mode === STATE.modeNotWorthIt) {
    const { d } = plan;
    const verdict = plan.cost ? afterProbe(shapeOf(d), keep + d.W, plan.o, plan.cost) : null;
    if (verdict) return verdict;
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
