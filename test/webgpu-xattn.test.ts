/**
 * The webgpu backend's XAttention stages (blockScores, blockSelect, attendBlocks) on the adapter
 * TSA_WEBGPU_ADAPTER names: the shared block-sparse suite (random shapes, block sizes, strides,
 * thresholds; golden-xattn conformance), and the backend's own cases: lengths that are not a
 * multiple of the block size, odd head dimensions, the mask rule on adversarial masses, the
 * composed layer on the device (one submission, the mask read back at the end) against the
 * reference, and its GPU-resident entry against the Float32Array path.
 */
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { compactInput, scatterCompact } from '../harness/core/block-sparse.js';
import { generateInput } from '../harness/core/generators.js';
import { createWebGpuBackend, type WebGpuBackend } from '../gpu/index.js';
import { createReferenceBackend } from '../reference/index.js';
import { describeBlockSparseSuite } from './shared/block-sparse-suite.js';
import { check, checkClose } from './shared/checks.js';
import { readBuffer, toGpu } from './shared/gpu-buffers.js';
import { ADAPTER } from './shared/webgpu-adapter.js';

/** Small layers with XAttention: coverage 0 (alone), short (dense before scoring), or TSA first. */
const layerArb = fc
  .record({
    kvHeads: fc.integer({ min: 1, max: 2 }),
    group: fc.integer({ min: 1, max: 2 }),
    headDim: fc.constantFrom(7, 64),
    seqLen: fc.integer({ min: 20, max: 420 }),
    coverage: fc.oneof(fc.constant(0), fc.double({ min: 0.005, max: 0.3, noNaN: true })),
    blockSize: fc.constantFrom(16, 48),
    stride: fc.constantFrom(4, 16),
    threshold: fc.double({ min: 0.3, max: 1, noNaN: true }),
    kind: fc.constantFrom('gaussian', 'structured' as const),
    seed: fc.integer({ min: 0, max: 0x7fffffff }),
  })
  .map((r) => ({
    input: generateInput(r.kind, { heads: r.kvHeads * r.group, kvHeads: r.kvHeads, headDim: r.headDim, seqLen: r.seqLen }, r.seed),
    options: {
      coverage: r.coverage,
      window: 8,
      poolKernel: 3,
      minTokens: 32,
      blockSparse: { method: 'xattention' as const, blockSize: r.blockSize, stride: r.stride, threshold: r.threshold },
    },
  }));

// One backend for the file and few head dimensions, block sizes and strides: Mesa compiles each
// kernel variant for seconds to tens of seconds (D 64: the golden's). profileStages: per-stage
// times where the adapter has no timestamp queries (OpenGL), which the suite checks.
let shared: Promise<WebGpuBackend> | null = null;
const backend = (): Promise<WebGpuBackend> => (shared ??= createWebGpuBackend({ ...ADAPTER, costRule: false, profileStages: true }));

describeBlockSparseSuite({
  name: 'webgpu',
  create: async () => ({ ...(await backend()), dispose: async () => {} }), // disposed by the describe below
  numRuns: 3,
  maxSeqLen: 600,
  headDims: [7, 64],
});

