import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { maxAbsErr, maxRelErr } from '../harness/core/compare.js';

const arrays = fc.integer({ min: 1, max: 64 }).chain((n) =>
  fc.tuple(
    fc.float32Array({ minLength: n, maxLength: n, noNaN: true, noDefaultInfinity: true }),
    fc.float32Array({ minLength: n, maxLength: n, noNaN: true, noDefaultInfinity: true }),
    fc.nat(n - 1),
  ),
);

describe('array comparisons', () => {
  it('maxAbsErr is the largest |a - b|; a NaN anywhere makes it NaN, even before a larger finite error', () => {
    fc.assert(
      fc.property(arrays, ([a, b, at]) => {
        let worst = 0;
        for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i]! - b[i]!));
        expect(maxAbsErr(a, b)).toBe(worst);
        const withNaN = Float32Array.from(a);
        withNaN[at] = NaN;
        expect(maxAbsErr(withNaN, b)).toBeNaN();
        expect(maxRelErr(withNaN, b)).toBeNaN();
      }),
    );
  });

  it('maxRelErr divides by |b| and ignores exact matches (also where b is 0)', () => {
    expect(maxRelErr(Float32Array.of(1, 0, 3), Float32Array.of(2, 0, 3))).toBe(0.5);
    expect(maxRelErr(Float32Array.of(1), Float32Array.of(0))).toBe(Infinity);
  });
});
