/**
 * The WASM SIMD CPU backend: every stage runs in the AssemblyScript kernels of
 * assembly/kernels/ (score, pool, budget, select, gather, attend, scatter), threaded over a
 * shared WebAssembly.Memory (see runtime.ts).
 *
 * Long sequences are streamed through the module's memory by chunks of heads: a chunk is a run
 * of whole KV groups (or part of one group when a single group does not fit), sized to stay under
 * `chunkBytes` (default 1 GiB), and every chunk of a call reuses the same memory. The memory is laid out by the
 * host per call shape (layout.ts) and grows only when a larger shape arrives. Kernels are called
 * by named arguments (`k.attend({ q, qHeadStride, ... })`, the call table of calls.ts); each launch
 * checks the call's AbortSignal, and so stops a call between chunks and launches (runtime.ts
 * also stops one mid-kernel).
 *
 * Platform-neutral: createWasmBackend is in assembly/node.ts (Node) and assembly/browser.ts.
 */
import { defineBackend, type BackendStages } from '../harness/core/backend.js';
import { TsaInputError } from '../harness/core/errors.js';
import type { AttentionInput, BackendCreateOptions, BlockShape, BlockSparseBackend, Budget, ResolvedTsaOptions, ScoreShape } from '../harness/core/interface.js';
import { calibrated } from '../harness/core/calibrate.js';
import { checkCostOptions, type CostModel } from '../harness/core/cost.js';
import { budgetFromCount } from '../harness/core/rules.js';
import { align, attendScratch, chunksOf, denseChunks, Layout, putHeads, takeColumns } from './layout.js';
import { chooseVariant, threadsOf, WasmRuntime, type SimdVariant, type WasmHost } from './runtime.js';
import * as xattention from './xattention.js';

export type { SimdVariant } from './runtime.js';

export interface WasmBackendOptions extends BackendCreateOptions {
  /** Force a build: 'relaxed' (fused multiply-add) or 'plain' SIMD. Default: relaxed where valid. */
  simd?: SimdVariant;
  /**
   * Memory budget in bytes of one chunk of heads streamed through the module (inputs, packed
   * copies, outputs); default 1 GiB. Smaller values stream fewer heads at a time.
   */
  chunkBytes?: number;
  /** The cost rule's rates (core/cost.ts), pinned; default: fitted on first use (calibrate.ts), once per process and build/thread count. */
  costModel?: CostModel;
}

const DEFAULT_CHUNK_BYTES = 1 << 30;

/** The wasm stages on validated arguments (defineBackend wraps them into the public Backend). */
class WasmStages implements BackendStages {
  private readonly BK: number;

  constructor(
    readonly rt: WasmRuntime,
    private readonly chunkBytes: number,
  ) {
    this.BK = rt.blockKeys;
  }

  /** score: window logits (scoreLogits), their softmax sums (scoreStats), mean probabilities (scoreMean). */
  async scores(input: AttentionInput, o: ResolvedTsaOptions): Promise<Float32Array> {
    const { heads: H, kvHeads: Hkv, headDim: D, seqLen: L } = input;
    const { rt, BK } = this;
    const k = rt.calls(o.signal);
    const G = H / Hkv;
    const W = o.window;
    const P = L - W;
    const W4 = align(W, 4);
    const Dp = align(D, 8);
    const Lp = align(L, BK);
    const result = new Float32Array(H * P);
    const bytes = (hc: number, kc: number): number =>
      4 * (2 * hc * W4 * Dp + kc * L * Dp + kc * Lp * Dp + hc * W4 * Lp + hc * W4 + hc * P);
    for (const c of chunksOf(H, G, this.chunkBytes, bytes)) {
      const mem = new Layout();
      const scratch = attendScratch(this.rt, mem, Dp);
      const q = mem.alloc(4 * c.heads * W4 * Dp);
      const qt = mem.alloc(4 * c.heads * W4 * Dp);
      const keys = mem.alloc(4 * c.kvHeads * L * Dp);
      const kt = mem.alloc(4 * c.kvHeads * Lp * Dp);
      const logits = mem.alloc(4 * c.heads * W4 * Lp);
      const w = mem.alloc(4 * c.heads * W4);
      const out = mem.alloc(4 * c.heads * P);
      rt.reserve(mem.bytes);
      putHeads(rt, q, input.q, L, D, c.h0, c.heads, P, W, W4, Dp);
      putHeads(rt, keys, input.k, L, D, c.kv0, c.kvHeads, 0, L, L, Dp);
      const qHead = 4 * W4 * Dp;
      const ktHead = 4 * Lp * Dp;
      await k.gatherKeys({ src: keys, srcHeadStride: 4 * L * Dp, group: 1, idx: 0, heads: c.kvHeads, n: L, Dp, dst: kt, dstHeadStride: ktHead });
      await k.gatherQueries({ src: q, srcHeadStride: qHead, idx: 0, heads: c.heads, n: W4, rows: W4, Dp, dst: qt, dstHeadStride: qHead });
      const group = Math.min(c.heads, G);
      const scale2 = Math.LOG2E / Math.sqrt(D);
      await k.scoreLogits({ q: qt, qHeadStride: qHead, kt, ktHeadStride: ktHead, group, heads: c.heads, L, W, Dp, scale2, logits, ...scratch });
      await k.scoreStats({ logits, heads: c.heads, L, W, w });
      await k.scoreMean({ e: logits, heads: c.heads, L, W, w, out, ...scratch });
      result.set(rt.f32(out, c.heads * P), c.h0 * P);
    }
    return result;
  }

