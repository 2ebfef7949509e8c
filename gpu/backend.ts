/// <reference types="@webgpu/types" />
/**
 * The WebGPU backend: every stage on the GPU (stages.ts), one submission per
 * call, no readback between stages. Float32Array inputs are uploaded and the
 * output read back at the end; `tokenSparseAttentionGpu` takes and returns
 * GPUBuffers so layers chain on the GPU.
 *
 * The only host round trip is the final one: output, plus the state words
 * (mode, keep, pruned, L') and the indices that TsaResult reports.
 */
import { BackendLostError, TsaInputError } from '../harness/core/errors.js';
import type {
  AttentionInput,
  AttentionShape,
  Backend,
  Budget,
  ResolvedTsaOptions,
  ScoreShape,
  StageTimings,
  TsaOptions,
  TsaResult,
} from '../harness/core/interface.js';
import { denseBeforeScoring, nothingPruned } from '../harness/core/rules.js';
import {
  resolveOptions,
  resolveOptionsFor,
  validateIndices,
  validateInput,
  validateKeep,
  validateScores,
  validateShape,
} from '../harness/core/validate.js';
import { DEFAULT_COST_MODEL, maxKeptLength, worthScoring, type CostModel } from './cost.js';
import type { GpuContext } from './context.js';
import { GATE } from './kernels/attend.wgsl.js';
import { STATE } from './kernels/state.js';
import { Recorder } from './recorder.js';
import { BufferPool, bufferAsHeadTensor, uploadHeadTensor, type BindingLimits, type HeadTensor } from './resources.js';
import * as stage from './stages.js';
import { chooseTiles, type TileConfig } from './tiles.js';

export interface WebGpuBackendOptions {
  /**
   * Run dense where token-sparse attention would not pay on this device
   * (cost.ts): Budget {mode: 'dense', reason: 'not-worth-it'}. Only
   * tokenSparseAttention applies it; `budget()` is always the spec's rule.
   * Default true.
   */
  costRule?: boolean;
  /** Rates of the cost rule (defaults measured on an H200). */
  costModel?: Partial<CostModel>;
  /** Caps the bytes of one storage binding below the adapter's limit (forces head/row splitting; for tests). */
  maxBindingBytes?: number;
  /** Caps the bytes of one GPUBuffer of a head-major tensor (forces tensors over several buffers; for tests). */
  maxTensorPartBytes?: number;
  /** Overrides the attend/score tile choice (tuning). */
  tiles?: Partial<TileConfig>;
  /**
   * Per-stage device times in TsaResult.timings where the adapter has no
   * timestamp queries: the host waits for each stage before submitting the
   * next (one round trip per stage). Off: those stages read NaN there.
   */
  profileStages?: boolean;
}

/** Q, K, V already on this backend's device, layouts as AttentionInput. */
export interface GpuAttentionInput extends AttentionShape {
  q: GPUBuffer;
  k: GPUBuffer;
  v: GPUBuffer;
  /**
   * Where to write the output [L][H*D] f32 (at least L*H*D*4 bytes, STORAGE
   * usage); every element is overwritten. Default: a new buffer per call.
   * Reuse one across calls where a fresh buffer is costly: Dawn zero-fills
   * a new buffer at its first use, and on its OpenGL backend that fill is a
   * host upload (BENCHMARKS.md has the H200 numbers).
   */
  output?: GPUBuffer;
}

export interface GpuTsaResult {
  /** [L][H*D] f32: `input.output`, or a new buffer; owned by the caller (destroy it when done). */
  output: GPUBuffer;
  /** Resolves when the GPU has finished this call (lastDeviceTimeMs is then valid). */
  done: Promise<void>;
  /** Device ms per stage group (scores, pool, budget, select, attend); NaN unless measurable (see profileStages). */
  stageMs: Promise<Record<string, number>>;
  /** Reads back the budget, L' and kept indices of this call (a small transfer). */
  info(): Promise<{ budget: Budget; keptLength: number; indices: Int32Array | null }>;
}

const MAP_READ = 0x1 | 0x8; // MAP_READ | COPY_DST

interface Readback {
  staging: GPUBuffer;
  bytes: number;
}

