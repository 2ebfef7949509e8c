/**
 * Bad inputs for every public method of a backend, each with the typed error it
 * must produce: `TsaInputError` with the right `inputCode` and a message that
 * says what was expected. Shared by test/errors.test.ts (one test per case) and
 * the shared backend suite (property `bad-input-errors`, so every backend gets it).
 */
import fc from 'fast-check';
import { expect } from 'vitest';
import { TsaInputError, type TsaInputErrorCode } from '../../harness/core/errors.js';
import { generateInput, Rng } from '../../harness/core/generators.js';
import type { AttentionInput, Backend, ScoreShape, TsaOptions } from '../../harness/core/interface.js';

/** A small valid call of every method; each bad case breaks one thing of it. */
export const VALID = (() => {
  const input = generateInput('gaussian', { heads: 4, kvHeads: 2, headDim: 8, seqLen: 40 }, 7);
  const options = { coverage: 0.1, window: 8, poolKernel: 3, minTokens: 4 } satisfies TsaOptions;
  const shape: ScoreShape = { heads: 4, prefixLen: 32 };
  const rng = new Rng(11);
  const pooled = Float32Array.from({ length: 4 * 32 }, () => rng.uniform() / 32);
  const keep = 10;
  // Per head: every third prefix position up to `keep` of them, then the window 32..39.
  const keptLength = keep + 8;
  const indices = new Int32Array(4 * keptLength);
  for (let h = 0; h < 4; h++) {
    for (let r = 0; r < keep; r++) indices[h * keptLength + r] = 3 * r + (h % 3);
    for (let w = 0; w < 8; w++) indices[h * keptLength + keep + w] = 32 + w;
  }
  return { input, options, shape, pooled, keep, keptLength, indices };
})();

export interface BadInputCase {
  method: 'scores' | 'pool' | 'budget' | 'select' | 'attendSelected' | 'dense' | 'tokenSparseAttention';
  what: string;
  code: TsaInputErrorCode;
  /** What the message must say (what was expected). */
  message: RegExp;
  call(b: Backend): Promise<unknown>;
}

type InputMethod = 'scores' | 'attendSelected' | 'dense' | 'tokenSparseAttention';
type OptionMethod = 'scores' | 'pool' | 'budget' | 'select' | 'tokenSparseAttention';
type ScoreMethod = 'pool' | 'budget' | 'select';

/** Calls `method` with `input` in place of the valid input (loosely typed: the point is bad values). */
function withInput(b: Backend, method: InputMethod, input: unknown): Promise<unknown> {
  const x = input as AttentionInput;
  switch (method) {
    case 'scores':
      return b.scores(x, VALID.options);
    case 'attendSelected':
      return b.attendSelected(x, VALID.indices, VALID.keptLength);
    case 'dense':
      return b.dense(x);
    case 'tokenSparseAttention':
      return b.tokenSparseAttention(x, VALID.options);
  }
}

function withOptions(b: Backend, method: OptionMethod, options: unknown): Promise<unknown> {
  const o = options as TsaOptions;
  switch (method) {
    case 'scores':
      return b.scores(VALID.input, o);
    case 'pool':
      return b.pool(VALID.pooled, VALID.shape, o);
    case 'budget':
      return b.budget(VALID.pooled, VALID.shape, o);
    case 'select':
      return b.select(VALID.pooled, VALID.shape, VALID.keep, o);
    case 'tokenSparseAttention':
      return b.tokenSparseAttention(VALID.input, o);
  }
}

function withScores(b: Backend, method: ScoreMethod, scores: unknown, shape: ScoreShape): Promise<unknown> {
  const s = scores as Float32Array;
  switch (method) {
    case 'pool':
      return b.pool(s, shape, VALID.options);
    case 'budget':
      return b.budget(s, shape, VALID.options);
    case 'select':
      return b.select(s, shape, VALID.keep, VALID.options);
  }
}

