/**
 * attend at precision 'f16': Q, K, V in the f16 layout (to-f16.wgsl.ts; Q scaled by 1/sqrt(D)
 * before rounding), converted once per call (f16Copy: the layer converts them before its gated
 * branches, and the scoring reads the same K), then causal attention with the plain f16 kernel
 * (attend-f16-plain.wgsl.ts), or on the matrix units (attend-f16.wgsl.ts, same numerics) where
 * f16Attend says; a sparse layer attends its kept rows of the full copies in place (the kernels'
 * gathered variants). Output O [H][L][D] f32 as the f32 attend.
 */
import { ROW_ALIGN, attendF16Kernel, attendF16SharedBytes, type F16MatrixConfig } from '../kernels/attend-f16.wgsl.js';
import { PLAIN_ROWS, attendF16PlainBlocksKernel, attendF16PlainKernel, plainBlockTiles } from '../kernels/attend-f16-plain.wgsl.js';
import type { Kernel } from '../kernels/kernel.js';
import { listWindows, type BlockLists } from './block-select.js';
import { TO_F16 } from '../kernels/to-f16.wgsl.js';
import { GATE } from '../kernels/attend.wgsl.js';
import { headChunks, headWindow, sharedWindow, type HeadTensor } from '../resources.js';
import { attendHeadsPerDispatch, splitChunks } from './attend.js';
import { ceilDiv, stateWindow, STORAGE_USAGE, type Dims, type StageCtx } from './common.js';

/**
 * The f16 attend kernel this context runs for head dimension D (`gathered`: its variant over
 * each head's kept rows), and its query rows per workgroup:
 * the subgroup-matrix kernel where the adapter has subgroup matrices (unless the backend option
 * f16Tiles is false) and its config fits the workgroup memory, else the plain f16 kernel.
 */
export function f16Attend(ctx: StageCtx, D: number, gathered = false) {
  const dp = ceilDiv(D, 16) * 16;
  const c = matrixConfig(ctx, dp);
  if (c) return { kernel: attendF16Kernel(gathered ? { ...c, gathered } : c) as Kernel, rows: 16 * c.sg, dp };
  return { kernel: attendF16PlainKernel({ dp, gathered }) as Kernel, rows: PLAIN_ROWS, dp };
}

/**
 * The subgroup-matrix kernel's config where it runs (see f16Attend), or null; with a block size
 * B, the block mode, with as many subgroups as divide B / 16 and key tiles dividing B.
 */
function matrixConfig(ctx: StageCtx, dp: number, B?: number): F16MatrixConfig | null {
  if (!ctx.features.matrix || !ctx.f16Tiles) return null;
  let c: F16MatrixConfig = { ...MATRIX_DEFAULT, ...ctx.f16Tiles, dp };
  if (B !== undefined) {
    const sg = [c.sg, 8, 4, 2, 1].find((g) => g <= c.sg && B % (16 * g) === 0);
    if (sg === undefined || B % c.bn !== 0) return null;
    c = { ...c, sg, blocks: B };
  }
  return attendF16SharedBytes(c) <= ctx.device.limits.maxComputeWorkgroupStorageSize ? c : null;
}

/** The fastest subgroup-matrix config measured on an H200 (lab, 147 TFLOP/s dense at L = 32768). */
const MATRIX_DEFAULT: Omit<F16MatrixConfig, 'dp'> = { sg: 8, bn: 32, threshold: 8, prefetch: true, lean: true, vecKV: true };

/** The attend kernel a call of this context runs for head dimension D (TsaResult.attendKernel); with a block size, attendBlocks'. */
export function attendKernelName(ctx: StageCtx, D: number, blockSize?: number): string {
  if (ctx.precision !== 'f16') return blockSize ? 'attendBlocks (f32)' : 'attend (f32)';
  return (blockSize ? f16AttendBlocks(ctx, D, blockSize) : f16Attend(ctx, D)).kernel.key;
}

/**
 * src (f32, `src.heads` heads of L rows) into a new f16-layout tensor; n rows (or L' when gated
 * sparse). With `span`, rows span.first .. + span.n of each head (the scoring's window
 * queries), else rows 0 .. L.
 */
export function toF16(ctx: StageCtx, d: Dims, src: HeadTensor, dp: number, scale: number, gate: number, name: string, span: RowSpan = { first: 0, n: d.L }): HeadTensor {
  const { rec, lim } = ctx;
  const padded = ceilDiv(span.n, ROW_ALIGN) * ROW_ALIGN;
  const dst = ctx.pool.heads(name, src.heads, (padded * dp) / 2, STORAGE_USAGE);
  const state = stateWindow(ctx);
  const uses = [
    { tensor: src, kvDiv: 1 },
    { tensor: dst, kvDiv: 1 },
  ];
  for (const [h0, h1] of headChunks(src.heads, uses, lim)) {
    const sw = headWindow(src, h0, h1, lim.align);
    const dw = headWindow(dst, h0, h1, lim.align);
    rec.dispatch(
      TO_F16,
      { n: span.n, rows: padded, dim: d.D, dp4: dp / 4, srcBase: sw.base + span.first * d.D, srcHeadStride: src.headElems, dstBase: dw.base / 2, dstHeadStride: dst.headElems / 2, gate, scale },
      { state, src: sw, dst: dw },
      [ceilDiv((padded * dp) / 4, TO_F16.workgroupSize), h1 - h0],
      `${TO_F16.name} ${name}`,
    );
  }
  return dst;
}

