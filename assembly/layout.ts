/**
 * How the wasm host lays a call out in the module's memory: a bump allocator per call (Layout),
 * the split of heads into chunks that fit the memory budget (chunksOf), and the copies of input
 * heads in and output columns out (putHeads, takeColumns).
 */
import { TsaInputError } from '../harness/core/errors.js';
import type { AttentionInput } from '../harness/core/interface.js';
import { HEADER_BYTES, MAX_PAGES, type WasmRuntime } from './runtime.js';

export const align = (x: number, to: number): number => Math.ceil(x / to) * to;

/** Bump allocator over the module memory for one call; offsets are 64-byte aligned. */
export class Layout {
  bytes = HEADER_BYTES;
  alloc(bytes: number): number {
    const at = this.bytes;
    this.bytes = align(at + bytes, 64);
    return at;
  }
}

/** Heads [h0, h0 + heads) and the KV heads [kv0, kv0 + kvHeads) they read. */
export interface Chunk {
  h0: number;
  heads: number;
  kv0: number;
  kvHeads: number;
}

/**
 * Splits H query heads (GQA groups of G) into chunks whose memory, bytesFor(heads, kvHeads), stays
 * under `budget`: as many whole groups as fit, else the largest divisor of G that fits.
 */
export function chunksOf(H: number, G: number, budget: number, bytesFor: (heads: number, kvHeads: number) => number): Chunk[] {
  const sizes: number[] = [];
  for (let k = H / G; k >= 1; k--) sizes.push(k * G);
  for (let d = G - 1; d >= 1; d--) if (G % d === 0) sizes.push(d);
  const kvOf = (hc: number): number => Math.ceil(hc / G);
  const size = sizes.find((hc) => bytesFor(hc, kvOf(hc)) <= budget) ?? 1;
  const need = bytesFor(size, kvOf(size));
  if (need > MAX_PAGES * 65536 - (64 << 20)) {
    throw new TsaInputError(
      `one head needs ${(need / 2 ** 30).toFixed(2)} GiB of wasm memory, more than wasm32's 4 GiB: sequence too long for the wasm backend`,
      'SHAPE',
    );
  }
  const chunks: Chunk[] = [];
  for (let h0 = 0; h0 < H; h0 += size) {
    const heads = Math.min(size, H - h0);
    const kv0 = Math.floor(h0 / G);
    chunks.push({ h0, heads, kv0, kvHeads: Math.floor((h0 + heads - 1) / G) + 1 - kv0 });
  }
  return chunks;
}

/**
 * Copies rows [r0, r0 + count) of heads [h0, h0 + n) of a [heads][L][D] array into memory at `at`
 * as [n][rows][Dp]: columns past D and rows past count are zero.
 */
export function putHeads(
  rt: WasmRuntime,
  at: number,
  src: Float32Array,
  L: number,
  D: number,
  h0: number,
  n: number,
  r0: number,
  count: number,
  rows: number,
  Dp: number,
): void {
  const view = rt.f32(at, n * rows * Dp);
  for (let h = 0; h < n; h++) {
    const base = h * rows * Dp;
    const from = ((h0 + h) * L + r0) * D;
    if (D === Dp) {
      view.set(src.subarray(from, from + count * D), base);
      view.fill(0, base + count * Dp, base + rows * Dp);
    } else {
      view.fill(0, base, base + rows * Dp);
      for (let r = 0; r < count; r++) view.set(src.subarray(from + r * D, from + (r + 1) * D), base + r * Dp);
    }
  }
}

/** Copies a chunk's output slab [L][heads * D] at `at` into columns h0 * D.. of out [L][H * D]. */
export function takeColumns(rt: WasmRuntime, at: number, out: Float32Array, L: number, H: number, D: number, c: Chunk): void {
  const width = c.heads * D;
  const slab = rt.f32(at, L * width);
  if (c.heads === H) {
    out.set(slab);
    return;
  }
  for (let t = 0; t < L; t++) out.set(slab.subarray(t * width, (t + 1) * width), t * H * D + c.h0 * D);
}

