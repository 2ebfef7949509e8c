/**
 * Browser entry of token-sparse-attention (package.json "exports" condition "browser"): the API of
 * harness/index.ts with the backends that run in a browser: webgpu on navigator.gpu, wasm (the page
 * must be cross-origin isolated for it: COOP/COEP headers) and reference. Left out, as they need
 * Node: the golden loader and conformance runner (node:fs). Nothing this imports may import node:
 * modules.
 */
import { createWasmBackend } from '../assembly/browser.js';
import { createWebGpuBackend } from '../gpu/browser.js';
import { registerCpuBackends } from './cpu-backends.js';
import { registerWebGpuBackend } from './gpu-backends.js';

registerCpuBackends(createWasmBackend);
registerWebGpuBackend('WebGPU on navigator.gpu: every stage on the GPU, FlashAttention-style kernels', (options) => createWebGpuBackend(options));

export * from './api.js';
export { createWasmBackend, createWasmMatmul, type WasmBackendOptions, type WasmMatmul, type WasmMatmulOptions } from '../assembly/browser.js';
export {
  createWebGpuBackend,
  isWebGpuBackend,
  type WebGpuBackend,
  BROWSER_SOFTWARE_NOT_AUTO,
  type CreateBrowserWebGpuOptions,
  type GpuAttentionInput,
  type GpuTsaResult,
} from '../gpu/browser.js';