export class WebGpuBackend implements Backend {
  readonly name = 'webgpu';
  readonly description: string;
  readonly device: GPUDevice;
  private readonly ctx: stage.GpuCtx;
  private readonly buffers: BufferPool;
  private readonly costRule: boolean;
  private readonly profileStages: boolean;
  private readonly costModel: CostModel;
  private readonly tileCache = new Map<number, TileConfig>();
  private lostInfo: GPUDeviceLostInfo | null = null;
  private disposed = false;
  private deviceMs: number | null = null;

  constructor(private readonly gpu: GpuContext, options: WebGpuBackendOptions = {}) {
    const { device } = gpu;
    this.device = device;
    const limits = device.limits;
    const lim: BindingLimits = {
      maxBinding: Math.min(limits.maxStorageBufferBindingSize, options.maxBindingBytes ?? Infinity),
      maxBufferSize: limits.maxBufferSize,
      maxTensorPart: Math.min(limits.maxBufferSize, options.maxTensorPartBytes ?? Infinity),
      align: limits.minStorageBufferOffsetAlignment,
    };
    this.buffers = new BufferPool(device, lim);
    const tileLimits = {
      maxComputeWorkgroupStorageSize: limits.maxComputeWorkgroupStorageSize,
      maxComputeInvocationsPerWorkgroup: limits.maxComputeInvocationsPerWorkgroup,
      maxComputeWorkgroupSizeX: limits.maxComputeWorkgroupSizeX,
    };
    this.ctx = {
      device,
      pool: this.buffers,
      pipelines: new stage.Pipelines(device),
      lim,
      tiles: (headDim) => {
        let t = this.tileCache.get(headDim);
        if (!t) {
          t = chooseTiles(headDim, tileLimits, options.tiles);
          this.tileCache.set(headDim, t);
        }
        return t;
      },
    };
    this.costRule = options.costRule ?? true;
    this.profileStages = options.profileStages ?? false;
    this.costModel = { ...DEFAULT_COST_MODEL, ...options.costModel };
    const t = this.ctx.tiles(128);
    this.description =
      `WebGPU on ${gpu.summary}; attention tiles ${t.ny * t.tm}x${t.nx * t.tn} (D=128), ` +
      `${gpu.timestamps ? 'timestamp queries' : 'host-timed'}, cost rule ${this.costRule ? 'on' : 'off'}`;
    device.lost.then((info) => {
      this.lostInfo = info;
    });
  }

  // ---- plumbing --------------------------------------------------------------------------------

  private ensureUsable(): void {
    if (this.disposed) throw new BackendLostError('the WebGPU backend was disposed; create a new one');
    if (this.lostInfo) {
      throw new BackendLostError(
        `the WebGPU device was lost (${this.lostInfo.reason}${this.lostInfo.message ? `: ${this.lostInfo.message}` : ''}); create a new backend or fall back to another`,
      );
    }
  }

  /** Runs `body`; any failure on a device that turns out lost becomes BackendLostError. */
  private async guarded<T>(body: () => Promise<T>): Promise<T> {
    this.ensureUsable();
    const { device } = this;
    device.pushErrorScope('out-of-memory');
    device.pushErrorScope('validation');
    let result: T;
    try {
      result = await body();
    } catch (e) {
      await device.popErrorScope().catch(() => null);
      await device.popErrorScope().catch(() => null);
      await new Promise((r) => setTimeout(r, 0));
      if (e instanceof TsaInputError) throw e;
      this.ensureUsable();
      throw e;
    }
    const validation = await device.popErrorScope();
    const oom = await device.popErrorScope();
    this.ensureUsable();
    if (oom) throw new Error(`WebGPU out of memory: ${oom.message}`);
    if (validation) throw new Error(`WebGPU validation error (a bug in the webgpu backend): ${validation.message}`);
    return result;
  }

  private recorder(): Recorder {
    const l = this.device.limits;
    return new Recorder(this.device, l.maxComputeWorkgroupsPerDimension, this.gpu.timestamps);
  }

  private copyOut(encoder: GPUCommandEncoder, src: GPUBuffer, bytes: number): Readback {
    const staging = this.device.createBuffer({ label: 'readback', size: Math.max(16, Math.ceil(bytes / 16) * 16), usage: MAP_READ });
    encoder.copyBufferToBuffer(src, 0, staging, 0, Math.ceil(bytes / 4) * 4);
    return { staging, bytes };
  }