  /** pool: average pooling along tokens (one task per head). */
  async pool(scores: Float32Array, shape: ScoreShape, o: ResolvedTsaOptions): Promise<Float32Array> {
    const { heads: H, prefixLen: P } = shape;
    const mem = new Layout();
    const src = mem.alloc(4 * H * P);
    const out = mem.alloc(4 * H * P);
    this.rt.reserve(mem.bytes);
    this.rt.f32(src, H * P).set(scores);
    await this.rt.calls(o.signal).pool({ src, heads: H, P, K: o.poolKernel, out });
    return this.rt.f32(out, H * P).slice();
  }

  /** budget: the keep count from the sorted cumulative sum of the head-mean distribution (f64). */
  async budget(pooled: Float32Array, shape: ScoreShape, o: ResolvedTsaOptions): Promise<Budget> {
    const { heads: H, prefixLen: P } = shape;
    const mem = new Layout();
    const src = mem.alloc(4 * H * P);
    const g = mem.alloc(8 * P);
    const tmp = mem.alloc(8 * P);
    const hist = mem.alloc(4 * 256);
    this.rt.reserve(mem.bytes);
    this.rt.f32(src, H * P).set(pooled);
    const c = this.rt.calls(o.signal).budget({ pooled: src, heads: H, P, tau: o.coverage, g, tmp, hist });
    return budgetFromCount(c, P, o);
  }

  /** select: per head the keep best prefix positions (radix select, ties to the lower position) and the window. */
  async select(pooled: Float32Array, shape: ScoreShape, keep: number, o: ResolvedTsaOptions): Promise<Int32Array> {
    const { heads: H, prefixLen: P } = shape;
    const n = keep + o.window;
    const mem = new Layout();
    const scratch = attendScratch(this.rt, mem, 8);
    const src = mem.alloc(4 * H * P);
    const out = mem.alloc(4 * H * n);
    this.rt.reserve(mem.bytes);
    this.rt.f32(src, H * P).set(pooled);
    await this.rt.calls(o.signal).select({ pooled: src, heads: H, P, keep, W: o.window, out, ...scratch });
    return this.rt.i32(out, H * n).slice();
  }

  /** gather (query tiles, key panels, value rows) -> attend on the compact rows -> scatter. */
  async attendSelected(input: AttentionInput, indices: Int32Array, n: number, o: ResolvedTsaOptions): Promise<Float32Array> {
    const { heads: H, kvHeads: Hkv, headDim: D, seqLen: L } = input;
    const { rt, BK } = this;
    const k = rt.calls(o.signal);
    const G = H / Hkv;
    const Dp = align(D, 8);
    const np = align(n, BK);
    const output = new Float32Array(L * H * D);
    const bytes = (hc: number, kc: number): number =>
      4 * (hc * L * Dp + 2 * kc * L * Dp + hc * n + 3 * hc * np * Dp + hc * n * D + L * hc * D);
    for (const c of chunksOf(H, G, this.chunkBytes, bytes)) {
      const mem = new Layout();
      const scratch = attendScratch(this.rt, mem, Dp);
      const q = mem.alloc(4 * c.heads * L * Dp);
      const keys = mem.alloc(4 * c.kvHeads * L * Dp);
      const v = mem.alloc(4 * c.kvHeads * L * Dp);
      const idx = mem.alloc(4 * c.heads * n);
      const qc = mem.alloc(4 * c.heads * np * Dp);
      const ktc = mem.alloc(4 * c.heads * np * Dp);
      const vc = mem.alloc(4 * c.heads * np * Dp);
      const oc = mem.alloc(4 * c.heads * n * D);
      const out = mem.alloc(4 * L * c.heads * D);
      rt.reserve(mem.bytes);
      putHeads(rt, q, input.q, L, D, c.h0, c.heads, 0, L, L, Dp);
      putHeads(rt, keys, input.k, L, D, c.kv0, c.kvHeads, 0, L, L, Dp);
      putHeads(rt, v, input.v, L, D, c.kv0, c.kvHeads, 0, L, L, Dp);
      rt.i32(idx, c.heads * n).set(indices.subarray(c.h0 * n, (c.h0 + c.heads) * n));
      const group = Math.min(c.heads, G);
      const head = 4 * L * Dp;
      const compact = 4 * np * Dp;
      await k.gatherQueries({ src: q, srcHeadStride: head, idx, heads: c.heads, n, rows: np, Dp, dst: qc, dstHeadStride: compact });
      await k.gatherRows({ src: v, srcHeadStride: head, group, idx, heads: c.heads, n, rows: np, Dp, dst: vc, dstHeadStride: compact });
      await k.gatherKeys({ src: keys, srcHeadStride: head, group, idx, heads: c.heads, n, Dp, dst: ktc, dstHeadStride: compact });
      const scale2 = Math.LOG2E / Math.sqrt(D);
      await k.attend({
        q: qc, qHeadStride: compact, kt: ktc, ktHeadStride: compact, v: vc, vHeadStride: compact, group: 1, heads: c.heads, n, Dp, D, scale2,
        out: oc, outHeadStride: 4 * n * D, outRowStride: 4 * D, ...scratch,
      });
      await k.scatter({ oc, idx, heads: c.heads, n, L, D, out, outHeadStride: 4 * D, outRowStride: 4 * c.heads * D });
      takeColumns(rt, out, output, L, H, D, c);
    }
    return output;
  }

