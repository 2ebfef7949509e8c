/**
 * The cost rule's block-sparse half (harness/core/block-cost.ts) on the CPU backends, with pinned
 * rates so every decision is reproducible: where it lets the block stages run, mask and output are
 * those of costRule: false; where it skips them, the layer is exactly the same call without
 * blockSparse; near-uniform (Gaussian) inputs, where XAttention keeps about every block, are
 * routed away from the block stages at the probe's cost.
 */
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createWasmBackend } from '../assembly/node.js';
import { blockWork, extrapolatedShare, minBlockShare } from '../harness/core/block-cost.js';
import { describeCostModel, type CostModel } from '../harness/core/cost.js';
import { TsaInputError } from '../harness/core/errors.js';
import { generateInput } from '../harness/core/generators.js';
import type { AttentionInput, Backend, ResolvedBlockSparse, TsaOptions, TsaResult } from '../harness/core/interface.js';
import { runBench } from '../harness/tools/bench.js';
import { benchTable } from '../harness/tools/bench-table.js';
import { createReferenceBackend } from '../reference/index.js';
import { caseArb, caseInput } from './shared/arbitraries.js';

/** Free scoring and selection, attention at one rate: blocks run where work(s) <= 1 - minGain, TSA where (L'/L)^2 <= 1 - minGain. */
const tipping = (minGain: number): CostModel => ({
  attendRate: 1e7,
  attendFixedMs: 0,
  compactPenalty: 1,
  scoreRate: 1e12,
  selectMsPerToken: 0,
  minGain,
  blockScoreRate: 1e12,
  blockScoreMsPerRow: 0,
  blockSelectMsPerBlock: 0,
  blockAttendPenalty: 1,
});

/** Rates shaped like this 2-core host's (`tsa backends --rates`): block scoring about as fast as attention, plus its row packing. */
const CPU_LIKE: CostModel = {
  attendRate: 4e7,
  attendFixedMs: 1,
  compactPenalty: 1.15,
  scoreRate: 6e7,
  selectMsPerToken: 3e-5,
  minGain: 0.05,
  blockScoreRate: 4e7,
  blockScoreMsPerRow: 5e-4,
  blockSelectMsPerBlock: 1e-4,
  blockAttendPenalty: 1,
};

const GAINS = [0.05, 0.4, 0.7];

const blockSparseArb: fc.Arbitrary<ResolvedBlockSparse> = fc
  .record({ blockSize: fc.constantFrom(16, 32, 64), stride: fc.constantFrom(1, 2, 4, 8, 16), threshold: fc.double({ min: 0.3, max: 1, noNaN: true }) })
  .map(({ blockSize, stride, threshold }) => ({ method: 'xattention' as const, blockSize, stride, threshold }));

/** `o` without its blockSparse key. */
function withoutBlocks(o: TsaOptions): TsaOptions {
  const { blockSparse: _, ...rest } = o;
  return rest;
}

const meanShare = (r: TsaResult): number => r.blockSparse!.selectedShare.reduce((a, b) => a + b, 0) / r.blockSparse!.selectedShare.length;

