/**
 * The public wasm matmul (createWasmMatmul: C = A B^T, assembly/kernels/matmul.ts) against a plain
 * float64 matmul on random shapes, including sizes that are not multiples of the SIMD width (4)
 * or of the register tile (4 rows x 8 columns), and the runtime's plain-loop jsMatmul.
 */
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Rng } from '../harness/core/generators.js';
import { createWasmMatmul, TsaInputError, type WasmMatmul } from '../harness/index.js';
import { jsMatmul } from '../harness/llama/blocks.js';

let two: WasmMatmul;
let one: WasmMatmul;

beforeAll(async () => {
  two = await createWasmMatmul({ threads: 2 });
  one = await createWasmMatmul({ threads: 1 });
});

afterAll(async () => {
  await two.dispose();
  await one.dispose();
});

/** C = A B^T in float64, and sum_kk |A[i][kk] B[j][kk]| per entry (the scale of its rounding error). */
function reference(a: Float32Array, b: Float32Array, m: number, k: number, n: number): { c: Float64Array; scale: Float64Array } {
  const c = new Float64Array(m * n);
  const scale = new Float64Array(m * n);
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      let s = 0;
      let t = 0;
      for (let kk = 0; kk < k; kk++) {
        s += a[i * k + kk]! * b[j * k + kk]!;
        t += Math.abs(a[i * k + kk]! * b[j * k + kk]!);
      }
      c[i * n + j] = s;
      scale[i * n + j] = t;
    }
  }
  return { c, scale };
}

const shapes = fc.record({
  m: fc.integer({ min: 1, max: 41 }),
  k: fc.integer({ min: 1, max: 70 }),
  n: fc.integer({ min: 1, max: 37 }),
  seed: fc.integer(),
});

function operands(m: number, k: number, n: number, seed: number): { a: Float32Array; b: Float32Array } {
  const rng = new Rng(seed);
  return { a: rng.fillNormal(new Float32Array(m * k)), b: rng.fillNormal(new Float32Array(n * k)) };
}

/** f32 sums of k products: each of the k roundings is at most 2^-24 of a partial sum <= scale. */
function expectClose(got: Float32Array, ref: { c: Float64Array; scale: Float64Array }, k: number): void {
  expect(got.length).toBe(ref.c.length);
  for (let i = 0; i < got.length; i++) {
    expect(Math.abs(got[i]! - ref.c[i]!)).toBeLessThanOrEqual((k + 2) * 2 ** -23 * ref.scale[i]! + 1e-30);
  }
}

describe('wasm matmul', () => {
  it('equals a float64 matmul to f32 rounding on random shapes (1 and 2 threads, the same bits)', async () => {
    await fc.assert(
      fc.asyncProperty(shapes, async ({ m, k, n, seed }) => {
        const { a, b } = operands(m, k, n, seed);
        const got = await two.matmul(a, b, m, k, n);
        expectClose(got, reference(a, b, m, k, n), k);
        expect(await one.matmul(a, b, m, k, n)).toEqual(got);
      }),
      { numRuns: 60 },
    );
  });

  it('handles model-sized products whose sizes are not multiples of the tile (m 67, k 259, n 131)', async () => {
    const [m, k, n] = [67, 259, 131];
    const { a, b } = operands(m, k, n, 5);
    expectClose(await two.matmul(a, b, m, k, n), reference(a, b, m, k, n), k);
  });

  it('rejects sizes that do not match the arrays with TsaInputError (SHAPE)', async () => {
    const a = new Float32Array(6);
    const b = new Float32Array(6);
    expect(() => two.matmul(a, b, 2, 3, 3)).toThrow(TsaInputError);
    expect(() => two.matmul(a, b, 3, 3, 2)).toThrow(/A has 6 floats, expected m \* k = 9/);
    expect(() => two.matmul(a, b, 0, 3, 2)).toThrow(/m must be a positive integer/);
    expect(two.description).toMatch(/^wasm (relaxed-)?simd matmul, 2 threads$/);
  });

  it('jsMatmul (the runtime fallback, float64 sums) equals the reference rounded once to f32', async () => {
    await fc.assert(
      fc.asyncProperty(shapes, async ({ m, k, n, seed }) => {
        const { a, b } = operands(m, k, n, seed);
        expect(await jsMatmul(a, b, m, k, n)).toEqual(Float32Array.from(reference(a, b, m, k, n).c));
      }),
      { numRuns: 30 },
    );
  });
});
