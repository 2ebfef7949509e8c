/**
 * Typed errors on bad input, through the reference backend: one test per bad input of
 * each public method (the shared suite runs the same table on every backend as
 * `bad-input-errors`), non-finite values anywhere, and that the pipeline validates
 * before any stage runs.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { BackendLostError, BackendUnavailableError, TsaError, TsaInputError } from '../harness/core/errors.js';
import type { AttentionInput, Backend } from '../harness/core/interface.js';
import { runPipeline } from '../harness/core/pipeline.js';
import { magnitudeLimit } from '../harness/core/range.js';
import { createReferenceBackend } from '../reference/index.js';
import { BAD_INPUT_CASES, expectInputError, expectNonFiniteRejected, nonFiniteArb, VALID } from './shared/bad-inputs.js';

const reference = createReferenceBackend();

describe('bad input: TsaInputError with its code and what was expected', () => {
  for (const c of BAD_INPUT_CASES) {
    it(`${c.method}: ${c.what} -> ${c.code}`, () => expectInputError(() => c.call(reference), c.code, c.message));
  }

  it('a NaN or Infinity anywhere in q, k or v is NON_FINITE naming the array and position', async () => {
    await fc.assert(fc.asyncProperty(nonFiniteArb, (c) => expectNonFiniteRejected(reference, c)), { numRuns: 100 });
  });

  it('the range check finds the largest magnitude anywhere (any sign, any position, in views at an offset)', async () => {
    // max|v| * seqLen is bounded by magnitudeLimit('f32'): one element of v just above or below
    // limit / L, at a random position, with a random sign, in a view into a longer buffer.
    const L = VALID.input.seqLen;
    const limit = magnitudeLimit('f32');
    await fc.assert(
      fc.asyncProperty(fc.nat(), fc.boolean(), fc.boolean(), fc.integer({ min: 0, max: 7 }), async (at, above, negative, offset) => {
        const v = VALID.input.v;
        const i = at % v.length;
        const x = (above ? 1.001 : 0.999) * (limit / L) * (negative ? -1 : 1);
        const backing = new Float32Array(offset + v.length);
        backing.set(v, offset);
        backing[offset + i] = x;
        const input = { ...VALID.input, v: backing.subarray(offset, offset + v.length) };
        if (above) await expectInputError(() => reference.dense(input), 'RANGE', /would overflow the f32 output sum/);
        else expect((await reference.dense(input)).every(Number.isFinite)).toBe(true);
      }),
      { numRuns: 40 },
    );
  });

  it('every method of the Backend interface that takes input has bad-input cases', () => {
    const methods = new Set(BAD_INPUT_CASES.map((c) => c.method));
    expect([...methods].sort()).toEqual(['attendSelected', 'budget', 'dense', 'pool', 'scores', 'select', 'tokenSparseAttention']);
  });
});

describe('nothing is computed on bad input', () => {
  /** The reference with every stage recorded, and the pipeline composed from the recorded stages. */
  function recordingBackend(): { backend: Backend; calls: string[] } {
    const calls: string[] = [];
    const ref = createReferenceBackend();
    const backend: Backend = {
      ...ref,
      scores: (...a) => (calls.push('scores'), ref.scores(...a)),
      pool: (...a) => (calls.push('pool'), ref.pool(...a)),
      budget: (...a) => (calls.push('budget'), ref.budget(...a)),
      select: (...a) => (calls.push('select'), ref.select(...a)),
      attendSelected: (...a) => (calls.push('attendSelected'), ref.attendSelected(...a)),
      dense: (...a) => (calls.push('dense'), ref.dense(...a)),
      tokenSparseAttention: (x, o) => runPipeline(backend, x, o),
    };
    return { backend, calls };
  }

  it('the pipeline rejects bad input, q/k/v values or options before calling any stage', async () => {
    const bad: Array<[AttentionInput, object | undefined]> = [
      [{ ...VALID.input, q: VALID.input.q.subarray(1) }, VALID.options],
      [{ ...VALID.input, v: Float32Array.from(VALID.input.v, (x, i) => (i === 300 ? NaN : x)) }, VALID.options],
      [VALID.input, { ...VALID.options, window: 0 }],
      [VALID.input, { ...VALID.options, poolKernel: 2 }],
    ];
    for (const [input, options] of bad) {
      const { backend, calls } = recordingBackend();
      await expect(backend.tokenSparseAttention(input, options)).rejects.toThrow(TsaInputError);
      expect(calls).toEqual([]);
    }
    // A window as long as the sequence is a short context: dense, no scoring (spec step 2.6).
    {
      const { backend, calls } = recordingBackend();
      const res = await backend.tokenSparseAttention(VALID.input, { ...VALID.options, window: 40 });
      expect(res.budget).toMatchObject({ mode: 'dense', reason: 'short-context' });
      expect(calls).toEqual(['dense']);
    }
    // The same recording backend runs every stage on valid input (the recording works).
    const { backend, calls } = recordingBackend();
    const res = await backend.tokenSparseAttention(VALID.input, VALID.options);
    expect(res.budget.mode).toBe('sparse');
    expect(calls).toEqual(['scores', 'pool', 'budget', 'select', 'attendSelected']);
  });
});

describe('error classes', () => {
  it('TsaInputError carries its code, class name and message', () => {
    const e = new TsaInputError('q must be a Float32Array', 'TYPE');
    expect(e).toBeInstanceOf(TsaError);
    expect(e).toBeInstanceOf(Error);
    expect(e.name).toBe('TsaInputError');
    expect(e.inputCode).toBe('TYPE');
    expect(e.code).toBe('TSA_INPUT_TYPE');
    expect(e.message).toBe('q must be a Float32Array');
  });

  it('BackendUnavailableError keeps every reason; BackendLostError has its own code', () => {
    const reasons = [{ backend: 'webgpu', reason: 'no adapter' }];
    const e = new BackendUnavailableError('no backend works here', reasons);
    expect(e.code).toBe('TSA_BACKEND_UNAVAILABLE');
    expect(e.reasons).toEqual(reasons);
    expect(new BackendUnavailableError('x').reasons).toEqual([]);
    const lost = new BackendLostError('device lost');
    expect(lost).toBeInstanceOf(TsaError);
    expect([lost.name, lost.code]).toEqual(['BackendLostError', 'TSA_BACKEND_LOST']);
  });
});
