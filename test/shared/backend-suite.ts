/**
 * The shared conformance and property suite: one run per backend, as TensorFlow.js
 * does. test/<backend>.test.ts calls `describeBackendSuite` with a factory; each
 * property below has a stable id, and a backend that cannot meet one lists it in
 * `skip` with the reason, which shows up as a test named "skipped: <id>: <reason>".
 *
 * Random inputs come from fast-check (fresh seeds every run): shapes H, Hkv, D, L,
 * options W, P, minTokens, tau, Gaussian or heavy-tailed ('structured') values.
 * Expected values come from test/shared/oracle.ts, a float64 implementation
 * independent of reference/stages.ts, and from the reference backend; tolerances
 * are in test/shared/tolerances.ts.
 */
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkCase, type ConformanceRow } from '../../harness/tools/conformance.js';
import { Rng } from '../../harness/core/generators.js';
import { goldenCaseNames, loadGoldenCase } from '../../harness/tools/golden.js';
import type { AttentionInput, Backend, ResolvedTsaOptions, ScoreShape, TsaResult } from '../../harness/core/interface.js';
import { createReferenceBackend } from '../../reference/index.js';
import { caseArb, caseInput, unitArb, type CaseConstraints, type TsaCase } from './arbitraries.js';
import { BAD_INPUT_CASES, expectInputError, expectNonFiniteRejected, nonFiniteArb, VALID } from './bad-inputs.js';
import {
  check,
  checkAscending,
  checkClose,
  checkCountRule,
  checkPrunedRowsZero,
  checkRelClose,
  checkSelectionValid,
  checkWindowKept,
} from './checks.js';
import { goldenDir, goldenDirProblem } from './golden-dir.js';
import { allPositions, maxAbs, oracleOutput, poolF64, scoresF64, sortedLayerCumsum } from './oracle.js';
import { tolerances, U, type Precision, type Tolerances } from './tolerances.js';

export const PROPERTY_IDS = [
  'indices-ascending',
  'window-kept',
  'kept-length',
  'pruned-rows-zero',
  'count-rule',
  'dense-short-context',
  'dense-zero-coverage',
  'gqa-equals-mha',
  'keep-all-equals-dense',
  'kept-rows-match-f64',
  'head-permutation',
  'scores-pool-vs-reference',
  'selection-valid-vs-reference',
  'attend-same-indices-vs-reference',
  'bad-input-errors',
  'inputs-untouched',
  'huge-pool-kernel',
  'golden-conformance',
] as const;
export type PropertyId = (typeof PROPERTY_IDS)[number];

export interface BackendSuiteOptions {
  /** Backend name, used in titles. */
  name: string;
  /** Created once per file (beforeAll), disposed afterAll. */
  create: () => Promise<Backend>;
  /** Explicit per-backend skip list: id -> reason (like TensorFlow.js). */
  skip?: Partial<Record<PropertyId, string>>;
  /** Cap for random shapes (slow backends, e.g. llvmpipe); default 1600. */
  maxSeqLen?: number;
  /** fast-check runs per property; default 10. */
  numRuns?: number;
  /** Golden conformance on all cases (true, the default) or on these case names; false needs skip['golden-conformance']. */
  golden?: boolean | string[];
  /**
   * How the backend computes: 'float32' (default) checks selections by validity within
   * rounding; 'float64' (the reference) demands identical selections and tight outputs;
   * 'float16' (precision 'f16') holds outputs to the f16 contract, golden conformance with f16 calls.
   */
  precision?: Precision;
}

interface Ctx {
  backend: Backend;
  reference: Backend;
  precision: Precision;
  numRuns: number;
  maxSeqLen: number;
}

/** Per-test timeout: fast-check runs several backend calls per run. */
const TIMEOUT_MS = 300_000;

const scoreShape = (input: AttentionInput, o: ResolvedTsaOptions): ScoreShape => ({ heads: input.heads, prefixLen: input.seqLen - o.window });