describe('cost rule: the block stages', () => {
  const backends: Backend[] = [];
  beforeAll(async () => {
    for (const gain of GAINS) {
      backends.push(createReferenceBackend({ costRule: true, costModel: tipping(gain) }));
      backends.push(await createWasmBackend({ threads: 1, simd: 'plain', costModel: tipping(gain) }));
    }
  });
  afterAll(async () => {
    for (const b of backends) await b.dispose();
  });

  it('never changes a block-sparse result it lets run; a skip is exactly the call without blockSparse', async () => {
    /** The rule's verdict on one call, after checking the call against the rule off (run) or without blocks (skip). */
    const check = async (b: Backend, input: AttentionInput, o: TsaOptions): Promise<string> => {
      const on = await b.tokenSparseAttention(input, o);
      const decision = on.blockDecision!;
      expect(['run', 'not-worth-it']).toContain(decision.verdict);
      expect(decision.detail).toMatch(/^cost rule: /);
      if (decision.verdict === 'run') {
        // The token rule may have run the layer dense: then the block stages ran on every row, as with coverage 0.
        const tokenSkipped = on.budget.mode === 'dense' && on.budget.reason === 'not-worth-it';
        const off = await b.tokenSparseAttention(input, { ...o, ...(tokenSkipped ? { coverage: 0 } : {}), costRule: false });
        if (!tokenSkipped) expect(on.budget).toEqual(off.budget);
        expect(on.indices).toEqual(off.indices);
        expect(on.blockSparse!.mask).toEqual(off.blockSparse!.mask);
        expect(on.blockSparse!.selectedShare).toEqual(off.blockSparse!.selectedShare);
        expect(on.output).toEqual(off.output);
      } else {
        expect(on.blockSparse).toBeUndefined();
        const plain = await b.tokenSparseAttention(input, withoutBlocks(o));
        expect(on.budget).toEqual(plain.budget);
        expect(on.indices).toEqual(plain.indices);
        expect(on.output).toEqual(plain.output);
      }
      return decision.verdict;
    };
    await fc.assert(
      fc.asyncProperty(caseArb({ maxSeqLen: 700, work: 2e7 }), blockSparseArb, fc.boolean(), fc.integer({ min: 0, max: backends.length - 1 }), async (c, bs, alone, pick) => {
        await check(backends[pick]!, caseInput(c), { ...c.options, ...(alone ? { coverage: 0 } : {}), blockSparse: bs });
      }),
      { numRuns: 40 },
    );
    // Random cases mostly skip (about 1 in 12 runs), so one fixed case of each verdict makes sure
    // both branches are checked in every run: local inputs at minGain 0.05 run, Gaussian ones at 0.7 skip.
    const shape = { heads: 2, kvHeads: 1, headDim: 16, seqLen: 512 };
    const o: TsaOptions = { coverage: 0, blockSparse: { method: 'xattention', blockSize: 16 } };
    expect(await check(backends[GAINS.indexOf(0.05) * 2 + 1]!, generateInput('local', shape, 5), o)).toBe('run');
    expect(await check(backends[GAINS.indexOf(0.7) * 2 + 1]!, generateInput('gaussian', shape, 5), o)).toBe('not-worth-it');
  });

  it('routes Gaussian inputs, where XAttention keeps about every block, away from the block stages; local ones through them', async () => {
    const wasm = await createWasmBackend({ threads: 2, costModel: CPU_LIKE });
    const shape = { heads: 4, kvHeads: 2, headDim: 64, seqLen: 2048 };
    const o: TsaOptions = { coverage: 0, blockSparse: { method: 'xattention', blockSize: 64 } };
    const gaussian = generateInput('gaussian', shape, 3);
    const all = await wasm.tokenSparseAttention(gaussian, { ...o, costRule: false });
    expect(meanShare(all)).toBeGreaterThan(0.85);
    const g = await wasm.tokenSparseAttention(gaussian, o);
    expect(g.blockDecision!.verdict).toBe('not-worth-it');
    expect(g.blockDecision!.estimatedShare!).toBeGreaterThan(0.85);
    expect(g.blockDecision!.detail).toMatch(/the probe \(block rows 4\.\.7 of 32, 2 heads\) estimates a share of [01]\.\d{3}: with the block stages .* not 5% faster/);
    expect(g.blockSparse).toBeUndefined();
    expect(g.timings.blockScores).toBeGreaterThan(0);
    expect(g.output).toEqual(await wasm.dense(gaussian));
    const local = generateInput('local', shape, 3);
    const l = await wasm.tokenSparseAttention(local, o);
    expect(l.blockDecision!.verdict).toBe('run');
    expect(l.blockDecision!.estimatedShare!).toBeLessThan(0.8);
    const off = await wasm.tokenSparseAttention(local, { ...o, costRule: false });
    expect(l.blockSparse!.mask).toEqual(off.blockSparse!.mask);
    expect(l.output).toEqual(off.output);
    await wasm.dispose();
  });

  it('skips without probing where even the least share cannot pay, and runs the stages where the model has no block rates', async () => {
    const ref = createReferenceBackend({ costRule: true, costModel: CPU_LIKE });
    const input = generateInput('local', { heads: 2, kvHeads: 1, headDim: 16, seqLen: 120 }, 4);
    const o: TsaOptions = { coverage: 0, blockSparse: { method: 'xattention', blockSize: 128 } };
    const one = await ref.tokenSparseAttention(input, o);
    expect(one.blockDecision).toEqual({ verdict: 'not-worth-it', estimatedShare: null, detail: expect.stringMatching(/even the least share 1\.000 would not beat/) });
    expect(one.output).toEqual(await ref.dense(input));
    const { blockScoreRate: _a, blockScoreMsPerRow: _b, blockSelectMsPerBlock: _c, blockAttendPenalty: _d, ...noBlockRates } = CPU_LIKE;
    const bare = createReferenceBackend({ costRule: true, costModel: noBlockRates });
    const small = { ...o, blockSparse: { method: 'xattention' as const, blockSize: 16, stride: 4 } };
    const r = await bare.tokenSparseAttention(input, small);
    expect(r.blockDecision).toEqual({ verdict: 'run', estimatedShare: null, detail: expect.stringMatching(/no block-stage rates/) });
    expect(r.output).toEqual((await bare.tokenSparseAttention(input, { ...small, costRule: false })).output);
  });

  it('the probe extrapolates a full map to share 1 and a band of w blocks per row to the band', () => {
    const mask = (heads: number, m: number, keep: (i: number, j: number) => boolean): Uint8Array => {
      const x = new Uint8Array(heads * m * m);
      for (let h = 0; h < heads; h++) for (let i = 0; i < m; i++) for (let j = 0; j <= i; j++) x[(h * m + i) * m + j] = +keep(i, j);
      return x;
    };
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 3 }), fc.integer({ min: 2, max: 12 }), fc.integer({ min: 0, max: 40 }), (heads, m, extra) => {
        expect(extrapolatedShare(mask(heads, m, () => true), heads, m, m + extra)).toBeCloseTo(1, 12);
      }),
    );
    // Every fitted row (from m/2 on) keeps w blocks: so does every extrapolated row (min(i + 1, w)).
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 3 }), fc.integer({ min: 4, max: 12 }), fc.nat(), fc.integer({ min: 0, max: 40 }), (heads, m, u, extra) => {
        const w = 2 + (u % (m >> 1));
        const nb = m + extra;
        const expected = Array.from({ length: nb }, (_, i) => Math.min(i + 1, w)).reduce((a, b) => a + b, 0) / ((nb * (nb + 1)) / 2);
        expect(extrapolatedShare(mask(heads, m, (i, j) => i - j < w), heads, m, nb)).toBeCloseTo(expected, 12);
      }),
    );
  });

  it('work(s) is 1 at share 1 and the diagonal alone at the floor; calibration fits the block rates; partial rates are typed errors', async () => {
    expect(blockWork(8, 16, 1)).toBeCloseTo(1, 12);
    expect(minBlockShare(1)).toBe(1);
    expect(minBlockShare(10)).toBeCloseTo(19 / 55, 12);
    // nb diagonal halves only: nb B(B+1)/2 of N(N+1)/2 pairs.
    expect(blockWork(4, 16, 4 / 10)).toBeCloseTo((4 * 16 * 17) / 2 / ((64 * 65) / 2), 12);
    const wasm = await createWasmBackend({ threads: 2 });
    const m = await wasm.costRates!();
    for (const key of ['blockScoreRate', 'blockAttendPenalty'] as const) expect(m[key]!).toBeGreaterThan(0);
    for (const key of ['blockScoreMsPerRow', 'blockSelectMsPerBlock'] as const) expect(m[key]!).toBeGreaterThanOrEqual(0);
    expect(describeCostModel(m)).toMatch(/; blocks: score [\d.]+ GFLOP\/s \+ [\d.]+ ns\/row, select [\d.]+ ns\/block, attend x[\d.]+$/);
    await wasm.dispose();
    const { blockAttendPenalty: _, ...partial } = CPU_LIKE;
    expect(() => createReferenceBackend({ costModel: partial })).toThrow(TsaInputError);
    expect(() => createReferenceBackend({ costModel: partial })).toThrow(/come together/);
    expect(() => createReferenceBackend({ costModel: { ...CPU_LIKE, blockScoreRate: 0 } })).toThrow(/blockScoreRate must be a positive number/);
  });

  it('tsa bench shows a skip: no share, the probe\'s estimate and its time', async () => {
    const wasm = await createWasmBackend({ threads: 2, costModel: CPU_LIKE });
    const records = await runBench({ backends: [wasm], lengths: [2048], heads: 2, kvHeads: 1, headDim: 64, inputs: ['gaussian'], coverage: 0.005, threads: 1, peers: false, seed: 3, methods: ['xattn'] });
    const xattn = records.find((r) => r.mode === 'xattn')!;
    expect(xattn.blockShare).toBeUndefined();
    expect(xattn.blockSkipped!.estimatedShare).toBeGreaterThan(0.85);
    expect(xattn.blockScoringMs).toBeGreaterThan(0);
    expect(benchTable(records)).toMatch(/xattn +gaussian +2048 .* skipped \(est\. [01]\.\d{3}\) /);
    await wasm.dispose();
  });
});