  private async read(r: Readback): Promise<ArrayBuffer> {
    await r.staging.mapAsync(GPUMapMode.READ);
    const data = r.staging.getMappedRange(0, Math.ceil(r.bytes / 4) * 4).slice(0);
    r.staging.unmap();
    r.staging.destroy();
    return data;
  }

  /** Uploads head-major Float32Array data into a pooled tensor. */
  private upload(name: string, data: Float32Array, heads: number, headElems: number): HeadTensor {
    const t = this.buffers.heads(name, heads, headElems, stage.STORAGE_USAGE);
    uploadHeadTensor(this.device.queue, t, data);
    return t;
  }

  private writeState(words: Partial<Record<'mode' | 'keep' | 'pruned' | 'keptLength', number>>): void {
    const buf = stage.stateBuffer(this.ctx);
    const init = new Uint32Array(STATE.words);
    for (const [k, v] of Object.entries(words)) init[STATE[k as keyof typeof words]] = v;
    this.device.queue.writeBuffer(buf, 0, init);
  }

  /**
   * Submits the recorded work after the uploads have landed (so device time
   * excludes them), copies `outputs` back and returns their bytes.
   */
  private async execute(rec: Recorder, outputs: { src: GPUBuffer; bytes: number }[], syncSegments = false): Promise<{ data: ArrayBuffer[]; segments: Record<string, number> }> {
    await this.device.queue.onSubmittedWorkDone();
    let copies: Readback[] = [];
    const { segmentMs, deviceMs, submitted } = rec.submit((enc) => {
      copies = outputs.map((o) => this.copyOut(enc, o.src, o.bytes));
    }, syncSegments);
    await submitted;
    const data = await Promise.all(copies.map((c) => this.read(c)));
    this.deviceMs = await deviceMs;
    return { data, segments: await segmentMs };
  }

  private dims(shape: AttentionShape, o: ResolvedTsaOptions): stage.Dims {
    return stage.dimsOf(shape, o.window);
  }

  private inputTensors(input: AttentionInput) {
    const { heads: H, kvHeads: Hkv, headDim: D, seqLen: L } = input;
    return {
      q: this.upload('in.q', input.q, H, L * D),
      k: this.upload('in.k', input.k, Hkv, L * D),
      v: this.upload('in.v', input.v, Hkv, L * D),
    };
  }

  private outputBuffer(shape: AttentionShape, name = 'out'): GPUBuffer {
    return this.buffers.get(name, shape.seqLen * shape.heads * shape.headDim * 4, stage.STORAGE_USAGE);
  }

  // ---- Backend stages ----------------------------------------------------------------------------

  lastDeviceTimeMs(): number | null {
    return this.deviceMs;
  }

  async scores(input: AttentionInput, options?: TsaOptions): Promise<Float32Array> {
    validateInput(input);
    const o = resolveOptionsFor(input, options);
    return this.guarded(async () => {
      const d = this.dims(input, o);
      const rec = this.recorder();
      const q = this.upload('in.q', input.q, d.H, d.L * d.D);
      const k = this.upload('in.k', input.k, d.Hkv, d.L * d.D);
      const scores = stage.score(this.ctx, rec, d, q, k);
      const { data } = await this.execute(rec, [{ src: scores.parts[0]!.buffer, bytes: d.H * d.P * 4 }]);
      return new Float32Array(data[0]!);
    });
  }

  async pool(scores: Float32Array, shape: ScoreShape, options?: TsaOptions): Promise<Float32Array> {
    validateScores('scores', scores, shape);
    const o = resolveOptions(options);
    return this.guarded(async () => {
      const d = this.scoreDims(shape, o);
      const rec = this.recorder();
      const s = this.upload('scores', scores, d.H, d.P);
      const pooled = stage.pool(this.ctx, rec, d, s, o.poolKernel);
      const { data } = await this.execute(rec, [{ src: pooled.parts[0]!.buffer, bytes: d.H * d.P * 4 }]);
      return new Float32Array(data[0]!);
    });
  }

  /** Dims for the score-shaped stages: L = prefixLen + W, one KV head per head (unused). */
  private scoreDims(shape: ScoreShape, o: ResolvedTsaOptions): stage.Dims {
    return stage.dimsOf({ heads: shape.heads, kvHeads: shape.heads, headDim: 1, seqLen: shape.prefixLen + o.window }, o.window);
  }

