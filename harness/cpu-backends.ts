/**
 * Registers the backends that run on any JavaScript CPU, Node or browser: the reference and the
 * wasm backend created by the platform's createWasmBackend (assembly/node.ts or assembly/browser.ts).
 */
import type { WasmBackendOptions } from '../assembly/index.js';
import { createReferenceBackend } from '../reference/index.js';
import type { Backend } from './core/interface.js';
import { registerBackend } from './registry.js';

export function registerCpuBackends(createWasmBackend: (options: WasmBackendOptions) => Promise<Backend>): void {
  registerBackend({
    name: 'reference',
    priority: 0,
    summary: 'pure TypeScript, float64: the executable spec, always available, slow',
    create: async (options) => createReferenceBackend({ costRule: options.costRule }),
  });

  registerBackend({
    name: 'wasm',
    priority: 100,
    summary: 'WebAssembly SIMD (relaxed SIMD where available), threaded: the CPU backend',
    create: (options) => createWasmBackend(options),
  });
}
