/**
 * Registers the WebGPU backend, at the same name and priority on every platform, with the
 * platform's factory (gpu/index.ts in Node, gpu/browser.ts in a page).
 */
import { registerBackend, type BackendEntry } from './registry.js';

export function registerWebGpuBackend(summary: string, create: BackendEntry['create']): void {
  registerBackend({ name: 'webgpu', priority: 200, summary, create });
}