  async budget(pooled: Float32Array, shape: ScoreShape, options?: TsaOptions): Promise<Budget> {
    validateScores('pooled', pooled, shape);
    const o = resolveOptions(options);
    const early = denseBeforeScoring(shape.prefixLen + o.window, o);
    if (early) return early;
    return this.guarded(async () => {
      const d = this.scoreDims(shape, o);
      const rec = this.recorder();
      const p = this.upload('pooled', pooled, d.H, d.P);
      const state = stage.budget(this.ctx, rec, d, p, o, d.L);
      const { data } = await this.execute(rec, [{ src: state, bytes: STATE.words * 4 }]);
      return budgetFromState(new Uint32Array(data[0]!), d, o, null);
    });
  }

  async select(pooled: Float32Array, shape: ScoreShape, keep: number, options?: TsaOptions): Promise<Int32Array> {
    validateScores('pooled', pooled, shape);
    validateKeep(keep, shape);
    const o = resolveOptions(options);
    return this.guarded(async () => {
      const d = this.scoreDims(shape, o);
      const rec = this.recorder();
      const p = this.upload('pooled', pooled, d.H, d.P);
      this.writeState({ mode: STATE.modeSparse, keep, keptLength: keep + d.W });
      const sel = stage.select(this.ctx, rec, d, p);
      const { data } = await this.execute(rec, [{ src: sel.indices.parts[0]!.buffer, bytes: d.H * d.L * 4 }]);
      return packIndices(new Int32Array(data[0]!), d, keep + d.W);
    });
  }

  async attendSelected(input: AttentionInput, indices: Int32Array, keptLength: number): Promise<Float32Array> {
    validateInput(input);
    validateIndices(indices, keptLength, input);
    return this.guarded(async () => {
      const d = stage.dimsOf(input, 0);
      const rec = this.recorder();
      const { q, k, v } = this.inputTensors(input);
      const sel = stage.selectionBuffers(this.ctx, d);
      const strided = new Int32Array(d.H * d.L);
      for (let h = 0; h < d.H; h++) strided.set(indices.subarray(h * keptLength, (h + 1) * keptLength), h * d.L);
      uploadHeadTensor(this.device.queue, sel.indices, new Float32Array(strided.buffer));
      this.writeState({ mode: STATE.modeSparse, keptLength });
      stage.invertIndices(this.ctx, rec, d, sel, keptLength);
      const out = this.recordSparseAttention(rec, d, { q, k, v }, sel);
      const { data } = await this.execute(rec, [{ src: out, bytes: d.L * d.H * d.D * 4 }]);
      return new Float32Array(data[0]!);
    });
  }

  async dense(input: AttentionInput): Promise<Float32Array> {
    validateInput(input);
    return this.guarded(async () => {
      const d = stage.dimsOf(input, 0);
      const rec = this.recorder();
      const t = this.inputTensors(input);
      this.writeState({ mode: STATE.modeDense, keptLength: d.L });
      const out = this.outputBuffer(input);
      const o = stage.attend(this.ctx, rec, d, t.q, t.k, t.v, d.G, GATE.always);
      stage.scatter(this.ctx, rec, d, o, stage.selectionBuffers(this.ctx, d), out);
      const { data } = await this.execute(rec, [{ src: out, bytes: d.L * d.H * d.D * 4 }]);
      return new Float32Array(data[0]!);
    });
  }

  /** gather (Q, K, V), attend on L' rows, scatter; every kernel gated on state.mode == sparse except scatter. */
  private recordSparseAttention(rec: Recorder, d: stage.Dims, t: { q: HeadTensor; k: HeadTensor; v: HeadTensor }, sel: stage.Selection, out?: GPUBuffer): GPUBuffer {
    const qc = stage.gather(this.ctx, rec, d, t.q, 1, sel, 'gather.q');
    const kc = stage.gather(this.ctx, rec, d, t.k, d.G, sel, 'gather.k');
    const vc = stage.gather(this.ctx, rec, d, t.v, d.G, sel, 'gather.v');
    const o = stage.attend(this.ctx, rec, d, qc, kc, vc, 1, GATE.ifSparse);
    const dst = out ?? this.outputBuffer(d2shape(d));
    stage.scatter(this.ctx, rec, d, o, sel, dst);
    return dst;
  }

