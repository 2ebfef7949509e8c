/// <reference types="@webgpu/types" preserve="true" />
/**
 * The GPU stages, named as in reference/stages.ts: score, pool, budget,
 * select, gather, attend, scatter. Each records its kernels' dispatches
 * (kernels in ./kernels/<stage>.wgsl.ts) into a Recorder; nothing is read
 * back between stages: the budget reaches select, gather, attend and scatter
 * through the state buffer (kernels/state.ts).
 */
import type { ResolvedTsaOptions } from '../harness/core/interface.js';
import { ATTEND_PARAMS, GATE, attendWgsl } from './kernels/attend.wgsl.js';
import {
  BUDGET_CHOOSE_PARAMS,
  BUDGET_DECIDE_PARAMS,
  BUDGET_FIX_PARAMS,
  BUDGET_HIST_PARAMS,
  BUDGET_INIT_PARAMS,
  BUDGET_MAX_PARAMS,
  budgetChooseWgsl,
  budgetDecideWgsl,
  budgetFixWgsl,
  budgetHistWgsl,
  budgetInitWgsl,
  budgetMaxWgsl,
} from './kernels/budget.wgsl.js';
import { GATHER_PARAMS, gatherWgsl } from './kernels/gather.wgsl.js';
import { POOL_PARAMS, poolWgsl } from './kernels/pool.wgsl.js';
import { SCATTER_INVERSE_PARAMS, SCATTER_PARAMS, scatterInverseWgsl, scatterWgsl } from './kernels/scatter.wgsl.js';
import {
  SCORE_COMBINE_PARAMS,
  SCORE_PROBS_PARAMS,
  SCORE_STATS_PARAMS,
  scoreCombineWgsl,
  scoreProbsWgsl,
  scoreStatsWgsl,
} from './kernels/score.wgsl.js';
import {
  SELECT_BLOCK,
  SELECT_CHOOSE_PARAMS,
  SELECT_COUNT_PARAMS,
  SELECT_HIST_PARAMS,
  SELECT_INIT_PARAMS,
  SELECT_SCAN_PARAMS,
  SELECT_WRITE_PARAMS,
  selectChooseWgsl,
  selectCountWgsl,
  selectHistWgsl,
  selectInitWgsl,
  selectScanWgsl,
  selectWriteWgsl,
} from './kernels/select.wgsl.js';
import { STATE } from './kernels/state.js';
import type { Recorder } from './recorder.js';
import { BufferPool, headChunks, headWindow, sharedWindow, wholeWindow, type BindingLimits, type HeadTensor } from './resources.js';
import { bm, bn, type TileConfig } from './tiles.js';

export const STORAGE_USAGE = 0x80 | 0x4 | 0x8; // STORAGE | COPY_SRC | COPY_DST

/** Compiled pipelines, created once per kernel variant and kept. */
export class Pipelines {
  private cache = new Map<string, GPUComputePipeline>();

  constructor(private device: GPUDevice) {}

  get(key: string, wgsl: () => string): GPUComputePipeline {
    let p = this.cache.get(key);
    if (!p) {
      const module = this.device.createShaderModule({ label: key, code: wgsl() });
      p = this.device.createComputePipeline({ label: key, layout: 'auto', compute: { module, entryPoint: 'main' } });
      this.cache.set(key, p);
    }
    return p;
  }
}

