/// <reference types="@webgpu/types" preserve="true" />
/**
 * The GPU-resident entry of the WebGPU backend: the whole layer on Q, K, V
 * already on the backend's device, output into a GPUBuffer, no readback
 * (inputs are not scanned for NaN/Inf, which would need one). The same
 * dense-before-scoring rule as every backend (core's rules.ts), the same
 * fused layer and plan as tokenSparseAttention (layer.ts), XAttention's block stages
 * included (options.blockSparse; the mask is read back only by `info()`).
 */
import { BackendResourceError, throwIfAborted, TsaInputError } from '../harness/core/errors.js';
import type { CostModel } from '../harness/core/cost.js';
import type { AttentionShape, ResolvedTsaOptions, TsaOptions } from '../harness/core/interface.js';
import { denseBeforeScoring } from '../harness/core/rules.js';
import { resolveOptions, validateShape } from '../harness/core/validate.js';
import type { GpuCore } from './core.js';
import { PROBE } from './kernels/probe.wgsl.js';
import { decodeLayer, layerOutputs, planLayer, recordLayer, type LayerInfo } from './layer.js';
import type { DispatchTime } from './recorder.js';
import { bufferAsHeadTensor } from './resources.js';
import { STORAGE_USAGE } from './stages/common.js';
import { narrow, widen } from './stages/convert.js';
import { selectionBuffers } from './stages/select.js';

/** Q, K, V already on this backend's device, layouts as AttentionInput. */
export interface GpuAttentionInput extends AttentionShape {
  q: GPUBuffer;
  k: GPUBuffer;
  v: GPUBuffer;
  /**
   * Element type of q, k, v (default 'f32'). 'f16' (an f16 model's activations)
   * is widened to f32 on the GPU (exact) for scoring; the attention runs at the
   * call's precision.
   */
  dtype?: GpuDtype;
  /** Element type of the output (default 'f32'); 'f16' rounds the f32 result on the GPU. */
  outputDtype?: GpuDtype;
  /**
   * Where to write the output [L][H*D] f32 (at least L*H*D*4 bytes, STORAGE
   * usage); every element is overwritten. Default: a new buffer per call.
   * Reuse one across calls where a fresh buffer is costly: Dawn zero-fills
   * a new buffer at its first use, and on its OpenGL backend that fill is a
   * host upload (BENCHMARKS.md has the H200 numbers).
   */
  output?: GPUBuffer;
}

/** Element type of a GPU-resident tensor. */
export type GpuDtype = 'f32' | 'f16';

export interface GpuTsaResult {
  /** [L][H*D] of outputDtype: `input.output`, or a new buffer; owned by the caller (destroy it when done). */
  output: GPUBuffer;
  /** Resolves when the GPU has finished this call (lastDeviceTimeMs is then valid). */
  done: Promise<void>;
  /**
   * Device ms per stage (scores, pool, budget, select, attend; with blockSparse also blockScores,
   * blockSelect, attendBlocks, not counted in attend here); NaN unless measurable (see profileStages).
   */
  stageMs: Promise<Record<string, number>>;
  /** Each dispatch's device ms where the backend option profileDispatches asks (and the adapter has timestamps), else null. */
  dispatchMs: Promise<DispatchTime[] | null>;
  /** Reads back the budget, L' and kept indices of this call (a small transfer), and with blockSparse the block mask and its share. */
  info(): Promise<LayerInfo>;
}

type Named = [name: 'q' | 'k' | 'v' | 'output', buffer: GPUBuffer, heads: number];

/** The checks that need no device: buffer type, size, usage, map state, aliasing. */
function checkBuffers(input: GpuAttentionInput): Named[] {
  const { heads: H, kvHeads: Hkv, headDim: D, seqLen: L } = input;
  for (const key of ['dtype', 'outputDtype'] as const) {
    const v = input[key];
    if (v !== undefined && v !== 'f32' && v !== 'f16') throw new TsaInputError(`${key} must be 'f32' or 'f16', got ${String(v)}`, 'TYPE');
  }
  const named: Named[] = [['q', input.q, H], ['k', input.k, Hkv], ['v', input.v, Hkv]];
  if (input.output !== undefined) named.push(['output', input.output, H]);
  for (const [name, buf, heads] of named) {
    const dtype = (name === 'output' ? input.outputDtype : input.dtype) ?? 'f32';
    const size = dtype === 'f16' ? 2 : 4;
    const isBuffer = typeof GPUBuffer === 'function' ? buf instanceof GPUBuffer : typeof (buf as GPUBuffer | null)?.mapAsync === 'function';
    if (!isBuffer) throw new TsaInputError(`${name} must be a GPUBuffer of this backend's device`, 'TYPE');
    if (buf.size < heads * L * D * size) {
      const layout = name === 'output' ? `[${L}][${heads * D}]` : `[${heads}][${L}][${D}]`;
      throw new TsaInputError(`${name} has ${buf.size} bytes, expected at least ${heads * L * D * size} = ${layout} ${dtype}`, 'SHAPE');
    }
    if ((buf.usage & GPUBufferUsage.STORAGE) === 0) throw new TsaInputError(`${name} needs GPUBufferUsage.STORAGE`, 'TYPE');
    if (buf.mapState !== 'unmapped') throw new TsaInputError(`${name} is ${buf.mapState}; unmap it before the call`, 'TYPE');
  }
  if (input.output !== undefined && [input.q, input.k, input.v].includes(input.output)) {
    throw new TsaInputError('output must be a buffer other than q, k and v (it is written while they are read)', 'TYPE');
  }
  return named;
}

