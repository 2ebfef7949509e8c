/** Public entry of token-sparse-attention for Node: every backend, golden conformance. */
import './backends.js';

export * from './api.js';
export { runConformance, checkCase, type ConformanceRow } from './tools/conformance.js';
export { loadGoldenCase, goldenCaseNames, type GoldenCase } from './tools/golden.js';
export { createWasmBackend, createWasmMatmul, type WasmBackendOptions, type WasmMatmul, type WasmMatmulOptions } from '../assembly/node.js';
export { createWebGpuBackend } from './webgpu-entry.js';
export {
  isWebGpuBackend,
  WebGpuBackend,
  type CreateWebGpuOptions,
  type GpuAttentionInput,
  type GpuTsaResult,
} from '../gpu/index.js';
