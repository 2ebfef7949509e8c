/** The GPU stage select (kernels in ../kernels/select.wgsl.ts), and the inverse map of given indices. */
import { INVERT_INDICES } from '../kernels/scatter.wgsl.js';
import {
  HIST_ITEMS,
  SELECT_BLOCK,
  SELECT_BUCKETS,
  SELECT_CHOOSE,
  SELECT_COUNT,
  SELECT_HIST,
  SELECT_INIT,
  SELECT_RADIX,
  SELECT_SCAN,
  SELECT_WRITE,
} from '../kernels/select.wgsl.js';
import { wholeWindow, type HeadTensor } from '../resources.js';
import { ceilDiv, stateWindow, STORAGE_USAGE, wholeHeads, type Dims, type GpuCtx, type StageCtx } from './common.js';

export interface Selection {
  /** [H][L] u32: row h holds the L' kept positions, ascending. */
  indices: HeadTensor;
  /** [H][L] u32: compact row + 1 of each position, 0 if pruned. */
  inverse: HeadTensor;
}

export function selectionBuffers(ctx: GpuCtx, d: Dims): Selection {
  return {
    indices: ctx.pool.heads('indices', d.H, d.L, STORAGE_USAGE),
    inverse: ctx.pool.heads('inverse', d.H, d.L, STORAGE_USAGE),
  };
}

/** select: per-head top-keep (keep from the state buffer) plus the window, ascending, and the inverse map. */
export function select(ctx: StageCtx, d: Dims, pooled: HeadTensor): Selection {
  const { rec } = ctx;
  const sel = selectionBuffers(ctx, d);
  const nBlocks = ceilDiv(d.P, SELECT_BLOCK);
  const state = stateWindow(ctx);
  const pw = wholeHeads(ctx, pooled, 'pooled scores');
  const selState = wholeWindow(ctx.pool.get('select.state', d.H * 4 * 4, STORAGE_USAGE));
  const blocks = wholeWindow(ctx.pool.get('select.blocks', d.H * nBlocks * 2 * 4, STORAGE_USAGE));
  const indices = wholeHeads(ctx, sel.indices, 'indices');
  const inverse = wholeHeads(ctx, sel.inverse, 'inverse');
  if (d.P <= ctx.radixOneGroupKeys) {
    rec.dispatch(SELECT_RADIX, { P: d.P }, { state, pooled: pw, selState }, [d.H]);
  } else {
    const selHist = wholeWindow(ctx.pool.get('select.hist', d.H * SELECT_BUCKETS * 4, STORAGE_USAGE));
    rec.dispatch(SELECT_INIT, { H: d.H }, { state, selHist, selState }, [d.H]);
    for (const shift of [24, 16, 8, 0]) {
      rec.dispatch(SELECT_HIST, { P: d.P, shift }, { state, pooled: pw, selState, selHist }, [ceilDiv(d.P, SELECT_HIST.workgroupSize * HIST_ITEMS), d.H]);
      rec.dispatch(SELECT_CHOOSE, { shift }, { state, selHist, selState }, [d.H]);
    }
  }
  rec.dispatch(SELECT_COUNT, { P: d.P, nBlocks }, { state, pooled: pw, selState, blocks }, [nBlocks, d.H]);
  rec.dispatch(SELECT_SCAN, { nBlocks }, { state, blocks }, [d.H]);
  rec.dispatch(SELECT_WRITE, { P: d.P, L: d.L, nBlocks }, { state, pooled: pw, selState, blocks, indices, inverse }, [ceilDiv(d.L, SELECT_BLOCK), d.H]);
  return sel;
}

/** invertIndices: the inverse map of indices given by the host (attendSelected). */
export function invertIndices(ctx: StageCtx, d: Dims, sel: Selection, keptLength: number): void {
  const inverse = wholeHeads(ctx, sel.inverse, 'inverse');
  ctx.rec.command((enc) => enc.clearBuffer(inverse.binding.buffer, 0, inverse.binding.size));
  ctx.rec.dispatch(
    INVERT_INDICES,
    { L: d.L, keptLength },
    { indices: wholeHeads(ctx, sel.indices, 'indices'), inverse },
    [ceilDiv(keptLength, INVERT_INDICES.workgroupSize), d.H],
  );
}
