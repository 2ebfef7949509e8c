/**
 * The WebGPU backend on the adapter TSA_WEBGPU_ADAPTER names (else whatever
 * Dawn finds first): in CI, all of it on Mesa llvmpipe through Dawn's OpenGL
 * backend (compatibility mode) and the golden conformance again on lavapipe
 * through Dawn's Vulkan backend (core mode); both are slow, so the shapes are
 * small. Concurrency, faults and odd inputs: webgpu-reliability.test.ts.
 *
 * - the shared property suite and golden conformance (cost rule off: the spec's pipeline);
 * - pool, budget and select equal the reference exactly, also on adversarial pooled scores
 *   (ties, zeros, subnormals, values 2^60 apart): the keep count is computed in exact
 *   128-bit fixed point;
 * - GPU-resident I/O (tokenSparseAttentionGpu) equals the Float32Array path bit for bit;
 * - tensors split across bindings and buffers (forced small limits) give identical results;
 * - a destroyed device makes the next call fail with BackendLostError, never a hang;
 * - the cost rule's decisions (before scoring, after the probe on the GPU) and that budget() stays the spec.
 */
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BackendLostError } from '../harness/core/errors.js';
import { generateInput, Rng } from '../harness/core/generators.js';
import type { AttentionInput, ResolvedTsaOptions, ScoreShape } from '../harness/core/interface.js';
import { createBackend, registeredBackends } from '../harness/registry.js';
import '../harness/backends.js';
import { createWebGpuBackend, H200_COST_MODEL, SOFTWARE_NOT_AUTO, type WebGpuBackend } from '../gpu/index.js';
import { createReferenceBackend } from '../reference/index.js';
import { describeBackendSuite } from './shared/backend-suite.js';
import { ADAPTER } from './shared/webgpu-adapter.js';
import { readBuffer, toGpu } from './shared/gpu-buffers.js';

describeBackendSuite({
  name: 'webgpu',
  create: () => createWebGpuBackend({ ...ADAPTER, costRule: false }),
  skip: {},
  maxSeqLen: 600,
  numRuns: 4,
});

const reference = createReferenceBackend();

/** Random small shapes and options for the backend's own tests. */
const caseArb = fc
  .record({
    kvHeads: fc.integer({ min: 1, max: 3 }),
    group: fc.integer({ min: 1, max: 3 }),
    headDim: fc.oneof(fc.integer({ min: 1, max: 40 }), fc.constantFrom(64, 128)),
    seqLen: fc.integer({ min: 40, max: 400 }),
    window: fc.integer({ min: 1, max: 32 }),
    minTokens: fc.integer({ min: 1, max: 64 }),
    coverage: fc.double({ min: 0.01, max: 0.5, noNaN: true }),
    kind: fc.constantFrom('gaussian', 'structured' as const),
    seed: fc.integer({ min: 0, max: 0x7fffffff }),
  })
  .map((r) => ({
    input: generateInput(r.kind, { heads: r.kvHeads * r.group, kvHeads: r.kvHeads, headDim: r.headDim, seqLen: r.seqLen }, r.seed),
    options: { coverage: r.coverage, window: r.window, poolKernel: 3, minTokens: r.minTokens } satisfies ResolvedTsaOptions,
  }));

/**
 * Pooled scores built to stress an exact budget: ties (few levels), zeros, subnormals, and
 * values spread over ~2^60, where f32 sums in another order would move the count.
 */
