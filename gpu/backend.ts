/// <reference types="@webgpu/types" preserve="true" />
/**
 * The WebGPU backend: every stage on the GPU, assembled by core's
 * defineBackend (harness/core/backend.ts). Each stage call records its
 * kernels (gpu/stages/) and runs in one submission (XAttention's block stages:
 * block-calls.ts); tokenSparseAttention is the fused layer (layer.ts), with
 * blockSparse too: one submission, no readback between stages.
 * Calls run one at a time and device failures are typed (plumbing.ts);
 * `tokenSparseAttentionGpu` (resident.ts) takes and returns GPUBuffers so
 * layers chain on the GPU.
 */
import { defineBackend, type BackendStages } from '../harness/core/backend.js';
import { blockStageCalls } from './block-calls.js';
import type { CostModel } from '../harness/core/cost.js';
import { gpuBlockCostModel, gpuCostModel } from './calibrate.js';
import type { AttentionInput, BlockSparseBackend, Budget, ResolvedTsaOptions, ScoreShape, StageTimings, TsaResult } from '../harness/core/interface.js';
import { BLOCK_STAGES } from '../harness/core/stages.js';
import { GpuCore, type WebGpuBackendOptions } from './core.js';
import type { GpuContext } from './context.js';
import { STATE } from './kernels/state.js';
import { budgetFromState, decodeLayer, layerOutputs, packIndices, planLayer, recordDense, recordLayer, recordSparse, writeState } from './layer.js';
import { uploadHeadTensor } from './resources.js';
import { residentCall, residentEntry, type GpuAttentionInput, type GpuTsaResult } from './resident.js';
import { budget } from './stages/budget.js';
import { attendKernelName } from './stages/attend-f16.js';
import { dimsOf, type Dims } from './stages/common.js';
import { pool, score } from './stages/score.js';
import { invertIndices, select, selectionBuffers } from './stages/select.js';

export type { WebGpuBackendOptions } from './core.js';
export type { GpuAttentionInput, GpuDtype, GpuTsaResult } from './resident.js';

/** What the WebGPU backend adds to Backend. */
export interface WebGpuExtras {
  /** The device the backend runs on: GPU-resident inputs must live on it. */
  readonly device: GPUDevice;
  /** The whole layer on GPU-resident Q, K, V (resident.ts). */
  tokenSparseAttentionGpu(input: GpuAttentionInput, options?: import('../harness/core/interface.js').TsaOptions): Promise<GpuTsaResult>;
  lastDeviceTimeMs(): number | null;
}

/** A WebGPU backend instance (createWebGpuBackend). */
export type WebGpuBackend = BlockSparseBackend & WebGpuExtras;

const instances = new WeakSet<object>();

/** Whether `b` was made by createWebGpuBackend. */
export function madeHere(b: object): boolean {
  return instances.has(b);
}

/** Dims of the score-shaped stages: L = prefixLen + W, one KV head per head (unused). */
function scoreDims(shape: ScoreShape, o: ResolvedTsaOptions): Dims {
  return dimsOf({ heads: shape.heads, kvHeads: shape.heads, headDim: 1, seqLen: shape.prefixLen + o.window }, o.window);
}

/** The per-stage calls: each uploads its inputs, records its stage and reads its result back. */
function stageCalls(core: GpuCore): BackendStages {
  const read = async (ctx: ReturnType<GpuCore['stageCtx']>, src: GPUBuffer, bytes: number, o: ResolvedTsaOptions) =>
    (await core.execute(ctx, [{ src, bytes }], o)).data[0]!;
  return {
    async scores(input, o) {
      const d = dimsOf(input, o.window);
      // At precision 'f16' the scores are those of f16-rounded q and k (stages/score.ts).
      const ctx = core.stageCtx(o);
      const q = core.upload('in.q', input.q, d.H, d.L * d.D);
      const k = core.upload('in.k', input.k, d.Hkv, d.L * d.D);
      const s = score(ctx, d, q, k);
      return new Float32Array(await read(ctx, s.parts[0]!.buffer, d.H * d.P * 4, o));
    },
    async pool(scores, shape, o) {
      const d = scoreDims(shape, o);
      const ctx = core.stageCtx();
      const pooled = pool(ctx, d, core.upload('scores', scores, d.H, d.P), o.poolKernel);
      return new Float32Array(await read(ctx, pooled.parts[0]!.buffer, d.H * d.P * 4, o));
    },
    async budget(pooled, shape, o) {
      const d = scoreDims(shape, o);
      const ctx = core.stageCtx();
      const state = budget(ctx, d, core.upload('pooled', pooled, d.H, d.P), o, d.L);
      return budgetFromState(new Uint32Array(await read(ctx, state, STATE.words * 4, o)), { d, o, maxKeptLength: d.L });
    },
    async select(pooled, shape, keep, o) {
      const d = scoreDims(shape, o);
      const ctx = core.stageCtx();
      const p = core.upload('pooled', pooled, d.H, d.P);
      writeState(ctx, { mode: STATE.modeSparse, keep, keptLength: keep + d.W });
      const sel = select(ctx, d, p);
      return packIndices(new Int32Array(await read(ctx, sel.indices.parts[0]!.buffer, d.H * d.L * 4, o)), d, keep + d.W);
    },
    async attendSelected(input, indices, keptLength, o) {
      const d = dimsOf(input, 0);
      const ctx = core.stageCtx(o);
      const t = core.inputTensors(input);
      const sel = selectionBuffers(ctx, d);
      const strided = new Int32Array(d.H * d.L);
      for (let h = 0; h < d.H; h++) strided.set(indices.subarray(h * keptLength, (h + 1) * keptLength), h * d.L);
      uploadHeadTensor(core.device.queue, sel.indices, new Float32Array(strided.buffer));
      writeState(ctx, { mode: STATE.modeSparse, keptLength });
      invertIndices(ctx, d, sel, keptLength);
      const out = core.outputBuffer(input);
      recordSparse(ctx, d, t, sel, out);
      return new Float32Array(await read(ctx, out, d.L * d.H * d.D * 4, o));
    },
    async dense(input, o) {
      const d = dimsOf(input, 0);
      const ctx = core.stageCtx(o);
      const t = core.inputTensors(input);
      writeState(ctx, { mode: STATE.modeDense, keptLength: d.L });
      const out = core.outputBuffer(input);
      recordDense(ctx, d, t, selectionBuffers(ctx, d), out);
      return new Float32Array(await read(ctx, out, d.L * d.H * d.D * 4, o));
    },
  };
}