/** Rows first .. first + n of every head (toF16's `span`). */
interface RowSpan {
  first: number;
  n: number;
}

/**
 * The f16 copy of a whole tensor for the attention and the scoring (Q scale 1/sqrt(D), K and V
 * 1), converted once per call (GATE.always) and shared by every later use. The layer makes them
 * before its gated branches (prepareF16): a copy first recorded inside one would not exist
 * where that branch is skipped, so that is an error.
 */
export function f16Copy(ctx: StageCtx, d: Dims, src: HeadTensor, scale: number, name: string): HeadTensor {
  const hit = ctx.f16Copies.get(src);
  if (hit && hit.scale === scale) return hit.tensor;
  if (ctx.rec.recordingGated) throw new Error(`f16 copy ${name} first recorded in a gated branch: convert it before (prepareF16)`);
  const tensor = toF16(ctx, d, src, ceilDiv(d.D, 16) * 16, scale, GATE.always, name);
  ctx.f16Copies.set(src, { scale, tensor });
  return tensor;
}

/** The f16 copies of a layer's Q, K, V (f16Copy), recorded now. */
export function prepareF16(ctx: StageCtx, d: Dims, q: HeadTensor, k: HeadTensor, v: HeadTensor): void {
  f16Copy(ctx, d, q, 1 / Math.sqrt(d.D), 'f16.q');
  f16Copy(ctx, d, k, 1, 'f16.k');
  f16Copy(ctx, d, v, 1, 'f16.v');
}

/** attendBlocks at precision 'f16': the block mode of the subgroup-matrix kernel where it runs, else of the plain one. */
function f16AttendBlocks(ctx: StageCtx, D: number, B: number) {
  const dp = ceilDiv(D, 16) * 16;
  const c = matrixConfig(ctx, dp, B);
  if (c) return { kernel: attendF16Kernel(c) as Kernel, rows: 16 * c.sg, dp };
  return { kernel: attendF16PlainBlocksKernel({ dp, B }) as Kernel, rows: plainBlockTiles(B).rows, dp };
}

/**
 * attend (stages/attend.ts) at precision 'f16'; with `blocks`, over each (head, query block) list
 * only (on the given tensors, converted under `gate`: XAttention's compact copies). With
 * `indices` (a sparse layer's selection, gated sparse): q, k, v are the full tensors and each
 * head attends over its kept rows of their f16 copies in place.
 */
export function attendF16(ctx: StageCtx, d: Dims, q: HeadTensor, k: HeadTensor, v: HeadTensor, kvDiv: number, gate: number, blocks?: BlockLists, indices?: HeadTensor): HeadTensor {
  const { rec, lim } = ctx;
  const { kernel, rows, dp } = blocks ? f16AttendBlocks(ctx, d.D, blocks.B) : f16Attend(ctx, d.D, indices !== undefined);
  const scale = 1 / Math.sqrt(d.D);
  const [q16, k16, v16] = blocks
    ? [toF16(ctx, d, q, dp, scale, gate, `f16.q.${gate}`), toF16(ctx, d, k, dp, 1, gate, `f16.k.${gate}`), toF16(ctx, d, v, dp, 1, gate, `f16.v.${gate}`)]
    : [f16Copy(ctx, d, q, scale, 'f16.q'), f16Copy(ctx, d, k, 1, 'f16.k'), f16Copy(ctx, d, v, 1, 'f16.v')];
  const o = ctx.pool.heads('attend.out', d.H, d.L * d.D, STORAGE_USAGE);
  const state = stateWindow(ctx);
  const uses = [
    { tensor: q16, kvDiv: 1 },
    { tensor: k16, kvDiv },
    { tensor: v16, kvDiv },
    { tensor: o, kvDiv: 1 },
    ...(indices ? [{ tensor: indices, kvDiv: 1 }] : []),
  ];
  for (const [h0, h1] of splitChunks(headChunks(d.H, uses, lim), attendHeadsPerDispatch(d))) {
    const qw = headWindow(q16, h0, h1, lim.align);
    const kw = sharedWindow(k16, h0, h1, kvDiv, lim.align);
    const vw = sharedWindow(v16, h0, h1, kvDiv, lim.align);
    const ow = headWindow(o, h0, h1, lim.align);
    const iw = indices ? headWindow(indices, h0, h1, lim.align) : null;
    rec.dispatch(
      kernel,
      {
        n: d.L,
        dim: d.D,
        qBase: 2 * qw.base,
        kBase: 2 * kw.base,
        vBase: 2 * vw.base,
        oBase: ow.base,
        qHeadStride: 2 * q16.headElems,
        kvHeadStride: 2 * k16.headElems,
        oHeadStride: o.headElems,
        h0,
        kvDiv,
        kv0: kw.first,
        gate,
        ...(iw ? { idxBase: iw.base, idxHeadStride: indices!.headElems } : {}),
      },
      { qIn: qw, kIn: kw, vIn: vw, oOut: ow, state, ...listWindows(blocks), ...(iw ? { indices: iw } : {}) },
      [ceilDiv(d.L, rows), h1 - h0],
    );
  }
  return o;
}