const pooledArb = fc
  .record({
    heads: fc.integer({ min: 1, max: 5 }),
    prefixLen: fc.integer({ min: 1, max: 3000 }),
    kind: fc.constantFrom('levels', 'wide', 'subnormal', 'smooth'),
    window: fc.integer({ min: 1, max: 64 }),
    minTokens: fc.integer({ min: 1, max: 1500 }),
    coverage: fc.double({ min: 1e-4, max: 0.9, noNaN: true }),
    keepShare: fc.double({ min: 0, max: 1, noNaN: true }),
    seed: fc.integer({ min: 0, max: 0x7fffffff }),
  })
  .map((r) => {
    const rng = new Rng(r.seed);
    const value = (): number => {
      const u = rng.uniform();
      if (r.kind === 'levels') return Math.floor(u * 4) / 4;
      if (r.kind === 'wide') return u < 0.1 ? 0 : 2 ** (-60 * rng.uniform()) * u;
      if (r.kind === 'subnormal') return u < 0.5 ? u * 1e-40 : u * 1e-38;
      return u ** 4 / r.prefixLen;
    };
    const pooled = Float32Array.from({ length: r.heads * r.prefixLen }, value);
    const shape: ScoreShape = { heads: r.heads, prefixLen: r.prefixLen };
    const options: ResolvedTsaOptions = { coverage: r.coverage, window: r.window, poolKernel: 3, minTokens: r.minTokens };
    return { pooled, shape, options, keep: 1 + Math.floor(r.keepShare * (r.prefixLen - 1)) };
  });

/** b gives bit-identical tokenSparseAttention and dense results to a; returns a's result. */
async function expectSameResults(a: WebGpuBackend, b: WebGpuBackend, input: AttentionInput, options: ResolvedTsaOptions) {
  const ra = await a.tokenSparseAttention(input, options);
  const rb = await b.tokenSparseAttention(input, options);
  expect(rb.budget).toEqual(ra.budget);
  expect(rb.indices).toEqual(ra.indices);
  expect(rb.output).toEqual(ra.output);
  expect(await b.dense(input)).toEqual(await a.dense(input));
  return ra;
}