async function pooledOf(b: Backend, input: AttentionInput, o: ResolvedTsaOptions): Promise<Float32Array> {
  return b.pool(await b.scores(input, o), scoreShape(input, o), o);
}

/** The f64 oracle's pooled scores [H][L-W]. */
function oraclePooled(input: AttentionInput, o: ResolvedTsaOptions): Float64Array {
  return poolF64(scoresF64(input, o.window), input.heads, input.seqLen - o.window, o.poolKernel);
}

interface SparseSelection {
  keep: number;
  keptLength: number;
  indices: Int32Array;
  output: Float32Array;
}

/**
 * The sparse selection under test for a case with L > minTokens + W: the pipeline's when it
 * ran sparse, else (tau prunes nothing, or a cost rule chose dense) the stages' select with
 * keep = minTokens followed by attendSelected, so no run is vacuous.
 */
async function sparseSelection(b: Backend, input: AttentionInput, o: ResolvedTsaOptions): Promise<SparseSelection> {
  const res = await b.tokenSparseAttention(input, o);
  if (res.budget.mode === 'sparse') {
    check(res.indices !== null, () => 'sparse result without indices');
    return { keep: res.budget.keep, keptLength: res.keptLength, indices: res.indices, output: res.output };
  }
  const keep = o.minTokens;
  const indices = await b.select(await pooledOf(b, input, o), scoreShape(input, o), keep, o);
  const keptLength = keep + o.window;
  return { keep, keptLength, indices, output: await b.attendSelected(input, indices, keptLength) };
}

/** 0..n-1 in random order (Fisher-Yates). */
function shuffled(n: number, rng: Rng): number[] {
  const a = Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = rng.u32() % (i + 1);
    [a[i], a[j]] = [a[j]!, a[i]!];
  }
  return a;
}

/** A random subset of n positions of [0, L) per head, ascending: [H][n]. */
function randomIndices(H: number, L: number, n: number, rng: Rng): Int32Array {
  const out = new Int32Array(H * n);
  for (let h = 0; h < H; h++) out.set(Int32Array.from(shuffled(L, rng).slice(0, n)).sort(), h * n);
  return out;
}

// ---------------------------------------------------------------- head transforms

/** A head relabelling: new head h reads old head src[h]; new KV head g reads old KV head srcKv[g]. */
interface HeadMap {
  src: number[];
  srcKv: number[];
}

/** Rows of a [rows][n] array picked by `src`: row h of the result is row src[h] of `a`. */
function mapRows<T extends Float32Array | Int32Array>(a: T, src: number[], n: number): T {
  const out = new (a.constructor as new (length: number) => T)(src.length * n);
  src.forEach((s, h) => out.set(a.subarray(s * n, (s + 1) * n), h * n));
  return out;
}

/** Q, K, V with heads relabelled by `map` (KV heads may repeat: that expands GQA to MHA). */
function mapInput(input: AttentionInput, map: HeadMap): AttentionInput {
  const LD = input.seqLen * input.headDim;
  return {
    ...input,
    kvHeads: map.srcKv.length,
    q: mapRows(input.q, map.src, LD),
    k: mapRows(input.k, map.srcKv, LD),
    v: mapRows(input.v, map.srcKv, LD),
  };
}

/** GQA -> MHA: every query head keeps its place and gets its own copy of its KV head floor(h / G). */
function expandKvMap(H: number, Hkv: number): HeadMap {
  const G = H / Hkv;
  return { src: Array.from({ length: H }, (_, h) => h), srcKv: Array.from({ length: H }, (_, h) => Math.floor(h / G)) };
}

/** A random permutation of KV groups together with their query heads, and of heads within each group. */
function randomHeadMap(H: number, Hkv: number, rng: Rng): HeadMap {
  const G = H / Hkv;
  const srcKv = shuffled(Hkv, rng);
  return { srcKv, src: srcKv.flatMap((g) => shuffled(G, rng).map((j) => g * G + j)) };
}

