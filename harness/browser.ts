/**
 * Browser entry of token-sparse-attention (package.json "exports" condition "browser"): the API of
 * harness/index.ts with the backends that run in a browser, reference and wasm (the page must be
 * cross-origin isolated for wasm: COOP/COEP headers). Left out, as they need Node: the golden
 * loader and conformance runner (node:fs) and the WebGPU backend (Dawn's Node bindings).
 * Nothing this imports may import node: modules.
 */
import { createWasmBackend } from '../assembly/browser.js';
import { registerCpuBackends } from './cpu-backends.js';

registerCpuBackends(createWasmBackend);

export * from './api.js';
export { createWasmBackend, createWasmMatmul, type WasmBackendOptions, type WasmMatmul, type WasmMatmulOptions } from '../assembly/browser.js';