describe('webgpu backend', () => {
  let gpu: Awaited<ReturnType<typeof createWebGpuBackend>>;
  beforeAll(async () => {
    gpu = await createWebGpuBackend({ ...ADAPTER, costRule: false });
  });
  afterAll(async () => {
    await gpu?.dispose();
  });

  it('is registered at priority 200 and says which adapter and mode it runs on', async () => {
    expect(registeredBackends().find((e) => e.name === 'webgpu')?.priority).toBe(200);
    expect(gpu.name).toBe('webgpu');
    expect(gpu.description).toMatch(/Dawn (vulkan|opengl), (core|compatibility) mode/);
    if (/llvmpipe/.test(gpu.description)) {
      expect(gpu.autoSelect).toBe(false);
      expect(gpu.whyNotAuto).toBe(SOFTWARE_NOT_AUTO);
    }
    const viaRegistry = await createBackend('webgpu');
    expect(viaRegistry.name).toBe('webgpu');
    await viaRegistry.dispose();
  });

  it('budget and select equal the reference exactly, on ties, zeros, subnormals and wide ranges; pool within f32 rounding', async () => {
    await fc.assert(
      fc.asyncProperty(pooledArb, async ({ pooled, shape, options, keep }) => {
        // Pooling sums K values in f32 (the reference in f64): a few ulps of the largest term.
        const pooledRef = await reference.pool(pooled, shape, options);
        const pooledGpu = await gpu.pool(pooled, shape, options);
        const scale = pooled.reduce((m, x) => Math.max(m, x), 0);
        pooledRef.forEach((x, i) => expect(Math.abs(pooledGpu[i]! - x)).toBeLessThanOrEqual(4 * 2 ** -24 * scale));
        expect(await gpu.budget(pooled, shape, options)).toEqual(await reference.budget(pooled, shape, options));
        expect(await gpu.select(pooled, shape, keep, options)).toEqual(await reference.select(pooled, shape, keep, options));
      }),
      { numRuns: 25 },
    );
  });

  it('budget and select in one workgroup equal their multi-workgroup radix passes (radixOneGroupKeys 0) and the reference', async () => {
    // The default runs these prefixes (P <= 3000) in one dispatch each; radixOneGroupKeys 0 takes
    // the two-dispatches-per-byte path that prefixes over 64K positions take.
    const multi = await createWebGpuBackend({ ...ADAPTER, costRule: false, radixOneGroupKeys: 0 });
    try {
      await fc.assert(
        fc.asyncProperty(pooledArb, async ({ pooled, shape, options, keep }) => {
          const expected = await reference.budget(pooled, shape, options);
          expect(await gpu.budget(pooled, shape, options)).toEqual(expected);
          expect(await multi.budget(pooled, shape, options)).toEqual(expected);
          const selected = await reference.select(pooled, shape, keep, options);
          expect(await gpu.select(pooled, shape, keep, options)).toEqual(selected);
          expect(await multi.select(pooled, shape, keep, options)).toEqual(selected);
        }),
        { numRuns: 25 },
      );
    } finally {
      await multi.dispose();
    }
  });

  it('GPU-buffer I/O equals the Float32Array path bit for bit (output, budget, indices)', async () => {
    await fc.assert(
      fc.asyncProperty(caseArb, async ({ input, options }) => {
        const host = await gpu.tokenSparseAttention(input, options);
        const q = toGpu(gpu, input.q);
        const k = toGpu(gpu, input.k);
        const v = toGpu(gpu, input.v);
        const res = await gpu.tokenSparseAttentionGpu({ ...input, q, k, v }, options);
        await res.done;
        expect(gpu.lastDeviceTimeMs()).toBeGreaterThan(0);
        const info = await res.info();
        expect(info.budget).toEqual(host.budget);
        expect(info.keptLength).toBe(host.keptLength);
        expect(info.indices).toEqual(host.indices);
        expect(await readBuffer(gpu, res.output, host.output.byteLength)).toEqual(host.output);
        // Into a caller's buffer, poisoned with NaN first: every element is overwritten.
        const into = toGpu(gpu, new Float32Array(host.output.length + 4).fill(NaN));
        const again = await gpu.tokenSparseAttentionGpu({ ...input, q, k, v, output: into }, options);
        await again.done;
        expect(again.output).toBe(into);
        expect(await readBuffer(gpu, into, host.output.byteLength)).toEqual(host.output);
        for (const b of [q, k, v, res.output, into]) b.destroy();
      }),
      { numRuns: 4 },
    );
  });

  it('never reads memory it did not write: new buffers filled with 0x01 bytes give identical results', async () => {
    // Dawn fills every new buffer of this device with 0x01 bytes and skips the zero-fill (as on OpenGL by default).
    const dirty = await createWebGpuBackend({ ...ADAPTER, costRule: false, zeroInit: false, dawnToggles: ['nonzero_clear_resources_on_creation_for_testing'] });
    try {
      expect(dirty.description).toContain('new buffers not zero-filled');
      await fc.assert(
        fc.asyncProperty(caseArb, async ({ input, options }) => {
          const a = await expectSameResults(gpu, dirty, input, options);
          if (a.indices) expect(await dirty.attendSelected(input, a.indices, a.keptLength)).toEqual(a.output);
          const [q, k, v] = [toGpu(dirty, input.q), toGpu(dirty, input.k), toGpu(dirty, input.v)];
          const r = await dirty.tokenSparseAttentionGpu({ ...input, q, k, v }, options);
          await r.done;
          expect(await readBuffer(dirty, r.output, a.output.byteLength)).toEqual(a.output);
          for (const x of [q, k, v, r.output]) x.destroy();
        }),
        { numRuns: 4 },
      );
    } finally {
      await dirty.dispose();
    }
  });

  it('rejects an output buffer that is too small or aliases an input', async () => {
    const input = generateInput('gaussian', { heads: 2, kvHeads: 1, headDim: 8, seqLen: 200 }, 4);
    const [q, k, v] = [toGpu(gpu, input.q), toGpu(gpu, input.k), toGpu(gpu, input.v)];
    const small = toGpu(gpu, new Float32Array(2 * 200 * 8 - 1));
    await expect(gpu.tokenSparseAttentionGpu({ ...input, q, k, v, output: small })).rejects.toThrow(/output has 12796 bytes, expected at least 12800 = \[200\]\[16\] f32/);
    await expect(gpu.tokenSparseAttentionGpu({ ...input, q, k, v, output: q })).rejects.toThrow(/output must be a buffer other than q, k and v/);
    for (const b of [q, k, v, small]) b.destroy();
  });

  it('splits tensors over several bindings and buffers (forced small limits) with identical results', async () => {
    // 64 KiB bindings force one or two heads per binding and several output row windows;
    // 64 KiB tensor parts put the heads of Q, K, V and their compact copies in separate GPUBuffers.
    const split = await createWebGpuBackend({ ...ADAPTER, costRule: false, maxBindingBytes: 64 * 1024, maxTensorPartBytes: 64 * 1024 });
    try {
      // 400 x 32 floats per head (51 KiB): one head per binding and per buffer, 8 output row windows.
      const fixed = generateInput('structured', { heads: 6, kvHeads: 2, headDim: 32, seqLen: 400 }, 9);
      const o = { window: 32, minTokens: 64, coverage: 0.2, poolKernel: 5 };
      const [a, b] = [await gpu.tokenSparseAttention(fixed, o), await split.tokenSparseAttention(fixed, o)];
      expect(a.budget.mode).toBe('sparse');
      expect(b.indices).toEqual(a.indices);
      expect(b.output).toEqual(a.output);
      await fc.assert(
        fc.asyncProperty(caseArb, async ({ input, options }) => {
          // At most 400 x 32 floats per head: one head fits a 64 KiB binding.
          const x: AttentionInput = input.headDim <= 32 ? input : generateInput('structured', { ...input, headDim: 32 }, 3);
          await expectSameResults(gpu, split, x, options);
        }),
        { numRuns: 3 },
      );
    } finally {
      await split.dispose();
    }
  });

  it('scores with the logits kept in memory (one Q.K^T pass) equal the two-pass scores', async () => {
    // scoreLogitsBytes 0 recomputes the logits in scoreMean; the default keeps them (they fit here).
    const twoPass = await createWebGpuBackend({ ...ADAPTER, costRule: false, scoreLogitsBytes: 0 });
    try {
      // One head dimension (each one compiles its own pipelines); shapes, windows and inputs vary.
      const arb = fc.record({
        kvHeads: fc.integer({ min: 1, max: 2 }),
        seqLen: fc.integer({ min: 40, max: 400 }),
        window: fc.integer({ min: 1, max: 32 }),
        kind: fc.constantFrom('gaussian', 'structured' as const),
        seed: fc.integer({ min: 0, max: 0x7fffffff }),
      });
      await fc.assert(
        fc.asyncProperty(arb, async (r) => {
          const input = generateInput(r.kind, { heads: 2 * r.kvHeads, kvHeads: r.kvHeads, headDim: 32, seqLen: r.seqLen }, r.seed);
          const options = { window: r.window };
          const [a, b] = [await gpu.scores(input, options), await twoPass.scores(input, options)];
          expect(a.length).toBe(b.length);
          for (let i = 0; i < a.length; i++) expect(Math.abs(a[i]! - b[i]!)).toBeLessThanOrEqual(2e-6 * Math.abs(b[i]!) + 1e-30);
        }),
        { numRuns: 6 },
      );
    } finally {
      await twoPass.dispose();
    }
  });

  it('a destroyed device makes the next call fail with BackendLostError (no hang, no output)', async () => {
    const b = await createWebGpuBackend({ ...ADAPTER, costRule: false });
    const x = generateInput('gaussian', { heads: 2, kvHeads: 1, headDim: 8, seqLen: 64 }, 1);
    expect((await b.dense(x)).length).toBe(64 * 2 * 8);
    b.device.destroy();
    await expect(b.dense(x)).rejects.toBeInstanceOf(BackendLostError);
    await expect(b.tokenSparseAttention(x, { window: 8, minTokens: 8 })).rejects.toThrow(/device was lost/);
    await b.dispose();
    await expect(b.dense(x)).rejects.toBeInstanceOf(BackendLostError);
  });

  it('creates the pipelines of a call side by side (createComputePipelineAsync) before submitting, none one at a time', async () => {
    const b = await createWebGpuBackend({ ...ADAPTER, costRule: false });
    try {
      const d = b.device;
      const made = { sync: 0, async: 0 };
      const sync = d.createComputePipeline.bind(d);
      const async = d.createComputePipelineAsync.bind(d);
      d.createComputePipeline = (x) => (made.sync++, sync(x));
      d.createComputePipelineAsync = (x) => (made.async++, async(x));
      const x = generateInput('structured', { heads: 2, kvHeads: 1, headDim: 16, seqLen: 160 }, 5);
      const options = { window: 16, minTokens: 16 };
      const first = await b.tokenSparseAttention(x, options);
      expect(first.budget.mode).toBe('sparse');
      // score, pool, budget, select, gather, attend (both branches), scatter: one async creation each.
      expect(made.async).toBeGreaterThanOrEqual(8);
      expect(made.sync).toBe(0);
      // Made once: a second call creates nothing, and computes the same.
      const before = made.async;
      const again = await b.tokenSparseAttention(x, options);
      expect(made.async).toBe(before);
      expect(again.output).toEqual(first.output);
      expect((await gpu.tokenSparseAttention(x, options)).output).toEqual(first.output);
    } finally {
      await b.dispose();
    }
  });

  it('profileDispatches: every dispatch timed under its kernel and stage where the adapter has timestamps, the results unchanged', async () => {
    const profiled = await createWebGpuBackend({ ...ADAPTER, costRule: false, profileDispatches: true });
    try {
      const x = generateInput('structured', { heads: 2, kvHeads: 1, headDim: 16, seqLen: 160 }, 3);
      const options = { window: 16, minTokens: 16 };
      const run = async (b: typeof gpu) => {
        const bufs = [toGpu(b, x.q), toGpu(b, x.k), toGpu(b, x.v)];
        const r = await b.tokenSparseAttentionGpu({ ...x, q: bufs[0]!, k: bufs[1]!, v: bufs[2]! }, options);
        await r.done;
        const out = { output: await readBuffer(b, r.output, x.q.byteLength), info: await r.info(), stages: await r.stageMs, dispatches: await r.dispatchMs };
        for (const buf of [...bufs, r.output]) buf.destroy();
        return out;
      };
      const [plain, timed] = [await run(gpu), await run(profiled)];
      expect(timed.output).toEqual(plain.output);
      expect(timed.info.indices).toEqual(plain.info.indices);
      expect(plain.dispatches).toBeNull();
      if (!profiled.device.features.has('timestamp-query')) {
        expect(timed.dispatches).toBeNull();
        return;
      }
      const ds = timed.dispatches!;
      // Every stage of the sparse layer ran kernels; each dispatch names one of them and its stage.
      expect(new Set(ds.map((d) => d.segment))).toEqual(new Set(Object.keys(timed.stages)));
      for (const k of ['scorePartials', 'budgetRadix', 'selectRadix', 'attend', 'scatter']) expect(ds.some((d) => d.kernel.startsWith(k))).toBe(true);
      for (const d of ds) expect(d.ms).toBeGreaterThanOrEqual(0);
      // A stage's time spans its dispatches: at least their sum.
      for (const [stage, ms] of Object.entries(timed.stages)) {
        const sum = ds.filter((d) => d.segment === stage).reduce((a, d) => a + d.ms, 0);
        expect(ms).toBeGreaterThanOrEqual(sum * (1 - 1e-9));
      }
    } finally {
      await profiled.dispose();
    }
  });

  it('reports device time of the last call', async () => {
    await gpu.dense(generateInput('gaussian', { heads: 2, kvHeads: 1, headDim: 16, seqLen: 100 }, 2));
    expect(gpu.lastDeviceTimeMs()).toBeGreaterThan(0);
  });
});

