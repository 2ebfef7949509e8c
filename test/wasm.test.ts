/**
 * The WASM SIMD backend, plain-SIMD build, in this process (the relaxed-SIMD build needs a node
 * flag on Node 20: test/wasm-relaxed.test.ts runs it in a child process).
 *
 * - the shared property suite and golden conformance (2 threads);
 * - golden conformance on 1 thread;
 * - every stage against the reference on random shapes (fast-check): pool, budget and select
 *   are computed with the reference's f64 operations in the same order, so they must be
 *   identical; scores within a relative tolerance; dense and attendSelected (same indices)
 *   within an absolute tolerance;
 * - 1 and 2 threads, and any chunking of heads through memory, give bit-identical results
 *   (every task computes the same way whichever thread runs it);
 * - options, variant choice and dispose.
 */
import { execFileSync } from 'node:child_process';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chooseVariant, createWasmBackend, type WasmBackendOptions } from '../assembly/node.js';
import { runConformance } from '../harness/tools/conformance.js';
import { BackendLostError, BackendUnavailableError, TsaInputError } from '../harness/core/errors.js';
import { generateInput, Rng } from '../harness/core/generators.js';
import type { Backend } from '../harness/core/interface.js';
import { createReferenceBackend } from '../reference/index.js';
import { describeBackendSuite } from './shared/backend-suite.js';
import { describeBlockSparseSuite } from './shared/block-sparse-suite.js';
import { checkClose, checkRelClose } from './shared/checks.js';
import { goldenDir } from './shared/golden-dir.js';
import { tolerances } from './shared/tolerances.js';
import { inputOf, pooledArb, randomIndices, stageCaseArb } from './wasm-cases.js';

describeBackendSuite({
  name: 'wasm (simd, 2 threads)',
  create: () => createWasmBackend({ threads: 2, simd: 'plain', costRule: false }),
  skip: {},
});

describeBlockSparseSuite({ name: 'wasm (simd, 2 threads)', create: () => createWasmBackend({ threads: 2, simd: 'plain', costRule: false }) });

const reference = createReferenceBackend();

