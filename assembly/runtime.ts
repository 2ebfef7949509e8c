/**
 * The host side of the WASM kernels: finds and validates the two builds (plain SIMD and relaxed
 * SIMD), owns the shared memory, and runs parallel kernels on the calling thread plus worker
 * threads that share that memory.
 *
 * Parallel kernels (assembly/kernels/*) are called on every thread at once with the same
 * arguments plus the thread number; the threads take tasks from an atomic counter at COUNTER
 * until none are left. All memory is laid out by the host (the kernels never allocate).
 *
 * What differs between Node and browsers (reading a build, spawning a worker, the core count,
 * whether shared memory is allowed) is a WasmHost: assembly/node.ts and assembly/browser.ts.
 */
import { BackendLostError, BackendUnavailableError } from '../harness/core/errors.js';
import type { WorkerReply, WorkerRequest } from './worker-core.js';

/** 'plain': --enable simd; 'relaxed': --enable simd,relaxed-simd (fused multiply-add). */
export type SimdVariant = 'plain' | 'relaxed';

// The WebAssembly JS API, typed here (TypeScript's lib.dom has it, ES2022 + node types do not).
export interface WasmMemory {
  readonly buffer: SharedArrayBuffer;
  grow(pages: number): number;
}
export interface WasmModule {
  readonly __brand?: 'WebAssembly.Module';
}
interface WasmInstance {
  readonly exports: Record<string, unknown>;
}
interface WasmApi {
  validate(bytes: Uint8Array): boolean;
  compile(bytes: Uint8Array): Promise<WasmModule>;
  Instance: new (module: WasmModule, imports: object) => WasmInstance;
  Memory: new (descriptor: { initial: number; maximum: number; shared: boolean }) => WasmMemory;
}
const WebAssemblyApi = (globalThis as unknown as { WebAssembly?: WasmApi }).WebAssembly;

/** The parallel kernels: (thread, counter, ...args) => void. */
const PARALLEL_KERNELS = [
  'scoreLogits',
  'scoreStats',
  'scoreMean',
  'pool',
  'select',
  'gatherKeys',
  'gatherQueries',
  'gatherRows',
  'attend',
  'scatter',
  'blockScores',
  'blockSelect',
  'attendBlocks',
] as const;
export type ParallelKernel = (typeof PARALLEL_KERNELS)[number];

interface KernelExports extends Record<ParallelKernel, (thread: number, ...args: number[]) => void> {
  /** budget(pooled, heads, P, tau, g, tmp, hist) -> c, single-threaded. */
  budget(pooled: number, heads: number, P: number, tau: number, g: number, tmp: number, hist: number): number;
  BLOCK_KEYS: { value: number };
  BLOCK_QUERIES: { value: number };
}

/** Byte offset of the task counter; offsets below HEADER_BYTES are never handed out (0 means "none"). */
export const COUNTER = 64;
export const HEADER_BYTES = 4096;
const PAGE = 65536;
/** wasm32: 65536 pages of 64 KiB = 4 GiB. */
export const MAX_PAGES = 65536;

/** (module (func (result v128) (v128.const i64x2 0 0))): valid wherever fixed-width SIMD is. */
const SIMD_PROBE = new Uint8Array([
  0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, 0x01, 0x05, 0x01, 0x60, 0x00, 0x01, 0x7b, 0x03, 0x02, 0x01, 0x00,
  0x0a, 0x16, 0x01, 0x14, 0x00, 0xfd, 0x0c, ...new Array<number>(16).fill(0), 0x0b,
]);

export function unavailable(reason: string): BackendUnavailableError {
  return new BackendUnavailableError(reason, [{ backend: 'wasm', reason }]);
}

/** What the runtime needs from its platform (Node: assembly/node.ts, browsers: assembly/browser.ts). */
export interface WasmHost {
  /** The bytes of a build; throws BackendUnavailableError (unavailable()) when it cannot be had. */
  loadBuild(variant: SimdVariant): Promise<Uint8Array>;
  /** A new worker running worker-core.ts's serveKernels; throws BackendUnavailableError when it cannot start. */
  spawnWorker(): HostWorker;
  /** The default thread count. */
  cores(): number;
  /** Why shared WebAssembly memory (SharedArrayBuffer) cannot be used here, or null. */
  sharedMemoryProblem(): string | null;
  /** Appended to "rejects the relaxed build": where this platform has relaxed SIMD. */
  relaxedHint: string;
}

/** A worker as the runtime sees it. */
export interface HostWorker {
  /** Sends a request (keeps a Node process alive until the next reply). */
  post(message: WorkerRequest): void;
  /** Called with each reply, and once when the worker fails or exits. */
  listen(onReply: (reply: WorkerReply) => void, onFailure: (e: Error) => void): void;
  /** Between requests: an idle worker does not keep a Node process alive. */
  idle(): void;
  terminate(): Promise<void>;
}

/**
 * Which build runs here (and why): the forced one, else relaxed SIMD where this runtime validates
 * it, else plain SIMD. Throws BackendUnavailableError saying why neither can run.
 */