  /**
   * Records the whole layer. Dense decisions known on the host (short
   * context, tau 0, the cost rule before scoring) skip the selection stages;
   * otherwise the GPU budget decides, and both the sparse and the dense
   * attention are recorded, each gated on the state's mode.
   */
  private recordLayer(rec: Recorder, shape: AttentionShape, o: ResolvedTsaOptions, t: { q: HeadTensor; k: HeadTensor; v: HeadTensor }, out: GPUBuffer): Budget | null {
    const d = this.dims(shape, o);
    let hostBudget = denseBeforeScoring(d.L, o);
    if (!hostBudget && this.costRule) {
      const pre = worthScoring(shape, o, this.costModel);
      if (!pre.score) hostBudget = { mode: 'dense', reason: 'not-worth-it', detail: pre.detail };
    }
    const sel = stage.selectionBuffers(this.ctx, d);
    if (hostBudget) {
      this.writeState({ mode: STATE.modeDense, keptLength: d.L });
      rec.mark('attend');
      const oh = stage.attend(this.ctx, rec, d, t.q, t.k, t.v, d.G, GATE.always);
      stage.scatter(this.ctx, rec, d, oh, sel, out);
      return hostBudget;
    }
    const limit = this.costRule ? maxKeptLength(shape, this.costModel) : d.L;
    rec.mark('scores');
    const scores = stage.score(this.ctx, rec, d, t.q, t.k);
    rec.mark('pool');
    const pooled = stage.pool(this.ctx, rec, d, scores, o.poolKernel);
    rec.mark('budget');
    stage.budget(this.ctx, rec, d, pooled, o, limit);
    rec.mark('select');
    stage.select(this.ctx, rec, d, pooled);
    rec.mark('attend');
    stage.attend(this.ctx, rec, d, t.q, t.k, t.v, d.G, GATE.ifDense);
    this.recordSparseAttention(rec, d, t, sel, out);
    return null;
  }

  async tokenSparseAttention(input: AttentionInput, options?: TsaOptions): Promise<TsaResult> {
    validateInput(input);
    const o = resolveOptionsFor(input, options);
    return this.guarded(async () => {
      const start = performance.now();
      const d = this.dims(input, o);
      const rec = this.recorder();
      const t = this.inputTensors(input);
      const out = this.outputBuffer(input);
      const hostBudget = this.recordLayer(rec, input, o, t, out);
      const sel = stage.selectionBuffers(this.ctx, d);
      const outputs = [{ src: out, bytes: d.L * d.H * d.D * 4 }];
      if (!hostBudget) outputs.push({ src: stage.stateBuffer(this.ctx), bytes: STATE.words * 4 }, { src: sel.indices.parts[0]!.buffer, bytes: d.H * d.L * 4 });
      const { data, segments } = await this.execute(rec, outputs, this.profileStages);
      const budget = hostBudget ?? budgetFromState(new Uint32Array(data[1]!), d, o, this.costRule ? maxKeptLength(input, this.costModel) : null);
      const keptLength = budget.mode === 'sparse' ? budget.keep + d.W : d.L;
      const indices = budget.mode === 'sparse' ? packIndices(new Int32Array(data[2]!), d, keptLength) : null;
      const timings: StageTimings = {
        scores: segments.scores ?? 0,
        pool: segments.pool ?? 0,
        budget: segments.budget ?? 0,
        select: segments.select ?? 0,
        attend: segments.attend ?? NaN,
        total: performance.now() - start,
      };
      return { output: new Float32Array(data[0]!), budget, indices, keptLength, keptFraction: keptLength / d.L, timings };
    });
  }

