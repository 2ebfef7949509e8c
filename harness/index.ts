/** Public entry of token-sparse-attention for Node: every backend, golden conformance. */
import './backends.js';

export * from './api.js';
export { runConformance, checkCase, type ConformanceRow } from './tools/conformance.js';
export { loadGoldenCase, goldenCaseNames, type GoldenCase } from './tools/golden.js';
export { createWasmBackend, type WasmBackendOptions } from '../assembly/node.js';
export {
  createWebGpuBackend,
  isWebGpuBackend,
  type WebGpuBackend,
  type CreateWebGpuOptions,
  type GpuAttentionInput,
  type GpuTsaResult,
} from '../gpu/index.js';