/** Heads (column blocks) of a token-major [L][H][D] output picked by `src`: head h of the result is head src[h]. */
function mapOutputHeads(out: Float32Array, src: number[], D: number, H = src.length): Float32Array {
  const L = out.length / (H * D);
  const res = new Float32Array(L * src.length * D);
  for (let t = 0; t < L; t++) src.forEach((s, h) => res.set(out.subarray((t * H + s) * D, (t * H + s + 1) * D), (t * src.length + h) * D));
  return res;
}

/**
 * Checks that a transformed run (`actual`, on `input`) corresponds to the original run relabelled
 * by `map` (and that the stages commute with it). float64: identical budget and indices, equal
 * outputs. float32: rounding may move a near-tie, so each run must be a valid selection on the
 * oracle's scores, and outputs must agree on every head whose kept set agrees.
 */
async function checkTransformedRun(
  ctx: Ctx,
  c: TsaCase,
  base: { input: AttentionInput; result: TsaResult },
  actual: { input: AttentionInput; result: TsaResult },
  map: HeadMap,
  tol: Tolerances,
): Promise<void> {
  const { input, result } = actual;
  const o = c.options;
  const { heads: H, headDim: D } = input;
  const shape = scoreShape(input, o);
  const b = ctx.backend;
  // Stages commute with the relabelling: scores, and attendSelected on the same (relabelled) indices.
  checkRelClose('scores of the transformed input', await b.scores(input, o), mapRows(await b.scores(base.input, o), map.src, shape.prefixLen), 2 * tol.scoreRel, shape.prefixLen);
  const rng = new Rng(c.seed + 1);
  const n = 1 + (rng.u32() % input.seqLen);
  const idx = randomIndices(H, input.seqLen, n, rng);
  const sameIdxOut = await b.attendSelected(input, mapRows(idx, map.src, n), n);
  checkClose('attendSelected on relabelled indices', sameIdxOut, mapOutputHeads(await b.attendSelected(base.input, idx, n), map.src, D), 2 * tol.outAbs, H, D);

  const expectedIndices = base.result.indices && mapRows(base.result.indices, map.src, base.result.keptLength);
  const expectedOutput = mapOutputHeads(base.result.output, map.src, D);
  if (ctx.precision === 'float64') {
    expect(result.budget).toEqual(base.result.budget);
    expect(result.indices).toEqual(expectedIndices);
    checkClose('output', result.output, expectedOutput, 2 * tol.outAbs, H, D);
    return;
  }
  const pooled = oraclePooled(input, o);
  const cum = sortedLayerCumsum(pooled, H, shape.prefixLen);
  for (const run of [{ budget: base.result.budget, indices: expectedIndices }, result]) {
    checkCountRule(run.budget, cum, o, tol.cum(o.coverage, shape.prefixLen));
    if (run.budget.mode === 'sparse') checkSelectionValid(run.indices!, run.budget.keep, H, o.window, pooled, tol.pooledRel);
  }
  if (result.keptLength !== base.result.keptLength) return;
  const Lc = result.keptLength;
  for (let h = 0; h < H; h++) {
    const same =
      result.indices === null || expectedIndices === null
        ? result.indices === expectedIndices
        : result.indices.subarray(h * Lc, (h + 1) * Lc).every((t, r) => t === expectedIndices[h * Lc + r]);
    if (same) checkClose(`output of head ${h}`, mapOutputHeads(result.output, [h], D, H), mapOutputHeads(expectedOutput, [h], D, H), 2 * tol.outAbs, 1, D);
  }
}

// ---------------------------------------------------------------- properties

type Property = { title: string; run(ctx: Ctx): Promise<void> };

function forAll<T>(ctx: Ctx, arb: fc.Arbitrary<T>, body: (value: T) => Promise<void>): Promise<void> {
  return fc.assert(fc.asyncProperty(arb, body), { numRuns: ctx.numRuns });
}

/** Random cases within the backend's maxSeqLen (and a property's own cap). */
function cases(ctx: Ctx, c: Omit<CaseConstraints, 'maxSeqLen'> & { maxSeqLen?: number } = {}) {
  return caseArb({ ...c, maxSeqLen: Math.min(ctx.maxSeqLen, c.maxSeqLen ?? Infinity) });
}

