/**
 * Seeded input generators for tests and benchmarks.
 *
 * - gaussian: every q, k, v value i.i.d. N(0, 1). Attention is near uniform,
 *   so almost nothing is pruned: the worst case for TSA's overhead.
 * - structured: heavy-tailed attention as in trained models. About 3% of
 *   positions are "heavy" for every KV head (like the delimiters and sinks
 *   that most heads of a trained model attend to). Per KV head g a random unit
 *   direction u_g; keys k_t = noise + a_{g,t} * u_g with a = SINK for token 0,
 *   an independent Pareto-tailed strength per KV head at heavy positions, 0
 *   elsewhere; queries q = noise + beta_h * sqrt(D) * u_g, so a key's logit is
 *   lifted by about beta_h * a_{g,t}. Values are plain noise. At tau 0.005
 *   TSA keeps about 0.45-0.57 of the tokens from L = 2K to 128K, depending on
 *   the seed and head counts (0.50-0.57 at H 32, Hkv 8, D 128: the regime
 *   the H200 benchmarks of the WebGPU backend are specified for).
 * - local: structured plus a RoPE locality term, as in trained models where most heads attend to
 *   recent tokens: one fixed random unit vector w (norm sqrt(2/D) in every RoPE pair, random
 *   phases), and q_t += c R(t) w, k_s += c R(s) w with R the
 *   RoPE rotation (base 10000; pair (2i, 2i+1) turned by the angle t * 10000^(-2i/D)), so the
 *   logit gains c^2 (2/D) sum_i cos((t - s) 10000^(-2i/D)) / sqrt(D), which is
 *   c^2 / sqrt(D) at t = s and decays with |t - s|. LOCAL holds c = cScale D^(1/4) (the lift at
 *   t = s is cScale^2 for every D) and the heavy-token settings (heavy lifts from 2, not 3.3).
 *   Calibrated once, wasm backend, seeds 1 and 2, L 32768, H 32, Hkv 8, D 128: TSA (tau 0.005)
 *   keeps 0.563 / 0.546 of the tokens and XAttention alone (S 16, T 0.9) 0.131 / 0.171 of the
 *   causal blocks (the 0.45-0.65 and 10-35%); L 16384, H 8, Hkv 2, seed 1: 0.558 and 0.196.
 * gpu/generate.ts writes the structured and local distributions on the device (its kernel is
 * built from STRUCTURED, LOCAL and the formulas of heavyLift, queryAlignment and addLocality).
 */
import type { AttentionInput, AttentionShape } from './interface.js';

export type InputKind = 'gaussian' | 'structured' | 'local';
export const INPUT_KINDS: readonly InputKind[] = ['gaussian', 'structured', 'local'];

/** Structured-input parameters (logit lifts, in units of the score). */
export const STRUCTURED = Object.freeze({
  sink: 12,
  /** Share of positions heavy for every KV head (strengths differ per KV head). */
  heavyShare: 0.03,
  /** Pareto scale and tail index of heavy-token lifts, capped at heavyMax. */
  heavyMin: 3.3,
  heavyAlpha: 1.5,
  heavyMax: 11,
  /** Query alignment per head within its GQA group, from 1 down to betaMin. */
  betaMin: 0.85,
});

/** The structured settings (STRUCTURED's fields as numbers). */
export type StructuredParams = Readonly<Record<keyof typeof STRUCTURED, number>>;

/** Local-input parameters: locality strength c = cScale * D^(1/4), and the structured settings of this kind. */
export const LOCAL: Readonly<{ cScale: number; structured: StructuredParams }> = Object.freeze({
  cScale: 3.5,
  structured: { ...STRUCTURED, heavyMin: 2 },
});

/** xoshiro128** PRNG: fast, seedable, 32-bit state words. */
export class Rng {
  private a: number;
  private b: number;
  private c: number;
  private d: number;
  private spare: number | null = null;

  constructor(seed: number) {
    // splitmix32 to spread the seed over the state.
    let s = seed >>> 0;
    const next = () => {
      s = (s + 0x9e3779b9) >>> 0;
      let z = s;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
      return (z ^ (z >>> 16)) >>> 0;
    };
    this.a = next();
    this.b = next();
    this.c = next();
    this.d = next();
  }

  /** Uniform 32-bit unsigned integer. */
  u32(): number {
    const r = Math.imul(this.rotl(Math.imul(this.b, 5), 7), 9) >>> 0;
    const t = this.b << 9;
    this.c ^= this.a;
    this.d ^= this.b;
    this.b ^= this.c;
    this.a ^= this.d;
    this.c ^= t;
    this.d = this.rotl(this.d, 11);
    return r;
  }

  /** Uniform in (0, 1). */
  uniform(): number {
    return (this.u32() + 0.5) / 4294967296;
  }

  /** Standard normal (Box-Muller, both outputs used). */
  normal(): number {
    if (this.spare !== null) {
      const s = this.spare;
      this.spare = null;
      return s;
    }
    const r = Math.sqrt(-2 * Math.log(this.uniform()));
    const th = 2 * Math.PI * this.uniform();
    this.spare = r * Math.sin(th);
    return r * Math.cos(th);
  }

