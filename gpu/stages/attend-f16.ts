/**
 * attend at precision 'f16': Q, K, V converted to the f16 layout (to-f16.wgsl.ts; Q scaled by
 * 1/sqrt(D) before rounding; on a sparse layer the conversion gathers each head's kept rows
 * itself; K of a layer once per call, f16K, shared with the scoring; the matrix kernel reads Q
 * as f32 and rounds it as it stages it, the same values without the pass), then causal attention
 * with the plain f16 kernel (attend-f16-plain.wgsl.ts), or on the matrix units
 * (attend-f16.wgsl.ts, same numerics) where f16Attend says; output O [H][L][D] f32 as the f32
 * attend.
 */
import { ROW_ALIGN, attendF16Kernel, attendF16SharedBytes, type F16MatrixConfig } from '../kernels/attend-f16.wgsl.js';
import { PLAIN_ROWS, attendF16PlainBlocksKernel, attendF16PlainKernel, plainBlockTiles } from '../kernels/attend-f16-plain.wgsl.js';
import type { Kernel } from '../kernels/kernel.js';
import { listWindows, type BlockLists } from './block-select.js';
import { TO_F16_PER, toF16Kernel } from '../kernels/to-f16.wgsl.js';
import { GATE } from '../kernels/attend.wgsl.js';
import { headChunks, headWindow, sharedWindow, type HeadTensor, type Window } from '../resources.js';
import { attendHeadsPerDispatch, splitChunks } from './attend.js';
import { ceilDiv, stateWindow, STORAGE_USAGE, type Dims, type StageCtx } from './common.js';

/**
 * The f16 attend kernel this context runs for head dimension D, and its query rows per workgroup:
 * the subgroup-matrix kernel where the adapter has subgroup matrices (unless the backend option
 * f16Tiles is false) and its config fits the workgroup memory, else the plain f16 kernel.
 */
