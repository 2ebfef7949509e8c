/**
 * Random cases for the WASM backend's own tests (test/wasm.test.ts in process, and
 * test/wasm-relaxed.test.ts through a child process): shapes H = G * Hkv, D in 8..128, L up to a
 * few thousand (capped so the float64 reference stays fast), Gaussian or structured inputs, and
 * pooled-score arrays with and without ties.
 */
import fc from 'fast-check';
import { Rng, type InputKind } from '../harness/core/generators.js';
import type { ResolvedTsaOptions, ScoreShape } from '../harness/core/interface.js';
import { caseInput, type TsaCase } from './shared/arbitraries.js';

/** A random configuration (the shared suite's TsaCase): H = G * Hkv, D in 8..128, L up to a few thousand. */
export type StageCase = TsaCase;

/** Reference dense attention costs H L^2 D / 2 multiply-adds in JS: keep it under ~1e8. */
const WORK = 2e8;

export const stageCaseArb: fc.Arbitrary<StageCase> = fc
  .record({
    kvHeads: fc.integer({ min: 1, max: 4 }),
    group: fc.integer({ min: 1, max: 4 }),
    headDim: fc.integer({ min: 8, max: 128 }),
    length: fc.double({ min: 0, max: 1, noNaN: true }),
    window: fc.integer({ min: 1, max: 160 }),
    poolKernel: fc.constantFrom(1, 3, 7, 9),
    minTokens: fc.integer({ min: 1, max: 1500 }),
    coverage: fc.double({ min: 1e-4, max: 0.5, noNaN: true }),
    kind: fc.constantFrom<InputKind>('gaussian', 'structured'),
    seed: fc.integer({ min: 0, max: 0x7fffffff }),
  })
  .map((r): StageCase => {
    const heads = r.kvHeads * r.group;
    const cap = Math.max(r.window + 8, Math.min(4000, Math.floor(Math.sqrt(WORK / (heads * r.headDim)))));
    const seqLen = r.window + 1 + Math.floor(r.length * (cap - r.window - 1));
    return {
      heads,
      kvHeads: r.kvHeads,
      headDim: r.headDim,
      seqLen,
      options: { coverage: r.coverage, window: r.window, poolKernel: r.poolKernel, minTokens: r.minTokens },
      kind: r.kind,
      seed: r.seed,
    };
  });

export { caseInput as inputOf };

/** Random pooled scores [H][P]: continuous, or quantised to a few levels (many ties), with zeros. */
export const pooledArb = fc
  .record({
    heads: fc.integer({ min: 1, max: 8 }),
    prefixLen: fc.integer({ min: 1, max: 5000 }),
    levels: fc.constantFrom(0, 2, 5, 50),
    window: fc.integer({ min: 1, max: 128 }),
    poolKernel: fc.constantFrom(1, 3, 7),
    minTokens: fc.integer({ min: 1, max: 2000 }),
    coverage: fc.double({ min: 1e-4, max: 0.9, noNaN: true }),
    keepShare: fc.double({ min: 0, max: 1, noNaN: true }),
    seed: fc.integer({ min: 0, max: 0x7fffffff }),
  })
  .map((r) => {
    const rng = new Rng(r.seed);
    const pooled = Float32Array.from({ length: r.heads * r.prefixLen }, () => {
      const u = rng.uniform();
      return r.levels === 0 ? u ** 4 / r.prefixLen : Math.floor(u * r.levels) / (r.levels * r.prefixLen);
    });
    const shape: ScoreShape = { heads: r.heads, prefixLen: r.prefixLen };
    const options: ResolvedTsaOptions = { coverage: r.coverage, window: r.window, poolKernel: r.poolKernel, minTokens: r.minTokens };
    const keep = 1 + Math.floor(r.keepShare * (r.prefixLen - 1));
    return { pooled, shape, options, keep };
  });

/** Per head, a random ascending subset of n positions of [0, L): [H][n]. */
export function randomIndices(H: number, L: number, n: number, rng: Rng): Int32Array {
  const out = new Int32Array(H * n);
  for (let h = 0; h < H; h++) {
    const pos = Int32Array.from({ length: L }, (_, t) => t);
    for (let i = 0; i < n; i++) {
      const j = i + (rng.u32() % (L - i));
      [pos[i], pos[j]] = [pos[j]!, pos[i]!];
    }
    out.set(pos.subarray(0, n).sort(), h * n);
  }
  return out;
}
