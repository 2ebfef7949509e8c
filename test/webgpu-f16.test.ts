/**
 * Precision 'f16' of the WebGPU backend on Dawn's Vulkan backend (lavapipe in
 * CI: shader-f16 without subgroup matrices, so the plain f16 kernel; the
 * subgroup-matrix kernel runs where the adapter has it, e.g. the H200, and is
 * checked there by `tsa conformance --precision f16` and scripts/f16-lab.mjs).
 * - the kernel contract: output within 2e-3 max|V| of float64 attention on the
 *   f16-rounded inputs (q' = f16(q / sqrt(D)), k, v f16), every element written;
 * - the shared suite as its own variant ('float16': f16 outputs within
 *   f16OutputBound of the f64 oracle, scores of f16-rounded q and k, selections valid within
 *   that rounding, golden indices exact);
 * - scores, indices at f16 equal the f32 path's on f16-rounded q and k;
 * - scorePartials-f16 (the matrix-unit scoring) with emulated matrices against float64;
 * - attendBlocks and the composed XAttention layer at f16 (the plain f16 kernel in block mode)
 *   within f16OutputBound of the reference;
 * - per-call f16 where a backend has no f16: TsaInputError PRECISION; bad values: OPTION.
 */
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateInput } from '../harness/core/generators.js';
import { compactInput, scatterCompact } from '../harness/core/block-sparse.js';
import { F16_KERNEL_BOUND, f16OutputBound } from '../harness/core/precision.js';
import { createWebGpuBackend, H200_COST_MODEL, type WebGpuBackend } from '../gpu/index.js';
import { createReferenceBackend } from '../reference/index.js';
import { createWasmBackend } from '../assembly/node.js';
import { describeBackendSuite } from './shared/backend-suite.js';

const F16_OPTIONS = { adapter: 'vulkan' as const, precision: 'f16' as const, costRule: false };

describeBackendSuite({
  name: 'webgpu f16',
  create: () => createWebGpuBackend(F16_OPTIONS),
  precision: 'float16',
  maxSeqLen: 160,
  numRuns: 2,
  golden: ['e_gauss_h4kv2_d64_l1100_dense'],
});

/** x rounded to the nearest f16 (ties to even), as a number. */
function toF16(x: number): number {
  const f = new Float32Array(1);
  if (x === 0 || !Number.isFinite(x)) return x;
  const e = Math.max(Math.floor(Math.log2(Math.abs(x))), -14);
  const ulp = 2 ** (e - 10);
  const q = x / ulp;
  const r = Math.floor(q);
  const rounded = q - r > 0.5 || (q - r === 0.5 && r % 2 !== 0) ? r + 1 : r;
  f[0] = rounded * ulp;
  return f[0]!;
}

/** The f16 bit pattern of x (x already an f16 value, or rounded by toF16 first). */
function halfBits(x: number): number {
  const h = toF16(x);
  if (h === 0) return Object.is(h, -0) ? 0x8000 : 0;
  const sign = h < 0 ? 0x8000 : 0;
  const a = Math.abs(h);
  if (a < 2 ** -14) return sign | Math.round(a / 2 ** -24);
  const e = Math.floor(Math.log2(a));
  return sign | ((e + 15) << 10) | Math.round((a / 2 ** e - 1) * 1024);
}

/** float64 causal attention (GQA) on f16-rounded inputs, scale applied to q before rounding; [L][H*D]. */
function f16Oracle(q: Float32Array, k: Float32Array, v: Float32Array, H: number, Hkv: number, D: number, L: number): Float64Array {
  const scale = Math.fround(1 / Math.sqrt(D));
  const qh = q.map((x) => toF16(Math.fround(x * scale)));
  const kh = k.map(toF16);
  const vh = v.map(toF16);
  const out = new Float64Array(L * H * D);
  const s = new Float64Array(L);
  for (let h = 0; h < H; h++) {
    const kv = Math.floor(h / (H / Hkv)) * L * D;
    for (let i = 0; i < L; i++) {
      let m = -Infinity;
      for (let j = 0; j <= i; j++) {
        let x = 0;
        for (let c = 0; c < D; c++) x += qh[(h * L + i) * D + c]! * kh[kv + j * D + c]!;
        s[j] = x;
        m = Math.max(m, x);
      }
      let l = 0;
      for (let j = 0; j <= i; j++) l += (s[j] = Math.exp(s[j]! - m));
      for (let c = 0; c < D; c++) {
        let x = 0;
        for (let j = 0; j <= i; j++) x += s[j]! * vh[kv + j * D + c]!;
        out[i * H * D + h * D + c] = x / l;
      }
    }
  }
  return out;
}

