/**
 * Cancellation (AbortSignal in the per-call options) on the CPU backends:
 * - a signal that has already fired stops every method before it computes, with TsaAbortError;
 * - a long call stops mid-stage: wasm between task batches of one kernel (2 threads: the calling
 *   thread stops the task counter) and between kernel launches, the reference between heads;
 * - an aborted call leaves the backend working: the next call gives the same result as before.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createWasmBackend } from '../assembly/node.js';
import { TsaAbortError } from '../harness/core/errors.js';
import { generateInput } from '../harness/core/generators.js';
import type { AttentionInput, Backend } from '../harness/core/interface.js';
import { createReferenceBackend } from '../reference/index.js';
import { VALID } from './shared/bad-inputs.js';

/** Every public method of `b` with `signal` in the options. */
function everyMethod(b: Backend, signal: AbortSignal): Array<[string, () => Promise<unknown>]> {
  const o = { ...VALID.options, signal };
  return [
    ['scores', () => b.scores(VALID.input, o)],
    ['pool', () => b.pool(VALID.pooled, VALID.shape, o)],
    ['budget', () => b.budget(VALID.pooled, VALID.shape, o)],
    ['select', () => b.select(VALID.pooled, VALID.shape, VALID.keep, o)],
    ['attendSelected', () => b.attendSelected(VALID.input, VALID.indices, VALID.keptLength, o)],
    ['dense', () => b.dense(VALID.input, o)],
    ['tokenSparseAttention', () => b.tokenSparseAttention(VALID.input, o)],
  ];
}

/** Starts `call`, aborts after `afterMs`; resolves with the error and the ms from abort to rejection. */
async function abortDuring(call: (signal: AbortSignal) => Promise<unknown>, afterMs: number): Promise<{ error: unknown; stopMs: number }> {
  const controller = new AbortController();
  const pending = call(controller.signal).then(
    () => new Error('the call completed instead of stopping'),
    (e: unknown) => e,
  );
  await new Promise((r) => setTimeout(r, afterMs));
  const abortedAt = performance.now();
  controller.abort(new Error('stop test'));
  const error = await pending;
  return { error, stopMs: performance.now() - abortedAt };
}

const long: AttentionInput = generateInput('gaussian', { heads: 1, kvHeads: 1, headDim: 64, seqLen: 65536 }, 5);

const backends: Array<[string, () => Promise<Backend>]> = [
  ['reference', async () => createReferenceBackend()],
  ['wasm, 1 thread', () => createWasmBackend({ threads: 1, simd: 'plain' })],
  ['wasm, 2 threads', () => createWasmBackend({ threads: 2, simd: 'plain' })],
];

for (const [name, create] of backends) {
  describe(`abort: ${name}`, () => {
    let b: Backend;
    beforeAll(async () => {
      b = await create();
    });
    afterAll(async () => {
      await b?.dispose();
    });

    it('an already-aborted signal rejects every method with TsaAbortError (carrying the reason), and the backend keeps working', async () => {
      const before = await b.tokenSparseAttention(VALID.input, VALID.options);
      const controller = new AbortController();
      const reason = new Error('cancelled by the caller');
      controller.abort(reason);
      for (const [method, call] of everyMethod(b, controller.signal)) {
        const e = await call().then(() => null, (x: unknown) => x);
        expect(e, method).toBeInstanceOf(TsaAbortError);
        expect((e as TsaAbortError).name).toBe('TsaAbortError');
        expect((e as TsaAbortError).reason).toBe(reason);
        expect((e as TsaAbortError).message).toMatch(/the call was aborted: cancelled by the caller/);
      }
      const after = await b.tokenSparseAttention(VALID.input, VALID.options);
      expect(after.output).toEqual(before.output);
      expect(after.indices).toEqual(before.indices);
    });
  });
}

describe('abort mid-stage', () => {
  let wasm: Backend;
  const reference = createReferenceBackend();
  beforeAll(async () => {
    wasm = await createWasmBackend({ threads: 2, simd: 'plain' });
  });
  afterAll(async () => {
    await wasm?.dispose();
  });

  it('wasm (2 threads): a dense call at L = 65536 stops within a few task batches of the abort, and the backend keeps working', async () => {
    const before = await wasm.tokenSparseAttention(VALID.input, VALID.options);
    // The whole call is about 5e11 flops (tens of seconds here); one attend task is 64 query rows.
    const { error, stopMs } = await abortDuring((signal) => wasm.dense(long, { signal }), 500);
    expect(error).toBeInstanceOf(TsaAbortError);
    expect(stopMs).toBeLessThan(5000);
    const after = await wasm.tokenSparseAttention(VALID.input, VALID.options);
    expect(after.output).toEqual(before.output);
    expect(after.budget).toEqual(before.budget);
  });

  it('wasm (2 threads): tokenSparseAttention stops mid-call too (here in the scoring of a long sequence)', async () => {
    const { error, stopMs } = await abortDuring((signal) => wasm.tokenSparseAttention(long, { signal, minTokens: 1024 }), 300);
    expect(error).toBeInstanceOf(TsaAbortError);
    expect(stopMs).toBeLessThan(5000);
  });

  it('reference: a dense call stops between heads, and the backend keeps working', async () => {
    const input = generateInput('gaussian', { heads: 64, kvHeads: 8, headDim: 32, seqLen: 700 }, 9);
    const small = generateInput('gaussian', { heads: 2, kvHeads: 1, headDim: 8, seqLen: 50 }, 3);
    const before = await reference.dense(small);
    const { error, stopMs } = await abortDuring((signal) => reference.dense(input, { signal }), 50);
    expect(error).toBeInstanceOf(TsaAbortError);
    expect(stopMs).toBeLessThan(5000);
    expect(await reference.dense(small)).toEqual(before);
  });
});