const INPUT_METHODS: InputMethod[] = ['scores', 'attendSelected', 'dense', 'tokenSparseAttention'];
const OPTION_METHODS: OptionMethod[] = ['scores', 'pool', 'budget', 'select', 'tokenSparseAttention'];
const SCORE_METHODS: ScoreMethod[] = ['pool', 'budget', 'select'];

const { input: X } = VALID;
const shorter = (a: Float32Array) => a.subarray(0, a.length - 1);

/** Each entry: what is wrong, the input with it, the code and the expected message. */
const BAD_INPUTS: Array<[string, unknown, TsaInputErrorCode, RegExp]> = [
  ['input is null', null, 'TYPE', /input must be an object/],
  ['q one element short', { ...X, q: shorter(X.q) }, 'SHAPE', /q has 1279 elements, expected 1280 = \[heads=4\]\[seqLen=40\]\[headDim=8\]/],
  ['k one element long', { ...X, k: new Float32Array(X.k.length + 1) }, 'SHAPE', /k has 641 elements, expected 640 = \[kvHeads=2\]/],
  ['v sized for the query heads', { ...X, v: new Float32Array(X.q.length) }, 'SHAPE', /v has 1280 elements, expected 640/],
  ['q a Float64Array', { ...X, q: Float64Array.from(X.q) }, 'TYPE', /q must be a Float32Array .*got Float64Array/],
  ['k a plain array', { ...X, k: Array.from(X.k) }, 'TYPE', /k must be a Float32Array .*got Array/],
  ['v missing', { ...X, v: undefined }, 'TYPE', /v must be a Float32Array .*got undefined/],
  ['H not a multiple of Hkv', { ...X, heads: 3, q: new Float32Array(3 * 40 * 8) }, 'HEADS', /heads \(3\) must be a multiple of kvHeads \(2\)/],
  ['heads 0', { ...X, heads: 0 }, 'HEADS', /heads must be a positive integer, got 0/],
  ['kvHeads negative', { ...X, kvHeads: -2 }, 'HEADS', /kvHeads must be a positive integer, got -2/],
  ['headDim 0', { ...X, headDim: 0 }, 'SHAPE', /headDim must be a positive integer, got 0/],
  ['headDim not an integer', { ...X, headDim: 2.5 }, 'SHAPE', /headDim must be a positive integer, got 2.5/],
  ['seqLen negative', { ...X, seqLen: -40 }, 'SHAPE', /seqLen must be a positive integer, got -40/],
  ['seqLen NaN', { ...X, seqLen: NaN }, 'SHAPE', /seqLen must be a positive integer, got NaN/],
  ['seqLen 2^31', { ...X, seqLen: 2 ** 31 }, 'SHAPE', /seqLen must be at most 2147483647 \(32-bit kernel indices\), got 2147483648/],
  ['heads 2^32', { ...X, heads: 2 ** 32, kvHeads: 2 }, 'HEADS', /heads must be at most 2147483647 .*got 4294967296/],
  ['output over 2^31 - 1 elements', { ...X, heads: 2 ** 16, kvHeads: 2 ** 16, seqLen: 2 ** 15 }, 'SHAPE', /output \[seqLen=32768\]\[heads\*headDim=65536\*8\] would have 17179869184 elements, more than 2147483647/],
  ['one K element 3e38', { ...X, k: withAt(X.k, 17, 3e38) }, 'RANGE', /would overflow the f32 logits: .* max\|k\| 3\.0000000054977558e\+38.* must be at most 8\.51e\+37/],
  ['q and k at 1e19 each', { ...X, q: X.q.map((x) => x * 1e19), k: X.k.map((x) => x * 1e19) }, 'RANGE', /would overflow the f32 logits/],
  ['one V element 1e37 over 40 rows', { ...X, v: withAt(X.v, 3, 1e37) }, 'RANGE', /would overflow the f32 output sum: max\|v\| \* seqLen = 4\.00e\+38/],
];

