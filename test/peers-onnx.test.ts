/**
 * The ONNX Runtime peers of the CPU benchmark (harness/tools/peers/onnx.ts): the attention graph built
 * there must compute causal GQA attention, in onnxruntime-node (GroupQueryAttention) and in
 * onnxruntime-web's wasm backend (MultiHeadAttention with K/V expanded), on random small shapes.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { generateInput, type InputKind } from '../harness/core/generators.js';
import { ONNX_PEERS } from '../harness/tools/peers/onnx.js';
import { PEERS } from '../harness/tools/peers/index.js';
import { createReferenceBackend } from '../reference/index.js';
import { checkClose } from './shared/checks.js';
import { tolerances } from './shared/tolerances.js';

const shapeArb = fc.record({
  kvHeads: fc.integer({ min: 1, max: 3 }),
  group: fc.integer({ min: 1, max: 4 }),
  headDim: fc.integer({ min: 1, max: 8 }).map((x) => 8 * x), // GroupQueryAttention needs D % 8 == 0
  seqLen: fc.integer({ min: 1, max: 120 }),
  kind: fc.constantFrom<InputKind>('gaussian', 'structured'),
  seed: fc.integer({ min: 0, max: 0x7fffffff }),
});

describe('ONNX Runtime peers', () => {
  it('are registered for the bench beside the wasm backend', () => {
    for (const f of ONNX_PEERS) {
      expect(PEERS).toContain(f);
      expect(f.comparesWith).toEqual(['wasm']);
    }
  });

  it('onnxruntime-node (GroupQueryAttention) says it needs D % 8 == 0', async () => {
    const node = ONNX_PEERS.find((f) => f.name.startsWith('onnxruntime-node'))!;
    const err = await node.create({ heads: 2, kvHeads: 1, headDim: 12, seqLen: 16 }, 1).catch((e: unknown) => e);
    expect((err as Error).message).toMatch(/multiple of 8, got 12/);
  });

  for (const factory of ONNX_PEERS) {
    it(`${factory.name}: causal attention equal to the reference on random shapes`, async () => {
      const reference = createReferenceBackend();
      await fc.assert(
        fc.asyncProperty(shapeArb, async (r) => {
          const shape = { heads: r.kvHeads * r.group, kvHeads: r.kvHeads, headDim: r.headDim, seqLen: r.seqLen };
          const input = generateInput(r.kind, shape, r.seed);
          const peer = await factory.create(shape, 1);
          try {
            const out = await peer.dense(input);
            checkClose(peer.name, out, await reference.dense(input), tolerances('float32', input).outAbs, shape.heads, shape.headDim);
          } finally {
            await peer.dispose();
          }
        }),
        { numRuns: 8 },
      );
    });
  }
});