export interface GpuCtx {
  device: GPUDevice;
  pool: BufferPool;
  pipelines: Pipelines;
  lim: BindingLimits;
  tiles(headDim: number): TileConfig;
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

const tileKey = (c: TileConfig) => `${c.nx}.${c.ny}.${c.tm}.${c.tn}.${c.bv}.${c.dk}.${c.dp}${c.prefetch ? '.pf' : ''}${c.vec4 ? '.v4' : ''}`;
const ceilDiv = (a: number, b: number) => Math.ceil(a / b);

/** The layer-state buffer (kernels/state.ts). */
export function stateBuffer(ctx: GpuCtx): GPUBuffer {
  return ctx.pool.get('state', STATE.words * 4, STORAGE_USAGE);
}

/** Common per-head-chunk bindings of a logits kernel: Q (query heads) and K (kvDiv query heads per K head). */
function qkParams(d: Dims, q: HeadTensor, k: HeadTensor, kvDiv: number, h0: number, h1: number, align: number) {
  const qw = headWindow(q, h0, h1, align);
  const kw = sharedWindow(k, h0, h1, kvDiv, align);
  return {
    windows: [qw, kw],
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

/** score: [H][P] mean window attention probability of each prefix key. */
export function score(ctx: GpuCtx, rec: Recorder, d: Dims, q: HeadTensor, k: HeadTensor): HeadTensor {
  const c = ctx.tiles(d.D);
  const nKeyBlocks = ceilDiv(d.L, bn(c));
  const part = ctx.pool.heads('score.part', d.H, nKeyBlocks * d.W * 2, STORAGE_USAGE);
  const stats = ctx.pool.heads('score.stats', d.H, d.W * 2, STORAGE_USAGE);
  const scores = ctx.pool.heads('scores', d.H, d.P, STORAGE_USAGE);
  const { align } = ctx.lim;
  const statsP = ctx.pipelines.get(`scoreStats:${tileKey(c)}`, () => scoreStatsWgsl(c));
  const combineP = ctx.pipelines.get('scoreCombine', scoreCombineWgsl);
  const probsP = ctx.pipelines.get(`scoreProbs:${tileKey(c)}`, () => scoreProbsWgsl(c));
  const base = { L: d.L, P: d.P, W: d.W };
  const uses = [
    { tensor: q, kvDiv: 1 },
    { tensor: k, kvDiv: d.G },
    { tensor: part, kvDiv: 1 },
    { tensor: stats, kvDiv: 1 },
    { tensor: scores, kvDiv: 1 },
  ];
  for (const [h0, h1] of headChunks(d.H, uses, ctx.lim)) {
    const qk = qkParams(d, q, k, d.G, h0, h1, align);
    const pw = headWindow(part, h0, h1, align);
    const sw = headWindow(stats, h0, h1, align);
    const ow = headWindow(scores, h0, h1, align);
    rec.dispatch('scoreStats', statsP, SCORE_STATS_PARAMS, { ...base, ...qk.params, partBase: pw.base, partHeadStride: part.headElems }, [...qk.windows, pw], [nKeyBlocks, h1 - h0]);
    rec.dispatch(
      'scoreCombine',
      combineP,
      SCORE_COMBINE_PARAMS,
      { W: d.W, nKeyBlocks, partBase: pw.base, partHeadStride: part.headElems, statBase: sw.base, statHeadStride: stats.headElems },
      [pw, sw],
      [ceilDiv(d.W, 64), h1 - h0],
    );
    rec.dispatch(
      'scoreProbs',
      probsP,
      SCORE_PROBS_PARAMS,
      { ...base, ...qk.params, statBase: sw.base, statHeadStride: stats.headElems, outBase: ow.base, outHeadStride: scores.headElems, invW: 1 / d.W },
      [...qk.windows, sw, ow],
      [ceilDiv(d.P, bn(c)), h1 - h0],
    );
  }
  return scores;
}

/** pool: average pooling along tokens, kernel K, include-pad divisor. */
export function pool(ctx: GpuCtx, rec: Recorder, d: Dims, scores: HeadTensor, kernel: number): HeadTensor {
  const pooled = ctx.pool.heads('pooled', d.H, d.P, STORAGE_USAGE);
  const pipe = ctx.pipelines.get('pool', poolWgsl);
  const uses = [
    { tensor: scores, kvDiv: 1 },
    { tensor: pooled, kvDiv: 1 },
  ];
  for (const [h0, h1] of headChunks(d.H, uses, ctx.lim)) {
    const iw = headWindow(scores, h0, h1, ctx.lim.align);
    const ow = headWindow(pooled, h0, h1, ctx.lim.align);
    rec.dispatch(
      'pool',
      pipe,
      POOL_PARAMS,
      { P: d.P, radius: (kernel - 1) / 2, inBase: iw.base, outBase: ow.base, headStride: d.P, kernel },
      [iw, ow],
      [ceilDiv(d.P, 256), h1 - h0],
    );
  }
  return pooled;
}

/** The whole [H][P] pooled tensor in one binding (budget and select read across heads). */
function wholePooled(ctx: GpuCtx, d: Dims, pooled: HeadTensor) {
  const bytes = d.H * d.P * 4;
  if (pooled.parts.length !== 1 || bytes > ctx.lim.maxBinding) {
    throw new Error(`pooled scores (${bytes} bytes) exceed one storage binding (${ctx.lim.maxBinding})`);
  }
  return wholeWindow(pooled.parts[0]!.buffer, bytes);
}

/** tau as a 64-bit binary fraction floor(tau * 2^64), split into two u32. */
function tau64(tau: number): { tauLo: number; tauHi: number } {
  const t = BigInt(Math.floor(tau * 2 ** 64));
  return { tauLo: Number(t & 0xffffffffn), tauHi: Number((t >> 32n) & 0xffffffffn) };
}

/**
 * budget: the exact keep count on the GPU (kernels/budget.wgsl.ts) into the
 * state buffer; `maxKeptLength` is the cost rule's bound on L' (L = none).
 */
export function budget(ctx: GpuCtx, rec: Recorder, d: Dims, pooled: HeadTensor, o: ResolvedTsaOptions, maxKeptLength: number): GPUBuffer {
  const state = stateBuffer(ctx);
  const hist = ctx.pool.get('budget.hist', 256 * 5 * 4, STORAGE_USAGE);
  const keys = ctx.pool.get('budget.keys', d.P * 16, STORAGE_USAGE);
  const pw = wholePooled(ctx, d, pooled);
  const sw = wholeWindow(state);
  const hw = wholeWindow(hist);
  const kw = wholeWindow(keys, d.P * 16);
  const p = (name: string, wgsl: () => string) => ctx.pipelines.get(name, wgsl);
  const spread = (n: number) => Math.min(1024, Math.max(1, ceilDiv(n, 256)));

  // 128-bit fixed point: the largest value maps below 2^kBits so that H * P values sum below 2^127;
  // C = H * 1e-8 * 2^s stays below 2^125.
  const kBits = 127 - Math.ceil(Math.log2(d.H * d.P + 1));
  const c = d.H * 1e-8;
  const sCap = Math.ceil(125 - Math.log2(c)) - 1;
  const cHi = Math.fround(c);
  const cLo = Math.fround(c - cHi);
  const topBit = kBits + Math.ceil(Math.log2(d.H));
  const firstByte = Math.ceil(topBit / 8) - 1;

  rec.dispatch('budgetInit', p('budgetInit', budgetInitWgsl), BUDGET_INIT_PARAMS, { P: d.P }, [sw, hw], [1]);
  rec.dispatch('budgetMax', p('budgetMax', budgetMaxWgsl), BUDGET_MAX_PARAMS, { count: d.H * d.P }, [pw, sw], [spread(d.H * d.P)]);
  rec.dispatch('budgetFix', p('budgetFix', budgetFixWgsl), BUDGET_FIX_PARAMS, { P: d.P, H: d.H, kBits, sCap }, [pw, kw, sw], [spread(d.P)]);
  const histP = p('budgetHist', budgetHistWgsl);
  const chooseP = p('budgetChoose', budgetChooseWgsl);
  for (let byte = firstByte; byte >= 0; byte--) {
    const pass = { word: byte >> 2, shift: 8 * (byte & 3) };
    rec.dispatch('budgetHist', histP, BUDGET_HIST_PARAMS, { P: d.P, ...pass }, [kw, sw, hw], [ceilDiv(d.P, 256 * 16)]);
    rec.dispatch(
      'budgetChoose',
      chooseP,
      BUDGET_CHOOSE_PARAMS,
      { ...pass, first: byte === firstByte ? 1 : 0, last: byte === 0 ? 1 : 0, ...tau64(o.coverage), cHi, cLo },
      [sw, hw],
      [1],
    );
  }
  rec.dispatch(
    'budgetDecide',
    p('budgetDecide', budgetDecideWgsl),
    BUDGET_DECIDE_PARAMS,
    { P: d.P, W: d.W, L: d.L, minTokens: Math.min(o.minTokens, 0xffffffff), maxKeptLength },
    [sw],
    [1],
  );
  return state;
}

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

function wholeHeads(ctx: GpuCtx, t: HeadTensor, what: string) {
  const bytes = t.heads * t.headElems * 4;
  if (t.parts.length !== 1 || bytes > ctx.lim.maxBinding) {
    throw new Error(`${what} (${bytes} bytes) exceed one storage binding (${ctx.lim.maxBinding})`);
  }
  return wholeWindow(t.parts[0]!.buffer, bytes);
}

/** select: per-head top-keep (keep from the state buffer) plus the window, ascending, and the inverse map. */
export function select(ctx: GpuCtx, rec: Recorder, d: Dims, pooled: HeadTensor): Selection {
  const sel = selectionBuffers(ctx, d);
  const nBlocks = ceilDiv(d.P, SELECT_BLOCK);
  const sw = wholeWindow(stateBuffer(ctx));
  const pw = wholePooled(ctx, d, pooled);
  const hist = wholeWindow(ctx.pool.get('select.hist', d.H * 256 * 4, STORAGE_USAGE));
  const st = wholeWindow(ctx.pool.get('select.state', d.H * 4 * 4, STORAGE_USAGE));
  const blocks = wholeWindow(ctx.pool.get('select.blocks', d.H * nBlocks * 2 * 4, STORAGE_USAGE));
  const iw = wholeHeads(ctx, sel.indices, 'indices');
  const vw = wholeHeads(ctx, sel.inverse, 'inverse');
  const p = (name: string, wgsl: () => string) => ctx.pipelines.get(name, wgsl);
  rec.dispatch('selectInit', p('selectInit', selectInitWgsl), SELECT_INIT_PARAMS, { H: d.H }, [sw, hist, st], [d.H]);
  for (const shift of [24, 16, 8, 0]) {
    rec.dispatch('selectHist', p('selectHist', selectHistWgsl), SELECT_HIST_PARAMS, { P: d.P, shift }, [sw, pw, st, hist], [ceilDiv(d.P, 256 * 16), d.H]);
    rec.dispatch('selectChoose', p('selectChoose', selectChooseWgsl), SELECT_CHOOSE_PARAMS, { shift }, [sw, hist, st], [d.H]);
  }
  rec.dispatch('selectCount', p('selectCount', selectCountWgsl), SELECT_COUNT_PARAMS, { P: d.P, nBlocks }, [sw, pw, st, blocks], [nBlocks, d.H]);
  rec.dispatch('selectScan', p('selectScan', selectScanWgsl), SELECT_SCAN_PARAMS, { nBlocks }, [sw, blocks], [d.H]);
  rec.dispatch(
    'selectWrite',
    p('selectWrite', selectWriteWgsl),
    SELECT_WRITE_PARAMS,
    { P: d.P, L: d.L, nBlocks },
    [sw, pw, st, blocks, iw, vw],
    [ceilDiv(d.L, SELECT_BLOCK), d.H],
  );
  return sel;
}

/** Builds the inverse map from indices given by the host (attendSelected). */
export function invertIndices(ctx: GpuCtx, rec: Recorder, d: Dims, sel: Selection, keptLength: number): void {
  const vw = wholeHeads(ctx, sel.inverse, 'inverse');
  rec.command((enc) => enc.clearBuffer(vw.binding.buffer, 0, vw.binding.size));
  rec.dispatch(
    'scatterInverse',
    ctx.pipelines.get('scatterInverse', scatterInverseWgsl),
    SCATTER_INVERSE_PARAMS,
    { L: d.L, keptLength },
    [wholeHeads(ctx, sel.indices, 'indices'), vw],
    [ceilDiv(keptLength, 256), d.H],
  );
}

/** gather: per query head, the kept rows of `src` (heads shared by kvDiv query heads) into a compact copy. */
export function gather(ctx: GpuCtx, rec: Recorder, d: Dims, src: HeadTensor, kvDiv: number, sel: Selection, name: string): HeadTensor {
  const dst = ctx.pool.heads(name, d.H, d.L * d.D, STORAGE_USAGE);
  const pipe = ctx.pipelines.get('gather', gatherWgsl);
  const sw = wholeWindow(stateBuffer(ctx));
  const rowsPerGroup = Math.max(Math.floor(1024 / d.D), ceilDiv(d.L, 65535), 1);
  const uses = [
    { tensor: src, kvDiv },
    { tensor: dst, kvDiv: 1 },
    { tensor: sel.indices, kvDiv: 1 },
  ];
  for (const [h0, h1] of headChunks(d.H, uses, ctx.lim)) {
    const srcW = sharedWindow(src, h0, h1, kvDiv, ctx.lim.align);
    const dstW = headWindow(dst, h0, h1, ctx.lim.align);
    const idxW = headWindow(sel.indices, h0, h1, ctx.lim.align);
    rec.dispatch(
      `gather ${name}`,
      pipe,
      GATHER_PARAMS,
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
      [sw, idxW, srcW, dstW],
      [ceilDiv(d.L, rowsPerGroup), h1 - h0],
    );
  }
  return dst;
}

/**
 * Heads per attend dispatch: at most ~1e13 causal FLOPs each (under a second
 * on a large GPU), so no single dispatch runs long enough to trip a driver's
 * watchdog or starve other work.
 */
function attendHeadsPerDispatch(d: Dims): number {
  return Math.max(1, Math.floor(1e13 / (2 * d.D * d.L * d.L)));
}

function splitChunks(chunks: [number, number][], most: number): [number, number][] {
  return chunks.flatMap(([h0, h1]) => {
    const out: [number, number][] = [];
    for (let h = h0; h < h1; h += most) out.push([h, Math.min(h1, h + most)]);
    return out;
  });
}

/**
 * attend: causal attention of every head over `rows` rows (dense: L; sparse:
 * up to L, the kernel reads L' from the state), output O [H][L][D].
 */
export function attend(ctx: GpuCtx, rec: Recorder, d: Dims, q: HeadTensor, k: HeadTensor, v: HeadTensor, kvDiv: number, gate: number): HeadTensor {
  const c = ctx.tiles(d.D);
  const o = ctx.pool.heads('attend.out', d.H, d.L * d.D, STORAGE_USAGE);
  const pipe = ctx.pipelines.get(`attend:${tileKey(c)}`, () => attendWgsl(c));
  const sw = wholeWindow(stateBuffer(ctx));
  const uses = [
    { tensor: q, kvDiv: 1 },
    { tensor: k, kvDiv },
    { tensor: v, kvDiv },
    { tensor: o, kvDiv: 1 },
  ];
  for (const [h0, h1] of splitChunks(headChunks(d.H, uses, ctx.lim), attendHeadsPerDispatch(d))) {
    const qk = qkParams(d, q, k, kvDiv, h0, h1, ctx.lim.align);
    const vw = sharedWindow(v, h0, h1, kvDiv, ctx.lim.align);
    const ow = headWindow(o, h0, h1, ctx.lim.align);
    rec.dispatch(
      'attend',
      pipe,
      ATTEND_PARAMS,
      { ...qk.params, n: d.L, vBase: vw.base, oBase: ow.base, oHeadStride: o.headElems, gate },
      [...qk.windows, vw, ow, sw],
      [ceilDiv(d.L, bm(c)), h1 - h0],
    );
  }
  return o;
}

/** scatter: O [H][L][D] (compact rows when sparse) to out [L][H*D], zeros for pruned rows. */
export function scatter(ctx: GpuCtx, rec: Recorder, d: Dims, o: HeadTensor, sel: Selection, out: GPUBuffer): void {
  const pipe = ctx.pipelines.get('scatter', scatterWgsl);
  const sw = wholeWindow(stateBuffer(ctx));
  const rowBytes = d.H * d.D * 4;
  const rowsPerWindow = Math.floor((ctx.lim.maxBinding - ctx.lim.align) / rowBytes);
  if (rowsPerWindow < 1) throw new Error(`one output row (${rowBytes} bytes) exceeds maxStorageBufferBindingSize`);
  const chunks = headChunks(
    d.H,
    [
      { tensor: o, kvDiv: 1 },
      { tensor: sel.inverse, kvDiv: 1 },
    ],
    ctx.lim,
  );
  for (let t0 = 0; t0 < d.L; t0 += rowsPerWindow) {
    const rows = Math.min(rowsPerWindow, d.L - t0);
    const start = t0 * rowBytes;
    const offset = Math.floor(start / ctx.lim.align) * ctx.lim.align;
    const outW = { binding: { buffer: out, offset, size: start + rows * rowBytes - offset }, base: (start - offset) / 4 };
    for (const [h0, h1] of chunks) {
      const ow = headWindow(o, h0, h1, ctx.lim.align);
      const vw = headWindow(sel.inverse, h0, h1, ctx.lim.align);
      const rowsPerGroup = Math.max(1, Math.floor(1024 / ((h1 - h0) * d.D)), ceilDiv(rows, 65535));
      rec.dispatch(
        'scatter',
        pipe,
        SCATTER_PARAMS,
        {
          t0,
          rows,
          H: d.H,
          dim: d.D,
          h0,
          heads: h1 - h0,
          rowsPerGroup,
          oBase: ow.base,
          oHeadStride: o.headElems,
          invBase: vw.base,
          invHeadStride: sel.inverse.headElems,
          outBase: outW.base,
        },
        [sw, vw, ow, outW],
        [ceilDiv(rows, rowsPerGroup), 1],
      );
    }
  }
}

export { GATE };
