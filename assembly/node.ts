/**
 * The wasm backend in Node: builds read from build/ with node:fs, node:worker_threads workers
 * (worker.ts), os.availableParallelism() threads by default.
 */
import { existsSync, readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { BlockSparseBackend } from '../harness/core/interface.js';
import { createWasmBackendOn, type WasmBackendOptions } from './index.js';
import { createWasmMatmulOn, type WasmMatmul, type WasmMatmulOptions } from './matmul.js';
import { chooseVariant as chooseVariantOn, unavailable, type SimdVariant, type WasmHost } from './runtime.js';

export type { SimdVariant } from './runtime.js';
export type { WasmBackendOptions } from './index.js';
export type { WasmMatmul, WasmMatmulOptions } from './matmul.js';

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

export const nodeHost: WasmHost = {
  async loadBuild(variant) {
    const file = WASM_FILES[variant];
    if (!existsSync(file)) throw unavailable(`the ${variant} WASM build ${file} is missing: run npm run build`);
    return new Uint8Array(readFileSync(file));
  },
  spawnWorker() {
    if (!existsSync(WORKER_FILE)) throw unavailable(`the worker script ${WORKER_FILE} is missing: run npm run build`);
    const worker = new Worker(WORKER_FILE);
    return {
      post(message) {
        worker.ref(); // keep the process alive while a request runs
        worker.postMessage(message);
      },
      listen(onReply, onFailure) {
        worker.on('message', onReply);
        worker.on('error', onFailure);
        worker.on('exit', (code) => onFailure(new Error(`exited with code ${code}`)));
      },
      idle: () => worker.unref(),
      terminate: async () => {
        await worker.terminate();
      },
    };
  },
  cores: () => availableParallelism(),
  sharedMemoryProblem: () => (typeof SharedArrayBuffer === 'function' ? null : 'SharedArrayBuffer is unavailable (threads need it)'),
  relaxedHint: ' (relaxed SIMD needs Node >= 22, or node --experimental-wasm-relaxed-simd on Node 20)',
};

/** Which build runs in this Node (and why); see runtime.ts chooseVariant. */
export function chooseVariant(forced?: SimdVariant): Promise<{ variant: SimdVariant; bytes: Uint8Array; why: string }> {
  return chooseVariantOn(nodeHost, forced);
}

/** The wasm backend on Node's host; see createWasmBackendOn in index.ts. */
export function createWasmBackend(options: WasmBackendOptions = {}): Promise<BlockSparseBackend> {
  return createWasmBackendOn(nodeHost, options);
}

/** The wasm matmul (C = A B^T) on Node's host; see assembly/matmul.ts. */
export function createWasmMatmul(options: WasmMatmulOptions = {}): Promise<WasmMatmul> {
  return createWasmMatmulOn(nodeHost, options);
}
