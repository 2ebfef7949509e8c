/**
 * The GPU attention stages: gather (compact Q/K/V copies of the kept rows),
 * attend (causal FlashAttention-style) and scatter (back to token-major
 * rows, zeros where pruned). Kernels in ../kernels/{gather,attend,scatter}.wgsl.ts;
 * precision 'f16' attends in attend-f16.ts.
 */
import { attendBlocksKernel, attendGatheredKernel, attendKernel } from '../kernels/attend.wgsl.js';
import type { Kernel } from '../kernels/kernel.js';
import { attendF16, attendF16Into } from './attend-f16.js';
import { GATHER } from '../kernels/gather.wgsl.js';
import { scatterKernel, zeroPrunedKernel } from '../kernels/scatter.wgsl.js';
import { headChunks, headWindow, sharedWindow, type HeadTensor, type Window } from '../resources.js';
import { bm } from '../tiles.js';
import { ceilDiv, qkParams, stateWindow, STORAGE_USAGE, type Dims, type StageCtx } from './common.js';
import type { Selection } from './select.js';
import { listWindows, type BlockLists } from './block-select.js';

/** Floats one workgroup of gather or scatter copies at least (fewer dispatches on short rows). */
const COPY_FLOATS_PER_GROUP = 1024;

/** gather: per query head, the kept rows of `src` (heads shared by kvDiv query heads) into a compact copy. */
export function gather(ctx: StageCtx, d: Dims, src: HeadTensor, kvDiv: number, sel: Selection, name: string): HeadTensor {
  const { rec, lim } = ctx;
  const dst = ctx.pool.heads(name, d.H, d.L * d.D, STORAGE_USAGE);
  const state = stateWindow(ctx);
  const { rowsPerGroup, groups } = rec.rowBlocks(d.L, Math.floor(COPY_FLOATS_PER_GROUP / d.D));
  const uses = [
    { tensor: src, kvDiv },
    { tensor: dst, kvDiv: 1 },
    { tensor: sel.indices, kvDiv: 1 },
  ];
  for (const [h0, h1] of headChunks(d.H, uses, lim)) {
    const srcW = sharedWindow(src, h0, h1, kvDiv, lim.align);
    const dstW = headWindow(dst, h0, h1, lim.align);
    const idxW = headWindow(sel.indices, h0, h1, lim.align);
    rec.dispatch(
      GATHER,
      {
        dim: d.D,
        rowsPerGroup,
        h0,
        kvDiv,
        src0: srcW.first,
        srcBase: srcW.base,
        srcHeadStride: src.headElems,
        dstBase: dstW.base,
        dstHeadStride: dst.headElems,
        idxBase: idxW.base,
        idxHeadStride: sel.indices.headElems,
      },
      { state, indices: idxW, src: srcW, dst: dstW },
      [groups, h1 - h0],
      `gather ${name}`,
    );
  }
  return dst;
}

/**
 * Heads per attend dispatch: at most ~1e13 causal FLOPs each (under a second
 * on a large GPU), so no single dispatch runs long enough to trip a driver's
 * watchdog or starve other work.
 */
export function attendHeadsPerDispatch(d: Dims): number {
  return Math.max(1, Math.floor(1e13 / (2 * d.D * d.L * d.L)));
}

export function splitChunks(chunks: [number, number][], most: number): [number, number][] {
  return chunks.flatMap(([h0, h1]) => {
    const out: [number, number][] = [];
    for (let h = h0; h < h1; h += most) out.push([h, Math.min(h1, h + most)]);
    return out;
  });
}

/**
 * attend: causal attention of every head over L rows (dense), or the L'
 * rows the state says (gate ifSparse); output O [H][L][D]. `gate`: GATE.
 * With `blocks` (attendBlocks): over the key blocks of each (head, query block) list only.
 * With `indices` (a sparse layer's selection, gated sparse): q, k, v are the full tensors
 * (K, V shared by kvDiv query heads) and each head attends its kept rows in place
 * (attendGathered; at f16 the conversion gathers them), with no gathered copies.
 */
export function attend(ctx: StageCtx, d: Dims, q: HeadTensor, k: HeadTensor, v: HeadTensor, kvDiv: number, gate: number, blocks?: BlockLists, indices?: HeadTensor): HeadTensor {
  if (ctx.precision === 'f16') return attendF16(ctx, d, q, k, v, kvDiv, gate, blocks, indices);
  const { rec, lim } = ctx;
  const c = ctx.tiles(d.D, blocks?.B);
  const o = ctx.pool.heads('attend.out', d.H, d.L * d.D, STORAGE_USAGE);
  const kernel: Kernel = blocks ? attendBlocksKernel({ c, B: blocks.B }) : indices ? attendGatheredKernel(c) : attendKernel(c);
  const state = stateWindow(ctx);
  const uses = [
    { tensor: q, kvDiv: 1 },
    { tensor: k, kvDiv },
    { tensor: v, kvDiv },
    { tensor: o, kvDiv: 1 },
    ...(indices ? [{ tensor: indices, kvDiv: 1 }] : []),
  ];
  for (const [h0, h1] of splitChunks(headChunks(d.H, uses, lim), attendHeadsPerDispatch(d))) {
    const qk = qkParams(d, q, k, kvDiv, h0, h1, lim.align);
    const vw = sharedWindow(v, h0, h1, kvDiv, lim.align);
    const ow = headWindow(o, h0, h1, lim.align);
    const iw = indices ? headWindow(indices, h0, h1, lim.align) : null;
    const rows: Record<string, number> = iw ? { idxBase: iw.base, idxHeadStride: indices!.headElems } : {};
    rec.dispatch(
      kernel,
      { ...qk.params, n: d.L, vBase: vw.base, oBase: ow.base, oHeadStride: o.headElems, gate, ...rows },
      { ...qk.windows, vIn: vw, oOut: ow, state, ...listWindows(blocks), ...(iw ? { indices: iw } : {}) },
      [ceilDiv(d.L, bm(c)), h1 - h0],
    );
  }
  return o;
}

