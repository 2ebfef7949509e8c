/** The GPU stage blockSelect and the key-block lists of attendBlocks (kernels in ../kernels/block-select.wgsl.ts). */
import { TsaInputError } from '../../harness/core/errors.js';
import type { ResolvedBlockSparse } from '../../harness/core/interface.js';
import { blockListsKernel, blockSelectKernel, blockSelectSharedBytes } from '../kernels/block-select.wgsl.js';
import { wholeWindow, type Window } from '../resources.js';
import { ceilDiv, stateWindow, STORAGE_USAGE, type GpuCtx, type StageCtx } from './common.js';

/** Per-(head, query block) key-block lists on the device (blockLists), for attendBlocks with block size B. */
export interface BlockLists {
  counts: Window;
  lists: Window;
  B: number;
}

/** The bindings a block-mode attend kernel adds (none without lists). */
export function listWindows(blocks: BlockLists | undefined): { counts: Window; lists: Window } | Record<never, never> {
  return blocks ? { counts: blocks.counts, lists: blocks.lists } : {};
}

/** Bytes of a mask of nb blocks per side on the device: rows padded to a multiple of 4 bytes. */
export function maskBytes(H: number, nb: number): number {
  return H * nb * (ceilDiv(nb, 4) * 4);
}

/** A mask [H][nb][nb] with rows padded to a multiple of 4 bytes (the device layout), or back. */
export function padMaskRows(mask: Uint8Array, H: number, nb: number, padded: boolean): Uint8Array {
  const nbp = ceilDiv(nb, 4) * 4;
  const [from, to] = padded ? [nbp, nb] : [nb, nbp];
  const out = new Uint8Array(H * nb * to);
  for (let r = 0; r < H * nb; r++) out.set(mask.subarray(r * from, r * from + nb), r * to);
  return out;
}

/** The device mask of n rows (blockSelect writes it; a layer reads it back). */
export function maskBuffer(ctx: GpuCtx, H: number, n: number, B: number): GPUBuffer {
  return ctx.pool.get('block.mask', maskBytes(H, ceilDiv(n, B)), STORAGE_USAGE);
}

/** floor(T 2^63) as two u32 words (exact for T >= 2^-10: multiplying by a power of two is exact). */
function thresholdWords(T: number): { tLo: number; tHi: number } {
  const t = BigInt(Math.floor(T * 2 ** 63));
  return { tLo: Number(t & 0xffffffffn), tHi: Number(t >> 32n) };
}

/**
 * blockSelect: the mask [H][nb][nbp] (u8 packed in u32, rows padded to nbp = nb rounded up to 4)
 * of the masses [H][nb][nb] of n rows: n = `n`, or the state's L' under `gate` (GATE); buffers
 * sized for the nb of `n`.
 */
export function blockSelect(ctx: StageCtx, H: number, n: number, masses: GPUBuffer, bs: ResolvedBlockSparse, gate: number): GPUBuffer {
  const nb = ceilDiv(n, bs.blockSize);
  let size = 4;
  while (size < nb) size *= 2;
  if (blockSelectSharedBytes(size) > ctx.device.limits.maxComputeWorkgroupStorageSize) {
    throw new TsaInputError(`blockSparse: ${nb} blocks per row are more than the webgpu backend's blockSelect sorts in workgroup memory on this adapter; use a larger blockSize`, 'OPTION');
  }
  const mask = maskBuffer(ctx, H, n, bs.blockSize);
  ctx.rec.dispatch(
    blockSelectKernel({ B: bs.blockSize, size }),
    { n, gate, ...thresholdWords(bs.threshold) },
    { masses: wholeWindow(masses, H * nb * nb * 4), mask: wholeWindow(mask, maskBytes(H, nb)), state: stateWindow(ctx) },
    [nb, H],
  );
  return mask;
}

/** blockLists: the key-block lists of a device mask (layout of blockSelect) of n rows, n or the state's L' under `gate`. */
export function blockLists(ctx: StageCtx, H: number, n: number, mask: GPUBuffer, B: number, gate: number): BlockLists {
  const nb = ceilDiv(n, B);
  const kernel = blockListsKernel(B);
  const counts = wholeWindow(ctx.pool.get('block.counts', H * nb * 4, STORAGE_USAGE), H * nb * 4);
  const lists = wholeWindow(ctx.pool.get('block.lists', ((H * nb * (nb + 1)) / 2) * 4, STORAGE_USAGE), ((H * nb * (nb + 1)) / 2) * 4);
  ctx.rec.dispatch(kernel, { n, gate }, { mask: wholeWindow(mask, maskBytes(H, nb)), counts, lists, state: stateWindow(ctx) }, [ceilDiv(nb, kernel.workgroupSize), H]);
  return { counts, lists, B };
}