describe('webgpu cost rule', () => {
  const shape = { heads: 2, kvHeads: 1, headDim: 32 };
  const o = { window: 32, minTokens: 64, coverage: 0.2, poolKernel: 3 };

  it('runs dense without scoring where even the best case cannot pay (costly selection)', async () => {
    // Selection 1 us per head and token (0.6 ms here) against dense attention of ~0.05 ms.
    const b = await createWebGpuBackend({ ...ADAPTER, costModel: { ...H200_COST_MODEL, selectMsPerToken: 1e-3 } });
    try {
      const x = generateInput('structured', { ...shape, seqLen: 300 }, 5);
      const res = await b.tokenSparseAttention(x, o);
      expect(res.budget).toMatchObject({ mode: 'dense', reason: 'not-worth-it' });
      expect(res.budget.mode === 'dense' && res.budget.detail).toMatch(/cost rule: even L' = 96 would not beat dense by 10%/);
      expect(res.output).toEqual(await b.dense(x));
      // budget() stays the spec's rule.
      const pooled = await reference.pool(await reference.scores(x, o), { heads: 2, prefixLen: 268 }, o);
      expect(await b.budget(pooled, { heads: 2, prefixLen: 268 }, o)).toEqual(await reference.budget(pooled, { heads: 2, prefixLen: 268 }, o));
    } finally {
      await b.dispose();
    }
  });

  it('decides on the GPU by the probe: near-uniform attention runs dense, heavy-tailed runs sparse', async () => {
    // Free selection, no fixed cost: sparse pays iff F(L') <= 0.8 F(L), so the verdict rests on L' alone.
    const free = { attendRate: 1e7, attendFixedMs: 0, compactPenalty: 1, scoreRate: 1e12, selectMsPerToken: 0, minGain: 0.2 };
    const b = await createWebGpuBackend({ ...ADAPTER, costModel: free });
    const off = await createWebGpuBackend({ ...ADAPTER, costRule: false });
    try {
      const uniform = generateInput('gaussian', { ...shape, seqLen: 400 }, 6);
      const lowTau = { ...o, coverage: 0.01 };
      const spec = await off.tokenSparseAttention(uniform, lowTau);
      expect(spec.budget.mode).toBe('sparse');
      const res = await b.tokenSparseAttention(uniform, lowTau);
      expect(res.budget).toMatchObject({ mode: 'dense', reason: 'not-worth-it' });
      expect(res.budget.mode === 'dense' && res.budget.detail).toMatch(/the probe \(16 of 32 window queries\) estimates L' = \d+ of 400/);
      expect(res.output).toEqual(await b.dense(uniform));

      const heavy = generateInput('structured', { ...shape, seqLen: 400 }, 6);
      const sparse = await b.tokenSparseAttention(heavy, { ...o, coverage: 0.5 });
      expect(sparse.budget.mode).toBe('sparse');
      const specHeavy = await off.tokenSparseAttention(heavy, { ...o, coverage: 0.5 });
      expect(sparse.indices).toEqual(specHeavy.indices);
      expect(sparse.output).toEqual(specHeavy.output);
    } finally {
      await b.dispose();
      await off.dispose();
    }
  });

  it('takes core cost models only, pinned and validated, and reports them', async () => {
    const b = await createWebGpuBackend({ ...ADAPTER, costModel: H200_COST_MODEL });
    try {
      expect(await b.costRates!()).toBe(H200_COST_MODEL);
    } finally {
      await b.dispose();
    }
    await expect(createWebGpuBackend({ ...ADAPTER, costModel: { ...H200_COST_MODEL, scoreRate: 0 } })).rejects.toThrow(/option costModel: scoreRate/);
  });
});
