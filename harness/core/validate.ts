/**
 * Input validation shared by every backend: each public method calls these
 * before computing anything, so bad input never produces output.
 */
import { TsaInputError } from './errors.js';
import {
  DEFAULT_OPTIONS,
  type AttentionInput,
  type AttentionShape,
  type ResolvedTsaOptions,
  type ScoreShape,
  type TsaOptions,
} from './interface.js';

function positiveInt(name: string, value: unknown, code: 'SHAPE' | 'HEADS' = 'SHAPE'): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value <= 0) {
    throw new TsaInputError(`${name} must be a positive integer, got ${String(value)}`, code);
  }
  return value;
}

function checkArray(name: string, arr: unknown, expected: number, layout: string): Float32Array {
  if (!(arr instanceof Float32Array)) {
    const got = arr === null || arr === undefined ? String(arr) : (arr as object).constructor?.name ?? typeof arr;
    throw new TsaInputError(`${name} must be a Float32Array ${layout}, got ${got}`, 'TYPE');
  }
  if (arr.length !== expected) {
    throw new TsaInputError(
      `${name} has ${arr.length} elements, expected ${expected} = ${layout}`,
      'SHAPE',
    );
  }
  return arr;
}

function checkFinite(name: string, arr: Float32Array): void {
  for (let i = 0; i < arr.length; i++) {
    const x = arr[i]!;
    // x - x is NaN for NaN and +-Infinity, 0 otherwise.
    if (x - x !== 0) {
      throw new TsaInputError(
        `${name}[${i}] is ${x}; every value must be finite`,
        'NON_FINITE',
      );
    }
  }
}

/** Checks the shape numbers: positive integers, H a multiple of Hkv. */
export function validateShape(shape: AttentionShape): void {
  positiveInt('heads', shape.heads, 'HEADS');
  positiveInt('kvHeads', shape.kvHeads, 'HEADS');
  positiveInt('headDim', shape.headDim);
  positiveInt('seqLen', shape.seqLen);
  if (shape.heads % shape.kvHeads !== 0) {
    throw new TsaInputError(
      `heads (${shape.heads}) must be a multiple of kvHeads (${shape.kvHeads}) for grouped-query attention`,
      'HEADS',
    );
  }
}

/** Checks shape, array types and lengths, and that every value is finite. */
export function validateInput(input: AttentionInput): void {
  if (input === null || typeof input !== 'object') {
    throw new TsaInputError(`input must be an object {q, k, v, heads, kvHeads, headDim, seqLen}`, 'TYPE');
  }
  validateShape(input);
  const { heads: H, kvHeads: Hkv, headDim: D, seqLen: L } = input;
  const q = checkArray('q', input.q, H * L * D, `[heads=${H}][seqLen=${L}][headDim=${D}]`);
  const k = checkArray('k', input.k, Hkv * L * D, `[kvHeads=${Hkv}][seqLen=${L}][headDim=${D}]`);
  const v = checkArray('v', input.v, Hkv * L * D, `[kvHeads=${Hkv}][seqLen=${L}][headDim=${D}]`);
  checkFinite('q', q);
  checkFinite('k', k);
  checkFinite('v', v);
}

function optionInt(name: string, value: unknown, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min) {
    throw new TsaInputError(`option ${name} must be an integer >= ${min}, got ${String(value)}`, 'OPTION');
  }
  if (value > max) throw new TsaInputError(`option ${name} must be an integer <= ${max} (kernels index tokens in 32 bits), got ${value}`, 'OPTION');
  return value;
}

/** Largest window, pool kernel and minTokens: the kernels index tokens with 32-bit integers. */
export const MAX_TOKENS = 2 ** 31 - 1;

/** One validator per option: the value given (never undefined) to its resolved value. */
const OPTION_RULES: { [K in keyof TsaOptions]-?: (value: unknown) => ResolvedTsaOptions[K] } = {
  coverage: (v) => {
    if (typeof v !== 'number' || !(v >= 0 && v < 1)) {
      throw new TsaInputError(`option coverage (tau) must be a number in [0, 1), got ${String(v)}`, 'OPTION');
    }
    return v;
  },
  window: (v) => optionInt('window', v, 1, MAX_TOKENS),
  poolKernel: (v) => {
    const p = optionInt('poolKernel', v, 1, MAX_TOKENS);
    if (p % 2 !== 1) {
      throw new TsaInputError(`option poolKernel must be odd (the output keeps the input length), got ${p}`, 'OPTION');
    }
    return p;
  },
  minTokens: (v) => optionInt('minTokens', v, 1, MAX_TOKENS),
  costRule: (v) => {
    if (typeof v !== 'boolean') throw new TsaInputError(`option costRule must be a boolean, got ${describe(v)}`, 'OPTION');
    return v;
  },
  precision: (v) => {
    if (v !== 'f32' && v !== 'f16') throw new TsaInputError(`option precision must be 'f32' or 'f16', got ${describe(v)}`, 'OPTION');
    return v;
  },
  signal: (v) => {
    if (typeof AbortSignal === 'undefined' || !(v instanceof AbortSignal)) {
      throw new TsaInputError(`option signal must be an AbortSignal, got ${describe(v)}`, 'OPTION');
    }
    return v;
  },
};