const BAD_OPTIONS: Array<[string, unknown, RegExp]> = [
  ['coverage negative', { coverage: -0.01 }, /coverage \(tau\) must be a number in \[0, 1\), got -0.01/],
  ['coverage 1', { coverage: 1 }, /coverage \(tau\) must be a number in \[0, 1\), got 1/],
  ['coverage NaN', { coverage: NaN }, /coverage \(tau\) must be a number in \[0, 1\), got NaN/],
  ['window 0', { window: 0 }, /window must be an integer in \[1, 2147483647\], got 0/],
  ['window not an integer', { window: 2.5 }, /window must be an integer in \[1, 2147483647\], got 2.5/],
  ['poolKernel even', { poolKernel: 4 }, /poolKernel must be odd/],
  ['poolKernel 0', { poolKernel: 0 }, /poolKernel must be an integer in \[1, 2147483647\], got 0/],
  ['minTokens 0', { minTokens: 0 }, /minTokens must be an integer in \[1, 2147483647\], got 0/],
  ['window 2^31', { window: 2 ** 31 }, /window must be an integer in \[1, 2147483647\], got 2147483648/],
  ['poolKernel 2^31 + 1', { poolKernel: 2 ** 31 + 1 }, /poolKernel must be an integer in \[1, 2147483647\], got 2147483649/],
  ['minTokens 2^40', { minTokens: 2 ** 40 }, /minTokens must be an integer in \[1, 2147483647\], got 1099511627776/],
  ['precision unknown', { precision: 'bf16' }, /option precision must be 'f32' or 'f16', got string bf16/],
  ['signal not an AbortSignal', { signal: { aborted: false } }, /option signal must be an AbortSignal, got Object/],
  ['unknown option key', { covrage: 0.01 }, /unknown option 'covrage'; expected one of coverage, window, poolKernel, minTokens, costRule, precision, signal, blockSparse/],
  ['options not an object', 0.005, /options must be a plain object, got number 0.005/],
];

/**
 * Options that are not a plain object's own keys, given whole (not merged into valid options):
 * Object.prototype names, `__proto__` as JSON.parse makes it (an own key), arrays and Maps.
 */
const BAD_OPTION_OBJECTS: Array<[string, unknown, RegExp]> = [
  ['key toString', { toString: 1 }, /unknown option 'toString'/],
  ['key constructor', { constructor: Object }, /unknown option 'constructor'/],
  ['key hasOwnProperty', { hasOwnProperty: 0 }, /unknown option 'hasOwnProperty'/],
  ['key __proto__ from JSON.parse', JSON.parse('{"__proto__": {"window": 0}}'), /unknown option '__proto__'/],
  ['an array', [0.1], /options must be a plain object, got Array/],
  ['a Map', new Map([['coverage', 0.1]]), /options must be a plain object, got Map/],
  ['a Date', new Date(0), /options must be a plain object, got Date/],
  ['null', null, /options must be a plain object, got null/],
];

const BAD_SCORES: Array<[string, unknown, TsaInputErrorCode, RegExp, ScoreShape?]> = [
  ['a negative score', withAt(VALID.pooled, 5, -0.5), 'NON_FINITE', /\[5\] is -0.5; scores must be finite and >= 0/],
  ['a NaN score', withAt(VALID.pooled, 70, NaN), 'NON_FINITE', /\[70\] is NaN; scores must be finite and >= 0/],
  ['an infinite score', withAt(VALID.pooled, 127, Infinity), 'NON_FINITE', /\[127\] is Infinity/],
  ['one score short', shorter(VALID.pooled), 'SHAPE', /has 127 elements, expected 128 = \[heads=4\]\[prefixLen=32\]/],
  ['a Float64Array', Float64Array.from(VALID.pooled), 'TYPE', /must be a Float32Array .*got Float64Array/],
  ['shape heads 0', VALID.pooled, 'HEADS', /heads must be a positive integer, got 0/, { heads: 0, prefixLen: 32 }],
  ['shape prefixLen 0', VALID.pooled, 'SHAPE', /prefixLen must be a positive integer, got 0/, { heads: 4, prefixLen: 0 }],
  ['shape prefixLen 2^31', VALID.pooled, 'SHAPE', /prefixLen must be at most 2147483647 .*got 2147483648/, { heads: 4, prefixLen: 2 ** 31 }],
  ['shape null', VALID.pooled, 'TYPE', /shape must be an object \{heads, prefixLen\}, got null/, null as unknown as ScoreShape],
  ['shape undefined', VALID.pooled, 'TYPE', /shape must be an object \{heads, prefixLen\}, got undefined/, undefined],
];