export async function chooseVariant(
  host: WasmHost,
  forced?: SimdVariant,
): Promise<{ variant: SimdVariant; bytes: Uint8Array; why: string }> {
  const api = WebAssemblyApi;
  if (!api) throw unavailable('this runtime has no WebAssembly');
  if (!api.validate(SIMD_PROBE)) throw unavailable('this runtime has no WebAssembly SIMD (fixed-width, 128-bit)');
  const shared = host.sharedMemoryProblem();
  if (shared) throw unavailable(shared);
  const order: SimdVariant[] = forced ? [forced] : ['relaxed', 'plain'];
  const rejected: string[] = [];
  const hint = host.relaxedHint;
  for (const variant of order) {
    const bytes = await host.loadBuild(variant);
    if (api.validate(bytes)) {
      const why = forced ? 'forced' : rejected.length ? `this runtime rejects the relaxed build${hint}` : 'relaxed SIMD accepted';
      return { variant, bytes, why };
    }
    rejected.push(variant);
  }
  throw unavailable(`this runtime rejects the ${rejected.join(' and ')} SIMD build${rejected.includes('relaxed') ? hint : ''}`);
}

interface Pending {
  resolve: () => void;
  reject: (e: Error) => void;
}

/** One worker thread with its own instance of the module over the shared memory. */
class KernelThread {
  private readonly worker: HostWorker;
  private pending: Pending | null = null;
  private lost: Error | null = null;
  private readonly ready: Promise<void>;

  constructor(host: WasmHost, module: WasmModule, memory: WasmMemory, readonly thread: number) {
    this.worker = host.spawnWorker();
    this.ready = new Promise<void>((resolve, reject) => {
      this.pending = { resolve, reject };
    });
    this.worker.listen(
      (reply) => {
        const p = this.pending;
        this.pending = null;
        this.worker.idle();
        if (!p) return;
        if (reply.error !== undefined) p.reject(new BackendLostError(`wasm worker ${this.thread} failed: ${reply.error}`));
        else p.resolve();
      },
      (e) => {
        this.lost ??= new BackendLostError(`wasm worker ${this.thread} is gone: ${e.message}`);
        this.pending?.reject(this.lost);
        this.pending = null;
      },
    );
    this.worker.post({ init: { module, memory, thread } });
  }

  started(): Promise<void> {
    return this.ready;
  }

  /** Runs kernel(thread, ...args) on this thread; resolves when it returns. */
  run(kernel: ParallelKernel, args: number[]): Promise<void> {
    if (this.lost) return Promise.reject(this.lost);
    return new Promise<void>((resolve, reject) => {
      this.pending = { resolve, reject };
      this.worker.post({ kernel, args });
    });
  }

  async terminate(): Promise<void> {
    this.lost ??= new BackendLostError('the wasm backend was disposed');
    await this.worker.terminate();
  }
}

/** The module instantiated on the calling thread and on threads - 1 workers over one shared memory. */
export class WasmRuntime {
  private constructor(
    readonly variant: SimdVariant,
    readonly threads: number,
    readonly memory: WasmMemory,
    private readonly kernels: KernelExports,
    private readonly workers: KernelThread[],
  ) {}

  static async create(host: WasmHost, variant: SimdVariant, bytes: Uint8Array, threads: number): Promise<WasmRuntime> {
    const api = WebAssemblyApi!;
    const module = await api.compile(bytes);
    const memory = new api.Memory({ initial: 1, maximum: MAX_PAGES, shared: true });
    const kernels = new api.Instance(module, { env: { memory } }).exports as unknown as KernelExports;
    const missing = [...PARALLEL_KERNELS, 'budget'].filter((k) => typeof kernels[k as keyof KernelExports] !== 'function');
    if (missing.length) throw unavailable(`the ${variant} WASM build lacks ${missing.join(', ')} (out of date): run npm run build`);
    const workers: KernelThread[] = [];
    try {
      for (let t = 1; t < threads; t++) workers.push(new KernelThread(host, module, memory, t));
      await Promise.all(workers.map((w) => w.started()));
    } catch (e) {
      await Promise.all(workers.map((w) => w.terminate()));
      throw e;
    }
    return new WasmRuntime(variant, threads, memory, kernels, workers);
  }

  /** Keys per packed key block and query rows per attention task of this build. */
  get blockKeys(): number {
    return this.kernels.BLOCK_KEYS.value;
  }
  get blockQueries(): number {
    return this.kernels.BLOCK_QUERIES.value;
  }

  /** Grows the memory to at least `bytes` (never shrinks; wasm memory cannot). */
  reserve(bytes: number): void {
    const pages = Math.ceil(bytes / PAGE);
    const have = this.memory.buffer.byteLength / PAGE;
    if (pages > MAX_PAGES) throw new RangeError(`needs ${bytes} bytes, more than wasm32's 4 GiB`);
    if (pages > have) this.memory.grow(pages - have);
  }

  /** f32 view of `length` floats at byte offset `at` (a fresh view: the buffer changes on growth). */
  f32(at: number, length: number): Float32Array {
    return new Float32Array(this.memory.buffer, at, length);
  }
  i32(at: number, length: number): Int32Array {
    return new Int32Array(this.memory.buffer, at, length);
  }

  /** Runs a parallel kernel on every thread (this one included) and waits for all of them. */
  async run(kernel: ParallelKernel, args: number[]): Promise<void> {
    Atomics.store(new Int32Array(this.memory.buffer, COUNTER, 1), 0, 0);
    const others = this.workers.map((w) => w.run(kernel, [COUNTER, ...args]));
    try {
      this.kernels[kernel](0, COUNTER, ...args);
    } finally {
      await Promise.all(others);
    }
  }

  /** The single-threaded budget kernel (see assembly/kernels/budget.ts). */
  budget(pooled: number, heads: number, P: number, tau: number, g: number, tmp: number, hist: number): number {
    return this.kernels.budget(pooled, heads, P, tau, g, tmp, hist);
  }

  async dispose(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.terminate()));
  }
}
