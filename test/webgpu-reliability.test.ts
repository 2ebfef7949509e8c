/**
 * The WebGPU backend under concurrency, odd inputs and faults (issue 10):
 * overlapping calls on one instance equal their solo results; Float32Arrays
 * over a SharedArrayBuffer work; dispose() or device.destroy() with calls in
 * flight rejects each with BackendLostError and leaves nothing unhandled;
 * short sequences (L <= W) run dense as on every backend; an AbortSignal
 * stops a call; device and input faults are typed. Also: the device-side
 * budget decision equals core's budgetFromCount (fast-check), and the
 * `adapter` option. Small shapes: llvmpipe and lavapipe are slow.
 */
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BackendLostError, BackendResourceError, BackendUnavailableError, TsaAbortError, TsaInputError } from '../harness/core/errors.js';
import { generateInput, Rng } from '../harness/core/generators.js';
import type { AttentionInput, Budget, ResolvedTsaOptions } from '../harness/core/interface.js';
import { budgetFromCount } from '../harness/core/rules.js';
import { GpuCore } from '../gpu/core.js';
import { wrapDevice } from '../gpu/context.js';
import { createWebGpuBackend, isWebGpuBackend, type WebGpuBackend } from '../gpu/index.js';
import { BUDGET_DECIDE } from '../gpu/kernels/budget.wgsl.js';
import { STATE } from '../gpu/kernels/state.js';
import { budgetFromState } from '../gpu/layer.js';
import { DevicePlumbing } from '../gpu/plumbing.js';
import { dimsOf, stateBuffer, stateWindow } from '../gpu/stages/common.js';
import { createReferenceBackend } from '../reference/index.js';
import { ADAPTER } from './shared/webgpu-adapter.js';

const o = { window: 16, minTokens: 32, coverage: 0.2, poolKernel: 3 };
const A = generateInput('structured', { heads: 2, kvHeads: 1, headDim: 16, seqLen: 240 }, 1);
const B = generateInput('structured', { heads: 2, kvHeads: 1, headDim: 16, seqLen: 240 }, 2);
const C = generateInput('gaussian', { heads: 4, kvHeads: 2, headDim: 8, seqLen: 180 }, 3);

function toGpu(b: WebGpuBackend, data: Float32Array, usage = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST | GPUBufferUsage.COPY_SRC): GPUBuffer {
  const buf = b.device.createBuffer({ size: Math.max(16, data.byteLength), usage });
  b.device.queue.writeBuffer(buf, 0, data);
  return buf;
}

function onShared(x: Float32Array): Float32Array {
  const s = new Float32Array(new SharedArrayBuffer(x.byteLength));
  s.set(x);
  return s;
}

/** Runs `body` and returns the unhandled rejections seen while it ran and shortly after. */
async function unhandledDuring(body: () => Promise<void>): Promise<unknown[]> {
  const seen: unknown[] = [];
  const listener = (reason: unknown) => seen.push(reason);
  process.on('unhandledRejection', listener);
  try {
    await body();
    await new Promise((r) => setTimeout(r, 300));
  } finally {
    process.off('unhandledRejection', listener);
  }
  return seen;
}