/** `bytes` of scratch for each thread (at least 1 KiB, 64-byte aligned). */
export function threadScratch(rt: WasmRuntime, mem: Layout, bytes: number): { scratch: number; scratchStride: number } {
  const scratchStride = align(Math.max(1024, bytes), 64);
  return { scratch: mem.alloc(scratchStride * rt.threads), scratchStride };
}

/** Scratch of the attention-like kernels: S tile [4][BK], m, l, alpha [BQ], O [BQ][Dp] (attend; the others use less). */
export function attendScratch(rt: WasmRuntime, mem: Layout, Dp: number): { scratch: number; scratchStride: number } {
  return threadScratch(rt, mem, 16 * rt.blockKeys + 12 * rt.blockQueries + 4 * rt.blockQueries * Dp);
}

/** One chunk of heads packed for the attend kernels by denseChunks: addresses in module memory. */
export interface PackedChunk {
  c: Chunk;
  /** Q [heads][Lp][Dp], K^T panels and V [kvHeads][Lp][Dp]; each head `head` bytes apart. */
  qt: number;
  kt: number;
  v: number;
  head: number;
  /** The output slab [L][heads * D]. */
  out: number;
  scratch: { scratch: number; scratchStride: number };
}

/**
 * The chunk loop of causal attention over all L rows (dense, and XAttention's attendBlocks):
 * per chunk of heads, Q and K are repacked by gather (Lp = L rounded up to the key block, Dp =
 * D rounded up to 8), V copied; `extra` allocates the caller's own arrays of the chunk
 * (`extraBytes(heads)` of them) before the memory is reserved, and `attend` runs the kernel,
 * whose output slab is taken into the [L][H*D] result.
 */
export async function denseChunks<T>(
  rt: WasmRuntime,
  chunkBytes: number,
  input: AttentionInput,
  signal: AbortSignal | undefined,
  extraBytes: (heads: number) => number,
  extra: (c: Chunk, mem: Layout) => T,
  attend: (p: PackedChunk, extra: T) => Promise<void>,
): Promise<Float32Array> {
  const { heads: H, kvHeads: Hkv, headDim: D, seqLen: L } = input;
  const k = rt.calls(signal);
  const Dp = align(D, 8);
  const Lp = align(L, rt.blockKeys);
  const output = new Float32Array(L * H * D);
  const bytes = (hc: number, kc: number): number => 4 * (hc * L * Dp + hc * Lp * Dp + 3 * kc * Lp * Dp + L * hc * D) + extraBytes(hc);
  for (const c of chunksOf(H, H / Hkv, chunkBytes, bytes)) {
    const mem = new Layout();
    const scratch = attendScratch(rt, mem, Dp);
    const q = mem.alloc(4 * c.heads * L * Dp);
    const qt = mem.alloc(4 * c.heads * Lp * Dp);
    const keys = mem.alloc(4 * c.kvHeads * L * Dp);
    const kt = mem.alloc(4 * c.kvHeads * Lp * Dp);
    const v = mem.alloc(4 * c.kvHeads * Lp * Dp);
    const out = mem.alloc(4 * L * c.heads * D);
    const mine = extra(c, mem);
    rt.reserve(mem.bytes);
    putHeads(rt, q, input.q, L, D, c.h0, c.heads, 0, L, L, Dp);
    putHeads(rt, keys, input.k, L, D, c.kv0, c.kvHeads, 0, L, L, Dp);
    putHeads(rt, v, input.v, L, D, c.kv0, c.kvHeads, 0, L, Lp, Dp);
    const head = 4 * Lp * Dp;
    await k.gatherQueries({ src: q, srcHeadStride: 4 * L * Dp, idx: 0, heads: c.heads, n: L, rows: Lp, Dp, dst: qt, dstHeadStride: head });
    await k.gatherKeys({ src: keys, srcHeadStride: 4 * L * Dp, group: 1, idx: 0, heads: c.kvHeads, n: L, Dp, dst: kt, dstHeadStride: head });
    await attend({ c, qt, kt, v, head, out, scratch }, mine);
    takeColumns(rt, out, output, L, H, D, c);
  }
  return output;
}
