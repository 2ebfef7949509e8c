/// <reference types="@webgpu/types" preserve="true" />
/**
 * One WebGPU backend instance's working parts, shared by its stage calls
 * (backend.ts) and its GPU-resident entry (resident.ts): the plumbing, the
 * stage context (buffers, limits, tiles, pipelines), recorders, uploads and
 * `execute` (submit, read back, device time).
 */
import { throwIfAborted } from '../harness/core/errors.js';
import type { CostModel } from '../harness/core/cost.js';
import type { AttentionInput, AttentionShape, Precision, ResolvedTsaOptions } from '../harness/core/interface.js';
import type { GpuContext } from './context.js';
import { Pipelines } from './kernels/kernel.js';
import type { LayerTensors } from './layer.js';
import { DevicePlumbing } from './plumbing.js';
import { Recorder } from './recorder.js';
import { BufferPool, type BindingLimits, type HeadTensor } from './resources.js';
import { RADIX_ONE_GROUP_KEYS, STORAGE_USAGE, type GpuCtx, type StageCtx } from './stages/common.js';
import type { F16MatrixConfig } from './kernels/attend-f16.wgsl.js';
import { chooseBlockTiles, chooseTiles, type TileConfig } from './tiles.js';

/** Options of the backend itself (the device and adapter choice are CreateWebGpuOptions, index.ts). */
export interface WebGpuBackendOptions {
  /**
   * Run dense where token-sparse attention would not pay on this device
   * (core's rule, harness/core/cost.ts, on the device: cost.ts): Budget
   * {mode: 'dense', reason: 'not-worth-it'}. Only tokenSparseAttention
   * applies it; `budget()` is always the spec's rule. Default true.
   */
  costRule?: boolean;
  /** Pinned rates of the cost rule (default: fitted on this adapter on first use). */
  costModel?: CostModel;
  /** Caps the bytes of one storage binding below the adapter's limit (forces head/row splitting; for tests). */
  maxBindingBytes?: number;
  /** Caps the bytes of one GPUBuffer of a head-major tensor (forces tensors over several buffers; for tests). */
  maxTensorPartBytes?: number;
  /**
   * Scoring keeps the window's logits (H W (L - W) floats) in GPU memory, so that Q.K^T runs
   * once instead of twice, up to this many bytes (default: 4 GiB or the adapter's
   * maxBufferSize, whichever is smaller; 0 recomputes them). The scores are the same.
   */
  scoreLogitsBytes?: number;
  /**
   * Prefix lengths P = L - W up to which the radix selects of budget and select run in one
   * workgroup (per head for select), one dispatch for all byte passes (default 65536; beyond,
   * two dispatches per byte across workgroups). Tuning and tests; the result is the same.
   */
  radixOneGroupKeys?: number;
  /** Overrides the attend/score tile choice (tuning). */
  tiles?: Partial<TileConfig>;
  /**
   * Per-stage device times in TsaResult.timings where the adapter has no
   * timestamp queries: the host waits for each stage before submitting the
   * next (one round trip per stage). Off: those stages read NaN there.
   */
  profileStages?: boolean;
  /**
   * Diagnostics: every dispatch in its own compute pass between two timestamp queries, so that
   * GpuTsaResult.dispatchMs has each kernel's device time (the extra passes add barriers, so
   * totals grow a little). Needs timestamp queries; without them dispatchMs is null.
   */
  profileDispatches?: boolean;
  /**
   * The attention's default precision (a call's `precision` overrides it):
   * 'f32' (default) or 'f16' (needs shader-f16; subgroup matrices where the
   * adapter has them, else the plain f16 kernel). See README "Precision".
   */
  precision?: Precision;
  /**
   * Precision 'f16' runs on the subgroup-matrix kernel where the adapter has subgroup matrices,
   * with the measured default config; this overrides fields of it (attend-f16.wgsl.ts
   * F16MatrixConfig; tuning), and `false` runs the plain f16 kernel there too.
   */
  f16Tiles?: Partial<Omit<F16MatrixConfig, 'dp'>> | false;
}

export class GpuCore {
  readonly plumbing: DevicePlumbing;
  readonly device: GPUDevice;
  readonly ctx: GpuCtx;
  readonly buffers: BufferPool;
  /** The cost rule's pinned rates (null: fitted), and whether it applies where a call does not say (TsaOptions.costRule). */
  readonly pinnedCost: CostModel | null;
  readonly costDefault: boolean;
  readonly profileStages: boolean;
  readonly profileDispatches: boolean;
  readonly precision: Precision;
  private readonly pipelines: Pipelines;
  deviceMs: number | null = null;

