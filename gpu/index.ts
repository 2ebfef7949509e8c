/**
 * Node entry of the WebGPU backend: `createWebGpuBackend(options)` (the
 * browser's is browser.ts). Needs the optional `webgpu` package (Dawn for node).
 * On a software adapter (llvmpipe, lavapipe) the backend works but is not auto-selected.
 */
import type { BackendCreateOptions } from '../harness/core/interface.js';
import type { WebGpuBackendOptions } from './backend.js';
import { wrapDevice } from './context.js';
import { backendOnContext, type SelectableWebGpuBackend } from './create.js';
import { attemptsFor, openGpu, type AdapterAttempt, type AdapterChoice } from './device.js';

export type { GpuAttentionInput, GpuDtype, GpuTsaResult, WebGpuBackend, WebGpuBackendOptions } from './backend.js';
export type { DispatchTime } from './recorder.js';
export type { CostModel } from '../harness/core/cost.js';
export { H200_COST_MODEL } from './cost.js';
export { isWebGpuBackend } from './create.js';
export { ADAPTER_CHOICES, type AdapterChoice } from './device.js';
export { generateInputOnGpu } from './generate.js';

export interface CreateWebGpuOptions extends WebGpuBackendOptions, BackendCreateOptions {
  /**
   * Which of Dawn's backends to open: 'vulkan' (a core adapter, e.g. Mesa's
   * lavapipe or a GPU's Vulkan driver) or 'opengl' (a compatibility adapter
   * over EGL, e.g. Mesa's llvmpipe). Default: Vulkan, else OpenGL.
   */
  adapter?: AdapterChoice;
  /** Adapters to try, in order (overrides `adapter`; default: Vulkan core, then OpenGL compatibility). */
  attempts?: readonly AdapterAttempt[];
  /**
   * Run on this existing device instead of opening one (its limits apply; it
   * is not destroyed on dispose). GPU-resident inputs must live on the
   * backend's device: share one device between the backend and their producer.
   */
  device?: GPUDevice;
  /** Dawn toggles to enable on the device (measurements, e.g. 'disable_robustness'; unsafe ones are not for production). */
  dawnToggles?: readonly string[];
  /**
   * Whether Dawn zero-fills new buffers of the device the backend opens
   * (WebGPU's default). Default: on, except on Dawn's OpenGL backend, where
   * the fill is a host upload (about 1.5 s per GiB on an H200): there buffers
   * you create on `backend.device` start with unspecified contents. The
   * backend's own kernels never read memory they did not write.
   */
  zeroInit?: boolean;
  /**
   * Dawn's experimental toggles on Vulkan (allow_unsafe_apis,
   * vulkan_enable_f16_on_nvidia, use_vulkan_memory_model: features.ts), which
   * give shader-f16 on NVIDIA and subgroup matrices (the matrix units of
   * precision 'f16'). Default true; false opens the device without them.
   */
  experimentalFeatures?: boolean;
}

export const SOFTWARE_NOT_AUTO = 'software adapter (llvmpipe): slower than the wasm backend; force with --backend webgpu';

export async function createWebGpuBackend(options: CreateWebGpuOptions = {}): Promise<SelectableWebGpuBackend> {
  const gpu = options.device
    ? wrapDevice(options.device)
    : await openGpu(options.attempts ?? attemptsFor(options.adapter), options.dawnToggles, options.zeroInit, options.experimentalFeatures ?? true);
  return backendOnContext(gpu, options, SOFTWARE_NOT_AUTO);
}