function withAt(a: Float32Array, i: number, x: number): Float32Array {
  const c = a.slice();
  c[i] = x;
  return c;
}

function indicesWith(edit: (idx: Int32Array) => void): Int32Array {
  const c = VALID.indices.slice();
  edit(c);
  return c;
}

const K = VALID.keptLength;
const BAD_INDICES: Array<[string, unknown, number, TsaInputErrorCode, RegExp]> = [
  ['unsorted', indicesWith((i) => ([i[K + 2], i[K + 3]] = [i[K + 3]!, i[K + 2]!])), K, 'INDICES', /indices of head 1 must be strictly ascending .*entry 3/],
  ['duplicate', indicesWith((i) => (i[2 * K + 4] = i[2 * K + 3]!)), K, 'INDICES', /indices of head 2 must be strictly ascending .*entry 4/],
  ['position == L', indicesWith((i) => (i[4 * K - 1] = 40)), K, 'INDICES', /positions in \[0, 40\); entry 17 is 40/],
  ['negative position', indicesWith((i) => (i[0] = -1)), K, 'INDICES', /positions in \[0, 40\); entry 0 is -1/],
  ['wrong length', VALID.indices.subarray(0, 4 * K - 1), K, 'SHAPE', /indices has 71 elements, expected heads\*keptLength = 4\*18/],
  ['keptLength 0', VALID.indices, 0, 'INDICES', /keptLength must be an integer in \[1, seqLen=40\], got 0/],
  ['keptLength above L', new Int32Array(4 * 41), 41, 'INDICES', /keptLength must be an integer in \[1, seqLen=40\], got 41/],
  ['keptLength not an integer', VALID.indices, 17.5, 'INDICES', /keptLength must be an integer .*got 17.5/],
  ['a plain array', Array.from(VALID.indices), K, 'TYPE', /indices must be an Int32Array/],
  ['a Uint32Array', Uint32Array.from(VALID.indices), K, 'TYPE', /indices must be an Int32Array/],
];

const BAD_KEEP: Array<[string, number]> = [
  ['0', 0],
  ['negative', -3],
  ['above prefixLen', 33],
  ['not an integer', 2.5],
  ['NaN', NaN],
];

