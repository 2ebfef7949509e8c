/**
 * Browser entry of the WebGPU backend: `createWebGpuBackend(options)` on `navigator.gpu`
 * (device-browser.ts), or on a device of the page's. The kernels and the backend are the Node
 * ones; only the device acquisition differs. On a software or fallback adapter (SwiftShader)
 * the backend works but is not auto-selected, and uses smaller tiles (SOFTWARE_TILES).
 * No node: imports here or in anything this imports.
 */
import type { BackendCreateOptions } from '../harness/core/interface.js';
import type { WebGpuBackendOptions } from './backend.js';
import { wrapDevice } from './context.js';
import { backendOnContext, type SelectableWebGpuBackend } from './create.js';
import { openBrowserGpu } from './device-browser.js';
import type { TileConfig } from './tiles.js';

export type { GpuAttentionInput, GpuTsaResult, WebGpuBackend, WebGpuBackendOptions } from './backend.js';
export { isWebGpuBackend } from './create.js';

export interface CreateBrowserWebGpuOptions extends WebGpuBackendOptions, BackendCreateOptions {
  /**
   * Run on this existing device (e.g. the page's renderer's) instead of opening one; it is not
   * destroyed on dispose. GPU-resident inputs must live on the backend's device.
   */
  device?: GPUDevice;
  /** Passed to navigator.gpu.requestAdapter (default 'high-performance'). */
  powerPreference?: GPUPowerPreference;
}

/**
 * Tiles on a software adapter unless the caller picks: SwiftShader's shader compiler took about
 * 60 s for the default attend kernel (34 KB of unrolled WGSL) and 4 s for this one (9 KB) on a
 * loaded 2-core machine, and ran it as fast (dense L=512 D=64: 0.8-1.1 s against 0.9-1.5 s).
 */
const SOFTWARE_TILES: Partial<TileConfig> = { tm: 2, tn: 2, prefetch: false };

export const BROWSER_SOFTWARE_NOT_AUTO =
  "software or fallback adapter (e.g. SwiftShader): slower than the wasm backend; force it with selectBackend({ backend: 'webgpu' })";

export async function createWebGpuBackend(options: CreateBrowserWebGpuOptions = {}): Promise<SelectableWebGpuBackend> {
  const gpu = options.device ? wrapDevice(options.device) : await openBrowserGpu(options.powerPreference);
  const tiles = options.tiles ?? (gpu.software ? SOFTWARE_TILES : undefined);
  return backendOnContext(gpu, { ...options, tiles }, BROWSER_SOFTWARE_NOT_AUTO);
}