/** scatter: O [H][L][D] (compact rows when sparse) to out [L][H*D], zeros for pruned rows. */
export function scatter(ctx: StageCtx, d: Dims, o: HeadTensor, sel: Selection, out: GPUBuffer): void {
  scatterPasses(ctx, d, o, sel, out);
}

/**
 * zeroPruned: on a sparse layer, zeros into the pruned rows of out [L][H*D] only (the kept rows
 * were written there by the attention itself, attendInto); nothing on a dense layer.
 */
function zeroPruned(ctx: StageCtx, d: Dims, sel: Selection, out: GPUBuffer): void {
  scatterPasses(ctx, d, null, sel, out);
}

/** scatter's dispatches, per window of output rows and chunk of heads; without `o`, zeroPruned's. */
function scatterPasses(ctx: StageCtx, d: Dims, o: HeadTensor | null, sel: Selection, out: GPUBuffer): void {
  const { rec, lim } = ctx;
  const state = stateWindow(ctx);
  const rowBytes = d.H * d.D * 4;
  const rowsPerWindow = Math.floor((lim.maxBinding - lim.align) / rowBytes);
  if (rowsPerWindow < 1) throw new Error(`one output row (${rowBytes} bytes) exceeds maxStorageBufferBindingSize`);
  const chunks = headChunks(d.H, [...(o ? [{ tensor: o, kvDiv: 1 }] : []), { tensor: sel.inverse, kvDiv: 1 }], lim);
  // vec4 moves where every offset below is a multiple of 4 floats (dim, and so the head strides and row starts).
  const u = d.D % 4 === 0 ? 4 : 1;
  const kernel = o ? scatterKernel({ vec: u === 4 }) : zeroPrunedKernel({ vec: u === 4 });
  for (let t0 = 0; t0 < d.L; t0 += rowsPerWindow) {
    const rows = Math.min(rowsPerWindow, d.L - t0);
    const start = t0 * rowBytes;
    const offset = Math.floor(start / lim.align) * lim.align;
    const outW = { binding: { buffer: out, offset, size: start + rows * rowBytes - offset }, base: (start - offset) / 4 };
    for (const [h0, h1] of chunks) {
      const ow = o ? headWindow(o, h0, h1, lim.align) : null;
      const vw = headWindow(sel.inverse, h0, h1, lim.align);
      const { rowsPerGroup, groups } = rec.rowBlocks(rows, Math.floor(COPY_FLOATS_PER_GROUP / ((h1 - h0) * d.D)));
      rec.dispatch(
        kernel,
        {
          t0,
          rows,
          H: d.H,
          dim: d.D / u,
          h0,
          heads: h1 - h0,
          rowsPerGroup,
          oBase: ow ? ow.base / u : 0,
          oHeadStride: o ? o.headElems / u : 0,
          invBase: vw.base,
          invHeadStride: sel.inverse.headElems,
          outBase: outW.base / u,
        },
        // zeroPruned alone binds no `o` (the recorder checks the names against the kernel's).
        { state, inverse: vw, out: outW, ...(ow ? { o: ow } : {}) } as Record<'state' | 'inverse' | 'o' | 'out', Window>,
        [groups, 1],
      );
    }
  }
}

/**
 * attend over L rows (dense) or the kept rows (`indices`, gated sparse) and its output into out
 * [L][H*D]: attend then scatter, or where attend-f16 on the matrix units writes the rows into
 * out itself (attendF16Into), that and, on a sparse layer, zeros into the pruned rows.
 */
export function attendInto(ctx: StageCtx, d: Dims, q: HeadTensor, k: HeadTensor, v: HeadTensor, kvDiv: number, gate: number, sel: Selection, out: GPUBuffer, indices?: HeadTensor): void {
  if (ctx.precision === 'f16' && attendF16Into(ctx, d, q, k, v, kvDiv, gate, out, indices)) {
    if (indices) zeroPruned(ctx, d, sel, out);
    return;
  }
  scatter(ctx, d, attend(ctx, d, q, k, v, kvDiv, gate, undefined, indices), sel, out);
}
