/**
 * The WASM SIMD CPU backend: every stage runs in the AssemblyScript kernels of
 * assembly/kernels/ (score, pool, budget, select, gather, attend, scatter), threaded over a
 * shared WebAssembly.Memory (see runtime.ts).
 *
 * Long sequences are streamed through the module's memory by chunks of heads: a chunk is a run
 * of whole KV groups (or part of one group when a single group does not fit), sized to stay under
 * `chunkBytes` (default 1 GiB), and every chunk of a call reuses the same memory. The memory is laid out by the
 * host per call shape and grows only when a larger shape arrives.
 *
 * Platform-neutral: createWasmBackend is in assembly/node.ts (Node) and assembly/browser.ts.
 */
import { defineBackend, type BackendStages } from '../harness/core/backend.js';
import { BackendLostError, TsaInputError } from '../harness/core/errors.js';
import type { AttentionInput, Backend, BackendCreateOptions, Budget, ResolvedTsaOptions, ScoreShape } from '../harness/core/interface.js';
import { calibrated } from '../harness/core/calibrate.js';
import { checkCostOptions, type CostModel } from '../harness/core/cost.js';
import { budgetFromCount } from '../harness/core/rules.js';
import { chooseVariant, HEADER_BYTES, MAX_PAGES, WasmRuntime, type SimdVariant, type WasmHost } from './runtime.js';

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

const align = (x: number, to: number): number => Math.ceil(x / to) * to;

/** Bump allocator over the module memory for one call; offsets are 64-byte aligned. */
class Layout {
  bytes = HEADER_BYTES;
  alloc(bytes: number): number {
    const at = this.bytes;
    this.bytes = align(at + bytes, 64);
    return at;
  }
}

/** Heads [h0, h0 + heads) and the KV heads [kv0, kv0 + kvHeads) they read. */
interface Chunk {
  h0: number;
  heads: number;
  kv0: number;
  kvHeads: number;
}

/**
 * Splits H query heads (GQA groups of G) into chunks whose memory, bytesFor(heads, kvHeads), stays
 * under `budget`: as many whole groups as fit, else the largest divisor of G that fits.
 */