describe('webgpu precision f16', () => {
  let b: WebGpuBackend;
  beforeAll(async () => {
    b = await createWebGpuBackend(F16_OPTIONS);
  });
  afterAll(() => b?.dispose());

  it('dense output is within 2e-3 max|V| of float64 attention on the f16-rounded inputs', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.record({
          kvHeads: fc.integer({ min: 1, max: 2 }),
          group: fc.integer({ min: 1, max: 2 }),
          headDim: fc.oneof(fc.integer({ min: 1, max: 40 }), fc.constant(64)),
          seqLen: fc.integer({ min: 1, max: 200 }),
          kind: fc.constantFrom('gaussian', 'structured' as const),
          seed: fc.integer({ min: 0, max: 0x7fffffff }),
        }),
        async (r) => {
          const H = r.kvHeads * r.group;
          const input = generateInput(r.kind, { heads: H, kvHeads: r.kvHeads, headDim: r.headDim, seqLen: r.seqLen }, r.seed);
          const got = await b.dense(input);
          const want = f16Oracle(input.q, input.k, input.v, H, r.kvHeads, r.headDim, r.seqLen);
          let vMax = 0;
          for (const x of input.v) vMax = Math.max(vMax, Math.abs(toF16(x)));
          let worst = 0;
          for (let i = 0; i < want.length; i++) worst = Math.max(worst, Number.isFinite(got[i]!) ? Math.abs(got[i]! - want[i]!) : Infinity);
          expect(worst).toBeLessThanOrEqual(F16_KERNEL_BOUND * vMax);
        },
      ),
      { numRuns: 6 },
    );
  }, 120_000);

  it('says which precision and kernel ran', async () => {
    const input = generateInput('structured', { heads: 2, kvHeads: 1, headDim: 16, seqLen: 200 }, 5);
    const f16 = await b.tokenSparseAttention(input, { window: 16, minTokens: 8 });
    expect(f16.precision).toBe('f16');
    expect(f16.attendKernel).toMatch(/^attend-f16/);
    // f16 scores f16-rounded q and k (D 16: the scale 1/4 is exact, so the same logits as f32 on them).
    const rounded = { ...input, q: input.q.map(toF16), k: input.k.map(toF16) };
    const f32 = await b.tokenSparseAttention(rounded, { window: 16, minTokens: 8, precision: 'f32' });
    expect(f32.precision).toBe('f32');
    expect(f16.budget.mode).toBe('sparse');
    expect(f16.indices).toEqual(f32.indices);
    expect(Array.from(await b.scores(input, { window: 16 }))).toEqual(Array.from(await b.scores(rounded, { window: 16, precision: 'f32' })));
    expect(b.description).toMatch(/shader-f16/);
  });

  it('GPU-resident f16 inputs and output equal the f32 path on the same f16 values, rounded to f16', async () => {
    const base = generateInput('structured', { heads: 4, kvHeads: 2, headDim: 24, seqLen: 260 }, 11);
    const input = { ...base, q: base.q.map(toF16), k: base.k.map(toF16), v: base.v.map(toF16) };
    const opts = { window: 16, minTokens: 8 };
    const want = await b.tokenSparseAttention(input, opts);
    const dev = b.device;
    const upload = (x: Float32Array) => {
      const buf = dev.createBuffer({ size: Math.ceil((x.length * 2) / 4) * 4, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST | GPUBufferUsage.COPY_SRC });
      const bits = new Uint16Array(Math.ceil(x.length / 2) * 2);
      x.forEach((v, i) => (bits[i] = halfBits(v)));
      dev.queue.writeBuffer(buf, 0, bits);
      return buf;
    };
    const [q, k, v] = [input.q, input.k, input.v].map(upload);
    const res = await b.tokenSparseAttentionGpu({ ...input, q: q!, k: k!, v: v!, dtype: 'f16', outputDtype: 'f16' }, opts);
    await res.done;
    const n = want.output.length;
    const st = dev.createBuffer({ size: Math.ceil((n * 2) / 4) * 4, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
    const enc = dev.createCommandEncoder();
    enc.copyBufferToBuffer(res.output, 0, st, 0, st.size);
    dev.queue.submit([enc.finish()]);
    await st.mapAsync(GPUMapMode.READ);
    const got = new Uint16Array(st.getMappedRange().slice(0));
    st.destroy();
    const short = upload(input.q.subarray(0, input.q.length / 2));
    await expect(b.tokenSparseAttentionGpu({ ...input, q: short, k: k!, v: v!, dtype: 'f16' })).rejects.toMatchObject({ inputCode: 'SHAPE' });
    for (const x of [q, k, v, short, res.output]) x!.destroy();
    const mismatches = Array.from(want.output).filter((x, i) => halfBits(x) !== got[i]).length;
    expect(mismatches).toBe(0);
    expect((await res.info()).indices).toEqual(want.indices);
  });

  it('scorePartials-f16 (the matrix-unit scoring, matrices emulated in plain WGSL) matches float64 on the same f16 values', async () => {
    // The subgroup-matrix kernel runs only where the adapter has subgroup matrices (an H200: `tsa conformance --precision f16`);
    // here its indexing, masks and folds run with every invocation holding whole matrices.
    // @ts-expect-error a plain-JS module of the scripts
    const { scoreF16Checker } = await import('../scripts/score-f16-checks.mjs');
    const { check } = scoreF16Checker(b.device, { emulate: true });
    await fc.assert(
      fc.asyncProperty(
        fc.record({
          Hkv: fc.integer({ min: 1, max: 2 }),
          group: fc.constantFrom(1, 2, 4),
          D: fc.oneof(fc.integer({ min: 1, max: 40 }), fc.constant(128)),
          L: fc.integer({ min: 130, max: 300 }),
          W: fc.integer({ min: 1, max: 128 }),
          mag: fc.double({ min: 0.3, max: 3, noNaN: true }),
          seed: fc.integer({ min: 0, max: 0x7fffffff }),
        }),
        async (r) => {
          const res = await check({ ...r, H: r.Hkv * r.group });
          expect(res.logitErr).toBeLessThan(1e-5);
          expect(res.mErr).toBeLessThan(1e-5);
          expect(res.lErr).toBeLessThan(1e-4);
        },
      ),
      { numRuns: 4 },
    );
  }, 600_000);

  it('attendBlocks at f16 (the plain f16 kernel walking the key-block lists) is within the f16 bound, alone and composed', () =>
    fc.assert(
      fc.asyncProperty(
        fc.record({
          kvHeads: fc.integer({ min: 1, max: 2 }),
          group: fc.integer({ min: 1, max: 2 }),
          headDim: fc.constantFrom(7, 64),
          seqLen: fc.integer({ min: 40, max: 300 }),
          blockSize: fc.constantFrom(16, 48, 128),
          keep: fc.double({ min: 0, max: 1, noNaN: true }),
          seed: fc.integer({ min: 0, max: 0x7fffffff }),
        }),
        async (r) => {
          const input = generateInput('structured', { heads: r.kvHeads * r.group, kvHeads: r.kvHeads, headDim: r.headDim, seqLen: r.seqLen }, r.seed);
          const o = { coverage: 0.02, window: 8, minTokens: 24, blockSparse: { method: 'xattention' as const, blockSize: r.blockSize, stride: 4 } };
          const nb = Math.ceil(r.seqLen / r.blockSize);
          const mask = new Uint8Array(input.heads * nb * nb);
          for (let h = 0; h < input.heads; h++) for (let i = 0; i < nb; i++) for (let j = 0; j <= i; j++) mask[(h * nb + i) * nb + j] = j === i || ((i * 31 + j * 17 + h) % 100) / 100 < r.keep ? 1 : 0;
          const ref = createReferenceBackend();
          const bound = f16OutputBound(input);
          const expectWithin = (a: Float32Array, b: Float32Array) => a.forEach((x, i) => expect(Math.abs(x - b[i]!)).toBeLessThanOrEqual(bound));
          expectWithin(await b.attendBlocks(input, mask, o), await ref.attendBlocks(input, mask, o));
          const res = await b.tokenSparseAttention(input, o);
          expect(res.attendKernel).toMatch(/^attend-f16-plain-blocks:/);
          const bs = res.blockSparse!;
          const x = res.indices ? compactInput(input, res.indices, res.keptLength) : input;
          const out = await ref.attendBlocks(x, bs.mask, o);
          expectWithin(res.output, res.indices ? scatterCompact(out, res.indices, res.keptLength, input.heads, input.headDim, input.seqLen) : out);
        },
      ),
      { numRuns: 6 },
    ), 300_000);

  it('rejects f16 where the backend has none (PRECISION) and unknown precisions (OPTION)', async () => {
    const ref = createReferenceBackend();
    const input = generateInput('gaussian', { heads: 1, kvHeads: 1, headDim: 8, seqLen: 20 }, 1);
    await expect(ref.dense(input, { precision: 'f16' })).rejects.toMatchObject({ inputCode: 'PRECISION' });
    await expect(b.dense(input, { precision: 'bf16' as never })).rejects.toMatchObject({ inputCode: 'OPTION' });
    const wasm = await createWasmBackend({ threads: 1 });
    await expect(wasm.costRates!({ precision: 'f16' })).rejects.toMatchObject({ inputCode: 'PRECISION' });
    await wasm.dispose();
  });

  it('costRates takes the precision: pinned rates answer for f16 and f32 alike, the default is the backend\'s', async () => {
    // (Fitting both on lavapipe takes minutes with a cold shader cache; `tsa backends --rates`
    // shows both fits on an H200, BENCHMARKS.md.)
    const pinned = await createWebGpuBackend({ ...F16_OPTIONS, costModel: H200_COST_MODEL });
    try {
      expect(await pinned.costRates!({ precision: 'f16' })).toBe(H200_COST_MODEL);
      expect(await pinned.costRates!({ precision: 'f32' })).toBe(H200_COST_MODEL);
      expect(await pinned.costRates!()).toBe(H200_COST_MODEL);
      await expect(pinned.costRates!({ precision: 'bf16' as never })).rejects.toMatchObject({ inputCode: 'OPTION' });
    } finally {
      await pinned.dispose();
    }
  });
});
