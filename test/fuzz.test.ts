/**
 * The standing fuzz test of the public API (issue 10): on every backend, random calls of every
 * method (random shapes and options, about two in three with one thing broken, Q/K/V sometimes
 * over a SharedArrayBuffer) against the oracle of what is valid (test/shared/fuzz-calls.ts);
 * overlapping calls compared with the same calls alone; dispose() during calls. Outcomes are
 * counted by class (test/shared/fuzz-run.ts) and the test demands zero untyped errors, wrong
 * outputs, crashes and hangs. Each run draws a fresh seed (printed; TSA_FUZZ_SEED replays one).
 *
 * Budget: TSA_FUZZ_CALLS random calls per CPU backend (default 150), TSA_FUZZ_GPU_CALLS on
 * webgpu (default 20); overlap groups and dispose trials scale with them. A long run by hand:
 *   TSA_FUZZ_CALLS=10000 TSA_FUZZ_GPU_CALLS=1000 EGL_PLATFORM=surfaceless npx vitest run test/fuzz.test.ts
 */
import { describe, expect, it } from 'vitest';
import { createWasmBackend } from '../assembly/node.js';
import type { Backend } from '../harness/core/interface.js';
import { createWebGpuBackend } from '../gpu/index.js';
import { createReferenceBackend } from '../reference/index.js';
import { FuzzReport, fuzzCalls, fuzzDispose, fuzzOverlap, trace, watchingProcess } from './shared/fuzz-run.js';

process.env.EGL_PLATFORM ??= 'surfaceless';

function budget(name: string, fallback: number): number {
  const raw = process.env[name];
  const n = raw === undefined ? fallback : Number(raw);
  if (!Number.isInteger(n) || n < 1) throw new Error(`${name} must be a positive integer, got ${raw}`);
  return n;
}

const CPU_CALLS = budget('TSA_FUZZ_CALLS', 150);
const GPU_CALLS = budget('TSA_FUZZ_GPU_CALLS', 20);
const SEED = process.env.TSA_FUZZ_SEED !== undefined ? Number(process.env.TSA_FUZZ_SEED) : Math.floor(Math.random() * 2 ** 31);

const BACKENDS: Array<{ name: string; create: () => Promise<Backend>; calls: number; ms: number }> = [
  { name: 'reference', create: async () => createReferenceBackend(), calls: CPU_CALLS, ms: 60_000 },
  { name: 'wasm (2 threads)', create: () => createWasmBackend({ threads: 2, simd: 'plain' }), calls: CPU_CALLS, ms: 60_000 },
  { name: 'wasm (1 thread)', create: () => createWasmBackend({ threads: 1, simd: 'plain' }), calls: Math.ceil(CPU_CALLS / 3), ms: 60_000 },
  { name: 'webgpu', create: () => createWebGpuBackend({ costRule: false }), calls: GPU_CALLS, ms: 120_000 },
];

describe('fuzz: the public API under random, broken, overlapping and disposed calls', () => {
  for (const { name, create, calls, ms } of BACKENDS) {
    it(
      `${name}: ${calls} random calls, ${Math.ceil(calls / 10)} overlap groups, ${Math.ceil(calls / 30)} dispose trials: no untyped error, wrong output, crash or hang`,
      async () => {
        const report = new FuzzReport();
        await watchingProcess(report, async () => {
          const b = await create();
          try {
            await fuzzCalls(b, report, calls, SEED, ms);
            trace(() => report.summary(`${name} single calls`, SEED));
            await fuzzOverlap(b, report, Math.ceil(calls / 10), SEED, ms);
          } finally {
            await b.dispose();
          }
          await fuzzDispose(create, report, Math.ceil(calls / 30), SEED, ms);
        });
        console.log(report.summary(name, SEED));
        expect(report.examples, report.summary(name, SEED)).toEqual([]);
        expect(report.defects()).toBe(0);
        // Not vacuous: valid calls computed and broken ones were rejected.
        expect(report.counts.ok).toBeGreaterThan(0);
        expect(report.counts.typed).toBeGreaterThan(0);
      },
      1_800_000,
    );
  }
});
