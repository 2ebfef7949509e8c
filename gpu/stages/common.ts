/// <reference types="@webgpu/types" preserve="true" />
/**
 * What every GPU stage (gpu/stages/*.ts) shares: the per-backend context,
 * the shape of one call, the layer-state buffer and the Q/K binding windows
 * of the two logits kernels (score, attend).
 */
import { TsaInputError } from '../../harness/core/errors.js';
import { STATE } from '../kernels/state.js';
import type { Recorder } from '../recorder.js';
import { headWindow, sharedWindow, wholeWindow, type BindingLimits, type BufferPool, type HeadTensor, type Window } from '../resources.js';
import type { Precision } from '../../harness/core/interface.js';
import type { ShaderFeatures } from '../features.js';
import type { F16MatrixConfig } from '../kernels/attend-f16.wgsl.js';
import type { TileConfig } from '../tiles.js';

export const STORAGE_USAGE = 0x80 | 0x4 | 0x8; // STORAGE | COPY_SRC | COPY_DST

/** One backend's device, pooled buffers, binding limits and tile choice. */
/**
 * Default of GpuCtx.radixOneGroupKeys. In one workgroup a radix select ends once its answer is
 * fixed (the budget's after a few of its 15 bytes on distinct scores); across workgroups it
 * launches two dispatches per byte whatever the data (38 for budget and select at 8K), each a
 * launch and a barrier on the device, the cost of the short layers' selection.
 */
export const RADIX_ONE_GROUP_KEYS = 65536;

export interface GpuCtx {
  device: GPUDevice;
  pool: BufferPool;
  lim: BindingLimits;
  /** Attention tiles for a head dimension; with a block size, tiles whose BM and BN divide it (attendBlocks). */
  tiles(headDim: number, blockSize?: number): TileConfig;
  /** shader-f16 and subgroup matrices of the device (features.ts). */
  features: ShaderFeatures;
  /**
   * The most logit rows per thread of the score kernels: 8 on hardware adapters, 4 on software
   * ones (llvmpipe, lavapipe), whose shader compiler took 168 s for the unrolled TM 8 kernel.
   */
  scoreRowsMax: number;
  /**
   * The radix selects of budget and select run in one workgroup (per head for select), one
   * dispatch for all their byte passes, for prefixes of up to this many positions; longer ones
   * take two dispatches per byte across workgroups (backend option radixOneGroupKeys).
   */
  radixOneGroupKeys: number;
  /** Scoring keeps its logits in memory (one Q.K^T pass) up to this many bytes (backend option scoreLogitsBytes). */
  scoreLogitsBytes: number;
  /** Backend option f16Tiles: overrides of the subgroup-matrix kernel's config, or null (f16Tiles false: the plain kernel). */
  f16Tiles: Partial<Omit<F16MatrixConfig, 'dp'>> | null;
}

/** A stage's view of one call: the context, the recorder its kernels go to, the attention's precision. */
export interface StageCtx extends GpuCtx {
  rec: Recorder;
  precision: Precision;
  /** The call's f16 copy of the layer's K, once made (stages/attend-f16.ts f16K). */
  f16K?: { of: HeadTensor; copy: HeadTensor };
}

/** Shape of one call: H, Hkv, D, L, window W, prefix P = L - W, group G = H / Hkv. */
export interface Dims {
  H: number;
  Hkv: number;
  D: number;
  L: number;
  W: number;
  P: number;
  G: number;
}

export function dimsOf(shape: { heads: number; kvHeads: number; headDim: number; seqLen: number }, window: number): Dims {
  return {
    H: shape.heads,
    Hkv: shape.kvHeads,
    D: shape.headDim,
    L: shape.seqLen,
    W: window,
    P: shape.seqLen - window,
    G: shape.heads / shape.kvHeads,
  };
}

export const ceilDiv = (a: number, b: number): number => Math.ceil(a / b);

/** The layer-state buffer (kernels/state.ts). */
export function stateBuffer(ctx: GpuCtx): GPUBuffer {
  return ctx.pool.get('state', STATE.words * 4, STORAGE_USAGE);
}

export function stateWindow(ctx: GpuCtx): Window {
  return wholeWindow(stateBuffer(ctx));
}

/**
 * A whole head-major tensor in one binding (budget and select read across
 * heads). Larger than one binding: TsaInputError, as for one head too large
 * (resources.ts headChunks); budget and select are not split by head.
 */
export function wholeHeads(ctx: GpuCtx, t: HeadTensor, what: string): Window {
  const bytes = t.heads * t.headElems * 4;
  if (t.parts.length !== 1 || bytes > ctx.lim.maxBinding) {
    throw new TsaInputError(
      `${what} (${t.heads} heads x ${t.headElems} values, ${bytes} bytes) must fit one storage binding and buffer ` +
        `(${Math.min(ctx.lim.maxBinding, ctx.lim.maxTensorPart)} bytes on this adapter); use a shorter sequence or fewer heads per call`,
      'SHAPE',
    );
  }
  return wholeWindow(t.parts[0]!.buffer, bytes);
}

/** Per-head-chunk bindings of a logits kernel: Q (query heads) and K (kvDiv query heads per K head). */
export function qkParams(d: Dims, q: HeadTensor, k: HeadTensor, kvDiv: number, h0: number, h1: number, align: number) {
  const qw = headWindow(q, h0, h1, align);
  const kw = sharedWindow(k, h0, h1, kvDiv, align);
  return {
    windows: { qIn: qw, kIn: kw },
    params: {
      dim: d.D,
      qBase: qw.base,
      kBase: kw.base,
      qHeadStride: q.headElems,
      kvHeadStride: k.headElems,
      h0,
      kvDiv,
      kv0: kw.first,
      scale: 1 / Math.sqrt(d.D),
    },
  };
}
