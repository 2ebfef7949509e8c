/**
 * The wasm backend in browsers: builds fetched from build/ beside dist/ (URLs relative to this
 * module), module Web Workers (worker-browser.ts), navigator.hardwareConcurrency threads by
 * default. Shared WebAssembly memory needs a cross-origin isolated page (COOP/COEP headers).
 * No node: imports here or in anything this imports.
 */
import type { BlockSparseBackend } from '../harness/core/interface.js';
import { createWasmBackendOn, type WasmBackendOptions } from './index.js';
import { createWasmMatmulOn, type WasmMatmul, type WasmMatmulOptions } from './matmul.js';
import { chooseVariant as chooseVariantOn, unavailable, type SimdVariant, type WasmHost } from './runtime.js';

export type { SimdVariant } from './runtime.js';
export type { WasmBackendOptions } from './index.js';
export type { WasmMatmul, WasmMatmulOptions } from './matmul.js';

// The browser globals used here (the project compiles without lib.dom).
interface BrowserWorker {
  postMessage(message: unknown): void;
  addEventListener(type: 'message', listener: (event: { data: { error?: string } }) => void): void;
  addEventListener(type: 'error' | 'messageerror', listener: (event: { message?: string }) => void): void;
  terminate(): void;
}
const web = globalThis as unknown as {
  crossOriginIsolated?: boolean;
  navigator?: { hardwareConcurrency?: number };
};
declare const Worker: (new (url: URL, options: { type: 'module' }) => BrowserWorker) | undefined;

// Literal new URL(..., import.meta.url) forms, so bundlers can find and copy these files.
const WASM_URLS: Record<SimdVariant, URL> = {
  plain: new URL('../../build/tsa-simd.wasm', import.meta.url),
  relaxed: new URL('../../build/tsa-relaxed-simd.wasm', import.meta.url),
};

export const browserHost: WasmHost = {
  async loadBuild(variant) {
    const url = WASM_URLS[variant];
    const response = await fetch(url).catch((e: unknown) => {
      throw unavailable(`cannot fetch the ${variant} WASM build ${url}: ${e instanceof Error ? e.message : String(e)}`);
    });
    if (!response.ok) {
      throw unavailable(`cannot fetch the ${variant} WASM build ${url}: HTTP ${response.status} (serve build/ beside dist/)`);
    }
    return new Uint8Array(await response.arrayBuffer());
  },
  spawnWorker() {
    if (typeof Worker === 'undefined') throw unavailable('this page has no Web Workers (threads: 1 runs without them)');
    // Exactly this form (the global Worker, a literal relative path, import.meta.url, type module):
    // it is the only one bundlers (Vite, webpack 5) recognise as a worker entry and bundle with its
    // imports; any other form is copied as a plain asset and the worker's own imports break.
    const worker = new Worker(new URL('./worker-browser.js', import.meta.url), { type: 'module' });
    return {
      post: (message) => worker.postMessage(message),
      listen(onReply, onFailure) {
        worker.addEventListener('message', (event) => onReply(event.data));
        worker.addEventListener('error', (event) => onFailure(new Error(event.message ?? 'worker script failed')));
        worker.addEventListener('messageerror', () => onFailure(new Error('a message could not be deserialized')));
      },
      idle: () => {},
      terminate: async () => worker.terminate(),
    };
  },
  cores: () => web.navigator?.hardwareConcurrency ?? 1,
  sharedMemoryProblem() {
    if (web.crossOriginIsolated === false) {
      return (
        'shared WebAssembly memory (SharedArrayBuffer) needs a cross-origin isolated page and this one is not ' +
        '(crossOriginIsolated is false): serve it with Cross-Origin-Opener-Policy: same-origin and ' +
        'Cross-Origin-Embedder-Policy: require-corp'
      );
    }
    return typeof SharedArrayBuffer === 'function' ? null : 'SharedArrayBuffer is unavailable in this browser';
  },
  relaxedHint: ' (relaxed SIMD ships in Chromium-based browsers >= 114)',
};

/** Which build runs in this browser (and why); see runtime.ts chooseVariant. */
export function chooseVariant(forced?: SimdVariant): Promise<{ variant: SimdVariant; bytes: Uint8Array; why: string }> {
  return chooseVariantOn(browserHost, forced);
}

/** The wasm backend on the browser's host; see createWasmBackendOn in index.ts. */
export function createWasmBackend(options: WasmBackendOptions = {}): Promise<BlockSparseBackend> {
  return createWasmBackendOn(browserHost, options);
}

/** The wasm matmul (C = A B^T) on the browser's host; see assembly/matmul.ts. */
export function createWasmMatmul(options: WasmMatmulOptions = {}): Promise<WasmMatmul> {
  return createWasmMatmulOn(browserHost, options);
}
