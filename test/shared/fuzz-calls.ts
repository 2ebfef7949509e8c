/**
 * The fuzzer's calls: a fast-check arbitrary of random public-API calls (random shapes, options,
 * stage inputs, and at most one thing broken), each with what it must do according to an oracle
 * of what is valid written from the API contract (README, core/interface.ts), and a check of the
 * result of a valid call against the f64 oracle (test/shared/oracle.ts).
 */
import fc from 'fast-check';
import { generateInput, Rng, type InputKind } from '../../harness/core/generators.js';
import type { AttentionInput, Backend, Budget, ResolvedTsaOptions, ScoreShape, TsaResult } from '../../harness/core/interface.js';
import type { TsaInputErrorCode } from '../../harness/core/errors.js';
import { STAGES } from '../../harness/core/stages.js';
import { check, checkAscending, checkClose, checkCountRule, checkPrunedRowsZero, checkRelClose, checkSelectionValid, checkWindowKept } from './checks.js';
import { maxAbs, oracleOutput, allPositions, poolF64, scoresF64, sortedLayerCumsum } from './oracle.js';
import { tolerances } from './tolerances.js';

export type Method = 'scores' | 'pool' | 'budget' | 'select' | 'attendSelected' | 'dense' | 'tokenSparseAttention';
const INPUT_METHODS: Method[] = ['scores', 'attendSelected', 'dense', 'tokenSparseAttention'];
const SCORE_METHODS: Method[] = ['pool', 'budget', 'select'];

/** What a call must do: resolve with a correct result, or reject with this TsaInputError code, or TsaAbortError. */
export type Expected = { kind: 'result' } | { kind: 'input-error'; code: TsaInputErrorCode } | { kind: 'abort' };

/** One drawn call, as data (printable), built into arguments by `buildCall`. */
export interface CallCase {
  method: Method;
  heads: number;
  kvHeads: number;
  headDim: number;
  seqLen: number;
  prefixLen: number;
  kind: InputKind;
  seed: number;
  options: ResolvedTsaOptions;
  /** Position parameters of select's keep and attendSelected's kept length, in [0, 1). */
  u: number;
  /** Q/K/V over a SharedArrayBuffer (valid: every backend must read them). */
  shared: boolean;
  /** The one thing broken, or null. */
  mutation: string | null;
}

/** A built call: run(b) calls the method; expected and check say what must happen. */
export interface BuiltCall {
  c: CallCase;
  run(b: Backend): Promise<unknown>;
  expected: Expected;
  /** Throws (with a message) when a resolved value is wrong. */
  check(value: unknown): void;
}

