/**
 * The GPU stages score and pool (kernels in ../kernels/score.wgsl.ts, score-f16.wgsl.ts and
 * pool.wgsl.ts).
 */
import { GATE } from '../kernels/attend.wgsl.js';
import { POOL } from '../kernels/pool.wgsl.js';
import { scoreF16SharedBytes, scorePartialsF16Kernel, type ScoreF16Config } from '../kernels/score-f16.wgsl.js';
import { SCORE_MEAN_STORED, SCORE_STATS, scoreMeanKernel, scorePartialsKernel } from '../kernels/score.wgsl.js';
import { headChunks, headWindow, sharedWindow, type HeadTensor, type Window } from '../resources.js';
import { bm, bn, type TileConfig } from '../tiles.js';
import { f16Dim, f16K, toF16 } from './attend-f16.js';
import { ceilDiv, qkParams, STORAGE_USAGE, type Dims, type StageCtx } from './common.js';

/**
 * score: [H][P] mean window attention probability of each prefix key: one Q.K^T pass with
 * the logits kept in memory where H W P floats fit ctx.scoreLogitsBytes, else two passes.
 * `tag` prefixes the buffer names (the cost rule's probe scores apart from the full scoring).
 * At precision 'f16' the logits are those of f16-rounded Q (before the scale) and K, with f32
 * sums: on the matrix units (scorePartials-f16 on an f16 copy of the window's Q rows and the
 * layer's f16 copy of K, f16K, which its dense attention reads too)
 * where the adapter has them and the logits are kept, else the f32 kernels rounding as they load.
 */
export function score(ctx: StageCtx, d: Dims, q: HeadTensor, k: HeadTensor, tag = ''): HeadTensor {
  const { rec, lim } = ctx;
  const c = windowTiles(ctx.tiles(d.D), d.W, ctx.scoreRowsMax, ctx.device.limits.maxComputeWorkgroupStorageSize);
  const round = ctx.precision === 'f16';
  const store = d.H * d.W * d.P * 4 <= ctx.scoreLogitsBytes;
  const mc = round && store ? scoreF16Config(ctx, d) : null;
  const nKeyBlocks = ceilDiv(d.L, mc ? mc.bn : bn(c));
  const partials = ctx.pool.heads(`${tag}score.partials`, d.H, nKeyBlocks * d.W * 2, STORAGE_USAGE);
  const stats = ctx.pool.heads(`${tag}score.stats`, d.H, d.W * 2, STORAGE_USAGE);
  const scores = ctx.pool.heads(`${tag}scores`, d.H, d.P, STORAGE_USAGE);
  const logits = store ? ctx.pool.heads(`${tag}score.logits`, d.H, d.W * d.P, STORAGE_USAGE) : null;
  const base = { L: d.L, P: d.P, W: d.W };
  const uses = [
    { tensor: q, kvDiv: 1 },
    { tensor: k, kvDiv: d.G },
    { tensor: partials, kvDiv: 1 },
    { tensor: stats, kvDiv: 1 },
    { tensor: scores, kvDiv: 1 },
    ...(logits ? [{ tensor: logits, kvDiv: 1 }] : []),
  ];
  const f16 = mc && {
    q: toF16(ctx, d, q, mc.dp, 1, GATE.always, `${tag}score.q16`, undefined, { first: d.P, n: d.W }),
    k: f16K(ctx, d, k),
  };
  if (f16) uses.splice(0, 2, { tensor: f16.q, kvDiv: 1 }, { tensor: f16.k, kvDiv: d.G });
  for (const [h0, h1] of headChunks(d.H, uses, lim)) {
    const qk = f16 ? null : qkParams(d, q, k, d.G, h0, h1, lim.align);
    const pw = headWindow(partials, h0, h1, lim.align);
    const sw = headWindow(stats, h0, h1, lim.align);
    const ow = headWindow(scores, h0, h1, lim.align);
    const part = { partBase: pw.base, partHeadStride: partials.headElems };
    const stat = { statBase: sw.base, statHeadStride: stats.headElems };
    const out = { outBase: ow.base, outHeadStride: scores.headElems, invW: 1 / d.W };
    const lw = logits ? headWindow(logits, h0, h1, lim.align) : null;
    const logit: Record<string, number> = lw ? { logitsBase: lw.base, logitsHeadStride: logits!.headElems } : {};
    if (f16) {
      const qw = headWindow(f16.q, h0, h1, lim.align);
      const kw = sharedWindow(f16.k, h0, h1, d.G, lim.align);
      const halves = { qBase: 2 * qw.base, kBase: 2 * kw.base, qHeadStride: 2 * f16.q.headElems, kvHeadStride: 2 * f16.k.headElems };
      const heads = { h0, kvDiv: d.G, kv0: kw.first, scale: 1 / Math.sqrt(d.D) };
      const nPass = ceilDiv(d.W, 16 * mc!.sgh);
      const hpw = [8, 4, 2, 1].find((n) => n * mc!.sgh <= 8 && d.G % n === 0 && h0 % n === 0 && (h1 - h0) % n === 0)!;
      const runs = { nKeyBlocks, nPass };
      rec.dispatch(
        scorePartialsF16Kernel({ ...mc!, sg: hpw * mc!.sgh }),
        { ...base, ...halves, ...heads, ...runs, ...part, ...logit },
        { qIn: qw, kIn: kw, partials: pw, logits: lw! },
        [nPass * ceilDiv(nKeyBlocks, mc!.blocks), (h1 - h0) / hpw],
      );
    } else {
      rec.dispatch(
        scorePartialsKernel({ tiles: c, store, round }),
        { ...base, ...qk!.params, ...part, ...logit },
        // The store variant alone binds `logits` (the recorder checks the names against the kernel's).
        { ...qk!.windows, partials: pw, ...(lw ? { logits: lw } : {}) } as Record<'qIn' | 'kIn' | 'partials' | 'logits', Window>,
        [nKeyBlocks, h1 - h0],
      );
    }
    rec.dispatch(SCORE_STATS, { W: d.W, nKeyBlocks, ...part, ...stat }, { partials: pw, stats: sw }, [d.W, h1 - h0]);
    if (lw) {
      rec.dispatch(SCORE_MEAN_STORED, { P: d.P, W: d.W, ...logit, ...stat, ...out }, { logits: lw, stats: sw, scores: ow }, [ceilDiv(d.P, SCORE_MEAN_STORED.workgroupSize), h1 - h0]);
    } else {
      // Logits not kept: f16 has no matrix path here (mc needs `store`), so qk is set.
      rec.dispatch(scoreMeanKernel({ tiles: c, round }), { ...base, ...qk!.params, ...stat, ...out }, { ...qk!.windows, stats: sw, scores: ow }, [ceilDiv(d.P, bn(c)), h1 - h0]);
    }
  }
  return scores;
}