/** Every bad-input case of every public method. */
export const BAD_INPUT_CASES: BadInputCase[] = [
  ...INPUT_METHODS.flatMap((method) =>
    BAD_INPUTS.map(([what, input, code, message]) => ({ method, what, code, message, call: (b: Backend) => withInput(b, method, input) })),
  ),
  ...OPTION_METHODS.flatMap((method) =>
    BAD_OPTIONS.map(([what, options, message]) => ({
      method,
      what,
      code: 'OPTION' as const,
      message,
      // Objects are merged into the valid options so that exactly one thing is wrong.
      call: (b: Backend) => withOptions(b, method, typeof options === 'object' ? { ...VALID.options, ...options } : options),
    })),
  ),
  ...OPTION_METHODS.flatMap((method) =>
    BAD_OPTION_OBJECTS.map(([what, options, message]) => ({ method, what: `options ${what}`, code: 'OPTION' as const, message, call: (b: Backend) => withOptions(b, method, options) })),
  ),
  // The window of a score-shaped stage implies L = prefixLen + window, which must be a valid seqLen.
  ...SCORE_METHODS.map((method) => ({
    method,
    what: 'window + prefixLen over 2^31 - 1',
    code: 'OPTION' as const,
    message: /option window \(2147483647\) \+ prefixLen \(32\) = seqLen 2147483679 must be at most 2147483647/,
    call: (b: Backend) => withOptions(b, method, { ...VALID.options, window: 2 ** 31 - 1 }),
  })),
  {
    method: 'select' as const,
    what: 'select output [heads][keep + window] over 2^31 - 1 elements',
    code: 'SHAPE' as const,
    message: /select output \[heads=4\]\[keep \+ window=10\+1073741824\] would have 4294967336 elements/,
    call: (b: Backend) => b.select(VALID.pooled, VALID.shape, VALID.keep, { ...VALID.options, window: 2 ** 30 }),
  },
  // Only scoring needs a prefix; tokenSparseAttention runs such a layer dense (short context).
  ...(['scores'] as const).map((method) => ({
    method,
    what: 'window >= L',
    code: 'OPTION' as const,
    message: /window \(40\) must be smaller than seqLen \(40\)/,
    call: (b: Backend) => withOptions(b, method, { ...VALID.options, window: 40 }),
  })),
  ...SCORE_METHODS.flatMap((method) =>
    // A case without a shape uses the valid one; one with `undefined` passes undefined.
    BAD_SCORES.map(([what, scores, code, message, ...shape]) => ({ method, what, code, message, call: (b: Backend) => withScores(b, method, scores, shape.length ? shape[0]! : VALID.shape) })),
  ),
  ...BAD_INDICES.map(([what, indices, keptLength, code, message]) => ({
    method: 'attendSelected' as const,
    what: `indices ${what}`,
    code,
    message,
    call: (b: Backend) => b.attendSelected(VALID.input, indices as Int32Array, keptLength),
  })),
  ...BAD_KEEP.map(([what, keep]) => ({
    method: 'select' as const,
    what: `keep ${what}`,
    code: 'OPTION' as const,
    message: /keep must be an integer in \[1, prefixLen=32\]/,
    call: (b: Backend) => b.select(VALID.pooled, VALID.shape, keep, VALID.options),
  })),
];

/**
 * Asserts that `call` returns a promise that rejects with `TsaInputError` of `code`, with a
 * message matching `message`. A synchronous throw breaks the async contract and fails too.
 */
export async function expectInputError(call: () => Promise<unknown>, code: TsaInputErrorCode, message: RegExp): Promise<void> {
  let pending: Promise<unknown>;
  try {
    pending = call();
  } catch (e) {
    throw new Error(`threw synchronously instead of returning a rejected promise: ${String(e)}`);
  }
  const error = await pending.then(
    (value) => {
      throw new Error(`resolved (computed a result of type ${(value as object)?.constructor?.name ?? typeof value}) instead of rejecting`);
    },
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(TsaInputError);
  expect((error as TsaInputError).inputCode).toBe(code);
  expect((error as TsaInputError).message).toMatch(message);
}

export interface NonFiniteCase {
  array: 'q' | 'k' | 'v';
  at: number;
  value: number;
  method: InputMethod;
}

/** Where a non-finite value is planted: method, array, position and value, drawn by fast-check. */
export const nonFiniteArb: fc.Arbitrary<NonFiniteCase> = fc
  .record({
    array: fc.constantFrom('q' as const, 'k' as const, 'v' as const),
    at: fc.nat(),
    value: fc.constantFrom(NaN, Infinity, -Infinity),
    method: fc.constantFrom(...INPUT_METHODS),
  })
  .map((r) => ({ ...r, at: r.at % X[r.array].length }));

/** One non-finite value anywhere in q, k or v: NON_FINITE naming the array and the position. */
export async function expectNonFiniteRejected(b: Backend, c: NonFiniteCase): Promise<void> {
  const bad = { ...X, [c.array]: withAt(X[c.array], c.at, c.value) };
  await expectInputError(() => withInput(b, c.method, bad), 'NON_FINITE', new RegExp(`${c.array}\\[${c.at}\\] is ${String(c.value)}; every value must be finite`));
}