/** Every mutation, the methods it applies to and the error it must give. */
const MUTATIONS: Record<string, { methods: Method[]; code: TsaInputErrorCode | 'abort' }> = {
  'input null': { methods: INPUT_METHODS, code: 'TYPE' },
  'q one short': { methods: INPUT_METHODS, code: 'SHAPE' },
  'k a Float64Array': { methods: INPUT_METHODS, code: 'TYPE' },
  'v missing': { methods: INPUT_METHODS, code: 'TYPE' },
  'NaN in q': { methods: INPUT_METHODS, code: 'NON_FINITE' },
  'Infinity in k': { methods: INPUT_METHODS, code: 'NON_FINITE' },
  '-Infinity in v': { methods: INPUT_METHODS, code: 'NON_FINITE' },
  'heads 0': { methods: INPUT_METHODS, code: 'HEADS' },
  'seqLen 2.5': { methods: INPUT_METHODS, code: 'SHAPE' },
  'seqLen 2^31': { methods: INPUT_METHODS, code: 'SHAPE' },
  'v element 3e38': { methods: INPUT_METHODS, code: 'RANGE' },
  'coverage 1': { methods: ['scores', 'pool', 'budget', 'select', 'tokenSparseAttention', 'dense', 'attendSelected'], code: 'OPTION' },
  'coverage NaN': { methods: ['scores', 'budget', 'tokenSparseAttention'], code: 'OPTION' },
  'coverage a string': { methods: ['pool', 'dense', 'tokenSparseAttention'], code: 'OPTION' },
  'window 0': { methods: ['scores', 'select', 'tokenSparseAttention'], code: 'OPTION' },
  'window 2^31': { methods: ['scores', 'pool', 'select', 'tokenSparseAttention'], code: 'OPTION' },
  'window 2^31 - 1': { methods: SCORE_METHODS, code: 'OPTION' },
  'poolKernel even': { methods: ['pool', 'tokenSparseAttention', 'dense'], code: 'OPTION' },
  'poolKernel 2^31 + 1': { methods: ['pool', 'budget', 'tokenSparseAttention'], code: 'OPTION' },
  'minTokens 0': { methods: ['budget', 'tokenSparseAttention', 'attendSelected'], code: 'OPTION' },
  'unknown option': { methods: ['scores', 'pool', 'budget', 'select', 'attendSelected', 'dense', 'tokenSparseAttention'], code: 'OPTION' },
  'option toString': { methods: ['pool', 'dense', 'tokenSparseAttention'], code: 'OPTION' },
  'option __proto__ (JSON)': { methods: ['scores', 'budget', 'tokenSparseAttention'], code: 'OPTION' },
  'options an array': { methods: ['select', 'dense', 'tokenSparseAttention'], code: 'OPTION' },
  'options a Map': { methods: ['pool', 'attendSelected', 'tokenSparseAttention'], code: 'OPTION' },
  'signal not an AbortSignal': { methods: ['scores', 'budget', 'tokenSparseAttention'], code: 'OPTION' },
  'signal already aborted': { methods: ['scores', 'pool', 'budget', 'select', 'attendSelected', 'dense', 'tokenSparseAttention'], code: 'abort' },
  'a negative score': { methods: SCORE_METHODS, code: 'NON_FINITE' },
  'a NaN score': { methods: SCORE_METHODS, code: 'NON_FINITE' },
  'scores one short': { methods: SCORE_METHODS, code: 'SHAPE' },
  'scores a Float64Array': { methods: SCORE_METHODS, code: 'TYPE' },
  'shape null': { methods: SCORE_METHODS, code: 'TYPE' },
  'shape heads 0': { methods: SCORE_METHODS, code: 'HEADS' },
  'keep 0': { methods: ['select'], code: 'OPTION' },
  'keep prefixLen + 1': { methods: ['select'], code: 'OPTION' },
  'indices unsorted': { methods: ['attendSelected'], code: 'INDICES' },
  'index = seqLen': { methods: ['attendSelected'], code: 'INDICES' },
  'indices a Uint32Array': { methods: ['attendSelected'], code: 'TYPE' },
  'indices one short': { methods: ['attendSelected'], code: 'SHAPE' },
  'keptLength 0': { methods: ['attendSelected'], code: 'INDICES' },
};

/** Random calls: about one in three valid, the others with one thing broken. */
export const callCaseArb: fc.Arbitrary<CallCase> = fc
  .record({
    method: fc.constantFrom<Method>('scores', 'pool', 'budget', 'select', 'attendSelected', 'dense', 'tokenSparseAttention'),
    kvHeads: fc.integer({ min: 1, max: 3 }),
    group: fc.integer({ min: 1, max: 3 }),
    headDim: fc.oneof(fc.integer({ min: 1, max: 24 }), fc.constantFrom(32, 64)),
    seqLen: fc.integer({ min: 1, max: 200 }),
    prefixLen: fc.integer({ min: 1, max: 300 }),
    kind: fc.constantFrom<InputKind>('gaussian', 'structured'),
    seed: fc.integer({ min: 0, max: 0x7fffffff }),
    coverage: fc.oneof(fc.constant(0), fc.double({ min: 0, max: 0.999, noNaN: true })),
    window: fc.oneof(fc.integer({ min: 1, max: 16 }), fc.integer({ min: 1, max: 220 })),
    poolKernel: fc.oneof(fc.constantFrom(1, 3, 5, 7, 9), fc.constant(2 ** 31 - 1)),
    minTokens: fc.oneof(fc.integer({ min: 1, max: 64 }), fc.integer({ min: 1, max: 400 })),
    u: fc.double({ min: 0, max: 0.999, noNaN: true }),
    shared: fc.boolean(),
    broken: fc.oneof({ arbitrary: fc.constant(false), weight: 1 }, { arbitrary: fc.constant(true), weight: 2 }),
    pick: fc.nat(),
  })
  .map((r): CallCase => {
    const applicable = Object.keys(MUTATIONS).filter((m) => MUTATIONS[m]!.methods.includes(r.method));
    return {
      method: r.method,
      heads: r.kvHeads * r.group,
      kvHeads: r.kvHeads,
      headDim: r.headDim,
      seqLen: r.seqLen,
      prefixLen: r.prefixLen,
      kind: r.kind,
      seed: r.seed,
      options: { coverage: r.coverage, window: r.window, poolKernel: r.poolKernel, minTokens: r.minTokens },
      u: r.u,
      shared: r.shared,
      mutation: r.broken ? applicable[r.pick % applicable.length]! : null,
    };
  });