/**
 * The fused layer where core's dense-before-scoring rule did not decide (L > minTokens + W,
 * tau > 0), or with blockSparse where it did (`decided`: XAttention on all rows, on the device).
 */
function fusedLayer(core: GpuCore) {
  return async (input: AttentionInput, o: ResolvedTsaOptions, cost: CostModel | null, decided: Budget | null = null): Promise<TsaResult> => {
    const start = performance.now();
    const plan = planLayer(input, o, cost, decided);
    const ctx = core.stageCtx(o);
    const t = core.inputTensors(input);
    const out = core.outputBuffer(input);
    const sel = selectionBuffers(ctx, plan.d);
    recordLayer(ctx, plan, t, sel, out);
    const outputs = [{ src: out, bytes: input.seqLen * input.heads * input.headDim * 4 }, ...layerOutputs(ctx, plan, sel)];
    const { data, segments } = await core.execute(ctx, outputs, o, core.profileStages);
    const { budget, keptLength, indices, blockSparse, blockDecision } = decodeLayer(plan, data.slice(1));
    const timings: StageTimings = {
      scores: segments.scores ?? 0,
      pool: segments.pool ?? 0,
      budget: segments.budget ?? 0,
      select: segments.select ?? 0,
      attend: segments.attend ?? NaN,
      total: performance.now() - start,
    };
    // The block stages are part of attend (StageTimings).
    if (blockSparse) for (const s of BLOCK_STAGES) timings.attend += timings[s] = segments[s] ?? NaN;
    return {
      ...(blockSparse ? { blockSparse } : {}),
      ...(blockDecision ? { blockDecision } : {}),
      output: new Float32Array(data[0]!),
      budget,
      indices,
      keptLength,
      keptFraction: keptLength / input.seqLen,
      timings,
      precision: ctx.precision,
      attendKernel: attendKernelName(ctx, input.headDim, o.blockSparse?.blockSize),
    };
  };
}

/** The WebGPU backend on an opened (or the caller's) device. */
export function webGpuBackendOn(gpu: GpuContext, options: WebGpuBackendOptions = {}): WebGpuBackend {
  const core = new GpuCore(gpu, options);
  const t = core.ctx.tiles(128);
  const description =
    `WebGPU on ${gpu.summary}; attention tiles ${t.ny * t.tm}x${t.nx * t.tn} (D=128), ` +
    `${gpu.timestamps ? 'timestamp queries' : 'host-timed'}, cost rule ${core.costDefault ? 'on' : 'off'}, ` +
    `precision ${core.precision}${gpu.features.f16 ? ` (f16 attend: ${attendKernelName(core.stageCtx({ precision: 'f16' }), 128)})` : ''}`;
  const run = <T>(call: () => Promise<T>) => core.plumbing.run(call);
  const stages = { ...stageCalls(core), ...blockStageCalls(core) };
  // Pinned, else fitted on this adapter per precision (calibrate.ts); the block rates on the first blockSparse call.
  const rates = (o?: Pick<ResolvedTsaOptions, 'precision' | 'blockSparse'>): Promise<CostModel> => {
    if (core.pinnedCost) return Promise.resolve(core.pinnedCost);
    const target = { adapter: gpu.summary, precision: core.precisionFor(o ?? {}), device: gpu.device, call: resident, timestamps: gpu.timestamps, software: gpu.software };
    return o?.blockSparse ? gpuBlockCostModel(target) : gpuCostModel(target);
  };
  const resident = residentCall(core, rates);
  const backend = defineBackend(
    {
      name: 'webgpu',
      description,
      stages,
      run,
      layer: fusedLayer(core),
      async dispose() {
        if (!core.plumbing.dispose()) return;
        core.buffers.destroy();
        if (gpu.owned) gpu.device.destroy();
      },
      lastDeviceTimeMs: () => core.deviceMs,
      costRule: { enabled: core.costDefault, model: (_, o) => rates(o) },
      precisions: gpu.features.f16
        ? { supported: ['f32', 'f16'], why: '' }
        : { supported: ['f32'], why: `the adapter (${gpu.summary}) has no shader-f16` },
    },
    { device: gpu.device, tokenSparseAttentionGpu: residentEntry(resident, core) },
  ) as WebGpuBackend;
  instances.add(backend);
  return backend;
}