  fillNormal(out: Float32Array, scale = 1): Float32Array {
    for (let i = 0; i < out.length; i++) out[i] = this.normal() * scale;
    return out;
  }

  private rotl(x: number, k: number): number {
    return ((x << k) | (x >>> (32 - k))) >>> 0;
  }
}

/** Seeded random input of the given kind and shape. */
export function generateInput(kind: InputKind, shape: AttentionShape, seed = 1): AttentionInput {
  const { heads: H, kvHeads: Hkv, headDim: D, seqLen: L } = shape;
  const rng = new Rng(seed);
  const q = rng.fillNormal(new Float32Array(H * L * D));
  const k = rng.fillNormal(new Float32Array(Hkv * L * D));
  const v = rng.fillNormal(new Float32Array(Hkv * L * D));
  if (kind !== 'gaussian') addStructure(rng, { ...shape, q, k, v }, kind === 'local' ? LOCAL.structured : STRUCTURED);
  if (kind === 'local') addLocality(rng, { ...shape, q, k, v }, LOCAL.cScale * Math.sqrt(Math.sqrt(shape.headDim)));
  return { ...shape, q, k, v };
}

/** q_t += c R(t) w for every query head, k_t += c R(t) w for every KV head (R: RoPE, base 10000). */
function addLocality(rng: Rng, x: AttentionInput, c: number): void {
  const { heads: H, kvHeads: Hkv, headDim: D, seqLen: L, q, k } = x;
  // Equal norm in every RoPE pair, random phase: the decay profile is the same for every seed.
  const w = new Float32Array(D);
  for (let i = 0; 2 * i < D; i++) {
    const phase = 2 * Math.PI * rng.uniform();
    w[2 * i] = Math.sqrt(2 / D) * Math.cos(phase);
    if (2 * i + 1 < D) w[2 * i + 1] = Math.sqrt(2 / D) * Math.sin(phase);
  }
  const rw = new Float32Array(D);
  for (let t = 0; t < L; t++) {
    for (let i = 0; 2 * i < D; i++) {
      const a = t * 10000 ** (-2 * i / D);
      const [x0, x1] = [w[2 * i]!, 2 * i + 1 < D ? w[2 * i + 1]! : 0];
      rw[2 * i] = c * (x0 * Math.cos(a) - x1 * Math.sin(a));
      if (2 * i + 1 < D) rw[2 * i + 1] = c * (x0 * Math.sin(a) + x1 * Math.cos(a));
    }
    for (let h = 0; h < H; h++) for (let d = 0, o = (h * L + t) * D; d < D; d++) q[o + d]! += rw[d]!;
    for (let g = 0; g < Hkv; g++) for (let d = 0, o = (g * L + t) * D; d < D; d++) k[o + d]! += rw[d]!;
  }
}

/** A random unit vector of dimension D: a KV head's direction u_g. */
export function unitVector(rng: Rng, D: number): Float32Array {
  const u = rng.fillNormal(new Float32Array(D));
  let norm = 0;
  for (let d = 0; d < D; d++) norm += u[d]! * u[d]!;
  norm = Math.sqrt(norm);
  for (let d = 0; d < D; d++) u[d]! /= norm;
  return u;
}

/** A heavy key's lift from a uniform draw in (0, 1): Pareto(heavyMin, heavyAlpha) capped at heavyMax. */
export function heavyLift(uniform: number, S: StructuredParams = STRUCTURED): number {
  return Math.min(S.heavyMax, S.heavyMin * uniform ** (-1 / S.heavyAlpha));
}

/** Query alignment beta_h of head j of a GQA group of `group` heads: 1 down to betaMin. */
export function queryAlignment(j: number, group: number, S: StructuredParams = STRUCTURED): number {
  return group === 1 ? 1 : 1 - ((1 - S.betaMin) * j) / (group - 1);
}

function addStructure(rng: Rng, x: AttentionInput, S: StructuredParams): void {
  const { heads: H, kvHeads: Hkv, headDim: D, seqLen: L, q, k } = x;
  const group = H / Hkv;
  const heavy = new Uint8Array(L);
  for (let t = 1; t < L; t++) heavy[t] = rng.uniform() < S.heavyShare ? 1 : 0;
  for (let g = 0; g < Hkv; g++) {
    const u = unitVector(rng, D);
    // Keys: sink at token 0, this KV head's heavy-tailed lift at the shared heavy positions.
    for (let t = 0; t < L; t++) {
      let a = 0;
      if (t === 0) a = S.sink;
      else if (heavy[t]) a = heavyLift(rng.uniform(), S);
      if (a === 0) continue;
      const o = (g * L + t) * D;
      for (let d = 0; d < D; d++) k[o + d]! += a * u[d]!;
    }
    // Queries of the group: aligned with u_g, strength beta_h * sqrt(D).
    for (let j = 0; j < group; j++) {
      const h = g * group + j;
      const lift = queryAlignment(j, group, S) * Math.sqrt(D);
      for (let t = 0; t < L; t++) {
        const o = (h * L + t) * D;
        for (let d = 0; d < D; d++) q[o + d]! += lift * u[d]!;
      }
    }
  }
}