/** A copy of `a` over a SharedArrayBuffer. */
function onShared(a: Float32Array): Float32Array {
  const s = new Float32Array(new SharedArrayBuffer(a.byteLength));
  s.set(a);
  return s;
}

function withAt<T extends Float32Array | Int32Array>(a: T, i: number, x: number): T {
  const c = a.slice() as T;
  c[i % c.length] = x;
  return c;
}

/** Random pooled-like scores [H][P]: non-negative, with zeros and ties now and then. */
function randomScores(H: number, P: number, seed: number): Float32Array {
  const rng = new Rng(seed);
  return Float32Array.from({ length: H * P }, () => {
    const x = rng.uniform();
    return x < 0.1 ? 0 : x < 0.2 ? 0.5 / P : x / P;
  });
}

/** Random kept sets: per head `n` distinct ascending positions of [0, L). */
function randomIndices(H: number, L: number, n: number, seed: number): Int32Array {
  const rng = new Rng(seed);
  const out = new Int32Array(H * n);
  for (let h = 0; h < H; h++) {
    const all = Array.from({ length: L }, (_, i) => i);
    for (let i = L - 1; i > 0; i--) {
      const j = rng.u32() % (i + 1);
      [all[i], all[j]] = [all[j]!, all[i]!];
    }
    out.set(all.slice(0, n).sort((a, b) => a - b), h * n);
  }
  return out;
}

/** The oracle's f32 range rule (README "Input contract"): RANGE when the f32 logits or output sum could overflow. */
function overflows(x: AttentionInput): boolean {
  const limit = 3.4028234663852886e38 / 4;
  const D = x.headDim;
  return maxAbs(x.q) * maxAbs(x.k) * D * Math.max(1, Math.LOG2E / Math.sqrt(D)) > limit || maxAbs(x.v) * x.seqLen > limit;
}

function brokenOptions(m: string, o: ResolvedTsaOptions): unknown {
  const edits: Record<string, () => unknown> = {
    'coverage 1': () => ({ ...o, coverage: 1 }),
    'coverage NaN': () => ({ ...o, coverage: NaN }),
    'coverage a string': () => ({ ...o, coverage: '0.1' }),
    'window 0': () => ({ ...o, window: 0 }),
    'window 2^31': () => ({ ...o, window: 2 ** 31 }),
    'window 2^31 - 1': () => ({ ...o, window: 2 ** 31 - 1 }),
    'poolKernel even': () => ({ ...o, poolKernel: 4 }),
    'poolKernel 2^31 + 1': () => ({ ...o, poolKernel: 2 ** 31 + 1 }),
    'minTokens 0': () => ({ ...o, minTokens: 0 }),
    'unknown option': () => ({ ...o, windowSize: 8 }),
    'option toString': () => ({ ...o, toString: () => 'x' }),
    'option __proto__ (JSON)': () => JSON.parse(`{"coverage": ${o.coverage}, "__proto__": {"window": 1}}`),
    'options an array': () => [o.coverage],
    'options a Map': () => new Map(Object.entries(o)),
    'signal not an AbortSignal': () => ({ ...o, signal: { aborted: true } }),
    'signal already aborted': () => ({ ...o, signal: AbortSignal.abort(new Error('fuzz')) }),
  };
  return edits[m]?.() ?? o;
}

