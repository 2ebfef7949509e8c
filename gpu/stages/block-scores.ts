/** The GPU stage blockScores (kernel in ../kernels/block-scores.wgsl.ts). */
import { TsaInputError } from '../../harness/core/errors.js';
import type { ResolvedBlockSparse } from '../../harness/core/interface.js';
import { blockScoresKernel, blockScoresSharedBytes, blockScoresTt } from '../kernels/block-scores.wgsl.js';
import { headChunks, wholeWindow, type HeadTensor } from '../resources.js';
import { attendHeadsPerDispatch, splitChunks } from './attend.js';
import { ceilDiv, qkParams, stateWindow, STORAGE_USAGE, type Dims, type StageCtx } from './common.js';

/**
 * blockScores: the antidiagonal block masses [H][nb][nb] f32 (nb = ceil(n / B)) of the first n rows
 * of q and k (kvDiv query heads per K head): n = d.L, or the state's L' under `gate` (GATE), the
 * buffer sized for nb of d.L and laid out for the nb of n.
 */
export function blockScores(ctx: StageCtx, d: Dims, q: HeadTensor, k: HeadTensor, kvDiv: number, bs: ResolvedBlockSparse, gate: number): GPUBuffer {
  const { rec, lim } = ctx;
  const { blockSize: B, stride: S } = bs;
  const nb = ceilDiv(d.L, B);
  const tt = blockScoresTt(B / S);
  const dk = [16, 32, 8, 4].find((x) => blockScoresSharedBytes({ tt, dk: x }) <= ctx.device.limits.maxComputeWorkgroupStorageSize);
  if (dk === undefined) {
    throw new TsaInputError(`blockSparse: blockSize / stride = ${B / S} strided rows per block is more than the webgpu backend's blockScores tiles hold on this adapter`, 'OPTION');
  }
  const kernel = blockScoresKernel({ D: d.D, S, B, tt, dk, vec4: d.D % 4 === 0 });
  const bytes = d.H * nb * nb * 4;
  const masses = ctx.pool.get('block.masses', bytes, STORAGE_USAGE);
  const uses = [
    { tensor: q, kvDiv: 1 },
    { tensor: k, kvDiv },
  ];
  for (const [h0, h1] of splitChunks(headChunks(d.H, uses, lim), attendHeadsPerDispatch(d))) {
    const { windows, params: qp } = qkParams(d, q, k, kvDiv, h0, h1, lim.align);
    const { qBase, kBase, qHeadStride, kvHeadStride, kv0 } = qp;
    rec.dispatch(
      kernel,
      { n: d.L, qBase, kBase, qHeadStride, kvHeadStride, h0, kvDiv, kv0, gate, scale: 1 / (Math.sqrt(d.D) * S) },
      { ...windows, masses: wholeWindow(masses, bytes), state: stateWindow(ctx) },
      [ceilDiv(ceilDiv(d.L, S), 16 * tt), h1 - h0],
    );
  }
  return masses;
}