describe('wasm backend (plain SIMD)', () => {
  let one: Backend;
  let two: Backend;
  beforeAll(async () => {
    one = await createWasmBackend({ threads: 1, simd: 'plain', costRule: false });
    two = await createWasmBackend({ threads: 2, simd: 'plain', costRule: false });
  });
  afterAll(async () => {
    await one?.dispose();
    await two?.dispose();
  });

  it('describes its build and thread count', () => {
    expect(one.name).toBe('wasm');
    expect(one.description).toBe('wasm simd, 1 thread; forced');
    expect(two.description).toBe('wasm simd, 2 threads; forced');
  });

  it('says why it picked its build when not forced', async () => {
    const { variant, why } = await chooseVariant();
    if (variant === 'relaxed') expect(why).toBe('relaxed SIMD accepted');
    else expect(why).toMatch(/rejects the relaxed build \(relaxed SIMD needs Node >= 22, or node --experimental-wasm-relaxed-simd on Node 20\)/);
  });

  it('passes the golden conformance on 1 thread (indices and keep count exact, outputs within 2e-5)', async () => {
    const rows = await runConformance(goldenDir(), [one]);
    expect(rows.length).toBeGreaterThan(20);
    expect(rows.filter((r) => !r.pass).map((r) => `${r.case} ${r.stage}: ${r.detail}`)).toEqual([]);
  });

  it('pool, budget and select equal the reference exactly (ties to the lower position)', async () => {
    await fc.assert(
      fc.asyncProperty(pooledArb, async ({ pooled, shape, options, keep }) => {
        for (const b of [one, two]) {
          expect(await b.pool(pooled, shape, options)).toEqual(await reference.pool(pooled, shape, options));
          expect(await b.budget(pooled, shape, options)).toEqual(await reference.budget(pooled, shape, options));
          expect(await b.select(pooled, shape, keep, options)).toEqual(await reference.select(pooled, shape, keep, options));
        }
      }),
      { numRuns: 40 },
    );
  });

  it('scores match the reference within the relative f32 tolerance; 1 and 2 threads are identical', async () => {
    await fc.assert(
      fc.asyncProperty(stageCaseArb, async (c) => {
        const input = inputOf(c);
        const expected = await reference.scores(input, c.options);
        const got = await one.scores(input, c.options);
        checkRelClose('scores', got, expected, tolerances('float32', input).scoreRel, c.seqLen - c.options.window);
        expect(await two.scores(input, c.options)).toEqual(got);
      }),
      { numRuns: 25 },
    );
  });

  it('dense and attendSelected (same indices) match the reference; 1 and 2 threads are identical', async () => {
    await fc.assert(
      fc.asyncProperty(stageCaseArb, async (c) => {
        const input = inputOf(c);
        const { heads: H, headDim: D, seqLen: L } = input;
        const tol = tolerances('float32', input).outAbs;
        const dense = await one.dense(input);
        checkClose('dense', dense, await reference.dense(input), tol, H, D);
        expect(await two.dense(input)).toEqual(dense);
        const rng = new Rng(c.seed ^ 0x5bd1e995);
        const n = 1 + (rng.u32() % L);
        const idx = randomIndices(H, L, n, rng);
        const sparse = await one.attendSelected(input, idx, n);
        checkClose('attendSelected', sparse, await reference.attendSelected(input, idx, n), tol, H, D);
        expect(await two.attendSelected(input, idx, n)).toEqual(sparse);
      }),
      { numRuns: 20 },
    );
  });

  it('streams heads through memory in chunks (whole groups or parts of one) with identical results', async () => {
    const input = generateInput('structured', { heads: 8, kvHeads: 2, headDim: 40, seqLen: 700 }, 3);
    const o = { window: 64, minTokens: 300, coverage: 0.3 };
    const whole = await two.tokenSparseAttention(input, o);
    expect(whole.budget.mode).toBe('sparse');
    // Bytes per chunk (G = 4): scores ~0.24 MB a head; dense and the sparse stages ~0.6-0.75 MB a
    // head. 2.4e5 streams single heads through every stage, 1.5e6 pairs of heads (part of a KV
    // group) through the sparse stages, 3e6 whole groups.
    for (const chunkBytes of [2.4e5, 1.5e6, 3e6]) {
      const chunked = await createWasmBackend({ threads: 2, simd: 'plain', chunkBytes, costRule: false });
      try {
        const res = await chunked.tokenSparseAttention(input, o);
        expect(res.indices).toEqual(whole.indices);
        expect(res.output).toEqual(whole.output);
        expect(await chunked.dense(input)).toEqual(await two.dense(input));
      } finally {
        await chunked.dispose();
      }
    }
  });

  it('rejects bad options with typed errors', async () => {
    const bad: WasmBackendOptions[] = [{ threads: 0 }, { threads: 1.5 }, { simd: 'avx' as 'plain' }, { chunkBytes: -1 }];
    for (const options of bad) {
      const err = await createWasmBackend(options).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(TsaInputError);
      expect((err as TsaInputError).inputCode).toBe('OPTION');
    }
  });

  it('uses relaxed SIMD exactly when the runtime validates it, and says why not otherwise', async () => {
    let relaxed: string | null = null;
    try {
      relaxed = (await chooseVariant('relaxed')).variant;
    } catch (e) {
      expect(e).toBeInstanceOf(BackendUnavailableError);
      expect((e as Error).message).toMatch(/rejects the relaxed SIMD build.*--experimental-wasm-relaxed-simd/);
    }
    expect((await chooseVariant()).variant).toBe(relaxed ?? 'plain');
    expect((await chooseVariant('plain')).variant).toBe('plain');
  });

  it('a stage call needing more than wasm32\'s 4 GiB is TsaInputError SHAPE (select with a window of 2^30 tokens), and the backend keeps working', async () => {
    const pooled = Float32Array.from({ length: 32 }, (_, i) => (i % 7) / 32);
    const e = await two.select(pooled, { heads: 1, prefixLen: 32 }, 4, { window: 2 ** 30 }).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(TsaInputError);
    expect((e as TsaInputError).inputCode).toBe('SHAPE');
    expect((e as Error).message).toMatch(/needs 4\.00 GiB of wasm memory, more than wasm32's 4 GiB/);
    expect(await two.select(pooled, { heads: 1, prefixLen: 32 }, 4, { window: 3 })).toEqual(await reference.select(pooled, { heads: 1, prefixLen: 32 }, 4, { window: 3 }));
  });

  it('a worker that cannot start (node --input-type, inherited by workers) is BackendUnavailableError with the reason', () => {
    const entry = new URL('../dist/assembly/node.js', import.meta.url).href;
    const script = `import { createWasmBackend } from '${entry}';
      try { const b = await createWasmBackend({ threads: 2, simd: 'plain' }); console.log('created'); await b.dispose(); }
      catch (e) { console.log(e.name + ' | ' + e.message); }`;
    const out = execFileSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', timeout: 60_000 });
    expect(out.trim()).toMatch(/^BackendUnavailableError \| a wasm worker could not start: wasm worker \d+ is gone: --input-type can only be used/);
  });

  it('terminates its workers on dispose; later calls fail with BackendLostError', async () => {
    const b = await createWasmBackend({ threads: 2, simd: 'plain' });
    const input = generateInput('gaussian', { heads: 2, kvHeads: 1, headDim: 16, seqLen: 50 }, 1);
    const pending = b.dense(input);
    await b.dispose();
    expect((await pending).length).toBe(50 * 2 * 16); // a call in flight completes first
    await expect(b.dense(input)).rejects.toBeInstanceOf(BackendLostError);
    await b.dispose();
  });
});