describe('webgpu reliability', () => {
  let gpu: Awaited<ReturnType<typeof createWebGpuBackend>>;
  const reference = createReferenceBackend();
  beforeAll(async () => {
    gpu = await createWebGpuBackend({ ...ADAPTER, costRule: false });
  });
  afterAll(async () => {
    await gpu?.dispose();
  });

  it('overlapping calls (same and different shapes, interleaved stages) each equal their solo result', async () => {
    const shape = { heads: 2, prefixLen: A.seqLen - o.window };
    const solo = {
      a: await gpu.tokenSparseAttention(A, o),
      b: await gpu.tokenSparseAttention(B, o),
      c: await gpu.tokenSparseAttention(C, o),
      denseB: await gpu.dense(B),
      scoresA: await gpu.scores(A, o),
    };
    expect(solo.a.budget.mode).toBe('sparse');
    const pooledA = await gpu.pool(solo.scoresA, shape, o);
    const selectA = await gpu.select(pooledA, shape, 40, o);
    const attendA = await gpu.attendSelected(A, solo.a.indices!, solo.a.keptLength);
    const [a, b, c, denseB, scoresA, pooled, selected, attended, a2, b2] = await Promise.all([
      gpu.tokenSparseAttention(A, o),
      gpu.tokenSparseAttention(B, o),
      gpu.tokenSparseAttention(C, o),
      gpu.dense(B),
      gpu.scores(A, o),
      gpu.pool(solo.scoresA, shape, o),
      gpu.select(pooledA, shape, 40, o),
      gpu.attendSelected(A, solo.a.indices!, solo.a.keptLength),
      gpu.tokenSparseAttention(A, o),
      gpu.tokenSparseAttention(B, o),
    ]);
    for (const [got, want] of [
      [a, solo.a],
      [b, solo.b],
      [c, solo.c],
      [a2, solo.a],
      [b2, solo.b],
    ] as const) {
      expect(got.budget).toEqual(want.budget);
      expect(got.indices).toEqual(want.indices);
      expect(got.output).toEqual(want.output);
    }
    expect(denseB).toEqual(solo.denseB);
    expect(scoresA).toEqual(solo.scoresA);
    expect(pooled).toEqual(pooledA);
    expect(selected).toEqual(selectA);
    expect(attended).toEqual(attendA);
  });

  it('takes Float32Arrays over a SharedArrayBuffer (copied before upload) with identical results', async () => {
    const shared: AttentionInput = { ...A, q: onShared(A.q), k: onShared(A.k), v: onShared(A.v) };
    const want = await gpu.tokenSparseAttention(A, o);
    const got = await gpu.tokenSparseAttention(shared, o);
    expect(got.output).toEqual(want.output);
    expect(got.indices).toEqual(want.indices);
    expect(await gpu.dense(shared)).toEqual(await gpu.dense(A));
    const shape = { heads: 2, prefixLen: A.seqLen - o.window };
    const scores = await gpu.scores(A, o);
    expect(await gpu.pool(onShared(scores), shape, o)).toEqual(await gpu.pool(scores, shape, o));
  });

  it('runs L <= W (default options, L <= 128) dense as short-context, in both entries', async () => {
    for (const L of [1, 40, 128]) {
      const x = generateInput('gaussian', { heads: 2, kvHeads: 1, headDim: 8, seqLen: L }, L);
      const r = await gpu.tokenSparseAttention(x);
      expect(r.budget).toMatchObject({ mode: 'dense', reason: 'short-context' });
      expect(r.keptLength).toBe(L);
      expect(r.output).toEqual(await gpu.dense(x));
      const [q, k, v] = [toGpu(gpu, x.q), toGpu(gpu, x.k), toGpu(gpu, x.v)];
      const res = await gpu.tokenSparseAttentionGpu({ ...x, q, k, v });
      expect((await res.info()).budget).toEqual(r.budget);
      await res.done;
      for (const buf of [q, k, v, res.output]) buf.destroy();
    }
  });

  it('an aborted call rejects with TsaAbortError and the backend keeps working', async () => {
    const long = generateInput('structured', { heads: 4, kvHeads: 2, headDim: 32, seqLen: 1200 }, 5);
    const lo = { ...o, minTokens: 64 };
    const want = await gpu.tokenSparseAttention(A, o);
    const early = new AbortController();
    early.abort(new Error('before'));
    await expect(gpu.tokenSparseAttention(long, { ...lo, signal: early.signal })).rejects.toBeInstanceOf(TsaAbortError);
    // Aborted while the fused layer runs (after its upload): the GPU layer checks the signal between submissions.
    const mid = new AbortController();
    const call = gpu.tokenSparseAttention(long, { ...lo, signal: mid.signal });
    setTimeout(() => mid.abort(new Error('mid-call')), 0);
    await expect(call).rejects.toThrow(TsaAbortError);
    await expect(call).rejects.toThrow(/aborted: mid-call/);
    const after = await gpu.tokenSparseAttention(A, o);
    expect(after.output).toEqual(want.output);
  });

  it('budget(): a coverage below the 2^-64 floor prunes nothing on the GPU (README), at and above it as the reference', async () => {
    const rng = new Rng(11);
    const pooled = Float32Array.from({ length: 2 * 300 }, (_, i) => (i % 10 === 0 ? 0 : rng.uniform()));
    const shape = { heads: 2, prefixLen: 300 };
    const base = { window: 16, minTokens: 8, poolKernel: 3 };
    const below = { ...base, coverage: 2 ** -66 };
    expect((await reference.budget(pooled, shape, below)).mode).toBe('sparse');
    expect(await gpu.budget(pooled, shape, below)).toMatchObject({ mode: 'dense', reason: 'nothing-pruned' });
    for (const coverage of [2 ** -60, 1e-6, 0.01]) {
      expect(await gpu.budget(pooled, shape, { ...base, coverage })).toEqual(await reference.budget(pooled, shape, { ...base, coverage }));
    }
  });

  it('scores that need more than one storage binding in budget/select fail with TsaInputError(SHAPE)', async () => {
    const small = await createWebGpuBackend({ ...ADAPTER, costRule: false, maxBindingBytes: 64 * 1024 });
    try {
      const pooled = Float32Array.from({ length: 4 * 5000 }, (_, i) => (i % 7) / 7);
      const shape = { heads: 4, prefixLen: 5000 };
      const err = await small.budget(pooled, shape, o).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(TsaInputError);
      expect(err).toMatchObject({ inputCode: 'SHAPE', message: expect.stringMatching(/pooled scores .* must fit one storage binding/) });
      expect((await small.dense(C)).length).toBe(C.seqLen * C.heads * C.headDim);
    } finally {
      await small.dispose();
    }
  });

  it('GPU-resident inputs that are not usable buffers of its device are TsaInputError', async () => {
    const x = A;
    const [q, k, v] = [toGpu(gpu, x.q), toGpu(gpu, x.k), toGpu(gpu, x.v)];
    const other = await createWebGpuBackend({ ...ADAPTER, costRule: false });
    try {
      const cases: [string, Partial<Record<'q' | 'k' | 'v' | 'output', unknown>>, RegExp][] = [];
      const destroyed = toGpu(gpu, x.k);
      destroyed.destroy();
      cases.push(['destroyed', { k: destroyed }, /k cannot be used on this backend's device/]);
      cases.push(['another device', { v: toGpu(other, x.v) }, /v cannot be used on this backend's device/]);
      const mapped = gpu.device.createBuffer({ size: x.q.byteLength, usage: GPUBufferUsage.STORAGE, mappedAtCreation: true });
      cases.push(['mapped', { q: mapped }, /q is mapped; unmap it/]);
      cases.push(['not a buffer', { q: { size: x.q.byteLength, usage: GPUBufferUsage.STORAGE, mapAsync() {} } }, /q must be a GPUBuffer/]);
      for (const [what, swap, message] of cases) {
        const err = await gpu.tokenSparseAttentionGpu({ ...x, q, k, v, ...swap } as never, o).catch((e: unknown) => e);
        expect(err, what).toBeInstanceOf(TsaInputError);
        expect((err as Error).message, what).toMatch(message);
      }
      const ok = await gpu.tokenSparseAttentionGpu({ ...x, q, k, v }, o);
      await ok.done;
      expect((await ok.info()).budget).toEqual((await gpu.tokenSparseAttention(x, o)).budget);
      ok.output.destroy();
    } finally {
      await other.dispose();
      for (const b of [q, k, v]) b.destroy();
    }
  });

  it('device validation errors are BackendResourceError with a code; the plumbing stays usable', async () => {
    const plumbing = new DevicePlumbing(wrapDevice(gpu.device));
    const bad = plumbing.run(async () => {
      gpu.device.createBuffer({ size: 16, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.STORAGE });
    });
    await expect(bad).rejects.toBeInstanceOf(BackendResourceError);
    await expect(bad).rejects.toMatchObject({ kind: 'VALIDATION', code: 'TSA_BACKEND_VALIDATION' });
    expect(await plumbing.run(async () => 7)).toBe(7);
  });

  it("the device's budget decision equals core's budgetFromCount (and the cost bound) for every count", async () => {
    const core = new GpuCore(wrapDevice(gpu.device), {});
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 2, max: 100_000 }),
        fc.integer({ min: 1, max: 512 }),
        fc.double({ min: 0, max: 1, noNaN: true }),
        fc.double({ min: 0, max: 1.2, noNaN: true }),
        fc.double({ min: 0, max: 1, noNaN: true }),
        async (P, W, countShare, boundShare, minShare) => {
          // As in a layer that reaches the budget: L > minTokens + W, so minTokens < P.
          const minTokens = 1 + Math.floor(minShare * (P - 2));
          const c = Math.floor(countShare * P);
          const L = P + W;
          const maxKeptLength = Math.min(L, Math.floor(boundShare * L));
          const opts: ResolvedTsaOptions = { coverage: 0.01, window: W, poolKernel: 3, minTokens };
          const ctx = core.stageCtx();
          const init = new Uint32Array(STATE.words);
          init[STATE.count] = c;
          gpu.device.queue.writeBuffer(stateBuffer(ctx), 0, init);
          ctx.rec.dispatch(BUDGET_DECIDE, { P, W, L, minTokens, maxKeptLength }, { state: stateWindow(ctx) }, [1]);
          const { data } = await core.execute(ctx, [{ src: stateBuffer(ctx), bytes: STATE.words * 4 }], {});
          const d = dimsOf({ heads: 1, kvHeads: 1, headDim: 1, seqLen: L }, W);
          const got = budgetFromState(new Uint32Array(data[0]!), { d, o: opts, maxKeptLength });
          const spec: Budget = budgetFromCount(c, P, opts);
          if (spec.mode === 'sparse' && spec.keep + W > maxKeptLength) expect(got).toMatchObject({ mode: 'dense', reason: 'not-worth-it' });
          else expect(got).toEqual(spec);
        },
      ),
      { numRuns: 40 },
    );
    core.buffers.destroy();
  });

  it('`adapter` picks one of Dawn backends; an unknown one is BackendUnavailableError', async () => {
    expect(isWebGpuBackend(gpu)).toBe(true);
    expect(isWebGpuBackend(reference)).toBe(false);
    if (ADAPTER.adapter) expect(gpu.description).toContain(`Dawn ${ADAPTER.adapter}`);
    await expect(createWebGpuBackend({ adapter: 'metal' as never })).rejects.toBeInstanceOf(BackendUnavailableError);
    // Numeric tuning options: a clear OPTION error, never a silent NaN threshold.
    for (const bad of [{ scoreLogitsBytes: -1 }, { radixOneGroupKeys: Number.NaN }, { maxBindingBytes: '64' as never }]) {
      await expect(createWebGpuBackend({ ...ADAPTER, ...bad })).rejects.toMatchObject({ inputCode: 'OPTION', message: new RegExp(`option ${Object.keys(bad)[0]} must be a number`) });
    }
  });
});

