/**
 * The webgpu backend as the library's entries and registry hand it out. Its GPU kernels for the
 * XAttention stages (blockScores, blockSelect, attendBlocks) are follow-up work, so it is not a
 * BlockSparseStages backend yet, and a call with options.blockSparse rejects with a typed error
 * instead of silently running plain TSA.
 */
import { TsaInputError } from './core/errors.js';
import type { TsaOptions } from './core/interface.js';
import { createWebGpuBackend as createGpu, type CreateWebGpuOptions } from '../gpu/index.js';

export const WEBGPU_NO_BLOCK_SPARSE = 'blockSparse is not supported by the webgpu backend yet';

function rejectBlockSparse(options: TsaOptions | undefined): void {
  if (options !== null && typeof options === 'object' && (options as TsaOptions).blockSparse !== undefined) {
    throw new TsaInputError(WEBGPU_NO_BLOCK_SPARSE, 'OPTION');
  }
}

/** createWebGpuBackend of gpu/index.ts, whose layer calls reject options.blockSparse (TsaInputError 'OPTION'). */
export async function createWebGpuBackend(options: CreateWebGpuOptions = {}): ReturnType<typeof createGpu> {
  const backend = await createGpu(options);
  const layer = backend.tokenSparseAttention.bind(backend);
  const layerGpu = backend.tokenSparseAttentionGpu.bind(backend);
  backend.tokenSparseAttention = async (input, o) => {
    rejectBlockSparse(o);
    return layer(input, o);
  };
  backend.tokenSparseAttentionGpu = async (input, o) => {
    rejectBlockSparse(o);
    return layerGpu(input, o);
  };
  return backend;
}