  /**
   * The whole layer on GPU-resident Q, K, V (layouts of AttentionInput, on
   * this backend's `device`), returning the output as a new GPUBuffer; no
   * readback (inputs are not scanned for NaN/Inf, which would need one).
   */
  async tokenSparseAttentionGpu(input: GpuAttentionInput, options?: TsaOptions): Promise<GpuTsaResult> {
    validateShape(input);
    const o = resolveOptionsFor(input, options);
    const { heads: H, kvHeads: Hkv, headDim: D, seqLen: L } = input;
    const buffers = [['q', input.q, H], ['k', input.k, Hkv], ['v', input.v, Hkv]] as [string, GPUBuffer, number][];
    if (input.output !== undefined) buffers.push(['output', input.output, H]);
    for (const [name, buf, heads] of buffers) {
      if (!buf || typeof (buf as GPUBuffer).size !== 'number' || typeof (buf as GPUBuffer).mapAsync !== 'function') {
        throw new TsaInputError(`${name} must be a GPUBuffer of this backend's device`, 'TYPE');
      }
      if (buf.size < heads * L * D * 4) {
        const layout = name === 'output' ? `[${L}][${heads * D}]` : `[${heads}][${L}][${D}]`;
        throw new TsaInputError(`${name} has ${buf.size} bytes, expected at least ${heads * L * D * 4} = ${layout} f32`, 'SHAPE');
      }
      if ((buf.usage & GPUBufferUsage.STORAGE) === 0) throw new TsaInputError(`${name} needs GPUBufferUsage.STORAGE`, 'TYPE');
    }
    if (input.output !== undefined && [input.q, input.k, input.v].includes(input.output)) {
      throw new TsaInputError('output must be a buffer other than q, k and v (it is written while they are read)', 'TYPE');
    }
    return this.guarded(async () => {
      const d = this.dims(input, o);
      const rec = this.recorder();
      const t = { q: bufferAsHeadTensor(input.q, H, L * D), k: bufferAsHeadTensor(input.k, Hkv, L * D), v: bufferAsHeadTensor(input.v, Hkv, L * D) };
      const output = input.output ?? this.device.createBuffer({ label: 'tsa output', size: L * H * D * 4, usage: stage.STORAGE_USAGE });
      const hostBudget = this.recordLayer(rec, input, o, t, output);
      const sel = stage.selectionBuffers(this.ctx, d);
      let copies: Readback[] = [];
      const { deviceMs, submitted, segmentMs } = rec.submit((enc) => {
        if (!hostBudget) copies = [this.copyOut(enc, stage.stateBuffer(this.ctx), STATE.words * 4), this.copyOut(enc, sel.indices.parts[0]!.buffer, d.H * d.L * 4)];
      }, this.profileStages);
      const done = deviceMs.then((ms) => {
        this.deviceMs = ms;
      });
      const limit = this.costRule ? maxKeptLength(input, this.costModel) : null;
      const info = async () => {
        if (hostBudget) return { budget: hostBudget, keptLength: d.L, indices: null };
        await submitted;
        const [state, idx] = await Promise.all(copies.map((c) => this.read(c)));
        const budget = budgetFromState(new Uint32Array(state!), d, o, limit);
        const keptLength = budget.mode === 'sparse' ? budget.keep + d.W : d.L;
        return { budget, keptLength, indices: budget.mode === 'sparse' ? packIndices(new Int32Array(idx!), d, keptLength) : null };
      };
      return { output, done, info, stageMs: segmentMs };
    });
  }

  /** Releases the backend's buffers and destroys its device (unless it was the caller's). */
  async dispose(): Promise<void> {
    if (this.disposed) return;
    this.disposed = true;
    this.buffers.destroy();
    if (this.gpu.owned) this.device.destroy();
  }
}

function d2shape(d: stage.Dims): AttentionShape {
  return { heads: d.H, kvHeads: d.Hkv, headDim: d.D, seqLen: d.L };
}

/** [H][L]-strided indices to [H][keptLength]. */
function packIndices(strided: Int32Array, d: stage.Dims, keptLength: number): Int32Array {
  const out = new Int32Array(d.H * keptLength);
  for (let h = 0; h < d.H; h++) out.set(strided.subarray(h * d.L, h * d.L + keptLength), h * keptLength);
  return out;
}

function budgetFromState(state: Uint32Array, d: stage.Dims, o: ResolvedTsaOptions, limit: number | null): Budget {
  const mode = state[STATE.mode]!;
  const keep = state[STATE.keep]!;
  const pruned = state[STATE.pruned]!;
  if (mode === STATE.modeSparse) return { mode: 'sparse', keep, pruned };
  if (mode !== STATE.modeNothingPruned && mode !== STATE.modeNotWorthIt) {
    throw new Error(`the GPU budget left no decision in the state buffer (mode word ${mode}): the device may have dropped the work`);
  }
  if (mode === STATE.modeNothingPruned) {
    return nothingPruned(o);
  }
  return {
    mode: 'dense',
    reason: 'not-worth-it',
    detail: `cost rule: the budget keeps L' = ${keep + d.W} of ${d.L} (pruned ${pruned}); sparse pays only for L' <= ${limit ?? d.L} on this device`,
  };
}
