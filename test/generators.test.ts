/** Seeded input generators: deterministic, seed-dependent, finite, and heavy-tailed where promised. */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { generateInput, INPUT_KINDS, Rng } from '../harness/core/generators.js';
import type { AttentionInput, AttentionShape } from '../harness/core/interface.js';
import { createReferenceBackend } from '../reference/index.js';

const shapeArb = fc
  .record({ kvHeads: fc.integer({ min: 1, max: 3 }), group: fc.integer({ min: 1, max: 3 }), headDim: fc.integer({ min: 1, max: 40 }), seqLen: fc.integer({ min: 1, max: 200 }) })
  .map((r): AttentionShape => ({ heads: r.kvHeads * r.group, kvHeads: r.kvHeads, headDim: r.headDim, seqLen: r.seqLen }));
const seedArb = fc.integer({ min: 0, max: 0xffffffff });
const kindArb = fc.constantFrom(...INPUT_KINDS);

const arrays = (x: AttentionInput) => [x.q, x.k, x.v];

describe('generateInput', () => {
  it('is deterministic per seed and has the layout lengths', () => {
    fc.assert(
      fc.property(kindArb, shapeArb, seedArb, (kind, shape, seed) => {
        const a = generateInput(kind, shape, seed);
        const b = generateInput(kind, shape, seed);
        expect(a).toMatchObject(shape);
        expect(a.q.length).toBe(shape.heads * shape.seqLen * shape.headDim);
        expect(a.k.length).toBe(shape.kvHeads * shape.seqLen * shape.headDim);
        expect(a.v.length).toBe(shape.kvHeads * shape.seqLen * shape.headDim);
        arrays(a).forEach((x, i) => expect(x).toEqual(arrays(b)[i]));
      }),
      { numRuns: 50 },
    );
  });

  it('differs across seeds, and every value is finite', () => {
    fc.assert(
      fc.property(kindArb, shapeArb, seedArb, seedArb, (kind, shape, s1, s2) => {
        fc.pre(s1 !== s2);
        const a = generateInput(kind, shape, s1);
        const b = generateInput(kind, shape, s2);
        for (const x of arrays(a)) expect(x.every(Number.isFinite)).toBe(true);
        arrays(a).forEach((x, i) => expect(x.some((v, j) => v !== arrays(b)[i]![j])).toBe(true));
      }),
      { numRuns: 50 },
    );
  });

  it('gaussian values are standard normal (moments over a large sample)', () => {
    fc.assert(
      fc.property(seedArb, (seed) => {
        const { q } = generateInput('gaussian', { heads: 4, kvHeads: 4, headDim: 64, seqLen: 256 }, seed);
        const n = q.length;
        const mean = q.reduce((s, x) => s + x, 0) / n;
        const variance = q.reduce((s, x) => s + (x - mean) ** 2, 0) / n;
        // n = 65536: the sample mean has sd 1/256 and the variance sd ~ sqrt(2/n) = 0.0055; 6 sd bounds.
        expect(Math.abs(mean)).toBeLessThan(6 / 256);
        expect(Math.abs(variance - 1)).toBeLessThan(6 * 0.0055);
      }),
      { numRuns: 10 },
    );
  });

  it('structured inputs prune a much larger share than gaussian ones at the same shape (reference budget)', async () => {
    const reference = createReferenceBackend();
    const shape = { heads: 4, kvHeads: 2, headDim: 64, seqLen: 1024 };
    const options = { coverage: 0.005, window: 64, poolKernel: 7, minTokens: 1 };
    const prefixLen = shape.seqLen - options.window;
    const pruned = async (kind: 'gaussian' | 'structured', seed: number) => {
      const x = generateInput(kind, shape, seed);
      const pooled = await reference.pool(await reference.scores(x, options), { heads: 4, prefixLen }, options);
      const b = await reference.budget(pooled, { heads: 4, prefixLen }, options);
      return b.mode === 'sparse' ? b.pruned : 0;
    };
    await fc.assert(
      fc.asyncProperty(seedArb, async (seed) => {
        const g = await pruned('gaussian', seed);
        const s = await pruned('structured', seed);
        // Near-uniform attention: tau = 0.5% of the mass is about 0.5% of the tokens (7 of 960
        // over 40 seeds). Heavy-tailed attention: many tokens share that 0.5% (112..389 of 960).
        expect(g).toBeLessThan(0.02 * prefixLen);
        expect(s).toBeGreaterThan(0.06 * prefixLen);
        expect(s).toBeGreaterThan(8 * g);
      }),
      { numRuns: 6 },
    );
  });
});

describe("generateInput('local')", () => {
  it('XAttention keeps a minority of the blocks on local inputs and nearly all on structured ones (reference stages)', async () => {
    const reference = createReferenceBackend();
    const shape = { heads: 2, kvHeads: 1, headDim: 64, seqLen: 4096 };
    const o = { blockSparse: { method: 'xattention' as const } };
    const share = async (kind: 'structured' | 'local', seed: number) => {
      const x = generateInput(kind, shape, seed);
      const mask = await reference.blockSelect(await reference.blockScores(x, o), { heads: 2, blocks: 32 }, o);
      return mask.reduce((a, m) => a + m, 0) / (2 * 32 * 33 / 2);
    };
    await fc.assert(
      fc.asyncProperty(seedArb, async (seed) => {
        const local = await share('local', seed);
        const structured = await share('structured', seed);
        expect(local).toBeLessThan(0.6);
        expect(structured).toBeGreaterThan(0.8);
      }),
      { numRuns: 3 },
    );
  });

  it('the locality term decays with distance: the mean logit of near keys exceeds that of far ones', () => {
    fc.assert(
      fc.property(seedArb, (seed) => {
        const D = 64;
        const x = generateInput('local', { heads: 1, kvHeads: 1, headDim: D, seqLen: 2048 }, seed);
        const logit = (t: number, s: number) => {
          let dot = 0;
          for (let d = 0; d < D; d++) dot += x.q[t * D + d]! * x.k[s * D + d]!;
          return dot / Math.sqrt(D);
        };
        const mean = (lo: number, hi: number) => {
          let sum = 0;
          for (let t = 1500; t < 1600; t++) for (let s = t - hi; s < t - lo; s++) sum += logit(t, s);
          return sum / (100 * (hi - lo));
        };
        // cScale^2 = 12.25 logit units at distance 0; far keys (1000-1400 back) get almost none of it.
        expect(mean(0, 16) - mean(1000, 1400)).toBeGreaterThan(4);
      }),
      { numRuns: 4 },
    );
  });
});

describe('Rng', () => {
  it('uniform() lies in (0, 1) and u32() in [0, 2^32), reproducibly per seed', () => {
    fc.assert(
      fc.property(seedArb, (seed) => {
        const a = new Rng(seed);
        const b = new Rng(seed);
        for (let i = 0; i < 1000; i++) {
          const u = a.uniform();
          expect(u).toBeGreaterThan(0);
          expect(u).toBeLessThan(1);
          expect(b.uniform()).toBe(u);
          const w = a.u32();
          expect(Number.isInteger(w) && w >= 0 && w < 2 ** 32).toBe(true);
          expect(b.u32()).toBe(w);
        }
      }),
      { numRuns: 20 },
    );
  });
});