/** Builds the arguments of a drawn call, what it must do, and the check of its result. */
export function buildCall(c: CallCase): BuiltCall {
  const m = c.mutation;
  const o = c.options;
  const options = m ? brokenOptions(m, o) : o;
  const expectedOf = (): Expected => {
    if (m) {
      const code = MUTATIONS[m]!.code;
      return code === 'abort' ? { kind: 'abort' } : { kind: 'input-error', code };
    }
    return { kind: 'result' };
  };
  if (SCORE_METHODS.includes(c.method)) {
    const shape: ScoreShape = { heads: c.heads, prefixLen: c.prefixLen };
    let scores = randomScores(c.heads, c.prefixLen, c.seed);
    let s: unknown = scores;
    let sh: unknown = shape;
    if (m === 'a negative score') s = withAt(scores, c.seed, -1e-3);
    if (m === 'a NaN score') s = withAt(scores, c.seed, NaN);
    if (m === 'scores one short') s = scores.subarray(1);
    if (m === 'scores a Float64Array') s = Float64Array.from(scores);
    if (m === 'shape null') sh = null;
    if (m === 'shape heads 0') sh = { heads: 0, prefixLen: c.prefixLen };
    const keep = m === 'keep 0' ? 0 : m === 'keep prefixLen + 1' ? c.prefixLen + 1 : 1 + Math.floor(c.u * c.prefixLen);
    const args = [s as Float32Array, sh as ScoreShape] as const;
    const run = (b: Backend): Promise<unknown> =>
      c.method === 'pool'
        ? b.pool(...args, options as ResolvedTsaOptions)
        : c.method === 'budget'
          ? b.budget(...args, options as ResolvedTsaOptions)
          : b.select(...args, keep, options as ResolvedTsaOptions);
    return { c, run, expected: expectedOf(), check: (value) => checkScoreStage(c, scores, shape, keep, value) };
  }
  const clean = generateInput(c.kind, { heads: c.heads, kvHeads: c.kvHeads, headDim: c.headDim, seqLen: c.seqLen }, c.seed);
  const base: AttentionInput = c.shared ? { ...clean, q: onShared(clean.q), k: onShared(clean.k), v: onShared(clean.v) } : clean;
  const inputEdits: Record<string, () => unknown> = {
    'input null': () => null,
    'q one short': () => ({ ...base, q: base.q.subarray(1) }),
    'k a Float64Array': () => ({ ...base, k: Float64Array.from(base.k) }),
    'v missing': () => ({ ...base, v: undefined }),
    'NaN in q': () => ({ ...base, q: withAt(base.q, c.seed, NaN) }),
    'Infinity in k': () => ({ ...base, k: withAt(base.k, c.seed, Infinity) }),
    '-Infinity in v': () => ({ ...base, v: withAt(base.v, c.seed, -Infinity) }),
    'heads 0': () => ({ ...base, heads: 0 }),
    'seqLen 2.5': () => ({ ...base, seqLen: 2.5 }),
    'seqLen 2^31': () => ({ ...base, seqLen: 2 ** 31 }),
    'v element 3e38': () => ({ ...base, v: withAt(base.v, c.seed, 3e38) }),
  };
  const input = (m && inputEdits[m] ? inputEdits[m]() : base) as AttentionInput;
  const L = c.seqLen;
  const n = m === 'keptLength 0' ? 0 : 1 + Math.floor(c.u * L);
  const good = randomIndices(c.heads, L, Math.max(n, 1), c.seed);
  const indexEdits: Record<string, () => unknown> = {
    'indices unsorted': () => (n >= 2 ? withAt(good, 0, good[1]!) : withAt(good, 0, -1)),
    'index = seqLen': () => withAt(good, n - 1, L),
    'indices a Uint32Array': () => Uint32Array.from(good),
    'indices one short': () => good.subarray(1),
  };
  const indices = (m && indexEdits[m] ? indexEdits[m]() : good) as Int32Array;
  const opt = options as ResolvedTsaOptions;
  const run = (b: Backend): Promise<unknown> => {
    switch (c.method) {
      case 'scores':
        return b.scores(input, opt);
      case 'attendSelected':
        return b.attendSelected(input, indices, n, opt);
      case 'dense':
        return b.dense(input, opt);
      default:
        return b.tokenSparseAttention(input, opt);
    }
  };
  let expected = expectedOf();
  // The oracle of what is valid beyond the mutation: the f32 range rule applies to every input,
  // and only scoring needs a prefix (W < L); both are validation, which comes before the signal.
  const validated = expected.kind === 'result' || expected.kind === 'abort';
  if (validated && overflows(base)) expected = { kind: 'input-error', code: 'RANGE' };
  else if (validated && c.method === 'scores' && o.window >= L) expected = { kind: 'input-error', code: 'OPTION' };
  return { c, run, expected, check: (value) => checkInputStage(c, clean, good, n, value) };
}