/** Whether `buf` can be used on the core's device: the probe kernel alone in an error scope. */
async function probe(core: GpuCore, buf: GPUBuffer): Promise<string | null> {
  const { device } = core;
  device.pushErrorScope('validation');
  let thrown: string | null = null;
  try {
    const { rec } = core.stageCtx();
    rec.dispatch(PROBE, { at: 0 }, { x: { binding: { buffer: buf, offset: 0, size: 4 }, base: 0 } }, [1]);
    await rec.submit().submitted;
  } catch (e) {
    thrown = e instanceof Error ? e.message : String(e);
  }
  const error = await device.popErrorScope().catch(() => null);
  return thrown ?? error?.message ?? null;
}

/** A validation failure of a resident call caused by one of the caller's buffers, as TsaInputError. */
async function blameInput(core: GpuCore, named: Named[], e: unknown): Promise<unknown> {
  if (!(e instanceof BackendResourceError) || e.kind !== 'VALIDATION') return e;
  for (const [name, buf] of named) {
    const problem = await core.plumbing.run(() => probe(core, buf)).catch(() => null);
    if (problem) {
      return new TsaInputError(`${name} cannot be used on this backend's device (destroyed, or made on another device): ${problem}`, 'TYPE');
    }
  }
  return e;
}

/**
 * A resident call; `syncSegments` times each stage by host waits where the adapter has no
 * timestamps; `model`: the cost rule's rates for this call instead of the backend's (the
 * calibration's first call records the rule's kernels with them while it fits the backend's).
 */
export type ResidentCall = (input: GpuAttentionInput, options: TsaOptions | undefined, syncSegments: boolean, model?: CostModel) => Promise<GpuTsaResult>;

/** tokenSparseAttentionGpu of a backend (per-stage host waits where the backend option profileStages asks). */
export function residentEntry(call: ResidentCall, core: GpuCore) {
  return (input: GpuAttentionInput, options?: TsaOptions): Promise<GpuTsaResult> => call(input, options, core.profileStages);
}

/** The resident layer of a backend (the entry, and the calibration's timed calls). */
export function residentCall(core: GpuCore, rates: (o: ResolvedTsaOptions) => Promise<CostModel>): ResidentCall {
  return async function tokenSparseAttentionGpu(input, options, syncSegments, model) {
    validateShape(input);
    const o = resolveOptions(options);
    const named = checkBuffers(input);
    const { heads: H, kvHeads: Hkv, headDim: D, seqLen: L } = input;
    const early = denseBeforeScoring(L, o);
    // The rates also where core's rule decided dense: the block rule's first step needs them (layer.ts).
    const cost = (!early || o.blockSparse) && (o.costRule ?? core.costDefault) ? (model ?? (await rates(o))) : null;
    const plan = planLayer(input, o, cost, early);
    const call = async (): Promise<GpuTsaResult> => {
      throwIfAborted(o.signal);
      const ctx = core.stageCtx(o);
      const tensor = (buf: GPUBuffer, heads: number, name: string) =>
        input.dtype === 'f16' ? widen(ctx, buf, heads, L * D, `in16.${name}`) : bufferAsHeadTensor(buf, heads, L * D);
      const t = { q: tensor(input.q, H, 'q'), k: tensor(input.k, Hkv, 'k'), v: tensor(input.v, Hkv, 'v') };
      const f16Out = input.outputDtype === 'f16';
      const output = input.output ?? core.device.createBuffer({ label: 'tsa output', size: L * H * D * (f16Out ? 2 : 4), usage: STORAGE_USAGE });
      const sel = selectionBuffers(ctx, plan.d);
      const layerOut = f16Out ? core.buffers.get('out.f32', L * H * D * 4, STORAGE_USAGE) : output;
      recordLayer(ctx, plan, t, sel, layerOut);
      if (f16Out) narrow(ctx, layerOut, output, L * H * D);
      // Submitted before this call resolves (work the caller queues next runs after it).
      await ctx.rec.prepare();
      let copies: ReturnType<GpuCore['plumbing']['copyOut']>[] = [];
      const { deviceMs, submitted, segmentMs, dispatchMs } = ctx.rec.submit((enc) => {
        copies = layerOutputs(ctx, plan, sel).map((x) => core.plumbing.copyOut(enc, x.src, x.bytes));
      }, syncSegments);
      const done = deviceMs.then((ms) => {
        core.deviceMs = ms;
      });
      done.catch(() => {});
      let info: Promise<LayerInfo> | null = null;
      return {
        output,
        done,
        stageMs: segmentMs,
        dispatchMs,
        info: () => (info ??= submitted.then(() => core.plumbing.readAll(copies)).then((data) => decodeLayer(plan, data))),
      };
    };
    try {
      return await core.plumbing.run(call);
    } catch (e) {
      throw await blameInput(core, named, e);
    }
  };
}
