/**
 * fast-check arbitraries for the shared backend suite: random shapes, options and
 * seeded inputs (Gaussian and heavy-tailed), fresh on every run.
 */
import fc from 'fast-check';
import { generateInput, type InputKind } from '../../harness/core/generators.js';
import type { AttentionInput, ResolvedTsaOptions } from '../../harness/core/interface.js';

/** One random configuration; `input()` builds its seeded Q, K, V. */
export interface TsaCase {
  heads: number;
  kvHeads: number;
  headDim: number;
  seqLen: number;
  options: ResolvedTsaOptions;
  kind: InputKind;
  seed: number;
}

export function caseInput(c: TsaCase): AttentionInput {
  return generateInput(c.kind, { heads: c.heads, kvHeads: c.kvHeads, headDim: c.headDim, seqLen: c.seqLen }, c.seed);
}

export interface CaseConstraints {
  /** Cap on L (the backend's maxSeqLen), at least 8. */
  maxSeqLen: number;
  /**
   * Where L lies relative to minTokens + W: 'above' takes the sparse path
   * (L > minTokens + W), 'below' the short-context dense fallback, 'either' both.
   */
  length?: 'above' | 'below' | 'either';
  /** 'grouped' forces H / Hkv >= 2 (GQA); 'any' also draws MHA (Hkv = H) and MQA. */
  heads?: 'any' | 'grouped';
  /** Coverage tau; default a mix of small (the paper's range) and large values. */
  coverage?: fc.Arbitrary<number>;
  /**
   * Cost cap: L is at most sqrt(work / (H * D)), so long sequences come with few heads or a small
   * head dimension (the float64 reference is O(H L^2 D)).
   */
  work?: number;
}

/** tau in (0, 1): mostly the paper's small values, sometimes large ones that prune most tokens. */
export const coverageArb = fc.oneof(
  { arbitrary: fc.double({ min: 1e-4, max: 0.02, noNaN: true }), weight: 1 },
  { arbitrary: fc.double({ min: 0.02, max: 0.9, noNaN: true }), weight: 2 },
);

/**
 * A share in [0, 1): uniform in value (fc.double is uniform over float representations, which
 * piles up near 0), with the ends drawn now and then for edge cases.
 */
export const unitArb = fc.oneof(
  { arbitrary: fc.constantFrom(0, 0.999999), weight: 1 },
  { arbitrary: fc.noBias(fc.integer({ min: 0, max: 999_999 })).map((i) => i / 1e6), weight: 5 },
);

/**
 * Random case: Hkv in 1..3 with H = G * Hkv <= 6, D in 1..48 or 64/96/128, W in 1..64,
 * odd P in 1..9, minTokens >= 1, L per `length`, tau > 0, Gaussian or structured input.
 */
export function caseArb(c: CaseConstraints): fc.Arbitrary<TsaCase> {
  if (!(c.maxSeqLen >= 8)) throw new Error(`maxSeqLen must be at least 8, got ${c.maxSeqLen}`);
  const length = c.length ?? 'either';
  const work = c.work ?? 4e8;
  return fc
    .record({
      kvHeads: fc.integer({ min: 1, max: 3 }),
      group: fc.integer({ min: 1, max: 6 }),
      headDim: fc.oneof(fc.integer({ min: 1, max: 48 }), fc.constantFrom(64, 96, 128)),
      window: fc.integer({ min: 1, max: 64 }),
      poolKernel: fc.constantFrom(1, 3, 5, 7, 9),
      // Length tier: mostly short sequences, some long ones (capped by `work`).
      tier: fc.oneof({ arbitrary: fc.constant(320), weight: 4 }, { arbitrary: fc.constant(900), weight: 2 }, { arbitrary: fc.constant(Infinity), weight: 1 }),
      above: length === 'either' ? fc.oneof({ arbitrary: fc.constant(true), weight: 3 }, { arbitrary: fc.constant(false), weight: 1 }) : fc.constant(length === 'above'),
      u1: unitArb,
      u2: unitArb,
      coverage: c.coverage ?? coverageArb,
      kind: fc.constantFrom<InputKind>('gaussian', 'structured'),
      seed: fc.integer({ min: 0, max: 0x7fffffff }),
    })
    .filter((r) => (c.heads !== 'grouped' || r.group >= 2) && r.kvHeads * r.group <= 6)
    .map((r): TsaCase => {
      const heads = r.kvHeads * r.group;
      const byWork = Math.floor(Math.sqrt(work / (heads * r.headDim)));
      const cap = Math.min(c.maxSeqLen, Math.max(16, Math.min(r.tier, byWork)));
      const window = Math.min(r.window, Math.floor(cap / 4));
      // minTokens in [1, cap - W - 1] leaves room for L on either side of minTokens + W.
      const minTokens = 1 + Math.floor(r.u1 * (cap - window - 1));
      const seqLen = r.above
        ? minTokens + window + 1 + Math.floor(r.u2 * (cap - minTokens - window))
        : window + 1 + Math.floor(r.u2 * minTokens);
      return {
        heads,
        kvHeads: r.kvHeads,
        headDim: r.headDim,
        seqLen,
        options: { coverage: r.coverage, window, poolKernel: r.poolKernel, minTokens },
        kind: r.kind,
        seed: r.seed,
      };
    });
}