describe('webgpu XAttention stages', () => {
  let b: WebGpuBackend;
  const reference = createReferenceBackend();
  beforeAll(async () => {
    b = await backend();
  }, 120_000);
  afterAll(async () => {
    await b?.dispose();
  });

  it('stages equal the reference on lengths off the block grid and odd head dimensions', async () => {
    const shapes = [
      { heads: 2, kvHeads: 1, headDim: 7, seqLen: 333, blockSize: 48, stride: 3 },
      { heads: 3, kvHeads: 3, headDim: 7, seqLen: 129, blockSize: 128, stride: 16 },
      { heads: 4, kvHeads: 2, headDim: 64, seqLen: 250, blockSize: 32, stride: 8 },
    ];
    for (const [n, { blockSize, stride, ...shape }] of shapes.entries()) {
      const input = generateInput('structured', shape, 11 + n);
      const o = { blockSparse: { method: 'xattention' as const, blockSize, stride, threshold: 0.8 } };
      const nb = Math.ceil(shape.seqLen / blockSize);
      const masses = await b.blockScores(input, o);
      const expected = await reference.blockScores(input, o);
      checkClose('blockScores', masses, expected, 2e-5 * (blockSize / stride), shape.heads, 1);
      const mask = await reference.blockSelect(expected, { heads: shape.heads, blocks: nb }, o);
      expect(Array.from(await b.blockSelect(expected, { heads: shape.heads, blocks: nb }, o))).toEqual(Array.from(mask));
      checkClose('attendBlocks', await b.attendBlocks(input, mask, o), await reference.attendBlocks(input, mask, o), 2e-5, shape.heads, shape.headDim);
    }
  }, 300_000);

  it('blockSelect is exact where float32 sums would not be: masses 2^40 apart, exact ties with the threshold', async () => {
    const nb = 9;
    const o = { blockSparse: { method: 'xattention' as const, blockSize: 16, stride: 4, threshold: 0.5 } };
    const masses = new Float32Array(2 * nb * nb);
    for (let i = 0; i < nb; i++) {
      for (let j = 0; j <= i; j++) {
        // Head 0: one huge mass and tiny ones (an f32 sum drops them); head 1: powers of two (T R hit exactly).
        masses[i * nb + j] = j === i >> 1 ? 2 ** 20 : 2 ** -20 * (1 + j);
        masses[(nb + i) * nb + j] = 2 ** (j % 3);
      }
    }
    const shape = { heads: 2, blocks: nb };
    expect(Array.from(await b.blockSelect(masses, shape, o))).toEqual(Array.from(await reference.blockSelect(masses, shape, o)));
  }, 120_000);

  it('the composed layer on the device equals the reference: budget and indices exact, mask = the rule on its masses, output', () =>
    fc.assert(
      fc.asyncProperty(layerArb, async ({ input, options }) => {
        const res = await b.tokenSparseAttention(input, options);
        const ref = await reference.tokenSparseAttention(input, options);
        expect(res.budget).toEqual(ref.budget);
        expect(res.indices).toEqual(ref.indices);
        const bs = res.blockSparse;
        check(bs !== undefined, () => 'no blockSparse result');
        expect(bs.composed).toBe(ref.indices !== null);
        const x = res.indices ? compactInput(input, res.indices, res.keptLength) : input;
        const masses = await b.blockScores(x, options);
        checkClose('masses vs reference', masses, await reference.blockScores(x, options), 1e-4, x.heads, 1);
        expect(Array.from(bs.mask)).toEqual(Array.from(await reference.blockSelect(masses, { heads: x.heads, blocks: bs.blocks }, options)));
        const out = await reference.attendBlocks(x, bs.mask, options);
        const expected = res.indices ? scatterCompact(out, res.indices, res.keptLength, input.heads, input.headDim, input.seqLen) : out;
        checkClose('output vs reference', res.output, expected, 2e-5, input.heads, input.headDim);
      }),
      { numRuns: 6 },
    ), 300_000);

  it('tokenSparseAttentionGpu with blockSparse equals the Float32Array path bit for bit (output, indices, mask)', () =>
    fc.assert(
      fc.asyncProperty(layerArb, async ({ input, options }) => {
        const host = await b.tokenSparseAttention(input, options);
        const [q, k, v] = [input.q, input.k, input.v].map((x) => toGpu(b, x));
        const res = await b.tokenSparseAttentionGpu({ ...input, q: q!, k: k!, v: v! }, options);
        await res.done;
        const info = await res.info();
        expect(info.indices).toEqual(host.indices);
        expect(info.blockSparse).toEqual(host.blockSparse);
        expect(Object.keys(await res.stageMs)).toEqual(expect.arrayContaining(['blockScores', 'blockSelect', 'attendBlocks']));
        expect(await readBuffer(b, res.output, host.output.byteLength)).toEqual(host.output);
        for (const buf of [q, k, v, res.output]) buf!.destroy();
      }),
      { numRuns: 4 },
    ), 300_000);

  it('the block rule (first step, pinned rates): a slow blockScores routes to plain attention, a fast one runs the block stages unchanged', async () => {
    const base = { attendRate: 1e7, attendFixedMs: 0, compactPenalty: 1, scoreRate: 1e12, selectMsPerToken: 0, minGain: 0.05, blockScoreMsPerRow: 0, blockSelectMsPerBlock: 0, blockAttendPenalty: 1 };
    const [slow, fast] = await Promise.all([
      createWebGpuBackend({ ...ADAPTER, costModel: { ...base, blockScoreRate: 1 } }),
      // Free scoring and attendBlocks at half the attention rate: even a share of 1 (one block row) pays.
      createWebGpuBackend({ ...ADAPTER, costModel: { ...base, blockScoreRate: 1e15, blockAttendPenalty: 0.5 } }),
    ]);
    try {
      await fc.assert(
        fc.asyncProperty(layerArb, async ({ input, options }) => {
          const plainOptions = { ...options, blockSparse: undefined };
          const [s, f, off, plain] = [
            await slow.tokenSparseAttention(input, options),
            await fast.tokenSparseAttention(input, options),
            await b.tokenSparseAttention(input, options),
            await slow.tokenSparseAttention(input, plainOptions),
          ];
          expect(s.blockDecision?.verdict).toBe('not-worth-it');
          expect(s.blockDecision?.detail).toMatch(/even the least share/);
          expect(s.blockSparse).toBeUndefined();
          expect(s.output).toEqual(plain.output);
          expect(f.blockDecision?.verdict).toBe('run');
          // The token rule may run the layer dense (L' too close to L at these rates): then the block
          // stages ran on every row, as with coverage 0 and the rule off.
          const tokenSkipped = f.budget.mode === 'dense' && f.budget.reason === 'not-worth-it';
          const ref = tokenSkipped ? await b.tokenSparseAttention(input, { ...options, coverage: 0 }) : off;
          expect(f.blockSparse?.mask).toEqual(ref.blockSparse?.mask);
          expect(f.indices).toEqual(ref.indices);
          expect(f.output).toEqual(ref.output);
        }),
        { numRuns: 3 },
      );
    } finally {
      await slow.dispose();
      await fast.dispose();
    }
  }, 300_000);
});
