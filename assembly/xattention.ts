/**
 * The wasm backend's XAttention stages (host side): blockScores, blockSelect, attendBlocks on the
 * kernels of assembly/kernels/block-scores.ts, block-select.ts and attend-blocks.ts, called by
 * named arguments through the runtime's call table (calls.ts).
 */
import type { AttentionInput, BlockShape, ResolvedTsaOptions } from '../harness/core/interface.js';
import { blockSparseOf } from '../harness/core/validate.js';
import { align, chunksOf, denseChunks, Layout, threadScratch } from './layout.js';
import type { WasmRuntime } from './runtime.js';

/**
 * Strided rows of heads [h0, h0 + count) of a [heads][n][D] array at `at`, as [count][rows][SDp]:
 * row r is rows rS + S-1, ..., rS of the source when `reversed` (queries), else rS, ..., rS + S-1
 * (keys), concatenated; source rows past n and columns past S D are zero.
 */
function putStrided(rt: WasmRuntime, at: number, src: Float32Array, n: number, D: number, h0: number, count: number, S: number, rows: number, SDp: number, reversed: boolean): void {
  const view = rt.f32(at, count * rows * SDp);
  view.fill(0);
  for (let h = 0; h < count; h++) {
    const from = (h0 + h) * n * D;
    for (let r = 0; r * S < n; r++) {
      for (let u = 0; u < S; u++) {
        const t = reversed ? r * S + S - 1 - u : r * S + u;
        if (t < n) view.set(src.subarray(from + t * D, from + (t + 1) * D), (h * rows + r) * SDp + u * D);
      }
    }
  }
}

/** blockScores: strided rows packed as query tiles and key panels of head dimension S D, then the scoring kernel. */
export async function blockScores(rt: WasmRuntime, chunkBytes: number, input: AttentionInput, o: ResolvedTsaOptions): Promise<Float32Array> {
  const { heads: H, kvHeads: Hkv, headDim: D, seqLen: n } = input;
  const { stride: S, blockSize: B } = blockSparseOf(o);
  const G = H / Hkv;
  const nb = Math.ceil(n / B);
  const R = (nb * B) / S;
  const R4 = align(R, 4);
  const Rp = align(R, rt.blockKeys);
  const SDp = align(S * D, 8);
  const scratchBytes = 16 * rt.blockKeys + 16 * Rp + 8 * nb;
  const result = new Float32Array(H * nb * nb);
  const k = rt.calls(o.signal);
  const bytes = (hc: number, kc: number): number => 4 * (2 * hc * R4 * SDp + 2 * kc * Rp * SDp + hc * nb * nb) + rt.threads * scratchBytes;
  for (const c of chunksOf(H, G, chunkBytes, bytes)) {
    const mem = new Layout();
    const scratch = threadScratch(rt, mem, scratchBytes);
    const qs = mem.alloc(4 * c.heads * R4 * SDp);
    const qt = mem.alloc(4 * c.heads * R4 * SDp);
    const ks = mem.alloc(4 * c.kvHeads * Rp * SDp);
    const kt = mem.alloc(4 * c.kvHeads * Rp * SDp);
    const out = mem.alloc(4 * c.heads * nb * nb);
    rt.reserve(mem.bytes);
    putStrided(rt, qs, input.q, n, D, c.h0, c.heads, S, R4, SDp, true);
    putStrided(rt, ks, input.k, n, D, c.kv0, c.kvHeads, S, Rp, SDp, false);
    const qHead = 4 * R4 * SDp;
    const kHead = 4 * Rp * SDp;
    await k.gatherQueries({ src: qs, srcHeadStride: qHead, idx: 0, heads: c.heads, n: R, rows: R4, Dp: SDp, dst: qt, dstHeadStride: qHead });
    await k.gatherKeys({ src: ks, srcHeadStride: kHead, group: 1, idx: 0, heads: c.kvHeads, n: R, Dp: SDp, dst: kt, dstHeadStride: kHead });
    const scale2 = Math.LOG2E / (Math.sqrt(D) * S);
    await k.blockScores({
      qt, qHeadStride: qHead, kt, ktHeadStride: kHead, group: Math.min(c.heads, G), heads: c.heads,
      Rn: Math.ceil(n / S), per: B / S, nb, SDp, scale2, masses: out, ...scratch,
    });
    result.set(rt.f32(out, c.heads * nb * nb), c.h0 * nb * nb);
  }
  return result;
}

