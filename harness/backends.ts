/** Registers the built-in backends with the registry (imported once by the public entry). */
import { createWasmBackend } from '../assembly/node.js';
import { registerCpuBackends } from './cpu-backends.js';
import { createWebGpuBackend, type AdapterChoice } from '../gpu/index.js';
import { registerWebGpuBackend } from './gpu-backends.js';

registerCpuBackends(createWasmBackend);

registerWebGpuBackend(
  'WebGPU (Dawn: Vulkan, else OpenGL/GLES compatibility): every stage on the GPU, FlashAttention-style kernels',
  // TSA_WEBGPU_PROFILE=1: per-stage times in TsaResult.timings where the adapter has no timestamp queries.
  // TSA_WEBGPU_ADAPTER=vulkan|opengl: which of Dawn's backends to open (default: Vulkan, else OpenGL).
  // TSA_WEBGPU_F16_TILES='{"sg":8,...}': the f16 subgroup-matrix kernel's config (tuning, f16Tiles; 'false': the plain kernel).
  (options) =>
    createWebGpuBackend({
      ...options,
      profileStages: process.env.TSA_WEBGPU_PROFILE === '1',
      ...(process.env.TSA_WEBGPU_ADAPTER ? { adapter: process.env.TSA_WEBGPU_ADAPTER as AdapterChoice } : {}),
      ...(process.env.TSA_WEBGPU_F16_TILES ? { f16Tiles: JSON.parse(process.env.TSA_WEBGPU_F16_TILES) as Record<string, number | boolean> | false } : {}),
    }),
);
