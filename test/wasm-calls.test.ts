/**
 * The wasm host's call table (assembly/calls.ts): it matches both builds' exports parameter for
 * parameter, and a build that disagrees (a kernel missing or with another parameter count) is
 * named with what differs, which WasmRuntime.create turns into BackendUnavailableError at startup.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { callTableMismatches, PARALLEL_KERNELS, PARALLEL_PARAMS, positional } from '../assembly/calls.js';
import { WASM_FILES } from '../assembly/node.js';

// The WebAssembly JS API, typed here (ES2022 + node types do not have it).
const wasm = (globalThis as unknown as {
  WebAssembly: {
    Memory: new (d: { initial: number; maximum: number; shared: boolean }) => object;
    compile(bytes: Uint8Array): Promise<object>;
    instantiate(module: object, imports: object): Promise<{ exports: Record<string, unknown> }>;
  };
}).WebAssembly;

/** The exports of a build instantiated over a small shared memory. */
async function exportsOf(file: string): Promise<Record<string, unknown>> {
  const memory = new wasm.Memory({ initial: 1, maximum: 65536, shared: true });
  const module = await wasm.compile(readFileSync(file));
  return (await wasm.instantiate(module, { env: { memory } })).exports;
}

describe('wasm call table', () => {
  it('matches the plain build export for export (parallel kernels take thread and counter first)', async () => {
    const exports = await exportsOf(WASM_FILES.plain);
    expect(callTableMismatches(exports)).toEqual([]);
    for (const k of PARALLEL_KERNELS) expect((exports[k] as (...a: number[]) => void).length, k).toBe(PARALLEL_PARAMS[k].length + 2);
  });

  it('names every kernel of a build that disagrees: missing, or taking another number of parameters', async () => {
    const exports = { ...(await exportsOf(WASM_FILES.plain)) };
    delete exports.scatter;
    exports.attend = (thread: number, counter: number, q: number) => thread + counter + q;
    expect(callTableMismatches(exports)).toEqual(['attend (takes 3 parameters, the host\'s call table 19)', 'scatter (missing)']);
  });

  it('turns named arguments into the kernel order, whatever order they are written in', () => {
    expect(positional(PARALLEL_PARAMS.pool, { out: 5, K: 4, P: 3, heads: 2, src: 1 })).toEqual([1, 2, 3, 4, 5]);
  });
});