describe('webgpu dispose and device loss with calls in flight', () => {
  for (const how of ['dispose()', 'device.destroy()'] as const) {
    it(`${how}: every call not yet settled rejects with BackendLostError, nothing is left unhandled`, async () => {
      const b = await createWebGpuBackend({ ...ADAPTER, costRule: false });
      await b.dense(C); // pipelines compiled: the calls below are in flight, not compiling
      const [q, k, v] = [toGpu(b, A.q), toGpu(b, A.k), toGpu(b, A.v)];
      const unhandled = await unhandledDuring(async () => {
        const calls = [
          b.tokenSparseAttention(A, o),
          b.tokenSparseAttention(C, o),
          b.dense(B),
          b.scores(A, o),
          b.tokenSparseAttentionGpu({ ...A, q, k, v }, o).then((r) => r.info()),
          b.tokenSparseAttention(B, o),
        ];
        const settled = calls.map(() => false);
        calls.forEach((p, i) => p.then(() => (settled[i] = true), () => (settled[i] = true)));
        await new Promise((r) => setTimeout(r, 5));
        const settledAtLoss = [...settled];
        if (how === 'dispose()') await b.dispose();
        else b.device.destroy();
        const results = await Promise.allSettled(calls);
        const inFlight = results.filter((_, i) => !settledAtLoss[i]);
        expect(inFlight.length).toBeGreaterThan(0);
        for (const r of inFlight) {
          expect(r.status).toBe('rejected');
          expect((r as PromiseRejectedResult).reason).toBeInstanceOf(BackendLostError);
        }
        await expect(b.dense(C)).rejects.toBeInstanceOf(BackendLostError);
      });
      expect(unhandled).toEqual([]);
      await b.dispose();
    });
  }
});