  /** Dense causal attention: queries and keys repacked by gather, attend writes the output slab directly. */
  async dense(input: AttentionInput, o: ResolvedTsaOptions): Promise<Float32Array> {
    const { heads: H, kvHeads: Hkv, headDim: D, seqLen: L } = input;
    const k = this.rt.calls(o.signal);
    return denseChunks(this.rt, this.chunkBytes, input, o.signal, () => 0, () => null, async ({ c, qt, kt, v, head, out, scratch }) => {
      await k.attend({
        q: qt, qHeadStride: head, kt, ktHeadStride: head, v, vHeadStride: head, group: Math.min(c.heads, H / Hkv), heads: c.heads, n: L,
        Dp: align(D, 8), D, scale2: Math.LOG2E / Math.sqrt(D), out, outHeadStride: 4 * D, outRowStride: 4 * c.heads * D, ...scratch,
      });
    });
  }

  /** XAttention's block stages (assembly/xattention.ts). */
  blockScores(input: AttentionInput, o: ResolvedTsaOptions): Promise<Float32Array> {
    return xattention.blockScores(this.rt, this.chunkBytes, input, o);
  }

  blockSelect(masses: Float32Array, shape: BlockShape, o: ResolvedTsaOptions): Promise<Uint8Array> {
    return xattention.blockSelect(this.rt, masses, shape, o);
  }

  attendBlocks(input: AttentionInput, mask: Uint8Array, o: ResolvedTsaOptions): Promise<Float32Array> {
    return xattention.attendBlocks(this.rt, this.chunkBytes, input, mask, o);
  }
}

/**
 * Creates the WASM SIMD backend: the relaxed-SIMD build where this runtime validates it (or the
 * forced `simd` build), on `threads` threads (default: the number of cores; 1 runs without workers).
 * Throws BackendUnavailableError saying why it cannot run here. `host` is the platform: Node's
 * (assembly/node.ts) or the browser's (assembly/browser.ts), whose createWasmBackend call this.
 */
export async function createWasmBackendOn(host: WasmHost, options: WasmBackendOptions = {}): Promise<BlockSparseBackend> {
  const threads = threadsOf(host, options.threads);
  if (options.simd !== undefined && options.simd !== 'plain' && options.simd !== 'relaxed') {
    throw new TsaInputError(`option simd must be 'plain' or 'relaxed', got ${String(options.simd)}`, 'OPTION');
  }
  const chunkBytes = options.chunkBytes ?? DEFAULT_CHUNK_BYTES;
  if (!(chunkBytes > 0)) {
    throw new TsaInputError(`option chunkBytes must be a positive number of bytes, got ${String(options.chunkBytes)}`, 'OPTION');
  }
  checkCostOptions(options);
  const pinned = options.costModel;
  const { variant, bytes, why } = await chooseVariant(host, options.simd);
  const rt = await WasmRuntime.create(host, variant, bytes, threads);
  const stages = new WasmStages(rt, chunkBytes);
  return defineBackend({
    name: 'wasm',
    description: `wasm ${variant === 'relaxed' ? 'relaxed-simd' : 'simd'}, ${threads} thread${threads === 1 ? '' : 's'}; ${why}`,
    threads: rt.threads,
    stages,
    run: (call) => rt.exclusive('wasm backend', call),
    costRule: {
      enabled: options.costRule ?? true,
      model: (ran) => (pinned ? Promise.resolve(pinned) : calibrated(`wasm ${variant} ${threads}`, ran)),
    },
    dispose: () => rt.dispose(),
  });
}
