/**
 * The webgpu backend's XAttention stages (blockScores, blockSelect, attendBlocks) on the adapter
 * TSA_WEBGPU_ADAPTER names: the shared block-sparse suite (random shapes, block sizes, strides,
 * thresholds; golden-xattn conformance), and the backend's own cases: lengths that are not a
 * multiple of the block size, odd head dimensions, the mask rule on adversarial masses.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateInput } from '../harness/core/generators.js';
import type { BlockSparseBackend } from '../harness/core/interface.js';
import { createWebGpuBackend } from '../gpu/index.js';
import { createReferenceBackend } from '../reference/index.js';
import { describeBlockSparseSuite } from './shared/block-sparse-suite.js';
import { checkClose } from './shared/checks.js';
import { ADAPTER } from './shared/webgpu-adapter.js';

// Few head dimensions: Mesa compiles each kernel variant for tens of seconds (64: the golden's).
describeBlockSparseSuite({
  name: 'webgpu',
  create: () => createWebGpuBackend({ ...ADAPTER, costRule: false, profileStages: true }),
  numRuns: 3,
  maxSeqLen: 600,
  headDims: [7, 64],
});

describe('webgpu XAttention stages', () => {
  let b: BlockSparseBackend;
  const reference = createReferenceBackend();
  beforeAll(async () => {
    b = await createWebGpuBackend({ ...ADAPTER, costRule: false });
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
});
