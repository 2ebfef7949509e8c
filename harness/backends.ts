/** Registers the built-in backends with the registry (imported once by the public entry). */
import { createWasmBackend } from '../assembly/index.js';
import { createWebGpuBackend } from '../gpu/index.js';
import { createReferenceBackend } from '../reference/index.js';
import { registerBackend } from './registry.js';

registerBackend({
  name: 'reference',
  priority: 0,
  summary: 'pure TypeScript, float64: the executable spec, always available, slow',
  create: async () => createReferenceBackend(),
});

registerBackend({
  name: 'wasm',
  priority: 100,
  summary: 'WebAssembly SIMD (relaxed SIMD where available), threaded: the CPU backend',
  create: (options) => createWasmBackend(options),
});

registerBackend({
  name: 'webgpu',
  priority: 200,
  summary: 'WebGPU (Dawn: Vulkan, else OpenGL/GLES compatibility): every stage on the GPU, FlashAttention-style kernels',
  // TSA_WEBGPU_PROFILE=1: per-stage times in TsaResult.timings where the adapter has no timestamp queries.
  create: (options) => createWebGpuBackend({ ...options, profileStages: process.env.TSA_WEBGPU_PROFILE === '1' }),
});