function prepared(ctx: Ctx, c: TsaCase) {
  const input = caseInput(c);
  return { input, o: c.options, tol: tolerances(ctx.precision, input), shape: scoreShape(input, c.options) };
}

const PROPERTIES: Record<Exclude<PropertyId, 'golden-conformance'>, Property> = {
  'indices-ascending': {
    title: 'kept indices are strictly increasing positions in [0, L) for every head',
    run: (ctx) =>
      forAll(ctx, cases(ctx, { length: 'above' }), async (c) => {
        const { input, o } = prepared(ctx, c);
        const sel = await sparseSelection(ctx.backend, input, o);
        checkAscending(sel.indices, sel.keptLength, input.heads, input.seqLen);
      }),
  },

  'window-kept': {
    title: 'every head keeps the window: its last W entries are L-W..L-1, the first keep lie in the prefix',
    run: (ctx) =>
      forAll(ctx, cases(ctx, { length: 'above' }), async (c) => {
        const { input, o } = prepared(ctx, c);
        const sel = await sparseSelection(ctx.backend, input, o);
        checkWindowKept(sel.indices, sel.keep, input.heads, input.seqLen, o.window);
      }),
  },

  'kept-length': {
    title: "L' = keep + W for every head, keep = max(minTokens, P - pruned) >= minTokens; dense runs report L' = L",
    run: (ctx) =>
      forAll(ctx, cases(ctx), async (c) => {
        const { input, o, shape } = prepared(ctx, c);
        const { heads: H, headDim: D, seqLen: L } = input;
        const res = await ctx.backend.tokenSparseAttention(input, o);
        expect(res.output.length).toBe(L * H * D);
        if (res.budget.mode === 'sparse') {
          const { keep, pruned } = res.budget;
          expect(L).toBeGreaterThan(o.minTokens + o.window);
          expect(keep).toBeGreaterThanOrEqual(o.minTokens);
          expect(keep).toBeLessThanOrEqual(shape.prefixLen);
          expect(keep).toBe(Math.max(o.minTokens, shape.prefixLen - pruned));
          expect(res.keptLength).toBe(keep + o.window);
          expect(res.indices?.length).toBe(H * (keep + o.window));
          expect(res.keptFraction).toBeCloseTo(res.keptLength / L, 12);
        } else {
          expect(res.indices).toBeNull();
          expect(res.keptLength).toBe(L);
          expect(res.keptFraction).toBe(1);
          if (L <= o.minTokens + o.window) expect(res.budget.reason).toBe('short-context');
          else expect(['nothing-pruned', 'not-worth-it']).toContain(res.budget.reason);
        }
      }),
  },

  'pruned-rows-zero': {
    title: 'every (t, h) not in head h’s kept set has an all-zero output row; kept rows are finite',
    run: (ctx) =>
      forAll(ctx, cases(ctx, { length: 'above' }), async (c) => {
        const { input, o } = prepared(ctx, c);
        const sel = await sparseSelection(ctx.backend, input, o);
        checkPrunedRowsZero(sel.output, sel.indices, sel.keptLength, input);
      }),
  },

  'count-rule': {
    title: 'the pruned share of the layer distribution is below tau by the count rule (on the backend’s pooled scores)',
    run: (ctx) =>
      forAll(ctx, cases(ctx), async (c) => {
        const { input, o, tol, shape } = prepared(ctx, c);
        const pooled = await pooledOf(ctx.backend, input, o);
        const cum = sortedLayerCumsum(pooled, input.heads, shape.prefixLen);
        const stage = await ctx.backend.budget(pooled, shape, o);
        checkCountRule(stage, cum, o, tol.stageCum(o.coverage, shape.prefixLen));
        const res = await ctx.backend.tokenSparseAttention(input, o);
        // The same stages on the same input: float64 must agree exactly; a float32 pipeline may
        // fuse the stages (other rounding), so it must satisfy the rule within the oracle tolerance.
        if (ctx.precision === 'float64') expect(res.budget).toEqual(stage);
        else checkCountRule(res.budget, cum, o, tol.cum(o.coverage, shape.prefixLen));
      }),
  },

  'dense-short-context': {
    title: "L <= minTokens + W runs dense ('short-context'): no indices, L' = L, output = dense attention",
    run: (ctx) =>
      forAll(ctx, cases(ctx, { length: 'below', maxSeqLen: 900 }), async (c) => {
        const { input, o, tol, shape } = prepared(ctx, c);
        const res = await ctx.backend.tokenSparseAttention(input, o);
        expect(res.budget).toMatchObject({ mode: 'dense', reason: 'short-context' });
        expect(res.indices).toBeNull();
        expect(res.keptLength).toBe(input.seqLen);
        const dense = await ctx.backend.dense(input);
        checkClose('pipeline vs dense', res.output, dense, 2 * tol.outAbs, input.heads, input.headDim);
        checkClose('dense vs f64', dense, oracleOutput(input, allPositions(input.heads, input.seqLen), input.seqLen), tol.outAbs, input.heads, input.headDim);
        // The budget stage alone applies the same rule to any scores.
        const rng = new Rng(c.seed);
        const pooled = Float32Array.from({ length: shape.heads * shape.prefixLen }, () => rng.uniform());
        expect(await ctx.backend.budget(pooled, shape, o)).toMatchObject({ mode: 'dense', reason: 'short-context' });
      }),
  },

  'dense-zero-coverage': {
    title: "tau = 0 runs dense ('zero-coverage') even when L > minTokens + W",
    run: (ctx) =>
      forAll(ctx, cases(ctx, { length: 'above', coverage: fc.constant(0), maxSeqLen: 900 }), async (c) => {
        const { input, o, tol, shape } = prepared(ctx, c);
        const res = await ctx.backend.tokenSparseAttention(input, o);
        expect(res.budget).toMatchObject({ mode: 'dense', reason: 'zero-coverage' });
        expect(res.indices).toBeNull();
        expect(res.keptLength).toBe(input.seqLen);
        checkClose('pipeline vs dense', res.output, await ctx.backend.dense(input), 2 * tol.outAbs, input.heads, input.headDim);
        const pooled = await pooledOf(ctx.backend, input, o);
        expect(await ctx.backend.budget(pooled, shape, o)).toMatchObject({ mode: 'dense', reason: 'zero-coverage' });
      }),
  },

  'gqa-equals-mha': {
    title: 'GQA equals MHA with K/V explicitly repeated to H heads (outputs and indices)',
    run: (ctx) =>
      forAll(ctx, cases(ctx, { heads: 'grouped', length: 'above' }), async (c) => {
        const { input, o, tol } = prepared(ctx, c);
        const map = expandKvMap(input.heads, input.kvHeads);
        const mhaInput = mapInput(input, map);
        expect(mhaInput.kvHeads).toBe(input.heads);
        const base = { input, result: await ctx.backend.tokenSparseAttention(input, o) };
        const mha = { input: mhaInput, result: await ctx.backend.tokenSparseAttention(mhaInput, o) };
        await checkTransformedRun(ctx, c, base, mha, map, tol);
      }),
  },

  'keep-all-equals-dense': {
    title: 'keeping every token equals dense attention (attendSelected on all positions, select with keep = L - W)',
    run: (ctx) =>
      forAll(ctx, cases(ctx, { maxSeqLen: 900 }), async (c) => {
        const { input, o, tol, shape } = prepared(ctx, c);
        const { heads: H, headDim: D, seqLen: L } = input;
        const all = allPositions(H, L);
        const dense = await ctx.backend.dense(input);
        checkClose('dense vs f64', dense, oracleOutput(input, all, L), tol.outAbs, H, D);
        checkClose('attendSelected(all) vs dense', await ctx.backend.attendSelected(input, all, L), dense, 2 * tol.outAbs, H, D);
        const selected = await ctx.backend.select(await pooledOf(ctx.backend, input, o), shape, shape.prefixLen, o);
        expect(selected).toEqual(all);
      }),
  },

  'kept-rows-match-f64': {
    title: 'every kept row equals f64 causal attention over just the kept keys (independent implementation)',
    run: (ctx) =>
      forAll(ctx, cases(ctx, { length: 'above' }), async (c) => {
        const { input, o, tol } = prepared(ctx, c);
        const sel = await sparseSelection(ctx.backend, input, o);
        checkClose('kept rows vs f64', sel.output, oracleOutput(input, sel.indices, sel.keptLength), tol.outAbs, input.heads, input.headDim);
      }),
  },

  'head-permutation': {
    title: 'permuting KV groups with their query heads (and heads within a group) permutes outputs and indices',
    run: (ctx) =>
      forAll(ctx, fc.tuple(cases(ctx, { length: 'above' }), fc.integer({ min: 0, max: 0x7fffffff })), async ([c, permSeed]) => {
        const { input, o, tol } = prepared(ctx, c);
        const map = randomHeadMap(input.heads, input.kvHeads, new Rng(permSeed));
        const permuted = mapInput(input, map);
        const base = { input, result: await ctx.backend.tokenSparseAttention(input, o) };
        const actual = { input: permuted, result: await ctx.backend.tokenSparseAttention(permuted, o) };
        await checkTransformedRun(ctx, c, base, actual, map, tol);
      }),
  },

  'scores-pool-vs-reference': {
    title: 'scores and pool match f64 scoring and include-pad pooling within the relative tolerance',
    run: (ctx) =>
      forAll(ctx, cases(ctx), async (c) => {
        const { input, o, tol, shape } = prepared(ctx, c);
        const scores = await ctx.backend.scores(input, o);
        checkRelClose('scores vs f64', scores, scoresF64(input, o.window), tol.scoreRel, shape.prefixLen);
        const pooled = await ctx.backend.pool(scores, shape, o);
        checkRelClose('pool vs f64', pooled, poolF64(scores, shape.heads, shape.prefixLen, o.poolKernel), tol.poolRel, shape.prefixLen);
      }),
  },

  'selection-valid-vs-reference': {
    title: 'the selection is valid on the reference scores (kept >= dropped, count rule within tolerance) and outputs match the reference on the same indices',
    run: (ctx) =>
      forAll(ctx, cases(ctx, { length: 'above' }), async (c) => {
        const { input, o, tol, shape } = prepared(ctx, c);
        const res = await ctx.backend.tokenSparseAttention(input, o);
        const pooled = oraclePooled(input, o);
        checkCountRule(res.budget, sortedLayerCumsum(pooled, input.heads, shape.prefixLen), o, tol.cum(o.coverage, shape.prefixLen));
        const expected =
          res.budget.mode === 'sparse'
            ? (checkSelectionValid(res.indices!, res.budget.keep, input.heads, o.window, pooled, tol.pooledRel),
              await ctx.reference.attendSelected(input, res.indices!, res.keptLength))
            : await ctx.reference.dense(input);
        // The reference output itself carries one f32 rounding (U max|v|).
        checkClose('output vs reference on the same indices', res.output, expected, tol.outAbs + 2 * U * maxAbs(input.v), input.heads, input.headDim);
      }),
  },

  'attend-same-indices-vs-reference': {
    title: 'attendSelected on random kept sets equals the reference on identical indices; other rows are zero',
    run: (ctx) =>
      forAll(ctx, fc.tuple(cases(ctx, { maxSeqLen: 1200 }), unitArb), async ([c, share]) => {
        const { input, tol } = prepared(ctx, c);
        const n = Math.max(1, Math.round(share * input.seqLen));
        const indices = randomIndices(input.heads, input.seqLen, n, new Rng(c.seed ^ 0x5bd1e995));
        const out = await ctx.backend.attendSelected(input, indices, n);
        checkPrunedRowsZero(out, indices, n, input);
        const expected = await ctx.reference.attendSelected(input, indices, n);
        checkClose('attendSelected vs reference', out, expected, tol.outAbs + 2 * U * maxAbs(input.v), input.heads, input.headDim);
      }),
  },

  'bad-input-errors': {
    title: 'every bad input of every method rejects with TsaInputError (code and message), and the backend still works afterwards',
    run: async (ctx) => {
      const before = await ctx.backend.tokenSparseAttention(VALID.input, VALID.options);
      const failures: string[] = [];
      for (const c of BAD_INPUT_CASES) {
        try {
          await expectInputError(() => c.call(ctx.backend), c.code, c.message);
        } catch (e) {
          failures.push(`${c.method}: ${c.what}: ${(e as Error).message}`);
        }
      }
      expect(failures).toEqual([]);
      await fc.assert(fc.asyncProperty(nonFiniteArb, (c) => expectNonFiniteRejected(ctx.backend, c)), { numRuns: 4 * ctx.numRuns });
      // The rejected calls left no trace: the same valid call gives the same result as before them.
      const after = await ctx.backend.tokenSparseAttention(VALID.input, VALID.options);
      expect(after.budget).toEqual(before.budget);
      expect(after.indices).toEqual(before.indices);
      checkClose('valid call after the bad ones', after.output, before.output, 2 * tolerances(ctx.precision, VALID.input).outAbs, 4, 8);
    },
  },

  'inputs-untouched': {
    title: 'no call writes its inputs, and no result is a view of an input (changing inputs after the promise settles changes no result)',
    run: (ctx) =>
      fc.assert(
        fc.asyncProperty(cases(ctx, { length: 'above', maxSeqLen: 160 }), async (c) => {
          const { input, o, shape } = prepared(ctx, c);
          const rng = new Rng(c.seed);
          const scores = Float32Array.from({ length: shape.heads * shape.prefixLen }, () => rng.uniform() / shape.prefixLen);
          const copies = [input.q, input.k, input.v, scores].map((a) => a.slice());
          const res = await ctx.backend.tokenSparseAttention(input, o);
          const pooled = await ctx.backend.pool(scores, shape, o);
          const pooledCopy = pooled.slice();
          const selected = await ctx.backend.select(pooled, shape, Math.min(shape.prefixLen, o.minTokens), o);
          expect([input.q, input.k, input.v, scores]).toEqual(copies);
          expect(pooled).toEqual(pooledCopy);
          // Overwriting every input after the calls settled leaves every result as it was.
          const outputs = [res.output.slice(), res.indices?.slice() ?? null, selected.slice()];
          for (const a of [input.q, input.k, input.v, scores]) a.fill(7);
          expect(pooled).toEqual(pooledCopy);
          pooled.fill(7);
          expect([res.output, res.indices, selected]).toEqual(outputs);
        }),
        // Three calls a run: half the runs of the other properties (slow adapters).
        { numRuns: Math.ceil(ctx.numRuns / 2) },
      ),
  },

  'huge-pool-kernel': {
    title: 'poolKernel 2^31 - 1 (the largest valid) pools every score of a head into each position: sum / P, the keep count equal to the reference',
    run: (ctx) =>
      forAll(ctx, fc.record({ heads: fc.integer({ min: 1, max: 4 }), prefixLen: fc.integer({ min: 1, max: 300 }), seed: fc.nat() }), async ({ heads, prefixLen, seed }) => {
        const rng = new Rng(seed);
        const scores = Float32Array.from({ length: heads * prefixLen }, () => rng.uniform() / prefixLen);
        const o = { coverage: 0.5, window: 4, poolKernel: 2 ** 31 - 1, minTokens: 1 };
        const shape = { heads, prefixLen };
        const pooled = await ctx.backend.pool(scores, shape, o);
        const expected = await ctx.reference.pool(scores, shape, o);
        checkRelClose('pool with poolKernel 2^31 - 1', pooled, expected, 1e-6, prefixLen);
        expect(await ctx.backend.budget(expected, shape, o)).toEqual(await ctx.reference.budget(expected, shape, o));
      }),
  },
};