function checkScoreStage(c: CallCase, scores: Float32Array, shape: ScoreShape, keep: number, value: unknown): void {
  const o = c.options;
  const { heads: H, prefixLen: P } = shape;
  if (c.method === 'pool') {
    check(value instanceof Float32Array, () => `pool returned ${String(value)}`);
    checkRelClose('pool vs f64', value, poolF64(scores, H, P, o.poolKernel), 1e-5, P);
  } else if (c.method === 'budget') {
    checkBudget(value as Budget, sortedLayerCumsum(scores, H, P), o, (P + 4) * 2 ** -24 * o.coverage + 1e-11);
  } else {
    check(value instanceof Int32Array && value.length === H * (keep + o.window), () => `select returned ${String(value)}`);
    checkAscending(value, keep + o.window, H, P + o.window);
    checkWindowKept(value, keep, H, P + o.window, o.window);
    checkSelectionValid(value, keep, H, o.window, scores, 1e-6);
  }
}

function checkBudget(b: Budget, cum: Float64Array, o: ResolvedTsaOptions, tol: number): void {
  check(b !== null && typeof b === 'object' && (b.mode === 'sparse' || b.mode === 'dense'), () => `budget returned ${JSON.stringify(b)}`);
  checkCountRule(b, cum, o, tol);
}

function checkInputStage(c: CallCase, input: AttentionInput, indices: Int32Array, n: number, value: unknown): void {
  const o = c.options;
  const { heads: H, headDim: D, seqLen: L } = input;
  const tol = tolerances('float32', input);
  if (c.method === 'scores') {
    check(value instanceof Float32Array, () => `scores returned ${String(value)}`);
    checkRelClose('scores vs f64', value, scoresF64(input, o.window), tol.scoreRel, L - o.window);
    return;
  }
  if (c.method === 'dense') {
    check(value instanceof Float32Array, () => `dense returned ${String(value)}`);
    checkClose('dense vs f64', value, oracleOutput(input, allPositions(H, L), L), tol.outAbs, H, D);
    return;
  }
  if (c.method === 'attendSelected') {
    check(value instanceof Float32Array, () => `attendSelected returned ${String(value)}`);
    checkPrunedRowsZero(value, indices, n, input);
    checkClose('attendSelected vs f64', value, oracleOutput(input, indices, n), tol.outAbs, H, D);
    return;
  }
  const r = value as TsaResult;
  check(r !== null && typeof r === 'object' && r.output instanceof Float32Array, () => `tokenSparseAttention returned ${String(value)}`);
  check(Object.keys(r.timings).sort().join() === [...STAGES, 'total'].sort().join(), () => `timings keys ${Object.keys(r.timings)}`);
  const P = L - o.window;
  if (r.budget.mode === 'dense') {
    check(r.indices === null && r.keptLength === L, () => `dense result with indices or keptLength ${r.keptLength}`);
    if (P >= 1) checkBudget(r.budget, sortedLayerCumsum(poolF64(scoresF64(input, o.window), H, P, o.poolKernel), H, P), o, tol.cum(o.coverage, P));
    else check(r.budget.reason === 'short-context' || r.budget.reason === 'zero-coverage', () => `W >= L must be dense before scoring, got ${JSON.stringify(r.budget)}`);
    checkClose('dense layer vs f64', r.output, oracleOutput(input, allPositions(H, L), L), tol.outAbs, H, D);
    return;
  }
  const pooled = poolF64(scoresF64(input, o.window), H, P, o.poolKernel);
  checkBudget(r.budget, sortedLayerCumsum(pooled, H, P), o, tol.cum(o.coverage, P));
  check(r.indices !== null && r.keptLength === r.budget.keep + o.window, () => `sparse keptLength ${r.keptLength} != keep ${r.budget.mode === 'sparse' ? r.budget.keep : '?'} + W`);
  checkAscending(r.indices, r.keptLength, H, L);
  checkWindowKept(r.indices, r.budget.keep, H, L, o.window);
  checkSelectionValid(r.indices, r.budget.keep, H, o.window, pooled, tol.pooledRel);
  checkPrunedRowsZero(r.output, r.indices, r.keptLength, input);
  checkClose('kept rows vs f64', r.output, oracleOutput(input, r.indices, r.keptLength), tol.outAbs, H, D);
}
