/**
 * Core's cost rule on the WebGPU backend (gpu/cost.ts, gpu/layer.ts: the probe, its budget and
 * the gate on the device; gpu/calibrate.ts), on the adapter TSA_WEBGPU_ADAPTER names, with pinned
 * rates so every decision is reproducible: it never changes a sparse result (indices, budget and
 * output identical to costRule: false whenever the probe lets the layer run sparse), the device's
 * verdict is core's host probe (probe.ts) over the backend's own stages, a dense
 * verdict is exact dense attention, near-uniform attention is routed to dense and structured to
 * sparse, the GPU-resident entry decides the same, and the rates are calibrated once per adapter.
 */
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { beforeProbe, checkCostOptions, type CostModel } from '../harness/core/cost.js';
import { generateInput } from '../harness/core/generators.js';
import type { TsaOptions } from '../harness/core/interface.js';
import { probeVerdict } from '../harness/core/probe.js';
import { denseBeforeScoring } from '../harness/core/rules.js';
import { resolveOptions } from '../harness/core/validate.js';
import { createWebGpuBackend, type WebGpuBackend } from '../gpu/index.js';
import { caseArb, caseInput } from './shared/arbitraries.js';
import { ADAPTER } from './shared/webgpu-adapter.js';

/** Free scoring and a chosen minGain: sparse pays iff F(L') <= (1 - minGain) F(L), so both verdicts occur. */
const tipping = (minGain: number): CostModel => ({ attendRate: 1e7, attendFixedMs: 0, compactPenalty: 1, scoreRate: 1e12, selectMsPerToken: 0, minGain });

const GAINS = [0, 0.4, 0.8];