/** blockSelect: the mask rule, one task per (head, query block). */
export async function blockSelect(rt: WasmRuntime, masses: Float32Array, shape: BlockShape, o: ResolvedTsaOptions): Promise<Uint8Array> {
  const { heads: H, blocks: nb } = shape;
  const mem = new Layout();
  const scratch = threadScratch(rt, mem, 8 * nb);
  const src = mem.alloc(4 * H * nb * nb);
  const out = mem.alloc(H * nb * nb);
  rt.reserve(mem.bytes);
  rt.f32(src, H * nb * nb).set(masses);
  await rt.calls(o.signal).blockSelect({ masses: src, heads: H, nb, threshold: blockSparseOf(o).threshold, mask: out, ...scratch });
  return new Uint8Array(rt.memory.buffer, out, H * nb * nb).slice();
}

/**
 * The CSR lists of heads [h0, h0 + count) of a mask [H][nb][nb]: rowStart [count nb + 1], then the
 * key blocks of each (head, query block), the diagonal first.
 */
function blockLists(mask: Uint8Array, nb: number, h0: number, count: number): { rowStart: Int32Array; blocks: Int32Array } {
  const rowStart = new Int32Array(count * nb + 1);
  const blocks: number[] = [];
  for (let h = 0; h < count; h++) {
    for (let i = 0; i < nb; i++) {
      const row = ((h0 + h) * nb + i) * nb;
      blocks.push(i);
      for (let j = 0; j < i; j++) if (mask[row + j]) blocks.push(j);
      rowStart[h * nb + i + 1] = blocks.length;
    }
  }
  return { rowStart, blocks: Int32Array.from(blocks) };
}

/** Query tile height of attendBlocks: the largest multiple of 4 that divides B, at most BQ (a tile lies in one block). */
function tileHeight(B: number, BQ: number): number {
  for (let T = Math.min(B, BQ) & ~3; T > 4; T -= 4) if (B % T === 0) return T;
  return 4;
}

/** attendBlocks: queries, keys and values packed as for dense attention, then the sweep over each tile's block list. */
export async function attendBlocks(rt: WasmRuntime, chunkBytes: number, input: AttentionInput, mask: Uint8Array, o: ResolvedTsaOptions): Promise<Float32Array> {
  const { heads: H, kvHeads: Hkv, headDim: D, seqLen: L } = input;
  const B = blockSparseOf(o).blockSize;
  const nb = Math.ceil(L / B);
  const k = rt.calls(o.signal);
  return denseChunks(
    rt,
    chunkBytes,
    input,
    o.signal,
    (hc) => 4 * (hc * nb * (nb + 1) + 1),
    (c, mem) => {
      const lists = blockLists(mask, nb, c.h0, c.heads);
      return { lists, rowStart: mem.alloc(4 * lists.rowStart.length), blockList: mem.alloc(4 * Math.max(1, lists.blocks.length)) };
    },
    async ({ c, qt, kt, v, head, out, scratch }, { lists, rowStart, blockList }) => {
      rt.i32(rowStart, lists.rowStart.length).set(lists.rowStart);
      rt.i32(blockList, lists.blocks.length).set(lists.blocks);
      await k.attendBlocks({
        q: qt, qHeadStride: head, kt, ktHeadStride: head, v, vHeadStride: head, group: Math.min(c.heads, H / Hkv), heads: c.heads, n: L,
        Dp: align(D, 8), D, scale2: Math.LOG2E / Math.sqrt(D), B, T: tileHeight(B, rt.blockQueries), rowStart, blockList,
        out, outHeadStride: 4 * D, outRowStride: 4 * c.heads * D, ...scratch,
      });
    },
  );
}