/**
 * The matrix-unit scorePartials' config at precision 'f16' (subgroup matrices, f16Tiles not
 * false, the config fits the workgroup memory), or null, less the subgroup count (per dispatch:
 * sgh times the heads of one KV head that share a workgroup, up to 8 subgroups): 16-row
 * subgroups, as many per head as cover the window up to 8 (the full window of 128 rows in one
 * pass; the probe's 16 rows take one per head, four heads of a KV group sharing its K blocks),
 * blocks of 32 keys, 8 blocks per workgroup with 8 subgroups per head, else 4 (the fastest of 1-8 on
 * an H200 at L 8K-16K, scripts/score-f16-check.mjs --time).
 */
function scoreF16Config(ctx: StageCtx, d: Dims): Omit<ScoreF16Config, 'sg'> | null {
  if (!ctx.features.matrix || !ctx.f16Tiles) return null;
  const sgh = Math.min(8, 2 ** Math.ceil(Math.log2(ceilDiv(d.W, 16))));
  const c = { sgh, bn: 32, dp: f16Dim(d.D), blocks: sgh === 8 ? 8 : 4 };
  return scoreF16SharedBytes({ ...c, sg: 8 }) <= ctx.device.limits.maxComputeWorkgroupStorageSize ? c : null;
}

/**
 * The score kernels' tiles: the attention tiles with TM (logit rows per thread) set so that
 * BM = NY * TM covers the window where it can (TM 1 to 8): both kernels walk the W window
 * queries BM rows at a time and reload the key block for each, so the probe's 16 queries in
 * a 64-row tile cost half the full scoring of 128, and 128 queries in one 128-row tile load
 * each key block once (1.2x faster at 128K on an H200 than TM 4). TM is at most `maxRows`
 * (GpuCtx.scoreRowsMax) and shrinks where the workgroup memory would not hold the tile.
 */
export function windowTiles(c: TileConfig, window: number, maxRows: number, maxShared: number): TileConfig {
  let tm = 1;
  while (tm < maxRows && c.ny * tm < window) tm *= 2;
  while (tm > 1 && scoreSharedBytes({ ...c, tm }) > maxShared) tm /= 2;
  return tm === c.tm ? c : { ...c, tm };
}

/** Workgroup memory of the score kernels: the Q/K chunks and the larger of their reductions. */
export function scoreSharedBytes(c: TileConfig): number {
  return 16 * (bm(c) + bn(c)) * (c.dk / 4 + 1) + Math.max(8 * bm(c) * c.nx, 4 * bn(c) * c.ny);
}

/**
 * pool: average pooling along tokens, kernel K, include-pad divisor, of the
 * first P scores of each head (`scores` rows may be longer: the probe's
 * [H][L - w] scores pool to their prefix [0, L - W)) into [H][P].
 */
export function pool(ctx: StageCtx, d: Dims, scores: HeadTensor, kernel: number, tag = ''): HeadTensor {
  const { rec, lim } = ctx;
  const pooled = ctx.pool.heads(`${tag}pooled`, d.H, d.P, STORAGE_USAGE);
  const uses = [
    { tensor: scores, kvDiv: 1 },
    { tensor: pooled, kvDiv: 1 },
  ];
  for (const [h0, h1] of headChunks(d.H, uses, lim)) {
    const iw = headWindow(scores, h0, h1, lim.align);
    const ow = headWindow(pooled, h0, h1, lim.align);
    rec.dispatch(
      POOL,
      { P: d.P, radius: (kernel - 1) / 2, inBase: iw.base, inHeadStride: scores.headElems, outBase: ow.base, outHeadStride: pooled.headElems, kernel },
      { scores: iw, pooled: ow },
      [ceilDiv(d.P, POOL.workgroupSize), h1 - h0],
    );
  }
  return pooled;
}