// ---------------------------------------------------------------- golden conformance

const ALL_STAGES: ConformanceRow['stage'][] = ['scores', 'pool', 'dense', 'budget', 'select', 'attendSelected', 'pipeline'];

function describeGolden(opts: BackendSuiteOptions, getBackend: () => Backend): void {
  const dir = goldenDir();
  const problem = goldenDirProblem(dir);
  if (problem) {
    it('golden-conformance: golden directory', () => {
      throw new Error(problem);
    });
    return;
  }
  const names = goldenCaseNames(dir);
  const wanted = opts.golden === true || opts.golden === undefined ? names : opts.golden || [];
  for (const name of wanted.filter((n) => !names.includes(n))) {
    it(`golden-conformance: ${name}`, () => {
      throw new Error(`golden case '${name}' (listed for ${opts.name}) is not in ${dir}/manifest.json; cases: ${names.join(', ')}`);
    });
  }
  for (const name of names) {
    if (!wanted.includes(name)) {
      const reason = `not in the golden case list given for ${opts.name}`;
      it(`skipped: golden-conformance: ${name}: ${reason}`, () => expect(reason.trim()).not.toBe(''));
      continue;
    }
    it(
      `golden-conformance: ${name}`,
      async () => {
        const g = loadGoldenCase(dir, name);
        const rows = await checkCase(getBackend(), g, opts.precision === 'float16' ? 'f16' : 'f32');
        const sparse = g.runs.some((r) => r.indices !== null);
        const stages = new Set(rows.map((r) => r.stage));
        expect([...stages].sort()).toEqual(ALL_STAGES.filter((s) => sparse || (s !== 'select' && s !== 'attendSelected')).sort());
        const failed = rows.filter((r) => !r.pass).map((r) => `${r.stage}${r.tau === null ? '' : ` tau=${r.tau}`}: ${r.detail}`);
        expect(failed, `${name}: failing conformance rows`).toEqual([]);
      },
      TIMEOUT_MS,
    );
  }
}