export function f16Attend(ctx: StageCtx, D: number) {
  const dp = f16Dim(D);
  const c = matrixConfig(ctx, dp);
  if (c) return { kernel: attendF16Kernel(c) as Kernel, rows: 16 * c.sg, dp, matrix: c };
  return { kernel: attendF16PlainKernel(dp) as Kernel, rows: PLAIN_ROWS, dp, matrix: null };
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
 * sparse). With `rows`, the kept rows of each query head instead (gather and conversion in one
 * pass): src's heads are then shared by rows.kvDiv query heads, the copy has d.H. With `span`,
 * rows span.first .. + span.n of each head (the scoring's window queries), else rows 0 .. L.
 */
export function toF16(ctx: StageCtx, d: Dims, src: HeadTensor, dp: number, scale: number, gate: number, name: string, rows?: GatheredRows, span: RowSpan = { first: 0, n: d.L }): HeadTensor {
  const { rec, lim } = ctx;
  const padded = ceilDiv(span.n, ROW_ALIGN) * ROW_ALIGN;
  const heads = rows ? d.H : src.heads;
  const dst = ctx.pool.heads(name, heads, (padded * dp) / 2, STORAGE_USAGE);
  const state = stateWindow(ctx);
  const kernel = toF16Kernel({ gathered: !!rows, vec: d.D % 4 === 0 });
  const uses = [
    { tensor: src, kvDiv: rows?.kvDiv ?? 1 },
    { tensor: dst, kvDiv: 1 },
    ...(rows ? [{ tensor: rows.indices, kvDiv: 1 }] : []),
  ];
  for (const [h0, h1] of headChunks(heads, uses, lim)) {
    const sw = sharedWindow(src, h0, h1, rows?.kvDiv ?? 1, lim.align);
    const dw = headWindow(dst, h0, h1, lim.align);
    const iw = rows ? headWindow(rows.indices, h0, h1, lim.align) : null;
    const gathering: Record<string, number> = iw ? { h0, kvDiv: rows!.kvDiv, src0: sw.first, idxBase: iw.base, idxHeadStride: rows!.indices.headElems } : {};
    rec.dispatch(
      kernel,
      { n: span.n, rows: padded, dim: d.D, dp4: dp / 4, srcBase: sw.base + span.first * d.D, srcHeadStride: src.headElems, dstBase: dw.base / 2, dstHeadStride: dst.headElems / 2, gate, scale, ...gathering },
      // The gathered variant alone binds `indices` (the recorder checks the names against the kernel's).
      { state, src: sw, dst: dw, ...(iw ? { indices: iw } : {}) } as Record<'state' | 'src' | 'dst' | 'indices', Window>,
      [ceilDiv((padded * dp) / 4, TO_F16_PER * kernel.workgroupSize), h1 - h0],
      `${kernel.name} ${name}`,
    );
  }
  return dst;
}

/** Rows first .. first + n of every head (toF16's `span`). */
interface RowSpan {
  first: number;
  n: number;
}

/** The kept rows of each query head (attendF16's `rows`): the selection's indices, over source heads shared by kvDiv query heads. */
interface GatheredRows {
  indices: HeadTensor;
  kvDiv: number;
}

/** The f16 layout's padded head dimension DP (a multiple of 16, for the matrix fragments). */
export const f16Dim = (D: number) => ceilDiv(D, 16) * 16;

/**
 * The layer's K in the f16 layout, converted once per call (GATE.always) and read by every later
 * use: the probe, the scoring (stages/score.ts) and the dense attention. The layer converts it
 * before its gated branches: a copy first recorded inside one would not exist where that branch
 * is skipped, so that is an error.
 */
export function f16K(ctx: StageCtx, d: Dims, k: HeadTensor): HeadTensor {
  if (ctx.f16K?.of === k) return ctx.f16K.copy;
  if (ctx.rec.recordingGated) throw new Error('the f16 copy of K first recorded in a gated branch: convert it before (f16K)');
  const copy = toF16(ctx, d, k, f16Dim(d.D), 1, GATE.always, 'f16.k');
  ctx.f16K = { of: k, copy };
  return copy;
}

/** attendBlocks at precision 'f16': the block mode of the subgroup-matrix kernel where it runs, else of the plain one. */
function f16AttendBlocks(ctx: StageCtx, D: number, B: number) {
  const dp = f16Dim(D);
  const c = matrixConfig(ctx, dp, B);
  if (c) return { kernel: attendF16Kernel(c) as Kernel, rows: 16 * c.sg, dp };
  return { kernel: attendF16PlainBlocksKernel({ dp, B }) as Kernel, rows: plainBlockTiles(B).rows, dp };
}

/**
 * attend (stages/attend.ts) at precision 'f16'; with `blocks`, over each (head, query block) list
 * only. With `indices` (a sparse layer's selection, gated sparse): q, k, v are the full tensors
 * and each head attends over its kept rows, gathered by the conversion (no f32 compact copies;
 * per-head copies ran faster on an H200 than reading the kept rows of full f16 copies in place).
 * Dense on a layer's full K (no blocks): its f16K.
 */
export function attendF16(ctx: StageCtx, d: Dims, q: HeadTensor, k: HeadTensor, v: HeadTensor, kvDiv: number, gate: number, blocks?: BlockLists, indices?: HeadTensor): HeadTensor {
  return recordAttendF16(ctx, d, q, k, v, kvDiv, gate, blocks, indices, null)!;
}

/**
 * attendF16 writing the output rows straight into the layer's out [L][H*D] (attend-f16's
 * `direct`; row indices[h][r] on a sparse layer), where the matrix kernel runs with f32 Q and out
 * fits one binding: true; else false, recording nothing (the caller attends and scatters).
 */
export function attendF16Into(ctx: StageCtx, d: Dims, q: HeadTensor, k: HeadTensor, v: HeadTensor, kvDiv: number, gate: number, out: GPUBuffer, indices?: HeadTensor): boolean {
  if (!f16Q32(f16Attend(ctx, d.D).matrix, d.D, indices) || d.L * d.H * d.D * 4 > ctx.lim.maxBinding) return false;
  recordAttendF16(ctx, d, q, k, v, kvDiv, gate, undefined, indices, out);
  return true;
}

/**
 * How the matrix kernel `m` (null: the plain kernels or block mode) reads Q: as f32, rounded as
 * it is staged (q32: the kept rows through the selection on a sparse layer), so no f16 copy of Q
 * is made; undefined where Q takes the f16 layout (no `m`, vecQ, D % 4 != 0).
 */
function f16Q32(m: F16MatrixConfig | null, D: number, indices?: HeadTensor): F16MatrixConfig['q32'] {
  return m && !m.vecQ && D % 4 === 0 ? (indices ? 'gathered' : 'rows') : undefined;
}

/** attendF16's dispatches; with `out`, attendF16Into's (the output straight into out, nothing returned). */
function recordAttendF16(ctx: StageCtx, d: Dims, q: HeadTensor, k: HeadTensor, v: HeadTensor, kvDiv: number, gate: number, blocks: BlockLists | undefined, indices: HeadTensor | undefined, out: GPUBuffer | null): HeadTensor | null {
  const { rec, lim } = ctx;
  const chosen = blocks ? { ...f16AttendBlocks(ctx, d.D, blocks.B), matrix: null } : f16Attend(ctx, d.D);
  const { rows, dp } = chosen;
  const q32 = f16Q32(chosen.matrix, d.D, indices);
  const kernel: Kernel = q32 ? attendF16Kernel({ ...chosen.matrix!, q32, ...(out ? { direct: true } : {}) }) : chosen.kernel;
  const scale = 1 / Math.sqrt(d.D);
  // Per gate: a layer records the dense and the sparse attention, with differently shaped copies.
  const qIn = q32 ? q : toF16(ctx, d, q, dp, scale, gate, `f16.q.${gate}`, indices && { indices, kvDiv: 1 });
  const k16 = blocks || indices ? toF16(ctx, d, k, dp, 1, gate, `f16.k.${gate}`, indices && { indices, kvDiv }) : f16K(ctx, d, k);
  const v16 = toF16(ctx, d, v, dp, 1, gate, `f16.v.${gate}`, indices && { indices, kvDiv });
  // Gathered copies have a row set per query head.
  const kvOf16 = indices ? 1 : kvDiv;
  const o = out ? null : ctx.pool.heads('attend.out', d.H, d.L * d.D, STORAGE_USAGE);
  const state = stateWindow(ctx);
  const gathered = q32 === 'gathered' ? indices! : null;
  const uses = [
    { tensor: qIn, kvDiv: 1 },
    { tensor: k16, kvDiv: kvOf16 },
    { tensor: v16, kvDiv: kvOf16 },
    ...(o ? [{ tensor: o, kvDiv: 1 }] : []),
    ...(gathered ? [{ tensor: gathered, kvDiv: 1 }] : []),
  ];
  // out [L][H*D], bound whole (attendF16Into checked it fits one binding).
  const outW: Window | null = out ? { binding: { buffer: out, offset: 0, size: d.L * d.H * d.D * 4 }, base: 0 } : null;
  // Q's bases and strides: floats of the f32 tensor (q32), else halves of the f16 copy.
  const qUnit = q32 ? 1 : 2;
  for (const [h0, h1] of splitChunks(headChunks(d.H, uses, lim), attendHeadsPerDispatch(d))) {
    const qw = headWindow(qIn, h0, h1, lim.align);
    const iw = gathered ? headWindow(gathered, h0, h1, lim.align) : null;
    const q32Params: Record<string, number> = q32 ? { scale, idxBase: iw?.base ?? 0, idxHeadStride: gathered?.headElems ?? 0 } : {};
    const kw = sharedWindow(k16, h0, h1, kvOf16, lim.align);
    const vw = sharedWindow(v16, h0, h1, kvOf16, lim.align);
    const ow = o ? headWindow(o, h0, h1, lim.align) : outW!;
    rec.dispatch(
      kernel,
      {
        n: d.L,
        dim: d.D,
        qBase: qUnit * qw.base,
        kBase: 2 * kw.base,
        vBase: 2 * vw.base,
        oBase: ow.base,
        qHeadStride: qUnit * qIn.headElems,
        kvHeadStride: 2 * k16.headElems,
        oHeadStride: o ? o.headElems : 0,
        h0,
        kvDiv: kvOf16,
        kv0: kw.first,
        gate,
        ...q32Params,
        ...(out ? { oRowStride: d.H * d.D } : {}),
      },
      { qIn: qw, kIn: kw, vIn: vw, oOut: ow, state, ...listWindows(blocks), ...(iw ? { indices: iw } : {}) },
      [ceilDiv(d.L, rows), h1 - h0],
    );
  }
  return o;
}
