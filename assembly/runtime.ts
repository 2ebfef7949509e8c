/**
 * The host side of the WASM kernels: finds and validates the two builds (plain SIMD and relaxed
 * SIMD), owns the shared memory, and runs parallel kernels on the calling thread plus worker
 * threads that share that memory.
 *
 * Parallel kernels (assembly/kernels/*) are called on every thread at once with the same
 * arguments plus the thread number; the threads take tasks from an atomic counter at COUNTER
 * until none are left. All memory is laid out by the host (the kernels never allocate). Kernels
 * are called by named arguments through the call table of calls.ts, checked against the build
 * once at startup.
 *
 * With 2 or more threads every parallel kernel runs on `threads` workers and the calling thread
 * only waits, so it can react to an AbortSignal mid-kernel: it stops the task counter, and every
 * worker returns after its current task. With 1 thread kernels run on the calling thread
 * (no workers); a call then stops between kernel launches.
 *
 * What differs between Node and browsers (reading a build, spawning a worker, the core count,
 * whether shared memory is allowed) is a WasmHost: assembly/node.ts and assembly/browser.ts.
 */
import { BackendLostError, BackendUnavailableError, throwIfAborted, TsaInputError } from '../harness/core/errors.js';
import {
  callTableMismatches,
  PARALLEL_KERNELS,
  PARALLEL_PARAMS,
  positional,
  SERIAL_PARAMS,
  type KernelCalls,
  type ParallelKernel,
  type SerialKernel,
} from './calls.js';
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

type KernelExports = Record<ParallelKernel, (thread: number, counter: number, ...args: number[]) => void> &
  Record<SerialKernel, (...args: number[]) => number> & {
    BLOCK_KEYS: { value: number };
    BLOCK_QUERIES: { value: number };
  };

/** Byte offset of the task counter; offsets below HEADER_BYTES are never handed out (0 means "none"). */
export const COUNTER = 64;
/**
 * Stored into the counter to stop a kernel early (an aborted call): every thread's next task
 * number is then past any kernel's task count (all are far below 2^30), so each thread returns
 * after the task it is on.
 */
const STOP_TASKS = 1 << 30;
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
    const exports = new api.Instance(module, { env: { memory } }).exports;
    const wrong = callTableMismatches(exports);
    if (wrong.length) {
      throw unavailable(`the ${variant} WASM build does not match the host's call table (assembly/calls.ts): ${wrong.join(', ')}; run npm run build`);
    }
    const kernels = exports as unknown as KernelExports;
    const workers: KernelThread[] = [];
    try {
      // One worker per thread (threads >= 2); the calling thread coordinates. 1 thread: no workers.
      for (let t = 0; threads > 1 && t < threads; t++) workers.push(new KernelThread(host, module, memory, t));
      await Promise.all(workers.map((w) => w.started()));
    } catch (e) {
      await Promise.all(workers.map((w) => w.terminate()));
      // A worker that never started is this platform's limit, not a lost backend.
      if (e instanceof BackendUnavailableError) throw e;
      throw unavailable(`a wasm worker could not start: ${e instanceof Error ? e.message : String(e)}`);
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
    if (pages > MAX_PAGES) {
      throw new TsaInputError(`the call needs ${(bytes / 2 ** 30).toFixed(2)} GiB of wasm memory, more than wasm32's 4 GiB: shape too large for one wasm stage call`, 'SHAPE');
    }
    if (pages > have) this.memory.grow(pages - have);
  }

  /** f32 view of `length` floats at byte offset `at` (a fresh view: the buffer changes on growth). */
  f32(at: number, length: number): Float32Array {
    return new Float32Array(this.memory.buffer, at, length);
  }
  i32(at: number, length: number): Int32Array {
    return new Int32Array(this.memory.buffer, at, length);
  }

  /**
   * The kernels by named arguments for one call: each launch first checks `signal`, and a
   * parallel launch stops early when it fires (both reject with TsaAbortError).
   */
  calls(signal?: AbortSignal): KernelCalls {
    const table = {} as Record<string, (args: Readonly<Record<string, number>>) => unknown>;
    for (const k of PARALLEL_KERNELS) table[k] = (args) => this.run(k, positional(PARALLEL_PARAMS[k], args), signal);
    for (const k of Object.keys(SERIAL_PARAMS) as SerialKernel[]) {
      table[k] = (args) => {
        throwIfAborted(signal);
        return this.kernels[k](...positional(SERIAL_PARAMS[k], args));
      };
    }
    return table as unknown as KernelCalls;
  }

  /** Runs a parallel kernel on every thread and waits for all of them (stopping early on abort). */
  private async run(kernel: ParallelKernel, args: number[], signal: AbortSignal | undefined): Promise<void> {
    throwIfAborted(signal);
    Atomics.store(new Int32Array(this.memory.buffer, COUNTER, 1), 0, 0);
    if (this.workers.length === 0) {
      this.kernels[kernel](0, COUNTER, ...args);
      return;
    }
    const done = Promise.all(this.workers.map((w) => w.run(kernel, [COUNTER, ...args])));
    if (!signal) {
      await done;
      return;
    }
    const stop = (): void => {
      Atomics.store(new Int32Array(this.memory.buffer, COUNTER, 1), 0, STOP_TASKS);
    };
    signal.addEventListener('abort', stop, { once: true });
    try {
      await done;
    } finally {
      signal.removeEventListener('abort', stop);
    }
    throwIfAborted(signal);
  }

  private queue: Promise<unknown> = Promise.resolve();
  private closed = false;

  /**
   * Runs `fn` after every call queued before it: calls share the module memory, so one runs
   * at a time. After dispose() it rejects with BackendLostError saying `what` was disposed.
   */
  exclusive<T>(what: string, fn: () => Promise<T>): Promise<T> {
    if (this.closed) return Promise.reject(new BackendLostError(`the ${what} was disposed`));
    const next = this.queue.then(fn);
    this.queue = next.catch(() => {});
    return next;
  }

  /** Waits for the queued calls, then terminates the workers (idempotent). */
  async dispose(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.queue;
    await Promise.all(this.workers.map((w) => w.terminate()));
  }
}

/** The `threads` option of a wasm factory: an integer in [1, 256], default the host's cores. */
export function threadsOf(host: WasmHost, threads: number | undefined): number {
  const t = threads ?? host.cores();
  if (!Number.isInteger(t) || t < 1 || t > 256) {
    throw new TsaInputError(`option threads must be an integer in [1, 256], got ${String(threads)}`, 'OPTION');
  }
  return t;
}
