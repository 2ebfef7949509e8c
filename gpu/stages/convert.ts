/**
 * f16 <-> f32 copies for the GPU-resident entry (resident.ts): f16 Q/K/V are
 * widened to f32 tensors (exact; scoring stays f32), and an f16 output is
 * narrowed from the layer's f32 output. Kernels in ../kernels/convert.wgsl.ts.
 */
import { TsaInputError } from '../../harness/core/errors.js';
import { F16_TO_F32, F32_TO_F16, convertGrid } from '../kernels/convert.wgsl.js';
import { wholeWindow, type HeadTensor } from '../resources.js';
import { STORAGE_USAGE, type StageCtx } from './common.js';

/** An f16 [heads][headElems] buffer as a new f32 head-major tensor (one buffer part). */
export function widen(ctx: StageCtx, src: GPUBuffer, heads: number, headElems: number, name: string): HeadTensor {
  const count = heads * headElems;
  const dst = ctx.pool.heads(name, heads, headElems, STORAGE_USAGE);
  if (dst.parts.length !== 1 || count * 4 > ctx.lim.maxBinding) {
    throw new TsaInputError(`${name}: f16 input of ${count} values needs one f32 binding of ${count * 4} bytes, more than this adapter allows`, 'SHAPE');
  }
  const { groups, stride } = convertGrid(count);
  ctx.rec.dispatch(F16_TO_F32, { count, stride }, { src: wholeWindow(src, count * 2), dst: wholeWindow(dst.parts[0]!.buffer, count * 4) }, [groups], `widen ${name}`);
  return dst;
}

/** The first `count` f32 values of `src` rounded into the f16 buffer `dst`. */
export function narrow(ctx: StageCtx, src: GPUBuffer, dst: GPUBuffer, count: number): void {
  const { groups, stride } = convertGrid(count);
  ctx.rec.dispatch(F32_TO_F16, { count, stride }, { src: wholeWindow(src, count * 4), dst: wholeWindow(dst, count * 2) }, [groups], 'narrow output');
}
