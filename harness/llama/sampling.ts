/** Token sampling and the generation loop (sparse prefill, dense decode). */
import { Rng } from '../index.js';
import { TsaInputError, type Backend } from '../index.js';
import { denseAttention } from './attention.js';
import { BOS } from './tokenizer.js';
import type { LayerAttentionInfo, Llama, PrefillAttention } from './llama.js';

/** argmax: the index of the largest logit (the lowest index on ties). */
export function argmax(logits: ArrayLike<number>, offset = 0, n = logits.length - offset): number {
  let best = 0;
  for (let i = 1; i < n; i++) if (logits[offset + i]! > logits[offset + best]!) best = i;
  return best;
}

/** logSoftmaxAt: log p(target) = logits[target] - log sum_j exp(logits[j]), over row [offset, offset+n). */
export function logSoftmaxAt(logits: Float32Array, offset: number, n: number, target: number): number {
  let m = -Infinity;
  for (let i = 0; i < n; i++) m = Math.max(m, logits[offset + i]!);
  let s = 0;
  for (let i = 0; i < n; i++) s += Math.exp(logits[offset + i]! - m);
  return logits[offset + target]! - m - Math.log(s);
}

/**
 * sample: temperature 0 is greedy (argmax); otherwise draw from softmax(logits / T) by
 * inverting the cumulative distribution at one uniform number from `rng`.
 */
export function sample(logits: Float32Array, temperature: number, rng: Rng): number {
  if (!(temperature >= 0) || !Number.isFinite(temperature)) {
    throw new TsaInputError(`temperature must be a finite number >= 0, got ${temperature}`, 'OPTION');
  }
  if (temperature === 0) return argmax(logits);
  let m = -Infinity;
  for (let i = 0; i < logits.length; i++) m = Math.max(m, logits[i]!);
  const p = new Float64Array(logits.length);
  let total = 0;
  for (let i = 0; i < logits.length; i++) total += p[i] = Math.exp((logits[i]! - m) / temperature);
  let u = rng.uniform() * total;
  for (let i = 0; i < p.length; i++) {
    u -= p[i]!;
    if (u <= 0) return i;
  }
  return p.length - 1;
}

export interface GenerateOptions {
  /** New tokens to generate at most (capped by the context). */
  steps: number;
  temperature: number;
  rng: Rng;
  /** Stop when the model emits BOS (the end of a story, as llama2.c does). Default true. */
  stopAtBos?: boolean;
  /** Called with every new token as it is produced. */
  onToken?: (token: number) => void;
}

export interface Generation {
  /** The new tokens (without the prompt). */
  tokens: number[];
  /** How the prefill attention ran per layer. */
  prefillLayers: LayerAttentionInfo[];
  prefillMs: number;
  decodeMs: number;
}

/** generate: prefill `prompt` with `attention`, then sample token by token with dense decode. */
export async function generate(llama: Llama, prompt: readonly number[], attention: PrefillAttention, o: GenerateOptions): Promise<Generation> {
  const t0 = performance.now();
  const pre = await llama.prefill(prompt, attention);
  const t1 = performance.now();
  const V = llama.config.vocabSize;
  let logits = pre.logits.subarray((prompt.length - 1) * V, prompt.length * V);
  const tokens: number[] = [];
  const steps = Math.min(o.steps, llama.config.seqLen - prompt.length + 1);
  for (let i = 0; i < steps; i++) {
    const next = sample(logits, o.temperature, o.rng);
    if (next === BOS && o.stopAtBos !== false) break;
    tokens.push(next);
    o.onToken?.(next);
    if (i + 1 < steps) logits = llama.decodeStep(pre.cache, next);
  }
  return { tokens, prefillLayers: pre.layers, prefillMs: t1 - t0, decodeMs: performance.now() - t1 };
}

/**
 * sampleText: `length` tokens (BOS first) sampled from the all-dense model at `temperature`
 * with seed `seed`, running past the BOS that ends a story (as in the concatenated training data).
 */
export async function sampleText(llama: Llama, backend: Backend, length: number, temperature: number, seed: number): Promise<number[]> {
  const g = await generate(llama, [BOS], denseAttention(backend), { steps: length - 1, temperature, rng: new Rng(seed), stopAtBos: false });
  return [BOS, ...g.tokens];
}