function describe(v: unknown): string {
  if (v === null || v === undefined) return String(v);
  if (typeof v === 'object') return (v as object).constructor?.name ?? 'object';
  return `${typeof v} ${String(v)}`;
}

/**
 * Fills defaults and checks every option. Only a plain object's own keys
 * count; unknown keys are rejected (a typo would silently do nothing), and so
 * are arrays, Maps and other non-plain objects.
 */
export function resolveOptions(options: TsaOptions | undefined): ResolvedTsaOptions {
  const o: ResolvedTsaOptions = { ...DEFAULT_OPTIONS };
  if (options === undefined) return o;
  const proto = options === null || typeof options !== 'object' ? undefined : Object.getPrototypeOf(options);
  if (proto !== Object.prototype && proto !== null) {
    throw new TsaInputError(`options must be an object (a plain {name: value} record), got ${describe(options)}`, 'OPTION');
  }
  for (const key of Object.keys(options)) {
    if (!Object.prototype.hasOwnProperty.call(OPTION_RULES, key)) {
      throw new TsaInputError(`unknown option '${key}'; expected one of ${Object.keys(OPTION_RULES).join(', ')}`, 'OPTION');
    }
    const value = (options as Record<string, unknown>)[key];
    if (value !== undefined) (o as unknown as Record<string, unknown>)[key] = OPTION_RULES[key as keyof TsaOptions](value);
  }
  return o;
}

/** Checks options against a sequence: the window must leave a prefix to score. */
export function resolveOptionsFor(shape: AttentionShape, options: TsaOptions | undefined): ResolvedTsaOptions {
  const o = resolveOptions(options);
  if (o.window >= shape.seqLen) {
    throw new TsaInputError(
      `option window (${o.window}) must be smaller than seqLen (${shape.seqLen}) so a prefix remains to score`,
      'OPTION',
    );
  }
  return o;
}

/** Checks a [heads][prefixLen] score array (finite, non-negative). */
export function validateScores(name: string, scores: Float32Array, shape: ScoreShape): void {
  positiveInt('heads', shape.heads, 'HEADS');
  positiveInt('prefixLen', shape.prefixLen);
  checkArray(name, scores, shape.heads * shape.prefixLen, `[heads=${shape.heads}][prefixLen=${shape.prefixLen}]`);
  for (let i = 0; i < scores.length; i++) {
    const x = scores[i]!;
    if (!(x >= 0) || x === Infinity) {
      throw new TsaInputError(`${name}[${i}] is ${x}; scores must be finite and >= 0`, 'NON_FINITE');
    }
  }
}

/** Checks a keep count for `select`: 1 <= keep <= prefixLen. */
export function validateKeep(keep: number, shape: ScoreShape): void {
  if (!Number.isInteger(keep) || keep < 1 || keep > shape.prefixLen) {
    throw new TsaInputError(
      `keep must be an integer in [1, prefixLen=${shape.prefixLen}], got ${keep}`,
      'OPTION',
    );
  }
}

/**
 * Checks kept indices [H][keptLength]: each head's row strictly ascending,
 * inside [0, L). The window is not required here, so any valid subset can be attended.
 */
export function validateIndices(indices: Int32Array, keptLength: number, shape: AttentionShape): void {
  if (!(indices instanceof Int32Array)) {
    throw new TsaInputError(`indices must be an Int32Array [heads][keptLength]`, 'TYPE');
  }
  if (!Number.isInteger(keptLength) || keptLength < 1 || keptLength > shape.seqLen) {
    throw new TsaInputError(
      `keptLength must be an integer in [1, seqLen=${shape.seqLen}], got ${keptLength}`,
      'INDICES',
    );
  }
  if (indices.length !== shape.heads * keptLength) {
    throw new TsaInputError(
      `indices has ${indices.length} elements, expected heads*keptLength = ${shape.heads}*${keptLength}`,
      'SHAPE',
    );
  }
  for (let h = 0; h < shape.heads; h++) {
    let prev = -1;
    for (let r = 0; r < keptLength; r++) {
      const t = indices[h * keptLength + r]!;
      if (t <= prev || t >= shape.seqLen) {
        throw new TsaInputError(
          `indices of head ${h} must be strictly ascending positions in [0, ${shape.seqLen}); entry ${r} is ${t} after ${prev}`,
          'INDICES',
        );
      }
      prev = t;
    }
  }
}