function chunksOf(H: number, G: number, budget: number, bytesFor: (heads: number, kvHeads: number) => number): Chunk[] {
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
function putHeads(
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
function takeColumns(rt: WasmRuntime, at: number, out: Float32Array, L: number, H: number, D: number, c: Chunk): void {
  const width = c.heads * D;
  const slab = rt.f32(at, L * width);
  if (c.heads === H) {
    out.set(slab);
    return;
  }
  for (let t = 0; t < L; t++) out.set(slab.subarray(t * width, (t + 1) * width), t * H * D + c.h0 * D);
}

/** The wasm stages on validated arguments (defineBackend wraps them into the public Backend). */
class WasmStages implements BackendStages {
  private queue: Promise<unknown> = Promise.resolve();
  private disposed = false;
  private readonly BK: number;
  private readonly BQ: number;

  constructor(
    readonly rt: WasmRuntime,
    private readonly chunkBytes: number,
  ) {
    this.BK = rt.blockKeys;
    this.BQ = rt.blockQueries;
  }

  /** Runs calls one at a time (they share the module memory). */
  exclusive<T>(fn: () => Promise<T>): Promise<T> {
    if (this.disposed) return Promise.reject(new BackendLostError('the wasm backend was disposed'));
    const next = this.queue.then(fn);
    this.queue = next.catch(() => {});
    return next;
  }

  /** Per-thread scratch: S tile [4][BK], m, l, alpha [BQ], O [BQ][Dp] (attend; the others use less). */
  private scratch(mem: Layout, Dp: number): [number, number] {
    const stride = align(Math.max(1024, 16 * this.BK + 12 * this.BQ + 4 * this.BQ * Dp), 64);
    return [mem.alloc(stride * this.rt.threads), stride];
  }


  /** score: window logits (scoreLogits), their softmax sums (scoreStats), mean probabilities (scoreMean). */
  async scores(input: AttentionInput, o: ResolvedTsaOptions): Promise<Float32Array> {
    const { heads: H, kvHeads: Hkv, headDim: D, seqLen: L } = input;
    const { rt, BK } = this;
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
      const [scratch, stride] = this.scratch(mem, Dp);
      const q = mem.alloc(4 * c.heads * W4 * Dp);
      const qt = mem.alloc(4 * c.heads * W4 * Dp);
      const k = mem.alloc(4 * c.kvHeads * L * Dp);
      const kt = mem.alloc(4 * c.kvHeads * Lp * Dp);
      const logits = mem.alloc(4 * c.heads * W4 * Lp);
      const w = mem.alloc(4 * c.heads * W4);
      const out = mem.alloc(4 * c.heads * P);
      rt.reserve(mem.bytes);
      putHeads(rt, q, input.q, L, D, c.h0, c.heads, P, W, W4, Dp);
      putHeads(rt, k, input.k, L, D, c.kv0, c.kvHeads, 0, L, L, Dp);
      const qHead = 4 * W4 * Dp;
      await rt.run('gatherKeys', [k, 4 * L * Dp, 1, 0, c.kvHeads, L, Dp, kt, 4 * Lp * Dp]);
      await rt.run('gatherQueries', [q, qHead, 0, c.heads, W4, W4, Dp, qt, qHead]);
      const group = Math.min(c.heads, G);
      const scale2 = Math.LOG2E / Math.sqrt(D);
      await rt.run('scoreLogits', [qt, qHead, kt, 4 * Lp * Dp, group, c.heads, L, W, Dp, scale2, logits, scratch, stride]);
      await rt.run('scoreStats', [logits, c.heads, L, W, w]);
      await rt.run('scoreMean', [logits, c.heads, L, W, w, out, scratch, stride]);
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
    await this.rt.run('pool', [src, H, P, o.poolKernel, out]);
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
    return budgetFromCount(this.rt.budget(src, H, P, o.coverage, g, tmp, hist), P, o);
  }


  /** select: per head the keep best prefix positions (radix select, ties to the lower position) and the window. */
  async select(pooled: Float32Array, shape: ScoreShape, keep: number, o: ResolvedTsaOptions): Promise<Int32Array> {
    const { heads: H, prefixLen: P } = shape;
    const n = keep + o.window;
    const mem = new Layout();
    const [scratch, stride] = this.scratch(mem, 8);
    const src = mem.alloc(4 * H * P);
    const out = mem.alloc(4 * H * n);
    this.rt.reserve(mem.bytes);
    this.rt.f32(src, H * P).set(pooled);
    await this.rt.run('select', [src, H, P, keep, o.window, out, scratch, stride]);
    return this.rt.i32(out, H * n).slice();
  }


  /** gather (query tiles, key panels, value rows) -> attend on the compact rows -> scatter. */
  async attendSelected(input: AttentionInput, indices: Int32Array, n: number): Promise<Float32Array> {
    const { heads: H, kvHeads: Hkv, headDim: D, seqLen: L } = input;
    const { rt, BK } = this;
    const G = H / Hkv;
    const Dp = align(D, 8);
    const np = align(n, BK);
    const output = new Float32Array(L * H * D);
    const bytes = (hc: number, kc: number): number =>
      4 * (hc * L * Dp + 2 * kc * L * Dp + hc * n + 3 * hc * np * Dp + hc * n * D + L * hc * D);
    for (const c of chunksOf(H, G, this.chunkBytes, bytes)) {
      const mem = new Layout();
      const [scratch, stride] = this.scratch(mem, Dp);
      const q = mem.alloc(4 * c.heads * L * Dp);
      const k = mem.alloc(4 * c.kvHeads * L * Dp);
      const v = mem.alloc(4 * c.kvHeads * L * Dp);
      const idx = mem.alloc(4 * c.heads * n);
      const qc = mem.alloc(4 * c.heads * np * Dp);
      const ktc = mem.alloc(4 * c.heads * np * Dp);
      const vc = mem.alloc(4 * c.heads * np * Dp);
      const oc = mem.alloc(4 * c.heads * n * D);
      const out = mem.alloc(4 * L * c.heads * D);
      rt.reserve(mem.bytes);
      putHeads(rt, q, input.q, L, D, c.h0, c.heads, 0, L, L, Dp);
      putHeads(rt, k, input.k, L, D, c.kv0, c.kvHeads, 0, L, L, Dp);
      putHeads(rt, v, input.v, L, D, c.kv0, c.kvHeads, 0, L, L, Dp);
      rt.i32(idx, c.heads * n).set(indices.subarray(c.h0 * n, (c.h0 + c.heads) * n));
      const group = Math.min(c.heads, G);
      const head = 4 * L * Dp;
      const compact = 4 * np * Dp;
      await rt.run('gatherQueries', [q, head, idx, c.heads, n, np, Dp, qc, compact]);
      await rt.run('gatherRows', [v, head, group, idx, c.heads, n, np, Dp, vc, compact]);
      await rt.run('gatherKeys', [k, head, group, idx, c.heads, n, Dp, ktc, compact]);
      const scale2 = Math.LOG2E / Math.sqrt(D);
      await rt.run('attend', [qc, compact, ktc, compact, vc, compact, 1, c.heads, n, Dp, D, scale2, oc, 4 * n * D, 4 * D, scratch, stride]);
      await rt.run('scatter', [oc, idx, c.heads, n, L, D, out, 4 * D, 4 * c.heads * D]);
      takeColumns(rt, out, output, L, H, D, c);
    }
    return output;
  }


  /** Dense causal attention: queries and keys repacked by gather, attend writes the output slab directly. */
  async dense(input: AttentionInput): Promise<Float32Array> {
    const { heads: H, kvHeads: Hkv, headDim: D, seqLen: L } = input;
    const { rt, BK } = this;
    const G = H / Hkv;
    const Dp = align(D, 8);
    const Lp = align(L, BK);
    const output = new Float32Array(L * H * D);
    const bytes = (hc: number, kc: number): number => 4 * (hc * L * Dp + hc * Lp * Dp + 3 * kc * Lp * Dp + L * hc * D);
    for (const c of chunksOf(H, G, this.chunkBytes, bytes)) {
      const mem = new Layout();
      const [scratch, stride] = this.scratch(mem, Dp);
      const q = mem.alloc(4 * c.heads * L * Dp);
      const qt = mem.alloc(4 * c.heads * Lp * Dp);
      const k = mem.alloc(4 * c.kvHeads * L * Dp);
      const kt = mem.alloc(4 * c.kvHeads * Lp * Dp);
      const v = mem.alloc(4 * c.kvHeads * Lp * Dp);
      const out = mem.alloc(4 * L * c.heads * D);
      rt.reserve(mem.bytes);
      putHeads(rt, q, input.q, L, D, c.h0, c.heads, 0, L, L, Dp);
      putHeads(rt, k, input.k, L, D, c.kv0, c.kvHeads, 0, L, L, Dp);
      putHeads(rt, v, input.v, L, D, c.kv0, c.kvHeads, 0, L, Lp, Dp);
      const head = 4 * Lp * Dp;
      await rt.run('gatherQueries', [q, 4 * L * Dp, 0, c.heads, L, Lp, Dp, qt, head]);
      await rt.run('gatherKeys', [k, 4 * L * Dp, 1, 0, c.kvHeads, L, Dp, kt, head]);
      const group = Math.min(c.heads, G);
      const scale2 = Math.LOG2E / Math.sqrt(D);
      await rt.run('attend', [qt, head, kt, head, v, head, group, c.heads, L, Dp, D, scale2, out, 4 * D, 4 * c.heads * D, scratch, stride]);
      takeColumns(rt, out, output, L, H, D, c);
    }
    return output;
  }


  async dispose(): Promise<void> {
    if (this.disposed) return;
    this.disposed = true;
    await this.queue;
    await this.rt.dispose();
  }
}

/**
 * Creates the WASM SIMD backend: the relaxed-SIMD build where this runtime validates it (or the
 * forced `simd` build), on `threads` threads (default: the number of cores; 1 runs without workers).
 * Throws BackendUnavailableError saying why it cannot run here. `host` is the platform: Node's
 * (assembly/node.ts) or the browser's (assembly/browser.ts), whose createWasmBackend call this.
 */
export async function createWasmBackendOn(host: WasmHost, options: WasmBackendOptions = {}): Promise<Backend> {
  const threads = options.threads ?? host.cores();
  if (!Number.isInteger(threads) || threads < 1 || threads > 256) {
    throw new TsaInputError(`option threads must be an integer in [1, 256], got ${String(options.threads)}`, 'OPTION');
  }
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
    run: (call) => stages.exclusive(call),
    costRule: {
      enabled: options.costRule ?? true,
      model: (ran) => (pinned ? Promise.resolve(pinned) : calibrated(`wasm ${variant} ${threads}`, ran)),
    },
    dispose: () => stages.dispose(),
  });
}
