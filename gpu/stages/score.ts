/** The GPU stages score and pool (kernels in ../kernels/score.wgsl.ts and pool.wgsl.ts). */
import { POOL } from '../kernels/pool.wgsl.js';
import { SCORE_STATS, scoreMeanKernel, scorePartialsKernel } from '../kernels/score.wgsl.js';
import { headChunks, headWindow, type HeadTensor } from '../resources.js';
import { bn } from '../tiles.js';
import { ceilDiv, qkParams, STORAGE_USAGE, type Dims, type StageCtx } from './common.js';

/** score: [H][P] mean window attention probability of each prefix key. */
export function score(ctx: StageCtx, d: Dims, q: HeadTensor, k: HeadTensor): HeadTensor {
  const { rec, lim } = ctx;
  const c = ctx.tiles(d.D);
  const nKeyBlocks = ceilDiv(d.L, bn(c));
  const partials = ctx.pool.heads('score.partials', d.H, nKeyBlocks * d.W * 2, STORAGE_USAGE);
  const stats = ctx.pool.heads('score.stats', d.H, d.W * 2, STORAGE_USAGE);
  const scores = ctx.pool.heads('scores', d.H, d.P, STORAGE_USAGE);
  const base = { L: d.L, P: d.P, W: d.W };
  const uses = [
    { tensor: q, kvDiv: 1 },
    { tensor: k, kvDiv: d.G },
    { tensor: partials, kvDiv: 1 },
    { tensor: stats, kvDiv: 1 },
    { tensor: scores, kvDiv: 1 },
  ];
  for (const [h0, h1] of headChunks(d.H, uses, lim)) {
    const qk = qkParams(d, q, k, d.G, h0, h1, lim.align);
    const pw = headWindow(partials, h0, h1, lim.align);
    const sw = headWindow(stats, h0, h1, lim.align);
    const ow = headWindow(scores, h0, h1, lim.align);
    const part = { partBase: pw.base, partHeadStride: partials.headElems };
    const stat = { statBase: sw.base, statHeadStride: stats.headElems };
    rec.dispatch(scorePartialsKernel(c), { ...base, ...qk.params, ...part }, { ...qk.windows, partials: pw }, [nKeyBlocks, h1 - h0]);
    rec.dispatch(SCORE_STATS, { W: d.W, nKeyBlocks, ...part, ...stat }, { partials: pw, stats: sw }, [ceilDiv(d.W, SCORE_STATS.workgroupSize), h1 - h0]);
    rec.dispatch(
      scoreMeanKernel(c),
      { ...base, ...qk.params, ...stat, outBase: ow.base, outHeadStride: scores.headElems, invW: 1 / d.W },
      { ...qk.windows, stats: sw, scores: ow },
      [ceilDiv(d.P, bn(c)), h1 - h0],
    );
  }
  return scores;
}

/** pool: average pooling along tokens, kernel K, include-pad divisor. */
export function pool(ctx: StageCtx, d: Dims, scores: HeadTensor, kernel: number): HeadTensor {
  const { rec, lim } = ctx;
  const pooled = ctx.pool.heads('pooled', d.H, d.P, STORAGE_USAGE);
  const uses = [
    { tensor: scores, kvDiv: 1 },
    { tensor: pooled, kvDiv: 1 },
  ];
  for (const [h0, h1] of headChunks(d.H, uses, lim)) {
    const iw = headWindow(scores, h0, h1, lim.align);
    const ow = headWindow(pooled, h0, h1, lim.align);
    rec.dispatch(
      POOL,
      { P: d.P, radius: (kernel - 1) / 2, inBase: iw.base, outBase: ow.base, headStride: d.P, kernel },
      { scores: iw, pooled: ow },
      [ceilDiv(d.P, POOL.workgroupSize), h1 - h0],
    );
  }
  return pooled;
}
