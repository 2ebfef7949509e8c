/**
 * The host side of the WASM kernels: finds and validates the two builds (plain SIMD and relaxed
 * SIMD), owns the shared memory, and runs parallel kernels on the calling thread plus worker
 * threads that share that memory.
 *
 * Parallel kernels (assembly/kernels/*) are called on every thread at once with the same
 * arguments plus the thread number; the threads take tasks from an atomic counter at COUNTER
 * until none are left. All memory is laid out by the host (the kernels never allocate).
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { BackendLostError, BackendUnavailableError } from '../harness/errors.js';

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

const here = fileURLToPath(import.meta.url);
// Imported from TypeScript sources (vitest) or from dist/assembly/*.js (CLI, bench, package users).
const fromSources = here.endsWith('.ts');
const packageRoot = resolve(dirname(here), fromSources ? '..' : '../..');

export const WASM_FILES: Record<SimdVariant, string> = {
  plain: join(packageRoot, 'build', 'tsa-simd.wasm'),
  relaxed: join(packageRoot, 'build', 'tsa-relaxed-simd.wasm'),
};
/** The worker is plain JS compiled by tsc; from sources it is taken from dist/. */
const WORKER_FILE = fromSources ? join(packageRoot, 'dist', 'assembly', 'worker.js') : join(dirname(here), 'worker.js');

/** (module (func (result v128) (v128.const i64x2 0 0))): valid wherever fixed-width SIMD is. */
const SIMD_PROBE = new Uint8Array([
  0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, 0x01, 0x05, 0x01, 0x60, 0x00, 0x01, 0x7b, 0x03, 0x02, 0x01, 0x00,
  0x0a, 0x16, 0x01, 0x14, 0x00, 0xfd, 0x0c, ...new Array<number>(16).fill(0), 0x0b,
]);

function unavailable(reason: string): BackendUnavailableError {
  return new BackendUnavailableError(reason, [{ backend: 'wasm', reason }]);
}

function readBuild(variant: SimdVariant): Uint8Array {
  const file = WASM_FILES[variant];
  if (!existsSync(file)) throw unavailable(`the ${variant} WASM build ${file} is missing: run npm run build`);
  return new Uint8Array(readFileSync(file));
}

/**
 * Which build runs here (and why): the forced one, else relaxed SIMD where this runtime validates
 * it, else plain SIMD. Throws BackendUnavailableError saying why neither can run.
 */
export function chooseVariant(forced?: SimdVariant): { variant: SimdVariant; bytes: Uint8Array; why: string } {
  const api = WebAssemblyApi;
  if (!api) throw unavailable('this runtime has no WebAssembly');
  if (!api.validate(SIMD_PROBE)) throw unavailable('this runtime has no WebAssembly SIMD (fixed-width, 128-bit)');
  if (typeof SharedArrayBuffer !== 'function') {
    throw unavailable('SharedArrayBuffer is unavailable (threads need it; in browsers, serve with cross-origin isolation)');
  }
  const order: SimdVariant[] = forced ? [forced] : ['relaxed', 'plain'];
  const rejected: string[] = [];
  const hint = ' (relaxed SIMD needs Node >= 22, or node --experimental-wasm-relaxed-simd on Node 20)';
  for (const variant of order) {
    const bytes = readBuild(variant);
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
  readonly worker: Worker;
  private pending: Pending | null = null;
  private lost: Error | null = null;
  private readonly ready: Promise<void>;

  constructor(module: WasmModule, memory: WasmMemory, readonly thread: number) {
    if (!existsSync(WORKER_FILE)) throw unavailable(`the worker script ${WORKER_FILE} is missing: run npm run build`);
    this.worker = new Worker(WORKER_FILE, { workerData: { module, memory, thread } });
    this.ready = new Promise<void>((resolve, reject) => {
      this.pending = { resolve, reject };
    });
    this.worker.on('message', (msg: { error?: string }) => {
      const p = this.pending;
      this.pending = null;
      this.worker.unref();
      if (!p) return;
      if (msg.error !== undefined) p.reject(new BackendLostError(`wasm worker ${this.thread} failed: ${msg.error}`));
      else p.resolve();
    });
    const fail = (e: Error): void => {
      this.lost ??= new BackendLostError(`wasm worker ${this.thread} is gone: ${e.message}`);
      this.pending?.reject(this.lost);
      this.pending = null;
    };
    this.worker.on('error', fail);
    this.worker.on('exit', (code) => fail(new Error(`exited with code ${code}`)));
  }

  started(): Promise<void> {
    return this.ready;
  }

  /** Runs kernel(thread, ...args) on this thread; resolves when it returns. */
  run(kernel: ParallelKernel, args: number[]): Promise<void> {
    if (this.lost) return Promise.reject(this.lost);
    return new Promise<void>((resolve, reject) => {
      this.pending = { resolve, reject };
      this.worker.ref(); // keep the process alive while a kernel runs
      this.worker.postMessage({ kernel, args });
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

  static async create(variant: SimdVariant, bytes: Uint8Array, threads: number): Promise<WasmRuntime> {
    const api = WebAssemblyApi!;
    const module = await api.compile(bytes);
    const memory = new api.Memory({ initial: 1, maximum: MAX_PAGES, shared: true });
    const kernels = new api.Instance(module, { env: { memory } }).exports as unknown as KernelExports;
    const missing = [...PARALLEL_KERNELS, 'budget'].filter((k) => typeof kernels[k as keyof KernelExports] !== 'function');
    if (missing.length) throw unavailable(`the ${variant} WASM build lacks ${missing.join(', ')} (out of date): run npm run build`);
    const workers: KernelThread[] = [];
    try {
      for (let t = 1; t < threads; t++) workers.push(new KernelThread(module, memory, t));
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