  constructor(readonly gpu: GpuContext, options: WebGpuBackendOptions) {
    const { device } = gpu;
    this.device = device;
    this.plumbing = new DevicePlumbing(gpu);
    const limits = device.limits;
    const lim: BindingLimits = {
      maxBinding: Math.min(limits.maxStorageBufferBindingSize, options.maxBindingBytes ?? Infinity),
      maxBufferSize: limits.maxBufferSize,
      maxTensorPart: Math.min(limits.maxBufferSize, options.maxTensorPartBytes ?? Infinity),
      align: limits.minStorageBufferOffsetAlignment,
    };
    this.buffers = new BufferPool(device, lim);
    this.pipelines = new Pipelines(device);
    const tileLimits = {
      maxComputeWorkgroupStorageSize: limits.maxComputeWorkgroupStorageSize,
      maxComputeInvocationsPerWorkgroup: limits.maxComputeInvocationsPerWorkgroup,
      maxComputeWorkgroupSizeX: limits.maxComputeWorkgroupSizeX,
    };
    const tileCache = new Map<string, TileConfig>();
    this.ctx = {
      device,
      pool: this.buffers,
      lim,
      features: gpu.features,
      scoreRowsMax: gpu.software ? 4 : 8,
      radixOneGroupKeys: options.radixOneGroupKeys ?? RADIX_ONE_GROUP_KEYS,
      scoreLogitsBytes: options.scoreLogitsBytes ?? Math.min(2 ** 32, device.limits.maxBufferSize),
      f16Tiles: options.f16Tiles === false ? null : (options.f16Tiles ?? {}),
      tiles: (headDim, blockSize) => {
        const key = `${headDim}.${blockSize ?? 0}`;
        let t = tileCache.get(key);
        if (!t) {
          t = blockSize ? chooseBlockTiles(headDim, blockSize, tileLimits, options.tiles) : chooseTiles(headDim, tileLimits, options.tiles);
          tileCache.set(key, t);
        }
        return t;
      },
    };
    this.pinnedCost = options.costModel ?? null;
    this.costDefault = options.costRule ?? true;
    this.profileStages = options.profileStages ?? false;
    this.profileDispatches = options.profileDispatches ?? false;
    this.precision = options.precision ?? 'f32';
  }

  /** The precision of one call. */
  precisionFor(o: Pick<ResolvedTsaOptions, 'precision'>): Precision {
    return o.precision ?? this.precision;
  }

  /** A stage context with a fresh recorder for one call (precision: that of the call's options). */
  stageCtx(o: Pick<ResolvedTsaOptions, 'precision'> = {}): StageCtx {
    const rec = new Recorder(this.device, this.pipelines, this.device.limits.maxComputeWorkgroupsPerDimension, this.gpu.timestamps, this.profileDispatches);
    return { ...this.ctx, rec, precision: this.precisionFor(o) };
  }

  /** Uploads head-major Float32Array data into a pooled tensor. */
  upload(name: string, data: Float32Array, heads: number, headElems: number): HeadTensor {
    const t = this.buffers.heads(name, heads, headElems, STORAGE_USAGE);
    this.plumbing.upload(t, data);
    return t;
  }

  inputTensors(input: AttentionInput): LayerTensors {
    const { heads: H, kvHeads: Hkv, headDim: D, seqLen: L } = input;
    return {
      q: this.upload('in.q', input.q, H, L * D),
      k: this.upload('in.k', input.k, Hkv, L * D),
      v: this.upload('in.v', input.v, Hkv, L * D),
    };
  }

  outputBuffer(shape: AttentionShape): GPUBuffer {
    return this.buffers.get('out', shape.seqLen * shape.heads * shape.headDim * 4, STORAGE_USAGE);
  }

  /**
   * Submits the recorded work after the uploads have landed (so device time
   * excludes them), copies `outputs` back and returns their bytes. The call's
   * signal is checked before the submission and before the readback.
   */
  async execute(
    ctx: StageCtx,
    outputs: { src: GPUBuffer; bytes: number }[],
    o: Pick<ResolvedTsaOptions, 'signal'>,
    syncSegments = false,
  ): Promise<{ data: ArrayBuffer[]; segments: Record<string, number> }> {
    await ctx.rec.prepare();
    await this.device.queue.onSubmittedWorkDone();
    throwIfAborted(o.signal);
    let copies: ReturnType<DevicePlumbing['copyOut']>[] = [];
    const { segmentMs, deviceMs, submitted } = ctx.rec.submit((enc) => {
      copies = outputs.map((out) => this.plumbing.copyOut(enc, out.src, out.bytes));
    }, syncSegments);
    try {
      await submitted;
      throwIfAborted(o.signal);
      const data = await this.plumbing.readAll(copies);
      this.deviceMs = await deviceMs;
      return { data, segments: await segmentMs };
    } finally {
      for (const c of copies) c.staging.destroy();
    }
  }
}
