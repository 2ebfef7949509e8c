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

function optionInt(name: string, value: number, min: number): void {
  if (!Number.isInteger(value) || value < min) {
    throw new TsaInputError(`option ${name} must be an integer >= ${min}, got ${value}`, 'OPTION');
  }
}

/** Fills defaults and checks ranges. Unknown keys are rejected (typos would silently do nothing). */
export function resolveOptions(options: TsaOptions | undefined): ResolvedTsaOptions {
  if (options !== undefined && (options === null || typeof options !== 'object')) {
    throw new TsaInputError(`options must be an object, got ${String(options)}`, 'OPTION');
  }
  for (const key of Object.keys(options ?? {})) {
    if (!(key in DEFAULT_OPTIONS)) {
      throw new TsaInputError(
        `unknown option '${key}'; expected one of ${Object.keys(DEFAULT_OPTIONS).join(', ')}`,
        'OPTION',
      );
    }
  }
  const o: ResolvedTsaOptions = { ...DEFAULT_OPTIONS };
  for (const [key, value] of Object.entries(options ?? {})) {
    if (value !== undefined) (o as Record<string, number>)[key] = value as number;
  }
  if (typeof o.coverage !== 'number' || !(o.coverage >= 0 && o.coverage < 1)) {
    throw new TsaInputError(`option coverage (tau) must be a number in [0, 1), got ${o.coverage}`, 'OPTION');
  }
  optionInt('window', o.window, 1);
  optionInt('poolKernel', o.poolKernel, 1);
  if (o.poolKernel % 2 !== 1) {
    throw new TsaInputError(`option poolKernel must be odd (the output keeps the input length), got ${o.poolKernel}`, 'OPTION');
  }
  optionInt('minTokens', o.minTokens, 1);
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