describe('webgpu cost rule on the device', () => {
  const backends: WebGpuBackend[] = [];
  let off: WebGpuBackend;
  beforeAll(async () => {
    for (const gain of GAINS) backends.push(await createWebGpuBackend({ ...ADAPTER, costModel: tipping(gain) }));
    off = await createWebGpuBackend({ ...ADAPTER, costRule: false });
  });
  afterAll(async () => {
    for (const b of backends) await b.dispose();
    await off.dispose();
  });

  it('never changes a sparse result; a dense verdict is exact dense attention with the estimate', async () => {
    const seen = { sparse: 0, notWorthIt: 0 };
    await fc.assert(
      fc.asyncProperty(caseArb({ maxSeqLen: 600, length: 'above', work: 1e7 }), fc.integer({ min: 0, max: backends.length - 1 }), async (c, pick) => {
        const b = backends[pick]!;
        const input = caseInput(c);
        const on = await b.tokenSparseAttention(input, c.options);
        const spec = await off.tokenSparseAttention(input, c.options);
        // The device's probe and gate decide as core's host probe (probe.ts) over the backend's own stages.
        const o = resolveOptions(c.options);
        const model = tipping(GAINS[pick]!);
        if (!denseBeforeScoring(input.seqLen, o) && !beforeProbe(input, o, model)) {
          expect(await probeVerdict(b, input, o, model)).toEqual(on.budget.mode === 'dense' && on.budget.reason === 'not-worth-it' ? on.budget : null);
        }
        if (on.budget.mode === 'sparse') {
          seen.sparse++;
          expect(on.budget).toEqual(spec.budget);
          expect(on.indices).toEqual(spec.indices);
          expect(on.keptLength).toBe(spec.keptLength);
          expect(on.output).toEqual(spec.output);
        } else if (on.budget.reason === 'not-worth-it') {
          seen.notWorthIt++;
          expect(on.budget.detail).toMatch(/cost rule: (the probe \(\d+ of \d+ window queries\) estimates L' = \d+ of \d+|even L' = \d+ would not beat dense)/);
          expect(on.indices).toBeNull();
          expect(on.keptFraction).toBe(1);
          expect(on.output).toEqual(await b.dense(input));
        } else {
          expect(on.budget).toEqual(spec.budget);
          expect(on.output).toEqual(spec.output);
        }
      }),
      { numRuns: 25 },
    );
    expect(seen.sparse).toBeGreaterThan(0);
    expect(seen.notWorthIt).toBeGreaterThan(0);
  }, 900_000); // random head dimensions compile new tile shapes: 200-405 s on llvmpipe (2 cores) with an empty Mesa shader cache, 4 s warm

  it('routes Gaussian (near-uniform) inputs to dense after the probe and structured ones to the sparse pipeline', async () => {
    const b = backends[1]!; // minGain 0.4: sparse pays for L' <= ~0.77 L
    const shape = { heads: 4, kvHeads: 2, headDim: 32, seqLen: 768 };
    const o: TsaOptions = { window: 64, minTokens: 64, coverage: 0.01 };
    for (const seed of [3, 4]) {
      const gaussian = generateInput('gaussian', shape, seed);
      expect((await off.tokenSparseAttention(gaussian, o)).budget.mode).toBe('sparse'); // the spec would select
      const g = await b.tokenSparseAttention(gaussian, o);
      expect(g.budget.mode === 'dense' && g.budget.reason).toBe('not-worth-it');
      expect(g.budget.mode === 'dense' && g.budget.detail).toMatch(/the probe \(16 of 64 window queries\) estimates L' = \d+ of 768/);
      const structured = generateInput('structured', shape, seed);
      const s = await b.tokenSparseAttention(structured, { ...o, coverage: 0.5 });
      expect(s.budget.mode).toBe('sparse');
      expect(s.keptFraction).toBeLessThan(0.77);
      expect(s.indices).toEqual((await off.tokenSparseAttention(structured, { ...o, coverage: 0.5 })).indices);
    }
  });

  it('decides the same on GPU-resident inputs (tokenSparseAttentionGpu)', async () => {
    const b = backends[1]!;
    const shape = { heads: 2, kvHeads: 1, headDim: 32, seqLen: 400 };
    const o: TsaOptions = { window: 32, minTokens: 32, coverage: 0.01 };
    for (const kind of ['gaussian', 'structured'] as const) {
      const x = generateInput(kind, shape, 9);
      const host = await b.tokenSparseAttention(x, o);
      const upload = (data: Float32Array) => {
        const buf = b.device.createBuffer({ size: data.byteLength, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST });
        b.device.queue.writeBuffer(buf, 0, data);
        return buf;
      };
      const res = await b.tokenSparseAttentionGpu({ ...shape, q: upload(x.q), k: upload(x.k), v: upload(x.v) }, o);
      const info = await res.info();
      expect(info.budget).toEqual(host.budget);
      expect(info.indices).toEqual(host.indices);
    }
  });

  it('calibrates once per adapter when not pinned: valid rates, the same for every backend on it; a later call of the rule compiles nothing', async () => {
    const a = await createWebGpuBackend({ ...ADAPTER });
    const [r1, r2] = await Promise.all([a.costRates!(), a.costRates!()]);
    expect(r1).toBe(r2);
    expect(() => checkCostOptions({ costModel: r1 })).not.toThrow();
    // The calibration (at D 128) created every pipeline of the rule's layer at D 128, the probe's included, in one batch.
    const created: string[] = [];
    for (const name of ['createComputePipeline', 'createComputePipelineAsync'] as const) {
      const create = a.device[name].bind(a.device) as (d: GPUComputePipelineDescriptor) => never;
      a.device[name] = ((d: GPUComputePipelineDescriptor) => (created.push(d.label ?? '?'), create(d))) as never;
    }
    const input = generateInput('structured', { heads: 2, kvHeads: 1, headDim: 128, seqLen: 1024 }, 5);
    const r = await a.tokenSparseAttention(input, { minTokens: 64 });
    // The rule probed (a sparse layer, or the probe's not-worth-it verdict): its kernels were recorded.
    expect(r.budget.mode === 'sparse' || r.budget.detail.includes('probe')).toBe(true);
    expect(created).toEqual([]);
    const again = await createWebGpuBackend({ ...ADAPTER });
    expect(await again.costRates!()).toBe(r1);
    await Promise.all([a.dispose(), again.dispose()]);
  });
});
