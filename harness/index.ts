/** Public entry of token-sparse-attention. */
import './backends.js';

export * from './interface.js';
export * from './errors.js';
export { resolveOptions, validateInput } from './validate.js';
export {
  registerBackend,
  registeredBackends,
  createBackend,
  selectBackend,
  probeBackends,
  type BackendEntry,
  type ProbeRow,
  type Selection,
  type SelectOptions,
} from './registry.js';
export { createReferenceBackend } from '../reference/index.js';
export { generateInput, Rng, INPUT_KINDS, type InputKind } from './generators.js';
export { runConformance, checkCase, type ConformanceRow } from './conformance.js';
export { loadGoldenCase, goldenCaseNames, type GoldenCase } from './golden.js';
export { runPipeline } from './pipeline.js';
export { createWasmBackend, type WasmBackendOptions } from '../assembly/node.js';
export {
  createWebGpuBackend,
  isWebGpuBackend,
  WebGpuBackend,
  type CreateWebGpuOptions,
  type GpuAttentionInput,
  type GpuTsaResult,
} from '../gpu/index.js';
