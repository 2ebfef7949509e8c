/**
 * The cost rule (harness/core/cost.ts, probe.ts) on the CPU backends, with pinned rates so every
 * decision is reproducible: it never changes a sparse result (indices, budget and output identical
 * to costRule: false whenever it lets the layer run sparse), routes near-uniform attention to dense
 * at the probe's cost, and reports its estimate.
 */
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createWasmBackend } from '../assembly/node.js';
import type { CostModel } from '../harness/core/cost.js';
import { TsaInputError } from '../harness/core/errors.js';
import { generateInput } from '../harness/core/generators.js';
import type { Backend, TsaOptions } from '../harness/core/interface.js';
import { createReferenceBackend } from '../reference/index.js';
import { caseArb, caseInput } from './shared/arbitraries.js';

/** Rates shaped like the 2-core host's (attend ~40-70 GFLOP/s, scoring a little faster). */
const CPU_LIKE: CostModel = { attendRate: 5e7, attendFixedMs: 1, compactPenalty: 1.1, scoreRate: 6e7, selectMsPerToken: 2e-5, minGain: 0.05 };

/** Free scoring and a chosen minGain: sparse wins when (L'/L)^2 < 1 - minGain, so both verdicts occur. */
const tipping = (minGain: number): CostModel => ({ attendRate: 1e7, attendFixedMs: 0, compactPenalty: 1, scoreRate: 1e12, selectMsPerToken: 0, minGain });

const GAINS = [0, 0.4, 0.8];

describe('cost rule', () => {
  const backends: { name: string; gain: number; b: Backend }[] = [];
  beforeAll(async () => {
    for (const gain of GAINS) {
      backends.push({ name: 'reference', gain, b: createReferenceBackend({ costRule: true, costModel: tipping(gain) }) });
      backends.push({ name: 'wasm', gain, b: await createWasmBackend({ threads: 1, simd: 'plain', costModel: tipping(gain) }) });
    }
  });
  afterAll(async () => {
    for (const { b } of backends) await b.dispose();
  });

  it('never changes a sparse result; a dense verdict is exact dense attention', async () => {
    const seen = { sparse: 0, notWorthIt: 0 };
    await fc.assert(
      fc.asyncProperty(caseArb({ maxSeqLen: 700, length: 'above', work: 2e7 }), fc.integer({ min: 0, max: backends.length - 1 }), async (c, pick) => {
        const { b } = backends[pick]!;
        const input = caseInput(c);
        const on = await b.tokenSparseAttention(input, c.options);
        const off = await b.tokenSparseAttention(input, { ...c.options, costRule: false });
        if (on.budget.mode === 'sparse') {
          seen.sparse++;
          expect(on.budget).toEqual(off.budget);
          expect(on.indices).toEqual(off.indices);
          expect(on.output).toEqual(off.output);
        } else if (on.budget.reason === 'not-worth-it') {
          seen.notWorthIt++;
          expect(on.indices).toBeNull();
          expect(on.keptFraction).toBe(1);
          expect(on.output).toEqual(await b.dense(input));
        } else {
          expect(on.budget).toEqual(off.budget);
        }
      }),
      { numRuns: 40 },
    );
    expect(seen.sparse).toBeGreaterThan(0);
    expect(seen.notWorthIt).toBeGreaterThan(0);
  });

  it('routes Gaussian (near-uniform) inputs to dense and structured ones to the sparse pipeline', async () => {
    const shape = { heads: 4, kvHeads: 2, headDim: 32, seqLen: 1024 };
    const o: TsaOptions = { window: 64, minTokens: 128 };
    for (const b of [createReferenceBackend({ costRule: true, costModel: CPU_LIKE }), await createWasmBackend({ threads: 1, costModel: CPU_LIKE })]) {
      const gaussian = await b.tokenSparseAttention(generateInput('gaussian', shape, 3), o);
      expect(gaussian.budget.mode === 'dense' && gaussian.budget.reason).toBe('not-worth-it');
      expect(gaussian.budget.mode === 'dense' && gaussian.budget.detail).toMatch(/probe \(16 of 64 window queries\) estimates L' = \d+ of 1024/);
      // A window shorter than the probe's 16 queries is probed whole, and the detail says so.
      const narrow = await b.tokenSparseAttention(generateInput('gaussian', shape, 3), { ...o, window: 8 });
      expect(narrow.budget.mode === 'dense' && narrow.budget.detail).toMatch(/probe \(8 of 8 window queries\) estimates L' = \d+ of 1024/);
      const structured = await b.tokenSparseAttention(generateInput('structured', shape, 3), o);
      expect(structured.budget.mode).toBe('sparse');
      expect(structured.keptFraction).toBeLessThan(0.9);
      await b.dispose();
    }
  });

  it('skips the probe where even the best case cannot pay, and is off on the reference by default', async () => {
    const input = generateInput('structured', { heads: 2, kvHeads: 1, headDim: 16, seqLen: 400 }, 5);
    const o: TsaOptions = { window: 32, minTokens: 300 };
    const wasm = await createWasmBackend({ threads: 1, costModel: CPU_LIKE });
    const r = await wasm.tokenSparseAttention(input, o);
    expect(r.budget.mode === 'dense' && r.budget.detail).toMatch(/even L' = 332 would not beat dense/);
    expect(r.timings.scores).toBe(0);
    expect((await createReferenceBackend().tokenSparseAttention(input, o)).budget.mode).toBe('sparse');
    await wasm.dispose();
  });

  it('calibrates once per process, or returns the pinned rates; bad rates and flags are typed errors', async () => {
    const wasm = await createWasmBackend({ threads: 2 });
    const [a, b] = await Promise.all([wasm.costRates!(), wasm.costRates!()]);
    expect(a).toBe(b);
    for (const v of Object.values(a)) expect(Number.isFinite(v) && v >= 0).toBe(true);
    expect(a.attendRate).toBeGreaterThan(0);
    const again = await createWasmBackend({ threads: 2 });
    expect(await again.costRates!()).toBe(a);
    await Promise.all([wasm.dispose(), again.dispose()]);
    expect(await createReferenceBackend({ costModel: CPU_LIKE }).costRates!()).toBe(CPU_LIKE);
    expect(() => createReferenceBackend({ costModel: { ...CPU_LIKE, attendRate: -1 } })).toThrow(TsaInputError);
    await expect(createWasmBackend({ threads: 1, costModel: { ...CPU_LIKE, minGain: 1 } })).rejects.toThrow(/minGain/);
    const input = generateInput('gaussian', { heads: 1, kvHeads: 1, headDim: 8, seqLen: 64 }, 1);
    await expect(createReferenceBackend().tokenSparseAttention(input, { costRule: 'yes' as unknown as boolean })).rejects.toThrow(TsaInputError);
  });
});
