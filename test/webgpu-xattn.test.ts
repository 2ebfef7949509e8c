/**
 * The webgpu backend and XAttention: its GPU kernels for the block stages are follow-up work, so
 * it is not a BlockSparseStages backend (a compile error where one is required), the library's
 * skeleton (defineBackend) rejects options.blockSparse with TsaInputError('OPTION') before computing, and golden-xattn
 * conformance fails on it rather than skipping it.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import '../harness/backends.js';
import { generateInput } from '../harness/core/generators.js';
import type { Backend, BlockSparseBackend } from '../harness/core/interface.js';
import { createBackend } from '../harness/registry.js';
import { checkXattnRun } from '../harness/tools/conformance-xattn.js';
import { loadXattnRun } from '../harness/tools/golden-xattn.js';
import { createWebGpuBackend } from '../gpu/index.js';
import { expectInputError } from './shared/bad-inputs.js';
import { goldenXattnDir } from './shared/golden-dir.js';

describe('webgpu backend without XAttention kernels', () => {
  let fromRegistry: Backend;
  let fromEntry: Awaited<ReturnType<typeof createWebGpuBackend>>;
  beforeAll(async () => {
    fromRegistry = await createBackend('webgpu', { costRule: false });
    fromEntry = await createWebGpuBackend({ costRule: false });
  }, 120_000);
  afterAll(async () => {
    await fromRegistry?.dispose();
    await fromEntry?.dispose();
  });

  it('is not a BlockSparseStages backend (compile-time)', () => {
    // @ts-expect-error the webgpu backend has no blockScores / blockSelect / attendBlocks yet
    const asBlockSparse: BlockSparseBackend = fromEntry;
    expect(typeof (asBlockSparse as Partial<BlockSparseBackend>).blockScores).toBe('undefined');
  });

  it('tokenSparseAttention with blockSparse rejects with TsaInputError OPTION; without it the backend still works', async () => {
    const input = generateInput('structured', { heads: 2, kvHeads: 1, headDim: 16, seqLen: 300 }, 4);
    const options = { coverage: 0.01, window: 16, minTokens: 64, blockSparse: { method: 'xattention' as const, blockSize: 32, stride: 8 } };
    const message = /blockSparse is not supported by the webgpu backend yet/;
    for (const b of [fromRegistry, fromEntry]) await expectInputError(() => b.tokenSparseAttention(input, options), 'OPTION', message);
    const { blockSparse: _, ...plain } = options;
    const res = await fromRegistry.tokenSparseAttention(input, plain);
    expect(res.blockSparse).toBeUndefined();
    expect(res.output.length).toBe(300 * 2 * 16);
  }, 120_000);

  it('golden-xattn conformance fails on it (no stages, and the pipeline rejects), never skips', async () => {
    const rows = await checkXattnRun(fromRegistry, loadXattnRun(goldenXattnDir(), 'b_struct_h4kv2_d64_l2048__xattn_s16_t0.9'));
    expect(rows.map((r) => [r.stage, r.pass])).toEqual([
      ['blockScores', false],
      ['pipeline', false],
    ]);
    expect(rows[0]!.detail).toMatch(/the webgpu backend has no block-sparse stages/);
    expect(rows[1]!.detail).toMatch(/threw TsaInputError: blockSparse is not supported by the webgpu backend yet/);
  }, 120_000);
});