// ---------------------------------------------------------------- the suite

export function describeBackendSuite(opts: BackendSuiteOptions): void {
  describe(`backend suite: ${opts.name}`, () => {
    let backend: Backend | undefined;
    const reference = createReferenceBackend();
    const ctx = (): Ctx => {
      if (!backend) throw new Error(`backend '${opts.name}' was not created (see the beforeAll error)`);
      return {
        backend,
        reference,
        precision: opts.precision ?? 'float32',
        numRuns: opts.numRuns ?? 10,
        maxSeqLen: opts.maxSeqLen ?? 1600,
      };
    };
    beforeAll(async () => {
      backend = await opts.create();
    }, TIMEOUT_MS);
    afterAll(async () => {
      await backend?.dispose();
      await reference.dispose();
    });

    for (const id of Object.keys(opts.skip ?? {})) {
      if (!(PROPERTY_IDS as readonly string[]).includes(id)) {
        it(`skip list: '${id}'`, () => {
          throw new Error(`skip list of ${opts.name} names '${id}', which is not a property id: ${PROPERTY_IDS.join(', ')}`);
        });
      }
    }

    for (const id of PROPERTY_IDS) {
      const reason = opts.skip?.[id];
      if (reason !== undefined || (id === 'golden-conformance' && opts.golden === false)) {
        // Skips stay visible as tests, and each must say why.
        it(`skipped: ${id}: ${reason ?? '(no reason given)'}`, () => {
          expect(typeof reason === 'string' ? reason.trim() : '', `skip['${id}'] of ${opts.name} must give a reason`).not.toBe('');
        });
        continue;
      }
      if (id === 'golden-conformance') describeGolden(opts, () => ctx().backend);
      else it(`${id}: ${PROPERTIES[id].title}`, () => PROPERTIES[id].run(ctx()), TIMEOUT_MS);
    }
  });
}
